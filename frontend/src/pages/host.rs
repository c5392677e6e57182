//! The host: what hypervisor runs the guests, with what acceleration, on how much hardware.

use leptos::prelude::*;
use leptos::task::spawn_local;
use nuage_shared::{Accel, HostInfo};

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

fn host_facts(h: HostInfo) -> impl IntoView {
    let (c, n) = (h.capacity.clone(), h.network.clone());
    let accel = match h.accel {
        Accel::Kvm => "KVM (hardware)",
        Accel::Tcg => "TCG (software emulation)",
    };
    let warnings = h.warnings.clone();
    view! {
        {warnings.into_iter().map(|w| view! { <p class="error host-warning">{w}</p> }).collect::<Vec<_>>()}
        <dl class="facts">
            <dt>"Host name"</dt><dd id="host-name">{h.hostname}</dd>
            <dt>"Hypervisor"</dt>
            <dd id="host-hypervisor">{format!("{} {} ({})", h.hypervisor.driver, h.hypervisor.version, h.hypervisor.uri)}</dd>
            <dt>"libvirt"</dt><dd>{h.hypervisor.libvirt_version}</dd>
            <dt>"Acceleration"</dt><dd id="host-accel">{accel}</dd>
            <dt>"Why"</dt><dd class="muted">{h.accel_reason}</dd>
            <dt>"CPUs"</dt><dd id="host-cpus">{h.cpus}</dd>
            <dt>"Memory"</dt><dd id="host-memory">{format!("{} MiB", h.memory_mib)}</dd>
            <dt>"nuaged"</dt><dd>{h.daemon_version}</dd>
        </dl>
        <h3>"Capacity and allocation"</h3>
        <div class="quotas" id="host-capacity">
            <QuotaBar label="vCPUs" used=c.allocated.vcpus limit=c.limit.vcpus unit=""/>
            <QuotaBar label="Memory" used=c.allocated.memory_mib limit=c.limit.memory_mib unit=" MiB"/>
            <QuotaBar label="Disk" used=c.allocated.disk_gib limit=c.limit.disk_gib unit=" GiB"/>
            <QuotaBar label="Addresses" used=u64::from(n.addresses_used) limit=u64::from(n.addresses_total) unit=""/>
        </div>
        <dl class="facts">
            <dt>"Overcommit"</dt>
            <dd id="host-overcommit">{format!("CPU {}:1 · memory {}:1 · disk {}:1", ratio(c.cpu_overcommit), ratio(c.memory_overcommit), ratio(c.disk_overcommit))}</dd>
            <dt>"Kept for the host"</dt><dd>{format!("{} MiB of memory", c.reserved_memory_mib)}</dd>
            <dt>"Disk space"</dt><dd>{format!("{} GiB free of {} GiB", c.disk_free_gib, c.disk_total_gib)}</dd>
            <dt>"Network"</dt>
            <dd id="host-network">{format!("{} · {} · {}", n.name, n.cidr, n.mode)}</dd>
            <dt>"NIC rate limits"</dt>
            <dd>{if n.bandwidth_limits { "enforced".to_owned() } else { format!("not enforced: {}", n.bandwidth_note.unwrap_or_default()) }}</dd>
        </dl>
    }
}
