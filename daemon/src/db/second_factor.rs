//! Second factors: a user's TOTP secret (pending until its first code confirms it), the last
//! time step accepted (so that a code works once), and single-use recovery codes (hashed).

use rusqlite::{params, Connection, OptionalExtension};

use super::refusal::{immediate, refuse};
use super::{DbError, Outcome, Refusal};

/// The active secret, if TOTP is on.
pub fn totp(c: &Connection, user_id: &str) -> Result<Option<Vec<u8>>, DbError> {
    Ok(c.query_row(
        "SELECT totp_secret FROM users WHERE id = ?1 AND totp_secret IS NOT NULL",
        [user_id],
        |r| r.get(0),
    )
    .optional()?)
}

/// The secret of an enrolment begun and not yet confirmed.
pub fn pending(c: &Connection, user_id: &str) -> Result<Option<Vec<u8>>, DbError> {
    Ok(c.query_row(
        "SELECT totp_pending FROM users WHERE id = ?1",
        [user_id],
        |r| r.get::<_, Option<Vec<u8>>>(0),
    )
    .optional()?
    .flatten())
}

/// Begins (or begins again) an enrolment; refused while TOTP is already on.
pub fn begin(c: &mut Connection, user_id: &str, secret: &[u8]) -> Outcome<()> {
    immediate(c, |tx| {
        let active: Option<bool> = tx
            .query_row(
                "SELECT totp_secret IS NOT NULL FROM users WHERE id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .optional()?;
        match active {
            None => return refuse(Refusal::NotFound),
            Some(true) => {
                return refuse(Refusal::InUse {
                    count: 1,
                    of: "TOTP",
                })
            }
            Some(false) => {}
        }
        tx.execute(
            "UPDATE users SET totp_pending = ?2 WHERE id = ?1",
            params![user_id, secret],
        )?;
        Ok(Ok(()))
    })
}

/// Makes the pending secret active with `step` as the last one used and, when it is the
/// user's first second factor (no passkey yet), replaces the recovery codes (true is answered
/// then), in one transaction; refused when the pending secret changed meanwhile.
pub fn confirm(
    c: &mut Connection,
    user_id: &str,
    secret: &[u8],
    step: i64,
    code_hashes: &[String],
) -> Outcome<bool> {
    immediate(c, |tx| {
        let changed = tx.execute(
            "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ?3
             WHERE id = ?1 AND totp_pending = ?2 AND totp_secret IS NULL",
            params![user_id, secret, step],
        )?;
        if changed == 0 {
            // The pending secret was replaced or confirmed meanwhile.
            return refuse(Refusal::NotFound);
        }
        let first = super::passkeys::count(tx, user_id)? == 0;
        if first {
            replace_codes(tx, user_id, code_hashes)?;
        }
        Ok(Ok(first))
    })
}

fn replace_codes(c: &Connection, user_id: &str, hashes: &[String]) -> Result<(), DbError> {
    c.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    for h in hashes {
        c.execute(
            "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
            params![user_id, h],
        )?;
    }
    Ok(())
}

/// Records `step` as used, if it is later than the last one: false for a replay (or a code of
/// an older window), so that each code works once even when two requests race.
pub fn use_step(c: &Connection, user_id: &str, step: i64) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE users SET totp_last_step = ?2
         WHERE id = ?1 AND totp_secret IS NOT NULL
           AND (totp_last_step IS NULL OR totp_last_step < ?2)",
        params![user_id, step],
    )? > 0)
}

/// Uses up a recovery code by its hash: false when it is unknown or used.
pub fn use_recovery_code(
    c: &Connection,
    user_id: &str,
    hash: &str,
    at: &str,
) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE recovery_codes SET used_at = ?3
         WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
        params![user_id, hash, at],
    )? > 0)
}

/// Recovery codes not used yet.
pub fn codes_left(c: &Connection, user_id: &str) -> Result<u32, DbError> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        [user_id],
        |r| r.get(0),
    )?)
}

/// Turns TOTP off (the caller's own removal) in one transaction: refused (`NotFound`) when it is
/// not on, and (`InUse`) when `keep_a_factor` and no passkey remains; the recovery codes go
/// when no passkey remains.
pub fn remove_own(c: &mut Connection, user_id: &str, keep_a_factor: bool) -> Outcome<()> {
    immediate(c, |tx| {
        if totp(tx, user_id)?.is_none() {
            return refuse(Refusal::NotFound);
        }
        if keep_a_factor && super::passkeys::count(tx, user_id)? == 0 {
            return refuse(Refusal::InUse {
                count: 1,
                of: "second factors",
            });
        }
        remove(tx, user_id)?;
        Ok(Ok(()))
    })
}

/// Turns TOTP off, and forgets the recovery codes unless a passkey remains; false when it was
/// not on (nor pending).
pub fn remove(c: &Connection, user_id: &str) -> Result<bool, DbError> {
    let changed = c.execute(
        "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL
         WHERE id = ?1 AND (totp_secret IS NOT NULL OR totp_pending IS NOT NULL)",
        [user_id],
    )?;
    c.execute(
        "DELETE FROM recovery_codes WHERE user_id = ?1
         AND NOT EXISTS (SELECT 1 FROM passkeys WHERE user_id = ?1)",
        [user_id],
    )?;
    Ok(changed > 0)
}
