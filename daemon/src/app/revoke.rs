//! Ending credentials while they are in use. Every request checks its token against the database,
//! but a WebSocket (`/events`, a console) is authorised once, at its upgrade: it watches for the
//! end of the credential it was opened with, and closes within a second of a logout, a token's
//! deletion, a password reset, "sign out everywhere", the user's deletion or demotion, or the
//! credential's expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::{self, error::RecvError};

use super::{Actor, App, AppError};

/// WebSockets (events and consoles together) one user may hold open at once.
pub const MAX_SOCKETS_PER_USER: usize = 32;

/// Open WebSockets per user.
#[derive(Default)]
pub struct Sockets {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open socket of a user; dropping it frees the place.
pub struct SocketSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    user_id: String,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

/// A credential (or all of a user's) that has just ended.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub user_id: String,
    /// One session (`Actor::session`), or `None`: every credential of the user.
    pub session: Option<String>,
}

/// Revocations heard since it was made ([`App::listen_for_revocations`]).
pub struct RevocationListener(broadcast::Receiver<Revocation>);

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

    /// A place for one more open socket of `actor`'s, or 429 past [`MAX_SOCKETS_PER_USER`].
    pub fn socket_slot(&self, actor: &Actor) -> Result<SocketSlot, AppError> {
        let mut open = self.sockets.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(actor.user_id.to_string()).or_insert(0);
        if *n >= MAX_SOCKETS_PER_USER {
            return Err(AppError::RateLimited(format!(
                "You have {MAX_SOCKETS_PER_USER} live connections open already; close one first."
            )));
        }
        *n += 1;
        Ok(SocketSlot {
            open: self.sockets.open.clone(),
            user_id: actor.user_id.to_string(),
        })
    }

    /// Starts listening for revocations: call it *before* checking a credential, so that a
    /// revocation landing between the check and the watch is not missed.
    pub fn listen_for_revocations(&self) -> RevocationListener {
        RevocationListener(self.revocations.subscribe())
    }

    /// A watch on the credential `actor` came with, from a listener started before its check.
    pub fn watch(&self, listener: RevocationListener, actor: &Actor) -> CredentialWatch {
        let expires = actor.expires.map(|at| {
            let left = at - time::OffsetDateTime::now_utc().unix_timestamp();
            tokio::time::Instant::now()
                + std::time::Duration::from_secs(u64::try_from(left).unwrap_or(0))
        });
        CredentialWatch {
            rx: listener.0,
            user_id: actor.user_id.to_string(),
            session: actor.session.clone(),
            expires,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_ends_at_its_credentials_expiry_and_on_its_revocation_only() {
        let (tx, _) = broadcast::channel(16);
        let watch = |session: &str, expires: Option<tokio::time::Instant>| CredentialWatch {
            rx: tx.subscribe(),
            user_id: "alice".into(),
            session: session.into(),
            expires,
        };
        let start = tokio::time::Instant::now();
        let mut w = watch("s1", Some(start + std::time::Duration::from_millis(300)));
        w.ended().await;
        assert!(start.elapsed() >= std::time::Duration::from_millis(300));

        let mut w = watch("s1", None);
        let ended = tokio::spawn(async move { w.ended().await });
        for other in [("bob", None), ("alice", Some("s2"))] {
            tx.send(Revocation {
                user_id: other.0.into(),
                session: other.1.map(str::to_owned),
            })
            .unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !ended.is_finished(),
            "another user's or session's end is not this one's"
        );
        tx.send(Revocation {
            user_id: "alice".into(),
            session: None,
        })
        .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), ended)
            .await
            .expect("all of alice's credentials ended")
            .unwrap();
    }
}
