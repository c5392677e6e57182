//! Console tickets and sessions. A ticket is a random single-use secret, valid 30 s, bound to the
//! user and the server it was issued for; only its SHA-256 is kept. The relay itself (bytes between
//! the WebSocket and the guest's VNC socket) is the HTTP layer's; this module decides who may open
//! one and counts the sessions per server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use nuage_shared::VmState;
use sha2::{Digest, Sha256};

use super::vms::domain_name;
use super::{Actor, App, AppError};
use crate::hypervisor::ConsoleStream;

/// How long a ticket may wait to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Console sessions one server may have at once.
pub const MAX_SESSIONS_PER_VM: usize = 4;

fn hash(ticket: &str) -> String {
    Sha256::digest(ticket.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    user_id: String,
    vm_id: String,
    expires: Instant,
}

/// Outstanding tickets (by hash) and open sessions (per server).
#[derive(Default)]
pub struct Consoles {
    tickets: Mutex<HashMap<String, Grant>>,
    sessions: Arc<Mutex<HashMap<String, usize>>>,
}

impl Consoles {
    fn issue(&self, user_id: &str, vm_id: &str, now: Instant) -> String {
        let ticket =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let mut tickets = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        tickets.retain(|_, g| g.expires > now);
        tickets.insert(
            hash(&ticket),
            Grant {
                user_id: user_id.into(),
                vm_id: vm_id.into(),
                expires: now + TICKET_TTL,
            },
        );
        ticket
    }

    /// Consumes a ticket: it works once, before it expires, for the server it was issued for.
    /// Returns the user it was issued to.
    fn redeem(&self, ticket: &str, vm_id: &str, now: Instant) -> Option<String> {
        let grant = self
            .tickets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&hash(ticket))?;
        (grant.vm_id == vm_id && grant.expires > now).then_some(grant.user_id)
    }

    /// Reserves a session slot on `vm_id`, released when the guard drops.
    fn open(&self, vm_id: &str) -> Option<SessionGuard> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let n = sessions.entry(vm_id.to_owned()).or_insert(0);
        if *n >= MAX_SESSIONS_PER_VM {
            return None;
        }
        *n += 1;
        Some(SessionGuard {
            sessions: self.sessions.clone(),
            vm_id: vm_id.to_owned(),
        })
    }
}

/// One open console session; dropping it frees the slot.
pub struct SessionGuard {
    sessions: Arc<Mutex<HashMap<String, usize>>>,
    vm_id: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = sessions.get_mut(&self.vm_id) {
            *n = n.saturating_sub(1);
        }
    }
}

/// A ticket as `POST /vms/{id}/console` returns it.
pub struct IssuedTicket {
    pub ticket: String,
    pub expires_in: Duration,
}

impl App {
    /// `POST /vms/{id}/console`: a ticket for the owner (or an admin) of a running server.
    pub async fn console_ticket(
        &self,
        actor: &Actor,
        vm_id: &str,
    ) -> Result<IssuedTicket, AppError> {
        let vm = self.get_vm(actor, vm_id).await?;
        if !matches!(vm.state, VmState::Running | VmState::Paused) {
            return Err(AppError::Conflict(format!(
                "A {} server has no screen to show.",
                vm.state.as_str()
            )));
        }
        Ok(IssuedTicket {
            ticket: self.consoles.issue(&actor.user_id, &vm.id, Instant::now()),
            expires_in: TICKET_TTL,
        })
    }

    /// Checks a ticket (consuming it) and opens the guest's VNC socket, before any upgrade.
    /// Returns the socket and the session slot that must live as long as the relay.
    pub async fn console_open(
        &self,
        vm_id: &str,
        ticket: &str,
    ) -> Result<(ConsoleStream, SessionGuard), AppError> {
        const BAD: &str = "The console ticket is invalid, used or expired; ask for a new one.";
        let user_id = self
            .consoles
            .redeem(ticket, vm_id, Instant::now())
            .ok_or(AppError::Unauthenticated(BAD))?;
        // The ticket's user must still exist and still see the server.
        let key = user_id.clone();
        let user = self
            .db
            .call(move |c| crate::db::users::user_by_id(c, &key))
            .await?
            .ok_or(AppError::Unauthenticated(BAD))?;
        let actor = Actor {
            user_id: user.id,
            username: user.username,
            role: user.role,
            session: String::new(),
        };
        let vm = self.get_vm(&actor, vm_id).await?;
        let guard = self.consoles.open(&vm.id).ok_or_else(|| {
            AppError::RateLimited(format!(
                "This server already has {MAX_SESSIONS_PER_VM} console sessions open."
            ))
        })?;
        let name = domain_name(&vm.id);
        let fd = self
            .hv_call(move |hv| hv.open_console(&name))
            .await
            .map_err(|e| match e {
                AppError::Internal { .. } => {
                    tracing::warn!(vm = %vm.id, error = %super::chain(&e), "cannot open a console");
                    AppError::Conflict(
                        "The screen of this server cannot be shown right now.".into(),
                    )
                }
                other => other,
            })?;
        Ok((fd, guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_works_once_for_its_server_before_it_expires() {
        let c = Consoles::default();
        let t0 = Instant::now();
        let t = c.issue("alice", "vm1", t0);
        assert_eq!(c.redeem(&t, "vm1", t0), Some("alice".into()));
        assert_eq!(c.redeem(&t, "vm1", t0), None, "single use");

        let t = c.issue("alice", "vm1", t0);
        assert_eq!(c.redeem(&t, "vm2", t0), None, "bound to its server");
        assert_eq!(c.redeem(&t, "vm1", t0), None, "a wrong try burns it");

        let t = c.issue("alice", "vm1", t0);
        assert_eq!(c.redeem(&t, "vm1", t0 + TICKET_TTL), None, "expired");
        assert_eq!(c.redeem("forged", "vm1", t0), None);
        let other = c.issue("bob", "vm1", t0);
        assert_ne!(other, t, "tickets are random");
    }

    #[test]
    fn sessions_per_server_are_capped_and_released() {
        let c = Consoles::default();
        let guards: Vec<_> = (0..MAX_SESSIONS_PER_VM)
            .map(|_| c.open("vm1").unwrap())
            .collect();
        assert!(c.open("vm1").is_none());
        assert!(c.open("vm2").is_some(), "per server");
        drop(guards);
        assert!(c.open("vm1").is_some());
    }
}
