//! Long work as jobs: kinds, states, progress.

use serde::{Deserialize, Serialize};

use crate::{BackupId, JobId, UserId, VmId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Backup,
    Restore,
    Export,
    Import,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }
}

/// Long work (backup, restore, export, import): `GET /jobs/{id}` and `job` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: JobId,
    pub kind: JobKind,
    pub state: JobState,
    /// 0..1.
    pub progress: f64,
    /// Why it failed, in a sentence for the user.
    pub error: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub owner_id: UserId,
    /// The server it works on (for an import or a restore as new: the server it made).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub vm_id: Option<VmId>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub backup_id: Option<BackupId>,
    pub created_at: String,
    pub finished_at: Option<String>,
}
