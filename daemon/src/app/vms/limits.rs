//! `PUT /vms/{id}/limits` (admins): a server's own limits, written into its definition.

use nuage_shared::{LimitOverrides, Vm};

use crate::app::{Actor, App, AppError};
use crate::db::vms;

impl App {
    /// `PUT /vms/{id}/limits` (admins): limits for one server, replacing what was set on it.
    pub async fn set_vm_limits(
        &self,
        actor: &Actor,
        vm_id: &str,
        limits: LimitOverrides,
    ) -> Result<Vm, AppError> {
        actor.require_admin()?;
        let vm = self.get_vm(actor, vm_id).await?;
        limits.validate().map_err(|m| AppError::Invalid(m.into()))?;
        let id = vm.id.clone();
        self.db
            .call(move |c| vms::set_limits(c, &id, &limits))
            .await?;
        let vm = self.get_vm(actor, vm_id).await?;
        self.redefine(&vm).await?;
        self.announce(
            &vm,
            nuage_shared::Event::VmUpdated {
                vm: Box::new(vm.clone()),
            },
        );
        Ok(vm)
    }
}
