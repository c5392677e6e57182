//! Snapshots, backups (and their schedules), restore, and moving a server between hosts as a
//! portable archive (export/import).
//!
//! - A **snapshot** is internal to the server's qcow2 disk (libvirt's snapshot API): with the
//!   guest's memory when it runs (reverting resumes it where it was), disk-only when it is off.
//!   Each counts against the owner's `snapshots` quota.
//! - A **backup** is an [`archive`] in `<data-dir>/backups/`: the disk flattened (all of its
//!   backing chain) into a standalone qcow2, compressed, with a description and checksums. A
//!   running server is copied by libvirt's push-mode backup job, so the guest keeps running and
//!   the copy is the disk at one instant; a stopped one by `qemu-img convert` while it is held
//!   busy. **Backups count against the owner's disk quota**: while the job runs, the server's
//!   disk size is reserved (checked with the one admission function, in the transaction that
//!   records the backup); when it ends, the archive's size rounded up to whole GiB. A backup
//!   outlives its server: a deleted server can be restored as new. Deleting a backup frees it.
//! - **Export** streams an archive (a stored backup, or a fresh one); **import** reads one from
//!   the request body, verifies every checksum before it creates anything, then recreates the
//!   server (quota-checked) on this host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nuage_shared::{
    limits, validate_hostname, validate_vm_name, Backup, BackupSchedule, CreateSnapshot, Job,
    JobKind, LimitOverrides, Quota, RestoreBackup, Snapshot, Vm,
};
use serde::{Deserialize, Serialize};

use super::jobs::{Busy, Handle};
use super::lifecycle::{settled, Request};
use super::paths::domain_name;
use super::turns::Turn;
use super::vms::{cap_memory, DiskSource, SeedInput};
use super::{Actor, App, AppError};
use crate::archive::{self, ArchiveError};
use crate::db::{self, backups as q, vms, Refusal};
use crate::hypervisor::snapshot::BackupProgress;
use crate::hypervisor::{DomainRunState, HvError, UNLIMITED_MIB};
use crate::storage;

const GIB: u64 = 1 << 30;
/// The description's format name; a reader refuses others.
const FORMAT: &str = "nuage-vm/1";

/// A server as the archive describes it (`nuage-vm.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Description {
    pub format: String,
    pub name: String,
    pub hostname: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    /// The image it was made from, by name (an id means nothing on another host).
    pub image: Option<String>,
    pub owner_id: String,
    pub owner: String,
    pub source_vm_id: String,
    pub source_host: String,
    pub created_at: String,
    pub backed_up_at: String,
    #[serde(default)]
    pub limit_overrides: LimitOverrides,
}

fn archive_error(e: ArchiveError) -> AppError {
    match e {
        ArchiveError::Invalid(why) => AppError::Invalid(why),
        ArchiveError::Cancelled => AppError::Conflict("Cancelled.".into()),
        ArchiveError::NoRoom(why) => AppError::InsufficientCapacity(why),
        ArchiveError::Io { .. } => AppError::internal("archive input/output failed", e),
    }
}

pub(super) fn blocking_lost(e: tokio::task::JoinError) -> AppError {
    AppError::internal("a blocking task was lost", e)
}

fn mkdir(dir: &Path) -> Result<(), AppError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .map_err(|e| AppError::internal("cannot create a work folder", e))
}

/// The next time `HH:MM` (UTC) comes after `now`.
pub fn next_run(time: &str, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
    let (h, m) = time.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let at = time::Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()?;
    let today = now.replace_time(at);
    Some(if today > now {
        today
    } else {
        today + time::Duration::days(1)
    })
}

impl App {
    /// Records what the server's disk file holds on the host (snapshots included), which the
    /// disk quota counts when it exceeds the disk's size.
    pub async fn measure_disk(&self, vm_id: &str) {
        use std::os::unix::fs::MetadataExt;
        let disk = self.vm_dir(vm_id).join("disk.qcow2");
        let Ok(Ok(meta)) = tokio::task::spawn_blocking(move || std::fs::metadata(disk)).await
        else {
            return;
        };
        let held = (meta.blocks() * 512).div_ceil(GIB);
        let id = vm_id.to_owned();
        if let Err(e) = self.db.call(move |c| vms::set_held(c, &id, held)).await {
            tracing::warn!(vm = vm_id, error = %super::chain(&e), "cannot record a disk's size");
        }
    }

    /// A server in a settled state whose disk may be worked on (no job holds it), with its turn
    /// (`turns.rs`): hold it until the change is made or the server is claimed for a job.
    pub(super) async fn settled_vm(
        &self,
        actor: &Actor,
        vm_id: &str,
    ) -> Result<(Vm, Turn), AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        let (vm, turn, _) = self.take(&vm.id, Request::DiskWork).await?;
        Ok((vm, turn))
    }

    // ---- snapshots ----

    /// `GET /vms/{id}/snapshots`.
    pub async fn list_snapshots(
        &self,
        actor: &Actor,
        vm_id: &str,
    ) -> Result<Vec<Snapshot>, AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        Ok(self.db.call(move |c| q::snapshots(c, &vm.id)).await?)
    }

    async fn visible_snapshot(
        &self,
        actor: &Actor,
        vm_id: &str,
        sid: &str,
    ) -> Result<(Vm, Snapshot), AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        let (v, s) = (vm.id.clone(), sid.to_owned());
        let snap = self
            .db
            .call(move |c| q::snapshot(c, &v, &s))
            .await?
            .ok_or(AppError::NotFound("snapshot"))?;
        Ok((vm, snap))
    }

    /// `POST /vms/{id}/snapshots`: counted against the `snapshots` quota (checked and recorded in
    /// one transaction); with memory when the server runs.
    pub async fn create_snapshot(
        self: &Arc<Self>,
        actor: &Actor,
        vm_id: &str,
        req: CreateSnapshot,
    ) -> Result<Snapshot, AppError> {
        let (app, actor, id) = (self.clone(), actor.clone(), vm_id.to_owned());
        super::to_completion(async move { app.create_snapshot_steps(&actor, &id, req).await }).await
    }

    async fn create_snapshot_steps(
        &self,
        actor: &Actor,
        vm_id: &str,
        req: CreateSnapshot,
    ) -> Result<Snapshot, AppError> {
        validate_vm_name(&req.name).map_err(|m| {
            AppError::Invalid(
                m.replace("server", "snapshot")
                    .replace("Server", "Snapshot"),
            )
        })?;
        let (vm, _turn) = self.settled_vm(actor, vm_id).await?;
        let snap = Snapshot {
            id: uuid::Uuid::new_v4().to_string(),
            vm_id: vm.id.clone(),
            name: req.name.clone(),
            created_at: db::now_rfc3339(),
            with_memory: false,
        };
        let (row, owner) = (snap.clone(), vm.owner_id.clone());
        let room = self.host_room().await;
        let one = Quota {
            vcpus: 0,
            memory_mib: 0,
            disk_gib: 0,
            vms: 0,
            snapshots: 1,
        };
        self.db
            .call(move |c| q::insert_snapshot_admitted(c, &row, &owner, &one, &room))
            .await?
            .map_err(|r| match r {
                Refusal::NameTaken => AppError::Conflict(format!(
                    "This server has a snapshot named {} already.",
                    snap.name
                )),
                other => other.into(),
            })?;
        let (name, sid) = (domain_name(&vm.id), snap.id.clone());
        let (cap, simulated) = (vm.limits.memory_hard_limit_mib, self.simulated);
        let taken = self
            .hv_call(move |hv| {
                // The snapshot keeps the live definition, and reverting starts QEMU from it: a
                // memory hard limit in it would become a locked-memory limit that containerised
                // hosts refuse (see `cap_memory`). Lift it for the instant of the snapshot.
                let lifted =
                    !simulated && cap > 0 && hv.set_memory_hard_limit(&name, UNLIMITED_MIB).is_ok();
                let taken = hv.create_snapshot(&name, &sid);
                if lifted {
                    cap_memory(hv, &name, cap, simulated);
                }
                taken
            })
            .await;
        match taken {
            Ok(with_memory) => {
                let id = snap.id.clone();
                self.db
                    .call(move |c| q::set_snapshot_memory(c, &id, with_memory))
                    .await?;
                self.measure_disk(&vm.id).await;
                Ok(Snapshot {
                    with_memory,
                    ..snap
                })
            }
            Err(e) => {
                let id = snap.id.clone();
                let _ = self.db.call(move |c| q::delete_snapshot(c, &id)).await;
                Err(e)
            }
        }
    }

    /// `POST /vms/{id}/snapshots/{sid}/revert`: the disk (and, for a snapshot with memory, the
    /// running guest) as it was; returns the server in the state that leaves it.
    pub async fn revert_snapshot(
        self: &Arc<Self>,
        actor: &Actor,
        vm_id: &str,
        sid: &str,
    ) -> Result<Vm, AppError> {
        let (app, actor) = (self.clone(), actor.clone());
        let (id, sid) = (vm_id.to_owned(), sid.to_owned());
        super::to_completion(async move { app.revert_snapshot_steps(&actor, &id, &sid).await })
            .await
    }

    async fn revert_snapshot_steps(
        &self,
        actor: &Actor,
        vm_id: &str,
        sid: &str,
    ) -> Result<Vm, AppError> {
        let (vm, snap) = self.visible_snapshot(actor, vm_id, sid).await?;
        let (vm, _turn) = self.settled_vm(actor, &vm.id).await?;
        let name = domain_name(&vm.id);
        let (cap, simulated) = (vm.limits.memory_hard_limit_mib, self.simulated);
        let run = self
            .hv_call(move |hv| {
                hv.revert_snapshot(&name, &snap.id)?;
                let run = hv.state(&name)?;
                if run == DomainRunState::Running {
                    cap_memory(hv, &name, cap, simulated);
                }
                Ok(run)
            })
            .await?;
        self.transition(&vm, vm.state, settled(run)).await?;
        self.reload(&vm.id).await
    }

    /// `DELETE /vms/{id}/snapshots/{sid}`: frees its quota.
    pub async fn delete_snapshot(
        self: &Arc<Self>,
        actor: &Actor,
        vm_id: &str,
        sid: &str,
    ) -> Result<(), AppError> {
        let (app, actor) = (self.clone(), actor.clone());
        let (id, sid) = (vm_id.to_owned(), sid.to_owned());
        super::to_completion(async move { app.delete_snapshot_steps(&actor, &id, &sid).await })
            .await
    }

    async fn delete_snapshot_steps(
        &self,
        actor: &Actor,
        vm_id: &str,
        sid: &str,
    ) -> Result<(), AppError> {
        let (vm, snap) = self.visible_snapshot(actor, vm_id, sid).await?;
        let (vm, _turn, _) = self.take(&vm.id, Request::DeleteSnapshot).await?;
        let (name, id) = (domain_name(&vm.id), snap.id.clone());
        match self.hv_call(move |hv| hv.delete_snapshot(&name, &id)).await {
            Ok(()) | Err(AppError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.db
            .call(move |c| q::delete_snapshot(c, &snap.id))
            .await?;
        self.measure_disk(&vm.id).await;
        Ok(())
    }

    // ---- backups ----

    fn description(&self, vm: &Vm, owner: &str, image: Option<String>) -> Description {
        Description {
            format: FORMAT.into(),
            name: vm.name.clone(),
            hostname: vm.hostname.clone(),
            vcpus: vm.pending.map_or(vm.vcpus, |p| p.vcpus),
            memory_mib: vm.pending.map_or(vm.memory_mib, |p| p.memory_mib),
            disk_gib: vm.disk_gib,
            image,
            owner_id: vm.owner_id.clone(),
            owner: owner.to_owned(),
            source_vm_id: vm.id.clone(),
            source_host: self.daemon_id.clone(),
            created_at: vm.created_at.clone(),
            backed_up_at: db::now_rfc3339(),
            limit_overrides: vm.limit_overrides,
        }
    }

    /// Makes an archive of the server's disk at `out` (inside the job's work folder). Progress:
    /// the consistent copy is the first half, compressing the second.
    pub(super) async fn make_archive(
        &self,
        vm: &Vm,
        handle: &Arc<Handle>,
        out: PathBuf,
    ) -> Result<archive::Written, AppError> {
        let work = out.parent().map(Path::to_owned).unwrap_or_default();
        let flat = work.join("flat.qcow2");
        let (owner_id, image_id) = (vm.owner_id.clone(), vm.image_id.clone());
        let (owner, image) = self
            .db
            .call(move |c| {
                let owner = db::users::user_by_id(c, &owner_id)?.map(|u| u.username);
                let image = db::images::get(c, &image_id)?.map(|i| i.image.name);
                Ok((owner.unwrap_or_default(), image))
            })
            .await?;
        let desc = serde_json::to_vec_pretty(&self.description(vm, &owner, image))
            .map_err(|e| AppError::internal("cannot describe the server", e))?;
        let name = domain_name(&vm.id);
        let disk = self.vm_dir(&vm.id).join("disk.qcow2");
        let (hv, h, simulated) = (self.hv.clone(), handle.clone(), self.simulated);
        tokio::task::spawn_blocking(move || -> Result<archive::Written, AppError> {
            mkdir(&work)?;
            let running = matches!(
                hv.state(&name)?,
                DomainRunState::Running | DomainRunState::Paused
            );
            // libvirt's backup job where a guest really runs; on the simulated driver nothing
            // writes the disk, so a plain copy is as consistent.
            let live = running && !simulated;
            if live {
                hv.begin_backup(&name, &flat)?;
                super::failpoint("backup-copy");
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    if h.cancelled() {
                        let _ = hv.abort_job(&name);
                        return Err(AppError::Conflict("Cancelled.".into()));
                    }
                    match hv.backup_progress(&name)? {
                        BackupProgress::Running { done, total } if total > 0 => {
                            h.set(0.5 * done as f64 / total as f64)
                        }
                        BackupProgress::Running { .. } => {}
                        BackupProgress::Completed => break,
                        BackupProgress::Failed(why) => {
                            return Err(AppError::internal(
                                "libvirt's backup job failed",
                                HvError::Refused(why),
                            ))
                        }
                    }
                }
            } else {
                super::failpoint("backup-copy");
                storage::flatten(&disk, &flat, &h.cancel)
                    .map_err(|e| AppError::internal("cannot copy the disk", e))?;
            }
            h.set(0.5);
            let report = |done: u64, total: u64| {
                if total > 0 {
                    h.set(0.5 + 0.5 * done as f64 / total as f64)
                }
            };
            let progress = archive::Progress {
                cancel: &h.cancel,
                report: &report,
            };
            let written = archive::write(&out, &desc, &flat, &progress).map_err(archive_error)?;
            let _ = std::fs::remove_file(&flat);
            Ok(written)
        })
        .await
        .map_err(blocking_lost)?
    }

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
    async fn backup_job(
        self: &Arc<Self>,
        vm: Vm,
        turn: Turn,
        scheduled: bool,
    ) -> Result<Job, AppError> {
        let busy = self.claim(&vm.id, "A backup")?;
        drop(turn);
        let backup = Backup {
            id: uuid::Uuid::new_v4().to_string(),
            vm_id: vm.id.clone(),
            vm_name: vm.name.clone(),
            owner_id: vm.owner_id.clone(),
            created_at: db::now_rfc3339(),
            state: "running".into(),
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
            let ok = outcome.is_ok();
            app.job_end(job, outcome.as_ref().map(drop)).await;
            if ok && scheduled {
                app.prune_scheduled(&vm.id).await;
            }
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
            .filter(|b| b.scheduled && b.state == "ready")
            .collect();
        for old in scheduled.iter().skip(schedule.keep as usize) {
            self.remove_backup(old).await;
        }
    }

    async fn remove_backup(&self, b: &Backup) {
        let (id, file) = (b.id.clone(), self.backup_file(&b.id));
        let _ = tokio::fs::remove_file(file).await;
        if let Err(e) = self.db.call(move |c| q::delete_backup(c, &id)).await {
            tracing::error!(backup = %b.id, error = %super::chain(&e), "cannot delete a backup's record");
        }
    }

    /// A backup the actor may see: their own, or any for an admin.
    pub(super) async fn visible_backup(&self, actor: &Actor, id: &str) -> Result<Backup, AppError> {
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
        if b.state != "ready" {
            return Err(AppError::Conflict(
                "This backup is still being made; cancel its job instead.".into(),
            ));
        }
        self.remove_backup(&b).await;
        Ok(())
    }

    /// Reads and verifies an archive into `work`; checks its description and its disk.
    fn unpack(
        input: impl std::io::Read,
        total: u64,
        work: &Path,
        h: &Handle,
    ) -> Result<(Description, PathBuf), AppError> {
        mkdir(work)?;
        let halfway = std::sync::atomic::AtomicBool::new(false);
        let report = |done: u64, total: u64| {
            if total > 0 {
                h.set(0.9 * done as f64 / total as f64);
                if done * 2 > total && !halfway.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    super::failpoint("import-half");
                }
            }
        };
        let progress = archive::Progress {
            cancel: &h.cancel,
            report: &report,
        };
        // The disk may take what its description says (plus qcow2's own tables), no more, and
        // only when the host has that room now.
        let max = |desc: &[u8]| -> Result<u64, ArchiveError> {
            let desc: Description = serde_json::from_slice(desc).map_err(|e| {
                ArchiveError::Invalid(format!("The archive's description is not valid: {e}."))
            })?;
            if !limits::DISK_GIB.contains(&desc.disk_gib) {
                return Err(ArchiveError::Invalid(format!(
                    "The archive's disk_gib must be between {} and {}.",
                    limits::DISK_GIB.start(),
                    limits::DISK_GIB.end()
                )));
            }
            let bytes = desc.disk_gib * GIB;
            let max = bytes + bytes / 64 + (64 << 20);
            let free = rustix::fs::statvfs(work)
                .map(|s| s.f_bavail * s.f_frsize)
                .map_err(|e| ArchiveError::Io {
                    what: "read the free space",
                    source: e.into(),
                })?;
            if free < max {
                return Err(ArchiveError::NoRoom(format!(
                    "This host has {} GiB free; the archive's disk needs up to {} GiB.",
                    free / GIB,
                    max.div_ceil(GIB)
                )));
            }
            Ok(max)
        };
        let unpacked = archive::read(input, total, work, &max, &progress).map_err(archive_error)?;
        let desc: Description = serde_json::from_slice(&unpacked.description).map_err(|e| {
            AppError::Invalid(format!("The archive's description is not valid: {e}."))
        })?;
        if desc.format != FORMAT {
            return Err(AppError::Invalid(format!(
                "The archive's format is {}; this host reads {FORMAT}.",
                desc.format
            )));
        }
        let info = storage::inspect_image(&unpacked.disk).map_err(|e| match e {
            storage::StorageError::Rejected(why) => {
                AppError::Invalid(format!("The archive's disk is not usable: {why}"))
            }
            other => AppError::internal("cannot inspect the archive's disk", other),
        })?;
        if info.format != "qcow2" || info.virtual_size > desc.disk_gib * GIB {
            return Err(AppError::Invalid(
                "The archive's disk does not match its description.".into(),
            ));
        }
        h.set(0.9);
        Ok((desc, unpacked.disk))
    }

    /// A new server for `owner_id` from an unpacked archive: validated like a create, reserved
    /// (quota and capacity) and provisioned with the archive's disk; left stopped.
    async fn materialize(
        &self,
        owner_id: &str,
        desc: &Description,
        name: Option<String>,
        instance_id: String,
        disk: PathBuf,
    ) -> Result<Vm, AppError> {
        let name = name.unwrap_or_else(|| desc.name.clone());
        validate_vm_name(&name).map_err(|m| AppError::Invalid(m.into()))?;
        validate_hostname(&desc.hostname).map_err(|m| AppError::Invalid(m.into()))?;
        super::vms::check_range("vcpus", desc.vcpus, limits::VCPUS)?;
        super::vms::check_range("memory_mib", desc.memory_mib, limits::MEMORY_MIB)?;
        super::vms::check_range("disk_gib", desc.disk_gib, limits::DISK_GIB)?;
        let image_name = desc.image.clone();
        let image_id = self
            .db
            .call(move |c| match image_name {
                Some(n) => db::images::id_by_name(c, &n),
                None => Ok(None),
            })
            .await?;
        let size = (desc.vcpus, desc.memory_mib, desc.disk_gib);
        let hostname = desc.hostname.clone();
        let vm = self.new_vm(owner_id, name, hostname, size, image_id.unwrap_or_default());
        let vm = self.reserve(vm).await?;
        let seed = SeedInput {
            instance_id,
            keys: Vec::new(),
            password: None,
        };
        self.provision(vm, DiskSource::File(disk), seed, false)
            .await
    }

    /// `POST /backups/{bid}/restore`: a job that puts the backup's disk back into its (stopped)
    /// server, or makes a new server from it (`as_new`).
    pub async fn restore_backup(
        self: &Arc<Self>,
        actor: &Actor,
        id: &str,
        req: RestoreBackup,
    ) -> Result<Job, AppError> {
        let b = self.visible_backup(actor, id).await?;
        if b.state != "ready" {
            return Err(AppError::Conflict(
                "This backup is still being made.".into(),
            ));
        }
        let mut busy = None;
        let target = if req.as_new {
            if let Some(n) = &req.name {
                validate_vm_name(n).map_err(|m| AppError::Invalid(m.into()))?;
            }
            None
        } else {
            let vm = self.visible_vm(actor, &b.vm_id).await.map_err(|_| {
                AppError::Conflict(
                    "The backed-up server no longer exists; restore the backup as a new server."
                        .into(),
                )
            })?;
            // The state is checked and the server claimed in one turn: nothing can start it
            // in between.
            let (vm, _turn, _) = self.take(&vm.id, Request::RestoreInPlace).await?;
            if super::failpoint_for("restore-claim-pause", &vm.id) {
                // Test support: widens the window between the state check and the claim.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            busy = Some(self.claim(&vm.id, "A restore")?);
            Some(vm)
        };
        // Restored as new, the unpacked disk is a new server's: charged to the owner's disk quota
        // before anything is written, so that many restores at once cannot fill the host's disk
        // beyond the owner's quota (in place, it replaces the server's own disk: not charged).
        let charge = if target.is_none() { b.disk_gib } else { 0 };
        let job = Self::job_new(
            &b.owner_id,
            JobKind::Restore,
            target.as_ref().map(|v| v.id.clone()),
            Some(b.id.clone()),
        );
        let (job, handle) = self
            .job_begin_charged(job, charge, "This restore runs already.")
            .await?;
        let app = self.clone();
        let started = job.clone();
        tokio::spawn(async move {
            let _busy = busy;
            let mut job = job;
            let outcome = app.run_restore(&b, target, req, &mut job, &handle).await;
            app.job_end(job, outcome.as_ref().map(drop)).await;
        });
        Ok(started)
    }

    async fn run_restore(
        &self,
        b: &Backup,
        target: Option<Vm>,
        req: RestoreBackup,
        job: &mut Job,
        handle: &Arc<Handle>,
    ) -> Result<(), AppError> {
        let (file, work, h) = (
            self.backup_file(&b.id),
            self.work_dir(&job.id),
            handle.clone(),
        );
        let (desc, disk) = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&file)
                .map_err(|e| AppError::internal("cannot open the backup", e))?;
            let total = f.metadata().map(|m| m.len()).unwrap_or(0);
            Self::unpack(
                std::io::BufReader::with_capacity(1 << 20, f),
                total,
                &work,
                &h,
            )
        })
        .await
        .map_err(blocking_lost)??;
        match target {
            None => {
                let name = req.name.unwrap_or_else(|| {
                    let mut n = format!("{}-restored", desc.name);
                    n.truncate(63);
                    n
                });
                // The new server's own reservation takes over from the job's.
                let id = job.id.clone();
                self.db.call(move |c| q::set_job_quota(c, &id, 0)).await?;
                let vm = self
                    .materialize(
                        &b.owner_id,
                        &desc,
                        Some(name),
                        uuid::Uuid::new_v4().to_string(),
                        disk,
                    )
                    .await?;
                job.vm_id = Some(vm.id);
            }
            Some(vm) => {
                let snaps = {
                    let id = vm.id.clone();
                    self.db.call(move |c| q::snapshots(c, &id)).await?
                };
                let name = domain_name(&vm.id);
                let dest = self.vm_dir(&vm.id).join("disk.qcow2");
                let disk_gib = vm.disk_gib.max(desc.disk_gib);
                let vm_id = vm.id.clone();
                // The new disk goes in place first: until then a failure leaves the server as
                // it was, snapshots included.
                tokio::task::spawn_blocking(move || -> Result<(), AppError> {
                    storage::grow(&disk, disk_gib)
                        .map_err(|e| AppError::internal("cannot size the restored disk", e))?;
                    if super::failpoint_for("restore-before-rename", &vm_id) {
                        return Err(AppError::internal(
                            "failpoint restore-before-rename",
                            std::io::Error::other("failpoint"),
                        ));
                    }
                    std::fs::rename(&disk, &dest)
                        .map_err(|e| AppError::internal("cannot put the restored disk in place", e))
                })
                .await
                .map_err(blocking_lost)??;
                // The snapshots lived inside the disk just replaced: they went with it, and
                // only their records are left to forget.
                self.hv_call(move |hv| {
                    for s in &snaps {
                        hv.forget_snapshot(&name, &s.id)?;
                    }
                    Ok(())
                })
                .await?;
                let id = vm.id.clone();
                self.db
                    .call(move |c| q::delete_snapshots_of(c, &id))
                    .await?;
            }
        }
        Ok(())
    }

    // ---- export and import ----

    /// `POST /vms/import` (admins): reads an archive from `body` as it arrives, verifies every
    /// checksum, and only then creates the server, for `owner` (default: the caller), quota-
    /// checked, stopped. A bad archive is 422 and leaves nothing behind.
    pub async fn import_vm<S, E>(
        self: &Arc<Self>,
        actor: &Actor,
        owner: Option<String>,
        name: Option<String>,
        total: u64,
        body: S,
    ) -> Result<(Vm, Job), AppError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        use futures_util::TryStreamExt;
        actor.require_admin()?;
        let owner_id = owner.unwrap_or_else(|| actor.user_id.clone());
        let key = owner_id.clone();
        if self
            .db
            .call(move |c| db::users::user_by_id(c, &key))
            .await?
            .is_none()
        {
            return Err(AppError::Invalid("No such owner.".into()));
        }
        if let Some(n) = &name {
            validate_vm_name(n).map_err(|m| AppError::Invalid(m.into()))?;
        }
        let (job, handle) = self
            .job_begin(&actor.user_id, JobKind::Import, None, None)
            .await?;
        let work = self.work_dir(&job.id);
        let h = handle.clone();
        let reader = tokio_util::io::StreamReader::new(
            body.map_err(|e| std::io::Error::other(e.to_string())),
        );
        let bridge = tokio_util::io::SyncIoBridge::new(reader);
        let unpacked = tokio::task::spawn_blocking(move || {
            Self::unpack(
                std::io::BufReader::with_capacity(1 << 20, bridge),
                total,
                &work,
                &h,
            )
        })
        .await
        .map_err(blocking_lost)
        .and_then(|r| r);
        let outcome = match unpacked {
            Ok((desc, disk)) => {
                // The server keeps its identity for cloud-init when it moves.
                let instance = desc.source_vm_id.clone();
                self.materialize(&owner_id, &desc, name, instance, disk)
                    .await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(vm) => {
                let mut job = job;
                job.vm_id = Some(vm.id.clone());
                let job = self.job_end(job, Ok(())).await;
                Ok((vm, job))
            }
            Err(e) => {
                self.job_end(job, Err(&e)).await;
                Err(e)
            }
        }
    }

    // ---- schedules ----

    /// `GET /vms/{id}/backup-schedule` (404 when none is set).
    pub async fn get_schedule(
        &self,
        actor: &Actor,
        vm_id: &str,
    ) -> Result<BackupSchedule, AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        self.db
            .call(move |c| q::schedule(c, &vm.id))
            .await?
            .ok_or(AppError::NotFound("backup schedule"))
    }

    /// `PUT /vms/{id}/backup-schedule`: daily at `time` (UTC), keeping `keep` (1-30).
    pub async fn set_schedule(
        &self,
        actor: &Actor,
        vm_id: &str,
        req: BackupSchedule,
    ) -> Result<BackupSchedule, AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        if !(1..=30).contains(&req.keep) {
            return Err(AppError::Invalid("keep must be between 1 and 30.".into()));
        }
        let next = next_run(&req.time, time::OffsetDateTime::now_utc())
            .ok_or_else(|| AppError::Invalid("time must be HH:MM (UTC), e.g. 03:30.".into()))?;
        let schedule = BackupSchedule {
            time: req.time,
            keep: req.keep,
            next_run: Some(db::rfc3339(next)),
        };
        let row = schedule.clone();
        self.db
            .call(move |c| q::set_schedule(c, &vm.id, &row))
            .await?;
        Ok(schedule)
    }

    /// `DELETE /vms/{id}/backup-schedule`.
    pub async fn delete_schedule(&self, actor: &Actor, vm_id: &str) -> Result<(), AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        if !self.db.call(move |c| q::delete_schedule(c, &vm.id)).await? {
            return Err(AppError::NotFound("backup schedule"));
        }
        Ok(())
    }

    /// Starts the backups due at `now` (each schedule moves to its next day first, so a failure
    /// is not retried in a loop). Returns the jobs started.
    pub async fn run_due_schedules(self: &Arc<Self>, now: time::OffsetDateTime) -> Vec<Job> {
        let (host, at) = (self.daemon_id.clone(), db::rfc3339(now));
        let due = match self.db.call(move |c| q::due_schedules(c, &host, &at)).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %super::chain(&e), "cannot read backup schedules");
                return Vec::new();
            }
        };
        let mut started = Vec::new();
        for (vm_id, mut s) in due {
            s.next_run = next_run(&s.time, now).map(db::rfc3339);
            let (key, row) = (vm_id.clone(), s.clone());
            let _ = self.db.call(move |c| q::set_schedule(c, &key, &row)).await;
            let (vm, turn) = match self.take(&vm_id, Request::DiskWork).await {
                Ok((vm, turn, _)) => (vm, turn),
                Err(AppError::NotFound(_)) => continue,
                Err(e) => {
                    tracing::warn!(vm = %vm_id, why = %e, "scheduled backup skipped: the server is busy");
                    continue;
                }
            };
            match self.backup_job(vm, turn, true).await {
                Ok(job) => started.push(job),
                Err(e) => {
                    tracing::warn!(vm = %vm_id, error = %super::chain(&e), "scheduled backup not started")
                }
            }
        }
        started
    }

    /// Checks the schedules every `tick`, for as long as the app lives.
    pub(super) fn start_scheduler(self: &Arc<Self>, tick: Duration) {
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let Some(app) = app.upgrade() else { return };
                app.run_due_schedules(time::OffsetDateTime::now_utc()).await;
            }
        });
    }
}
