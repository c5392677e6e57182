//! The Nuage web console. `main` only mounts the app; everything else lives in modules by page.
#![forbid(unsafe_code)]

mod api;
mod app;
mod components;
mod console;
mod events;
mod graphs;
mod pages;
mod paint;
mod route;
mod session;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
