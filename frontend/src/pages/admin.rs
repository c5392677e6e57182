//! Administration: images and the audit log (users: `users.rs`).

use leptos::prelude::*;
use leptos::task::spawn_local;
use nuage_shared::{AuditEntry, Image, ImportImage};

use super::backups::esc;
use crate::api;
use crate::session::use_auth;

#[component]
pub fn ImagesPage() -> impl IntoView {
    let auth = use_auth();
    let images = RwSignal::new(None::<Vec<Image>>);
    let error = RwSignal::new(None::<String>);
    let load = move || {
        let token = auth.token();
        spawn_local(async move {
            match api::images(&token).await {
                Ok(list) => images.set(Some(list)),
                Err(e) => error.set(Some(auth.explain(e))),
            }
        });
    };
    load();
    let (name, path, os) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let busy = RwSignal::new(false);
    let import = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(None);
        busy.set(true);
        let os_label = os.get_untracked();
        let req = ImportImage {
            name: name.get_untracked(),
            path: path.get_untracked(),
            os: (!os_label.is_empty()).then_some(os_label),
        };
        let token = auth.token();
        spawn_local(async move {
            match api::import_image(&token, &req).await {
                Ok(_) => {
                    name.set(String::new());
                    path.set(String::new());
                    load();
                }
                Err(e) => error.set(Some(auth.explain(e))),
            }
            busy.set(false);
        });
    };
    // Upload from this computer, with a progress bar.
    let (up_name, up_os) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let file_input = NodeRef::<leptos::html::Input>::new();
    let sent = RwSignal::new(None::<f64>);
    let upload = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(None);
        let Some(file) = file_input
            .get_untracked()
            .and_then(|i| i.files())
            .and_then(|f| f.get(0))
        else {
            error.set(Some("Choose an image file first.".into()));
            return;
        };
        let mut image_name = up_name.get_untracked();
        if image_name.trim().is_empty() {
            // The file's name without its extension.
            let f = file.name();
            image_name = f
                .rsplit_once('.')
                .map_or(f.clone(), |(stem, _)| stem.to_owned());
        }
        let os_label = up_os.get_untracked();
        let token = auth.token();
        sent.set(Some(0.0));
        spawn_local(async move {
            let os = (!os_label.is_empty()).then_some(os_label.as_str());
            match api::upload_image(&token, &image_name, os, &file, move |f| sent.set(Some(f)))
                .await
            {
                Ok(_) => {
                    up_name.set(String::new());
                    if let Some(input) = file_input.get_untracked() {
                        input.set_value("");
                    }
                    load();
                }
                Err(e) => error.set(Some(auth.explain(e))),
            }
            sent.set(None);
        });
    };
    view! {
        {move || error.get().map(|e| view! { <p class="error-text card" role="alert" id="admin-error">{e}</p> })}
        <form class="card create" id="upload-form" on:submit=upload>
            <h2>"Upload an image"</h2>
            <p class="muted">"A qcow2 or raw disk image from this computer; the daemon checks it before it is listed."</p>
            <div class="row">
                <label>"File"<input type="file" id="upload-file" node_ref=file_input/></label>
                <label>"Name (default: the file's)"<input id="upload-name" prop:value=up_name on:input=move |ev| up_name.set(event_target_value(&ev))/></label>
                <label>"OS label"<input id="upload-os" prop:value=up_os on:input=move |ev| up_os.set(event_target_value(&ev))/></label>
            </div>
            {move || sent.get().map(|f| {
                // A fraction in 0..=1; a float-to-int `as` saturates.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let pct = (f * 100.0) as u32;
                view! {
                    <div class="bar" role="progressbar" id="upload-progress" aria-label="Upload"
                        aria-valuemin="0" aria-valuemax="100" aria-valuenow=pct>
                        <div class="fill" style=format!("width: {pct}%")></div>
                    </div>
                    <p class="muted" id="upload-status">{if pct >= 100 { "Checking the image…".to_owned() } else { format!("Sent {pct}%") }}</p>
                }
            })}
            <button type="submit" id="upload-image" disabled=move || sent.get().is_some()>"Upload"</button>
        </form>
        <form class="card create" id="image-form" on:submit=import>
            <h2>"Import an image"</h2>
            <p class="muted">"A qcow2 or raw file inside one of the daemon's import directories (<data-dir>/import by default)."</p>
            <div class="row">
                <label>"Name"<input id="image-name" prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/></label>
                <label>"OS label"<input id="image-os" prop:value=os on:input=move |ev| os.set(event_target_value(&ev))/></label>
            </div>
            <label>"Path on the host"<input id="image-path" prop:value=path on:input=move |ev| path.set(event_target_value(&ev))/></label>
            <button type="submit" id="import-image" disabled=move || busy.get()>{move || if busy.get() { "Importing…" } else { "Import" }}</button>
        </form>
        <section class="card" id="images">
            <h2>"Images"</h2>
            {move || images.get().map(|list| view! {
                <table class="servers">
                    <thead><tr><th>"Name"</th><th>"Format"</th><th>"Size"</th><th>"OS"</th><th></th></tr></thead>
                    <tbody>
                        {list.into_iter().map(|i| {
                            let id = i.id.clone();
                            let del = move |_| {
                                let (token, id) = (auth.token(), id.clone());
                                spawn_local(async move {
                                    match api::delete_image(&token, &id).await {
                                        Ok(()) => load(),
                                        Err(e) => error.set(Some(auth.explain(e))),
                                    }
                                });
                            };
                            view! {
                                <tr data-image=i.name.clone()>
                                    <td>{i.name.clone()}</td><td>{i.format.clone()}</td>
                                    <td>{format!("{} GiB", crate::graphs::fixed(i.virtual_size_bytes as f64 / (1u64 << 30) as f64, 1))}</td>
                                    <td>{i.os.clone().unwrap_or_default()}</td>
                                    <td><button class="secondary" on:click=del>"Delete"</button></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}

/// The audit log as an HTML table (every value escaped; a string, not a view: smaller wasm).
pub fn audit_html(list: &[AuditEntry]) -> String {
    let rows: String = list
        .iter()
        .map(|e| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}{}</td><td class=\"muted\">{}</td><td>{} {}</td></tr>",
                esc(&e.at),
                esc(e.username.as_deref().unwrap_or_default()),
                esc(&e.action),
                e.resource_id
                    .as_deref()
                    .map(|r| format!(" ({})", esc(r)))
                    .unwrap_or_default(),
                esc(e.client.as_deref().unwrap_or_default()),
                esc(&e.outcome),
                e.status.map(|s| s.to_string()).unwrap_or_default()
            )
        })
        .collect();
    format!(
        "<table class=\"servers\"><thead><tr><th>When</th><th>Who</th><th>What</th><th>From</th>\
         <th>Outcome</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let auth = use_auth();
    let entries = RwSignal::new(None::<Vec<AuditEntry>>);
    let error = RwSignal::new(None::<String>);
    let (user, vm) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let load = move || {
        let token = auth.token();
        let (u, v) = (user.get_untracked(), vm.get_untracked());
        spawn_local(async move {
            match api::audit(&token, &u, &v).await {
                Ok(list) => entries.set(Some(list)),
                Err(e) => error.set(Some(auth.explain(e))),
            }
        });
    };
    load();
    view! {
        {move || error.get().map(|e| view! { <p class="error-text card" role="alert">{e}</p> })}
        <form class="card" id="audit-filter" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); load(); }>
            <h2>"Audit log"</h2>
            <div class="row">
                <label>"User (name or id)"<input id="audit-user" prop:value=user on:input=move |ev| user.set(event_target_value(&ev))/></label>
                <label>"Server id"<input id="audit-vm" prop:value=vm on:input=move |ev| vm.set(event_target_value(&ev))/></label>
            </div>
            <button type="submit" class="secondary">"Filter"</button>
        </form>
        <section class="card" id="audit" inner_html=move || entries.with(|l| l.as_deref().map(audit_html).unwrap_or_default())>
        </section>
    }
}
