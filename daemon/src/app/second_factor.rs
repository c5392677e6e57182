//! Second factors and re-authentication: TOTP enrolment (begin, confirm with a code, which
//! hands out ten recovery codes), removal, an admin's reset; the check that sign-in and
//! re-authentication share (a code works once: its time step is recorded in the same
//! statement that accepts it); and the five-minute window sensitive changes need.

use nuage_shared::{AccountSecurity, RecoveryCodes, TotpEnrolment};

use super::totp;
use super::{Actor, App, AppError};
use crate::config::Require2fa;
use crate::db::{self, second_factor, Refusal};

/// How long a verification (sign-in, `POST /auth/verify`) lets a session make sensitive changes.
pub const REAUTH_WINDOW_SECS: i64 = 5 * 60;

fn last_factor() -> AppError {
    AppError::Conflict(
        "This host requires a second factor of your account; it cannot be turned off \
         (register a passkey first to use that instead)."
            .into(),
    )
}

pub(super) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl App {
    /// Whether the host requires a second factor of a user with `role`.
    pub(super) fn requires_second_factor(&self, role: nuage_shared::Role) -> bool {
        match self.settings.require_2fa {
            Require2fa::None => false,
            Require2fa::Admins => role == nuage_shared::Role::Admin,
            Require2fa::All => true,
        }
    }

    /// Checks a second factor of `user_id`: a current TOTP code not used before, or an unused
    /// recovery code (used up by this). `TotpRequired` without one, `TotpInvalid` when wrong.
    pub(super) async fn check_second_factor(
        &self,
        user_id: &str,
        code: Option<&str>,
    ) -> Result<(), AppError> {
        let code = code.map(str::trim).filter(|c| !c.is_empty());
        let Some(code) = code.map(str::to_owned) else {
            return Err(AppError::TotpRequired);
        };
        if let Some(wait) = self.codes.wait(user_id, std::time::Instant::now()) {
            return Err(AppError::RateLimited(format!(
                "Too many wrong codes; try again in {} second(s).",
                wait.as_secs().max(1)
            )));
        }
        if code.len() > 64 {
            self.codes.failed(user_id, std::time::Instant::now());
            return Err(AppError::TotpInvalid);
        }
        let uid = user_id.to_owned();
        let accepted = self
            .db
            .call(move |c| {
                if totp::looks_like_recovery_code(&code) {
                    let hash = totp::recovery_hash(&code);
                    return second_factor::use_recovery_code(c, &uid, &hash, &db::now_rfc3339());
                }
                let Some(secret) = second_factor::totp(c, &uid)? else {
                    return Ok(false);
                };
                let now = u64::try_from(unix_now()).unwrap_or(0);
                match totp::matching_step(&secret, &code, now) {
                    Some(step) => {
                        second_factor::use_step(c, &uid, i64::try_from(step).unwrap_or(i64::MAX))
                    }
                    None => Ok(false),
                }
            })
            .await?;
        if accepted {
            self.codes.succeeded(user_id);
            Ok(())
        } else {
            self.codes.failed(user_id, std::time::Instant::now());
            Err(AppError::TotpInvalid)
        }
    }

    /// Ends the caller's other sign-in sessions (their sockets close), once the account has its
    /// first second factor: whoever signed in with the password alone has no second factor.
    pub(super) async fn end_other_sessions(&self, actor: &Actor) -> Result<(), AppError> {
        let (uid, keep) = (actor.user_id.to_string(), actor.session.clone());
        let ended = self
            .db
            .call(move |c| db::sessions::revoke_others(c, &uid, &keep))
            .await?;
        for jti in &ended {
            self.revoked(&actor.user_id, Some(jti));
        }
        Ok(())
    }

    /// Refuses a sensitive change unless the caller's session proved who they are within the
    /// last five minutes. API tokens cannot: such changes need a signed-in person.
    pub(super) fn require_recent_verification(&self, actor: &Actor) -> Result<(), AppError> {
        match actor.verified_at {
            None => Err(AppError::Forbidden(
                "Sign in with your password for this; an API token cannot do it.",
            )),
            Some(at) if unix_now() - at <= REAUTH_WINDOW_SECS => Ok(()),
            Some(_) => Err(AppError::ReauthenticationRequired),
        }
    }

    /// `POST /me/totp`: a new secret for the caller's authenticator app, active only once a
    /// code from it confirms it. Begun again, it replaces the pending one.
    pub async fn begin_totp(&self, actor: &Actor) -> Result<TotpEnrolment, AppError> {
        self.require_recent_verification(actor)?;
        let secret = totp::new_secret();
        let (uid, stored) = (actor.user_id.to_string(), secret.clone());
        self.db
            .call(move |c| second_factor::begin(c, &uid, &stored))
            .await?
            .map_err(|r| match r {
                Refusal::InUse { .. } => AppError::Conflict(
                    "Two-factor sign-in is on already; turn it off first to enrol a new app."
                        .into(),
                ),
                other => other.into(),
            })?;
        let (secret, otpauth_url) = totp::provisioning(&secret, &actor.username);
        let qr_svg = qrcode::QrCode::new(otpauth_url.as_bytes())
            .map_err(|e| AppError::internal("cannot draw the QR code", e))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build();
        Ok(TotpEnrolment {
            secret,
            otpauth_url,
            qr_svg,
        })
    }

    /// `POST /me/totp/confirm {code}`: TOTP is on from now, and ten recovery codes are shown
    /// this once.
    pub async fn confirm_totp(&self, actor: &Actor, code: &str) -> Result<RecoveryCodes, AppError> {
        self.require_recent_verification(actor)?;
        let uid = actor.user_id.to_string();
        let key = uid.clone();
        let Some(secret) = self
            .db
            .call(move |c| second_factor::pending(c, &key))
            .await?
        else {
            return Err(AppError::Conflict(
                "Start the enrolment first (POST /api/v1/me/totp).".into(),
            ));
        };
        let now = u64::try_from(unix_now()).unwrap_or(0);
        let Some(step) = totp::matching_step(&secret, code, now) else {
            return Err(AppError::TotpInvalid);
        };
        let codes = totp::new_recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_hash(c)).collect();
        let first = self
            .db
            .call(move |c| {
                second_factor::confirm(
                    c,
                    &uid,
                    &secret,
                    i64::try_from(step).unwrap_or(i64::MAX),
                    &hashes,
                )
            })
            .await?
            .map_err(|_| {
                AppError::Conflict("The enrolment changed meanwhile; start it again.".into())
            })?;
        if !first {
            // The codes the first passkey brought stand.
            return Ok(RecoveryCodes {
                recovery_codes: Vec::new(),
            });
        }
        self.end_other_sessions(actor).await?;
        Ok(RecoveryCodes {
            recovery_codes: codes,
        })
    }

    /// `DELETE /me/totp {code}`: turns TOTP off (a current code, or a recovery code, says the
    /// caller still holds it). Refused while the host requires a second factor of them.
    pub async fn remove_totp(&self, actor: &Actor, code: &str) -> Result<(), AppError> {
        self.require_recent_verification(actor)?;
        let uid = actor.user_id.to_string();
        let on = self
            .db
            .call(move |c| second_factor::totp(c, &uid))
            .await?
            .is_some();
        if !on {
            return Err(AppError::Conflict(
                "Two-factor sign-in by an authenticator app is not on.".into(),
            ));
        }
        let uid = actor.user_id.to_string();
        let passkeys = self.db.call(move |c| db::passkeys::count(c, &uid)).await?;
        // Refused before the code is checked (a recovery code would be spent for nothing), and
        // again below where it counts.
        if self.requires_second_factor(actor.role) && passkeys == 0 {
            return Err(last_factor());
        }
        self.check_second_factor(&actor.user_id, Some(code))
            .await
            .map_err(|e| match e {
                AppError::TotpRequired => AppError::TotpInvalid,
                e => e,
            })?;
        // Counted and removed in one transaction: a passkey deleted meanwhile cannot leave an
        // account the host requires a second factor of with none.
        let (uid, keep) = (
            actor.user_id.to_string(),
            self.requires_second_factor(actor.role),
        );
        self.db
            .call(move |c| second_factor::remove_own(c, &uid, keep))
            .await?
            .map_err(|r| match r {
                Refusal::InUse { .. } => last_factor(),
                Refusal::NotFound => AppError::Conflict(
                    "Two-factor sign-in by an authenticator app is not on.".into(),
                ),
                other => other.into(),
            })
    }

    /// `DELETE /users/{id}/totp` (admins): resets a user's second factors, TOTP and passkeys
    /// (a lost phone, a lost key). Their
    /// sessions end; they enrol again at their next sign-in where the host requires it.
    pub async fn reset_totp(&self, actor: &Actor, user_id: &str) -> Result<(), AppError> {
        actor.require_admin()?;
        if user_id == actor.user_id.as_str() {
            return Err(AppError::Conflict(
                "Turn your own second factor off with a code (DELETE /api/v1/me/totp).".into(),
            ));
        }
        let uid = user_id.to_owned();
        let found = self
            .db
            .call(move |c| {
                if db::users::user_by_id(c, &uid)?.is_none() {
                    return Ok(None);
                }
                let keys = db::passkeys::remove_all(c, &uid)?;
                let removed = second_factor::remove(c, &uid)? || keys > 0;
                if removed {
                    db::users::revoke_user_sessions(c, &uid, None)?;
                }
                Ok(Some(removed))
            })
            .await?;
        match found {
            None => Err(AppError::NotFound("user")),
            Some(false) => Err(AppError::Conflict(
                "This user has no second factor to reset.".into(),
            )),
            Some(true) => {
                self.revoked(user_id, None);
                Ok(())
            }
        }
    }

    /// What `GET /me` says of the caller's second factors.
    pub(super) async fn account_security(
        &self,
        actor: &Actor,
    ) -> Result<AccountSecurity, AppError> {
        let uid = actor.user_id.to_string();
        let (totp, left, passkeys) = self
            .db
            .call(move |c| {
                Ok((
                    second_factor::totp(c, &uid)?.is_some(),
                    second_factor::codes_left(c, &uid)?,
                    db::passkeys::count(c, &uid)?,
                ))
            })
            .await?;
        Ok(AccountSecurity {
            totp,
            passkeys,
            recovery_codes_left: left,
            second_factor_required: self.requires_second_factor(actor.role),
            must_enrol: actor.must_enrol && !totp && passkeys == 0,
        })
    }
}
