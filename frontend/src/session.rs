//! The signed-in session, kept in the tab's session storage so that it survives a reload and is
//! gone when the tab closes; shared with every page through [`Auth`].

use leptos::prelude::*;
use nuage_shared::{LoginResponse, Role, User};

use crate::api::ApiFailure;

const KEY: &str = "nuage.session";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub token: String,
    pub user: User,
    /// The host requires a second factor of this user and they have none yet: only the
    /// Account page shows until they enrol.
    #[serde(default)]
    pub must_enrol: bool,
}

impl From<LoginResponse> for Session {
    fn from(r: LoginResponse) -> Session {
        Session {
            token: r.token,
            user: r.user,
            must_enrol: r.must_enrol_second_factor,
        }
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

fn load() -> Option<Session> {
    let text = storage()?.get_item(KEY).ok()??;
    serde_json::from_str(&text).ok()
}

/// The session every page reads, in the context.
#[derive(Clone, Copy)]
pub struct Auth {
    pub session: RwSignal<Option<Session>>,
}

impl Auth {
    pub fn new() -> Auth {
        Auth {
            session: RwSignal::new(load()),
        }
    }

    pub fn signed_in(&self, s: Session) {
        if let (Some(st), Ok(text)) = (storage(), serde_json::to_string(&s)) {
            let _ = st.set_item(KEY, &text);
        }
        self.session.set(Some(s));
    }

    /// The user enrolled a second factor: the whole console opens.
    pub fn enrolled(&self) {
        if let Some(mut s) = self.session.get_untracked().filter(|s| s.must_enrol) {
            s.must_enrol = false;
            self.signed_in(s);
        }
    }

    /// Forgets the session (the daemon said it is no longer valid, or the user signed out).
    pub fn forget(&self) {
        if let Some(st) = storage() {
            let _ = st.remove_item(KEY);
        }
        self.session.set(None);
    }

    /// The token, for requests made by a page that only shows when signed in.
    pub fn token(&self) -> String {
        self.session
            .get_untracked()
            .map(|s| s.token)
            .unwrap_or_default()
    }

    pub fn is_admin(&self) -> bool {
        self.session
            .with(|s| s.as_ref().is_some_and(|s| s.user.role == Role::Admin))
    }

    /// The sentence to show for a failed request; a 401 ends the session instead.
    pub fn explain(&self, e: ApiFailure) -> String {
        if e.is_unauthenticated() {
            self.forget();
        }
        // The host now requires a second factor of this user (promoted, or a session stored
        // before): show the enrolment.
        if e.code == Some(nuage_shared::ErrorCode::SecondFactorRequired) {
            if let Some(mut s) = self.session.get_untracked().filter(|s| !s.must_enrol) {
                s.must_enrol = true;
                self.signed_in(s);
            }
        }
        e.message
    }
}

pub fn use_auth() -> Auth {
    expect_context::<Auth>()
}
