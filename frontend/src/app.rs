//! The shell of the console: the banner, the header with its navigation, and the routes. Every
//! page needs a session; without one, the sign-in form shows in place of the page asked for (so a
//! reload or a shared link lands where it pointed once signed in).

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::pages::account::AccountPage;
use crate::pages::admin::{AuditPage, ImagesPage};
use crate::pages::users::UsersPage;
use crate::pages::{
    create::CreateServerPage, host::HostPage, login::LoginPage, server::ServerPage,
    servers::ServersPage,
};
use crate::route::{provide_location, A};
use crate::session::{use_auth, Auth};

/// What the console knows about the daemon before anyone signs in.
#[derive(Debug, Clone, PartialEq)]
enum DaemonStatus {
    Checking,
    Up { simulated: bool, degraded: bool },
    Unreachable(String),
}

#[component]
pub fn App() -> impl IntoView {
    let auth = Auth::new();
    provide_context(auth);
    let location = provide_location();
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
        <Header/>
        <main>
            {move || if auth.session.with(Option::is_none) {
                view! { <LoginPage/> }.into_any()
            } else {
                // A user who must enrol a second factor sees the Account page only.
                let path = if auth.session.with(|s| s.as_ref().is_some_and(|s| s.must_enrol)) {
                    "/account".to_owned()
                } else {
                    location.0.get()
                };
                match path.as_str() {
                    "/" => view! { <ServersPage/> }.into_any(),
                    "/servers/new" => view! { <CreateServerPage/> }.into_any(),
                    "/admin/host" => view! { <HostPage/> }.into_any(),
                    "/admin/users" => view! { <UsersPage/> }.into_any(),
                    "/admin/images" => view! { <ImagesPage/> }.into_any(),
                    "/admin/audit" => view! { <AuditPage/> }.into_any(),
                    "/account" => view! { <AccountPage/> }.into_any(),
                    p => match p.strip_prefix("/servers/").filter(|id| !id.is_empty() && !id.contains('/')) {
                        Some(id) => view! { <ServerPage id=id.to_owned()/> }.into_any(),
                        None => view! { <p class="card">"No such page."</p> }.into_any(),
                    },
                }
            }}
        </main>
    }
}

#[component]
fn Header() -> impl IntoView {
    let auth = use_auth();
    let sign_out = move |_| {
        let token = auth.token();
        spawn_local(async move { api::logout(&token).await });
        auth.forget();
    };
    view! {
        <header class="top">
            <h1><A href="/".to_owned()>"Nuage"</A></h1>
            {move || auth.session.get().map(|s| view! {
                <nav>
                    <A href="/".to_owned()>"My servers"</A>
                    {auth.is_admin().then(|| view! {
                        <A href="/admin/users".to_owned()>"Users"</A>
                        <A href="/admin/images".to_owned()>"Images"</A>
                        <A href="/admin/audit".to_owned()>"Audit"</A>
                        <A href="/admin/host".to_owned()>"Host"</A>
                    })}
                    <A href="/account".to_owned() id="account-link">"Account"</A>
                    <span class="muted">{s.user.username}</span>
                    <button class="secondary" id="sign-out" on:click=sign_out>"Sign out"</button>
                </nav>
            })}
        </header>
    }
}
