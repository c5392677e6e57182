//! The hypervisor boundary. Everything Nuage asks of libvirt goes through the [`Hypervisor`] trait;
//! [`libvirt::Libvirt`] implements it with the `virt` crate, for `qemu:///system` and for libvirt's
//! simulated `test:///default` alike.
//!
//! Architecture invariant: this module is the only one that talks to libvirt. It knows nothing of
//! HTTP, users or the database; the app layer decides, this module carries out.
//!
//! Calls here block (libvirt's API is synchronous): async callers run them with
//! `tokio::task::spawn_blocking`.

pub mod accel;
pub mod bandwidth;
pub mod domain;
pub mod events;
pub mod libvirt;
pub mod network;
pub mod oom;
pub mod raw;
pub mod snapshot;

use nuage_shared::Accel;

/// What can go wrong talking to the hypervisor. `Display` texts are for the log, never for a client:
/// the app layer turns these into sentences of its own.
#[derive(Debug, thiserror::Error)]
pub enum HvError {
    #[error("libvirt at {uri} is unreachable")]
    Unreachable {
        uri: String,
        #[source]
        source: virt::error::Error,
    },
    #[error("no such domain: {0}")]
    NoDomain(String),
    #[error("the domain's state forbids {0}")]
    InvalidState(&'static str),
    #[error("libvirt failed to {what}")]
    Libvirt {
        what: &'static str,
        #[source]
        source: virt::error::Error,
    },
    #[error("cannot build the domain XML")]
    Xml(#[source] quick_xml::SeError),
    #[error("{0}")]
    Refused(String),
    #[error("libvirt's driver cannot {0}")]
    Unsupported(&'static str),
}

/// Facts about the host and its hypervisor, read from libvirt.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub uri: String,
    /// libvirt's driver name: `QEMU`, `TEST`, ...
    pub driver: String,
    pub hypervisor_version: String,
    pub libvirt_version: String,
    pub hostname: String,
    pub cpus: u32,
    pub memory_mib: u64,
}

impl HostFacts {
    /// libvirt's simulated hypervisor: domains there are bookkeeping, no guest code runs.
    pub fn simulated(&self) -> bool {
        self.driver.eq_ignore_ascii_case("test")
    }
}

/// For [`Hypervisor::set_memory_hard_limit`]: no limit.
pub const UNLIMITED_MIB: u64 = u64::MAX;

/// A domain's run state, as libvirt reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainRunState {
    Running,
    Paused,
    ShuttingDown,
    ShutOff,
    Crashed,
    Other,
}

/// The libvirt operations Nuage uses. Object-safe, so the app holds an `Arc<dyn Hypervisor>`.
pub trait Hypervisor: Send + Sync + 'static {
    /// Host and hypervisor facts (cheap: no capability probing).
    fn host_facts(&self) -> Result<HostFacts, HvError>;

    /// Whether libvirt offers `<domain type='kvm'>` guests. Slow (libvirt may probe QEMU for
    /// seconds): read once at start.
    fn offers_kvm(&self) -> Result<bool, HvError>;

    /// The health probe: libvirt answers a cheap call.
    fn ping(&self) -> Result<(), HvError>;

    /// The `<domain type=...>` for guests under `accel` on this connection.
    fn domain_type(&self, accel: Accel) -> &'static str;

    /// Defines (persistently) a domain from its XML; returns its name.
    fn define(&self, xml: &str) -> Result<String, HvError>;

    fn start(&self, name: &str) -> Result<(), HvError>;

    /// Powers off at once (no guest cooperation).
    fn destroy(&self, name: &str) -> Result<(), HvError>;

    /// Removes the definition (also of a running domain, which then vanishes when it stops).
    fn undefine(&self, name: &str) -> Result<(), HvError>;

    fn state(&self, name: &str) -> Result<DomainRunState, HvError>;

    /// Asks the guest to shut down (ACPI power button); returns before it has.
    fn shutdown(&self, name: &str) -> Result<(), HvError>;

    /// Asks the guest to reboot (ACPI).
    fn reboot(&self, name: &str) -> Result<(), HvError>;

    /// Resets the virtual hardware at once, like a reset button.
    fn reset(&self, name: &str) -> Result<(), HvError>;

    fn suspend(&self, name: &str) -> Result<(), HvError>;

    fn resume(&self, name: &str) -> Result<(), HvError>;

    /// Grows a running domain's disk (by target, e.g. `vda`) to `bytes`.
    fn grow_disk_live(&self, name: &str, target: &str, bytes: u64) -> Result<(), HvError>;

    /// The domain's VNC server: a connected socket from libvirt's virDomainOpenGraphicsFD (the
    /// guest's screen without any TCP port), or, when libvirt cannot hand one over, its
    /// loopback address if the domain listens there.
    fn open_console(&self, name: &str) -> Result<ConsoleStream, HvError>;

    /// Sends every domain lifecycle event to `tx`, also after a reconnection.
    fn subscribe(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<events::DomainEvent>,
    ) -> Result<(), HvError>;

    /// Names of the domains carrying this daemon's metadata tag, running or not.
    fn list_tagged(&self, daemon_id: &str) -> Result<Vec<String>, HvError>;

    /// Caps the memory of a running domain's QEMU process (its memory cgroup), KiB-exact;
    /// [`UNLIMITED_MIB`] lifts the cap.
    /// Applied live after each start rather than in the XML: libvirt turns an XML `hard_limit`
    /// into the process's locked-memory limit too, which needs `CAP_SYS_RESOURCE` that
    /// containerised hosts lack.
    fn set_memory_hard_limit(&self, name: &str, mib: u64) -> Result<(), HvError>;

    /// The memory hard limit of a running domain, MiB (`None`: unlimited).
    fn memory_hard_limit(&self, name: &str) -> Result<Option<u64>, HvError>;

    /// Counters of every running domain on the connection, in one call.
    fn all_stats(&self) -> Result<Vec<raw::DomainStats>, HvError>;

    /// The network's subnet and static DHCP hosts, or `None` when no such network exists.
    fn read_network(&self, name: &str) -> Result<Option<network::NetworkState>, HvError>;

    /// Defines the network when missing, starts it when inactive, marks it autostart.
    fn ensure_network(&self, spec: &network::NetworkSpec) -> Result<(), HvError>;

    /// Stops and undefines a network (when it exists).
    fn remove_network(&self, name: &str) -> Result<(), HvError>;

    /// Adds (or, with `present == false`, removes) a static DHCP entry, live and persistent.
    fn set_dhcp_host(
        &self,
        network: &str,
        host: &network::DhcpHost,
        present: bool,
    ) -> Result<(), HvError>;

    /// The leases the network's DHCP server handed out.
    fn dhcp_leases(&self, network: &str) -> Result<Vec<network::Lease>, HvError>;

    /// Takes an internal snapshot named `snapshot` of the domain's disk `vda` (the seed `vdb`
    /// left out), with the guest's memory when the domain runs. Returns whether memory was kept.
    fn create_snapshot(&self, name: &str, snapshot: &str) -> Result<bool, HvError>;

    /// Brings the domain back to the snapshot: disk, and memory and run state when it has them.
    fn revert_snapshot(&self, name: &str, snapshot: &str) -> Result<(), HvError>;

    fn delete_snapshot(&self, name: &str, snapshot: &str) -> Result<(), HvError>;

    /// The pid of a running domain's QEMU process, where this host's libvirt says (a local
    /// `qemu:///system`); `None` elsewhere.
    fn qemu_pid(&self, name: &str) -> Option<u32>;

    /// Forgets a snapshot's record in libvirt without touching any disk (the disk that held it
    /// was replaced). A snapshot that is not there is no error.
    fn forget_snapshot(&self, name: &str, snapshot: &str) -> Result<(), HvError>;

    /// Starts a full push-mode backup of the running domain's disk `vda` into a new qcow2 file
    /// at `target`; the guest keeps running. `HvError::Unsupported` where the driver has none.
    fn begin_backup(&self, name: &str, target: &std::path::Path) -> Result<(), HvError>;

    /// How the domain's backup job is doing.
    fn backup_progress(&self, name: &str) -> Result<snapshot::BackupProgress, HvError>;

    /// Cancels the domain's running job (a backup); no error when there is none.
    fn abort_job(&self, name: &str) -> Result<(), HvError>;
}

/// Where the daemon reaches a guest's VNC server.
#[derive(Debug)]
pub enum ConsoleStream {
    /// A socket already connected (virDomainOpenGraphicsFD).
    Fd(std::os::fd::OwnedFd),
    /// The loopback address the VNC server listens on (the fallback), and the password of its
    /// VNC authentication (each boot has its own).
    Tcp {
        addr: std::net::SocketAddr,
        password: Option<String>,
    },
}
