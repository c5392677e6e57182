//! libvirt's lifecycle events settle a server's state, and say why it stopped (`stop_reason`:
//! the event's detail and, for a crash, the kernel log's OOM-kill record of its QEMU's pid).

use nuage_shared::{StopReason, Vm, VmState};

use crate::app::lifecycle::{self, decide, Decision, Plan, Request};
use crate::app::paths::vm_id_of;
use crate::app::App;
use crate::db::vms;
use crate::hypervisor::events::{DomainEvent, DomainEventKind, StopDetail};
use crate::hypervisor::DomainRunState;

impl App {
    /// Applies one libvirt lifecycle event to the server it concerns.
    pub async fn on_domain_event(&self, ev: DomainEvent) {
        let Some(id) = vm_id_of(&ev.name) else { return };
        if ev.kind == DomainEventKind::Started {
            // Kept to tell later whether the kernel's OOM killer ended this QEMU.
            let name = ev.name.clone();
            if let Ok(Some(pid)) = self.hv_call(move |hv| Ok(hv.qemu_pid(&name))).await {
                self.remember_pid(id, pid);
            }
        }
        // After any change in flight: then the row and libvirt agree on what happened.
        let _turn = self.turn(id).await;
        let key = id.to_owned();
        let Ok(Some(vm)) = self.db.call(move |c| vms::get(c, &key)).await else {
            return;
        };
        // Other hosts' servers are not ours; a change in flight settles the state itself.
        if vm.host_id != self.daemon_id || lifecycle::settles_itself(vm.state) {
            return;
        }
        // Events can arrive late: a stop's STOPPED after the next start has returned. Settle on
        // what libvirt says the domain is doing now, not on what the event said it did then.
        let name = ev.name.clone();
        let to = match self.hv_call(move |hv| hv.state(&name)).await {
            Ok(DomainRunState::Other) | Err(_) if ev.kind != DomainEventKind::Undefined => {
                lifecycle::state_after(ev.kind)
            }
            Ok(run) => lifecycle::settled(run),
            Err(_) => VmState::Error,
        };
        // Creation, deletion and starting settle the state themselves (their call is in
        // flight); a state already recorded needs nothing.
        let Decision::Accept(Plan::Settle(to)) = decide(vm.state, None, Request::Observed(to))
        else {
            return;
        };
        let reason = if to == VmState::Stopped {
            self.stop_reason(&vm, ev.stop).await
        } else {
            None
        };
        match self.transition_because(&vm, vm.state, to, reason).await {
            Ok(true) if to == VmState::Stopped => {
                if let Some(r @ (StopReason::Crashed | StopReason::KilledForMemory)) = reason {
                    tracing::warn!(vm = %vm.id, reason = r.as_str(), "a server stopped unexpectedly");
                    self.record_audit(crate::app::audit::AuditRecord {
                        actor: None,
                        username: None,
                        action: format!("vm.{}", r.as_str()),
                        path: format!("/api/v1/vms/{}", vm.id),
                        client: None,
                        status: 500,
                    })
                    .await;
                }
                if let Err(e) = self.apply_pending(&vm.id).await {
                    tracing::error!(vm = %vm.id, error = %crate::app::chain(&e), "cannot apply a pending resize");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(vm = %vm.id, error = %crate::app::chain(&e), "cannot record a state change")
            }
        }
    }

    /// Why a server that was `vm.state` stopped, from libvirt's event detail and the kernel.
    async fn stop_reason(&self, vm: &Vm, detail: Option<StopDetail>) -> Option<StopReason> {
        if vm.state == VmState::Stopping {
            // Its owner's (or an admin's) stop or shutdown.
            return Some(StopReason::Stopped);
        }
        match detail? {
            StopDetail::Shutdown => Some(StopReason::ShutDown),
            StopDetail::Destroyed => Some(StopReason::Stopped),
            StopDetail::Crashed => {
                let pid = self.forget_pid(&vm.id);
                let oom = match pid {
                    Some(pid) => tokio::task::spawn_blocking(move || {
                        crate::hypervisor::oom::killed_for_memory(pid)
                    })
                    .await
                    .unwrap_or(false),
                    None => false,
                };
                Some(if oom {
                    StopReason::KilledForMemory
                } else {
                    StopReason::Crashed
                })
            }
            StopDetail::Other => None,
        }
    }

    fn remember_pid(&self, vm_id: &str, pid: u32) {
        if let Ok(mut pids) = self.qemu_pids.lock() {
            pids.insert(vm_id.to_owned(), pid);
        }
    }

    fn forget_pid(&self, vm_id: &str) -> Option<u32> {
        self.qemu_pids.lock().ok()?.remove(vm_id)
    }
}
