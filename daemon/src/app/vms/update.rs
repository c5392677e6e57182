//! `PATCH /vms/{id}`: rename, and resize within quota.

use std::sync::Arc;

use nuage_shared::{limits, validate_vm_name, PendingResize, UpdateVm, Vm};

use super::{check_range, footprint, growth, name_taken, GIB};
use crate::app::lifecycle::{Plan, Request};
use crate::app::{Actor, App, AppError};
use crate::db::vms;
use crate::hypervisor::HvError;
use crate::storage;

impl App {
    /// `PATCH /vms/{id}`: rename, and resize within quota. A stopped server takes the new size at
    /// once; a running one grows its disk live and takes new vCPUs and memory at its next boot
    /// (shown as `pending`). Disks only grow.
    pub async fn update_vm(
        self: &Arc<Self>,
        actor: &Actor,
        id: &str,
        req: UpdateVm,
    ) -> Result<Vm, AppError> {
        let (app, actor, id) = (self.clone(), actor.clone(), id.to_owned());
        crate::app::to_completion(async move { app.update_vm_steps(&actor, &id, req).await }).await
    }

    async fn update_vm_steps(
        &self,
        actor: &Actor,
        id: &str,
        req: UpdateVm,
    ) -> Result<Vm, AppError> {
        let vm = self.visible_vm(actor, id).await?;
        let turn = self.turn(&vm.id).await;
        let vm = self.reload(&vm.id).await?;
        if let Some(n) = &req.name {
            validate_vm_name(n).map_err(|m| AppError::Invalid(m.into()))?;
        }
        let vcpus = req
            .vcpus
            .unwrap_or(vm.pending.map_or(vm.vcpus, |p| p.vcpus));
        let memory_mib = req
            .memory_mib
            .unwrap_or(vm.pending.map_or(vm.memory_mib, |p| p.memory_mib));
        let disk_gib = req.disk_gib.unwrap_or(vm.disk_gib);
        check_range("vcpus", vcpus, limits::VCPUS)?;
        check_range("memory_mib", memory_mib, limits::MEMORY_MIB)?;
        check_range("disk_gib", disk_gib, limits::DISK_GIB)?;
        if disk_gib < vm.disk_gib {
            return Err(AppError::Invalid(format!(
                "Disks only grow: this one is {} GiB already.",
                vm.disk_gib
            )));
        }
        let sizing = req.vcpus.is_some() || req.memory_mib.is_some() || req.disk_gib.is_some();
        // Checked after the input (a bad size is 422 whatever the state).
        let (vm, _turn, plan) = self.decide_in_turn(vm, turn, Request::Update { sizing })?;
        let Plan::Proceed { live } = plan else {
            return Err(AppError::internal("an update without a plan", "lifecycle"));
        };
        // A running server takes new vCPUs and memory at its next boot (`pending`).
        let resized = Vm {
            vcpus: if live { vm.vcpus } else { vcpus },
            memory_mib: if live { vm.memory_mib } else { memory_mib },
            disk_gib,
            pending: (live && (vcpus != vm.vcpus || memory_mib != vm.memory_mib))
                .then_some(PendingResize { vcpus, memory_mib }),
            name: req.name.clone().unwrap_or_else(|| vm.name.clone()),
            ..vm.clone()
        };

        // Quota admission for what grows, and the new record, in one transaction.
        let (before, after) = (footprint(&vm), footprint(&resized));
        let row = resized.clone();
        let expected_state = vm.state;
        let room = self.host_room().await;
        let more = growth(&before, &after);
        self.db
            .call(move |c| vms::resize(c, &row, expected_state, &more, &room))
            .await?
            .map_err(|r| name_taken(r, &resized.name))?;

        if sizing {
            let owner = self.owner_limits(&vm.owner_id).await?;
            let limits = self.limits_of(&vm, vcpus, memory_mib, owner);
            let spec = self.domain_spec(&vm, vcpus, memory_mib, limits);
            let (grow, old_disk) = (disk_gib > vm.disk_gib, vm.disk_gib);
            let grown = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let grown_flag = grown.clone();
            let vm_id = vm.id.clone();
            let applied = self
                .hv_call(move |hv| {
                    if grow && live {
                        hv.grow_disk_live(&spec.name, "vda", disk_gib * GIB)?;
                    } else if grow {
                        storage::grow(&spec.disks[0].path, disk_gib).map_err(|e| {
                            HvError::Refused(format!("growing the disk failed: {e}"))
                        })?;
                    }
                    grown_flag.store(grow, std::sync::atomic::Ordering::SeqCst);
                    if crate::failpoints::failpoint_for("resize-after-grow", &vm_id) {
                        return Err(HvError::Refused("failpoint resize-after-grow".into()));
                    }
                    // The persistent definition carries the new size; a running domain takes it
                    // at its next boot.
                    hv.define(&spec.to_xml()?).map(drop)
                })
                .await;
            if let Err(e) = applied {
                // Give back what was recorded, but a disk that already grew keeps its new size
                // (disks never shrink): the quota must count what the disk really is.
                let kept_disk = if grown.load(std::sync::atomic::Ordering::SeqCst) {
                    disk_gib
                } else {
                    old_disk
                };
                let (id, v, m) = (vm.id.clone(), vm.vcpus, vm.memory_mib);
                let pending = vm.pending;
                let _ = self
                    .db
                    .call(move |c| {
                        vms::set_size(c, &id, v, m, kept_disk)?;
                        vms::set_pending(c, &id, pending)
                    })
                    .await;
                return Err(e);
            }
        }
        let vm = self.reload(&vm.id).await?;
        self.announce_record(&vm);
        Ok(vm)
    }
}
