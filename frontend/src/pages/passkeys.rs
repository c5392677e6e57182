//! Passkeys in the browser: the WebAuthn ceremonies through `navigator.credentials` (a small JS
//! module turns base64url to bytes and back), a sign-in with one, and the Account page's
//! passkey section as HTML.

use nuage_shared::{LoginResponse, PasskeyInfo};
use wasm_bindgen::prelude::*;

use super::backups::esc;
use crate::api::{self, ApiFailure};

#[wasm_bindgen(module = "/src/passkey.js")]
extern "C" {
    #[wasm_bindgen(catch)]
    async fn passkey_answer(challenge: String, name: Option<String>) -> Result<JsValue, JsValue>;
}

/// What the browser said when a ceremony did not finish.
fn refused(e: JsValue) -> ApiFailure {
    let name = js_sys::Reflect::get(&e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    ApiFailure::local(match name.as_str() {
        "NotAllowedError" => "The passkey was not used (cancelled, or it timed out).",
        "InvalidStateError" => "This passkey is registered already.",
        "NotSupportedError" | "SecurityError" => "This browser cannot use passkeys here.",
        _ => "The passkey did not answer.",
    })
}

/// Runs the browser's side of the daemon's `challenge` (its JSON text, passed on unparsed):
/// with a `name` it registers a passkey, without it signs in. The answer's JSON text (the body
/// of `POST /me/passkeys`, or a `PasskeyAssertion`).
pub async fn answer(challenge: String, name: Option<String>) -> Result<String, ApiFailure> {
    passkey_answer(challenge, name)
        .await
        .map_err(refused)?
        .as_string()
        .ok_or_else(|| ApiFailure::local("The passkey's answer was unreadable."))
}

/// A sign-in challenge from the daemon, answered by one of the user's passkeys: the
/// `PasskeyAssertion` as JSON text.
pub async fn assertion(token: &str) -> Result<String, ApiFailure> {
    let challenge = api::call(token, "POST", "/auth/passkey/options", None).await?;
    answer(challenge, None).await
}

/// Signs in with a passkey: alone (`POST /auth/passkey`), or after the password as the second
/// factor (`POST /auth/login` with `passkey`).
pub async fn sign_in(password: Option<(&str, &str)>) -> Result<LoginResponse, ApiFailure> {
    let answer = assertion("").await?;
    let text = match password {
        None => api::call("", "POST", "/auth/passkey", Some(answer)).await?,
        Some((user, password)) => {
            let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
            let body = format!(
                "{{\"username\":{},\"password\":{},\"passkey\":{answer}}}",
                quote(user),
                quote(password)
            );
            api::call("", "POST", "/auth/login", Some(body)).await?
        }
    };
    serde_json::from_str(&text)
        .map_err(|_| ApiFailure::local("The daemon's answer was unreadable."))
}

/// The passkey section of the Account page.
pub fn section_html(list: &[PasskeyInfo]) -> String {
    let items: String = list
        .iter()
        .map(|p| {
            let (id, name) = (esc(&p.id), esc(&p.name));
            format!(
                "<li data-passkey=\"{name}\"><input id=\"pk-{id}\" value=\"{name}\" aria-label=\"Name\"> \
                 <span class=\"muted\">added {} · {}</span> \
                 <button class=\"secondary\" data-act=\"passkey-rename\" data-id=\"{id}\">Rename</button> \
                 <button class=\"secondary\" data-act=\"passkey-delete\" data-id=\"{id}\">Delete</button></li>",
                esc(&p.created_at),
                p.last_used_at
                    .as_deref()
                    .map_or("never used".to_owned(), |u| format!("used {}", esc(u))),
            )
        })
        .collect();
    format!(
        "<section class=\"card\" id=\"passkeys\"><h2>Passkeys</h2><p>Sign in with this device's \
         screen lock or a security key, without a password; or use one as the second factor.</p>\
         <ul class=\"plain\" id=\"passkey-list\">{items}</ul><form class=\"row\" id=\"passkey-form\">\
         <label>Name<input id=\"passkey-name\" placeholder=\"laptop\"></label>\
         <button type=\"submit\" id=\"passkey-add\">Add a passkey</button></form></section>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_escapes_names_and_offers_rename_and_delete() {
        let p = PasskeyInfo {
            id: "k\"1".into(),
            name: "<i>laptop</i>".into(),
            created_at: "2026-12-01".into(),
            last_used_at: None,
        };
        let html = section_html(&[p]);
        assert!(!html.contains("<i>"), "{html}");
        assert!(html.contains("&lt;i&gt;laptop") && html.contains("never used"));
        assert_eq!(html.matches("data-id=\"k&quot;1\"").count(), 2, "{html}");
        assert!(html.contains("passkey-add"));
    }
}
