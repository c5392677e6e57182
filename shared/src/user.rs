//! Users, sign-in, quotas.

use serde::{Deserialize, Serialize};

use crate::{LimitOverrides, UserId};

/// A user's role: admins manage users, images and the host; users manage their own VPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    User,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: UserId,
    pub username: String,
    pub role: Role,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    pub user: User,
}

/// What a user may allocate in all (`quota`), or has allocated (`usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub vms: u32,
    pub snapshots: u32,
}

impl Quota {
    /// The quota of a user created without one: room for a couple of small servers.
    pub const DEFAULT: Quota = Quota {
        vcpus: 4,
        memory_mib: 4096,
        disk_gib: 40,
        vms: 2,
        snapshots: 4,
    };
}

/// `GET /me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub user: User,
    pub quota: Quota,
    pub usage: Quota,
}

/// A user as administrators see it (`GET /users`, `GET /users/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserDetail {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub created_at: String,
    pub quota: Quota,
    pub usage: Quota,
    /// Limits set on all this user's servers (`PUT /users/{id}/limits`).
    #[serde(default)]
    pub limits: LimitOverrides,
}

/// `POST /users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    /// [`Quota::DEFAULT`] when omitted.
    #[serde(default)]
    pub quota: Option<Quota>,
}

/// `PATCH /users/{id}`: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}
