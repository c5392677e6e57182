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

mod backup;
pub mod export;
mod import;
mod restore;
mod schedules;
mod snapshots;

pub use schedules::next_run;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nuage_shared::{LimitOverrides, Vm};
use serde::{Deserialize, Serialize};

use super::jobs::Handle;
use super::lifecycle::Request;
use super::paths::domain_name;
use super::turns::Turn;
use super::{Actor, App, AppError};
use crate::archive::{self, ArchiveError};
use crate::db::{self, vms};
use crate::hypervisor::snapshot::BackupProgress;
use crate::hypervisor::{DomainRunState, HvError};
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

pub(in crate::app) fn blocking_lost(e: tokio::task::JoinError) -> AppError {
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
            tracing::warn!(vm = vm_id, error = %crate::app::chain(&e), "cannot record a disk's size");
        }
    }

    /// A server in a settled state whose disk may be worked on (no job holds it), with its turn
    /// (`turns.rs`): hold it until the change is made or the server is claimed for a job.
    pub(in crate::app) async fn settled_vm(
        &self,
        actor: &Actor,
        vm_id: &str,
    ) -> Result<(Vm, Turn), AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        let (vm, turn, _) = self.take(&vm.id, Request::DiskWork).await?;
        Ok((vm, turn))
    }

    fn description(&self, vm: &Vm, owner: &str, image: Option<String>) -> Description {
        Description {
            format: FORMAT.into(),
            name: vm.name.clone(),
            hostname: vm.hostname.clone(),
            vcpus: vm.pending.map_or(vm.vcpus, |p| p.vcpus),
            memory_mib: vm.pending.map_or(vm.memory_mib, |p| p.memory_mib),
            disk_gib: vm.disk_gib,
            image,
            owner_id: vm.owner_id.to_string(),
            owner: owner.to_owned(),
            source_vm_id: vm.id.to_string(),
            source_host: self.daemon_id.clone(),
            created_at: vm.created_at.clone(),
            backed_up_at: db::now_rfc3339(),
            limit_overrides: vm.limit_overrides,
        }
    }

    /// Makes an archive of the server's disk at `out` (inside the job's work folder). Progress:
    /// the consistent copy is the first half, compressing the second.
    pub(in crate::app) async fn make_archive(
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
                crate::failpoints::failpoint("backup-copy");
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
                crate::failpoints::failpoint("backup-copy");
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
}
