//! Restore: a backup's archive unpacked (every checksum verified first) over its server's
//! disk, or as a new server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nuage_shared::{
    limits, validate_hostname, validate_vm_name, Backup, Job, JobKind, RestoreBackup, Vm,
};
use nuage_shared::{BackupState, RestoreTarget};

use super::{archive_error, blocking_lost, mkdir, Description, FORMAT, GIB};
use crate::app::jobs::Handle;
use crate::app::lifecycle::Request;
use crate::app::paths::domain_name;
use crate::app::vms::{AfterCreate, DiskSource, SeedInput};
use crate::app::{Actor, App, AppError};
use crate::archive::{self, ArchiveError};
use crate::db::{self, backups as q};
use crate::storage;

impl App {
    /// Reads and verifies an archive into `work`; checks its description and its disk.
    pub(super) fn unpack(
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
                    crate::failpoints::failpoint("import-half");
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
    pub(super) async fn materialize(
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
        crate::app::vms::check_range("vcpus", desc.vcpus, limits::VCPUS)?;
        crate::app::vms::check_range("memory_mib", desc.memory_mib, limits::MEMORY_MIB)?;
        crate::app::vms::check_range("disk_gib", desc.disk_gib, limits::DISK_GIB)?;
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
        let vm = self.new_vm(
            owner_id,
            name,
            hostname,
            size,
            image_id.unwrap_or_default().into(),
        );
        let vm = self.reserve(vm).await?;
        let seed = SeedInput {
            instance_id,
            keys: Vec::new(),
            password: None,
        };
        self.provision(vm, DiskSource::File(disk), seed, AfterCreate::LeaveStopped)
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
        if b.state != BackupState::Ready {
            return Err(AppError::Conflict(
                "This backup is still being made.".into(),
            ));
        }
        let mut busy = None;
        let asked = req.target();
        let target = if let RestoreTarget::AsNew { name } = &asked {
            if let Some(n) = name {
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
            if crate::failpoints::failpoint_for("restore-claim-pause", &vm.id) {
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
        let new_name = match asked {
            RestoreTarget::AsNew { name } => name,
            RestoreTarget::InPlace => None,
        };
        let app = self.clone();
        let started = job.clone();
        tokio::spawn(async move {
            let _busy = busy;
            let mut job = job;
            let outcome = app
                .run_restore(&b, target, new_name, &mut job, &handle)
                .await;
            app.job_end(job, outcome.as_ref().map(drop)).await;
        });
        Ok(started)
    }

    async fn run_restore(
        &self,
        b: &Backup,
        target: Option<Vm>,
        new_name: Option<String>,
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
                let name = new_name.unwrap_or_else(|| {
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
                    if crate::failpoints::failpoint_for("restore-before-rename", &vm_id) {
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
}
