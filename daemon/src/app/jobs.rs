//! Long work as jobs: backup, restore, export, import. A job is a row (what `GET /jobs/{id}`
//! reads, and what a restart finds) and, while it runs, a handle in memory holding its progress
//! and its cancel flag. Progress goes to `/api/v1/events` at most every 250 ms.
//!
//! A job works only inside its own folder `<data-dir>/work/<job-id>/` and moves its result into
//! place with a rename at the end; so a daemon killed mid-job leaves nothing but that folder, which
//! the next start removes (and marks the job failed).
//!
//! While a job works on a server, the server is *busy*: actions that would change its disk
//! (start, resize, delete, snapshots, another job) get 409, as Proxmox locks a VM during backup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nuage_shared::{Event, Job, JobKind, JobState};

use super::{Actor, App, AppError};
use crate::db::{self, Refusal};

/// A running job's live state.
#[derive(Default)]
pub struct Handle {
    pub cancel: AtomicBool,
    progress_bits: AtomicU64,
}

impl Handle {
    /// Progress 0..1.
    pub fn set(&self, p: f64) {
        self.progress_bits
            .store(p.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.progress_bits.load(Ordering::Relaxed))
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Running jobs and busy servers.
#[derive(Default)]
pub struct Jobs {
    running: Mutex<HashMap<nuage_shared::JobId, Arc<Handle>>>,
    busy: Mutex<HashMap<String, &'static str>>,
}

/// A server held busy; released when dropped.
pub struct Busy {
    app: Arc<App>,
    vm_id: String,
}

impl Drop for Busy {
    fn drop(&mut self) {
        lock(&self.app.jobs.busy).remove(&self.vm_id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl App {
    /// The job that holds the server busy ("A backup"), if one does. Ask it holding the
    /// server's turn: the lifecycle table decides with it (`turns.rs`).
    pub(super) fn busy_with(&self, vm_id: &str) -> Option<&'static str> {
        lock(&self.jobs.busy).get(vm_id).copied()
    }

    /// Marks the server busy for `what` (e.g. "A backup"), or 409 when it is already. Call it
    /// holding the server's turn, after checking its state (`turns.rs`).
    pub(super) fn claim(
        self: &Arc<Self>,
        vm_id: &str,
        what: &'static str,
    ) -> Result<Busy, AppError> {
        let mut busy = lock(&self.jobs.busy);
        if let Some(other) = busy.get(vm_id) {
            return Err(AppError::Conflict(
                super::lifecycle::Denied::Busy(other).sentence(),
            ));
        }
        busy.insert(vm_id.to_owned(), what);
        Ok(Busy {
            app: self.clone(),
            vm_id: vm_id.to_owned(),
        })
    }

    fn announce_job(&self, job: &Job) {
        let _ = self.events.send(super::OwnedEvent {
            owner_id: job.owner_id.clone(),
            event: Event::Job { job: job.clone() },
        });
    }

    /// Records and announces a new running job; its progress is published until it ends.
    pub(super) async fn job_begin(
        self: &Arc<Self>,
        owner_id: &str,
        kind: JobKind,
        vm_id: Option<nuage_shared::VmId>,
        backup_id: Option<nuage_shared::BackupId>,
    ) -> Result<(Job, Arc<Handle>), AppError> {
        let job = Self::job_new(owner_id, kind, vm_id, backup_id);
        let row = job.clone();
        self.db
            .call(move |c| db::backups::save_job(c, &row))
            .await?;
        let handle = self.job_track(&job);
        Ok((job, handle))
    }

    /// Records a running job that holds `gib` of its owner's disk quota until it ends, admitted
    /// (quota and host room) in the transaction that records it; `taken` is the refusal when a
    /// unique index says such a job runs already.
    pub(super) async fn job_begin_charged(
        self: &Arc<Self>,
        job: Job,
        gib: u64,
        taken: &'static str,
    ) -> Result<(Job, Arc<Handle>), AppError> {
        let room = self.host_room().await;
        let row = job.clone();
        self.db
            .call(move |c| db::backups::insert_job_charged(c, &row, gib, &room))
            .await?
            .map_err(|r| match r {
                Refusal::NameTaken => AppError::Conflict(taken.into()),
                other => other.into(),
            })?;
        let handle = self.job_track(&job);
        Ok((job, handle))
    }

    /// A new job record, `Running`, not yet saved.
    pub(super) fn job_new(
        owner_id: &str,
        kind: JobKind,
        vm_id: Option<nuage_shared::VmId>,
        backup_id: Option<nuage_shared::BackupId>,
    ) -> Job {
        Job {
            id: uuid::Uuid::new_v4().to_string().into(),
            kind,
            state: JobState::Running,
            progress: 0.0,
            error: None,
            owner_id: owner_id.into(),
            vm_id,
            backup_id,
            created_at: db::now_rfc3339(),
            finished_at: None,
        }
    }

    /// Starts following a job whose row is saved: its handle, and its progress on the events.
    pub(super) fn job_track(self: &Arc<Self>, job: &Job) -> Arc<Handle> {
        let handle = Arc::new(Handle::default());
        lock(&self.jobs.running).insert(job.id.clone(), handle.clone());
        self.announce_job(job);
        let (app, mut seen, id) = (self.clone(), job.clone(), job.id.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let Some(h) = lock(&app.jobs.running).get(&id).cloned() else {
                    return;
                };
                let p = h.get();
                if (p - seen.progress).abs() >= 0.005 {
                    seen.progress = p;
                    // Progress only: a save racing the job's end must not make it run again.
                    let (id, progress) = (seen.id.clone(), p);
                    let _ = app
                        .db
                        .call(move |c| db::backups::set_job_progress(c, &id, progress))
                        .await;
                    app.announce_job(&seen);
                }
            }
        });
        handle
    }

    /// Ends a job: succeeded, cancelled or failed (with the user's sentence), recorded and
    /// announced; removes its work folder.
    pub(super) async fn job_end(&self, mut job: Job, outcome: Result<(), &AppError>) -> Job {
        let handle = lock(&self.jobs.running).remove(&job.id);
        let cancelled = handle.as_ref().is_some_and(|h| h.cancelled());
        job.finished_at = Some(db::now_rfc3339());
        match outcome {
            Ok(()) => {
                job.state = JobState::Succeeded;
                job.progress = 1.0;
            }
            Err(_) if cancelled => {
                job.state = JobState::Cancelled;
                job.error = Some("Cancelled.".into());
            }
            Err(e) => {
                tracing::warn!(job = %job.id, kind = ?job.kind, error = %super::chain(e), "job failed");
                job.state = JobState::Failed;
                job.progress = handle.map_or(job.progress, |h| h.get());
                job.error = Some(match e {
                    AppError::Internal { context, .. } => format!("Failed: {context}."),
                    other => other.to_string(),
                });
            }
        }
        let dir = self.work_dir(&job.id);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        let row = job.clone();
        if let Err(e) = self.db.call(move |c| db::backups::save_job(c, &row)).await {
            tracing::error!(job = %job.id, error = %super::chain(&e), "cannot record a job's end");
        }
        self.announce_job(&job);
        job
    }

    /// A job the actor may see: their own, or any for an admin.
    async fn visible_job(&self, actor: &Actor, id: &str) -> Result<Job, AppError> {
        let key = id.to_owned();
        match self.db.call(move |c| db::backups::job(c, &key)).await? {
            Some(mut j) if j.owner_id == actor.user_id || actor.is_admin() => {
                if let Some(h) = lock(&self.jobs.running).get(&j.id) {
                    j.progress = h.get();
                }
                Ok(j)
            }
            _ => Err(AppError::NotFound("job")),
        }
    }

    /// `GET /jobs/{id}`.
    pub async fn get_job(&self, actor: &Actor, id: &str) -> Result<Job, AppError> {
        self.visible_job(actor, id).await
    }

    /// `GET /jobs`: the caller's newest jobs (an admin's: everyone's with `all`).
    pub async fn list_jobs(&self, actor: &Actor, all: bool) -> Result<Vec<Job>, AppError> {
        if all {
            actor.require_admin()?;
        }
        let owner = (!all).then(|| actor.user_id.clone());
        let mut jobs = self
            .db
            .call(move |c| db::backups::jobs(c, owner.as_deref()))
            .await?;
        let running = lock(&self.jobs.running);
        for j in &mut jobs {
            if let Some(h) = running.get(&j.id) {
                j.progress = h.get();
            }
        }
        Ok(jobs)
    }

    /// `POST /jobs/{id}/cancel`: asks a running job to stop; it ends `cancelled` shortly, its
    /// partial files removed.
    pub async fn cancel_job(&self, actor: &Actor, id: &str) -> Result<Job, AppError> {
        let job = self.visible_job(actor, id).await?;
        match lock(&self.jobs.running).get(&job.id) {
            Some(h) => h.cancel.store(true, Ordering::Relaxed),
            None => {
                return Err(AppError::Conflict(format!(
                    "This job has ended ({}).",
                    job.state.as_str()
                )))
            }
        }
        Ok(job)
    }
}

/// At start: jobs the previous daemon was running are failed, their work folders and half-made
/// backups removed, and libvirt backup jobs it left running on our domains cancelled. The
/// servers themselves were never touched by a job before its last step (a rename), so they are
/// intact.
pub(super) fn recover(
    db: &db::Db,
    hv: &dyn crate::hypervisor::Hypervisor,
    daemon_id: &str,
    data_dir: &std::path::Path,
) -> Result<(), AppError> {
    let (failed, partial) = db.call_blocking(|c| {
        let failed = db::backups::fail_interrupted_jobs(c, &db::now_rfc3339())?;
        let partial = db::backups::running_backups(c, daemon_id)?;
        for id in &partial {
            db::backups::delete_backup(c, id)?;
        }
        Ok((failed, partial))
    })?;
    let _ = std::fs::remove_dir_all(super::paths::work_root(data_dir));
    for id in &partial {
        let _ = std::fs::remove_file(super::paths::backup_file(data_dir, id));
    }
    for j in &failed {
        tracing::warn!(job = %j.id, kind = ?j.kind, "a job was interrupted by a restart; marked failed");
        if let Some(vm) = &j.vm_id {
            if let Err(e) = hv.abort_job(&super::paths::domain_name(vm)) {
                tracing::debug!(vm = %vm, error = %super::chain(&e), "no libvirt job to cancel");
            }
        }
    }
    Ok(())
}
