//! My servers: quota bars and the list, kept live by `/api/v1/events`.

use crate::route::A;
use leptos::prelude::*;
use leptos::task::spawn_local;
use nuage_shared::{Event, Me, Vm};

use crate::api;
use crate::components::{QuotaBar, StateBadge};
use crate::events::{apply, Applied, EventStream};
use crate::session::use_auth;

#[component]
pub fn ServersPage() -> impl IntoView {
    let auth = use_auth();
    let token = auth.token();
    let vms = RwSignal::new(None::<Vec<Vm>>);
    let me = RwSignal::new(None::<Me>);
    let image_names = RwSignal::new(std::collections::HashMap::<String, String>::new());
    let error = RwSignal::new(None::<String>);

    let reload = {
        let token = token.clone();
        move || {
            let token = token.clone();
            spawn_local(async move {
                match (
                    api::vms(&token).await,
                    api::me(&token).await,
                    api::images(&token).await,
                ) {
                    (Ok(list), Ok(m), Ok(images)) => {
                        image_names.set(
                            images
                                .into_iter()
                                .map(|i| (i.id.into_string(), i.name))
                                .collect(),
                        );
                        vms.set(Some(list));
                        me.set(Some(m));
                    }
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                        error.set(Some(auth.explain(e)))
                    }
                }
            });
        }
    };
    reload();
    let stream = EventStream::open(&token, {
        let reload = reload.clone();
        move |ev: Event| {
            let mut again = false;
            vms.update(|list| {
                if let Some(list) = list {
                    again = apply(list, &ev) == Applied::Reload;
                }
            });
            // Sizes changed: the usage bars follow.
            if again || matches!(ev, Event::VmUpdated { .. } | Event::VmDeleted { .. }) {
                reload();
            }
        }
    });
    // The socket lives as long as the page.
    StoredValue::new_local(stream);

    view! {
        {move || error.get().map(|e| view! { <p class="error-text card" role="alert">{e}</p> })}
        <section class="card" id="quota">
            <h2>"Your quota"</h2>
            {move || match me.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(m) => view! {
                    <div class="quotas">
                        <QuotaBar label="vCPUs" used=m.usage.vcpus.into() limit=m.quota.vcpus.into() unit=""/>
                        <QuotaBar label="Memory" used=m.usage.memory_mib limit=m.quota.memory_mib unit=" MiB"/>
                        <QuotaBar label="Disk" used=m.usage.disk_gib limit=m.quota.disk_gib unit=" GiB"/>
                        <QuotaBar label="Servers" used=m.usage.vms.into() limit=m.quota.vms.into() unit=""/>
                        <QuotaBar label="Snapshots" used=m.usage.snapshots.into() limit=m.quota.snapshots.into() unit=""/>
                    </div>
                }.into_any(),
            }}
        </section>
        <section class="card" id="servers">
            <div class="card-head">
                <h2>"My servers"</h2>
                <A href="/servers/new".to_owned() class="button" id="new-server">"Create a server"</A>
            </div>
            {move || match vms.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(list) if list.is_empty() => view! {
                    <p class="muted" id="no-servers">"You have no servers yet."</p>
                }.into_any(),
                Some(list) => view! {
                    <table class="servers">
                        <thead><tr><th>"Name"</th><th>"State"</th><th>"Size"</th><th>"Image"</th><th>"Addresses"</th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|vm| {
                                let (name, href) = (vm.name.clone(), format!("/servers/{}", vm.id));
                                view! {
                                <tr data-server=vm.name.clone()>
                                    <td><A href=href>{name}</A></td>
                                    <td><StateBadge state=vm.state/></td>
                                    <td>{format!("{} vCPU · {} MiB · {} GiB", vm.vcpus, vm.memory_mib, vm.disk_gib)}</td>
                                    <td>{image_names.with(|n| n.get(vm.image_id.as_str()).cloned().unwrap_or_else(|| "—".into()))}</td>
                                    <td class="muted">{if vm.ip_addresses.is_empty() { "—".to_owned() } else { vm.ip_addresses.join(", ") }}</td>
                                </tr>
                            }}).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            }}
        </section>
    }
}
