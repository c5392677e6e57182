//! Creating a server: checked, reserved (quota, host room and address in one transaction),
//! provisioned (folder, disk, seed, DHCP entry, domain) and booted; any failure undoes all of it.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;

use nuage_shared::{
    limits, validate_hostname, validate_password, validate_vm_name, CreateVm, LimitOverrides,
    ResourceLimits, Vm, VmState,
};

use super::{
    cap_memory, check_range, footprint, name_taken, remove_domain_and_files, validate_keys,
    AfterCreate, GIB,
};
use crate::app::paths::domain_name;
use crate::app::{Actor, App, AppError};
use crate::db::{self, images::ImageRow, vms};
use crate::hypervisor::network::DhcpHost;
use crate::storage::{self, Seed};

/// Where a new server's disk comes from.
pub(in crate::app) enum DiskSource {
    /// A qcow2 linked clone of an image.
    Clone { image: PathBuf, format: String },
    /// A standalone qcow2 file (restored or imported), moved into the server's folder.
    File(PathBuf),
}

/// What a new server's NoCloud seed says besides its hostname.
pub(in crate::app) struct SeedInput {
    /// cloud-init runs its once-per-instance steps again only when this changes: a server moved
    /// to another host keeps it.
    pub instance_id: String,
    pub keys: Vec<String>,
    pub password: Option<String>,
}

impl App {
    /// `POST /vms`: checks and reserves the quota, makes the disk (a linked clone of the image)
    /// and the seed, defines the domain and boots it. Any failure undoes all of it.
    pub async fn create_vm(self: &Arc<Self>, actor: &Actor, req: CreateVm) -> Result<Vm, AppError> {
        let (app, actor) = (self.clone(), actor.clone());
        crate::app::to_completion(async move { app.create_vm_steps(&actor, req).await }).await
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
            instance_id: vm.id.to_string(),
            keys: req.ssh_authorized_keys,
            password: req.password,
        };
        let then = if req.start.unwrap_or(true) {
            AfterCreate::Start
        } else {
            AfterCreate::LeaveStopped
        };
        self.provision(vm, disk, seed, then).await
    }

    /// A new server's record on this host, `creating`, before its reservation. `size` is
    /// (vCPUs, memory MiB, disk GiB); `image_id` may be empty (a disk from an archive).
    pub(in crate::app) fn new_vm(
        &self,
        owner_id: &str,
        name: String,
        hostname: String,
        size: (u32, u64, u64),
        image_id: nuage_shared::ImageId,
    ) -> Vm {
        Vm {
            id: uuid::Uuid::new_v4().to_string().into(),
            name,
            owner_id: owner_id.into(),
            host_id: self.daemon_id.as_str().into(),
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
    pub(in crate::app) async fn reserve(&self, vm: Vm) -> Result<Vm, AppError> {
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
    /// `then` says so. Any failure undoes all of it, reservation included.
    pub(in crate::app) async fn provision(
        &self,
        vm: Vm,
        disk: DiskSource,
        seed: SeedInput,
        then: AfterCreate,
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
            crate::failpoints::failpoint("create-after-define");
            if then == AfterCreate::Start {
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
            tracing::warn!(vm = %vm.id, error = %crate::app::chain(&e), "create failed; undoing");
            self.discard(&vm).await;
            return Err(e);
        }
        let settled = if then == AfterCreate::Start {
            VmState::Running
        } else {
            VmState::Stopped
        };
        self.transition(&vm, VmState::Creating, settled).await?;
        let vm = self.reload(&vm.id).await?;
        self.announce_record(&vm);
        Ok(vm)
    }

    /// Removes every trace of a server: domain, files, record (and so its quota).
    pub(in crate::app) async fn discard(&self, vm: &Vm) {
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
                    tracing::warn!(ip = %h.ip, error = %crate::app::chain(&e), "cannot remove a DHCP entry");
                }
            }
        })
        .await;
        let id = vm.id.clone();
        if let Err(e) = self.db.call(move |c| vms::delete(c, &id)).await {
            tracing::error!(vm = %vm.id, error = %crate::app::chain(&e), "cannot delete a server's record");
        }
    }
}
