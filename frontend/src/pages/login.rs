//! Sign in.

use leptos::prelude::*;
use leptos::task::spawn_local;

use nuage_shared::{LoginRequest, LoginResponse};

use super::passkeys;
use crate::api::{self, ApiFailure};
use crate::session::use_auth;

#[component]
pub fn LoginPage() -> impl IntoView {
    let auth = use_auth();
    let (username, set_username) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    // Asked for after a right password when the account has TOTP on.
    let (code, set_code) = signal(None::<String>);
    // Marks the moment the form is on screen and usable, for the time-to-interactive benchmark
    // (`performance.getEntriesByName("nuage-login-ready")`).
    Effect::new(move |_| {
        if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
            let _ = p.mark("nuage-login-ready");
        }
    });

    // The answer of a sign-in, whichever way it went.
    let finish = move |got: Result<LoginResponse, ApiFailure>| {
        match got {
            Ok(resp) => auth.signed_in(resp.into()),
            Err(e) => {
                if e.code == Some(nuage_shared::ErrorCode::TotpRequired) {
                    set_code.set(Some(String::new()));
                }
                set_error.set(Some(e.message));
            }
        }
        set_busy.set(false);
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (u, p) = (username.get_untracked(), password.get_untracked());
        if u.is_empty() || p.is_empty() {
            set_error.set(Some("Enter a username and a password.".into()));
            return;
        }
        set_busy.set(true);
        set_error.set(None);
        let totp = code.get_untracked().filter(|c| !c.trim().is_empty());
        let req = LoginRequest {
            username: u,
            password: p,
            totp,
            passkey: None,
        };
        spawn_local(async move { finish(api::login(&req).await) });
    };
    // A passkey alone, or (once the password was right) as the second factor.
    let with_passkey = move |_| {
        set_busy.set(true);
        set_error.set(None);
        let second = code.get_untracked().is_some();
        let (u, p) = (username.get_untracked(), password.get_untracked());
        spawn_local(async move {
            let got = passkeys::sign_in(second.then_some((u.as_str(), p.as_str()))).await;
            finish(got);
        });
    };

    view! {
        <form class="login card" id="login-form" on:submit=submit>
            <h2>"Sign in"</h2>
            <label>"Username"
                <input id="username" name="username" autocomplete="username" required
                    prop:value=username on:input=move |ev| set_username.set(event_target_value(&ev))/>
            </label>
            <label>"Password"
                <input id="password" name="password" type="password" autocomplete="current-password"
                    required prop:value=password
                    on:input=move |ev| set_password.set(event_target_value(&ev))/>
            </label>
            {move || code.get().is_some().then(|| view! {
                <label>"Code from your authenticator app (or a recovery code)"
                    <input id="totp" name="totp" autocomplete="one-time-code" inputmode="numeric"
                        on:input=move |ev| set_code.set(Some(event_target_value(&ev)))/>
                </label>
            })}
            {move || error.get().map(|e| view! { <p class="error-text" role="alert">{e}</p> })}
            <button type="submit" id="sign-in" disabled=busy>
                {move || if busy.get() { "Signing in…" } else { "Sign in" }}
            </button>
            <button type="button" class="secondary" id="passkey-sign-in" disabled=busy
                on:click=with_passkey>
                {move || if code.get().is_some() { "Use a passkey instead of a code" }
                    else { "Sign in with a passkey" }}
            </button>
        </form>
    }
}
