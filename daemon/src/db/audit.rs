//! The audit log: who did what to which resource, when, from where, with what outcome.

use nuage_shared::AuditEntry;
use rusqlite::{params, Connection};

use super::DbError;

pub fn insert(c: &Connection, e: &AuditEntry) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO audit (at, user_id, username, action, resource_type, resource_id, vm_id, client,
                            outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            e.at,
            e.user_id.as_deref(),
            e.username,
            e.action,
            e.resource_type,
            e.resource_id,
            e.vm_id.as_deref(),
            e.client,
            e.outcome,
            e.status.map(|s| s.to_string())
        ],
    )?;
    Ok(())
}

/// Filters of `GET /audit`; each `None` matches everything.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// A user id or a username.
    pub user: Option<String>,
    pub vm: Option<String>,
    /// RFC 3339 (UTC): entries at or after.
    pub since: Option<String>,
    pub limit: u32,
}

/// Newest first.
pub fn list(c: &Connection, f: &AuditFilter) -> Result<Vec<AuditEntry>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at, user_id, username, action, resource_type, resource_id, vm_id, client, outcome,
                detail
         FROM audit
         WHERE (?1 IS NULL OR user_id = ?1 OR username = ?1)
           AND (?2 IS NULL OR vm_id = ?2)
           AND (?3 IS NULL OR at >= ?3)
         ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt
        .query_map(params![f.user, f.vm, f.since, f.limit], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                user_id: super::opt_id(r, 2)?,
                username: r.get(3)?,
                action: r.get(4)?,
                resource_type: r.get(5)?,
                resource_id: r.get(6)?,
                vm_id: super::opt_id(r, 7)?,
                client: r.get(8)?,
                outcome: r.get(9)?,
                status: r.get::<_, Option<String>>(10)?.and_then(|s| s.parse().ok()),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Forgets entries older than `before` (RFC 3339) and all but the newest `keep`.
pub fn prune(c: &Connection, before: &str, keep: u64) -> Result<usize, DbError> {
    let old = c.execute("DELETE FROM audit WHERE at < ?1", [before])?;
    let over = c.execute(
        "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        [i64::try_from(keep).unwrap_or(i64::MAX)],
    )?;
    Ok(old + over)
}

pub fn count(c: &Connection) -> Result<u64, DbError> {
    Ok(c.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get::<_, u64>(0))?)
}
