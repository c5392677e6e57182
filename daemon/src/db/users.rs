//! Users, login sessions and the daemon's own key/value facts.

use nuage_shared::Role;
use rusqlite::{params, Connection, OptionalExtension};

use super::DbError;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
}

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

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        role: parse_role(&r.get::<_, String>(3)?),
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

pub fn user_by_username(c: &Connection, username: &str) -> Result<Option<UserRow>, DbError> {
    Ok(c.query_row(
        "SELECT id, username, password_hash, role FROM users WHERE username = ?1",
        [username],
        user_from_row,
    )
    .optional()?)
}

pub fn insert_session(
    c: &Connection,
    jti: &str,
    user_id: &str,
    created_at: &str,
    expires_at: &str,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO sessions (jti, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![jti, user_id, created_at, expires_at],
    )?;
    Ok(())
}

/// The user behind a session that is neither revoked nor deleted (expiry is the token's own claim).
pub fn session_user(c: &Connection, jti: &str) -> Result<Option<UserRow>, DbError> {
    Ok(c.query_row(
        "SELECT u.id, u.username, u.password_hash, u.role FROM sessions s
         JOIN users u ON u.id = s.user_id WHERE s.jti = ?1 AND s.revoked = 0",
        [jti],
        user_from_row,
    )
    .optional()?)
}

pub fn revoke_session(c: &Connection, jti: &str) -> Result<(), DbError> {
    c.execute("UPDATE sessions SET revoked = 1 WHERE jti = ?1", [jti])?;
    Ok(())
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
