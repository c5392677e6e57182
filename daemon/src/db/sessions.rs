//! Login sessions: one row per issued login token (by its JWT id), so that logout, "sign out
//! everywhere" and user deletion revoke at once; with how it signed in, from where, when it was
//! last seen and when its holder last proved who they are (re-authentication).

use rusqlite::{params, Connection, OptionalExtension};

use super::users::{user_from_row, UserRow, USER_COLUMNS};
use super::DbError;

/// A session about to be issued.
pub struct NewSession<'a> {
    pub jti: &'a str,
    pub user_id: &'a str,
    /// `password` or `passkey`.
    pub kind: &'a str,
    pub client: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub created_at: &'a str,
    pub expires_at: &'a str,
    /// Unix seconds: signing in is a verification.
    pub verified_at: i64,
}

/// A session as its owner sees it listed.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub jti: String,
    pub kind: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_seen_at: Option<String>,
    pub client: Option<String>,
    pub user_agent: Option<String>,
}

/// What a request learns of its session besides its user.
#[derive(Debug, Clone)]
pub struct SessionFacts {
    pub verified_at: i64,
    pub last_seen_at: Option<String>,
}

pub fn insert(c: &Connection, s: &NewSession<'_>) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO sessions (jti, user_id, kind, client, user_agent, created_at, expires_at,
                               last_seen_at, verified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?8)",
        params![
            s.jti,
            s.user_id,
            s.kind,
            s.client,
            s.user_agent,
            s.created_at,
            s.expires_at,
            s.verified_at
        ],
    )?;
    Ok(())
}

/// The user behind a session that is neither revoked nor deleted (expiry is the token's own
/// claim), and the session's facts.
pub fn user_of(c: &Connection, jti: &str) -> Result<Option<(UserRow, SessionFacts)>, DbError> {
    Ok(c.query_row(
        &format!(
            "SELECT {USER_COLUMNS}, s.verified_at, s.last_seen_at FROM sessions s
             JOIN users u ON u.id = s.user_id WHERE s.jti = ?1 AND s.revoked = 0"
        ),
        [jti],
        |r| {
            Ok((
                user_from_row(r)?,
                SessionFacts {
                    verified_at: r.get(5)?,
                    last_seen_at: r.get(6)?,
                },
            ))
        },
    )
    .optional()?)
}

/// A user's live sessions, newest first.
pub fn list(c: &Connection, user_id: &str, now: &str) -> Result<Vec<SessionRow>, DbError> {
    let mut stmt = c.prepare(
        "SELECT jti, kind, created_at, expires_at, last_seen_at, client, user_agent
         FROM sessions WHERE user_id = ?1 AND revoked = 0 AND expires_at > ?2
         ORDER BY created_at DESC, jti",
    )?;
    let rows = stmt
        .query_map(params![user_id, now], |r| {
            Ok(SessionRow {
                jti: r.get(0)?,
                kind: r.get(1)?,
                created_at: r.get(2)?,
                expires_at: r.get(3)?,
                last_seen_at: r.get(4)?,
                client: r.get(5)?,
                user_agent: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn touch(c: &Connection, jti: &str, at: &str, client: Option<&str>) -> Result<(), DbError> {
    c.execute(
        "UPDATE sessions SET last_seen_at = ?2, client = COALESCE(?3, client) WHERE jti = ?1",
        params![jti, at, client],
    )?;
    Ok(())
}

/// The holder proved who they are again (password or second factor) at `at` (Unix seconds).
pub fn mark_verified(c: &Connection, jti: &str, at: i64) -> Result<(), DbError> {
    c.execute(
        "UPDATE sessions SET verified_at = ?2 WHERE jti = ?1",
        params![jti, at],
    )?;
    Ok(())
}

/// Revokes one session of `user_id`; false when they have no such live session.
pub fn revoke_of(c: &Connection, user_id: &str, jti: &str) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE sessions SET revoked = 1 WHERE jti = ?1 AND user_id = ?2 AND revoked = 0",
        params![jti, user_id],
    )? > 0)
}

/// Revokes every live session of `user_id` but `keep`; the ones it ended.
pub fn revoke_others(c: &Connection, user_id: &str, keep: &str) -> Result<Vec<String>, DbError> {
    let mut stmt = c.prepare(
        "UPDATE sessions SET revoked = 1 WHERE user_id = ?1 AND jti != ?2 AND revoked = 0
         RETURNING jti",
    )?;
    let ended = stmt
        .query_map(params![user_id, keep], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ended)
}

/// Forgets sessions that are revoked or expired: without their row, their tokens fail the same.
pub fn prune(c: &Connection, now: &str) -> Result<usize, DbError> {
    Ok(c.execute(
        "DELETE FROM sessions WHERE revoked = 1 OR expires_at < ?1",
        [now],
    )?)
}

pub fn revoke(c: &Connection, jti: &str) -> Result<(), DbError> {
    c.execute("UPDATE sessions SET revoked = 1 WHERE jti = ?1", [jti])?;
    Ok(())
}
