//! Virtual servers: create, act, resize, delete, and the one owner of their state.
//!
//! ```text
//!             create                     start          (libvirt STARTED)
//!  (none) ──────────► creating ──► stopped ─────► starting ──────────────► running
//!                        │            ▲  ▲                                 │ │ │ ▲
//!                        │ failure    │  └──────── stopping ◄── shutdown ──┘ │ │ │
//!                        ▼            │  (libvirt STOPPED)   ◄── stop ───────┘ │ │
//!                      (none)         └───────────────────────── stop ─ paused ┘ │
//!                                                          suspend ─►  │  ◄─ resume
//!  any settled state ── delete ──► deleting ──► (none)
//!  a domain that vanished from libvirt ──► error
//! ```
//!
//! The database row is the single record of a server's state. Requests move it to a
//! transitional state with a compare-and-set (so two concurrent actions cannot both pass), call
//! libvirt, and settle it; libvirt's own lifecycle events (not polling) settle what happens later,
//! such as a guest finishing its ACPI shutdown, and are pushed to `/api/v1/events` subscribers.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;

pub use nuage_shared::VmAction;
use nuage_shared::{
    limits, validate_hostname, validate_password, validate_vm_name, CreateVm, Event,
    LimitOverrides, PendingResize, Quota, ResourceLimits, StopReason, UpdateVm, Vm, VmState,
};

use super::paths::{domain_name, vm_dir, vm_id_of};
use super::{Actor, App, AppError};
use crate::db::{self, images::ImageRow, vms, Refusal};
use crate::hypervisor::domain::{DiskSpec, DomainSpec, DomainTag, NicSpec};
use crate::hypervisor::events::{DomainEvent, DomainEventKind, StopDetail};
use crate::hypervisor::network::DhcpHost;
use crate::hypervisor::{DomainRunState, HvError, Hypervisor};
use crate::storage::{self, Seed};

const GIB: u64 = 1 << 30;

/// The state machine: from which states an action is allowed, the state held while libvirt works,
/// and the state once the call returned. `None`: the action is not allowed now (409).
pub fn plan(state: VmState, action: VmAction) -> Option<(VmState, VmState)> {
    use VmAction as A;
    use VmState as S;
    if !action.allowed_in(state) {
        return None;
    }
    Some(match action {
        A::Start => (S::Starting, S::Running),
        // The guest powers off when it is ready; libvirt's STOPPED event settles `stopped`.
        A::Shutdown => (S::Stopping, S::Stopping),
        A::Stop => (S::Stopping, S::Stopped),
        A::Reboot | A::Reset => (S::Running, S::Running),
        A::Suspend => (S::Paused, S::Paused),
        A::Resume => (S::Running, S::Running),
    })
}

/// The state a libvirt event puts a server in.
fn state_after(kind: DomainEventKind) -> VmState {
    match kind {
        DomainEventKind::Started | DomainEventKind::Resumed => VmState::Running,
        DomainEventKind::Suspended => VmState::Paused,
        DomainEventKind::Stopped => VmState::Stopped,
        DomainEventKind::Undefined => VmState::Error,
    }
}

pub(super) fn settled(run: DomainRunState) -> VmState {
    match run {
        DomainRunState::Running => VmState::Running,
        DomainRunState::Paused => VmState::Paused,
        DomainRunState::ShuttingDown => VmState::Stopping,
        DomainRunState::ShutOff | DomainRunState::Crashed => VmState::Stopped,
        DomainRunState::Other => VmState::Error,
    }
}

/// Where a new server's disk comes from.
pub(super) enum DiskSource {
    /// A qcow2 linked clone of an image.
    Clone { image: PathBuf, format: String },
    /// A standalone qcow2 file (restored or imported), moved into the server's folder.
    File(PathBuf),
}

/// What a new server's NoCloud seed says besides its hostname.
pub(super) struct SeedInput {
    /// cloud-init runs its once-per-instance steps again only when this changes: a server moved
    /// to another host keeps it.
    pub instance_id: String,
    pub keys: Vec<String>,
    pub password: Option<String>,
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

    /// `POST /vms`: checks and reserves the quota, makes the disk (a linked clone of the image)
    /// and the seed, defines the domain and boots it. Any failure undoes all of it.
    pub async fn create_vm(self: &Arc<Self>, actor: &Actor, req: CreateVm) -> Result<Vm, AppError> {
        let (app, actor) = (self.clone(), actor.clone());
        super::to_completion(async move { app.create_vm_steps(&actor, req).await }).await
    }

    async fn create_vm_steps(&self, actor: &Actor, req: CreateVm) -> Result<Vm, AppError> {
        validate_vm_name(&req.name).map_err(|m| AppError::Invalid(m.into()))?;
        let hostname = req.hostname.clone().unwrap_or_else(|| req.name.clone());
        validate_hostname(&hostname).map_err(|m| AppError::Invalid(m.into()))?;
        check_range("vcpus", req.vcpus, limits::VCPUS)?;
        check_range("memory_mib", req.memory_mib, limits::MEMORY_MIB)?;
        check_range("disk_gib", req.disk_gib, limits::DISK_GIB)?;
        validate_keys(&req.ssh_authorized_keys)?;
        if let Some(p) = &req.password {
            validate_password(p).map_err(|m| AppError::Invalid(m.into()))?;
        }
        let image_id = req.image_id.clone();
        let image: ImageRow = self
            .db
            .call(move |c| db::images::get(c, &image_id))
            .await?
            .ok_or_else(|| AppError::Invalid("No such image.".into()))?;
        if req.disk_gib * GIB < image.image.virtual_size_bytes {
            return Err(AppError::Invalid(format!(
                "The image {} needs a disk of at least {} GiB.",
                image.image.name,
                image.image.virtual_size_bytes.div_ceil(GIB)
            )));
        }

        let vm = self.new_vm(
            &actor.user_id,
            req.name.clone(),
            hostname,
            (req.vcpus, req.memory_mib, req.disk_gib),
            image.image.id.clone(),
        );
        let vm = self.reserve(vm).await?;
        let disk = DiskSource::Clone {
            image: PathBuf::from(&image.path),
            format: image.image.format.clone(),
        };
        let seed = SeedInput {
            instance_id: vm.id.clone(),
            keys: req.ssh_authorized_keys,
            password: req.password,
        };
        self.provision(vm, disk, seed, req.start.unwrap_or(true))
            .await
    }

    /// A new server's record on this host, `creating`, before its reservation. `size` is
    /// (vCPUs, memory MiB, disk GiB); `image_id` may be empty (a disk from an archive).
    pub(super) fn new_vm(
        &self,
        owner_id: &str,
        name: String,
        hostname: String,
        size: (u32, u64, u64),
        image_id: String,
    ) -> Vm {
        Vm {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            owner_id: owner_id.to_owned(),
            host_id: self.daemon_id.clone(),
            state: VmState::Creating,
            vcpus: size.0,
            memory_mib: size.1,
            disk_gib: size.2,
            image_id,
            hostname,
            created_at: db::now_rfc3339(),
            ip_addresses: Vec::new(),
            pending: None,
            mac_address: None,
            limits: ResourceLimits::default(),
            limit_overrides: LimitOverrides::default(),
            stop_reason: None,
        }
    }

    /// Checks the owner's quota and the host's capacity for a new server and reserves them, with
    /// an address, in one transaction: the row *is* the reservation. Returns the server with its
    /// address.
    pub(super) async fn reserve(&self, vm: Vm) -> Result<Vm, AppError> {
        let row = vm.clone();
        let room = self.host_room().await;
        let (net, cidr) = (self.net.name.clone(), self.net.cidr);
        let more = footprint(&row);
        let (ip, mac) = self
            .db
            .call(move |c| vms::reserve(c, &row, &more, &room, &net, cidr))
            .await?
            .map_err(|r| name_taken(r, &vm.name))?;
        Ok(Vm {
            ip_addresses: vec![ip],
            mac_address: Some(mac),
            ..vm
        })
    }

    /// Makes a reserved server real: its folder, its disk (a linked clone of an image, or a
    /// standalone qcow2 file moved in), its seed, its DHCP entry and its domain; boots it when
    /// `start`. Any failure undoes all of it, reservation included.
    pub(super) async fn provision(
        &self,
        vm: Vm,
        disk: DiskSource,
        seed: SeedInput,
        start: bool,
    ) -> Result<Vm, AppError> {
        let owner = self.owner_limits(&vm.owner_id).await?;
        let limits = self.limits_of(&vm, vm.vcpus, vm.memory_mib, owner);
        let spec = self.domain_spec(&vm, vm.vcpus, vm.memory_mib, limits);
        let net = self.net.name.clone();
        let simulated = self.simulated;
        let dir = self.vm_dir(&vm.id);
        let (host, disk_gib) = (vm.hostname.clone(), vm.disk_gib);
        let dhcp = DhcpHost {
            mac: vm.mac_address.clone().unwrap_or_default(),
            ip: vm.ip_addresses.first().cloned().unwrap_or_default(),
        };
        let hv = self.hv.clone();
        let provisioned = tokio::task::spawn_blocking(move || -> Result<(), AppError> {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(&dir)
                .map_err(|e| AppError::internal("cannot create the server's folder", e))?;
            match disk {
                DiskSource::Clone { image, format } => {
                    storage::create_linked_clone(&image, &format, &spec.disks[0].path, disk_gib)
                        .map_err(|e| AppError::internal("cannot create the server's disk", e))?
                }
                DiskSource::File(file) => {
                    std::fs::rename(&file, &spec.disks[0].path)
                        .map_err(|e| AppError::internal("cannot move the server's disk", e))?;
                    storage::grow(&spec.disks[0].path, disk_gib)
                        .map_err(|e| AppError::internal("cannot size the server's disk", e))?;
                }
            }
            let seed = Seed {
                instance_id: &seed.instance_id,
                hostname: &host,
                ssh_authorized_keys: &seed.keys,
                password: seed.password.as_deref(),
            };
            storage::write_seed(&spec.disks[1].path, &seed)
                .map_err(|e| AppError::internal("cannot write the server's seed", e))?;
            hv.set_dhcp_host(&net, &dhcp, true)?;
            hv.define(&spec.to_xml()?)?;
            super::failpoint("create-after-define");
            if start {
                hv.start(&spec.name)?;
                cap_memory(
                    hv.as_ref(),
                    &spec.name,
                    limits.memory_hard_limit_mib,
                    simulated,
                );
            }
            Ok(())
        })
        .await
        .map_err(|e| AppError::internal("provisioning was lost", e))
        .and_then(|r| r);

        if let Err(e) = provisioned {
            tracing::warn!(vm = %vm.id, error = %super::chain(&e), "create failed; undoing");
            self.discard(&vm).await;
            return Err(e);
        }
        let settled = if start {
            VmState::Running
        } else {
            VmState::Stopped
        };
        self.transition(&vm, VmState::Creating, settled).await?;
        let vm = self.reload(&vm.id).await?;
        self.announce(
            &vm,
            Event::VmUpdated {
                vm: Box::new(vm.clone()),
            },
        );
        Ok(vm)
    }

    /// Removes every trace of a server: domain, files, record (and so its quota).
    pub(super) async fn discard(&self, vm: &Vm) {
        let (hv, name, dir) = (self.hv.clone(), domain_name(&vm.id), self.vm_dir(&vm.id));
        let dhcp = match (&vm.mac_address, vm.ip_addresses.first()) {
            (Some(mac), Some(ip)) => Some(DhcpHost {
                mac: mac.clone(),
                ip: ip.clone(),
            }),
            _ => None,
        };
        let net = self.net.name.clone();
        let _ = tokio::task::spawn_blocking(move || {
            remove_domain_and_files(hv.as_ref(), &name, &dir);
            if let Some(h) = dhcp {
                if let Err(e) = hv.set_dhcp_host(&net, &h, false) {
                    tracing::warn!(ip = %h.ip, error = %super::chain(&e), "cannot remove a DHCP entry");
                }
            }
        })
        .await;
        let id = vm.id.clone();
        if let Err(e) = self.db.call(move |c| vms::delete(c, &id)).await {
            tracing::error!(vm = %vm.id, error = %super::chain(&e), "cannot delete a server's record");
        }
    }

    /// `POST /vms/{id}/{action}`.
    pub async fn vm_action(
        self: &Arc<Self>,
        actor: &Actor,
        id: &str,
        action: VmAction,
    ) -> Result<Vm, AppError> {
        let (app, actor, id) = (self.clone(), actor.clone(), id.to_owned());
        super::to_completion(async move { app.vm_action_steps(&actor, &id, action).await }).await
    }

    async fn vm_action_steps(
        &self,
        actor: &Actor,
        id: &str,
        action: VmAction,
    ) -> Result<Vm, AppError> {
        let vm = self.visible_vm(actor, id).await?;
        let _turn = self.turn(&vm.id).await;
        let vm = self.reload(&vm.id).await?;
        self.check_not_busy(&vm.id)?;
        let not_now = || {
            AppError::Conflict(format!(
                "A {} server cannot {}.",
                vm.state.as_str(),
                action.name()
            ))
        };
        let (during, after) = plan(vm.state, action).ok_or_else(not_now)?;
        if !self.transition(&vm, vm.state, during).await? {
            return Err(AppError::Conflict(
                "The server changed state meanwhile; try again.".into(),
            ));
        }
        let name = domain_name(&vm.id);
        let (cap, simulated) = (vm.limits.memory_hard_limit_mib, self.simulated);
        let result = self
            .hv_call(move |hv| match action {
                VmAction::Start => hv
                    .start(&name)
                    .map(|()| cap_memory(hv, &name, cap, simulated)),
                VmAction::Shutdown => hv.shutdown(&name),
                VmAction::Stop => match hv.destroy(&name) {
                    // Already off (a shutdown finished meanwhile): that is what was asked.
                    Err(HvError::InvalidState(_)) => Ok(()),
                    other => other,
                },
                VmAction::Reboot => hv.reboot(&name),
                VmAction::Reset => hv.reset(&name),
                VmAction::Suspend => hv.suspend(&name),
                VmAction::Resume => hv.resume(&name),
            })
            .await;
        match result {
            Ok(()) => {
                // Stopped by its owner or an admin (a shutdown's end comes as libvirt's event).
                let reason = matches!(action, VmAction::Stop | VmAction::Shutdown)
                    .then_some(StopReason::Stopped);
                self.transition_because(&vm, during, after, reason).await?;
                if after == VmState::Stopped {
                    self.apply_pending(&vm.id).await?;
                }
            }
            Err(e) => {
                // Back to what libvirt says the domain is doing.
                let name = domain_name(&vm.id);
                let actual = self
                    .hv_call(move |hv| hv.state(&name))
                    .await
                    .map(settled)
                    .unwrap_or(VmState::Error);
                self.transition(&vm, during, actual).await?;
                return Err(e);
            }
        }
        self.reload(&vm.id).await
    }

    /// Makes a pending resize the current size (the domain definition already has it).
    async fn apply_pending(&self, id: &str) -> Result<(), AppError> {
        let key = id.to_owned();
        Ok(self.db.call(move |c| vms::apply_pending(c, &key)).await?)
    }

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
        super::to_completion(async move { app.update_vm_steps(&actor, &id, req).await }).await
    }

    async fn update_vm_steps(
        &self,
        actor: &Actor,
        id: &str,
        req: UpdateVm,
    ) -> Result<Vm, AppError> {
        let vm = self.visible_vm(actor, id).await?;
        let _turn = self.turn(&vm.id).await;
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
        if sizing {
            self.check_not_busy(&vm.id)?;
        }
        let live = match vm.state {
            VmState::Stopped => false,
            VmState::Running | VmState::Paused => true,
            other if sizing => {
                return Err(AppError::Conflict(format!(
                    "A {} server cannot be resized now.",
                    other.as_str()
                )))
            }
            _ => false,
        };
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
                    if super::failpoint_for("resize-after-grow", &vm_id) {
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
        self.announce(
            &vm,
            Event::VmUpdated {
                vm: Box::new(vm.clone()),
            },
        );
        Ok(vm)
    }

    /// `DELETE /vms/{id}`: powers off, removes the domain, its disk and seed, and frees the quota.
    pub async fn delete_vm(self: &Arc<Self>, actor: &Actor, id: &str) -> Result<(), AppError> {
        let (app, actor, id) = (self.clone(), actor.clone(), id.to_owned());
        super::to_completion(async move { app.delete_vm_steps(&actor, &id).await }).await
    }

    async fn delete_vm_steps(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        let vm = self.visible_vm(actor, id).await?;
        let turn = self.turn(&vm.id).await;
        let vm = self.reload(&vm.id).await?;
        self.check_not_busy(&vm.id)?;
        if matches!(vm.state, VmState::Creating | VmState::Deleting) {
            return Err(AppError::Conflict(format!(
                "A {} server cannot be deleted now.",
                vm.state.as_str()
            )));
        }
        if !self.transition(&vm, vm.state, VmState::Deleting).await? {
            return Err(AppError::Conflict(
                "The server changed state meanwhile; try again.".into(),
            ));
        }
        // `deleting` now refuses every other change: the slow removal needs no turn.
        drop(turn);
        self.discard(&vm).await;
        self.announce(
            &vm,
            Event::VmDeleted {
                vm_id: vm.id.clone(),
            },
        );
        Ok(())
    }

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
        // Creation, deletion and starting settle the state themselves (their call is in
        // flight); other hosts' servers are not ours.
        if vm.host_id != self.daemon_id
            || matches!(
                vm.state,
                VmState::Creating | VmState::Deleting | VmState::Starting
            )
        {
            return;
        }
        // Events can arrive late: a stop's STOPPED after the next start has returned. Settle on
        // what libvirt says the domain is doing now, not on what the event said it did then.
        let name = ev.name.clone();
        let to = match self.hv_call(move |hv| hv.state(&name)).await {
            Ok(DomainRunState::Other) | Err(_) if ev.kind != DomainEventKind::Undefined => {
                state_after(ev.kind)
            }
            Ok(run) => settled(run),
            Err(_) => VmState::Error,
        };
        if to == vm.state {
            return;
        }
        let reason = if to == VmState::Stopped {
            self.stop_reason(&vm, ev.stop).await
        } else {
            None
        };
        match self.transition_because(&vm, vm.state, to, reason).await {
            Ok(true) if to == VmState::Stopped => {
                if let Some(r @ (StopReason::Crashed | StopReason::KilledForMemory)) = reason {
                    tracing::warn!(vm = %vm.id, reason = r.as_str(), "a server stopped unexpectedly");
                    self.record_audit(super::audit::AuditRecord {
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
                    tracing::error!(vm = %vm.id, error = %super::chain(&e), "cannot apply a pending resize");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(vm = %vm.id, error = %super::chain(&e), "cannot record a state change")
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

/// Brings the database and libvirt into agreement at start (also after SIGKILL): a half-created
/// server is removed, a half-deleted one is finished, a server whose domain vanished is marked
/// `error`, the others take libvirt's state. Domains tagged by this daemon that no record claims
/// are leftovers of a crash and are removed; untagged domains are never touched.
pub(super) fn reconcile(
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
        match vm.state {
            VmState::Creating | VmState::Deleting => {
                tracing::warn!(vm = %vm.id, state = vm.state.as_str(), "finishing an interrupted create/delete");
                remove_domain_and_files(hv, &name, &dir);
                db.call_blocking(|c| vms::delete(c, &vm.id))?;
            }
            _ => {
                let now = match hv.state(&name) {
                    Ok(run) => settled(run),
                    Err(HvError::NoDomain(_)) => VmState::Error,
                    Err(e) => return Err(e.into()),
                };
                if now != vm.state {
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
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use VmAction as A;
    use VmState as S;

    #[test]
    fn actions_are_allowed_only_where_they_make_sense() {
        let all_states = [
            S::Creating,
            S::Stopped,
            S::Starting,
            S::Running,
            S::Stopping,
            S::Paused,
            S::Deleting,
            S::Error,
        ];
        let allowed = [
            (A::Start, vec![S::Stopped]),
            (A::Shutdown, vec![S::Running]),
            (
                A::Stop,
                vec![S::Running, S::Paused, S::Stopping, S::Starting],
            ),
            (A::Reboot, vec![S::Running]),
            (A::Reset, vec![S::Running]),
            (A::Suspend, vec![S::Running]),
            (A::Resume, vec![S::Paused]),
        ];
        for (action, ok) in allowed {
            for s in all_states {
                assert_eq!(
                    plan(s, action).is_some(),
                    ok.contains(&s),
                    "{action:?} from {s:?}"
                );
            }
        }
        assert_eq!(plan(S::Stopped, A::Start), Some((S::Starting, S::Running)));
        assert_eq!(
            plan(S::Running, A::Shutdown),
            Some((S::Stopping, S::Stopping))
        );
        assert_eq!(plan(S::Paused, A::Stop), Some((S::Stopping, S::Stopped)));
    }

    #[test]
    fn action_names_parse_and_nothing_else() {
        for n in [
            "start", "shutdown", "stop", "reboot", "reset", "suspend", "resume",
        ] {
            assert_eq!(VmAction::parse(n).unwrap().name(), n);
        }
        assert_eq!(VmAction::parse("destroy"), None);
        assert_eq!(VmAction::parse("Start"), None);
    }

    #[test]
    fn libvirt_events_settle_states() {
        assert_eq!(state_after(DomainEventKind::Started), S::Running);
        assert_eq!(state_after(DomainEventKind::Resumed), S::Running);
        assert_eq!(state_after(DomainEventKind::Suspended), S::Paused);
        assert_eq!(state_after(DomainEventKind::Stopped), S::Stopped);
        assert_eq!(state_after(DomainEventKind::Undefined), S::Error);
    }

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
