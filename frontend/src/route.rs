//! Client-side routing in a few lines: the path is a signal, links and [`navigate`] push a
//! history entry, the back button (popstate) sets the signal. It replaces `leptos_router`, whose
//! generic machinery cost the console about 20 KiB of its 300 KiB first-load budget (gzipped);
//! the console has seven fixed routes and needs nothing more.

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// The path shown (`location.pathname`).
#[derive(Clone, Copy)]
pub struct Location(pub RwSignal<String>);

fn current_path() -> String {
    web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_else(|| "/".into())
}

thread_local! {
    /// The app's location, reachable from anywhere (also from async tasks, which run outside the
    /// reactive owner that holds contexts).
    static LOCATION: std::cell::Cell<Option<Location>> = const { std::cell::Cell::new(None) };
}

/// Sets up the current path and follows the back and forward buttons.
pub fn provide_location() -> Location {
    let loc = Location(RwSignal::new(current_path()));
    LOCATION.with(|l| l.set(Some(loc)));
    if let Some(w) = web_sys::window() {
        let on_pop = Closure::<dyn FnMut()>::new(move || loc.0.set(current_path()));
        let _ = w.add_event_listener_with_callback("popstate", on_pop.as_ref().unchecked_ref());
        // Lives as long as the page.
        on_pop.forget();
    }
    loc
}

pub fn use_location() -> Location {
    LOCATION.with(|l| l.get()).unwrap_or_else(provide_location)
}

/// Shows `path` (a new history entry).
pub fn navigate(path: &str) {
    if let Some(h) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = h.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(path));
    }
    use_location().0.set(path.to_owned());
}

/// A link within the console: a plain `<a>` (so it opens in a new tab with a modifier key)
/// whose ordinary click navigates without reloading. Marked `aria-current="page"` when shown.
#[component]
pub fn A(
    href: String,
    children: Children,
    #[prop(optional)] class: &'static str,
    #[prop(optional)] id: &'static str,
) -> impl IntoView {
    let loc = use_location();
    let target = href.clone();
    let current = href.clone();
    view! {
        <a href=href class=class id=id
            aria-current=move || loc.0.with(|p| *p == current).then_some("page")
            on:click=move |ev: leptos::ev::MouseEvent| {
                if ev.button() == 0 && !(ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key()) {
                    ev.prevent_default();
                    navigate(&target);
                }
            }>{children()}</a>
    }
}
