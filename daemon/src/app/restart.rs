//! After a host (or daemon) restart: servers that were running when it went down are started
//! again, a few at a time, and the QEMU pids of those still running are read back. A server
//! stopped by its owner, or that stopped by itself, stays stopped: the database records whether
//! each server should run (`wants_running`), and reconciliation at start marks the ones the
//! restart stopped (`host_restart`).

use std::sync::Arc;

use nuage_shared::{Role, StopReason, VmAction, VmState};

use super::{Actor, App};
use crate::db::vms;

/// Servers started at once after a restart (each boot is CPU-heavy, more so under TCG).
const AT_ONCE: usize = 2;

impl App {
    /// Starts every server that should run and was stopped by a host restart. Returns how many
    /// were started.
    pub async fn restore_running(self: &Arc<Self>) -> usize {
        let host = self.daemon_id.clone();
        let ids = match self
            .db
            .call(move |c| vms::wanted_but_stopped(c, &host))
            .await
        {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %super::chain(&e), "cannot list the servers to restart");
                return 0;
            }
        };
        // The daemon itself acts here, with an administrator's reach.
        let system = Actor {
            user_id: String::new().into(),
            username: "nuaged".into(),
            role: Role::Admin,
            session: String::new(),
            expires: None,
            scope: nuage_shared::TokenScope::Admin,
            verified_at: None,
            must_enrol: false,
        };
        let permits = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
        let mut started = Vec::new();
        for id in ids {
            let (app, system, permits) = (self.clone(), system.clone(), permits.clone());
            started.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.ok()?;
                let key = id.clone();
                let vm = app.db.call(move |c| vms::get(c, &key)).await.ok()??;
                if vm.state != VmState::Stopped || vm.stop_reason != Some(StopReason::HostRestart)
                {
                    return None;
                }
                match app.vm_action(&system, &id, VmAction::Start).await {
                    Ok(_) => {
                        tracing::info!(vm = %id, "started again after a host restart");
                        Some(())
                    }
                    Err(e) => {
                        tracing::warn!(vm = %id, error = %super::chain(&e), "cannot start a server again after a host restart");
                        None
                    }
                }
            }));
        }
        let mut n = 0;
        for s in started {
            if let Ok(Some(())) = s.await {
                n += 1;
            }
        }
        n
    }

    /// Reads the QEMU pid of every running server (after a daemon restart).
    pub(super) async fn recall_pids(&self) {
        let host = self.daemon_id.clone();
        let Ok(list) = self.db.call(move |c| vms::list_on_host(c, &host)).await else {
            return;
        };
        for vm in list.into_iter().filter(|v| v.state == VmState::Running) {
            let name = super::paths::domain_name(&vm.id);
            if let Ok(Some(pid)) = self.hv_call(move |hv| Ok(hv.qemu_pid(&name))).await {
                if let Ok(mut pids) = self.qemu_pids.lock() {
                    pids.insert(vm.id.into_string(), pid);
                }
            }
        }
    }
}
