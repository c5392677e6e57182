//! Virtual servers: what a request about one means. The state machine itself is
//! `app/lifecycle.rs` (its doc has the state diagram); each change takes the server's turn and
//! asks it (`turns.rs`). One file per verb: `create`, `act`, `update`, `delete`, `limits`;
//! libvirt's events settle states in `events`, and `reconcile` brings records and libvirt into
//! agreement at start.
//!
//! The database row is the single record of a server's state. Requests move it to a
//! transitional state with a compare-and-set (so two concurrent actions cannot both pass), call
//! libvirt, and settle it; libvirt's own lifecycle events (not polling) settle what happens later,
//! such as a guest finishing its ACPI shutdown, and are pushed to `/api/v1/events` subscribers.

mod act;
mod create;
mod delete;
mod events;
mod limits;
mod reconcile;
mod update;

pub(super) use create::{DiskSource, SeedInput};
pub(super) use reconcile::reconcile;

pub use nuage_shared::VmAction;
use nuage_shared::{Event, LimitOverrides, Quota, ResourceLimits, StopReason, Vm, VmState};

use super::paths::domain_name;
use super::{Actor, App, AppError};
use crate::db::{self, vms, Refusal};
use crate::hypervisor::domain::{DiskSpec, DomainSpec, DomainTag, NicSpec};
use crate::hypervisor::{HvError, Hypervisor};

const GIB: u64 = 1 << 30;

pub(super) fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    what: &str,
    v: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), AppError> {
    if range.contains(&v) {
        Ok(())
    } else {
        Err(AppError::Invalid(format!(
            "{what} must be between {} and {}; {v} was asked.",
            range.start(),
            range.end()
        )))
    }
}

fn validate_keys(keys: &[String]) -> Result<(), AppError> {
    if keys.len() > 32 {
        return Err(AppError::Invalid(
            "At most 32 SSH keys may be given.".into(),
        ));
    }
    for k in keys {
        let ok = !k.is_empty() && k.len() <= 16 * 1024 && !k.contains(['\n', '\r', '\0']);
        let kind = k.split_whitespace().next().unwrap_or("");
        if !ok
            || !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-"))
        {
            return Err(AppError::Invalid(
                "An SSH key must be one line such as 'ssh-ed25519 AAAA… comment'.".into(),
            ));
        }
    }
    Ok(())
}

/// What a server takes of its owner's quota (the larger of current and pending sizes).
pub(super) fn footprint(vm: &Vm) -> Quota {
    let (v, m) = vm.pending.map_or((vm.vcpus, vm.memory_mib), |p| {
        (p.vcpus.max(vm.vcpus), p.memory_mib.max(vm.memory_mib))
    });
    Quota {
        vcpus: v,
        memory_mib: m,
        disk_gib: vm.disk_gib,
        vms: 1,
        snapshots: 0,
    }
}

/// How much more `after` takes than `before`, per resource.
fn growth(before: &Quota, after: &Quota) -> Quota {
    Quota {
        vcpus: after.vcpus.saturating_sub(before.vcpus),
        memory_mib: after.memory_mib.saturating_sub(before.memory_mib),
        disk_gib: after.disk_gib.saturating_sub(before.disk_gib),
        vms: after.vms.saturating_sub(before.vms),
        snapshots: after.snapshots.saturating_sub(before.snapshots),
    }
}

impl App {
    /// The domain definition of a server: its disk, its seed, its serial log, its NIC, its
    /// limits and its tag.
    fn domain_spec(
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
            uuid: vm.id.clone(),
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
                owner: vm.owner_id.clone(),
                vps: vm.id.clone(),
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
    async fn owner_limits(&self, owner: &str) -> Result<LimitOverrides, AppError> {
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

    /// `GET /vms`: the caller's servers; with `all`, an admin's view of every server.
    pub async fn list_vms(&self, actor: &Actor, all: bool) -> Result<Vec<Vm>, AppError> {
        if all {
            actor.require_admin()?;
        }
        let owner = (!all).then(|| actor.user_id.clone());
        let mut list = self
            .db
            .call(move |c| vms::list(c, owner.as_deref()))
            .await?;
        self.decorate(&mut list).await?;
        Ok(list)
    }

    /// `GET /vms/{id}`.
    pub async fn get_vm(&self, actor: &Actor, id: &str) -> Result<Vm, AppError> {
        self.visible_vm(actor, id).await
    }
}

/// A refusal of a server's record, where a taken name is the owner's other server's.
fn name_taken(r: Refusal, name: &str) -> AppError {
    match r {
        Refusal::NameTaken => {
            AppError::Conflict(format!("You already have a server named {name}."))
        }
        other => other.into(),
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

/// Powers off and undefines a domain (if it exists) and removes the server's folder.
fn remove_domain_and_files(hv: &dyn Hypervisor, name: &str, dir: &std::path::Path) {
    match hv.destroy(name) {
        Ok(()) | Err(HvError::NoDomain(_)) | Err(HvError::InvalidState(_)) => {}
        Err(e) => tracing::warn!(domain = name, error = %super::chain(&e), "cannot power off"),
    }
    match hv.undefine(name) {
        Ok(()) | Err(HvError::NoDomain(_)) => {}
        Err(e) => tracing::warn!(domain = name, error = %super::chain(&e), "cannot undefine"),
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a server's files");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuage_shared::PendingResize;
    use VmState as S;

    #[test]
    fn quota_growth_counts_only_what_grows_and_pending_sizes() {
        let base = Vm {
            id: "i".into(),
            name: "n".into(),
            owner_id: "o".into(),
            host_id: "h".into(),
            state: S::Running,
            vcpus: 2,
            memory_mib: 1024,
            disk_gib: 10,
            image_id: "img".into(),
            hostname: "n".into(),
            created_at: String::new(),
            ip_addresses: vec![],
            pending: None,
            mac_address: None,
            limits: ResourceLimits::default(),
            limit_overrides: LimitOverrides::default(),
            stop_reason: None,
        };
        let bigger = Vm {
            pending: Some(PendingResize {
                vcpus: 4,
                memory_mib: 512,
            }),
            disk_gib: 12,
            ..base.clone()
        };
        let g = growth(&footprint(&base), &footprint(&bigger));
        assert_eq!(
            g,
            Quota {
                vcpus: 2,
                memory_mib: 0,
                disk_gib: 2,
                vms: 0,
                snapshots: 0
            }
        );
        assert_eq!(
            footprint(&bigger).memory_mib,
            1024,
            "a shrink counts the larger until it applies"
        );
    }
}
