//! Personal API tokens.

use nuage_shared::{ApiToken, TokenScope};
use rusqlite::{params, Connection, OptionalExtension};

use super::users::{user_from_row, UserRow, USER_COLUMNS};
use super::DbError;

/// A token as authentication reads it.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub secret_hash: String,
    pub expires_at: Option<String>,
    pub scope: TokenScope,
    pub allowed_cidrs: Vec<String>,
    pub user: UserRow,
}

fn parse_scope(s: &str) -> TokenScope {
    // The CHECK constraint admits only these three.
    match s {
        "read" => TokenScope::Read,
        "admin" => TokenScope::Admin,
        _ => TokenScope::Full,
    }
}

/// The CIDR list is stored as one comma-separated column (NULL: anywhere).
fn cidrs(stored: Option<String>) -> Vec<String> {
    stored
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

pub fn insert(
    c: &Connection,
    user_id: &str,
    t: &ApiToken,
    secret_hash: &str,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at, expires_at, scope,
                                 allowed_cidrs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            t.id.as_str(),
            user_id,
            t.name,
            secret_hash,
            t.created_at,
            t.expires_at,
            t.scope.as_str(),
            (!t.allowed_cidrs.is_empty()).then(|| t.allowed_cidrs.join(","))
        ],
    )?;
    Ok(())
}

pub fn list(c: &Connection, user_id: &str) -> Result<Vec<ApiToken>, DbError> {
    let mut stmt = c.prepare(
        "SELECT id, name, created_at, expires_at, last_used_at, scope, allowed_cidrs, last_client
         FROM api_tokens WHERE user_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt
        .query_map([user_id], |r| {
            Ok(ApiToken {
                id: super::id(r, 0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                expires_at: r.get(3)?,
                last_used_at: r.get(4)?,
                scope: parse_scope(&r.get::<_, String>(5)?),
                allowed_cidrs: cidrs(r.get(6)?),
                last_client: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The token and its user, if the token exists.
pub fn lookup(c: &Connection, id: &str) -> Result<Option<TokenRow>, DbError> {
    Ok(c.query_row(
        &format!(
            "SELECT {USER_COLUMNS}, t.secret_hash, t.expires_at, t.scope, t.allowed_cidrs
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?1"
        ),
        [id],
        |r| {
            Ok(TokenRow {
                user: user_from_row(r)?,
                secret_hash: r.get(5)?,
                expires_at: r.get(6)?,
                scope: parse_scope(&r.get::<_, String>(7)?),
                allowed_cidrs: cidrs(r.get(8)?),
            })
        },
    )
    .optional()?)
}

pub fn touch(c: &Connection, id: &str, at: &str, client: Option<&str>) -> Result<(), DbError> {
    c.execute(
        "UPDATE api_tokens SET last_used_at = ?2, last_client = COALESCE(?3, last_client)
         WHERE id = ?1",
        params![id, at, client],
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
