//! Disk images servers are created from.

use serde::{Deserialize, Serialize};

use crate::ImageId;

/// A disk image VPS are created from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Image {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: ImageId,
    pub name: String,
    /// `qcow2` or `raw`.
    pub format: String,
    /// The disk size the image was made for; a VPS disk is at least this large.
    pub virtual_size_bytes: u64,
    pub os: Option<String>,
    pub created_at: String,
}

/// `POST /images`: import a file lying in one of the daemon's import directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImportImage {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub os: Option<String>,
}
