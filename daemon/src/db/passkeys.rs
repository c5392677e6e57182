//! Passkeys: a user's WebAuthn credentials, each stored as webauthn-rs's `Passkey` (JSON: the
//! public key, the signature counter) under the name its user gave it. With TOTP they are the
//! user's second factors: the first one brings the recovery codes, the last one gone takes them.

use nuage_shared::PasskeyInfo;
use rusqlite::{params, Connection, OptionalExtension};

use super::refusal::{immediate, naming, refuse};
use super::{DbError, Outcome, Refusal};

/// At most this many passkeys per user.
pub const MAX_PER_USER: usize = 20;

/// A passkey about to be stored.
pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    /// base64url of the credential id (unique over all users).
    pub credential_id: &'a str,
    pub passkey: &'a str,
    pub created_at: &'a str,
}

/// The user's passkeys, oldest first.
pub fn list(c: &Connection, user_id: &str) -> Result<Vec<PasskeyInfo>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, name, created_at, last_used_at FROM passkeys WHERE user_id = ?1
         ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        Ok(PasskeyInfo {
            id: r.get(0)?,
            name: r.get(1)?,
            created_at: r.get(2)?,
            last_used_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The stored credentials (row id, `Passkey` JSON) of a user, for a sign-in.
pub fn credentials(c: &Connection, user_id: &str) -> Result<Vec<(String, String)>, DbError> {
    let mut stmt = c.prepare_cached("SELECT id, passkey FROM passkeys WHERE user_id = ?1")?;
    let rows = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many passkeys the user has.
pub fn count(c: &Connection, user_id: &str) -> Result<u32, DbError> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM passkeys WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?)
}

fn has_second_factor(c: &Connection, user_id: &str) -> Result<bool, DbError> {
    Ok(c.query_row(
        "SELECT totp_secret IS NOT NULL OR EXISTS (SELECT 1 FROM passkeys WHERE user_id = ?1)
         FROM users WHERE id = ?1",
        [user_id],
        |r| r.get(0),
    )
    .optional()?
    .unwrap_or(false))
}

/// Stores a passkey; when it is the user's first second factor, `first_codes` become their
/// recovery codes (true is answered then). Refused past [`MAX_PER_USER`] (`InUse`), for a user
/// gone (`NotFound`) and for a credential stored already (`NameTaken`).
pub fn insert(c: &mut Connection, p: &NewPasskey<'_>, first_codes: &[String]) -> Outcome<bool> {
    immediate(c, |tx| {
        let exists: Option<i64> = tx
            .query_row("SELECT 1 FROM users WHERE id = ?1", [p.user_id], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return refuse(Refusal::NotFound);
        }
        let held = usize::try_from(count(tx, p.user_id)?).unwrap_or(usize::MAX);
        if held >= MAX_PER_USER {
            return refuse(Refusal::InUse {
                count: held,
                of: "passkeys",
            });
        }
        let first = !has_second_factor(tx, p.user_id)?;
        let write = tx
            .execute(
                "INSERT INTO passkeys (id, user_id, name, credential_id, passkey, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    p.id,
                    p.user_id,
                    p.name,
                    p.credential_id,
                    p.passkey,
                    p.created_at
                ],
            )
            .map(drop)
            .map_err(DbError::from);
        if let Err(r) = naming(write)? {
            return refuse(r);
        }
        if first {
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [p.user_id])?;
            for h in first_codes {
                tx.execute(
                    "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                    params![p.user_id, h],
                )?;
            }
        }
        Ok(Ok(first))
    })
}

/// Renames one of the user's passkeys: false when they have none of that id.
pub fn rename(c: &Connection, user_id: &str, id: &str, name: &str) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE passkeys SET name = ?3 WHERE user_id = ?1 AND id = ?2",
        params![user_id, id, name],
    )? > 0)
}

/// Deletes one of the user's passkeys. When `keep_a_factor`, refused (`InUse`) if it is their
/// last second factor; the last one gone takes the recovery codes with it.
pub fn remove(c: &mut Connection, user_id: &str, id: &str, keep_a_factor: bool) -> Outcome<()> {
    immediate(c, |tx| {
        let found: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM passkeys WHERE user_id = ?1 AND id = ?2",
                params![user_id, id],
                |r| r.get(0),
            )
            .optional()?;
        if found.is_none() {
            return refuse(Refusal::NotFound);
        }
        tx.execute(
            "DELETE FROM passkeys WHERE user_id = ?1 AND id = ?2",
            params![user_id, id],
        )?;
        if !has_second_factor(tx, user_id)? {
            if keep_a_factor {
                return refuse(Refusal::InUse {
                    count: 1,
                    of: "second factors",
                });
            }
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
        }
        Ok(Ok(()))
    })
}

/// Deletes every passkey of the user (an admin's reset): how many there were.
pub fn remove_all(c: &Connection, user_id: &str) -> Result<usize, DbError> {
    Ok(c.execute("DELETE FROM passkeys WHERE user_id = ?1", [user_id])?)
}

/// Records a sign-in with the passkey: when, and its credential as updated (the counter), over
/// the credential as it was read (`read`, its JSON): false when it changed or went meanwhile.
pub fn used(
    c: &Connection,
    id: &str,
    read: &str,
    updated: Option<&str>,
    at: &str,
) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE passkeys SET last_used_at = ?3, passkey = COALESCE(?4, passkey)
         WHERE id = ?1 AND passkey = ?2",
        params![id, read, at, updated],
    )? > 0)
}
