//! Exports: `GET /vms/{id}/export` streams a portable archive of a server (or one of its stored
//! backups). A fresh archive is made by an export job that runs on its own task, so that a
//! client who goes away cannot leave it half-done: until the archive is handed over, the
//! request's going away cancels the job; once it streams, the job lasts as long as the download
//! and ends when the last byte is sent (succeeded) or the download stops (cancelled). The job
//! charges the archive to its owner's disk quota (the server's disk size) while the archive
//! exists, and a server has one export at a time (a unique index on running export jobs).
//! The HTTP layer's socket timeout ends a download nobody reads.

use std::sync::Arc;

use nuage_shared::BackupState;
use nuage_shared::{Job, JobKind};

use super::blocking_lost;
use crate::app::jobs::Handle;
use crate::app::{Actor, App, AppError};

/// An archive ready to stream: open and already unlinked (nothing is left behind whatever
/// happens to the download).
pub struct Export {
    pub file: std::fs::File,
    pub size: u64,
    /// The download's file name.
    pub name: String,
    /// For a fresh archive: its job, ended when this is dropped.
    pub guard: Option<ExportGuard>,
}

/// The export job of a streaming archive. Report bytes with [`ExportGuard::sent`]; dropped, it
/// ends the job: succeeded when every byte was sent, cancelled otherwise.
pub struct ExportGuard {
    app: Arc<App>,
    job: Option<Job>,
    handle: Arc<Handle>,
    sent: u64,
    size: u64,
}

impl ExportGuard {
    /// `n` more bytes went to the client.
    pub fn sent(&mut self, n: u64) {
        self.sent += n;
        if self.size > 0 {
            // The archive was made in the first 90%; the download is the rest.
            self.handle
                .set(0.9 + 0.1 * self.sent as f64 / self.size as f64);
        }
    }
}

impl Drop for ExportGuard {
    fn drop(&mut self) {
        let Some(job) = self.job.take() else { return };
        let complete = self.sent >= self.size;
        if !complete {
            self.handle
                .cancel
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let app = self.app.clone();
        tokio::spawn(async move {
            let stopped = AppError::Conflict("The download stopped before its end.".into());
            app.job_end(job, if complete { Ok(()) } else { Err(&stopped) })
                .await;
        });
    }
}

/// Whether the request waiting for an archive went away, and the job to cancel then (once the
/// export's task has one).
#[derive(Default)]
struct Abandon {
    gone: std::sync::atomic::AtomicBool,
    job: std::sync::Mutex<Option<Arc<Handle>>>,
}

impl Abandon {
    /// The export's task follows `handle` from now on; cancelled at once if the request is gone.
    fn follow(&self, handle: &Arc<Handle>) {
        if let Ok(mut job) = self.job.lock() {
            *job = Some(handle.clone());
        }
        if self.gone.load(std::sync::atomic::Ordering::SeqCst) {
            handle
                .cancel
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Marks the request gone when dropped, unless disarmed, cancelling its job.
struct CancelOnDrop(Option<Arc<Abandon>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            a.gone.store(true, std::sync::atomic::Ordering::SeqCst);
            if let Some(h) = a.job.lock().ok().and_then(|j| j.clone()) {
                h.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
}

impl App {
    /// `GET /vms/{id}/export`. With `backup`, that stored backup of the server; else a fresh
    /// archive, made by an export job.
    pub async fn export_vm(
        self: &Arc<Self>,
        actor: &Actor,
        vm_id: &str,
        backup: Option<String>,
    ) -> Result<Export, AppError> {
        if let Some(bid) = backup {
            let b = self.visible_backup(actor, &bid).await?;
            let vm = self.visible_vm(actor, vm_id).await?;
            if b.vm_id != vm.id || b.state != BackupState::Ready {
                return Err(AppError::NotFound("backup"));
            }
            let file = self.backup_file(&b.id);
            let f = tokio::task::spawn_blocking(move || std::fs::File::open(file))
                .await
                .map_err(blocking_lost)?
                .map_err(|e| AppError::internal("cannot open the backup", e))?;
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            return Ok(Export {
                file: f,
                size,
                name: format!("{}-{}.nuage.tar", b.vm_name, &b.id[..8]),
                guard: None,
            });
        }
        // A fresh archive is a job that holds the server and the disk quota: no read token's.
        if actor.scope == nuage_shared::TokenScope::Read {
            return Err(AppError::Forbidden(
                "This API token is read-only: it may download an existing backup only.",
            ));
        }
        let (vm, turn) = self.settled_vm(actor, vm_id).await?;
        let busy = self.claim(&vm.id, "An export")?;
        drop(turn);
        // Everything from here runs on its own task, so that the request's going away at any
        // point leaves no job behind: only this request's waiting is cancelled.
        let abandon = Arc::new(Abandon::default());
        let mut cancel_on_drop = CancelOnDrop(Some(abandon.clone()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let app = self.clone();
        tokio::spawn(async move {
            let _ = tx.send(app.export_job(vm, busy, &abandon).await);
        });
        let export = rx
            .await
            .map_err(|e| AppError::internal("the export was lost", e))?;
        cancel_on_drop.0 = None;
        export
    }

    /// The export job: admitted and recorded, the archive made (the server busy meanwhile) and
    /// opened; dropping the returned export ends the job.
    async fn export_job(
        self: &Arc<Self>,
        vm: nuage_shared::Vm,
        busy: crate::app::jobs::Busy,
        abandon: &Abandon,
    ) -> Result<Export, AppError> {
        // The job, one per server, charged to the owner's disk quota, in one transaction.
        let job = Self::job_new(&vm.owner_id, JobKind::Export, Some(vm.id.clone()), None);
        let (job, handle) = self
            .job_begin_charged(
                job,
                vm.disk_gib,
                "An export of this server is in progress already.",
            )
            .await?;
        abandon.follow(&handle);
        let out = self.work_dir(&job.id).join("archive.tar");
        let made = {
            let _busy = busy;
            self.make_archive(&vm, &handle, out.clone()).await
        };
        let opened = match made {
            Ok(_) => tokio::task::spawn_blocking(move || {
                let f = std::fs::File::open(&out)?;
                std::fs::remove_file(&out)?;
                Ok::<_, std::io::Error>(f)
            })
            .await
            .map_err(blocking_lost)
            .and_then(|r| r.map_err(|e| AppError::internal("cannot open the archive", e))),
            Err(e) => Err(e),
        };
        let file = match opened {
            Ok(file) if !handle.cancelled() => file,
            Ok(_) => {
                let e = AppError::Conflict("Cancelled.".into());
                self.job_end(job, Err(&e)).await;
                return Err(e);
            }
            Err(e) => {
                self.job_end(job, Err(&e)).await;
                return Err(e);
            }
        };
        handle.set(0.9);
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        // Nobody waits any more: dropping the export ends its job (cancelled).
        Ok(Export {
            file,
            size,
            name: format!("{}.nuage.tar", vm.name),
            guard: Some(ExportGuard {
                app: self.clone(),
                job: Some(job),
                handle,
                sent: 0,
                size,
            }),
        })
    }
}
