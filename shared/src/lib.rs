//! Wire types of the Nuage API (`/api/v1`), compiled by both `nuaged` and the web console.
//!
//! Architecture invariant: this crate knows serde and nothing else: no tokio, no rusqlite, no virt,
//! no web-sys. A type lives here when it crosses the wire; the daemon's internal types do not.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// The base path of every API endpoint.
pub const API_BASE: &str = "/api/v1";

/// The body of every error response: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// A sentence for a person. Never carries SQL, libvirt or file-system text.
    pub message: String,
}

/// The machine-readable error codes of API.md, one per documented status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Invalid,
    Unauthenticated,
    Forbidden,
    NotFound,
    QuotaExceeded,
    InsufficientCapacity,
    Conflict,
    RateLimited,
    Unavailable,
    /// A bug in the daemon (any 5xx other than 503/507). The message says no more than that.
    Internal,
}

impl ErrorCode {
    /// The HTTP status API.md fixes for this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Invalid => 422,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden | ErrorCode::QuotaExceeded => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::InsufficientCapacity => 507,
        }
    }
}

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

/// The limits the host enforces on one server (`GET /vms/{id}`), from its size, the host's policy
/// and any override an admin set on its owner or on the server. Rates of 0 mean unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceLimits {
    /// CPU weight against other servers when the host is busy: 1024 per vCPU.
    pub cpu_shares: u64,
    /// Hard cap per vCPU, in percent of one host core; 0: none.
    pub cpu_cap_percent: u32,
    /// The memory the server's QEMU process may use at most: its memory plus the host's per-guest
    /// overhead allowance.
    pub memory_hard_limit_mib: u64,
    pub disk_iops: u64,
    pub disk_bytes_per_sec: u64,
    /// Into the server (host to guest), KiB/s.
    pub net_inbound_kib_per_sec: u64,
    /// Out of the server (guest to host), KiB/s.
    pub net_outbound_kib_per_sec: u64,
}

/// Limits an admin sets on a user (for all their servers) or on one server: a field left out
/// inherits (server → owner → host policy); 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cap_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_iops: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes_per_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_inbound_kib_per_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_outbound_kib_per_sec: Option<u64>,
}

impl LimitOverrides {
    /// Each field of `self`, or else `base`'s.
    pub fn or(self, base: LimitOverrides) -> LimitOverrides {
        LimitOverrides {
            cpu_cap_percent: self.cpu_cap_percent.or(base.cpu_cap_percent),
            disk_iops: self.disk_iops.or(base.disk_iops),
            disk_bytes_per_sec: self.disk_bytes_per_sec.or(base.disk_bytes_per_sec),
            net_inbound_kib_per_sec: self
                .net_inbound_kib_per_sec
                .or(base.net_inbound_kib_per_sec),
            net_outbound_kib_per_sec: self
                .net_outbound_kib_per_sec
                .or(base.net_outbound_kib_per_sec),
        }
    }

    /// The rules for overrides, shared so the console can check as the admin types.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.cpu_cap_percent.is_some_and(|c| c > 100) {
            return Err("A CPU cap is a percentage of one core per vCPU: 1 to 100, or 0 for none.");
        }
        if self.disk_iops.is_some_and(|v| v != 0 && v < 10) {
            return Err("Disk IOPS must be at least 10, or 0 for unlimited.");
        }
        if self
            .disk_bytes_per_sec
            .is_some_and(|v| v != 0 && v < 1 << 20)
        {
            return Err("Disk throughput must be at least 1 MiB/s (1048576), or 0 for unlimited.");
        }
        let net = [self.net_inbound_kib_per_sec, self.net_outbound_kib_per_sec];
        if net.iter().flatten().any(|&v| v != 0 && v < 8) {
            return Err("Network rates must be at least 8 KiB/s, or 0 for unlimited.");
        }
        if net.iter().flatten().any(|&v| v > 4_294_967) {
            return Err("Network rates must be at most 4294967 KiB/s.");
        }
        Ok(())
    }
}

/// One sample of a server's use, averaged over the sampling interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricSample {
    /// Unix time, seconds.
    pub t: i64,
    /// CPU time over wall time, in percent of one core (a 2-vCPU server can reach 200).
    pub cpu_percent: f32,
    /// Memory the server's QEMU process holds on the host (resident), MiB.
    pub memory_mib: f32,
    pub disk_read_bytes_per_sec: f32,
    pub disk_write_bytes_per_sec: f32,
    pub disk_read_iops: f32,
    pub disk_write_iops: f32,
    pub net_rx_bytes_per_sec: f32,
    pub net_tx_bytes_per_sec: f32,
}

/// `GET /vms/{id}/metrics?since=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmMetrics {
    pub vm_id: String,
    /// Seconds between recent samples; older ones are averaged over longer steps.
    pub interval_secs: u32,
    pub samples: Vec<MetricSample>,
    /// Network traffic this calendar month (UTC), for bandwidth quotas.
    pub traffic: MonthlyTraffic,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthlyTraffic {
    /// `YYYY-MM`.
    pub month: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
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

/// A user's role: admins manage users, images and the host; users manage their own VPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    User,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    pub user: User,
}

/// What a user may allocate in all (`quota`), or has allocated (`usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub vms: u32,
    pub snapshots: u32,
}

impl Quota {
    /// The quota of a user created without one: room for a couple of small servers.
    pub const DEFAULT: Quota = Quota {
        vcpus: 4,
        memory_mib: 4096,
        disk_gib: 40,
        vms: 2,
        snapshots: 4,
    };
}

/// `GET /me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub user: User,
    pub quota: Quota,
    pub usage: Quota,
}

/// A user as administrators see it (`GET /users`, `GET /users/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserDetail {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub created_at: String,
    pub quota: Quota,
    pub usage: Quota,
    /// Limits set on all this user's servers (`PUT /users/{id}/limits`).
    #[serde(default)]
    pub limits: LimitOverrides,
}

/// `POST /users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    /// [`Quota::DEFAULT`] when omitted.
    #[serde(default)]
    pub quota: Option<Quota>,
}

/// `PATCH /users/{id}`: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}

/// The rules for a username, shared so the console can check as the user types.
pub fn validate_username(name: &str) -> Result<(), &'static str> {
    let ok_len = (1..=32).contains(&name.len());
    let mut chars = name.chars();
    let ok_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok_len && ok_first && ok_rest {
        Ok(())
    } else {
        Err(
            "A username is 1 to 32 characters: lowercase letters, digits, '-', '_' or '.', \
             starting with a letter or a digit.",
        )
    }
}

/// The rules for a password.
pub fn validate_password(password: &str) -> Result<(), &'static str> {
    match password.chars().count() {
        0..=7 => Err("A password has at least 8 characters."),
        8..=1024 => Ok(()),
        _ => Err("A password has at most 1024 characters."),
    }
}

/// A disk image VPS are created from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Image {
    pub id: String,
    pub name: String,
    /// `qcow2` or `raw`.
    pub format: String,
    /// The disk size the image was made for; a VPS disk is at least this large.
    pub virtual_size_bytes: u64,
    pub os: Option<String>,
    pub created_at: String,
}

/// `POST /images`: import a file lying in one of the daemon's import directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImportImage {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub os: Option<String>,
}

/// A VPS's life, as API.md names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    Creating,
    Stopped,
    Starting,
    Running,
    Stopping,
    Paused,
    Deleting,
    Error,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Creating => "creating",
            VmState::Stopped => "stopped",
            VmState::Starting => "starting",
            VmState::Running => "running",
            VmState::Stopping => "stopping",
            VmState::Paused => "paused",
            VmState::Deleting => "deleting",
            VmState::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<VmState> {
        [
            VmState::Creating,
            VmState::Stopped,
            VmState::Starting,
            VmState::Running,
            VmState::Stopping,
            VmState::Paused,
            VmState::Deleting,
            VmState::Error,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// The power actions of `POST /vms/{id}/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VmAction {
    /// Boot a stopped server.
    Start,
    /// Ask the guest to power off (ACPI); it may take a while, or be ignored by the guest.
    Shutdown,
    /// Power off at once.
    Stop,
    /// Ask the guest to reboot (ACPI).
    Reboot,
    /// Reset the virtual hardware at once.
    Reset,
    /// Pause the guest's CPUs, keeping its memory.
    Suspend,
    /// Continue a suspended guest.
    Resume,
}

impl VmAction {
    pub const ALL: [VmAction; 7] = [
        VmAction::Start,
        VmAction::Shutdown,
        VmAction::Stop,
        VmAction::Reboot,
        VmAction::Reset,
        VmAction::Suspend,
        VmAction::Resume,
    ];

    pub fn name(self) -> &'static str {
        match self {
            VmAction::Start => "start",
            VmAction::Shutdown => "shutdown",
            VmAction::Stop => "stop",
            VmAction::Reboot => "reboot",
            VmAction::Reset => "reset",
            VmAction::Suspend => "suspend",
            VmAction::Resume => "resume",
        }
    }

    pub fn parse(s: &str) -> Option<VmAction> {
        VmAction::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Whether a server in `state` may take this action: the one table the daemon enforces and
    /// the console uses to offer buttons.
    pub fn allowed_in(self, state: VmState) -> bool {
        use VmAction as A;
        use VmState as S;
        matches!(
            (self, state),
            (A::Start, S::Stopped)
                | (A::Shutdown | A::Reboot | A::Reset | A::Suspend, S::Running)
                | (A::Stop, S::Running | S::Paused | S::Stopping | S::Starting)
                | (A::Resume, S::Paused)
        )
    }
}

/// A virtual private server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Vm {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    /// The host (daemon) that holds it.
    pub host_id: String,
    pub state: VmState,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    /// The image it was made from; empty for a server imported or restored from an archive
    /// (its disk then stands alone, on no image of this host).
    pub image_id: String,
    pub hostname: String,
    pub created_at: String,
    pub ip_addresses: Vec<String>,
    /// A resize that takes effect at the next boot, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingResize>,
    /// The network card's MAC address (its DHCP address is in `ip_addresses`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// The limits the host enforces on it (a change made while it runs applies at its next boot).
    #[serde(default)]
    pub limits: ResourceLimits,
    /// What an admin set on this server itself (inherits the rest from its owner and the host).
    #[serde(default)]
    pub limit_overrides: LimitOverrides,
    /// Why a stopped server stopped (absent while it runs, or when nobody knows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
}

/// Why a server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The guest powered itself off (e.g. `poweroff` inside it).
    ShutDown,
    /// Its owner or an administrator stopped or shut it down.
    Stopped,
    /// QEMU ended unexpectedly.
    Crashed,
    /// The host's memory limit for it was reached and the kernel killed its QEMU.
    KilledForMemory,
    /// The host (or its daemon) went down while it ran; it is started again when the host is up.
    HostRestart,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::ShutDown => "shut_down",
            StopReason::Stopped => "stopped",
            StopReason::Crashed => "crashed",
            StopReason::KilledForMemory => "killed_for_memory",
            StopReason::HostRestart => "host_restart",
        }
    }

    pub fn parse(s: &str) -> Option<StopReason> {
        [
            StopReason::ShutDown,
            StopReason::Stopped,
            StopReason::Crashed,
            StopReason::KilledForMemory,
            StopReason::HostRestart,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// A sentence for the server page.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::ShutDown => "It shut itself down.",
            StopReason::Stopped => "It was stopped by its owner or an administrator.",
            StopReason::Crashed => "It crashed.",
            StopReason::KilledForMemory => {
                "It was stopped for using more memory than the host allows it."
            }
            StopReason::HostRestart => "The host restarted while it ran.",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingResize {
    pub vcpus: u32,
    pub memory_mib: u64,
}

/// `POST /vms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateVm {
    pub name: String,
    pub image_id: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    /// The name when omitted.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Boot right away (the default).
    #[serde(default)]
    pub start: Option<bool>,
}

/// `PATCH /vms/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateVm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_gib: Option<u64>,
}

/// The sizes a VPS may have.
pub mod limits {
    pub const VCPUS: std::ops::RangeInclusive<u32> = 1..=64;
    pub const MEMORY_MIB: std::ops::RangeInclusive<u64> = 128..=262_144;
    pub const DISK_GIB: std::ops::RangeInclusive<u64> = 1..=16_384;
}

/// A VPS name: 1 to 63 of `[a-z0-9-]`, unique per owner. Hostnames follow the same rule and may
/// not start or end with '-'.
pub fn validate_vm_name(name: &str) -> Result<(), &'static str> {
    let ok = (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err("A server name is 1 to 63 characters: lowercase letters, digits and '-'.")
    }
}

pub fn validate_hostname(name: &str) -> Result<(), &'static str> {
    if validate_vm_name(name).is_ok() && !name.starts_with('-') && !name.ends_with('-') {
        Ok(())
    } else {
        Err("A hostname is 1 to 63 characters: lowercase letters, digits and '-', not at either end.")
    }
}

/// An image name: 1 to 64 characters of `[a-z0-9._-]`, starting with a letter or digit.
pub fn validate_image_name(name: &str) -> Result<(), &'static str> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err("An image name is 1 to 64 characters: lowercase letters, digits, '.', '_' or '-'.")
    }
}

/// `POST /vms/{id}/console`: a single-use ticket for the server's screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsoleTicket {
    pub ticket: String,
    /// The WebSocket to open (relative to the daemon), ticket included.
    pub url: String,
    pub expires_at: String,
}

/// A personal API token as `GET /tokens` lists it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// `POST /tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// Never expires when omitted.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// The answer to `POST /tokens`: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewToken {
    pub id: String,
    pub token: String,
    pub name: String,
    pub expires_at: Option<String>,
}

/// One state-changing request, as `GET /audit` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    /// e.g. `POST /api/v1/vms/{id}/{action}` or `auth.login`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub vm_id: Option<String>,
    /// The client's address.
    pub client: Option<String>,
    /// `success`, `denied` (4xx) or `failed` (5xx).
    pub outcome: String,
    pub status: Option<u16>,
}

/// A point a server's disk (and, when taken while it ran, its memory) can go back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    pub id: String,
    pub vm_id: String,
    pub name: String,
    pub created_at: String,
    /// True when the snapshot holds the running guest's memory too: reverting to it resumes the
    /// guest where it was. False: disk only (the server was not running); reverting leaves it off.
    pub with_memory: bool,
}

/// `POST /vms/{id}/snapshots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateSnapshot {
    /// 1-63 characters of `[a-z0-9-]`, unique per server.
    pub name: String,
}

/// A backup of a server: a portable archive in the host's backup store. It outlives the server
/// it was taken of, so a deleted server can be restored as a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Backup {
    pub id: String,
    pub vm_id: String,
    /// The server's name when it was backed up.
    pub vm_name: String,
    pub owner_id: String,
    pub created_at: String,
    /// `running` while the job works, then `ready`.
    pub state: String,
    /// The archive's size (0 while running).
    pub size_bytes: u64,
    /// What the backup takes of the owner's disk quota: the archive rounded up to whole GiB
    /// (the server's disk size while the backup runs).
    pub quota_gib: u64,
    /// The server's disk size when backed up.
    pub disk_gib: u64,
    /// Made by the server's schedule (and pruned by it), rather than by hand.
    pub scheduled: bool,
    /// The archive's own SHA-256 (hex), once ready.
    pub sha256: Option<String>,
}

/// `POST /backups/{bid}/restore`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestoreBackup {
    /// True: make a new server from the backup (quota-checked). False (the default): put the
    /// backup's disk back into its server, which must be stopped.
    #[serde(default)]
    pub as_new: bool,
    /// The new server's name (with `as_new`); defaults to the old name with `-restored`.
    #[serde(default)]
    pub name: Option<String>,
}

/// A server's backup schedule: every day at `time` (UTC, `HH:MM`), keeping the newest `keep`
/// scheduled backups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupSchedule {
    pub time: String,
    pub keep: u32,
    /// When the next backup is due (RFC 3339), as the daemon computed it.
    #[serde(default)]
    pub next_run: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Backup,
    Restore,
    Export,
    Import,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }
}

/// Long work (backup, restore, export, import): `GET /jobs/{id}` and `job` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub state: JobState,
    /// 0..1.
    pub progress: f64,
    /// Why it failed, in a sentence for the user.
    pub error: Option<String>,
    pub owner_id: String,
    /// The server it works on (for an import or a restore as new: the server it made).
    pub vm_id: Option<String>,
    pub backup_id: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// The answer to `POST /vms/import`: the server made from the archive (stopped) and the job
/// that read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Imported {
    pub vm: Vm,
    pub job: Job,
}

/// One message on `/api/v1/events`: an object with one key naming the kind, e.g.
/// `{"vm_state": {"vm_id": "…", "state": "stopped", "at": "…"}}`. (Externally tagged: an
/// internally tagged enum costs the browser console 15 KiB of wasm, gzipped, to decode.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A VPS changed state (from libvirt's own lifecycle events).
    VmState {
        vm_id: String,
        state: VmState,
        at: String,
        /// Why it stopped, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_reason: Option<StopReason>,
    },
    /// A VPS appeared, changed size or name.
    VmUpdated { vm: Box<Vm> },
    /// A VPS is gone.
    VmDeleted { vm_id: String },
    /// A new usage sample of a VPS (every sampling interval while it runs).
    Metrics { vm_id: String, sample: MetricSample },
    /// A job started, progressed or ended.
    Job { job: Job },
    /// The connection fell behind and `missed` events were dropped: reload the list.
    Lagged { missed: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::QuotaExceeded,
                message: "m".into(),
            },
        };
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"error":{"code":"quota_exceeded","message":"m"}}"#);
    }

    #[test]
    fn every_code_maps_to_the_documented_status() {
        let table = [
            (ErrorCode::BadRequest, 400, "bad_request"),
            (ErrorCode::Invalid, 422, "invalid"),
            (ErrorCode::Unauthenticated, 401, "unauthenticated"),
            (ErrorCode::Forbidden, 403, "forbidden"),
            (ErrorCode::NotFound, 404, "not_found"),
            (ErrorCode::QuotaExceeded, 403, "quota_exceeded"),
            (
                ErrorCode::InsufficientCapacity,
                507,
                "insufficient_capacity",
            ),
            (ErrorCode::Conflict, 409, "conflict"),
            (ErrorCode::RateLimited, 429, "rate_limited"),
            (ErrorCode::Unavailable, 503, "unavailable"),
        ];
        for (code, status, name) in table {
            assert_eq!(code.status(), status, "{code:?}");
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(name));
        }
    }

    #[test]
    fn usernames_follow_the_rules() {
        for ok in ["alice", "a", "bob-2", "c.d_e", "0x", &"a".repeat(32)] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "-a",
            ".a",
            "a b",
            "a/b",
            "a<b",
            "é",
            "../x",
            &"a".repeat(33),
        ] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vm_names_and_hostnames_follow_the_rules() {
        for ok in ["a", "web-1", "0", &"a".repeat(63)] {
            assert!(validate_vm_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Web",
            "a_b",
            "a.b",
            "a<b",
            "a'b",
            "a/b",
            "..",
            "é",
            &"a".repeat(64),
        ] {
            assert!(validate_vm_name(bad).is_err(), "{bad}");
        }
        assert!(validate_hostname("web-1").is_ok());
        assert!(validate_hostname("-web").is_err());
        assert!(validate_hostname("web-").is_err());
    }

    #[test]
    fn vm_states_round_trip_their_names() {
        for s in [
            "creating", "stopped", "starting", "running", "stopping", "paused", "deleting", "error",
        ] {
            let state = VmState::parse(s).unwrap();
            assert_eq!(state.as_str(), s);
            assert_eq!(serde_json::to_value(state).unwrap(), serde_json::json!(s));
        }
        assert_eq!(VmState::parse("on"), None);
    }

    #[test]
    fn passwords_follow_the_rules() {
        assert!(validate_password("1234567").is_err());
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn login_request_refuses_unknown_fields() {
        let r: Result<LoginRequest, _> =
            serde_json::from_str(r#"{"username":"a","password":"b","admin":true}"#);
        assert!(r.is_err());
    }
}
