//! What the host gives each server and how much it can give: the daemon's network and its address
//! pool, host capacity (physical resources × overcommit), and the limits each server runs under.

use std::collections::HashMap;

use nuage_shared::{Allocation, HostCapacity, LimitOverrides, NetworkInfo, ResourceLimits, Vm};

use super::{App, AppError};
use crate::cidr::Cidr;
use crate::config::{HostPolicy, NetworkMode};
use crate::db::{self, vms, Db};
use crate::hypervisor::network::{DhcpHost, NetworkSpec};
use crate::hypervisor::{bandwidth, Hypervisor};

const GIB: u64 = 1 << 30;

/// The daemon's network as set up at start.
#[derive(Debug, Clone)]
pub struct Net {
    pub name: String,
    pub cidr: Cidr,
    /// `Err(why)` when the host's kernel cannot enforce NIC rate limits.
    pub bandwidth: Result<(), String>,
}

/// Host facts that do not change while the daemon runs.
#[derive(Debug, Clone, Copy)]
pub struct Physical {
    pub cpus: u32,
    pub memory_mib: u64,
}

/// The limits a server runs under with `vcpus` and `memory_mib`: its size, the host's policy, and
/// overrides (the server's own first, then its owner's).
pub fn effective_limits(
    policy: &HostPolicy,
    vcpus: u32,
    memory_mib: u64,
    overrides: LimitOverrides,
    bandwidth_enforced: bool,
    tcg: bool,
) -> ResourceLimits {
    let net = |v: Option<u64>| {
        if bandwidth_enforced {
            v.unwrap_or(policy.net_kib_per_sec)
        } else {
            0
        }
    };
    ResourceLimits {
        cpu_shares: 1024 * u64::from(vcpus),
        cpu_cap_percent: overrides.cpu_cap_percent.unwrap_or(policy.cpu_cap_percent),
        memory_hard_limit_mib: memory_hard_limit_mib(policy, memory_mib, tcg),
        disk_iops: overrides.disk_iops.unwrap_or(policy.disk_iops),
        disk_bytes_per_sec: overrides
            .disk_bytes_per_sec
            .unwrap_or(policy.disk_bytes_per_sec),
        net_inbound_kib_per_sec: net(overrides.net_inbound_kib_per_sec),
        net_outbound_kib_per_sec: net(overrides.net_outbound_kib_per_sec),
    }
}

/// The memory a server's QEMU may use before its memory cgroup stops it: the guest's memory,
/// the policy's fixed overhead, an eighth of the guest's memory for QEMU's own structures that
/// grow with it (page tables, the dirty bitmap, I/O buffers), and under TCG the translation cache
/// (bounded in the domain definition). A limit guessed too low kills real guests (libvirt's own
/// documentation warns of it; a Debian guest of 768 MiB died at guest + 256 MiB under TCG), so
/// this errs on the generous side.
pub fn memory_hard_limit_mib(policy: &HostPolicy, memory_mib: u64, tcg: bool) -> u64 {
    let cache = if tcg {
        crate::hypervisor::domain::TCG_TB_CACHE_MIB
    } else {
        0
    };
    memory_mib + policy.memory_overhead_mib + memory_mib / 8 + cache
}

/// What `policy` lets the host allocate out of `physical`.
pub fn capacity_limit(
    policy: &HostPolicy,
    physical: Physical,
    disk_total_gib: u64,
    addresses: u64,
) -> Allocation {
    // Non-negative (ratios are validated positive) and far below 2^53: the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let scale = |v: f64, r: f64| (v * r).floor().max(0.0) as u64;
    Allocation {
        vcpus: scale(physical.cpus as f64, policy.cpu_overcommit),
        memory_mib: scale(
            physical
                .memory_mib
                .saturating_sub(policy.reserved_memory_mib) as f64,
            policy.memory_overcommit,
        ),
        disk_gib: scale(disk_total_gib as f64, policy.disk_overcommit),
        vms: addresses,
    }
}

/// Size and free space of the file system holding `dir`, GiB.
fn disk_space(dir: &std::path::Path) -> (u64, u64) {
    match rustix::fs::statvfs(dir) {
        Ok(s) => (s.f_blocks * s.f_frsize / GIB, s.f_bavail * s.f_frsize / GIB),
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot read the data dir's free space");
            (0, 0)
        }
    }
}

/// Sets up the daemon's network at start: adopts it when it exists (syncing its DHCP entries with
/// the database), else defines it on the configured /24 or on the first free candidate.
pub(super) fn setup_network(
    db: &Db,
    hv: &dyn Hypervisor,
    daemon_id: &str,
    policy: &HostPolicy,
    simulated: bool,
    local: bool,
) -> Result<Net, String> {
    let short = &daemon_id[..8.min(daemon_id.len())];
    let name = policy
        .network_name
        .clone()
        .unwrap_or_else(|| format!("nuage-{short}"));
    let recorded = db
        .call_blocking(|c| db::users::meta_get(c, "network_cidr"))
        .map_err(|e| format!("database: {}", super::chain(&e)))?
        .and_then(|p| Cidr::parse(&p).ok());
    let wanted: Vec<DhcpHost> = db
        .call_blocking(|c| vms::addresses(c, &name))
        .map_err(|e| format!("database: {}", super::chain(&e)))?
        .into_iter()
        .map(|(ip, mac)| DhcpHost { mac, ip })
        .collect();
    let spec = |cidr| NetworkSpec {
        name: name.clone(),
        bridge: format!("nu-{short}"),
        cidr,
        nat: policy.network_mode == NetworkMode::Nat,
        hosts: wanted.clone(),
    };
    let hv_err = |e: crate::hypervisor::HvError| format!("network {name}: {}", super::chain(&e));

    let cidr = match hv.read_network(&name).map_err(hv_err)? {
        Some((cidr, present)) => {
            if let Some(want) = policy.network_cidr.filter(|c| *c != cidr) {
                return Err(format!(
                    "network {name} exists on {cidr}, not on the configured {want}; remove it \
                     (virsh net-destroy/net-undefine) or change --network-cidr"
                ));
            }
            hv.ensure_network(&spec(cidr)).map_err(hv_err)?;
            // The database is the record: add what is missing, drop what no server holds.
            for h in wanted.iter().filter(|h| !present.contains(h)) {
                hv.set_dhcp_host(&name, h, true).map_err(hv_err)?;
            }
            for h in present.iter().filter(|h| !wanted.contains(h)) {
                hv.set_dhcp_host(&name, h, false).map_err(hv_err)?;
            }
            cidr
        }
        None => {
            let candidates: Vec<Cidr> = match policy.network_cidr.or(recorded) {
                Some(c) => vec![c],
                None => candidate_subnets(daemon_id).take(24).collect(),
            };
            let mut last = String::new();
            let mut chosen = None;
            for p in candidates {
                match hv.ensure_network(&spec(p)) {
                    Ok(()) => {
                        chosen = Some(p);
                        break;
                    }
                    Err(e) => {
                        // Most likely the /24 is in use on this host: try the next one.
                        last = hv_err(e);
                        let _ = hv.remove_network(&name);
                    }
                }
            }
            chosen.ok_or(last)?
        }
    };
    let text = cidr.to_string();
    db.call_blocking(|c| db::users::meta_set(c, "network_cidr", &text))
        .map_err(|e| format!("database: {}", super::chain(&e)))?;
    let bandwidth = if simulated || !local {
        Ok(())
    } else {
        bandwidth::probe().map_err(|why| {
            tracing::warn!(%why, "this host cannot enforce NIC rate limits; servers get none");
            format!("this host's kernel cannot shape guest traffic ({why})")
        })
    };
    tracing::info!(network = %name, cidr = %text, "network ready");
    Ok(Net {
        name,
        cidr,
        bandwidth,
    })
}

/// /22s (1,021 servers each) in 10.64.0.0/10 in an order derived from the daemon's id, so that
/// daemons sharing a host rarely try the same one first.
fn candidate_subnets(daemon_id: &str) -> impl Iterator<Item = Cidr> {
    let h = daemon_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (0..u64::from(u16::MAX)).map(move |i| {
        let n = h.wrapping_add(i.wrapping_mul(0x9e37)) % (64 * 64);
        let base = std::net::Ipv4Addr::new(10, 64 + (n / 64) as u8, (n % 64) as u8 * 4, 0);
        Cidr::new(base, 22).expect("a /22 on a /22 boundary")
    })
}

impl App {
    pub fn network(&self) -> &Net {
        &self.net
    }

    /// The limits `vm` runs under, given its owner's overrides.
    pub(super) fn limits_of(
        &self,
        vm: &Vm,
        vcpus: u32,
        memory_mib: u64,
        owner: LimitOverrides,
    ) -> ResourceLimits {
        effective_limits(
            &self.settings.host,
            vcpus,
            memory_mib,
            vm.limit_overrides.or(owner),
            self.net.bandwidth.is_ok(),
            self.accel == nuage_shared::Accel::Tcg && !self.simulated,
        )
    }

    /// Fills in the limits each server runs under (one query for every owner's overrides).
    pub(super) async fn decorate(&self, vms: &mut [Vm]) -> Result<(), AppError> {
        let owners: HashMap<String, LimitOverrides> =
            self.db.call(|c| db::users::all_limits(c)).await?;
        for vm in vms {
            let owner = owners
                .get(vm.owner_id.as_str())
                .copied()
                .unwrap_or_default();
            vm.limits = self.limits_of(vm, vm.vcpus, vm.memory_mib, owner);
        }
        Ok(())
    }

    /// What this host can hold now, for admission, and its file system's size.
    pub(super) async fn host_room(&self) -> vms::HostRoom {
        self.room_and_disk().await.0
    }

    async fn room_and_disk(&self) -> (vms::HostRoom, u64) {
        let dir = self.settings.data_dir.clone();
        let (total, free) = tokio::task::spawn_blocking(move || disk_space(&dir))
            .await
            .unwrap_or((0, 0));
        let room = vms::HostRoom {
            host_id: self.daemon_id.clone(),
            limit: capacity_limit(
                &self.settings.host,
                self.physical,
                total,
                self.net.cidr.pool().count() as u64,
            ),
            disk_free_gib: free,
        };
        (room, total)
    }

    /// `GET /host`'s capacity and network parts.
    pub(super) async fn capacity_and_network(
        &self,
    ) -> Result<(HostCapacity, NetworkInfo), AppError> {
        let (room, total) = self.room_and_disk().await;
        let (host_id, net) = (self.daemon_id.clone(), self.net.name.clone());
        let (allocated, used) = self
            .db
            .call(move |c| Ok((vms::allocated(c, &host_id)?, vms::addresses(c, &net)?.len())))
            .await?;
        let p = &self.settings.host;
        let capacity = HostCapacity {
            cpu_overcommit: p.cpu_overcommit,
            memory_overcommit: p.memory_overcommit,
            disk_overcommit: p.disk_overcommit,
            reserved_memory_mib: p.reserved_memory_mib,
            disk_total_gib: total,
            disk_free_gib: room.disk_free_gib,
            limit: room.limit,
            allocated,
        };
        let network = NetworkInfo {
            name: self.net.name.clone(),
            mode: p.network_mode.as_str().into(),
            cidr: self.net.cidr.to_string(),
            addresses_total: u32::try_from(self.net.cidr.pool().count()).unwrap_or(u32::MAX),
            addresses_used: u32::try_from(used).unwrap_or(u32::MAX),
            bandwidth_limits: self.net.bandwidth.is_ok(),
            bandwidth_note: self.net.bandwidth.clone().err(),
        };
        Ok((capacity, network))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cli, Settings};
    use clap::Parser;

    fn policy(args: &[&str]) -> HostPolicy {
        let mut all = vec!["nuaged"];
        all.extend_from_slice(args);
        Settings::resolve(Cli::try_parse_from(all).unwrap())
            .unwrap()
            .host
    }

    #[test]
    fn limits_follow_size_policy_and_overrides_in_order() {
        let p = policy(&["--disk-iops", "500", "--net-kib-per-sec", "1000"]);
        let l = effective_limits(&p, 2, 1024, LimitOverrides::default(), true, false);
        assert_eq!(l.cpu_shares, 2048);
        assert_eq!(
            l.memory_hard_limit_mib,
            1024 + 256 + 128,
            "memory + overhead + an eighth"
        );
        assert_eq!((l.disk_iops, l.net_inbound_kib_per_sec), (500, 1000));
        let vm_own = LimitOverrides {
            disk_iops: Some(0),
            ..Default::default()
        };
        let owner = LimitOverrides {
            disk_iops: Some(100),
            cpu_cap_percent: Some(50),
            ..Default::default()
        };
        let l = effective_limits(&p, 1, 512, vm_own.or(owner), true, false);
        assert_eq!(
            l.disk_iops, 0,
            "the server's own override wins, 0 is unlimited"
        );
        assert_eq!(
            l.cpu_cap_percent, 50,
            "the owner's applies where the server has none"
        );
        let l = effective_limits(&p, 1, 512, owner, false, true);
        assert_eq!(
            (l.net_inbound_kib_per_sec, l.net_outbound_kib_per_sec),
            (0, 0),
            "a host that cannot shape traffic shows no NIC limit"
        );
        assert_eq!(
            l.memory_hard_limit_mib,
            512 + 256 + 64 + 128,
            "under TCG the translation cache is allowed for too"
        );
        // The guest that died at guest + 256 MiB: QEMU's RSS reached 1.0 GiB.
        let debian = memory_hard_limit_mib(&HostPolicy::default(), 768, true);
        assert!(debian >= 1200, "{debian}");
    }

    #[test]
    fn capacity_is_physical_times_ratio_less_the_reserve() {
        let p = policy(&["--cpu-overcommit", "4", "--reserved-memory-mib", "1024"]);
        let phys = Physical {
            cpus: 16,
            memory_mib: 8192,
        };
        let c = capacity_limit(&p, phys, 100, 253);
        assert_eq!(
            (c.vcpus, c.memory_mib, c.disk_gib, c.vms),
            (64, 7168, 100, 253)
        );
        let p = policy(&["--memory-overcommit", "1.5", "--disk-overcommit", "0.5"]);
        let c = capacity_limit(&p, phys, 100, 253);
        assert_eq!((c.memory_mib, c.disk_gib), ((8192 - 512) * 3 / 2, 50));
    }

    #[test]
    fn candidate_networks_are_private_22s_and_differ_per_daemon() {
        let a: Vec<_> = candidate_subnets("aaaa-1").take(24).collect();
        let b: Vec<_> = candidate_subnets("bbbb-2").take(24).collect();
        assert!(a.iter().all(|c| {
            let t = c.to_string();
            t.starts_with("10.")
                && t.ends_with("/22")
                && (64..128).contains(&t[3..].split('.').next().unwrap().parse::<u32>().unwrap())
        }));
        assert_ne!(a[0], b[0]);
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), a.len());
    }
}
