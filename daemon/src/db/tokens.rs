//! Personal API tokens.

use nuage_shared::ApiToken;
use rusqlite::{params, Connection, OptionalExtension};

use super::users::UserRow;
use super::DbError;

pub fn insert(
    c: &Connection,
    user_id: &str,
    t: &ApiToken,
    secret_hash: &str,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            t.id.as_str(),
            user_id,
            t.name,
            secret_hash,
            t.created_at,
            t.expires_at
        ],
    )?;
    Ok(())
}

pub fn list(c: &Connection, user_id: &str) -> Result<Vec<ApiToken>, DbError> {
    let mut stmt = c.prepare(
        "SELECT id, name, created_at, expires_at, last_used_at FROM api_tokens
         WHERE user_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt
        .query_map([user_id], |r| {
            Ok(ApiToken {
                id: super::id(r, 0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                expires_at: r.get(3)?,
                last_used_at: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The token's hash, expiry and user, if the token exists.
pub fn lookup(
    c: &Connection,
    id: &str,
) -> Result<Option<(String, Option<String>, UserRow)>, DbError> {
    Ok(c.query_row(
        "SELECT t.secret_hash, t.expires_at, u.id, u.username, u.password_hash, u.role
         FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?1",
        [id],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                UserRow {
                    id: r.get(2)?,
                    username: r.get(3)?,
                    password_hash: r.get(4)?,
                    role: if r.get::<_, String>(5)? == "admin" {
                        nuage_shared::Role::Admin
                    } else {
                        nuage_shared::Role::User
                    },
                },
            ))
        },
    )
    .optional()?)
}

pub fn touch(c: &Connection, id: &str, at: &str) -> Result<(), DbError> {
    c.execute(
        "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
        params![id, at],
    )?;
    Ok(())
}

/// Deletes a token of `user_id`; false when there is none of that id for that user.
pub fn delete(c: &Connection, user_id: &str, id: &str) -> Result<bool, DbError> {
    Ok(c.execute(
        "DELETE FROM api_tokens WHERE id = ?1 AND user_id = ?2",
        params![id, user_id],
    )? > 0)
}

/// Deletes every token of `user_id` but `keep` (the one in use, when it is theirs).
pub fn delete_all_of(c: &Connection, user_id: &str, keep: Option<&str>) -> Result<usize, DbError> {
    Ok(c.execute(
        "DELETE FROM api_tokens WHERE user_id = ?1 AND id IS NOT ?2",
        params![user_id, keep],
    )?)
}

/// Deletes the tokens that expired before `now`: they can never work again.
pub fn prune_expired(c: &Connection, now: &str) -> Result<usize, DbError> {
    Ok(c.execute(
        "DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < ?1",
        [now],
    )?)
}
