//! Users, login sessions and the daemon's own key/value facts.

use nuage_shared::{LimitOverrides, Quota, Role, UserDetail};
use rusqlite::{params, Connection, OptionalExtension};

use super::refusal::{immediate, refuse};
use super::{DbError, Outcome, Refusal};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    /// An active second factor (TOTP, or a passkey); what `--require-2fa` asks for.
    pub second_factor: bool,
}

/// The columns [`user_from_row`] reads, for a query on `users` named `u`.
pub(super) const USER_COLUMNS: &str = "u.id, u.username, u.password_hash, u.role,
     (u.totp_secret IS NOT NULL OR EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id))";

fn role_str(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::User => "user",
    }
}

fn parse_role(s: &str) -> Role {
    // The CHECK constraint admits only these two.
    if s == "admin" {
        Role::Admin
    } else {
        Role::User
    }
}

/// A user from the first five columns of `r` ([`USER_COLUMNS`]).
pub(super) fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        role: parse_role(&r.get::<_, String>(3)?),
        second_factor: r.get(4)?,
    })
}

pub fn count_users(c: &Connection) -> Result<i64, DbError> {
    Ok(c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

pub fn insert_user(c: &Connection, user: &UserRow, created_at: &str) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO users (id, username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![user.id, user.username, user.password_hash, role_str(user.role), created_at],
    )?;
    Ok(())
}

/// Creates a user and their quota together.
pub fn insert_user_with_quota(
    c: &mut Connection,
    user: &UserRow,
    quota: &Quota,
    created_at: &str,
) -> Result<(), DbError> {
    let tx = c.transaction()?;
    insert_user(&tx, user, created_at)?;
    set_quota(&tx, &user.id, quota)?;
    tx.commit()?;
    Ok(())
}

pub fn set_quota(c: &Connection, user_id: &str, q: &Quota) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO quotas (user_id, vcpus, memory_mib, disk_gib, vms, snapshots)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(user_id) DO UPDATE SET vcpus = excluded.vcpus,
            memory_mib = excluded.memory_mib, disk_gib = excluded.disk_gib,
            vms = excluded.vms, snapshots = excluded.snapshots",
        params![
            user_id,
            q.vcpus,
            q.memory_mib as i64,
            q.disk_gib as i64,
            q.vms,
            q.snapshots
        ],
    )?;
    Ok(())
}

/// A user's quota ([`Quota::DEFAULT`] if none was ever set).
pub fn quota(c: &Connection, user_id: &str) -> Result<Quota, DbError> {
    Ok(c.query_row(
        "SELECT vcpus, memory_mib, disk_gib, vms, snapshots FROM quotas WHERE user_id = ?1",
        [user_id],
        |r| {
            Ok(Quota {
                vcpus: r.get(0)?,
                memory_mib: r.get::<_, u64>(1)?,
                disk_gib: r.get::<_, u64>(2)?,
                vms: r.get(3)?,
                snapshots: r.get(4)?,
            })
        },
    )
    .optional()?
    .unwrap_or(Quota::DEFAULT))
}

/// What a user's servers and snapshots take up, counted from the records themselves.
pub fn usage(c: &Connection, user_id: &str) -> Result<Quota, DbError> {
    Ok(c.query_row(
        "SELECT COALESCE(SUM(MAX(vcpus, COALESCE(pending_vcpus, 0))), 0),
                COALESCE(SUM(MAX(memory_mib, COALESCE(pending_memory, 0))), 0),
                COALESCE(SUM(MAX(disk_gib, held_gib)), 0)
                    + (SELECT COALESCE(SUM(quota_gib), 0) FROM backups WHERE owner_id = ?1)
                    + (SELECT COALESCE(SUM(quota_gib), 0) FROM jobs
                       WHERE owner_id = ?1 AND state = 'running'),
                COUNT(*),
                (SELECT COUNT(*) FROM snapshots s JOIN vms v ON v.id = s.vm_id
                 WHERE v.owner_id = ?1)
         FROM vms WHERE owner_id = ?1",
        [user_id],
        |r| {
            Ok(Quota {
                vcpus: r.get::<_, u32>(0)?,
                memory_mib: r.get::<_, u64>(1)?,
                disk_gib: r.get::<_, u64>(2)?,
                vms: r.get::<_, u32>(3)?,
                snapshots: r.get::<_, u32>(4)?,
            })
        },
    )?)
}

pub fn user_by_id(c: &Connection, id: &str) -> Result<Option<UserRow>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"),
        [id],
        user_from_row,
    )
    .optional()?)
}

/// A user with quota and usage, as administrators see them.
pub fn user_detail(c: &Connection, id: &str) -> Result<Option<UserDetail>, DbError> {
    let row = c
        .query_row(
            "SELECT u.id, u.username, u.role, u.created_at,
                (u.totp_secret IS NOT NULL OR EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id))
             FROM users u WHERE u.id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, bool>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((id, username, role, created_at, totp)) = row else {
        return Ok(None);
    };
    Ok(Some(UserDetail {
        totp,
        limits: limits(c, &id)?,
        quota: quota(c, &id)?,
        usage: usage(c, &id)?,
        role: parse_role(&role),
        id: id.into(),
        username,
        created_at,
    }))
}

pub fn list_user_ids(c: &Connection) -> Result<Vec<String>, DbError> {
    let mut stmt = c.prepare("SELECT id FROM users ORDER BY username")?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

pub fn count_admins(c: &Connection) -> Result<i64, DbError> {
    Ok(
        c.query_row("SELECT COUNT(*) FROM users WHERE role = 'admin'", [], |r| {
            r.get(0)
        })?,
    )
}

pub fn set_password_hash(c: &Connection, id: &str, hash: &str) -> Result<(), DbError> {
    c.execute(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        params![id, hash],
    )?;
    Ok(())
}

pub fn set_role(c: &Connection, id: &str, role: Role) -> Result<(), DbError> {
    c.execute(
        "UPDATE users SET role = ?2 WHERE id = ?1",
        params![id, role_str(role)],
    )?;
    Ok(())
}

/// Revokes every session of a user (after a password change), except `keep`.
pub fn revoke_user_sessions(
    c: &Connection,
    user_id: &str,
    keep: Option<&str>,
) -> Result<(), DbError> {
    c.execute(
        "UPDATE sessions SET revoked = 1 WHERE user_id = ?1 AND jti IS NOT ?2",
        params![user_id, keep],
    )?;
    Ok(())
}

/// Ends every credential of a user but the caller's own (`keep`: its session, `token:<id>` for
/// an API token): sessions revoked, API tokens deleted.
pub fn end_credentials(c: &Connection, user_id: &str, keep: &str) -> Result<(), DbError> {
    revoke_user_sessions(c, user_id, Some(keep))?;
    super::tokens::delete_all_of(c, user_id, keep.strip_prefix("token:"))?;
    Ok(())
}

pub fn count_vms_of(c: &Connection, user_id: &str) -> Result<i64, DbError> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM vms WHERE owner_id = ?1",
        [user_id],
        |r| r.get(0),
    )?)
}

/// Deletes a user; their quota and sessions go with them (so their tokens stop at once).
pub fn delete_user(c: &Connection, id: &str) -> Result<bool, DbError> {
    Ok(c.execute("DELETE FROM users WHERE id = ?1", [id])? > 0)
}

pub fn user_by_username(c: &Connection, username: &str) -> Result<Option<UserRow>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = ?1"),
        [username],
        user_from_row,
    )
    .optional()?)
}

pub fn meta_get(c: &Connection, key: &str) -> Result<Option<String>, DbError> {
    Ok(
        c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?,
    )
}

pub fn meta_set(c: &Connection, key: &str, value: &str) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// The limits an admin set on a user's servers.
pub fn limits(c: &Connection, id: &str) -> Result<LimitOverrides, DbError> {
    let text: Option<String> = c
        .query_row("SELECT limits FROM users WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(super::parse_limits(text.as_deref()))
}

/// Every user's limits that differ from none.
pub fn all_limits(
    c: &Connection,
) -> Result<std::collections::HashMap<String, LimitOverrides>, DbError> {
    let mut stmt = c.prepare_cached("SELECT id, limits FROM users WHERE limits IS NOT NULL")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(|(id, l)| (id, super::parse_limits(Some(&l))))
        .collect())
}

pub fn set_limits(c: &Connection, id: &str, limits: &LimitOverrides) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE users SET limits = ?2 WHERE id = ?1",
        params![id, super::limits_json(limits)],
    )? > 0)
}

/// Refused when `target` is the last administrator.
fn last_admin(c: &Connection, target: &UserRow) -> Result<Option<Refusal>, DbError> {
    Ok((target.role == Role::Admin && count_admins(c)? <= 1).then_some(Refusal::LastAdmin))
}

/// What an admin changes of a user at once: a new password hash (which ends their credentials
/// but the session `keep`), a role, a quota.
pub struct UserChange {
    pub password_hash: Option<String>,
    pub role: Option<Role>,
    pub quota: Option<Quota>,
}

/// Applies `change` to user `id` in one transaction; the last administrator keeps their role.
pub fn update_user(c: &mut Connection, id: &str, keep: &str, change: &UserChange) -> Outcome<()> {
    immediate(c, |tx| {
        let Some(target) = user_by_id(tx, id)? else {
            return refuse(Refusal::NotFound);
        };
        if change.role == Some(Role::User) {
            if let Some(r) = last_admin(tx, &target)? {
                return refuse(r);
            }
        }
        if let Some(h) = &change.password_hash {
            set_password_hash(tx, id, h)?;
            end_credentials(tx, id, keep)?;
        }
        if let Some(r) = change.role {
            set_role(tx, id, r)?;
        }
        if let Some(q) = &change.quota {
            set_quota(tx, id, q)?;
        }
        Ok(Ok(()))
    })
}

/// Ends every session and token of user `id` but the session `keep`.
pub fn sign_out_everywhere(c: &mut Connection, id: &str, keep: &str) -> Outcome<()> {
    immediate(c, |tx| {
        if user_by_id(tx, id)?.is_none() {
            return refuse(Refusal::NotFound);
        }
        end_credentials(tx, id, keep)?;
        Ok(Ok(()))
    })
}

/// Deletes user `id` unless they are the last administrator or still own servers or backups.
/// Returns their username.
pub fn delete_unless_owning(c: &mut Connection, id: &str) -> Outcome<String> {
    immediate(c, |tx| {
        let Some(target) = user_by_id(tx, id)? else {
            return refuse(Refusal::NotFound);
        };
        if let Some(r) = last_admin(tx, &target)? {
            return refuse(r);
        }
        let servers = usize::try_from(count_vms_of(tx, id)?).unwrap_or(usize::MAX);
        if servers > 0 {
            return refuse(Refusal::InUse {
                count: servers,
                of: "server(s)",
            });
        }
        let backups = super::backups::backups(tx, Some(id), None)?.len();
        if backups > 0 {
            return refuse(Refusal::InUse {
                count: backups,
                of: "backup(s)",
            });
        }
        delete_user(tx, id)?;
        Ok(Ok(target.username))
    })
}
