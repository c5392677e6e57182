//! Snapshots, backups, restores, backup schedules and imports.

use serde::{Deserialize, Serialize};

use crate::{BackupId, Job, SnapshotId, UserId, Vm, VmId};

/// A point a server's disk (and, when taken while it ran, its memory) can go back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: SnapshotId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub vm_id: VmId,
    pub name: String,
    pub created_at: String,
    /// True when the snapshot holds the running guest's memory too: reverting to it resumes the
    /// guest where it was. False: disk only (the server was not running); reverting leaves it off.
    pub with_memory: bool,
}

/// `POST /vms/{id}/snapshots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateSnapshot {
    /// 1-63 characters of `[a-z0-9-]`, unique per server.
    pub name: String,
}

/// A backup of a server: a portable archive in the host's backup store. It outlives the server
/// it was taken of, so a deleted server can be restored as a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Backup {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: BackupId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub vm_id: VmId,
    /// The server's name when it was backed up.
    pub vm_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub owner_id: UserId,
    pub created_at: String,
    /// `running` while the job works, then `ready`.
    pub state: BackupState,
    /// The archive's size (0 while running).
    pub size_bytes: u64,
    /// What the backup takes of the owner's disk quota: the archive rounded up to whole GiB
    /// (the server's disk size while the backup runs).
    pub quota_gib: u64,
    /// The server's disk size when backed up.
    pub disk_gib: u64,
    /// Made by the server's schedule (and pruned by it), rather than by hand.
    pub scheduled: bool,
    /// The archive's own SHA-256 (hex), once ready.
    pub sha256: Option<String>,
}

/// `POST /backups/{bid}/restore`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestoreBackup {
    /// True: make a new server from the backup (quota-checked). False (the default): put the
    /// backup's disk back into its server, which must be stopped.
    #[serde(default)]
    pub as_new: bool,
    /// The new server's name (with `as_new`); defaults to the old name with `-restored`.
    #[serde(default)]
    pub name: Option<String>,
}

/// Where a backup is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BackupState {
    /// Its job is writing the archive.
    Running,
    /// The archive is complete and verified.
    Ready,
}

impl BackupState {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupState::Running => "running",
            BackupState::Ready => "ready",
        }
    }

    pub fn parse(s: &str) -> Option<BackupState> {
        match s {
            "running" => Some(BackupState::Running),
            "ready" => Some(BackupState::Ready),
            _ => None,
        }
    }
}

/// Where a restore puts the backup's disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreTarget {
    /// Back into its own server, which must be stopped.
    InPlace,
    /// Into a new server, named `name` (by default the old name with `-restored`).
    AsNew { name: Option<String> },
}

impl RestoreBackup {
    /// What the request asks, as one value (the wire keeps `as_new` and `name`).
    pub fn target(&self) -> RestoreTarget {
        if self.as_new {
            RestoreTarget::AsNew {
                name: self.name.clone(),
            }
        } else {
            RestoreTarget::InPlace
        }
    }
}

/// A server's backup schedule: every day at `time` (UTC, `HH:MM`), keeping the newest `keep`
/// scheduled backups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupSchedule {
    pub time: String,
    pub keep: u32,
    /// When the next backup is due (RFC 3339), as the daemon computed it.
    #[serde(default)]
    pub next_run: Option<String>,
}

/// The answer to `POST /vms/import`: the server made from the archive (stopped) and the job
/// that read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Imported {
    pub vm: Vm,
    pub job: Job,
}
