//! Ending credentials while they are in use. Every request checks its token against the database,
//! but a WebSocket (`/events`, a console) is authorised once, at its upgrade: it watches for the
//! end of the credential it was opened with, and closes within a second of a logout, a token's
//! deletion, a password reset, "sign out everywhere", the user's deletion or demotion, or the
//! credential's expiry.

use tokio::sync::broadcast::{self, error::RecvError};

use super::{Actor, App};

/// A credential (or all of a user's) that has just ended.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub user_id: String,
    /// One session (`Actor::session`), or `None`: every credential of the user.
    pub session: Option<String>,
}

/// What an open socket watches.
pub struct CredentialWatch {
    rx: broadcast::Receiver<Revocation>,
    user_id: String,
    session: String,
    expires: Option<tokio::time::Instant>,
}

impl CredentialWatch {
    /// Resolves when the credential is revoked or expires.
    pub async fn ended(&mut self) {
        let expiry = self.expires;
        let expired = async move {
            match expiry {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        loop {
            tokio::select! {
                () = &mut expired => return,
                r = self.rx.recv() => match r {
                    Ok(rev) if rev.user_id == self.user_id
                        && rev.session.as_ref().is_none_or(|s| *s == self.session) => return,
                    Ok(_) => {}
                    // Revocations were missed: this one may have been among them.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                },
            }
        }
    }
}

impl App {
    /// Tells every open socket of this credential (or of all the user's) to close.
    pub(super) fn revoked(&self, user_id: &str, session: Option<&str>) {
        let _ = self.revocations.send(Revocation {
            user_id: user_id.to_owned(),
            session: session.map(str::to_owned),
        });
    }

    /// A watch on the credential `actor` came with.
    pub fn watch(&self, actor: &Actor) -> CredentialWatch {
        let expires = actor.expires.map(|at| {
            let left = at - time::OffsetDateTime::now_utc().unix_timestamp();
            tokio::time::Instant::now()
                + std::time::Duration::from_secs(u64::try_from(left).unwrap_or(0))
        });
        CredentialWatch {
            rx: self.revocations.subscribe(),
            user_id: actor.user_id.clone(),
            session: actor.session.clone(),
            expires,
        }
    }
}
