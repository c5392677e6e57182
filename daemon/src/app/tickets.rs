//! Single-use tickets for WebSockets, which browsers cannot give an `Authorization` header: a
//! random secret, valid [`TICKET_TTL`], handed out to an authenticated caller and redeemed once
//! in the socket's URL, so no long-lived credential ever sits in a URL (proxies log URLs). Only
//! each ticket's SHA-256 is kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};

/// How long a ticket may wait to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Outstanding tickets at most; past it the oldest are the first to go.
const MAX_TICKETS: usize = 10_000;

fn hash(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.as_bytes()).into()
}

/// Outstanding tickets, each with what it grants.
pub struct Tickets<G> {
    grants: Mutex<HashMap<[u8; 32], (G, Instant)>>,
}

impl<G> Default for Tickets<G> {
    fn default() -> Self {
        Tickets {
            grants: Mutex::new(HashMap::new()),
        }
    }
}

impl<G> Tickets<G> {
    /// A new ticket for `grant`, valid until `now + TICKET_TTL`. Expired tickets are pruned here.
    pub fn issue(&self, grant: G, now: Instant) -> String {
        let ticket =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let mut grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        grants.retain(|_, (_, expires)| *expires > now);
        if grants.len() >= MAX_TICKETS {
            if let Some(oldest) = grants.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| *k) {
                grants.remove(&oldest);
            }
        }
        grants.insert(hash(&ticket), (grant, now + TICKET_TTL));
        ticket
    }

    /// Consumes a ticket: what it grants, once, before it expires.
    pub fn redeem(&self, ticket: &str, now: Instant) -> Option<G> {
        let (grant, expires) = self
            .grants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&hash(ticket))?;
        (expires > now).then_some(grant)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.grants.lock().unwrap().len()
    }
}

impl super::App {
    /// `POST /events/ticket`: a ticket that opens `/events` once, as the caller.
    pub fn events_ticket(&self, actor: &super::Actor) -> String {
        self.event_tickets.issue(actor.clone(), Instant::now())
    }

    /// Redeems an events ticket: the caller it was issued to, if their credential still holds.
    pub async fn events_open(&self, ticket: &str) -> Result<super::Actor, super::AppError> {
        const BAD: &str = "The events ticket is invalid, used or expired; ask for a new one.";
        let actor = self
            .event_tickets
            .redeem(ticket, Instant::now())
            .ok_or(super::AppError::Unauthenticated(BAD))?;
        self.revalidate(&actor)
            .await?
            .ok_or(super::AppError::Unauthenticated(BAD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_works_once_before_it_expires_and_expired_ones_are_pruned() {
        let t = Tickets::default();
        let t0 = Instant::now();
        let a = t.issue("alice", t0);
        assert_eq!(t.redeem(&a, t0), Some("alice"));
        assert_eq!(t.redeem(&a, t0), None, "single use");
        let b = t.issue("bob", t0);
        assert_eq!(t.redeem(&b, t0 + TICKET_TTL), None, "expired");
        assert_eq!(t.redeem("forged", t0), None);
        let _ = t.issue("carol", t0);
        let _ = t.issue("dave", t0 + TICKET_TTL);
        assert_eq!(t.len(), 1, "the expired ticket was pruned");
        assert_ne!(t.issue("x", t0), t.issue("x", t0), "tickets are random");
    }
}
