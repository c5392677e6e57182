//! Snapshots: internal to the server's qcow2 disk (libvirt's snapshot API), with the guest's
//! memory when it runs, disk-only when it is off; each counts against the `snapshots` quota.

use std::sync::Arc;

use nuage_shared::{validate_vm_name, CreateSnapshot, Quota, Snapshot, Vm};

use crate::app::lifecycle::{settled, Request};
use crate::app::paths::domain_name;
use crate::app::vms::cap_memory;
use crate::app::{Actor, App, AppError};
use crate::db::{self, backups as q, Refusal};
use crate::hypervisor::{DomainRunState, UNLIMITED_MIB};

impl App {
    /// `GET /vms/{id}/snapshots`.
    pub async fn list_snapshots(
        &self,
        actor: &Actor,
        vm_id: &str,
    ) -> Result<Vec<Snapshot>, AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        Ok(self.db.call(move |c| q::snapshots(c, &vm.id)).await?)
    }

    async fn visible_snapshot(
        &self,
        actor: &Actor,
        vm_id: &str,
        sid: &str,
    ) -> Result<(Vm, Snapshot), AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        let (v, s) = (vm.id.clone(), sid.to_owned());
        let snap = self
            .db
            .call(move |c| q::snapshot(c, &v, &s))
            .await?
            .ok_or(AppError::NotFound("snapshot"))?;
        Ok((vm, snap))
    }

    /// `POST /vms/{id}/snapshots`: counted against the `snapshots` quota (checked and recorded in
    /// one transaction); with memory when the server runs.
    pub async fn create_snapshot(
        self: &Arc<Self>,
        actor: &Actor,
        vm_id: &str,
        req: CreateSnapshot,
    ) -> Result<Snapshot, AppError> {
        let (app, actor, id) = (self.clone(), actor.clone(), vm_id.to_owned());
        crate::app::to_completion(async move { app.create_snapshot_steps(&actor, &id, req).await })
            .await
    }

    async fn create_snapshot_steps(
        &self,
        actor: &Actor,
        vm_id: &str,
        req: CreateSnapshot,
    ) -> Result<Snapshot, AppError> {
        validate_vm_name(&req.name).map_err(|m| {
            AppError::Invalid(
                m.replace("server", "snapshot")
                    .replace("Server", "Snapshot"),
            )
        })?;
        let (vm, _turn) = self.settled_vm(actor, vm_id).await?;
        let snap = Snapshot {
            id: uuid::Uuid::new_v4().to_string().into(),
            vm_id: vm.id.clone(),
            name: req.name.clone(),
            created_at: db::now_rfc3339(),
            with_memory: false,
        };
        let (row, owner) = (snap.clone(), vm.owner_id.clone());
        let room = self.host_room().await;
        let one = Quota {
            vcpus: 0,
            memory_mib: 0,
            disk_gib: 0,
            vms: 0,
            snapshots: 1,
        };
        self.db
            .call(move |c| q::insert_snapshot_admitted(c, &row, &owner, &one, &room))
            .await?
            .map_err(|r| match r {
                Refusal::NameTaken => AppError::Conflict(format!(
                    "This server has a snapshot named {} already.",
                    snap.name
                )),
                other => other.into(),
            })?;
        let (name, sid) = (domain_name(&vm.id), snap.id.clone());
        let (cap, simulated) = (vm.limits.memory_hard_limit_mib, self.simulated);
        let taken = self
            .hv_call(move |hv| {
                // The snapshot keeps the live definition, and reverting starts QEMU from it: a
                // memory hard limit in it would become a locked-memory limit that containerised
                // hosts refuse (see `cap_memory`). Lift it for the instant of the snapshot.
                let lifted =
                    !simulated && cap > 0 && hv.set_memory_hard_limit(&name, UNLIMITED_MIB).is_ok();
                let taken = hv.create_snapshot(&name, &sid);
                if lifted {
                    cap_memory(hv, &name, cap, simulated);
                }
                taken
            })
            .await;
        match taken {
            Ok(with_memory) => {
                let id = snap.id.clone();
                self.db
                    .call(move |c| q::set_snapshot_memory(c, &id, with_memory))
                    .await?;
                self.measure_disk(&vm.id).await;
                Ok(Snapshot {
                    with_memory,
                    ..snap
                })
            }
            Err(e) => {
                let id = snap.id.clone();
                let _ = self.db.call(move |c| q::delete_snapshot(c, &id)).await;
                Err(e)
            }
        }
    }

    /// `POST /vms/{id}/snapshots/{sid}/revert`: the disk (and, for a snapshot with memory, the
    /// running guest) as it was; returns the server in the state that leaves it.
    pub async fn revert_snapshot(
        self: &Arc<Self>,
        actor: &Actor,
        vm_id: &str,
        sid: &str,
    ) -> Result<Vm, AppError> {
        let (app, actor) = (self.clone(), actor.clone());
        let (id, sid) = (vm_id.to_owned(), sid.to_owned());
        crate::app::to_completion(async move { app.revert_snapshot_steps(&actor, &id, &sid).await })
            .await
    }

    async fn revert_snapshot_steps(
        &self,
        actor: &Actor,
        vm_id: &str,
        sid: &str,
    ) -> Result<Vm, AppError> {
        let (vm, snap) = self.visible_snapshot(actor, vm_id, sid).await?;
        let (vm, _turn) = self.settled_vm(actor, &vm.id).await?;
        let name = domain_name(&vm.id);
        let (cap, simulated) = (vm.limits.memory_hard_limit_mib, self.simulated);
        let run = self
            .hv_call(move |hv| {
                hv.revert_snapshot(&name, &snap.id)?;
                let run = hv.state(&name)?;
                if run == DomainRunState::Running {
                    cap_memory(hv, &name, cap, simulated);
                }
                Ok(run)
            })
            .await?;
        self.transition(&vm, vm.state, settled(run)).await?;
        self.reload(&vm.id).await
    }

    /// `DELETE /vms/{id}/snapshots/{sid}`: frees its quota.
    pub async fn delete_snapshot(
        self: &Arc<Self>,
        actor: &Actor,
        vm_id: &str,
        sid: &str,
    ) -> Result<(), AppError> {
        let (app, actor) = (self.clone(), actor.clone());
        let (id, sid) = (vm_id.to_owned(), sid.to_owned());
        crate::app::to_completion(async move { app.delete_snapshot_steps(&actor, &id, &sid).await })
            .await
    }

    async fn delete_snapshot_steps(
        &self,
        actor: &Actor,
        vm_id: &str,
        sid: &str,
    ) -> Result<(), AppError> {
        let (vm, snap) = self.visible_snapshot(actor, vm_id, sid).await?;
        let (vm, _turn, _) = self.take(&vm.id, Request::DeleteSnapshot).await?;
        let (name, id) = (domain_name(&vm.id), snap.id.clone());
        match self.hv_call(move |hv| hv.delete_snapshot(&name, &id)).await {
            Ok(()) | Err(AppError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.db
            .call(move |c| q::delete_snapshot(c, &snap.id))
            .await?;
        self.measure_disk(&vm.id).await;
        Ok(())
    }
}
