//! Power actions: start, shutdown, stop, reboot, reset, suspend, resume.

use std::sync::Arc;

use nuage_shared::{StopReason, Vm, VmAction, VmState};

use super::cap_memory;
use crate::app::lifecycle::{self, Plan, Request};
use crate::app::paths::domain_name;
use crate::app::{Actor, App, AppError};
use crate::db::vms;
use crate::hypervisor::HvError;

impl App {
    /// `POST /vms/{id}/{action}`.
    pub async fn vm_action(
        self: &Arc<Self>,
        actor: &Actor,
        id: &str,
        action: VmAction,
    ) -> Result<Vm, AppError> {
        let (app, actor, id) = (self.clone(), actor.clone(), id.to_owned());
        crate::app::to_completion(async move { app.vm_action_steps(&actor, &id, action).await })
            .await
    }

    async fn vm_action_steps(
        &self,
        actor: &Actor,
        id: &str,
        action: VmAction,
    ) -> Result<Vm, AppError> {
        let vm = self.visible_vm(actor, id).await?;
        let (vm, _turn, plan) = self.take(&vm.id, Request::Act(action)).await?;
        let Plan::Move { during, after } = plan else {
            return Err(AppError::internal("an action without states", "lifecycle"));
        };
        if !self.transition(&vm, vm.state, during).await? {
            return Err(AppError::Conflict(
                "The server changed state meanwhile; try again.".into(),
            ));
        }
        let name = domain_name(&vm.id);
        let (cap, simulated) = (vm.limits.memory_hard_limit_mib, self.simulated);
        let result = self
            .hv_call(move |hv| match action {
                VmAction::Start => hv
                    .start(&name)
                    .map(|()| cap_memory(hv, &name, cap, simulated)),
                VmAction::Shutdown => hv.shutdown(&name),
                VmAction::Stop => match hv.destroy(&name) {
                    // Already off (a shutdown finished meanwhile): that is what was asked.
                    Err(HvError::InvalidState(_)) => Ok(()),
                    other => other,
                },
                VmAction::Reboot => hv.reboot(&name),
                VmAction::Reset => hv.reset(&name),
                VmAction::Suspend => hv.suspend(&name),
                VmAction::Resume => hv.resume(&name),
            })
            .await;
        match result {
            Ok(()) => {
                // Stopped by its owner or an admin (a shutdown's end comes as libvirt's event).
                let reason = matches!(action, VmAction::Stop | VmAction::Shutdown)
                    .then_some(StopReason::Stopped);
                self.transition_because(&vm, during, after, reason).await?;
                if after == VmState::Stopped {
                    self.apply_pending(&vm.id).await?;
                }
            }
            Err(e) => {
                // Back to what libvirt says the domain is doing.
                let name = domain_name(&vm.id);
                let actual = self
                    .hv_call(move |hv| hv.state(&name))
                    .await
                    .map(lifecycle::settled)
                    .unwrap_or(VmState::Error);
                self.transition(&vm, during, actual).await?;
                return Err(e);
            }
        }
        self.reload(&vm.id).await
    }

    /// Makes a pending resize the current size (the domain definition already has it).
    pub(super) async fn apply_pending(&self, id: &str) -> Result<(), AppError> {
        let key = id.to_owned();
        Ok(self.db.call(move |c| vms::apply_pending(c, &key)).await?)
    }
}
