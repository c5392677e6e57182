//! The audit log.

use serde::{Deserialize, Serialize};

use crate::{UserId, VmId};

/// One state-changing request, as `GET /audit` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub user_id: Option<UserId>,
    pub username: Option<String>,
    /// e.g. `POST /api/v1/vms/{id}/{action}` or `auth.login`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub vm_id: Option<VmId>,
    /// The client's address.
    pub client: Option<String>,
    /// `success`, `denied` (4xx) or `failed` (5xx).
    pub outcome: String,
    pub status: Option<u16>,
}
