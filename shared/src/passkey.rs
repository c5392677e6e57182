//! Passkeys (WebAuthn): registering them, naming and deleting them, and signing in with one in
//! place of the password or as the second factor after it. The WebAuthn payloads are JSON in
//! the browser's shape, checked by the daemon; the web console passes them on as text.

use serde::{Deserialize, Serialize};

/// A WebAuthn ceremony begun by the daemon (`POST /me/passkeys/options`,
/// `POST /auth/passkey/options`): what the browser's `navigator.credentials` call takes, and the
/// id of the challenge to send back with its answer. Single use, valid for two minutes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyChallenge {
    pub challenge_id: String,
    /// `{"publicKey": {…}}` as WebAuthn defines it, binary fields in base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub options: serde_json::Value,
}

/// The browser's answer to a sign-in challenge (`POST /auth/passkey`, or `passkey` in
/// `POST /auth/login` and `POST /auth/verify`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasskeyAssertion {
    pub challenge_id: String,
    /// The `PublicKeyCredential`, binary fields in base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: serde_json::Value,
}

/// `POST /me/passkeys`: the browser's answer to a registration challenge, and a name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPasskey {
    pub challenge_id: String,
    /// 1 to 64 characters, e.g. "laptop" or "YubiKey".
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: serde_json::Value,
}

/// `PATCH /me/passkeys/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenamePasskey {
    pub name: String,
}

/// One of the caller's passkeys (`GET /me/passkeys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// `POST /me/passkeys` answers with the passkey, and ten recovery codes when it is the
/// account's first second factor (shown this once; empty otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredPasskey {
    pub passkey: PasskeyInfo,
    pub recovery_codes: Vec<String>,
}
