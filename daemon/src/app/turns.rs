//! One change at a time per server: the *turn*.
//!
//! A server's state has one record (its database row), but deciding a change takes several steps:
//! read the row, check that no job holds the server, compare-and-set a transitional state, call
//! libvirt, settle. Whoever changes a server (an action, a resize, a delete, a libvirt event, a
//! job claiming it) first takes the server's turn, so those steps cannot interleave with another
//! change of the same server: a job cannot claim a server between an action's check and its
//! compare-and-set, and a late libvirt event cannot settle a state while an action is in flight.
//! A turn is held for one change, never for a whole job (a job marks the server busy instead,
//! while holding the turn).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::App;

/// The turns of the servers someone is changing now.
#[derive(Default)]
pub struct Turns {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// A server's turn, released when dropped.
pub type Turn = tokio::sync::OwnedMutexGuard<()>;

impl App {
    /// Waits for the server's turn (first come, first served).
    pub(super) async fn turn(&self, vm_id: &str) -> Turn {
        let lock = {
            let mut locks = self.turns.locks.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(lock) = locks.get(vm_id).and_then(Weak::upgrade) {
                lock
            } else {
                // Forget the servers nobody waits for any more, so the map stays small.
                locks.retain(|_, w| w.strong_count() > 0);
                let lock = Arc::new(tokio::sync::Mutex::new(()));
                locks.insert(vm_id.to_owned(), Arc::downgrade(&lock));
                lock
            }
        };
        lock.lock_owned().await
    }
}
