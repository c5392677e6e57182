//! Deleting a server: `deleting`, then its domain, files, address and record (its quota) go.

use std::sync::Arc;

use nuage_shared::{Event, VmState};

use crate::app::lifecycle::Request;
use crate::app::{Actor, App, AppError};

impl App {
    /// `DELETE /vms/{id}`: powers off, removes the domain, its disk and seed, and frees the quota.
    pub async fn delete_vm(self: &Arc<Self>, actor: &Actor, id: &str) -> Result<(), AppError> {
        let (app, actor, id) = (self.clone(), actor.clone(), id.to_owned());
        crate::app::to_completion(async move { app.delete_vm_steps(&actor, &id).await }).await
    }

    async fn delete_vm_steps(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        let vm = self.visible_vm(actor, id).await?;
        let (vm, turn, _) = self.take(&vm.id, Request::Delete).await?;
        if !self.transition(&vm, vm.state, VmState::Deleting).await? {
            return Err(AppError::Conflict(
                "The server changed state meanwhile; try again.".into(),
            ));
        }
        // `deleting` now refuses every other change: the slow removal needs no turn.
        drop(turn);
        self.discard(&vm).await;
        self.announce(
            &vm,
            Event::VmDeleted {
                vm_id: vm.id.clone(),
            },
        );
        Ok(())
    }
}
