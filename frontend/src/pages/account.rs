//! The Account page: two-factor sign-in (enrol with the QR code the daemon draws, confirm, the
//! recovery codes shown once with a download, turn off), the password, API tokens (created with a
//! scope, client CIDRs and an expiry, the secret shown once; revoked), and where the user is
//! signed in. A change the daemon wants re-confirmed opens "Confirm it is you" first.
//!
//! Small like the backup panels: lists are HTML strings with delegated clicks, every request
//! goes through [`api::call`].

use leptos::prelude::*;
use leptos::task::spawn_local;
use nuage_shared::{
    ApiToken, CreateToken, ErrorCode, Me, NewPassword, NewToken, Reauthenticate, RecoveryCodes,
    Session, SessionKind, TokenScope, TotpCode, TotpEnrolment,
};

use super::backups::{clicked, esc, input};
use crate::api;
use crate::session::use_auth;

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
}

/// The whole page as HTML, section by section (every value escaped; the QR code is an image):
/// what the tests read.
#[cfg(test)]
pub fn render(s: &State) -> String {
    [
        head_html(s),
        verify_html(s),
        two_factor_html(s),
        forms_html(s),
        new_token_html(s),
        lists_html(s),
    ]
    .concat()
}

fn totp_on(s: &State) -> bool {
    s.me.as_ref().is_some_and(|m| m.security.totp)
}

/// The banner of a required enrolment, the last error and notice.
fn head_html(s: &State) -> String {
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
fn verify_html(s: &State) -> String {
    if !s.verify {
        return String::new();
    }
    format!(
        "<form class=\"card\" id=\"verify-form\"><h2>Confirm it is you</h2>\
         <label>Password<input id=\"verify-password\" type=\"password\" autocomplete=\"current-password\"></label>{}\
         <button type=\"submit\" id=\"verify\">Confirm</button></form>",
        if totp_on(s) {
            "<label>Code<input id=\"verify-code\" autocomplete=\"one-time-code\" inputmode=\"numeric\"></label>"
        } else {
            ""
        }
    )
}

/// Two-factor sign-in: off, enrolling, or on; the recovery codes once.
fn two_factor_html(s: &State) -> String {
    let mut h = String::new();
    let totp_on = totp_on(s);
    h.push_str("<section class=\"card\" id=\"two-factor\"><h2>Two-factor sign-in</h2>");
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
            "<p id=\"totp-state\">Off: your password alone signs you in.</p>\
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
    if s.must_enrol && totp_on {
        h.push_str(
            "<p><button id=\"codes-done\" data-act=\"codes-done\" data-id=\"\">\
             I have saved my recovery codes: continue</button></p>",
        );
    }
    h.push_str("</section>");
    h
}

/// The password form and the token form (they change only with the page's kind).
fn forms_html(s: &State) -> String {
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
fn new_token_html(s: &State) -> String {
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
fn lists_html(s: &State) -> String {
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

fn to_json(body: &impl serde::Serialize) -> Option<String> {
    serde_json::to_string(body).ok()
}

/// The value of the `<select>` with this id.
fn selected(id: &str) -> String {
    use wasm_bindgen::JsCast;
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into::<web_sys::HtmlSelectElement>().ok())
        .map(|s| s.value())
        .unwrap_or_default()
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let auth = use_auth();
    let state = RwSignal::new(State {
        admin: auth.is_admin(),
        must_enrol: auth
            .session
            .with_untracked(|s| s.as_ref().is_some_and(|s| s.must_enrol)),
        ..State::default()
    });
    Effect::new(move |_| {
        let must = auth
            .session
            .with(|s| s.as_ref().is_some_and(|s| s.must_enrol));
        state.update(|st| st.must_enrol = must);
    });

    // One request; a demand to re-confirm opens the form, any other failure is shown.
    let run = move |method: &'static str,
                    path: String,
                    body: Option<String>,
                    done: Box<dyn FnOnce(String)>| {
        let token = auth.token();
        // A change clears the last outcome; the reloads after it keep it on screen.
        if method != "GET" {
            state.update(|s| {
                s.error = None;
                s.notice = None;
            });
        }
        spawn_local(async move {
            match api::call(&token, method, &path, body).await {
                Ok(text) => done(text),
                Err(e) => {
                    let again = e.code == Some(ErrorCode::ReauthenticationRequired);
                    let message = auth.explain(e);
                    state.update(|s| {
                        s.verify |= again;
                        s.error = Some(message);
                    });
                }
            }
        });
    };
    let load = move || {
        run(
            "GET",
            "/me".into(),
            None,
            Box::new(move |t| state.update(|s| s.me = serde_json::from_str(&t).ok())),
        );
        if state.with_untracked(|s| s.must_enrol) {
            return;
        }
        run(
            "GET",
            "/tokens".into(),
            None,
            Box::new(move |t| {
                state.update(|s| s.tokens = serde_json::from_str(&t).unwrap_or_default())
            }),
        );
        run(
            "GET",
            "/me/sessions".into(),
            None,
            Box::new(move |t| {
                state.update(|s| s.sessions = serde_json::from_str(&t).unwrap_or_default())
            }),
        );
    };
    load();

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .map(|f| f.id())
            .unwrap_or_default();
        match form.as_str() {
            "verify-form" => {
                let code = input("verify-code");
                let body = Reauthenticate {
                    password: Some(input("verify-password")),
                    totp: (!code.trim().is_empty()).then_some(code),
                };
                run(
                    "POST",
                    "/auth/verify".into(),
                    to_json(&body),
                    Box::new(move |_| {
                        state.update(|s| {
                            s.verify = false;
                            s.notice = Some("Confirmed for 5 minutes: try again.".into());
                        })
                    }),
                );
            }
            "totp-confirm-form" => {
                let body = TotpCode {
                    code: input("totp-code"),
                };
                run(
                    "POST",
                    "/me/totp/confirm".into(),
                    to_json(&body),
                    Box::new(move |t| {
                        let got: Option<RecoveryCodes> = serde_json::from_str(&t).ok();
                        state.update(|s| {
                            s.codes = got.map(|c| c.recovery_codes);
                            s.enrolment = None;
                        });
                        // A user who had to enrol sees the codes first: "continue" opens the
                        // console (and leaves this page).
                        load();
                    }),
                );
            }
            "totp-off-form" => {
                let body = TotpCode {
                    code: input("totp-off-code"),
                };
                run(
                    "DELETE",
                    "/me/totp".into(),
                    to_json(&body),
                    Box::new(move |_| {
                        state.update(|s| s.codes = None);
                        load();
                    }),
                );
            }
            "password-form" => {
                let (a, b) = (input("new-password-1"), input("new-password-2"));
                if a != b {
                    return state.update(|s| s.error = Some("The two passwords differ.".into()));
                }
                run(
                    "PUT",
                    "/me/password".into(),
                    to_json(&NewPassword { password: a }),
                    Box::new(move |_| {
                        state.update(|s| {
                            s.notice = Some(
                                "Password changed; your other sessions were signed out.".into(),
                            )
                        });
                        load();
                    }),
                );
            }
            "token-form" => {
                let cidrs: Vec<String> = input("token-cidrs")
                    .split([',', ' '])
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect();
                let body = CreateToken {
                    name: input("token-name"),
                    scope: match selected("token-scope").as_str() {
                        "full" => TokenScope::Full,
                        "admin" => TokenScope::Admin,
                        _ => TokenScope::Read,
                    },
                    allowed_cidrs: cidrs,
                    expires_in_days: input("token-days").trim().parse::<u32>().ok(),
                };
                run(
                    "POST",
                    "/tokens".into(),
                    to_json(&body),
                    Box::new(move |t| {
                        let made: Option<NewToken> = serde_json::from_str(&t).ok();
                        state.update(|s| s.new_token = made.map(|m| m.token));
                        load();
                    }),
                );
            }
            _ => {}
        }
    };
    let click = move |ev: leptos::ev::MouseEvent| {
        let Some((act, id)) = clicked(&ev) else {
            return;
        };
        let (method, path): (&'static str, String) = match act.as_str() {
            "totp-begin" => {
                return run(
                    "POST",
                    "/me/totp".into(),
                    None,
                    Box::new(move |t| {
                        state.update(|s| s.enrolment = serde_json::from_str(&t).ok())
                    }),
                )
            }
            "codes-done" => return auth.enrolled(),
            "revoke" => ("DELETE", format!("/tokens/{id}")),
            "end" => ("DELETE", format!("/me/sessions/{id}")),
            "sign-out-others" => ("POST", "/me/sign-out".into()),
            _ => return,
        };
        run(method, path, None, Box::new(move |_| load()));
    };
    // One memo per section: a change that leaves a section's HTML as it was leaves its DOM
    // (and what the user is typing there) alone.
    let part = move |f: fn(&State) -> String| Memo::new(move |_| state.with(f));
    let (head, verify, two_factor) = (part(head_html), part(verify_html), part(two_factor_html));
    let (forms, new_token, lists) = (part(forms_html), part(new_token_html), part(lists_html));
    view! {
        <div id="account" on:click=click on:submit=submit>
            <div inner_html=head></div>
            <div inner_html=verify></div>
            <div inner_html=two_factor></div>
            <div inner_html=forms></div>
            <div inner_html=new_token></div>
            <div inner_html=lists></div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
