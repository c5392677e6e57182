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

pub(super) use super::record::cap_memory;
pub(super) use create::{DiskSource, SeedInput};
pub(super) use reconcile::reconcile;

pub use nuage_shared::VmAction;
use nuage_shared::{Quota, Vm};

use super::{Actor, App, AppError};
use crate::db::{vms, Refusal};
use crate::hypervisor::{HvError, Hypervisor};

const GIB: u64 = 1 << 30;

/// Whose servers a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListScope {
    /// The caller's own.
    Mine,
    /// Every server on the host (admins).
    All,
}

/// What a new server does once provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCreate {
    Start,
    LeaveStopped,
}

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
    /// `GET /vms`: the caller's servers, or an admin's view of every server.
    pub async fn list_vms(&self, actor: &Actor, scope: ListScope) -> Result<Vec<Vm>, AppError> {
        let owner = match scope {
            ListScope::Mine => Some(actor.user_id.clone()),
            ListScope::All => {
                actor.require_admin()?;
                None
            }
        };
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
    use nuage_shared::{LimitOverrides, PendingResize, ResourceLimits, VmState};
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
