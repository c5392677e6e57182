//! The shell of the console: the banner, the header, and which page shows.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::pages::{host::HostPage, login::LoginPage};
use crate::session::{self, Session};

/// What the console knows about the daemon before anyone signs in.
#[derive(Debug, Clone, PartialEq)]
enum DaemonStatus {
    Checking,
    Up { simulated: bool, degraded: bool },
    Unreachable(String),
}

#[component]
pub fn App() -> impl IntoView {
    let (session, set_session) = signal(session::load());
    let (status, set_status) = signal(DaemonStatus::Checking);
    spawn_local(async move {
        set_status.set(match api::health().await {
            Ok(h) => DaemonStatus::Up {
                simulated: h.simulated,
                degraded: h.status != "ok",
            },
            Err(e) => DaemonStatus::Unreachable(e.message),
        });
    });

    let signed_in = move |s: Session| {
        session::save(&s);
        set_session.set(Some(s));
    };
    let sign_out = move || {
        if let Some(s) = session.get_untracked() {
            spawn_local(async move { api::logout(&s.token).await });
        }
        session::clear();
        set_session.set(None);
    };

    view! {
        {move || match status.get() {
            DaemonStatus::Up { simulated: true, .. } => view! {
                <div class="banner" id="simulated-banner" role="status">
                    "Simulated hypervisor: this daemon runs on libvirt's test:///default. "
                    "Nothing created here is a real machine."
                </div>
            }.into_any(),
            DaemonStatus::Up { degraded: true, .. } => view! {
                <div class="banner error" role="alert">
                    "The daemon is degraded: its database or hypervisor is not answering."
                </div>
            }.into_any(),
            DaemonStatus::Unreachable(msg) => view! {
                <div class="banner error" role="alert">{msg}</div>
            }.into_any(),
            _ => ().into_any(),
        }}
        <header class="top">
            <h1>"Nuage"</h1>
            {move || session.get().map(|s| view! {
                <span>
                    <span class="muted">{s.user.username}" "</span>
                    <button class="secondary" id="sign-out" on:click=move |_| sign_out()>"Sign out"</button>
                </span>
            })}
        </header>
        <main>
            {move || match session.get() {
                Some(s) => view! { <HostPage session=s on_expired=sign_out/> }.into_any(),
                None => view! { <LoginPage on_login=signed_in/> }.into_any(),
            }}
        </main>
    }
}
