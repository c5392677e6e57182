//! Reconciliation at start: the records and libvirt brought into agreement.

use nuage_shared::{StopReason, Vm, VmState};

use super::remove_domain_and_files;
use crate::app::lifecycle::{self, decide, Decision, Plan, Request};
use crate::app::paths::{domain_name, vm_dir, vm_id_of};
use crate::app::{App, AppError};
use crate::db::{self, vms};
use crate::hypervisor::network::DhcpHost;
use crate::hypervisor::{HvError, Hypervisor};

/// Brings the database and libvirt into agreement at start (also after SIGKILL): a half-created
/// server is removed, a half-deleted one is finished, a server whose domain vanished is marked
/// `error`, the others take libvirt's state. Domains tagged by this daemon that no record claims
/// are leftovers of a crash and are removed; untagged domains are never touched.
pub(in crate::app) fn reconcile(
    db: &db::Db,
    hv: &dyn Hypervisor,
    daemon_id: &str,
    data_dir: &std::path::Path,
) -> Result<(), AppError> {
    let records = db.call_blocking(|c| vms::list_on_host(c, daemon_id))?;
    let known: std::collections::HashSet<String> =
        records.iter().map(|v| domain_name(&v.id)).collect();
    for vm in records {
        let name = domain_name(&vm.id);
        let dir = vm_dir(data_dir, &vm.id);
        // An interrupted create or delete is finished whatever libvirt holds: not asked.
        let observed = match hv.state(&name) {
            _ if lifecycle::interrupted(vm.state) => None,
            Ok(run) => Some(lifecycle::settled(run)),
            Err(HvError::NoDomain(_)) => None,
            Err(e) => return Err(e.into()),
        };
        match decide(vm.state, None, Request::Recover { observed }) {
            Decision::Accept(Plan::Remove) => {
                tracing::warn!(vm = %vm.id, state = vm.state.as_str(), "finishing an interrupted create/delete");
                remove_domain_and_files(hv, &name, &dir);
                db.call_blocking(|c| vms::delete(c, &vm.id))?;
            }
            Decision::Accept(Plan::Settle(now)) => {
                tracing::info!(vm = %vm.id, from = vm.state.as_str(), to = now.as_str(), "reconciled");
                // It ran (or was changing) when the host or the daemon went down.
                let reason = (now == VmState::Stopped
                    && matches!(
                        vm.state,
                        VmState::Running | VmState::Paused | VmState::Starting
                    ))
                .then_some(StopReason::HostRestart);
                db.call_blocking(|c| vms::move_state(c, &vm.id, vm.state, now, reason))?;
            }
            _ => {}
        }
    }
    for name in hv.list_tagged(daemon_id)? {
        if !known.contains(&name) {
            tracing::warn!(domain = %name, "removing a domain of ours that no record claims");
            let dir = vm_id_of(&name).map(|id| vm_dir(data_dir, id));
            remove_domain_and_files(
                hv,
                &name,
                dir.as_deref()
                    .unwrap_or(std::path::Path::new("/nonexistent")),
            );
        }
    }
    Ok(())
}

impl App {
    /// Gives an address to every server of this host that has none (servers created before
    /// the daemon managed a network): recorded, handed out by DHCP, and in the definition the
    /// server boots with next.
    pub async fn assign_missing_addresses(&self) -> Result<usize, AppError> {
        let host = self.daemon_id.clone();
        let bare: Vec<Vm> = self
            .db
            .call(move |c| vms::list_on_host(c, &host))
            .await?
            .into_iter()
            .filter(|v| v.ip_addresses.is_empty())
            .collect();
        for vm in &bare {
            let (net, cidr, id) = (self.net.name.clone(), self.net.cidr, vm.id.clone());
            let Some((ip, mac)) = self
                .db
                .call(move |c| vms::assign_address(c, &net, cidr, &id))
                .await?
            else {
                tracing::error!(vm = %vm.id, "no free address left for an existing server");
                break;
            };
            let (net, host) = (
                self.net.name.clone(),
                DhcpHost {
                    mac: mac.clone(),
                    ip: ip.clone(),
                },
            );
            self.hv_call(move |hv| hv.set_dhcp_host(&net, &host, true))
                .await?;
            let vm = Vm {
                ip_addresses: vec![ip],
                mac_address: Some(mac),
                ..vm.clone()
            };
            self.redefine(&vm).await?;
        }
        Ok(bare.len())
    }
}
