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
//!
//! Holding the turn, the owner reads the record as it is now and asks the lifecycle table
//! (`lifecycle::decide`) what the request does, with the job that holds the server, if any: the
//! state and the busy mark are decided together, in one place, under one lock. The turn's
//! waiters are the server's request queue, served first come, first served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use nuage_shared::Vm;

use super::lifecycle::{decide, Decision, Plan, Request};
use super::{App, AppError};

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

    /// The owner's step for a request about server `vm_id`: waits for its turn, reads its
    /// record as it now is and decides `request` against it and the job that holds it. A denial
    /// is the user's 409.
    pub(super) async fn take(
        &self,
        vm_id: &str,
        request: Request,
    ) -> Result<(Vm, Turn, Plan), AppError> {
        let turn = self.turn(vm_id).await;
        let vm = self.reload(vm_id).await?;
        self.decide_in_turn(vm, turn, request)
    }

    /// [`App::take`] for a caller that holds the turn already and has just read `vm`.
    pub(super) fn decide_in_turn(
        &self,
        vm: Vm,
        turn: Turn,
        request: Request,
    ) -> Result<(Vm, Turn, Plan), AppError> {
        match decide(vm.state, self.busy_with(&vm.id), request) {
            Decision::Accept(plan) => Ok((vm, turn, plan)),
            Decision::Deny(why) => Err(AppError::Conflict(why.sentence())),
            Decision::Ignore(_) => Err(AppError::Conflict(
                "The server changed state meanwhile; try again.".into(),
            )),
        }
    }
}
