//! Error responses: the body, and the codes with their HTTP statuses.

use serde::{Deserialize, Serialize};

/// The body of every error response: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// A sentence for a person. Never carries SQL, libvirt or file-system text.
    pub message: String,
}

/// The machine-readable error codes of API.md, one per documented status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Invalid,
    Unauthenticated,
    Forbidden,
    NotFound,
    QuotaExceeded,
    InsufficientCapacity,
    Conflict,
    RateLimited,
    Unavailable,
    /// Sign-in: the password was right and the user's TOTP code is missing (401).
    TotpRequired,
    /// Sign-in: the TOTP or recovery code is wrong or already used (401).
    TotpInvalid,
    /// A passkey's answer was not accepted: unknown, expired or used challenge, another
    /// account's passkey, or a signature that does not verify (401).
    PasskeyInvalid,
    /// A sensitive change needs the password or a code from the last 5 minutes:
    /// `POST /auth/verify` first (401).
    ReauthenticationRequired,
    /// The host requires a second factor of this user and they have none: enrol first (403).
    SecondFactorRequired,
    /// A bug in the daemon (any 5xx other than 503/507). The message says no more than that.
    Internal,
}

impl ErrorCode {
    /// The HTTP status API.md fixes for this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Invalid => 422,
            ErrorCode::Unauthenticated
            | ErrorCode::TotpRequired
            | ErrorCode::TotpInvalid
            | ErrorCode::PasskeyInvalid
            | ErrorCode::ReauthenticationRequired => 401,
            ErrorCode::Forbidden | ErrorCode::QuotaExceeded | ErrorCode::SecondFactorRequired => {
                403
            }
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::InsufficientCapacity => 507,
        }
    }
}
