//! The server page's Snapshots and Backups tabs.
//!
//! Written small on purpose (the console's first load must stay under 300 KiB gzipped): each
//! list is rendered as one HTML string (every value escaped) and one delegated click handler per
//! panel reads `data-act`/`data-id` from the button clicked; every request goes through the one
//! [`api::call`]. Job progress arrives on `/api/v1/events` (the server page passes it in).

use leptos::prelude::*;
use leptos::task::spawn_local;
use nuage_shared::{Backup, BackupSchedule, CreateSnapshot, Job, JobKind, JobState, Snapshot, Vm};
use wasm_bindgen::JsCast;

use crate::api;
use crate::graphs::{fixed, human_bytes};
use crate::session::use_auth;

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn button(act: &str, id: &str, label: &str) -> String {
    format!(
        "<button class=\"secondary\" data-act=\"{act}\" data-id=\"{}\">{label}</button> ",
        esc(id)
    )
}

/// The snapshot list as HTML.
pub fn snapshots_html(list: &[Snapshot]) -> String {
    list.iter()
        .map(|s| {
            format!(
                "<li data-snapshot=\"{}\"><strong>{}</strong> <span class=\"muted\">{} · {}</span> {}{}</li>",
                esc(&s.name),
                esc(&s.name),
                esc(&s.created_at),
                if s.with_memory { "with memory" } else { "disk only" },
                button("revert", &s.id, "Revert"),
                button("delete", &s.id, "Delete")
            )
        })
        .collect()
}

/// The backup list as HTML.
pub fn backups_html(list: &[Backup]) -> String {
    list.iter()
        .map(|b| {
            format!(
                "<li data-backup=\"{}\"><strong>{}</strong> <span class=\"muted\">{}{}</span> {}{}{}</li>",
                esc(&b.id),
                esc(&b.created_at),
                human_bytes(b.size_bytes as f64),
                if b.scheduled { " · scheduled" } else { "" },
                button("restore", &b.id, "Restore"),
                button("restore-new", &b.id, "Restore as new"),
                button("delete", &b.id, "Delete")
            )
        })
        .collect()
}

/// The newest jobs as HTML: kind, state or percent, a bar, and Cancel while running.
pub fn jobs_html(jobs: &[Job]) -> String {
    jobs.iter()
        .rev()
        .take(3)
        .map(|j| {
            let pct = fixed(j.progress * 100.0, 0);
            let what = match j.state {
                JobState::Running => format!("{pct}%"),
                JobState::Succeeded => "done".into(),
                _ => esc(j.error.as_deref().unwrap_or(j.state.as_str())),
            };
            format!(
                "<li class=\"job\" data-state=\"{}\"><span>{}: {what}</span><div class=\"bar\" role=\"progressbar\" aria-valuemin=\"0\" aria-valuemax=\"100\" aria-valuenow=\"{pct}\"><div class=\"fill\" style=\"width: {pct}%\"></div></div>{}</li>",
                j.state.as_str(),
                // Not `to_lowercase()`: that pulls Unicode case tables (16 KiB) into the wasm.
                match j.kind {
                    JobKind::Backup => "backup",
                    JobKind::Restore => "restore",
                    JobKind::Export => "export",
                    JobKind::Import => "import",
                },
                if j.state == JobState::Running { button("cancel", &j.id, "Cancel") } else { String::new() }
            )
        })
        .collect()
}

/// The `data-act` and `data-id` of the button a click landed on.
pub(crate) fn clicked(ev: &leptos::ev::MouseEvent) -> Option<(String, String)> {
    let el = ev
        .target()?
        .dyn_into::<web_sys::Element>()
        .ok()?
        .closest("[data-act]")
        .ok()??;
    Some((el.get_attribute("data-act")?, el.get_attribute("data-id")?))
}

/// The value of the input with this id.
pub(crate) fn input(id: &str) -> String {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
        .map(|i| i.value())
        .unwrap_or_default()
}

/// The value of the `<select>` with this id.
pub(crate) fn selected(id: &str) -> String {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into::<web_sys::HtmlSelectElement>().ok())
        .map(|s| s.value())
        .unwrap_or_default()
}

/// Runs a request; its failure goes to `error`, its answer to `done`. Not generic (one copy in
/// the wasm): callers box their continuation.
fn request(
    error: RwSignal<Option<String>>,
    method: &'static str,
    path: String,
    body: Option<String>,
    done: Box<dyn FnOnce(String)>,
) {
    let auth = use_auth();
    let token = auth.token();
    error.set(None);
    spawn_local(async move {
        match api::call(&token, method, &path, body).await {
            Ok(text) => done(text),
            Err(e) => error.set(Some(auth.explain(e))),
        }
    });
}

fn parse<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

fn error_html(error: Option<String>) -> String {
    error
        .map(|e| format!("<p class=\"error-text\" role=\"alert\">{}</p>", esc(&e)))
        .unwrap_or_default()
}

#[component]
pub fn SnapshotsPanel(vm_id: String, vm: RwSignal<Option<Vm>>) -> impl IntoView {
    let list = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let base = format!("/vms/{vm_id}/snapshots");
    let reload = {
        let base = base.clone();
        move || {
            request(
                error,
                "GET",
                base.clone(),
                None,
                Box::new(move |t| list.set(snapshots_html(&parse::<Vec<Snapshot>>(&t)))),
            )
        }
    };
    reload();
    let click = {
        let (base, reload) = (base.clone(), reload.clone());
        move |ev: leptos::ev::MouseEvent| {
            let Some((act, id)) = clicked(&ev) else {
                return;
            };
            let reload = reload.clone();
            match act.as_str() {
                "revert" => request(
                    error,
                    "POST",
                    format!("{base}/{id}/revert"),
                    None,
                    Box::new(move |t| {
                        if let Ok(v) = serde_json::from_str::<Vm>(&t) {
                            vm.set(Some(v));
                        }
                        reload();
                    }),
                ),
                "delete" => request(
                    error,
                    "DELETE",
                    format!("{base}/{id}"),
                    None,
                    Box::new(move |_| reload()),
                ),
                _ => {}
            }
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = serde_json::to_string(&CreateSnapshot {
            name: input("snapshot-name"),
        })
        .ok();
        let reload = reload.clone();
        request(
            error,
            "POST",
            base.clone(),
            body,
            Box::new(move |_| reload()),
        );
    };
    let html = move || {
        format!(
            "<form class=\"row\"><label>Name<input id=\"snapshot-name\"></label>\
             <button type=\"submit\" id=\"take-snapshot\">Take a snapshot</button></form>\
             <p class=\"muted\">A running server's snapshot keeps its memory too: going back \
             resumes it where it was.</p>{}<ul class=\"plain\" id=\"snapshot-list\">{}</ul>",
            error_html(error.get()),
            list.get()
        )
    };
    view! { <section class="card" id="snapshots" role="tabpanel" inner_html=html on:click=click on:submit=submit></section> }
}

#[component]
pub fn BackupsPanel(vm_id: String, jobs: RwSignal<Vec<Job>>) -> impl IntoView {
    let list = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let schedule = RwSignal::new(None::<BackupSchedule>);
    let reload = {
        let path = format!("/backups?vm={vm_id}");
        move || {
            request(
                error,
                "GET",
                path.clone(),
                None,
                Box::new(move |t| list.set(backups_html(&parse::<Vec<Backup>>(&t)))),
            )
        }
    };
    reload();
    let sched_path = format!("/vms/{vm_id}/backup-schedule");
    {
        let token = use_auth().token();
        let path = sched_path.clone();
        spawn_local(async move {
            if let Ok(t) = api::call(&token, "GET", &path, None).await {
                schedule.set(serde_json::from_str::<BackupSchedule>(&t).ok());
            }
        });
    }
    // A job that ends changes the list.
    Effect::new({
        let reload = reload.clone();
        move |prev: Option<usize>| {
            let ended = jobs.with(|j| j.iter().filter(|j| j.state != JobState::Running).count());
            if prev.is_some_and(|p| p != ended) {
                reload();
            }
            ended
        }
    });
    let job_started = move |t: String| {
        if let Ok(job) = serde_json::from_str::<Job>(&t) {
            jobs.update(|j| upsert(j, job));
        }
    };
    let backup_now = format!("/vms/{vm_id}/backups");
    let click = move |ev: leptos::ev::MouseEvent| {
        let Some((act, id)) = clicked(&ev) else {
            return;
        };
        let reload = reload.clone();
        match act.as_str() {
            "backup-now" => request(
                error,
                "POST",
                backup_now.clone(),
                None,
                Box::new(job_started),
            ),
            "restore" | "restore-new" => {
                let body = format!("{{\"as_new\":{}}}", act == "restore-new");
                request(
                    error,
                    "POST",
                    format!("/backups/{id}/restore"),
                    Some(body),
                    Box::new(job_started),
                )
            }
            "cancel" => request(
                error,
                "POST",
                format!("/jobs/{id}/cancel"),
                None,
                Box::new(|_| {}),
            ),
            "delete" => request(
                error,
                "DELETE",
                format!("/backups/{id}"),
                None,
                Box::new(move |_| reload()),
            ),
            _ => {}
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(keep) = input("schedule-keep").trim().parse::<u32>() else {
            error.set(Some("Keep is a number of backups, 1 to 30.".into()));
            return;
        };
        let req = BackupSchedule {
            time: input("schedule-time"),
            keep,
            next_run: None,
        };
        request(
            error,
            "PUT",
            sched_path.clone(),
            serde_json::to_string(&req).ok(),
            Box::new(move |t| schedule.set(serde_json::from_str(&t).ok())),
        );
    };
    let html = move || {
        let s = schedule.get();
        let (time, keep) = s
            .as_ref()
            .map_or(("03:00".into(), 7), |s| (esc(&s.time), s.keep));
        format!(
            "<p class=\"muted\">Backups count against your disk quota (each archive, rounded up to \
             whole GiB). They outlive the server: restore one as a new server.</p>{}\
             <ul class=\"plain\" id=\"backup-list\">{}</ul>\
             <form class=\"row\" id=\"schedule-form\"><label>Daily at (UTC)<input id=\"schedule-time\" value=\"{time}\"></label>\
             <label>Keep<input id=\"schedule-keep\" value=\"{keep}\"></label>\
             <button type=\"submit\" class=\"secondary\">Save schedule</button></form>{}",
            error_html(error.get()),
            list.get(),
            s.and_then(|s| s.next_run)
                .map(|n| format!("<p class=\"muted\" id=\"next-backup\">Next scheduled backup: {}</p>", esc(&n)))
                .unwrap_or_default()
        )
    };
    view! {
        <section class="card" id="backups" role="tabpanel" on:click=click on:submit=submit>
            <button id="backup-now" data-act="backup-now" data-id="">"Back up now"</button>
            <ul class="plain" id="job-list" inner_html=move || jobs.with(|j| jobs_html(j))></ul>
            <div inner_html=html></div>
        </section>
    }
}

/// Adds or replaces a job in the list.
pub fn upsert(jobs: &mut Vec<Job>, job: Job) {
    match jobs.iter_mut().find(|j| j.id == job.id) {
        Some(j) => *j = job,
        None => jobs.push(job),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuage_shared::JobKind;

    fn job(state: JobState, progress: f64, error: Option<&str>) -> Job {
        Job {
            id: "j\"1".into(),
            kind: JobKind::Backup,
            state,
            progress,
            error: error.map(Into::into),
            owner_id: "u".into(),
            vm_id: Some("v".into()),
            backup_id: None,
            created_at: "t".into(),
            finished_at: None,
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn lists_escape_every_value() {
        let s = Snapshot {
            id: "<id>".into(),
            vm_id: "v".into(),
            name: "a&b".into(),
            created_at: "<script>".into(),
            with_memory: true,
        };
        let html = snapshots_html(&[s]);
        assert!(
            html.contains("a&amp;b") && html.contains("&lt;script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("data-id=\"&lt;id&gt;\"") && !html.contains("<script>"),
            "{html}"
        );
        assert!(html.contains("with memory"));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn jobs_show_percent_then_outcome_and_cancel_only_while_running() {
        let running = jobs_html(&[job(JobState::Running, 0.425, None)]);
        assert!(
            running.contains("backup: 43%") && running.contains("width: 43%"),
            "{running}"
        );
        assert!(
            running.contains("data-act=\"cancel\"") && running.contains("j&quot;1"),
            "{running}"
        );
        let failed = jobs_html(&[job(JobState::Failed, 0.2, Some("Disk <full>"))]);
        assert!(
            failed.contains("backup: Disk &lt;full&gt;") && !failed.contains("cancel"),
            "{failed}"
        );
        let done = jobs_html(&[job(JobState::Succeeded, 1.0, None)]);
        assert!(done.contains("backup: done"), "{done}");
    }
}
