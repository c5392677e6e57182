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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The current code of the user's authenticator app, or one of their recovery codes; needed
    /// once TOTP is on (`401 totp_required` without it, `totp_invalid` when wrong or used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    /// In place of `totp`: the answer of one of the user's passkeys to a challenge from
    /// `POST /auth/passkey/options` (`401 passkey_invalid` when it is not accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<crate::PasskeyAssertion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    pub user: User,
    /// The host requires a second factor of this user (`--require-2fa`) and they have none:
    /// this session can only enrol one (`/me/totp`), read `/me` and sign out until then.
    #[serde(default)]
    pub must_enrol_second_factor: bool,
}

/// `POST /me/totp`: a new secret for the user's authenticator app, not active until confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpEnrolment {
    /// Base32, for typing into an app.
    pub secret: String,
    /// `otpauth://totp/…`, what a QR code carries.
    pub otpauth_url: String,
    /// The same URL as a QR code (SVG), to show as it is.
    pub qr_svg: String,
}

/// `POST /me/totp/confirm`, `DELETE /me/totp`: a current code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

/// The answer to `POST /me/totp/confirm`: TOTP is on, and these codes each sign in once in
/// place of a code (shown this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// `POST /auth/verify`: proves again who the caller is (password, or a current code) before a
/// sensitive change; good for 5 minutes in this session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Reauthenticate {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub totp: Option<String>,
    /// Or a passkey's answer to a challenge from `POST /auth/passkey/options`.
    #[serde(default)]
    pub passkey: Option<crate::PasskeyAssertion>,
}

/// `PUT /me/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

/// How a session signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Password,
    Passkey,
    Token,
}

/// One of the caller's sessions or API tokens (`GET /me/sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// What `DELETE /me/sessions/{id}` takes (`token:<id>` for an API token).
    pub id: String,
    pub kind: SessionKind,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_seen_at: Option<String>,
    pub client: Option<String>,
    pub user_agent: Option<String>,
    /// The session this list was asked through.
    pub current: bool,
    /// An API token's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
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
    #[serde(default)]
    pub security: AccountSecurity,
}

/// The caller's second factors and what the host asks of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountSecurity {
    pub totp: bool,
    /// How many passkeys the user has registered.
    #[serde(default)]
    pub passkeys: u32,
    pub recovery_codes_left: u32,
    /// The host requires a second factor of this user (`--require-2fa`).
    pub second_factor_required: bool,
    /// Required and missing: only enrolment is open to this session.
    pub must_enrol: bool,
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
    /// A second factor is on, TOTP or a passkey (an admin may reset them: `DELETE /users/{id}/totp`).
    #[serde(default)]
    pub totp: bool,
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
