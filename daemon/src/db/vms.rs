//! Virtual servers, and quota admission: the one function that decides whether an allocation
//! fits, called inside the same `BEGIN IMMEDIATE` transaction that records it.

use nuage_shared::{PendingResize, Quota, Vm, VmState};
use rusqlite::{params, Connection, OptionalExtension};

use super::{users, DbError};

const COLUMNS: &str = "id, name, owner_id, host_id, state, vcpus, memory_mib, disk_gib, image_id, \
                       hostname, created_at, pending_vcpus, pending_memory";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Vm> {
    let pending_vcpus: Option<u32> = r.get(11)?;
    let pending_memory: Option<i64> = r.get(12)?;
    Ok(Vm {
        id: r.get(0)?,
        name: r.get(1)?,
        owner_id: r.get(2)?,
        host_id: r.get(3)?,
        state: VmState::parse(&r.get::<_, String>(4)?).unwrap_or(VmState::Error),
        vcpus: r.get(5)?,
        memory_mib: r.get::<_, i64>(6)? as u64,
        disk_gib: r.get::<_, i64>(7)? as u64,
        image_id: r.get(8)?,
        hostname: r.get(9)?,
        created_at: r.get(10)?,
        ip_addresses: Vec::new(),
        pending: match (pending_vcpus, pending_memory) {
            (Some(v), Some(m)) => Some(PendingResize {
                vcpus: v,
                memory_mib: m as u64,
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

/// Quota admission: whether `owner` may add `more` to what they use. Call it inside the
/// transaction (begun IMMEDIATE) that records the allocation, so that concurrent requests are
/// decided one after the other against up-to-date usage.
pub fn admit(c: &Connection, owner: &str, more: &Quota) -> Result<Option<QuotaShortfall>, DbError> {
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
            vm.id,
            vm.name,
            vm.owner_id,
            vm.host_id,
            vm.state.as_str(),
            vm.vcpus,
            vm.memory_mib as i64,
            vm.disk_gib as i64,
            vm.image_id,
            vm.hostname,
            vm.created_at
        ],
    )?;
    Ok(())
}

pub fn get(c: &Connection, id: &str) -> Result<Option<Vm>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM vms WHERE id = ?1"),
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
                "SELECT {COLUMNS} FROM vms WHERE owner_id = ?1 ORDER BY name, id"
            ))?;
            let rows = stmt
                .query_map([o], from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        }
        None => {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM vms ORDER BY name, id"))?;
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
    let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM vms WHERE host_id = ?1"))?;
    let rows = stmt
        .query_map([host_id], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn set_state(c: &Connection, id: &str, state: VmState) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE vms SET state = ?2 WHERE id = ?1",
        params![id, state.as_str()],
    )? > 0)
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
