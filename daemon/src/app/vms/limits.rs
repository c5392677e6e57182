//! Limits set by admins: a user's (on all their servers) and one server's, written into the
//! servers' definitions.

use nuage_shared::{LimitOverrides, UserDetail, Vm};

use crate::app::{Actor, App, AppError};
use crate::db::{self, vms};

impl App {
    /// `PUT /users/{id}/limits` (admins): limits for all of a user's servers. Servers take them
    /// at their next boot (their definitions are updated now).
    pub async fn set_user_limits(
        &self,
        actor: &Actor,
        user_id: &str,
        limits: LimitOverrides,
    ) -> Result<UserDetail, AppError> {
        actor.require_admin()?;
        limits.validate().map_err(|m| AppError::Invalid(m.into()))?;
        let id = user_id.to_owned();
        if !self
            .db
            .call(move |c| db::users::set_limits(c, &id, &limits))
            .await?
        {
            return Err(AppError::NotFound("user"));
        }
        let owner = user_id.to_owned();
        for vm in self.db.call(move |c| vms::list(c, Some(&owner))).await? {
            if vm.host_id == self.daemon_id {
                self.redefine(&vm).await?;
            }
        }
        let id = user_id.to_owned();
        self.db
            .call(move |c| db::users::user_detail(c, &id))
            .await?
            .ok_or(AppError::NotFound("user"))
    }

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
        self.announce_record(&vm);
        Ok(vm)
    }
}
