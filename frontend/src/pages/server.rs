//! One server: its state (live), the actions that apply now, and tabs for the rest (console,
//! metrics, resize; snapshots and backups come as tabs too). Adding a tab is a variant of [`Tab`]
//! and one arm in the page's match.

use leptos::prelude::*;
use leptos::task::spawn_local;
use nuage_shared::{Event, MetricSample, MonthlyTraffic, UpdateVm, Vm, VmAction};

use super::backups::{BackupsPanel, SnapshotsPanel};
use crate::api;
use crate::components::StateBadge;
use crate::console::ConsoleView;
use crate::events::EventStream;
use crate::graphs::{fixed, graph, human_bytes, Series};
use crate::session::use_auth;

#[component]
pub fn ServerPage(id: String) -> impl IntoView {
    let auth = use_auth();
    let token = auth.token();
    let vm = RwSignal::new(None::<Vm>);
    let samples = RwSignal::new(Vec::<MetricSample>::new());
    let traffic = RwSignal::new(None::<MonthlyTraffic>);
    let tab = RwSignal::new(Tab::Console);
    let jobs = RwSignal::new(Vec::<nuage_shared::Job>::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<&'static str>);
    let confirm = RwSignal::new(false);
    {
        let (token, id) = (token.clone(), id.clone());
        spawn_local(async move {
            match api::vm(&token, &id).await {
                Ok(v) => vm.set(Some(v)),
                Err(e) => error.set(Some(auth.explain(e))),
            }
            // Metrics are a nicety: the page works without them.
            if let Ok(m) = api::vm_metrics(&token, &id).await {
                samples.set(m.samples);
                traffic.set(Some(m.traffic));
            }
        });
    }
    let stream = EventStream::open(&token, {
        let id = id.clone();
        move |ev: Event| match ev {
            Event::VmState {
                vm_id,
                state,
                stop_reason,
                ..
            } if vm_id == id => vm.update(|v| {
                if let Some(v) = v {
                    v.state = state;
                    v.stop_reason = stop_reason;
                }
            }),
            Event::VmUpdated { vm: updated } if updated.id == id => vm.set(Some(*updated)),
            Event::VmDeleted { vm_id } if vm_id == id => vm.set(None),
            Event::Job { job } if job.vm_id.as_deref() == Some(id.as_str()) => {
                jobs.update(|j| super::backups::upsert(j, job))
            }
            Event::Metrics { vm_id, sample } if vm_id == id => samples.update(|s| {
                // The month's traffic grows with each sample (the daemon counts the same bytes).
                if let Some(prev) = s.last() {
                    let secs = (sample.t - prev.t).max(0) as f32;
                    traffic.update(|t| {
                        if let Some(t) = t {
                            t.rx_bytes += whole_bytes(sample.net_rx_bytes_per_sec * secs);
                            t.tx_bytes += whole_bytes(sample.net_tx_bytes_per_sec * secs);
                        }
                    });
                }
                s.push(sample);
                let excess = s.len().saturating_sub(MAX_SAMPLES);
                s.drain(..excess);
            }),
            _ => {}
        }
    });
    StoredValue::new_local(stream);

    let act = {
        let (token, id) = (token.clone(), id.clone());
        move |action: VmAction| {
            let (token, id) = (token.clone(), id.clone());
            busy.set(Some(action.name()));
            error.set(None);
            spawn_local(async move {
                match api::vm_action(&token, &id, action).await {
                    Ok(v) => vm.set(Some(v)),
                    Err(e) => error.set(Some(auth.explain(e))),
                }
                busy.set(None);
            });
        }
    };
    let delete = {
        let (token, id) = (token.clone(), id.clone());
        move |_| {
            let (token, id) = (token.clone(), id.clone());
            busy.set(Some("delete"));
            spawn_local(async move {
                match api::delete_vm(&token, &id).await {
                    Ok(()) => crate::route::navigate("/"),
                    Err(e) => error.set(Some(auth.explain(e))),
                }
                busy.set(None);
            });
        }
    };
    let show_console = RwSignal::new(false);
    // Only a change between "has a screen" and "has none" re-renders the console (not every event).
    let has_screen = Memo::new(move |_| {
        vm.with(|v| {
            v.as_ref().is_some_and(|v| {
                matches!(
                    v.state,
                    nuage_shared::VmState::Running | nuage_shared::VmState::Paused
                )
            })
        })
    });
    let console_id = id.clone();
    let sizes = RwSignal::new((String::new(), String::new(), String::new()));
    Effect::new(move |_| {
        if let Some(v) = vm.get() {
            let p = v
                .pending
                .map_or((v.vcpus, v.memory_mib), |p| (p.vcpus, p.memory_mib));
            sizes.set((p.0.to_string(), p.1.to_string(), v.disk_gib.to_string()));
        }
    });
    let resize = {
        let (token, id) = (token.clone(), id.clone());
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let (v, m, d) = sizes.get_untracked();
            let (Ok(vcpus), Ok(memory_mib), Ok(disk_gib)) =
                (v.trim().parse(), m.trim().parse(), d.trim().parse())
            else {
                error.set(Some("Sizes are whole numbers.".into()));
                return;
            };
            let req = UpdateVm {
                name: None,
                vcpus: Some(vcpus),
                memory_mib: Some(memory_mib),
                disk_gib: Some(disk_gib),
            };
            let (token, id) = (token.clone(), id.clone());
            busy.set(Some("resize"));
            spawn_local(async move {
                match api::update_vm(&token, &id, &req).await {
                    Ok(v) => vm.set(Some(v)),
                    Err(e) => error.set(Some(auth.explain(e))),
                }
                busy.set(None);
            });
        }
    };

    view! {
        {move || error.get().map(|e| view! { <p class="error-text card" role="alert" id="server-error">{e}</p> })}
        {move || vm.get().map(|v| {
            let act = act.clone();
            let actions = VmAction::ALL.into_iter().filter(|a| a.allowed_in(v.state)).map(move |a| {
                let act = act.clone();
                view! {
                    <button class="secondary" id=format!("action-{}", a.name()) disabled=move || busy.get().is_some()
                        on:click=move |_| act(a)>
                        {move || if busy.get() == Some(a.name()) { format!("{}…", a.name()) } else { a.name().to_owned() }}
                    </button>
                }
            }).collect_view();
            view! {
                <section class="card" id="server">
                    <div class="card-head">
                        <h2 id="server-name">{v.name.clone()}</h2>
                        <span id="server-state"><StateBadge state=v.state/></span>
                    </div>
                    <dl class="facts">
                        <dt>"Size"</dt><dd id="server-size">{format!("{} vCPU · {} MiB · {} GiB", v.vcpus, v.memory_mib, v.disk_gib)}</dd>
                        {v.stop_reason.filter(|_| v.state == nuage_shared::VmState::Stopped).map(|r| view! {
                            <dt>"Why it stopped"</dt><dd id="server-stop-reason">{r.describe()}</dd>
                        })}
                        {v.pending.map(|p| view! {
                            <dt>"At next boot"</dt><dd id="server-pending">{format!("{} vCPU · {} MiB", p.vcpus, p.memory_mib)}</dd>
                        })}
                        <dt>"Address"</dt>
                        <dd id="server-address">{if v.ip_addresses.is_empty() { "–".to_owned() } else { v.ip_addresses.join(", ") }}
                            {v.mac_address.clone().map(|m| view! { <span class="muted">{format!(" · MAC {m}")}</span> })}</dd>
                        <dt>"Limits"</dt><dd id="server-limits">{limits_text(&v)}</dd>
                        <dt>"Hostname"</dt><dd>{v.hostname.clone()}</dd>
                        <dt>"Created"</dt><dd>{v.created_at.clone()}</dd>
                        <dt>"Id"</dt><dd class="muted">{v.id.to_string()}</dd>
                    </dl>
                    <div class="actions">{actions}</div>
                </section>
            }
        })}
        {move || {
            let (resize, delete, console_id) = (resize.clone(), delete.clone(), console_id.clone());
            let tab_id = console_id.clone();
            vm.get().is_some().then(move || view! {
            <nav class="tabs" role="tablist" aria-label="Server">
                {Tab::ALL.into_iter().map(|t| view! {
                    <button role="tab" id=format!("tab-{}", t.id()) class="tab"
                        aria-selected=move || (tab.get() == t).to_string()
                        on:click=move |_| tab.set(t)>{t.label()}</button>
                }).collect_view()}
            </nav>
            {move || {
                let (resize, console_id, tab_id) = (resize.clone(), console_id.clone(), tab_id.clone());
                match tab.get() {
                    Tab::Snapshots => view! { <SnapshotsPanel vm_id=tab_id vm=vm/> }.into_any(),
                    Tab::Backups => view! { <BackupsPanel vm_id=tab_id jobs=jobs/> }.into_any(),
                    Tab::Console => view! {
                        <section class="card" id="console" role="tabpanel">
                            {move || {
                                let console_id = console_id.clone();
                                match (has_screen.get(), show_console.get()) {
                                    (false, _) => view! { <p class="muted">"The screen shows while the server runs."</p> }.into_any(),
                                    (true, false) => view! {
                                        <button id="open-console" on:click=move |_| show_console.set(true)>"Open the console"</button>
                                    }.into_any(),
                                    (true, true) => view! { <ConsoleView vm_id=console_id/> }.into_any(),
                                }
                            }}
                        </section>
                    }.into_any(),
                    Tab::Metrics => view! {
                        <section class="card" id="metrics" role="tabpanel">
                            <MetricsPanel samples=samples.into() traffic=traffic.into()/>
                        </section>
                    }.into_any(),
                    Tab::Resize => view! {
                        <form class="card" id="resize-form" role="tabpanel" on:submit=resize>
                            <div class="row">
                                <label>"vCPUs"<input id="resize-vcpus" prop:value=move || sizes.get().0 on:input=move |ev| sizes.update(|s| s.0 = event_target_value(&ev))/></label>
                                <label>"Memory (MiB)"<input id="resize-memory" prop:value=move || sizes.get().1 on:input=move |ev| sizes.update(|s| s.1 = event_target_value(&ev))/></label>
                                <label>"Disk (GiB, grows only)"<input id="resize-disk" prop:value=move || sizes.get().2 on:input=move |ev| sizes.update(|s| s.2 = event_target_value(&ev))/></label>
                            </div>
                            <button type="submit" class="secondary" id="resize" disabled=move || busy.get().is_some()>"Resize"</button>
                        </form>
                    }.into_any(),
                }
            }}
            <section class="card danger">
                {move || if confirm.get() {
                    view! {
                        <p>"Delete this server with its disk? This cannot be undone."</p>
                        <button id="confirm-delete" class="danger" on:click=delete.clone() disabled=move || busy.get().is_some()>"Delete for good"</button>
                        " "
                        <button class="secondary" on:click=move |_| confirm.set(false)>"Keep it"</button>
                    }.into_any()
                } else {
                    view! { <button id="delete" class="secondary" on:click=move |_| confirm.set(true)>"Delete…"</button> }.into_any()
                }}
            </section>
        })}}
    }
}

/// Samples kept on the page (an hour at the default 10 s).
const MAX_SAMPLES: usize = 360;

/// The server page's tabs, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Console,
    Metrics,
    Snapshots,
    Backups,
    Resize,
}

impl Tab {
    const ALL: [Tab; 5] = [
        Tab::Console,
        Tab::Metrics,
        Tab::Snapshots,
        Tab::Backups,
        Tab::Resize,
    ];

    fn id(self) -> &'static str {
        match self {
            Tab::Console => "console",
            Tab::Metrics => "metrics",
            Tab::Snapshots => "snapshots",
            Tab::Backups => "backups",
            Tab::Resize => "resize",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tab::Console => "Console",
            Tab::Metrics => "Metrics",
            Tab::Snapshots => "Snapshots",
            Tab::Backups => "Backups",
            Tab::Resize => "Resize",
        }
    }
}

/// The limits the host enforces, in one line.
fn limits_text(v: &Vm) -> String {
    let l = &v.limits;
    let rate = |x: u64, f: &dyn Fn(u64) -> String| {
        if x == 0 {
            "unlimited".to_owned()
        } else {
            f(x)
        }
    };
    format!(
        "CPU weight {}{} · memory ≤ {} MiB · disk {} IOPS, {} · network in {}, out {}",
        l.cpu_shares,
        if l.cpu_cap_percent > 0 {
            format!(" (cap {}% per vCPU)", l.cpu_cap_percent)
        } else {
            String::new()
        },
        l.memory_hard_limit_mib,
        rate(l.disk_iops, &|x| x.to_string()),
        rate(l.disk_bytes_per_sec, &|x| format!(
            "{}/s",
            human_bytes(x as f64)
        )),
        rate(l.net_inbound_kib_per_sec, &|x| format!(
            "{}/s",
            human_bytes((x * 1024) as f64)
        )),
        rate(l.net_outbound_kib_per_sec, &|x| format!(
            "{}/s",
            human_bytes((x * 1024) as f64)
        )),
    )
}

/// Live graphs of a server's use, and this month's traffic.
#[component]
fn MetricsPanel(
    samples: Signal<Vec<MetricSample>>,
    traffic: Signal<Option<MonthlyTraffic>>,
) -> impl IntoView {
    view! {
        {move || samples.with(|s| s.is_empty()).then(|| view! {
            <p class="muted" id="metrics-waiting">"Samples appear while the server runs (every few seconds)."</p>
        })}
        {move || samples.with(|s| {
            let rate: fn(f32) -> String = |v| format!("{}/s", human_bytes(v as f64));
            view! {
                <div class="graphs">
                    {graph("CPU", "graph-cpu", s,
                        &[Series { label: "use", class: "s1", get: |x| x.cpu_percent }],
                        |v| format!("{}%", fixed(v as f64, 0)), 10.0)}
                    {graph("Memory on the host", "graph-memory", s,
                        &[Series { label: "resident", class: "s1", get: |x| x.memory_mib }],
                        |v| format!("{} MiB", fixed(v as f64, 0)), 64.0)}
                    {graph("Disk", "graph-disk", s, &[
                        Series { label: "read", class: "s1", get: |x| x.disk_read_bytes_per_sec },
                        Series { label: "write", class: "s2", get: |x| x.disk_write_bytes_per_sec },
                    ], rate, 1024.0)}
                    {graph("Network", "graph-net", s, &[
                        Series { label: "in", class: "s1", get: |x| x.net_rx_bytes_per_sec },
                        Series { label: "out", class: "s2", get: |x| x.net_tx_bytes_per_sec },
                    ], rate, 1024.0)}
                </div>
            }
        })}
        {move || traffic.get().map(|t| view! {
            <p id="traffic">{format!("Traffic in {}: {} in, {} out.", t.month,
                human_bytes(t.rx_bytes as f64), human_bytes(t.tx_bytes as f64))}</p>
        })}
    }
}

/// A non-negative byte count from a rate times seconds; a float-to-int `as` saturates.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn whole_bytes(b: f32) -> u64 {
    b.max(0.0) as u64
}
