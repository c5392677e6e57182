//! The app layer's one error type. It knows nothing of HTTP: each variant is a kind of outcome
//! that `http::error` maps to the status codes of API.md in one place. The `message` is written for
//! the user; the `source` chain (SQL, libvirt, I/O) is for the log only.

use crate::db::{DbError, Refusal};
use crate::hypervisor::HvError;

type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Well-formed but invalid input (422).
    #[error("{0}")]
    Invalid(String),
    /// No, expired, forged or revoked credentials (401).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Sign-in: the password was right; the TOTP code is missing (401 `totp_required`).
    #[error("Enter the code from your authenticator app (or a recovery code).")]
    TotpRequired,
    /// The TOTP or recovery code is wrong or was used already (401 `totp_invalid`).
    #[error("The code is wrong or was used already; wait for the next one.")]
    TotpInvalid,
    /// A passkey's answer was not accepted (401 `passkey_invalid`).
    #[error("The passkey was not accepted; try again.")]
    PasskeyInvalid,
    /// A sensitive change needs a verification in the last 5 minutes (401).
    #[error("Confirm it is you: enter your password again (POST /api/v1/auth/verify).")]
    ReauthenticationRequired,
    /// The host requires a second factor of this user, who has none (403).
    #[error("Set up two-factor sign-in first: this host requires it of your account.")]
    SecondFactorRequired,
    /// Authenticated, but not allowed (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// Missing, or belonging to someone else: the two are indistinguishable (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request would exceed the user's quota (403); the message names resource and numbers.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The host has no room for it: capacity, disk space, addresses (507).
    #[error("{0}")]
    InsufficientCapacity(String),
    /// Name taken, or the state forbids the action (409).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts (429).
    #[error("{0}")]
    RateLimited(String),
    /// The hypervisor or the database cannot be reached (503).
    #[error("{message}")]
    Unavailable {
        message: &'static str,
        #[source]
        source: Source,
    },
    /// A bug or an unexpected failure (500). The user sees only that something went wrong.
    #[error("{context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Source,
    },
}

impl AppError {
    pub fn internal(context: &'static str, source: impl Into<Source>) -> AppError {
        AppError::Internal {
            context,
            source: source.into(),
        }
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> AppError {
        AppError::internal("database query failed", e)
    }
}

/// The database's refusals, in the words a user reads. Callers that know better words (which
/// name is taken, what was not found) match those variants first.
impl From<Refusal> for AppError {
    fn from(r: Refusal) -> AppError {
        match r {
            Refusal::Quota(short) => AppError::QuotaExceeded(short.to_string()),
            Refusal::DiskFull {
                used_gib,
                quota_gib,
            } => AppError::QuotaExceeded(format!(
                "Your disks, their snapshots and your backups take {used_gib} of your {quota_gib} \
                 GiB of disk: delete snapshots or backups first."
            )),
            Refusal::Capacity(why) => AppError::InsufficientCapacity(why),
            Refusal::NoAddress => AppError::InsufficientCapacity(
                "This host's network has no free address left. Ask an administrator.".into(),
            ),
            Refusal::NameTaken => AppError::Conflict("That name is taken already.".into()),
            Refusal::StateChanged { .. } => {
                AppError::Conflict("The server changed meanwhile; try again.".into())
            }
            Refusal::NotFound => AppError::NotFound("record"),
            Refusal::InUse { count, of } => AppError::Conflict(format!(
                "It is still used by {count} {of}; delete them first."
            )),
            Refusal::LastAdmin => {
                AppError::Conflict("This is the last administrator; make another one first.".into())
            }
        }
    }
}

impl From<HvError> for AppError {
    fn from(e: HvError) -> AppError {
        match e {
            HvError::Unreachable { .. } => AppError::Unavailable {
                message: "The hypervisor is not answering; try again shortly.",
                source: e.into(),
            },
            HvError::InvalidState(what) => {
                AppError::Conflict(format!("The server's current state does not allow {what}."))
            }
            HvError::NoDomain(_) => AppError::NotFound("virtual server"),
            other => AppError::internal("hypervisor call failed", other),
        }
    }
}
