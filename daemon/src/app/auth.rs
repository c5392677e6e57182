//! Identity: password login, login tokens (HS256 JWTs backed by a session row, so logout revokes at
//! once) and the [`Actor`] every tenant-facing function takes first.

use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use nuage_shared::{LoginRequest, LoginResponse, Role, User};
use serde::{Deserialize, Serialize};

use std::net::IpAddr;

use super::audit::AuditRecord;
use super::{App, AppError};
use crate::db::{self, users::UserRow};

/// How long a login token lives.
pub const LOGIN_TTL: Duration = Duration::from_secs(8 * 3600);

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: nuage_shared::UserId,
    pub username: String,
    pub role: Role,
    /// The session this request came through (what logout revokes): a login's `jti`, or
    /// `token:<id>` for an API token.
    pub session: String,
    /// When that credential expires (Unix seconds); `None` for an API token without expiry.
    pub expires: Option<i64>,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "This action is for administrators only.",
            ))
        }
    }

    pub fn user(&self) -> User {
        User {
            id: self.user_id.clone(),
            username: self.username.clone(),
            role: self.role,
        }
    }
}

/// The JWT signing keys, derived from the secret in `<data-dir>/jwt.key`.
pub(super) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    pub(super) fn new(secret: &[u8]) -> Keys {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    jti: String,
    iat: i64,
    exp: i64,
}

pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash that no password matches, verified against when the user does not exist, so that a
/// login for an unknown name takes as long as one for a known name.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}

const BAD_LOGIN: &str = "The username or password is incorrect.";

/// Password checks running or waiting: one per CPU at once, and a short queue behind them.
pub struct PasswordChecks {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
}

impl Default for PasswordChecks {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        PasswordChecks {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(cpus)),
            waiting: Default::default(),
            max_waiting: 8 * cpus,
        }
    }
}

/// A place in the password checks' queue (given back when dropped).
pub struct InQueue<'a>(&'a PasswordChecks);

impl PasswordChecks {
    fn enter(&self) -> Option<InQueue<'_>> {
        use std::sync::atomic::Ordering;
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        let queue = InQueue(self);
        (before < self.max_waiting).then_some(queue)
    }
}

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.0
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl App {
    /// `POST /auth/login`, rate-limited per username and per client address, and audited.
    pub async fn login(
        &self,
        req: LoginRequest,
        client: Option<IpAddr>,
    ) -> Result<LoginResponse, AppError> {
        let username = req.username.clone();
        let result = self.try_login(req, client).await;
        // Refusals before any password was checked are counted, not stored: a flood of them
        // must not fill the audit log (its guesses were never tried).
        if matches!(result, Err(AppError::RateLimited(_))) {
            self.count_anonymous_refusal();
            return result;
        }
        let status = match &result {
            Ok(_) => 200,
            Err(AppError::RateLimited(_)) => 429,
            Err(AppError::Invalid(_)) => 422,
            Err(AppError::Unauthenticated(_)) => 401,
            Err(_) => 500,
        };
        let actor = result.as_ref().ok().map(|r| Actor {
            user_id: r.user.id.clone(),
            username: r.user.username.clone(),
            role: r.user.role,
            session: String::new(),
            expires: None,
        });
        self.record_audit(AuditRecord {
            actor,
            username: Some(username.chars().take(64).collect()),
            action: "auth.login".into(),
            path: "/api/v1/auth".into(),
            client,
            status,
        })
        .await;
        result
    }

    async fn try_login(
        &self,
        req: LoginRequest,
        client: Option<IpAddr>,
    ) -> Result<LoginResponse, AppError> {
        if req.username.is_empty() || req.password.is_empty() {
            return Err(AppError::Invalid("Enter a username and a password.".into()));
        }
        if req.username.len() > 256 || req.password.len() > 1024 {
            return Err(AppError::Unauthenticated(BAD_LOGIN));
        }
        // The attempt is reserved before the password is checked (`ratelimit.rs`).
        let attempt = self
            .logins
            .reserve(&req.username, client, std::time::Instant::now())
            .map_err(|wait| {
                AppError::RateLimited(format!(
                    "Too many failed sign-ins; try again in {} second(s).",
                    wait.as_secs().max(1)
                ))
            })?;
        // Each check takes 19 MiB for tens of milliseconds: at most one per CPU at once, and a
        // short queue; past it the answer is 429 at once rather than memory for every guess.
        let _permit = self.password_checks.enter().ok_or_else(|| {
            AppError::RateLimited(
                "The server is busy checking passwords; try again in a moment.".into(),
            )
        })?;
        let permit = self.password_checks.permits.clone().acquire_owned().await;
        let username = req.username.clone();
        let row = self
            .db
            .call(move |c| db::users::user_by_username(c, &username))
            .await?;
        let hash = row
            .as_ref()
            .map_or(decoy_hash().to_owned(), |u| u.password_hash.clone());
        let password = req.password;
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_password(&password, &hash)
        })
        .await
        .map_err(|e| AppError::internal("password check was lost", e))?;
        match row {
            Some(user) if ok => {
                drop(attempt);
                self.issue_session(user).await
            }
            _ => {
                attempt.failed(std::time::Instant::now());
                Err(AppError::Unauthenticated(BAD_LOGIN))
            }
        }
    }

    async fn issue_session(&self, user: UserRow) -> Result<LoginResponse, AppError> {
        let now = time::OffsetDateTime::now_utc();
        let exp = now + LOGIN_TTL;
        let claims = Claims {
            sub: user.id.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now.unix_timestamp(),
            exp: exp.unix_timestamp(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.auth.encoding)
                .map_err(|e| AppError::internal("cannot sign a token", e))?;
        let (jti, uid) = (claims.jti.clone(), user.id.clone());
        let (created, expires) = (db::rfc3339(now), db::rfc3339(exp));
        let expires_at = expires.clone();
        self.db
            .call(move |c| db::users::insert_session(c, &jti, &uid, &created, &expires))
            .await?;
        Ok(LoginResponse {
            token,
            expires_at,
            user: User {
                id: user.id.into(),
                username: user.username,
                role: user.role,
            },
        })
    }

    /// Turns a bearer token into the [`Actor`] behind it: signature, expiry, and a session that is
    /// neither revoked nor of a deleted user.
    pub async fn authenticate(&self, token: &str) -> Result<Actor, AppError> {
        const BAD: &str = "Your session is invalid or has expired; sign in again.";
        if let Some((id, secret)) = super::tokens::parse(token) {
            return self
                .authenticate_api_token(id, secret)
                .await?
                .ok_or(AppError::Unauthenticated(BAD));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.auth.decoding, &validation)
            .map_err(|_| AppError::Unauthenticated(BAD))?
            .claims;
        let jti = claims.jti.clone();
        let user = self
            .db
            .call(move |c| db::users::session_user(c, &jti))
            .await?;
        match user {
            Some(u) if u.id == claims.sub => Ok(Actor {
                user_id: u.id.into(),
                username: u.username,
                role: u.role,
                session: claims.jti,
                expires: Some(claims.exp),
            }),
            _ => Err(AppError::Unauthenticated(BAD)),
        }
    }

    /// Checks again that the credential `actor` came with still holds (a ticket's holder, when it
    /// is redeemed): not revoked, not expired, its user still there. The role is read afresh.
    pub(super) async fn revalidate(&self, actor: &Actor) -> Result<Option<Actor>, AppError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if actor.expires.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        let session = actor.session.clone();
        let user = match session.strip_prefix("token:") {
            Some(id) => {
                let id = id.to_owned();
                self.db
                    .call(move |c| db::tokens::lookup(c, &id))
                    .await?
                    .map(|(_, _, user)| user)
            }
            None => {
                self.db
                    .call(move |c| db::users::session_user(c, &session))
                    .await?
            }
        };
        Ok(user.filter(|u| u.id == actor.user_id).map(|u| Actor {
            user_id: u.id.into(),
            username: u.username,
            role: u.role,
            session: actor.session.clone(),
            expires: actor.expires,
        }))
    }

    /// `POST /auth/logout`: the token stops working at once (an API token is revoked).
    pub async fn logout(&self, actor: &Actor) -> Result<(), AppError> {
        if let Some(id) = actor.session.strip_prefix("token:") {
            return self.delete_token(actor, id).await;
        }
        let jti = actor.session.clone();
        self.db
            .call(move |c| db::users::revoke_session(c, &jti))
            .await?;
        self.revoked(&actor.user_id, Some(&actor.session));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horse ", &h));
        assert!(!verify_password("correct horse", decoy_hash()));
        assert!(!verify_password("x", "not a hash"));
    }
}
