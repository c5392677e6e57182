//! Backups: made by a job (libvirt's push-mode backup of a running server, `qemu-img convert`
//! of a stopped one), listed, read and deleted; scheduled ones pruned to their schedule's count.

use std::sync::Arc;

use nuage_shared::BackupState;
use nuage_shared::{Backup, Job, JobKind, Quota, Vm};

use super::{blocking_lost, mkdir, GIB};
use crate::app::jobs::{Busy, Handle};
use crate::app::turns::Turn;
use crate::app::{Actor, App, AppError};
use crate::db::{self, backups as q, Refusal};

impl App {
    /// `POST /vms/{id}/backups`: starts a backup job (202). The disk quota must have room for the
    /// server's disk while it runs.
    pub async fn start_backup(
        self: &Arc<Self>,
        actor: &Actor,
        vm_id: &str,
    ) -> Result<Job, AppError> {
        let (vm, turn) = self.settled_vm(actor, vm_id).await?;
        self.backup_job(vm, turn, false).await
    }

    /// Starts a backup of `vm`, whose turn the caller holds (it is released once the server is
    /// claimed).
    pub(super) async fn backup_job(
        self: &Arc<Self>,
        vm: Vm,
        turn: Turn,
        scheduled: bool,
    ) -> Result<Job, AppError> {
        let busy = self.claim(&vm.id, "A backup")?;
        drop(turn);
        let backup = Backup {
            id: uuid::Uuid::new_v4().to_string().into(),
            vm_id: vm.id.clone(),
            vm_name: vm.name.clone(),
            owner_id: vm.owner_id.clone(),
            created_at: db::now_rfc3339(),
            state: BackupState::Running,
            size_bytes: 0,
            quota_gib: vm.disk_gib,
            disk_gib: vm.disk_gib,
            scheduled,
            sha256: None,
        };
        let (row, host) = (backup.clone(), self.daemon_id.clone());
        let room = self.host_room().await;
        let more = Quota {
            vcpus: 0,
            memory_mib: 0,
            disk_gib: vm.disk_gib,
            vms: 0,
            snapshots: 0,
        };
        self.db
            .call(move |c| q::insert_backup_admitted(c, &row, &host, &more, &room))
            .await?
            .map_err(|r| match r {
                Refusal::NameTaken => AppError::Conflict("This backup exists already.".into()),
                other => other.into(),
            })?;
        let (job, handle) = self
            .job_begin(
                &vm.owner_id,
                JobKind::Backup,
                Some(vm.id.clone()),
                Some(backup.id.clone()),
            )
            .await?;
        let app = self.clone();
        let started = job.clone();
        tokio::spawn(async move {
            let _busy: Busy = busy;
            let outcome = app.run_backup(&vm, &backup, &job, &handle).await;
            if outcome.is_err() {
                let (id, file) = (backup.id.clone(), app.backup_file(&backup.id));
                let _ = app.db.call(move |c| q::delete_backup(c, &id)).await;
                let _ = tokio::fs::remove_file(file).await;
            }
            // Pruned before the job ends: once it says `succeeded`, the schedule's count holds.
            if outcome.is_ok() && scheduled {
                app.prune_scheduled(&vm.id).await;
            }
            app.job_end(job, outcome.as_ref().map(drop)).await;
        });
        Ok(started)
    }

    async fn run_backup(
        &self,
        vm: &Vm,
        backup: &Backup,
        job: &Job,
        handle: &Arc<Handle>,
    ) -> Result<(), AppError> {
        let out = self.work_dir(&job.id).join("archive.tar");
        let written = self.make_archive(vm, handle, out.clone()).await?;
        let (store, dest) = (self.backup_store(), self.backup_file(&backup.id));
        tokio::task::spawn_blocking(move || {
            mkdir(&store)?;
            std::fs::rename(&out, &dest)
                .map_err(|e| AppError::internal("cannot store the backup", e))
        })
        .await
        .map_err(blocking_lost)??;
        let id = backup.id.clone();
        let quota_gib = written.size.div_ceil(GIB).max(1);
        self.db
            .call(move |c| q::finish_backup(c, &id, written.size, quota_gib, &written.disk_sha256))
            .await?;
        Ok(())
    }

    /// Removes the oldest scheduled backups of a server beyond what its schedule keeps.
    async fn prune_scheduled(&self, vm_id: &str) {
        let key = vm_id.to_owned();
        let Ok(Some(schedule)) = self.db.call(move |c| q::schedule(c, &key)).await else {
            return;
        };
        let key = vm_id.to_owned();
        let Ok(list) = self.db.call(move |c| q::backups(c, None, Some(&key))).await else {
            return;
        };
        let scheduled: Vec<Backup> = list
            .into_iter()
            .filter(|b| b.scheduled && b.state == BackupState::Ready)
            .collect();
        for old in scheduled.iter().skip(schedule.keep as usize) {
            self.remove_backup(old).await;
        }
    }

    async fn remove_backup(&self, b: &Backup) {
        let (id, file) = (b.id.clone(), self.backup_file(&b.id));
        let _ = tokio::fs::remove_file(file).await;
        if let Err(e) = self.db.call(move |c| q::delete_backup(c, &id)).await {
            tracing::error!(backup = %b.id, error = %crate::app::chain(&e), "cannot delete a backup's record");
        }
    }

    /// A backup the actor may see: their own, or any for an admin.
    pub(in crate::app) async fn visible_backup(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<Backup, AppError> {
        let key = id.to_owned();
        match self.db.call(move |c| q::backup(c, &key)).await? {
            Some(b) if b.owner_id == actor.user_id || actor.is_admin() => Ok(b),
            _ => Err(AppError::NotFound("backup")),
        }
    }

    /// `GET /backups`: the caller's (an admin's: everyone's with `all`); `vm` narrows to one
    /// server.
    pub async fn list_backups(
        &self,
        actor: &Actor,
        all: bool,
        vm_id: Option<String>,
    ) -> Result<Vec<Backup>, AppError> {
        if all {
            actor.require_admin()?;
        }
        let owner = (!all).then(|| actor.user_id.clone());
        Ok(self
            .db
            .call(move |c| q::backups(c, owner.as_deref(), vm_id.as_deref()))
            .await?)
    }

    pub async fn get_backup(&self, actor: &Actor, id: &str) -> Result<Backup, AppError> {
        self.visible_backup(actor, id).await
    }

    /// `DELETE /backups/{bid}`: removes the archive and frees its quota.
    pub async fn delete_backup(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        let b = self.visible_backup(actor, id).await?;
        if b.state != BackupState::Ready {
            return Err(AppError::Conflict(
                "This backup is still being made; cancel its job instead.".into(),
            ));
        }
        self.remove_backup(&b).await;
        Ok(())
    }
}
