//! The Account page as HTML, section by section (every value escaped): what the component
//! shows and what the tests read.

use nuage_shared::{ApiToken, Me, PasskeyInfo, Session, SessionKind, TotpEnrolment};

use crate::pages::backups::esc;

/// The token list as HTML.
pub fn tokens_html(list: &[ApiToken]) -> String {
    list.iter()
        .map(|t| {
            format!(
                "<li data-token=\"{}\"><strong>{}</strong> <span class=\"muted\">{} · {} · {}{}</span> \
                 <button class=\"secondary\" data-act=\"revoke\" data-id=\"{}\">Revoke</button></li>",
                esc(&t.name),
                esc(&t.name),
                t.scope.as_str(),
                t.expires_at
                    .as_deref()
                    .map_or("never expires".to_owned(), |e| format!("expires {}", esc(e))),
                t.last_used_at
                    .as_deref()
                    .map_or("never used".to_owned(), |u| format!("used {}", esc(u))),
                if t.allowed_cidrs.is_empty() {
                    String::new()
                } else {
                    format!(" · from {}", esc(&t.allowed_cidrs.join(", ")))
                },
                esc(&t.id),
            )
        })
        .collect()
}

/// The session list as HTML (API tokens are listed with the tokens).
pub fn sessions_html(list: &[Session]) -> String {
    list.iter()
        .filter(|s| s.kind != SessionKind::Token)
        .map(|s| {
            format!(
                "<li data-session=\"{}\">{} <span class=\"muted\">{} · since {} · seen {} · {}</span> {}</li>",
                esc(&s.id),
                if s.kind == SessionKind::Passkey { "Passkey" } else { "Password" },
                esc(s.client.as_deref().unwrap_or("unknown address")),
                esc(&s.created_at),
                esc(s.last_seen_at.as_deref().unwrap_or("-")),
                esc(s.user_agent.as_deref().unwrap_or("unknown browser")),
                if s.current {
                    "<strong>this one</strong>".to_owned()
                } else {
                    format!(
                        "<button class=\"secondary\" data-act=\"end\" data-id=\"{}\">Sign out</button>",
                        esc(&s.id)
                    )
                },
            )
        })
        .collect()
}

/// Percent-encodes everything but letters, digits, `-` and `.` (for a `data:` URL).
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The recovery codes as a `data:` URL a link downloads.
pub fn codes_download(codes: &[String]) -> String {
    let text = format!(
        "Nuage recovery codes: each signs in once in place of a code.\n\n{}\n",
        codes.join("\n")
    );
    format!("data:text/plain;charset=utf-8,{}", percent(&text))
}

/// What the page shows; [`render`] makes it HTML.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub me: Option<Me>,
    pub must_enrol: bool,
    pub admin: bool,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub verify: bool,
    pub enrolment: Option<TotpEnrolment>,
    pub codes: Option<Vec<String>>,
    pub new_token: Option<String>,
    pub tokens: Vec<ApiToken>,
    pub sessions: Vec<Session>,
    pub passkeys: Vec<PasskeyInfo>,
}

/// The whole page as HTML, section by section (every value escaped; the QR code is an image):
/// what the tests read.
#[cfg(test)]
pub fn render(s: &State) -> String {
    [
        head_html(s),
        verify_html(s),
        two_factor_html(s),
        passkeys_html(s),
        forms_html(s),
        new_token_html(s),
        lists_html(s),
    ]
    .concat()
}

fn totp_on(s: &State) -> bool {
    s.me.as_ref().is_some_and(|m| m.security.totp)
}

fn has_passkeys(s: &State) -> bool {
    !s.passkeys.is_empty() || s.me.as_ref().is_some_and(|m| m.security.passkeys > 0)
}

/// The caller's passkeys, and adding one.
pub(super) fn passkeys_html(s: &State) -> String {
    crate::pages::passkeys::section_html(&s.passkeys)
}

/// The banner of a required enrolment, the last error and notice.
pub(super) fn head_html(s: &State) -> String {
    let mut h = String::new();
    if s.must_enrol {
        h.push_str(
            "<p class=\"card banner\" id=\"must-enrol\" role=\"alert\">This host requires \
            two-factor sign-in for your account: set it up to continue.</p>",
        );
    }
    if let Some(e) = &s.error {
        h += &format!(
            "<p class=\"error-text card\" role=\"alert\" id=\"account-error\">{}</p>",
            esc(e)
        );
    }
    if let Some(n) = &s.notice {
        h += &format!(
            "<p class=\"card\" role=\"status\" id=\"account-notice\">{}</p>",
            esc(n)
        );
    }
    h
}

/// "Confirm it is you", when the daemon asked for it.
pub(super) fn verify_html(s: &State) -> String {
    if !s.verify {
        return String::new();
    }
    format!(
        "<form class=\"card\" id=\"verify-form\"><h2>Confirm it is you</h2>\
         <label>Password<input id=\"verify-password\" type=\"password\" autocomplete=\"current-password\"></label>{}\
         <button type=\"submit\" id=\"verify\">Confirm</button>{}</form>",
        if totp_on(s) {
            "<label>Code<input id=\"verify-code\" autocomplete=\"one-time-code\" inputmode=\"numeric\"></label>"
        } else {
            ""
        },
        if has_passkeys(s) {
            " <button type=\"button\" class=\"secondary\" id=\"verify-passkey\" \
             data-act=\"verify-passkey\" data-id=\"\">Use a passkey</button>"
        } else {
            ""
        }
    )
}

/// Two-factor sign-in by an authenticator app: off, enrolling, or on; the recovery codes once
/// (also those of a first passkey).
pub(super) fn two_factor_html(s: &State) -> String {
    let mut h = String::new();
    let totp_on = totp_on(s);
    h.push_str("<section class=\"card\" id=\"two-factor\"><h2>Authenticator app</h2>");
    match (&s.me, &s.enrolment) {
        (Some(m), _) if totp_on => {
            h += &format!(
                "<p id=\"totp-state\">On: a code from your authenticator app is asked at each sign-in. \
                 {} recovery codes left.</p><form class=\"row\" id=\"totp-off-form\"><label>Current code\
                 <input id=\"totp-off-code\" autocomplete=\"one-time-code\"></label>\
                 <button type=\"submit\" class=\"secondary\" id=\"totp-off\">Turn off</button></form>",
                m.security.recovery_codes_left
            )
        }
        (_, Some(e)) => {
            h += &format!(
                "<p>Scan this with your authenticator app, or type the key, then enter the code it shows.</p>\
                 <div class=\"qr\" id=\"totp-qr\"><img alt=\"QR code of the key\" \
                 src=\"data:image/svg+xml,{}\"></div><p>Key: <code id=\"totp-secret\">{}</code></p>\
                 <form class=\"row\" id=\"totp-confirm-form\"><label>Code<input id=\"totp-code\" \
                 autocomplete=\"one-time-code\" inputmode=\"numeric\"></label>\
                 <button type=\"submit\" id=\"totp-confirm\">Turn on</button></form>",
                // As an image: whatever the SVG holds, no script of it runs.
                percent(&e.qr_svg),
                esc(&e.secret)
            )
        }
        _ => h.push_str(
            "<p id=\"totp-state\">Off: no authenticator app gives you codes.</p>\
             <button id=\"totp-begin\" data-act=\"totp-begin\" data-id=\"\">Set up two-factor sign-in</button>",
        ),
    }
    if let Some(codes) = &s.codes {
        h += &format!(
            "<p>Recovery codes: each signs in once if you lose your phone. They are shown only now.</p>\
             <ol id=\"recovery-codes\">{}</ol><a id=\"recovery-download\" download=\"nuage-recovery-codes.txt\" \
             href=\"{}\">Download them</a>",
            codes
                .iter()
                .map(|c| format!("<li><code>{}</code></li>", esc(c)))
                .collect::<String>(),
            codes_download(codes)
        );
    }
    // Enrolled while the page still shows only the enrolment (also after a reload): go on.
    if s.must_enrol && (totp_on || has_passkeys(s)) {
        h.push_str(
            "<p><button id=\"codes-done\" data-act=\"codes-done\" data-id=\"\">\
             I have saved my recovery codes: continue</button></p>",
        );
    }
    h.push_str("</section>");
    h
}

/// The password form and the token form (they change only with the page's kind).
pub(super) fn forms_html(s: &State) -> String {
    if s.must_enrol {
        return String::new();
    }
    format!(
        "<form class=\"card\" id=\"password-form\"><h2>Password</h2><div class=\"row\">\
         <label>New password<input id=\"new-password-1\" type=\"password\" autocomplete=\"new-password\"></label>\
         <label>Again<input id=\"new-password-2\" type=\"password\" autocomplete=\"new-password\"></label></div>\
         <button type=\"submit\" id=\"change-password\">Change password</button></form>\
         <section class=\"card\" id=\"tokens\"><h2>API tokens</h2><form class=\"row\" id=\"token-form\">\
         <label>Name<input id=\"token-name\"></label><label>Scope<select id=\"token-scope\">\
         <option value=\"read\" selected>read</option><option value=\"full\">full</option>{}</select></label>\
         <label>From (CIDRs, optional)<input id=\"token-cidrs\" placeholder=\"203.0.113.0/24\"></label>\
         <label>Expires in days (optional)<input id=\"token-days\" inputmode=\"numeric\"></label>\
         <button type=\"submit\" id=\"create-token\">Create token</button></form></section>",
        if s.admin {
            "<option value=\"admin\">admin</option>"
        } else {
            ""
        },
    )
}

/// A token just made, shown this once.
pub(super) fn new_token_html(s: &State) -> String {
    s.new_token
        .as_deref()
        .map(|t| {
            format!(
                "<p class=\"card\">Your new token, shown only now: <code id=\"new-token\">{}</code></p>",
                esc(t)
            )
        })
        .unwrap_or_default()
}

/// The tokens and the sessions.
pub(super) fn lists_html(s: &State) -> String {
    if s.must_enrol {
        return String::new();
    }
    format!(
        "<section class=\"card\"><h2>Your API tokens</h2><ul class=\"plain\" id=\"token-list\">{}</ul></section>\
         <section class=\"card\" id=\"sessions\"><h2>Where you are signed in</h2>\
         <ul class=\"plain\" id=\"session-list\">{}</ul><button class=\"secondary\" id=\"sign-out-others\" \
         data-act=\"sign-out-others\" data-id=\"\">Sign out everywhere else</button></section>",
        tokens_html(&s.tokens),
        sessions_html(&s.sessions)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuage_shared::TokenScope;

    fn me_of_nobody() -> Me {
        let q = nuage_shared::Quota::DEFAULT;
        Me {
            user: nuage_shared::User {
                id: "u".into(),
                username: "u".into(),
                role: nuage_shared::Role::User,
            },
            quota: q,
            usage: q,
            security: Default::default(),
        }
    }

    #[test]
    fn the_page_shows_each_step_and_only_enrolment_while_it_is_required() {
        let mut s = State {
            must_enrol: true,
            ..State::default()
        };
        let html = render(&s);
        assert!(
            html.contains("must-enrol") && html.contains("totp-begin"),
            "{html}"
        );
        assert!(
            !html.contains("token-form"),
            "only enrolment while required"
        );
        s.enrolment = Some(TotpEnrolment {
            secret: "ABC<".into(),
            otpauth_url: "otpauth://totp/x".into(),
            qr_svg: "<?xml version=\"1.0\"?><svg><rect/></svg>".into(),
        });
        let html = render(&s);
        assert!(
            html.contains("src=\"data:image/svg+xml,%3C%3Fxml") && !html.contains("<svg"),
            "the QR code is an image, never inline markup: {html}"
        );
        assert!(html.contains("ABC&lt;"), "{html}");
        s.must_enrol = false;
        s.codes = Some(vec!["aaaaa-bbbbb".into()]);
        s.verify = true;
        let html = render(&s);
        assert!(html.contains("recovery-download") && html.contains("verify-form"));
        assert!(
            !html.contains("codes-done"),
            "continue is for a required enrolment"
        );
        assert!(html.contains("token-form") && !html.contains("value=\"admin\""));
        // Enrolled, then reloaded before "continue": the way on is still there.
        s.must_enrol = true;
        s.codes = None;
        s.me = Some(Me {
            security: nuage_shared::AccountSecurity {
                totp: true,
                ..Default::default()
            },
            ..me_of_nobody()
        });
        assert!(render(&s).contains("codes-done"));
    }

    #[test]
    fn lists_escape_every_value_and_the_current_session_has_no_button() {
        let t = ApiToken {
            id: "t<1".into(),
            name: "<b>ci</b>".into(),
            created_at: "now".into(),
            expires_at: None,
            last_used_at: None,
            scope: TokenScope::Read,
            allowed_cidrs: vec!["10.0.0.0/8".into()],
            last_client: None,
        };
        let html = tokens_html(&[t]);
        assert!(
            html.contains("&lt;b&gt;ci") && !html.contains("<b>"),
            "{html}"
        );
        assert!(
            html.contains("read") && html.contains("from 10.0.0.0/8"),
            "{html}"
        );
        let s = |id: &str, current: bool| Session {
            id: id.into(),
            kind: SessionKind::Password,
            created_at: "c".into(),
            expires_at: None,
            last_seen_at: None,
            client: Some("192.0.2.1".into()),
            user_agent: Some("<script>".into()),
            current,
            name: None,
        };
        let html = sessions_html(&[s("a", true), s("b", false)]);
        assert!(!html.contains("<script>"), "{html}");
        assert_eq!(html.matches("data-act=\"end\"").count(), 1, "{html}");
        assert!(html.contains("data-id=\"b\""), "{html}");
        let url = codes_download(&["abcde-fghij".into()]);
        assert!(
            url.starts_with("data:text/plain") && url.contains("abcde-fghij"),
            "{url}"
        );
    }
}
