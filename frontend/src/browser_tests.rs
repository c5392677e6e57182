//! Component tests in a real browser (headless Chromium through wasm-bindgen-test-runner and
//! chromedriver): components are mounted into the page and their DOM is read back. The logic
//! tests of the other modules (form rules, the events reducer, graphs, mouse buttons) run here
//! too, compiled to wasm, besides running natively.

use leptos::prelude::*;
use nuage_shared::{MetricSample, VmState};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

use crate::components::{QuotaBar, StateBadge};
use crate::graphs::{graph, Series};

wasm_bindgen_test_configure!(run_in_browser);

/// Mounts `f` into a fresh `<div>` of the page and returns the div.
fn mount<F, N>(f: F) -> web_sys::Element
where
    F: FnOnce() -> N + 'static,
    N: IntoView,
{
    let doc = document();
    let div = doc.create_element("div").unwrap();
    doc.body().unwrap().append_child(&div).unwrap();
    let handle = leptos::mount::mount_to(div.clone().unchecked_into(), f);
    handle.forget();
    div
}

fn text(root: &web_sys::Element, css: &str) -> String {
    root.query_selector(css)
        .unwrap()
        .unwrap_or_else(|| panic!("no {css}"))
        .text_content()
        .unwrap_or_default()
}

fn attr(root: &web_sys::Element, css: &str, name: &str) -> String {
    root.query_selector(css)
        .unwrap()
        .unwrap_or_else(|| panic!("no {css}"))
        .get_attribute(name)
        .unwrap_or_default()
}

#[wasm_bindgen_test]
fn a_quota_bar_writes_the_numbers_and_fills_in_proportion() {
    let root = mount(|| view! { <QuotaBar label="vCPUs" used=3 limit=4 unit=""/> });
    assert_eq!(text(&root, ".quota-numbers"), "3 / 4");
    assert_eq!(attr(&root, ".fill", "style"), "width: 75%");
    assert_eq!(attr(&root, "[role=progressbar]", "class"), "bar");
    assert_eq!(attr(&root, "[role=progressbar]", "aria-valuenow"), "3");
    assert_eq!(attr(&root, ".quota", "data-resource"), "vCPUs");
}

#[wasm_bindgen_test]
fn a_full_or_overrun_quota_bar_says_so_and_never_overflows() {
    let full = mount(|| view! { <QuotaBar label="Memory" used=2048 limit=2048 unit=" MiB"/> });
    assert_eq!(text(&full, ".quota-numbers"), "2048 / 2048 MiB");
    assert_eq!(attr(&full, "[role=progressbar]", "class"), "bar full");
    // An admin lowered the quota below what is used: still full, the bar stays in its box.
    let over = mount(|| view! { <QuotaBar label="Disk" used=30 limit=10 unit=" GiB"/> });
    assert_eq!(attr(&over, "[role=progressbar]", "class"), "bar full");
    assert_eq!(attr(&over, ".fill", "style"), "width: 100%");
    let none = mount(|| view! { <QuotaBar label="Servers" used=0 limit=0 unit=""/> });
    assert_eq!(attr(&none, ".fill", "style"), "width: 0%");
}

#[wasm_bindgen_test]
fn a_state_badge_names_the_state_and_styles_it() {
    let root = mount(|| view! { <StateBadge state=VmState::Stopping/> });
    assert_eq!(text(&root, ".state"), "stopping");
    assert_eq!(attr(&root, ".state", "class"), "state state-stopping");
}

#[wasm_bindgen_test]
fn a_graph_draws_one_point_per_sample_and_the_latest_value() {
    let samples: Vec<MetricSample> = (0..5)
        .map(|i| MetricSample {
            t: 1_000 + i * 10,
            cpu_percent: (i * 20) as f32,
            ..Default::default()
        })
        .collect();
    let root = mount(move || {
        graph(
            "CPU",
            "graph-test",
            &samples,
            &[Series {
                label: "use",
                class: "s1",
                get: |s| s.cpu_percent,
            }],
            |v| format!("{}%", crate::graphs::fixed(v as f64, 0)),
            10.0,
        )
    });
    let points = attr(&root, "#graph-test polyline", "points");
    assert_eq!(points.split(' ').count(), 5, "{points}");
    // Scaled to the round ceiling (100%): 80% sits a fifth below the top, 0% on the axis.
    assert!(points.starts_with("0.0,80.0 "), "{points}");
    assert!(points.ends_with(" 300.0,16.0"), "{points}");
    assert_eq!(text(&root, ".legend"), "use 80%");
    assert_eq!(text(&root, ".graph-scale"), "max 100%");
}
