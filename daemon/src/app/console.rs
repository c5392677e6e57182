//! Console tickets and sessions. A ticket is a random single-use secret, valid 30 s, bound to the
//! user and the server it was issued for; only its SHA-256 is kept. The relay itself (bytes between
//! the WebSocket and the guest's VNC socket) is the HTTP layer's; this module decides who may open
//! one and counts the sessions per server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lifecycle::{decide, Decision, Request};

use super::paths::domain_name;
use super::tickets::Tickets;
pub use super::tickets::TICKET_TTL;
use super::{Actor, App, AppError};
use crate::hypervisor::ConsoleStream;

/// Console sessions one server may have at once.
pub const MAX_SESSIONS_PER_VM: usize = 4;

/// What a console ticket grants: this caller (with the credential they asked with), this server.
#[derive(Debug, Clone)]
struct Grant {
    actor: Actor,
    vm_id: String,
}

/// Outstanding tickets and open sessions (per server).
#[derive(Default)]
pub struct Consoles {
    tickets: Tickets<Grant>,
    sessions: Arc<Mutex<HashMap<String, usize>>>,
}

impl Consoles {
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
        // A look at the state, not a change of it: no turn is needed.
        if let Decision::Deny(why) = decide(vm.state, None, Request::Console) {
            return Err(AppError::Conflict(why.sentence()));
        }
        let grant = Grant {
            actor: actor.clone(),
            vm_id: vm.id.into_string(),
        };
        Ok(IssuedTicket {
            ticket: self.consoles.tickets.issue(grant, Instant::now()),
            expires_in: TICKET_TTL,
        })
    }

    /// Checks a ticket (consuming it) and opens the guest's VNC socket, before any upgrade.
    /// Returns the socket, the session slot that must live as long as the relay, and the caller
    /// (whose credential the relay watches).
    pub async fn console_open(
        &self,
        vm_id: &str,
        ticket: &str,
    ) -> Result<(ConsoleStream, SessionGuard, Actor), AppError> {
        const BAD: &str = "The console ticket is invalid, used or expired; ask for a new one.";
        let grant = self
            .consoles
            .tickets
            .redeem(ticket, Instant::now())
            .filter(|g| g.vm_id == vm_id)
            .ok_or(AppError::Unauthenticated(BAD))?;
        // The credential the ticket was asked with must still be valid, and its user must still
        // see the server.
        let actor = self
            .revalidate(&grant.actor)
            .await?
            .ok_or(AppError::Unauthenticated(BAD))?;
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
        Ok((fd, guard, actor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
