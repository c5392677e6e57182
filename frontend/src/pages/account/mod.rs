//! The Account page: two-factor sign-in (enrol with the QR code the daemon draws, confirm, the
//! recovery codes shown once with a download, turn off), passkeys (add, rename, delete), the
//! password, API tokens (created with a
//! scope, client CIDRs and an expiry, the secret shown once; revoked), and where the user is
//! signed in. A change the daemon wants re-confirmed opens "Confirm it is you" first.
//!
//! Small like the backup panels: lists are HTML strings with delegated clicks, every request
//! goes through [`api::call`].

use leptos::prelude::*;
use leptos::task::spawn_local;
use nuage_shared::{
    CreateToken, ErrorCode, NewPassword, NewToken, Reauthenticate, RecoveryCodes, RenamePasskey,
    TokenScope, TotpCode,
};

mod html;
use html::State;
use html::{
    forms_html, head_html, lists_html, new_token_html, passkeys_html, two_factor_html, verify_html,
};

use super::backups::{clicked, input, selected};
use super::passkeys;
use crate::api;
use crate::session::use_auth;
fn to_json(body: &impl serde::Serialize) -> Option<String> {
    serde_json::to_string(body).ok()
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
        run(
            "GET",
            "/me/passkeys".into(),
            None,
            Box::new(move |t| {
                state.update(|s| s.passkeys = serde_json::from_str(&t).unwrap_or_default())
            }),
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
                    passkey: None,
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
                            // None when a passkey brought the codes already.
                            s.codes = got.map(|c| c.recovery_codes).filter(|c| !c.is_empty());
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
            "passkey-form" => {
                let name = input("passkey-name");
                // Named first: a refused name after the ceremony would leave a credential on
                // the authenticator that the account does not know.
                if name.trim().is_empty() {
                    return state.update(|s| s.error = Some("Give the passkey a name.".into()));
                }
                run(
                    "POST",
                    "/me/passkeys/options".into(),
                    None,
                    Box::new(move |challenge| {
                        spawn_local(async move {
                            match passkeys::answer(challenge, Some(name)).await {
                                Ok(body) => run(
                                    "POST",
                                    "/me/passkeys".into(),
                                    Some(body),
                                    Box::new(move |t| {
                                        // The first second factor's codes (none after it).
                                        let got: Option<RecoveryCodes> =
                                            serde_json::from_str(&t).ok();
                                        state.update(|s| {
                                            if let Some(c) =
                                                got.filter(|c| !c.recovery_codes.is_empty())
                                            {
                                                s.codes = Some(c.recovery_codes);
                                            }
                                            s.notice = Some("Passkey added.".into());
                                        });
                                        load();
                                    }),
                                ),
                                Err(e) => state.update(|s| s.error = Some(e.message)),
                            }
                        });
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
            "passkey-rename" => {
                let body = RenamePasskey {
                    name: input(&format!("pk-{id}")),
                };
                return run(
                    "PATCH",
                    format!("/me/passkeys/{id}"),
                    to_json(&body),
                    Box::new(move |_| load()),
                );
            }
            "passkey-delete" => ("DELETE", format!("/me/passkeys/{id}")),
            "verify-passkey" => {
                let token = auth.token();
                return spawn_local(async move {
                    match passkeys::assertion(&token).await {
                        Ok(answer) => {
                            run(
                                "POST",
                                "/auth/verify".into(),
                                Some(format!("{{\"passkey\":{answer}}}")),
                                Box::new(move |_| {
                                    state.update(|s| {
                                        s.verify = false;
                                        s.notice =
                                            Some("Confirmed for 5 minutes: try again.".into());
                                    })
                                }),
                            );
                        }
                        Err(e) => state.update(|s| s.error = Some(e.message)),
                    }
                });
            }
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
    let keys = part(passkeys_html);
    let (forms, new_token, lists) = (part(forms_html), part(new_token_html), part(lists_html));
    view! {
        <div id="account" on:click=click on:submit=submit>
            <div inner_html=head></div>
            <div inner_html=verify></div>
            <div inner_html=two_factor></div>
            <div inner_html=keys></div>
            <div inner_html=forms></div>
            <div inner_html=new_token></div>
            <div inner_html=lists></div>
        </div>
    }
}
