//! Small pieces shared by pages.

use leptos::prelude::*;
use nuage_shared::VmState;

/// Used / limit of one quota resource, as a bar with the numbers written out.
#[component]
pub fn QuotaBar(label: &'static str, used: u64, limit: u64, unit: &'static str) -> impl IntoView {
    let pct = if limit == 0 {
        0.0
    } else {
        (used as f64 / limit as f64 * 100.0).min(100.0)
    };
    // Full (or over, after an admin lowered the quota): nothing more can be allocated.
    let class = if limit > 0 && used >= limit || used > limit {
        "bar full"
    } else {
        "bar"
    };
    view! {
        <div class="quota" data-resource=label>
            <div class="quota-label"><span>{label}</span><span class="quota-numbers">{format!("{used} / {limit}{unit}")}</span></div>
            <div class=class role="progressbar" aria-label=label aria-valuemin="0" aria-valuemax=limit aria-valuenow=used>
                <div class="fill" style=format!("width: {}%", crate::graphs::fixed(pct, 0))></div>
            </div>
        </div>
    }
}

#[component]
pub fn StateBadge(state: VmState) -> impl IntoView {
    view! { <span class=format!("state state-{}", state.as_str())>{state.as_str()}</span> }
}
