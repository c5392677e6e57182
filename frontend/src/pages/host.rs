//! The host: what hypervisor runs the guests, with what acceleration, on how much hardware.

use leptos::prelude::*;
use leptos::task::spawn_local;
use nuage_shared::{Accel, HostInfo};

use super::backups::esc;
use crate::api;
use crate::components::QuotaBar;
use crate::graphs::ratio;
use crate::session::use_auth;

#[derive(Clone)]
enum Load {
    Loading,
    Ready(Box<HostInfo>),
    Failed(String),
}

#[component]
pub fn HostPage() -> impl IntoView {
    let auth = use_auth();
    let (state, set_state) = signal(Load::Loading);
    let token = auth.token();
    spawn_local(async move {
        match api::host(&token).await {
            Ok(info) => set_state.set(Load::Ready(Box::new(info))),
            Err(e) => set_state.set(Load::Failed(auth.explain(e))),
        }
    });

    view! {
        <section class="card" id="host">
            <h2>"Host"</h2>
            {move || match state.get() {
                Load::Loading => view! { <p class="muted">"Loading host information…"</p> }.into_any(),
                Load::Failed(msg) => view! { <p class="error-text" role="alert">{msg}</p> }.into_any(),
                Load::Ready(h) => host_facts(*h).into_any(),
            }}
        </section>
    }
}

/// The host's facts as HTML (every value escaped; a string, not a view: smaller wasm).
pub fn facts_html(h: &HostInfo) -> (String, String) {
    let (c, n) = (&h.capacity, &h.network);
    let accel = match h.accel {
        Accel::Kvm => "KVM (hardware)",
        Accel::Tcg => "TCG (software emulation)",
    };
    let warnings: String = h
        .warnings
        .iter()
        .map(|w| format!("<p class=\"error host-warning\">{}</p>", esc(w)))
        .collect();
    let top = format!(
        "{warnings}<dl class=\"facts\"><dt>Host name</dt><dd id=\"host-name\">{}</dd>\
         <dt>Hypervisor</dt><dd id=\"host-hypervisor\">{} {} ({})</dd><dt>libvirt</dt><dd>{}</dd>\
         <dt>Acceleration</dt><dd id=\"host-accel\">{accel}</dd><dt>Why</dt><dd class=\"muted\">{}</dd>\
         <dt>CPUs</dt><dd id=\"host-cpus\">{}</dd><dt>Memory</dt><dd id=\"host-memory\">{} MiB</dd>\
         <dt>nuaged</dt><dd>{}</dd></dl>",
        esc(&h.hostname),
        esc(&h.hypervisor.driver),
        esc(&h.hypervisor.version),
        esc(&h.hypervisor.uri),
        esc(&h.hypervisor.libvirt_version),
        esc(&h.accel_reason),
        h.cpus,
        h.memory_mib,
        esc(&h.daemon_version),
    );
    let bottom = format!(
        "<dl class=\"facts\"><dt>Overcommit</dt><dd id=\"host-overcommit\">CPU {}:1 · memory {}:1 · \
         disk {}:1</dd><dt>Kept for the host</dt><dd>{} MiB of memory</dd><dt>Disk space</dt>\
         <dd>{} GiB free of {} GiB</dd><dt>Network</dt><dd id=\"host-network\">{} · {} · {}</dd>\
         <dt>NIC rate limits</dt><dd>{}</dd></dl>",
        ratio(c.cpu_overcommit),
        ratio(c.memory_overcommit),
        ratio(c.disk_overcommit),
        c.reserved_memory_mib,
        c.disk_free_gib,
        c.disk_total_gib,
        esc(&n.name),
        esc(&n.cidr),
        esc(&n.mode),
        if n.bandwidth_limits {
            "enforced".to_owned()
        } else {
            format!("not enforced: {}", esc(n.bandwidth_note.as_deref().unwrap_or_default()))
        }
    );
    (top, bottom)
}

fn host_facts(h: HostInfo) -> impl IntoView {
    let (c, n) = (h.capacity.clone(), h.network.clone());
    let (top, bottom) = facts_html(&h);
    view! {
        <div inner_html=top></div>
        <h3>"Capacity and allocation"</h3>
        <div class="quotas" id="host-capacity">
            <QuotaBar label="vCPUs" used=c.allocated.vcpus limit=c.limit.vcpus unit=""/>
            <QuotaBar label="Memory" used=c.allocated.memory_mib limit=c.limit.memory_mib unit=" MiB"/>
            <QuotaBar label="Disk" used=c.allocated.disk_gib limit=c.limit.disk_gib unit=" GiB"/>
            <QuotaBar label="Addresses" used=u64::from(n.addresses_used) limit=u64::from(n.addresses_total) unit=""/>
        </div>
        <div inner_html=bottom></div>
    }
}
