//! Virtual servers, and quota admission: the one function that decides whether an allocation
//! fits, called inside the same `BEGIN IMMEDIATE` transaction that records it.

use nuage_shared::{Allocation, LimitOverrides, PendingResize, Quota, Vm, VmState};
use rusqlite::{params, Connection, OptionalExtension};

use super::refusal::{immediate, naming, refuse};
use super::{users, DbError, Outcome, Refusal};
use crate::cidr::Cidr;

/// A server's row with its address: `SELECT {COLUMNS} FROM {FROM} WHERE ...`.
const COLUMNS: &str = "vms.id, vms.name, vms.owner_id, vms.host_id, vms.state, vms.vcpus, \
                       vms.memory_mib, vms.disk_gib, vms.image_id, vms.hostname, vms.created_at, \
                       vms.pending_vcpus, vms.pending_memory, vms.limits, a.ip, a.mac, \
                       vms.stop_reason";
const FROM: &str = "vms LEFT JOIN addresses a ON a.vm_id = vms.id";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Vm> {
    let pending_vcpus: Option<u32> = r.get(11)?;
    let pending_memory: Option<u64> = r.get(12)?;
    Ok(Vm {
        id: super::id(r, 0)?,
        name: r.get(1)?,
        owner_id: super::id(r, 2)?,
        host_id: super::id(r, 3)?,
        state: VmState::parse(&r.get::<_, String>(4)?).unwrap_or(VmState::Error),
        vcpus: r.get(5)?,
        memory_mib: r.get::<_, u64>(6)?,
        disk_gib: r.get::<_, u64>(7)?,
        image_id: r.get::<_, Option<String>>(8)?.unwrap_or_default().into(),
        hostname: r.get(9)?,
        created_at: r.get(10)?,
        ip_addresses: r.get::<_, Option<String>>(14)?.into_iter().collect(),
        mac_address: r.get(15)?,
        limits: Default::default(),
        limit_overrides: super::parse_limits(r.get::<_, Option<String>>(13)?.as_deref()),
        stop_reason: r
            .get::<_, Option<String>>(16)?
            .as_deref()
            .and_then(nuage_shared::StopReason::parse),
        pending: match (pending_vcpus, pending_memory) {
            (Some(v), Some(m)) => Some(PendingResize {
                vcpus: v,
                memory_mib: m,
            }),
            _ => None,
        },
    })
}

/// Which resource an allocation would overrun, with the numbers, for the user's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaShortfall {
    pub resource: &'static str,
    pub requested: u64,
    pub used: u64,
    pub limit: u64,
}

impl std::fmt::Display for QuotaShortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Quota exceeded for {}: {} requested, {} of {} already in use ({} left).",
            self.resource,
            self.requested,
            self.used,
            self.limit,
            self.limit.saturating_sub(self.used)
        )
    }
}

/// What the host can hold (physical resources × overcommit ratios), and the disk space free now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoom {
    pub host_id: String,
    pub limit: Allocation,
    pub disk_free_gib: u64,
}

/// Admission: whether `owner` may add `more` to what they use, and this host can hold it. Call it
/// inside the transaction (begun IMMEDIATE) that records the allocation, so that concurrent
/// requests are decided one after the other against up-to-date usage.
pub fn admit(
    c: &Connection,
    owner: &str,
    more: &Quota,
    host: &HostRoom,
) -> Result<Option<Refusal>, DbError> {
    if let Some(short) = quota_shortfall(c, owner, more)? {
        return Ok(Some(Refusal::Quota(short)));
    }
    let used = allocated(c, &host.host_id)?;
    let lines = [
        ("vCPUs", more.vcpus as u64, used.vcpus, host.limit.vcpus, ""),
        (
            "memory",
            more.memory_mib,
            used.memory_mib,
            host.limit.memory_mib,
            " MiB",
        ),
        (
            "disk",
            more.disk_gib,
            used.disk_gib,
            host.limit.disk_gib,
            " GiB",
        ),
    ];
    for (what, requested, used, limit, unit) in lines {
        if requested > 0 && used + requested > limit {
            return Ok(Some(Refusal::Capacity(format!(
                "This host has no room for {requested}{unit} more {what}: {used}{unit} of \
                 {limit}{unit} are allocated. Ask an administrator."
            ))));
        }
    }
    if more.disk_gib > host.disk_free_gib {
        return Ok(Some(Refusal::Capacity(format!(
            "This host has only {} GiB of disk space free; {} GiB were asked.",
            host.disk_free_gib, more.disk_gib
        ))));
    }
    Ok(None)
}

/// What the servers held by `host_id` have been given (the larger of current and pending sizes).
pub fn allocated(c: &Connection, host_id: &str) -> Result<Allocation, DbError> {
    Ok(c.query_row(
        "SELECT COALESCE(SUM(MAX(vcpus, COALESCE(pending_vcpus, 0))), 0),
                COALESCE(SUM(MAX(memory_mib, COALESCE(pending_memory, 0))), 0),
                COALESCE(SUM(disk_gib), 0)
                    + (SELECT COALESCE(SUM(quota_gib), 0) FROM backups WHERE host_id = ?1),
                COUNT(*)
         FROM vms WHERE host_id = ?1",
        [host_id],
        |r| {
            Ok(Allocation {
                vcpus: r.get::<_, u64>(0)?,
                memory_mib: r.get::<_, u64>(1)?,
                disk_gib: r.get::<_, u64>(2)?,
                vms: r.get::<_, u64>(3)?,
            })
        },
    )?)
}

fn quota_shortfall(
    c: &Connection,
    owner: &str,
    more: &Quota,
) -> Result<Option<QuotaShortfall>, DbError> {
    let quota = users::quota(c, owner)?;
    let used = users::usage(c, owner)?;
    let lines = [
        ("vms", more.vms as u64, used.vms as u64, quota.vms as u64),
        (
            "vcpus",
            more.vcpus as u64,
            used.vcpus as u64,
            quota.vcpus as u64,
        ),
        (
            "memory_mib",
            more.memory_mib,
            used.memory_mib,
            quota.memory_mib,
        ),
        ("disk_gib", more.disk_gib, used.disk_gib, quota.disk_gib),
        (
            "snapshots",
            more.snapshots as u64,
            used.snapshots as u64,
            quota.snapshots as u64,
        ),
    ];
    Ok(lines
        .into_iter()
        .find(|(_, requested, used, limit)| *requested > 0 && used + requested > *limit)
        .map(|(resource, requested, used, limit)| QuotaShortfall {
            resource,
            requested,
            used,
            limit,
        }))
}

pub fn insert(c: &Connection, vm: &Vm) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO vms (id, name, owner_id, host_id, state, vcpus, memory_mib, disk_gib,
                          image_id, hostname, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            vm.id.as_str(),
            vm.name,
            vm.owner_id.as_str(),
            vm.host_id.as_str(),
            vm.state.as_str(),
            vm.vcpus,
            vm.memory_mib as i64,
            vm.disk_gib as i64,
            (!vm.image_id.is_empty()).then_some(vm.image_id.as_str()),
            vm.hostname,
            vm.created_at
        ],
    )?;
    Ok(())
}

pub fn get(c: &Connection, id: &str) -> Result<Option<Vm>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM {FROM} WHERE vms.id = ?1"),
        [id],
        from_row,
    )
    .optional()?)
}

/// Servers of one owner, or of everyone (`None`), by name.
pub fn list(c: &Connection, owner: Option<&str>) -> Result<Vec<Vm>, DbError> {
    let rows = match owner {
        Some(o) => {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM {FROM} WHERE vms.owner_id = ?1 ORDER BY vms.name, vms.id"
            ))?;
            let rows = stmt
                .query_map([o], from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        }
        None => {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM {FROM} ORDER BY vms.name, vms.id"
            ))?;
            let rows = stmt
                .query_map([], from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        }
    };
    Ok(rows)
}

/// Servers held by this host (for reconciliation with libvirt).
pub fn list_on_host(c: &Connection, host_id: &str) -> Result<Vec<Vm>, DbError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE vms.host_id = ?1"
    ))?;
    let rows = stmt
        .query_map([host_id], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Moves a server from `from` to `to` if it is still in `from` (the compare-and-set of every
/// state change). Entering `running` records that the server should run (and forgets why it
/// last stopped); entering `stopped` records `reason`, and that it should no longer run unless
/// the reason is a host restart (which the daemon undoes by starting it again).
pub fn move_state(
    c: &Connection,
    id: &str,
    from: VmState,
    to: VmState,
    reason: Option<nuage_shared::StopReason>,
) -> Result<bool, DbError> {
    let keeps_wish = reason == Some(nuage_shared::StopReason::HostRestart);
    Ok(c.execute(
        "UPDATE vms SET state = ?3,
                stop_reason = CASE WHEN ?3 = 'stopped' THEN ?4 ELSE NULL END,
                wants_running = CASE WHEN ?3 = 'running' THEN 1
                                     WHEN ?3 = 'stopped' AND NOT ?5 THEN 0
                                     ELSE wants_running END
         WHERE id = ?1 AND state = ?2",
        params![
            id,
            from.as_str(),
            to.as_str(),
            reason.map(|r| r.as_str()),
            keeps_wish
        ],
    )? > 0)
}

/// Records what a server's disk file holds on the host, GiB (see `usage`).
pub fn set_held(c: &Connection, id: &str, gib: u64) -> Result<(), DbError> {
    c.execute(
        "UPDATE vms SET held_gib = ?2 WHERE id = ?1",
        params![id, i64::try_from(gib).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}

/// Records why a server stopped (`None` once it runs again).
pub fn set_stop_reason(
    c: &Connection,
    id: &str,
    reason: Option<nuage_shared::StopReason>,
) -> Result<(), DbError> {
    c.execute(
        "UPDATE vms SET stop_reason = ?2 WHERE id = ?1",
        params![id, reason.map(|r| r.as_str())],
    )?;
    Ok(())
}

/// Records whether the server should be running: set when its owner starts it, cleared when
/// they stop it or it stops by itself; what the daemon restores after a host restart.
pub fn set_wants_running(c: &Connection, id: &str, wants: bool) -> Result<(), DbError> {
    c.execute(
        "UPDATE vms SET wants_running = ?2 WHERE id = ?1",
        params![id, wants],
    )?;
    Ok(())
}

/// The servers of `host` that should be running but are `stopped`.
pub fn wanted_but_stopped(c: &Connection, host: &str) -> Result<Vec<String>, DbError> {
    let mut stmt = c.prepare(
        "SELECT id FROM vms WHERE host_id = ?1 AND wants_running = 1 AND state = 'stopped'
         ORDER BY created_at",
    )?;
    let ids = stmt
        .query_map([host], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

pub fn set_name(c: &Connection, id: &str, name: &str) -> Result<(), DbError> {
    c.execute("UPDATE vms SET name = ?2 WHERE id = ?1", params![id, name])?;
    Ok(())
}

pub fn set_size(
    c: &Connection,
    id: &str,
    vcpus: u32,
    memory_mib: u64,
    disk_gib: u64,
) -> Result<(), DbError> {
    c.execute(
        "UPDATE vms SET vcpus = ?2, memory_mib = ?3, disk_gib = ?4 WHERE id = ?1",
        params![id, vcpus, memory_mib as i64, disk_gib as i64],
    )?;
    Ok(())
}

pub fn set_pending(
    c: &Connection,
    id: &str,
    pending: Option<PendingResize>,
) -> Result<(), DbError> {
    c.execute(
        "UPDATE vms SET pending_vcpus = ?2, pending_memory = ?3 WHERE id = ?1",
        params![
            id,
            pending.map(|p| p.vcpus),
            pending.map(|p| p.memory_mib as i64)
        ],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, id: &str) -> Result<(), DbError> {
    c.execute("DELETE FROM vms WHERE id = ?1", [id])?;
    Ok(())
}

pub fn set_limits(c: &Connection, id: &str, limits: &LimitOverrides) -> Result<(), DbError> {
    c.execute(
        "UPDATE vms SET limits = ?2 WHERE id = ?1",
        params![id, super::limits_json(limits)],
    )?;
    Ok(())
}

/// Admission and the records that carry it, in one IMMEDIATE transaction: `record` runs only
/// when `owner`'s quota and the host have room for `more`, and nothing is kept unless it
/// succeeds.
pub(super) fn admitted<T>(
    c: &mut Connection,
    owner: &str,
    more: &Quota,
    room: &HostRoom,
    record: impl FnOnce(&Connection) -> Outcome<T>,
) -> Outcome<T> {
    immediate(c, |tx| {
        if let Some(refusal) = admit(tx, owner, more, room)? {
            return refuse(refusal);
        }
        record(tx)
    })
}

/// A new server's record (`creating`) with an address of `network`: the reservation of its
/// quota, its room on the host and its address, admitted for `more` in one transaction.
/// Returns its address and MAC.
pub fn reserve(
    c: &mut Connection,
    vm: &Vm,
    more: &Quota,
    room: &HostRoom,
    network: &str,
    cidr: Cidr,
) -> Outcome<(String, String)> {
    admitted(c, &vm.owner_id, more, room, |tx| {
        if let Err(r) = naming(insert(tx, vm))? {
            return refuse(r);
        }
        match allocate_address(tx, network, cidr, &vm.id)? {
            Some(address) => Ok(Ok(address)),
            None => refuse(Refusal::NoAddress),
        }
    })
}

/// A rename and resize of `vm` (the record as it should become), admitted for the growth
/// `more`, only while the server is still `expected`.
pub fn resize(
    c: &mut Connection,
    vm: &Vm,
    expected: VmState,
    more: &Quota,
    room: &HostRoom,
) -> Outcome<()> {
    immediate(c, |tx| {
        let found = get(tx, &vm.id)?.map(|v| v.state);
        if found != Some(expected) {
            return refuse(Refusal::StateChanged { expected, found });
        }
        if let Some(refusal) = admit(tx, &vm.owner_id, more, room)? {
            return refuse(refusal);
        }
        if let Err(r) = naming(set_name(tx, &vm.id, &vm.name))? {
            return refuse(r);
        }
        set_size(tx, &vm.id, vm.vcpus, vm.memory_mib, vm.disk_gib)?;
        set_pending(tx, &vm.id, vm.pending)?;
        Ok(Ok(()))
    })
}

/// Makes a pending resize the current size.
pub fn apply_pending(c: &mut Connection, id: &str) -> Result<(), DbError> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if let Some(vm) = get(&tx, id)? {
        if let Some(p) = vm.pending {
            set_size(&tx, id, p.vcpus, p.memory_mib, vm.disk_gib)?;
            set_pending(&tx, id, None)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Gives an existing server without one an address of `network` (see [`allocate_address`]).
pub fn assign_address(
    c: &mut Connection,
    network: &str,
    cidr: Cidr,
    vm_id: &str,
) -> Result<Option<(String, String)>, DbError> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let got = allocate_address(&tx, network, cidr, vm_id)?;
    tx.commit()?;
    Ok(got)
}

/// Adds each server's bytes of `month` in one transaction.
pub fn add_traffic_all(
    c: &mut Connection,
    month: &str,
    traffic: &[(nuage_shared::VmId, u64, u64)],
) -> Result<(), DbError> {
    let tx = c.transaction()?;
    for (id, rx, txb) in traffic {
        add_traffic(&tx, id, month, *rx, *txb)?;
    }
    tx.commit()?;
    Ok(())
}

/// Gives server `vm_id` the lowest free address of `network`'s pool (and the MAC that goes with
/// it); `None` when the pool is used up. Inside the create's transaction, so two creates never
/// get the same address.
pub fn allocate_address(
    c: &Connection,
    network: &str,
    cidr: Cidr,
    vm_id: &str,
) -> Result<Option<(String, String)>, DbError> {
    let mut stmt = c.prepare_cached("SELECT ip FROM addresses WHERE network = ?1")?;
    let used: std::collections::HashSet<String> = stmt
        .query_map([network], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let Some(host) = cidr.pool().find(|h| !used.contains(&cidr.host(*h))) else {
        return Ok(None);
    };
    let (ip, mac) = (cidr.host(host), cidr.mac(host));
    c.execute(
        "INSERT INTO addresses (network, ip, mac, vm_id) VALUES (?1, ?2, ?3, ?4)",
        params![network, ip, mac, vm_id],
    )?;
    Ok(Some((ip, mac)))
}

/// Every address of `network` with its MAC: what the network's DHCP must hand out.
pub fn addresses(c: &Connection, network: &str) -> Result<Vec<(String, String)>, DbError> {
    let mut stmt = c.prepare_cached("SELECT ip, mac FROM addresses WHERE network = ?1")?;
    let rows = stmt
        .query_map([network], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Adds to a server's network bytes of `month` (`YYYY-MM`).
pub fn add_traffic(
    c: &Connection,
    vm_id: &str,
    month: &str,
    rx: u64,
    tx: u64,
) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO traffic (vm_id, month, rx_bytes, tx_bytes)
         SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM vms WHERE id = ?1)
         ON CONFLICT (vm_id, month) DO UPDATE
         SET rx_bytes = rx_bytes + excluded.rx_bytes, tx_bytes = tx_bytes + excluded.tx_bytes",
    )?
    .execute(params![vm_id, month, rx as i64, tx as i64])?;
    Ok(())
}

pub fn traffic(c: &Connection, vm_id: &str, month: &str) -> Result<(u64, u64), DbError> {
    Ok(c.query_row(
        "SELECT rx_bytes, tx_bytes FROM traffic WHERE vm_id = ?1 AND month = ?2",
        params![vm_id, month],
        |r| Ok((r.get::<_, u64>(0)?, r.get::<_, u64>(1)?)),
    )
    .optional()?
    .unwrap_or((0, 0)))
}
