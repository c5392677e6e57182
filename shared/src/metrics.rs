//! Usage metrics of a server: samples, their history, monthly traffic.

use serde::{Deserialize, Serialize};

use crate::VmId;

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
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub vm_id: VmId,
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
