//! The host: health, capacity, allocation, its network and hypervisor.

use serde::{Deserialize, Serialize};

/// The base path of every API endpoint.
pub const API_BASE: &str = "/api/v1";

/// How guests are executed. `Kvm` is hardware virtualisation; `Tcg` is QEMU's software emulation,
/// used where KVM cannot run an ordinary guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Accel {
    Kvm,
    Tcg,
}

/// `GET /healthz`: 200 when both are up, 503 otherwise (same body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `"ok"` or `"degraded"`.
    pub status: String,
    pub database: bool,
    pub hypervisor: bool,
    /// True when the daemon drives libvirt's simulated `test:///default` hypervisor: nothing it
    /// creates is a real machine. The web console shows a banner for it.
    pub simulated: bool,
}

/// `GET /api/v1/host`: what this host is and what runs the guests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostInfo {
    pub hostname: String,
    pub daemon_version: String,
    pub hypervisor: HypervisorInfo,
    /// The acceleration guests are started with.
    pub accel: Accel,
    /// Why that acceleration was chosen (e.g. why KVM was ruled out), for the operator.
    pub accel_reason: String,
    /// Problems of the host's setup that make the daemon slow or fragile, each with its fix
    /// (e.g. a `/dev/kvm` that QEMU's user cannot open). Empty when all is well.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Logical CPUs of the host.
    pub cpus: u32,
    pub memory_mib: u64,
    /// What the host can hold, what is allocated, and the overcommit ratios in force.
    pub capacity: HostCapacity,
    /// The libvirt network the servers are attached to, and its address pool.
    pub network: NetworkInfo,
}

/// The host's capacity for servers: physical resources times the overcommit ratio, and what the
/// servers on this host have been given. A create, resize or import beyond it is refused with
/// `507 insufficient_capacity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostCapacity {
    pub cpu_overcommit: f64,
    pub memory_overcommit: f64,
    pub disk_overcommit: f64,
    /// Memory kept for the host itself, not given to servers.
    pub reserved_memory_mib: u64,
    /// Size of the file system holding the servers' disks, and what is free on it now.
    pub disk_total_gib: u64,
    pub disk_free_gib: u64,
    /// How much can be allocated (physical × ratio, less the reserve).
    pub limit: Allocation,
    /// How much the servers on this host hold now.
    pub allocated: Allocation,
}

/// Resources given to servers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Allocation {
    pub vcpus: u64,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub vms: u64,
}

/// The daemon's own libvirt network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkInfo {
    pub name: String,
    /// `nat` (guests reach outside through the host) or `isolated` (host and guests only).
    pub mode: String,
    /// e.g. `10.77.12.0/24`; the host is `.1`, servers get `.2` upwards.
    pub cidr: String,
    pub addresses_total: u32,
    pub addresses_used: u32,
    /// Whether NIC rate limits (`<bandwidth>`) are enforced on this host; when not, why.
    pub bandwidth_limits: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HypervisorInfo {
    /// The libvirt connection URI, e.g. `qemu:///system`.
    pub uri: String,
    /// libvirt's driver name, e.g. `QEMU` or `TEST`.
    pub driver: String,
    /// Hypervisor version as `major.minor.micro`.
    pub version: String,
    /// libvirt library version as `major.minor.micro`.
    pub libvirt_version: String,
    pub simulated: bool,
}
