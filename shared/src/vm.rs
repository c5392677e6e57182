//! Virtual servers: their states, actions, sizes, limits and why they stopped.

use serde::{Deserialize, Serialize};

use crate::{HostId, ImageId, UserId, VmId};

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
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: VmId,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub owner_id: UserId,
    /// The host (daemon) that holds it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub host_id: HostId,
    pub state: VmState,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    /// The image it was made from; empty for a server imported or restored from an archive
    /// (its disk then stands alone, on no image of this host).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub image_id: ImageId,
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
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub image_id: ImageId,
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
