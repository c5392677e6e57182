//! The signed-in session, kept in the tab's session storage so that it survives a reload and is
//! gone when the tab closes.

use nuage_shared::{LoginResponse, User};

const KEY: &str = "nuage.session";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub token: String,
    pub user: User,
}

impl From<LoginResponse> for Session {
    fn from(r: LoginResponse) -> Session {
        Session {
            token: r.token,
            user: r.user,
        }
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

pub fn load() -> Option<Session> {
    let text = storage()?.get_item(KEY).ok()??;
    serde_json::from_str(&text).ok()
}

pub fn save(s: &Session) {
    if let (Some(st), Ok(text)) = (storage(), serde_json::to_string(s)) {
        let _ = st.set_item(KEY, &text);
    }
}

pub fn clear() {
    if let Some(st) = storage() {
        let _ = st.remove_item(KEY);
    }
}
