//! The database's refusals: a change the records as they stand do not allow. A refusal is an
//! answer, not a failure (that is [`DbError`]); the app turns each into the user's sentence and
//! its status code (`app::error`).

use nuage_shared::VmState;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::vms::QuotaShortfall;
use super::DbError;

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The owner's quota lacks room (403).
    Quota(QuotaShortfall),
    /// The owner's disks, snapshots and backups fill their disk quota already (403).
    DiskFull { used_gib: u64, quota_gib: u64 },
    /// The host lacks room (507); the sentence says which resource.
    Capacity(String),
    /// The host's network has no free address left (507).
    NoAddress,
    /// A UNIQUE constraint: the name (or the one-per-server job) is taken (409).
    NameTaken,
    /// The server is no longer in the state the change was decided for (409).
    StateChanged {
        expected: VmState,
        found: Option<VmState>,
    },
    /// The row does not exist (404).
    NotFound,
    /// Still used by `count` of something (servers on an image, a user's servers or backups).
    InUse { count: usize, of: &'static str },
    /// The change would leave the host without an administrator (409).
    LastAdmin,
}

/// A database step that may be refused.
pub type Outcome<T> = Result<Result<T, Refusal>, DbError>;

/// Runs `step` in one `BEGIN IMMEDIATE` transaction, which commits only when the step neither
/// failed nor was refused.
pub(super) fn immediate<T>(
    c: &mut Connection,
    step: impl FnOnce(&Transaction<'_>) -> Outcome<T>,
) -> Outcome<T> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    match step(&tx) {
        Ok(Ok(v)) => {
            tx.commit()?;
            Ok(Ok(v))
        }
        Ok(Err(r)) => Ok(Err(r)),
        Err(e) => Err(e),
    }
}

/// Shorthand inside a step: refuse with `r`.
pub(super) fn refuse<T>(r: Refusal) -> Outcome<T> {
    Ok(Err(r))
}

/// A write whose UNIQUE constraint means "that name is taken" (a server's or snapshot's name,
/// one export per server): the violation becomes [`Refusal::NameTaken`]; any other stays an
/// error.
pub(super) fn naming(write: Result<(), DbError>) -> Outcome<()> {
    match write {
        Err(e) if e.is_unique_violation() => refuse(Refusal::NameTaken),
        other => other.map(Ok),
    }
}
