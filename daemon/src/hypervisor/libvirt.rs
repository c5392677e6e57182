//! [`Hypervisor`] on libvirt through the `virt` crate.
//!
//! One connection, opened at start and reopened when libvirtd went away (a libvirtd restart must not
//! need a daemon restart). Every call may block; callers run them off the async executor.

use std::sync::Mutex;

use nuage_shared::Accel;
use serde::Deserialize;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::enumutil::Enum;
use virt::error::ErrorNumber;
use virt::sys;

use tokio::sync::mpsc::UnboundedSender;

use super::domain::read_tag;
use super::events::{self, DomainEvent};
use super::network::{self, DhcpHost, Lease, NetworkSpec};
use super::snapshot::BackupProgress;
use super::{DomainRunState, HostFacts, HvError, Hypervisor};

pub struct Libvirt {
    uri: String,
    /// `None` after the connection was found dead; the next call reopens it.
    conn: Mutex<Option<Connect>>,
    /// `test:///...`: the simulated driver, whose only domain type is `test`.
    simulated: bool,
    /// Where lifecycle events go; registered again on every new connection.
    subscriber: Mutex<Option<UnboundedSender<DomainEvent>>>,
}

impl Libvirt {
    /// Deletes a snapshot with `flags` (its data and record, or only its record); one that is
    /// not there is no error.
    fn delete_snapshot_with(&self, name: &str, snapshot: &str, flags: u32) -> Result<(), HvError> {
        self.with_conn(|c| {
            let dom = Self::lookup(c, name)?;
            let snap = match Domain::lookup_snapshot_by_name(&dom, snapshot, 0) {
                Ok(s) => s,
                Err(e) if e.code() == Enum::Known(ErrorNumber::NoDomainSnapshot) => return Ok(()),
                Err(e) => return Err(lv("find a snapshot")(e)),
            };
            snap.delete(flags).map_err(lv("delete a snapshot"))
        })
    }

    /// Opens `uri`. libvirt's default error handler (which prints every error to stderr) is
    /// silenced: errors are returned and logged by the daemon instead.
    pub fn connect(uri: &str) -> Result<Libvirt, HvError> {
        virt::error::clear_error_callback();
        events::ensure_event_loop();
        let conn = open(uri)?;
        let driver = conn.driver_type().unwrap_or_default();
        Ok(Libvirt {
            uri: uri.to_owned(),
            conn: Mutex::new(Some(conn)),
            simulated: driver.eq_ignore_ascii_case("test"),
            subscriber: Mutex::new(None),
        })
    }

    /// Opens a fresh connection and subscribes it to events if anyone listens.
    fn reopen(&self) -> Result<Connect, HvError> {
        let conn = open(&self.uri)?;
        let subscriber = self
            .subscriber
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(tx) = subscriber {
            events::register(&conn, tx)?;
            tracing::info!(uri = %self.uri, "reconnected to libvirt and resubscribed to events");
        }
        Ok(conn)
    }

    /// Runs `f` on a live connection, reopening it first when libvirtd went away. A call that
    /// fails because the connection broke under it is retried once on a fresh connection.
    fn with_conn<T>(&self, f: impl Fn(&Connect) -> Result<T, HvError>) -> Result<T, HvError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        for attempt in 0..2 {
            if guard
                .as_ref()
                .is_none_or(|c| !c.is_alive().unwrap_or(false))
            {
                // Dropping a dead connection closes it.
                *guard = None;
                *guard = Some(self.reopen()?);
            }
            let conn = guard.as_ref().expect("connection was just opened");
            match f(conn) {
                Err(e) if attempt == 0 && connection_broken(&e) => {
                    tracing::warn!(uri = %self.uri, "libvirt connection lost; reconnecting");
                    *guard = None;
                }
                result => return result,
            }
        }
        Err(HvError::Refused(format!(
            "libvirt at {} keeps dropping the connection",
            self.uri
        )))
    }

    fn lookup(conn: &Connect, name: &str) -> Result<Domain, HvError> {
        conn.lookup_domain_by_name(name).map_err(|e| {
            if e.code() == Enum::Known(ErrorNumber::NoDomain) {
                HvError::NoDomain(name.to_owned())
            } else {
                lv("look up a domain")(e)
            }
        })
    }
}

fn open(uri: &str) -> Result<Connect, HvError> {
    Connect::open(Some(uri)).map_err(|source| HvError::Unreachable {
        uri: uri.to_owned(),
        source,
    })
}

fn connection_broken(e: &HvError) -> bool {
    match e {
        HvError::Libvirt { source, .. } => matches!(
            source.code(),
            Enum::Known(ErrorNumber::SystemError | ErrorNumber::NoConnect | ErrorNumber::Rpc)
        ),
        _ => false,
    }
}

/// Wraps a libvirt error with what we were doing.
fn lv(what: &'static str) -> impl Fn(virt::error::Error) -> HvError {
    move |source| {
        if source.code() == Enum::Known(ErrorNumber::OperationInvalid) {
            HvError::InvalidState(what)
        } else {
            HvError::Libvirt { what, source }
        }
    }
}

fn version_string(v: u32) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1_000) % 1_000, v % 1_000)
}

/// The part of libvirt's capabilities XML that says which domain types each guest arch offers.
#[derive(Deserialize)]
struct Capabilities {
    #[serde(default)]
    guest: Vec<CapsGuest>,
}

#[derive(Deserialize)]
struct CapsGuest {
    arch: CapsArch,
}

#[derive(Deserialize)]
struct CapsArch {
    #[serde(default)]
    domain: Vec<CapsDomain>,
}

#[derive(Deserialize)]
struct CapsDomain {
    #[serde(rename = "@type")]
    kind: String,
}

fn offers_kvm(capabilities_xml: &str) -> bool {
    quick_xml::de::from_str::<Capabilities>(capabilities_xml)
        .map(|c| {
            c.guest
                .iter()
                .any(|g| g.arch.domain.iter().any(|d| d.kind == "kvm"))
        })
        .unwrap_or(false)
}

impl Hypervisor for Libvirt {
    fn host_facts(&self) -> Result<HostFacts, HvError> {
        self.with_conn(|c| {
            let node = c.node_info().map_err(lv("read the host's node info"))?;
            Ok(HostFacts {
                uri: c.uri().map_err(lv("read the connection URI"))?,
                driver: c.driver_type().map_err(lv("read the driver type"))?,
                hypervisor_version: version_string(
                    c.hyp_version().map_err(lv("read the hypervisor version"))?,
                ),
                libvirt_version: version_string(
                    c.lib_version().map_err(lv("read the libvirt version"))?,
                ),
                hostname: c.hostname().unwrap_or_default(),
                cpus: node.cpus,
                memory_mib: node.memory / 1024,
            })
        })
    }

    fn offers_kvm(&self) -> Result<bool, HvError> {
        self.with_conn(|c| {
            Ok(offers_kvm(
                &c.capabilities()
                    .map_err(lv("read the host's capabilities"))?,
            ))
        })
    }

    fn ping(&self) -> Result<(), HvError> {
        self.with_conn(|c| {
            c.hyp_version()
                .map(drop)
                .map_err(lv("read the hypervisor version"))
        })
    }

    fn domain_type(&self, accel: Accel) -> &'static str {
        match (self.simulated, accel) {
            (true, _) => "test",
            (false, Accel::Kvm) => "kvm",
            (false, Accel::Tcg) => "qemu",
        }
    }

    fn define(&self, xml: &str) -> Result<String, HvError> {
        self.with_conn(|c| {
            let dom = c.define_domain_xml(xml).map_err(lv("define a domain"))?;
            dom.name().map_err(lv("read a domain's name"))
        })
    }

    fn start(&self, name: &str) -> Result<(), HvError> {
        self.with_conn(|c| {
            let dom = Self::lookup(c, name)?;
            dom.create().map_err(lv("start"))?;
            // A VNC server on the loopback gets this boot's own password.
            let live = dom.xml_desc(0).map_err(lv("read a domain"))?;
            if let Some((port, _)) = super::domain::vnc_loopback(&live) {
                let device =
                    super::domain::vnc_loopback_device(port, &super::domain::vnc_password())
                        .map_err(HvError::Xml)?;
                if let Err(e) = dom.update_device_flags(&device, sys::VIR_DOMAIN_AFFECT_LIVE) {
                    tracing::warn!(domain = name, error = %e, "cannot give the console a new password");
                }
            }
            Ok(())
        })
    }

    fn destroy(&self, name: &str) -> Result<(), HvError> {
        self.with_conn(|c| Self::lookup(c, name)?.destroy().map_err(lv("power off")))
    }

    fn undefine(&self, name: &str) -> Result<(), HvError> {
        self.with_conn(|c| {
            let flags = sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                | sys::VIR_DOMAIN_UNDEFINE_NVRAM;
            Self::lookup(c, name)?
                .undefine_flags(flags)
                .map_err(lv("undefine"))
        })
    }

    fn state(&self, name: &str) -> Result<DomainRunState, HvError> {
        use virt::domain::DomainState as S;
        self.with_conn(|c| {
            let (state, _) = Self::lookup(c, name)?
                .state()
                .map_err(lv("read a domain's state"))?;
            Ok(match state {
                Enum::Known(S::Running) => DomainRunState::Running,
                Enum::Known(S::Paused | S::PMSuspended) => DomainRunState::Paused,
                Enum::Known(S::Shutdown) => DomainRunState::ShuttingDown,
                Enum::Known(S::Shutoff) => DomainRunState::ShutOff,
                Enum::Known(S::Crashed) => DomainRunState::Crashed,
                _ => DomainRunState::Other,
            })
        })
    }

    fn shutdown(&self, name: &str) -> Result<(), HvError> {
        self.with_conn(|c| Self::lookup(c, name)?.shutdown().map_err(lv("shut down")))
    }

    fn reboot(&self, name: &str) -> Result<(), HvError> {
        self.with_conn(|c| Self::lookup(c, name)?.reboot(0).map_err(lv("reboot")))
    }

    fn reset(&self, name: &str) -> Result<(), HvError> {
        self.with_conn(|c| Self::lookup(c, name)?.reset().map_err(lv("reset")))
    }

    fn suspend(&self, name: &str) -> Result<(), HvError> {
        self.with_conn(|c| Self::lookup(c, name)?.suspend().map_err(lv("suspend")))
    }

    fn resume(&self, name: &str) -> Result<(), HvError> {
        self.with_conn(|c| Self::lookup(c, name)?.resume().map_err(lv("resume")))
    }

    fn grow_disk_live(&self, name: &str, target: &str, bytes: u64) -> Result<(), HvError> {
        self.with_conn(|c| {
            Self::lookup(c, name)?
                .block_resize(target, bytes, sys::VIR_DOMAIN_BLOCK_RESIZE_BYTES)
                .map_err(lv("grow a disk"))
        })
    }

    fn open_console(&self, name: &str) -> Result<super::ConsoleStream, HvError> {
        use std::os::fd::FromRawFd;
        self.with_conn(|c| {
            let dom = Self::lookup(c, name)?;
            let fd = if crate::failpoints::failpoint_set("console-no-fd") {
                Err(HvError::Unsupported(
                    "hand over a console socket (failpoint console-no-fd)",
                ))
            } else {
                dom.open_graphics_fd(0, sys::VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH)
                    .map_err(lv("open the console"))
            };
            match fd {
                // SAFETY: libvirt hands over a fresh descriptor that nothing else owns.
                Ok(fd) => Ok(super::ConsoleStream::Fd(unsafe {
                    std::os::fd::OwnedFd::from_raw_fd(fd as i32)
                })),
                Err(e) => {
                    let live = dom
                        .xml_desc(sys::VIR_DOMAIN_XML_SECURE)
                        .map_err(lv("read a domain"))?;
                    let (port, password) = super::domain::vnc_loopback(&live).ok_or(e)?;
                    tracing::info!(domain = name, port, "console through the loopback fallback");
                    Ok(super::ConsoleStream::Tcp {
                        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                        password,
                    })
                }
            }
        })
    }

    fn subscribe(&self, tx: UnboundedSender<DomainEvent>) -> Result<(), HvError> {
        *self.subscriber.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx.clone());
        self.with_conn(|c| events::register(c, tx.clone()))
    }

    fn list_tagged(&self, daemon_id: &str) -> Result<Vec<String>, HvError> {
        self.with_conn(|c| {
            let domains = c.list_all_domains(0).map_err(lv("list domains"))?;
            let mut names = Vec::new();
            for dom in domains {
                // A domain may vanish between the listing and this read: skip it.
                let Ok(xml) = dom.xml_desc(0) else { continue };
                if read_tag(&xml).is_some_and(|t| t.daemon == daemon_id) {
                    names.push(dom.name().map_err(lv("read a domain's name"))?);
                }
            }
            Ok(names)
        })
    }

    fn set_memory_hard_limit(&self, name: &str, mib: u64) -> Result<(), HvError> {
        self.with_conn(|c| {
            let kib = if mib == super::UNLIMITED_MIB {
                virt::domain::MemoryParameters::VALUE_UNLIMITED
            } else {
                mib * 1024
            };
            let params = virt::domain::MemoryParameters {
                hard_limit: Some(kib),
                ..Default::default()
            };
            Self::lookup(c, name)?
                .set_memory_parameters(params, sys::VIR_DOMAIN_AFFECT_LIVE)
                .map_err(lv("set the memory hard limit"))
        })
    }

    fn memory_hard_limit(&self, name: &str) -> Result<Option<u64>, HvError> {
        self.with_conn(|c| {
            let p = Self::lookup(c, name)?
                .memory_parameters(sys::VIR_DOMAIN_AFFECT_LIVE)
                .map_err(lv("read the memory parameters"))?;
            Ok(p.hard_limit
                .filter(|&k| k < virt::domain::MemoryParameters::VALUE_UNLIMITED)
                .map(|k| k / 1024))
        })
    }

    fn all_stats(&self) -> Result<Vec<super::raw::DomainStats>, HvError> {
        self.with_conn(|c| super::raw::all_domain_stats(c).map_err(lv("read domain statistics")))
    }

    fn read_network(&self, name: &str) -> Result<Option<network::NetworkState>, HvError> {
        self.with_conn(|c| {
            let Some(net) = lookup_network(c, name)? else {
                return Ok(None);
            };
            let xml = net.xml_desc(0).map_err(lv("read a network's XML"))?;
            network::read_network(&xml).map(Some).ok_or_else(|| {
                HvError::Refused(format!("network {name} exists but has no IPv4 /24"))
            })
        })
    }

    fn ensure_network(&self, spec: &NetworkSpec) -> Result<(), HvError> {
        self.with_conn(|c| {
            let net = match lookup_network(c, &spec.name)? {
                Some(net) => net,
                None => c
                    .define_network_xml(&spec.to_xml()?)
                    .map_err(lv("define the network"))?,
            };
            if !net.is_active().map_err(lv("read a network's state"))? {
                net.create().map_err(lv("start the network"))?;
            }
            net.set_autostart(true)
                .map_err(lv("mark the network autostart"))
        })
    }

    fn remove_network(&self, name: &str) -> Result<(), HvError> {
        self.with_conn(|c| {
            let Some(net) = lookup_network(c, name)? else {
                return Ok(());
            };
            if net.is_active().unwrap_or(false) {
                net.destroy().map_err(lv("stop a network"))?;
            }
            net.undefine().map_err(lv("undefine a network"))
        })
    }

    fn set_dhcp_host(&self, network: &str, host: &DhcpHost, present: bool) -> Result<(), HvError> {
        let xml = network::host_xml(host)?;
        self.with_conn(|c| {
            let net = lookup_network(c, network)?
                .ok_or_else(|| HvError::Refused(format!("network {network} is missing")))?;
            let mut flags = sys::VIR_NETWORK_UPDATE_AFFECT_CONFIG;
            if net.is_active().unwrap_or(false) {
                flags |= sys::VIR_NETWORK_UPDATE_AFFECT_LIVE;
            }
            let section = sys::VIR_NETWORK_SECTION_IP_DHCP_HOST;
            if present {
                // Idempotent: an entry left over for this MAC or address goes first.
                let _ = net.update(
                    sys::VIR_NETWORK_UPDATE_COMMAND_DELETE,
                    section,
                    -1,
                    &xml,
                    flags,
                );
                net.update(
                    sys::VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                    section,
                    -1,
                    &xml,
                    flags,
                )
            } else {
                net.update(
                    sys::VIR_NETWORK_UPDATE_COMMAND_DELETE,
                    section,
                    -1,
                    &xml,
                    flags,
                )
            }
            .map_err(lv("update the network's DHCP hosts"))
        })
    }

    fn dhcp_leases(&self, network: &str) -> Result<Vec<Lease>, HvError> {
        self.with_conn(|c| {
            let net = lookup_network(c, network)?
                .ok_or_else(|| HvError::Refused(format!("network {network} is missing")))?;
            super::raw::dhcp_leases(&net).map_err(lv("read the DHCP leases"))
        })
    }

    fn create_snapshot(&self, name: &str, snapshot: &str) -> Result<bool, HvError> {
        self.with_conn(|c| {
            let dom = Self::lookup(c, name)?;
            let memory = dom.is_active().map_err(lv("read a domain's state"))?;
            let xml = super::snapshot::snapshot_xml(snapshot, "vda", &["vdb"], memory)?;
            dom.create_snapshot_xml(&xml, 0)
                .map_err(lv("take a snapshot"))?;
            Ok(memory)
        })
    }

    fn revert_snapshot(&self, name: &str, snapshot: &str) -> Result<(), HvError> {
        self.with_conn(|c| {
            let dom = Self::lookup(c, name)?;
            let snap = Domain::lookup_snapshot_by_name(&dom, snapshot, 0)
                .map_err(lv("find a snapshot"))?;
            snap.revert(sys::VIR_DOMAIN_SNAPSHOT_REVERT_FORCE)
                .map_err(lv("revert to a snapshot"))
        })
    }

    fn delete_snapshot(&self, name: &str, snapshot: &str) -> Result<(), HvError> {
        self.delete_snapshot_with(name, snapshot, 0)
    }

    fn qemu_pid(&self, name: &str) -> Option<u32> {
        // libvirt's qemu driver keeps each running domain's pid in its state directory.
        let text = std::fs::read_to_string(format!("/run/libvirt/qemu/{name}.pid")).ok()?;
        text.trim().parse().ok()
    }

    fn forget_snapshot(&self, name: &str, snapshot: &str) -> Result<(), HvError> {
        self.delete_snapshot_with(
            name,
            snapshot,
            sys::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY,
        )
    }
    fn begin_backup(&self, name: &str, target: &std::path::Path) -> Result<(), HvError> {
        let xml = super::snapshot::backup_xml("vda", &["vdb"], target)?;
        self.with_conn(|c| {
            let dom = Self::lookup(c, name)?;
            super::raw::backup_begin(&dom, &xml).map_err(|e| {
                if e.code() == Enum::Known(ErrorNumber::NoSupport) {
                    HvError::Unsupported("back up a running domain")
                } else {
                    lv("begin a backup")(e)
                }
            })
        })
    }

    fn backup_progress(&self, name: &str) -> Result<BackupProgress, HvError> {
        self.with_conn(|c| {
            let dom = Self::lookup(c, name)?;
            let info = dom.job_info().map_err(lv("read a job's progress"))?;
            if info.r#type != sys::VIR_DOMAIN_JOB_NONE as i32 {
                return Ok(BackupProgress::Running {
                    done: info.data_processed.unwrap_or(0),
                    total: info.data_total.unwrap_or(0),
                });
            }
            let done = dom
                .job_stats(sys::VIR_DOMAIN_JOB_STATS_COMPLETED)
                .map_err(lv("read a finished job"))?;
            Ok(if done.r#type == sys::VIR_DOMAIN_JOB_COMPLETED as i32 {
                BackupProgress::Completed
            } else {
                BackupProgress::Failed(
                    done.error_message
                        .unwrap_or_else(|| "the backup job ended without completing".into()),
                )
            })
        })
    }

    fn abort_job(&self, name: &str) -> Result<(), HvError> {
        self.with_conn(|c| {
            let dom = Self::lookup(c, name)?;
            match super::raw::abort_job(&dom) {
                Ok(()) => Ok(()),
                Err(e) if e.code() == Enum::Known(ErrorNumber::OperationInvalid) => Ok(()),
                Err(e) => Err(lv("cancel a job")(e)),
            }
        })
    }
}

fn lookup_network(c: &Connect, name: &str) -> Result<Option<virt::network::Network>, HvError> {
    match c.lookup_network_by_name(name) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.code() == Enum::Known(ErrorNumber::NoNetwork) => Ok(None),
        Err(e) => Err(lv("look up a network")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_major_minor_micro() {
        assert_eq!(version_string(9_000_000), "9.0.0");
        assert_eq!(version_string(7_002_001), "7.2.1");
    }

    #[test]
    fn kvm_is_offered_only_when_the_capabilities_say_so() {
        let kvm = "<capabilities><host/><guest><os_type>hvm</os_type><arch name='x86_64'>\
            <domain type='qemu'/><domain type='kvm'/></arch></guest></capabilities>";
        let tcg = "<capabilities><guest><arch name='x86_64'><domain type='qemu'/></arch></guest>\
            </capabilities>";
        assert!(offers_kvm(kvm));
        assert!(!offers_kvm(tcg));
        assert!(!offers_kvm("<capabilities/>"));
    }
}
