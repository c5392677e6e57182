//! A server's record as every change sees it: loading what an actor may see (another tenant's
//! server is `NotFound`, exactly like a missing one), the state compare-and-set with its
//! broadcast to `/api/v1/events`, and the domain definition written from the record. Below the
//! verbs (`vms/`, `backups`) and the owner's turn (`turns.rs`), above `resources` (limits).

use nuage_shared::{Event, LimitOverrides, ResourceLimits, StopReason, Vm, VmState};

use super::paths::domain_name;
use super::{Actor, App, AppError};
use crate::db::{self, vms};
use crate::hypervisor::domain::{DiskSpec, DomainSpec, DomainTag, NicSpec};
use crate::hypervisor::Hypervisor;

impl App {
    /// The domain definition of a server: its disk, its seed, its serial log, its NIC, its
    /// limits and its tag.
    pub(super) fn domain_spec(
        &self,
        vm: &Vm,
        vcpus: u32,
        memory_mib: u64,
        limits: ResourceLimits,
    ) -> DomainSpec {
        let dir = self.vm_dir(&vm.id);
        let nic = match (&vm.mac_address, vm.ip_addresses.first()) {
            (Some(mac), Some(ip)) => Some(NicSpec {
                network: self.net.name.clone(),
                mac: mac.clone(),
                ip: ip.clone(),
                inbound_kib_per_sec: limits.net_inbound_kib_per_sec,
                outbound_kib_per_sec: limits.net_outbound_kib_per_sec,
            }),
            _ => None,
        };
        DomainSpec {
            limits,
            nic,
            name: domain_name(&vm.id),
            uuid: vm.id.to_string(),
            domain_type: self.hv.domain_type(self.accel),
            vnc_loopback: self.settings.console_listen == crate::config::ConsoleListen::Loopback,
            vcpus,
            memory_mib,
            disks: vec![
                DiskSpec {
                    path: dir.join("disk.qcow2"),
                    format: "qcow2",
                    target: "vda".into(),
                    readonly: false,
                },
                DiskSpec {
                    path: dir.join("seed.img"),
                    format: "raw",
                    target: "vdb".into(),
                    readonly: true,
                },
            ],
            serial_log: Some(dir.join("serial.log")),
            tag: DomainTag {
                daemon: self.daemon_id.clone(),
                owner: vm.owner_id.to_string(),
                vps: vm.id.to_string(),
            },
        }
    }

    /// Loads a server the actor may see: their own, or any for an admin. Anything else is 404,
    /// exactly like a server that does not exist.
    pub(super) async fn visible_vm(&self, actor: &Actor, id: &str) -> Result<Vm, AppError> {
        let key = id.to_owned();
        let vm = self.db.call(move |c| vms::get(c, &key)).await?;
        match vm {
            Some(mut vm) if vm.owner_id == actor.user_id || actor.is_admin() => {
                self.decorate(std::slice::from_mut(&mut vm)).await?;
                Ok(vm)
            }
            _ => Err(AppError::NotFound("virtual server")),
        }
    }

    /// The limits an admin set on a user's servers.
    pub(super) async fn owner_limits(&self, owner: &str) -> Result<LimitOverrides, AppError> {
        let owner = owner.to_owned();
        Ok(self.db.call(move |c| db::users::limits(c, &owner)).await?)
    }

    /// Writes a server's persistent definition again (size, limits): a running server takes it
    /// at its next boot.
    pub(super) async fn redefine(&self, vm: &Vm) -> Result<(), AppError> {
        let (v, m) = vm
            .pending
            .map_or((vm.vcpus, vm.memory_mib), |p| (p.vcpus, p.memory_mib));
        let owner = self.owner_limits(&vm.owner_id).await?;
        let spec = self.domain_spec(vm, v, m, self.limits_of(vm, v, m, owner));
        self.hv_call(move |hv| hv.define(&spec.to_xml()?).map(drop))
            .await
    }

    /// Tells subscribers the whole record of `vm` (`VmUpdated`): after a create, resize or new
    /// limits.
    pub(super) fn announce_record(&self, vm: &Vm) {
        self.announce(
            vm,
            Event::VmUpdated {
                vm: Box::new(vm.clone()),
            },
        );
    }

    /// Tells subscribers about a server as it now is.
    pub(super) fn announce(&self, vm: &Vm, event: Event) {
        let _ = self.events.send(super::OwnedEvent {
            owner_id: vm.owner_id.clone(),
            event,
        });
    }

    pub(super) async fn reload(&self, id: &str) -> Result<Vm, AppError> {
        let key = id.to_owned();
        let mut vm = self
            .db
            .call(move |c| vms::get(c, &key))
            .await?
            .ok_or(AppError::NotFound("virtual server"))?;
        self.decorate(std::slice::from_mut(&mut vm)).await?;
        Ok(vm)
    }

    /// Moves a server from `from` to `to` if it is still in `from`; tells subscribers.
    pub(super) async fn transition(
        &self,
        vm: &Vm,
        from: VmState,
        to: VmState,
    ) -> Result<bool, AppError> {
        self.transition_because(vm, from, to, None).await
    }

    /// [`App::transition`], recording why the server stopped when `to` is `stopped`.
    pub(super) async fn transition_because(
        &self,
        vm: &Vm,
        from: VmState,
        to: VmState,
        reason: Option<StopReason>,
    ) -> Result<bool, AppError> {
        let id = vm.id.clone();
        let moved = self
            .db
            .call(move |c| vms::move_state(c, &id, from, to, reason))
            .await?;
        if moved && from != to {
            self.announce(
                vm,
                Event::VmState {
                    vm_id: vm.id.clone(),
                    state: to,
                    at: db::now_rfc3339(),
                    stop_reason: reason.filter(|_| to == VmState::Stopped),
                },
            );
        }
        Ok(moved)
    }
}

/// Caps a just-started domain's memory (see [`Hypervisor::set_memory_hard_limit`]). A failure is
/// logged, not fatal: the guest is up and its own memory size still bounds it.
pub(super) fn cap_memory(hv: &dyn Hypervisor, name: &str, mib: u64, simulated: bool) {
    if simulated || mib == 0 {
        return;
    }
    if let Err(e) = hv.set_memory_hard_limit(name, mib) {
        tracing::error!(domain = name, error = %super::chain(&e), "cannot set the memory hard limit");
    }
}
