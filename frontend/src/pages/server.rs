//! One server: its state (live), the actions that apply now, resize, delete.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map};
use leptos_router::NavigateOptions;
use nuage_shared::{Event, UpdateVm, Vm, VmAction};

use crate::api;
use crate::components::StateBadge;
use crate::console::ConsoleView;
use crate::events::EventStream;
use crate::session::use_auth;

#[component]
pub fn ServerPage() -> impl IntoView {
    let auth = use_auth();
    let token = auth.token();
    let id = use_params_map()
        .get_untracked()
        .get("id")
        .unwrap_or_default();
    let vm = RwSignal::new(None::<Vm>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<&'static str>);
    let confirm = RwSignal::new(false);
    let navigate = use_navigate();
    {
        let (token, id) = (token.clone(), id.clone());
        spawn_local(async move {
            match api::vm(&token, &id).await {
                Ok(v) => vm.set(Some(v)),
                Err(e) => error.set(Some(auth.explain(e))),
            }
        });
    }
    let stream = EventStream::open(&token, {
        let id = id.clone();
        move |ev: Event| match ev {
            Event::VmState { vm_id, state, .. } if vm_id == id => vm.update(|v| {
                if let Some(v) = v {
                    v.state = state;
                }
            }),
            Event::VmUpdated { vm: updated } if updated.id == id => vm.set(Some(*updated)),
            Event::VmDeleted { vm_id } if vm_id == id => vm.set(None),
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
            let (token, id, navigate) = (token.clone(), id.clone(), navigate.clone());
            busy.set(Some("delete"));
            spawn_local(async move {
                match api::delete_vm(&token, &id).await {
                    Ok(()) => navigate("/", NavigateOptions::default()),
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
                        {v.pending.map(|p| view! {
                            <dt>"At next boot"</dt><dd id="server-pending">{format!("{} vCPU · {} MiB", p.vcpus, p.memory_mib)}</dd>
                        })}
                        <dt>"Hostname"</dt><dd>{v.hostname.clone()}</dd>
                        <dt>"Created"</dt><dd>{v.created_at.clone()}</dd>
                        <dt>"Id"</dt><dd class="muted">{v.id.clone()}</dd>
                    </dl>
                    <div class="actions">{actions}</div>
                </section>
            }
        })}
        {move || {
            let (resize, delete, console_id) = (resize.clone(), delete.clone(), console_id.clone());
            vm.get().is_some().then(move || view! {
            <section class="card" id="console">
                <h3>"Console"</h3>
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
            <form class="card" id="resize-form" on:submit=resize>
                <h3>"Resize"</h3>
                <div class="row">
                    <label>"vCPUs"<input id="resize-vcpus" prop:value=move || sizes.get().0 on:input=move |ev| sizes.update(|s| s.0 = event_target_value(&ev))/></label>
                    <label>"Memory (MiB)"<input id="resize-memory" prop:value=move || sizes.get().1 on:input=move |ev| sizes.update(|s| s.1 = event_target_value(&ev))/></label>
                    <label>"Disk (GiB, grows only)"<input id="resize-disk" prop:value=move || sizes.get().2 on:input=move |ev| sizes.update(|s| s.2 = event_target_value(&ev))/></label>
                </div>
                <button type="submit" class="secondary" id="resize" disabled=move || busy.get().is_some()>"Resize"</button>
            </form>
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
