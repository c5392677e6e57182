//! Identity: password login, login tokens (HS256 JWTs backed by a session row, so logout revokes at
//! once) and the [`Actor`] every tenant-facing function takes first.

use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use nuage_shared::{
    LoginRequest, LoginResponse, PasskeyAssertion, Reauthenticate, Role, TokenScope, User,
};
use serde::{Deserialize, Serialize};

use std::net::IpAddr;

use super::audit::AuditRecord;
use super::{App, AppError};
use crate::db::{self, users::UserRow};

/// Where a sign-in comes from (what the session list shows).
#[derive(Debug, Clone, Default)]
pub struct SignInFrom {
    pub client: Option<IpAddr>,
    pub user_agent: Option<String>,
}

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
    /// What the credential may do: a login session may do all its user may (`admin` for an
    /// administrator), an API token what its scope says.
    pub scope: TokenScope,
    /// When the holder of a login session last proved who they are (Unix seconds); `None` for
    /// an API token, which cannot.
    pub verified_at: Option<i64>,
    /// The host requires a second factor of this user and they have none (`--require-2fa`).
    pub must_enrol: bool,
}

impl Actor {
    /// An administrator acting with administrator powers (a session, or an `admin` token).
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin && self.scope == TokenScope::Admin
    }

    /// The scope a login session of a user with `role` has.
    pub fn session_scope(role: Role) -> TokenScope {
        match role {
            Role::Admin => TokenScope::Admin,
            Role::User => TokenScope::Full,
        }
    }

    /// An API token's session key (`token:<id>`), if this actor came with one.
    pub fn token_id(&self) -> Option<&str> {
        self.session.strip_prefix("token:")
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

    /// Who a sign-in just signed in (for its audit entry; no session of its own yet).
    pub fn signed_in(r: &LoginResponse) -> Actor {
        Actor {
            user_id: r.user.id.clone(),
            username: r.user.username.clone(),
            role: r.user.role,
            session: String::new(),
            expires: None,
            scope: Actor::session_scope(r.user.role),
            verified_at: None,
            must_enrol: r.must_enrol_second_factor,
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

/// Whether `password` matches the Argon2 `hash` (what a sign-in spends most of its time on).
pub fn verify_password(password: &str, hash: &str) -> bool {
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
        from: &SignInFrom,
    ) -> Result<LoginResponse, AppError> {
        let username = req.username.clone();
        let client = from.client;
        let result = self.try_login(req, from).await;
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
            Err(
                AppError::Unauthenticated(_)
                | AppError::TotpRequired
                | AppError::TotpInvalid
                | AppError::PasskeyInvalid,
            ) => 401,
            Err(_) => 500,
        };
        let actor = result.as_ref().ok().map(Actor::signed_in);
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
        from: &SignInFrom,
    ) -> Result<LoginResponse, AppError> {
        let client = from.client;
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
        let username = req.username.clone();
        let row = self
            .db
            .call(move |c| db::users::user_by_username(c, &username))
            .await?;
        let hash = row
            .as_ref()
            .map_or(decoy_hash().to_owned(), |u| u.password_hash.clone());
        let ok = self.password_matches(&req.password, &hash).await?;
        let Some(user) = row.filter(|_| ok) else {
            attempt.failed(std::time::Instant::now());
            return Err(AppError::Unauthenticated(BAD_LOGIN));
        };
        if user.second_factor {
            let checked = match req.passkey {
                Some(answer) => self
                    .check_passkey(answer, Some(&user.id), &mut None)
                    .await
                    .map(drop),
                None => {
                    self.check_second_factor(&user.id, req.totp.as_deref())
                        .await
                }
            };
            match checked {
                Ok(()) => {}
                // Asked for the code: the password was right, nothing was guessed.
                Err(e @ AppError::TotpRequired) => {
                    drop(attempt);
                    return Err(e);
                }
                Err(e) => {
                    attempt.failed(std::time::Instant::now());
                    return Err(e);
                }
            }
        }
        drop(attempt);
        self.issue_session(user, nuage_shared::SessionKind::Password, from)
            .await
    }

    /// Checks `password` against `hash` on the blocking pool, at most one check per CPU at once
    /// behind a short queue: each takes 19 MiB for tens of milliseconds, so past the queue the
    /// answer is 429 at once rather than memory for every guess.
    pub(super) async fn password_matches(
        &self,
        password: &str,
        hash: &str,
    ) -> Result<bool, AppError> {
        let _place = self.password_checks.enter().ok_or_else(|| {
            AppError::RateLimited(
                "The server is busy checking passwords; try again in a moment.".into(),
            )
        })?;
        let permit = self.password_checks.permits.clone().acquire_owned().await;
        let (password, hash) = (password.to_owned(), hash.to_owned());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_password(&password, &hash)
        })
        .await
        .map_err(|e| AppError::internal("password check was lost", e))
    }

    pub(super) async fn issue_session(
        &self,
        user: UserRow,
        kind: nuage_shared::SessionKind,
        from: &SignInFrom,
    ) -> Result<LoginResponse, AppError> {
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
        let kind = match kind {
            nuage_shared::SessionKind::Passkey => "passkey",
            _ => "password",
        };
        let client = from.client.map(|c| c.to_string());
        let agent = from.user_agent.clone();
        let verified = now.unix_timestamp();
        self.db
            .call(move |c| {
                db::sessions::insert(
                    c,
                    &db::sessions::NewSession {
                        jti: &jti,
                        user_id: &uid,
                        kind,
                        client: client.as_deref(),
                        user_agent: agent.as_deref(),
                        created_at: &created,
                        expires_at: &expires,
                        verified_at: verified,
                    },
                )
            })
            .await?;
        Ok(LoginResponse {
            token,
            expires_at,
            must_enrol_second_factor: self.requires_second_factor(user.role) && !user.second_factor,
            user: User {
                id: user.id.into(),
                username: user.username,
                role: user.role,
            },
        })
    }

    /// Turns a bearer token from `client` into the [`Actor`] behind it: signature, expiry, and
    /// a session that is neither revoked nor of a deleted user (an API token: its hash, expiry
    /// and client CIDRs).
    pub async fn authenticate(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<Actor, AppError> {
        const BAD: &str = "Your session is invalid or has expired; sign in again.";
        if let Some((id, secret)) = super::tokens::parse(token) {
            return self
                .authenticate_api_token(id, secret, client)
                .await?
                .ok_or(AppError::Unauthenticated(BAD));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.auth.decoding, &validation)
            .map_err(|_| AppError::Unauthenticated(BAD))?
            .claims;
        let jti = claims.jti.clone();
        let found = self
            .db
            .call(move |c| db::sessions::user_of(c, &jti))
            .await?;
        let Some((u, facts)) = found.filter(|(u, _)| u.id == claims.sub) else {
            return Err(AppError::Unauthenticated(BAD));
        };
        self.seen(&claims.jti, facts.last_seen_at.as_deref(), client)
            .await?;
        Ok(self.session_actor(u, claims.jti, Some(claims.exp), facts.verified_at))
    }

    /// The actor of a login session of `u`.
    fn session_actor(&self, u: UserRow, jti: String, exp: Option<i64>, verified: i64) -> Actor {
        Actor {
            must_enrol: self.requires_second_factor(u.role) && !u.second_factor,
            scope: Actor::session_scope(u.role),
            user_id: u.id.into(),
            username: u.username,
            role: u.role,
            session: jti,
            expires: exp,
            verified_at: Some(verified),
        }
    }

    /// Notes when (and from where) a session was last seen, at most once a minute.
    async fn seen(
        &self,
        jti: &str,
        last: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<(), AppError> {
        let now = time::OffsetDateTime::now_utc();
        let fresh = last
            .and_then(|l| {
                time::OffsetDateTime::parse(l, &time::format_description::well_known::Rfc3339).ok()
            })
            .is_some_and(|l| now - l < time::Duration::minutes(1));
        if fresh {
            return Ok(());
        }
        let (jti, at, client) = (
            jti.to_owned(),
            db::rfc3339(now),
            client.map(|c| c.to_string()),
        );
        self.db
            .call(move |c| db::sessions::touch(c, &jti, &at, client.as_deref()))
            .await?;
        Ok(())
    }

    /// Checks again that the credential `actor` came with still holds (a ticket's holder, when it
    /// is redeemed): not revoked, not expired, its user still there. The role is read afresh.
    pub(super) async fn revalidate(&self, actor: &Actor) -> Result<Option<Actor>, AppError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if actor.expires.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        let session = actor.session.clone();
        if let Some(id) = actor.token_id() {
            let id = id.to_owned();
            let found = self.db.call(move |c| db::tokens::lookup(c, &id)).await?;
            return Ok(found.filter(|t| t.user.id == *actor.user_id).map(|t| {
                let mut fresh = self.token_actor(&t, actor.session.clone(), actor.expires);
                fresh.scope = fresh.scope.min(actor.scope);
                fresh
            }));
        }
        let found = self
            .db
            .call(move |c| db::sessions::user_of(c, &session))
            .await?;
        Ok(found
            .filter(|(u, _)| u.id == *actor.user_id)
            .map(|(u, facts)| {
                self.session_actor(u, actor.session.clone(), actor.expires, facts.verified_at)
            }))
    }

    /// `POST /auth/verify`: the password (and the code, when TOTP is on), or a current code
    /// alone, opens the five-minute window again. Failures count like failed sign-ins.
    pub async fn reauthenticate(
        &self,
        actor: &Actor,
        req: Reauthenticate,
        client: Option<std::net::IpAddr>,
    ) -> Result<(), AppError> {
        if actor.verified_at.is_none() {
            return Err(AppError::Forbidden(
                "An API token cannot re-authenticate; sign in with your password.",
            ));
        }
        let uid = actor.user_id.to_string();
        let key = uid.clone();
        let user = self
            .db
            .call(move |c| db::users::user_by_id(c, &key))
            .await?
            .ok_or(AppError::Unauthenticated("Your account no longer exists."))?;
        let attempt = self
            .logins
            .reserve(&user.username, client, std::time::Instant::now())
            .map_err(|wait| {
                AppError::RateLimited(format!(
                    "Too many failed attempts; try again in {} second(s).",
                    wait.as_secs().max(1)
                ))
            })?;
        let result = match (&req.password, req.passkey) {
            (Some(password), passkey) => {
                if !self.password_matches(password, &user.password_hash).await? {
                    Err(AppError::Unauthenticated("The password is incorrect."))
                } else if !user.second_factor {
                    Ok(())
                } else if let Some(answer) = passkey {
                    self.check_passkey(answer, Some(&uid), &mut None)
                        .await
                        .map(drop)
                } else {
                    self.check_second_factor(&uid, req.totp.as_deref()).await
                }
            }
            // A passkey verified its user: both factors at once.
            (None, Some(answer)) => self
                .check_passkey(answer, Some(&uid), &mut None)
                .await
                .map(drop),
            (None, None) => match &req.totp {
                Some(code) if user.second_factor => {
                    self.check_second_factor(&uid, Some(code)).await
                }
                _ => Err(AppError::Invalid(
                    "Give your password (and your code when two-factor sign-in is on), a code, \
                     or a passkey."
                        .into(),
                )),
            },
        };
        match &result {
            Ok(()) => drop(attempt),
            Err(AppError::Invalid(_) | AppError::TotpRequired) => drop(attempt),
            Err(_) => attempt.failed(std::time::Instant::now()),
        }
        result?;
        let jti = actor.session.clone();
        let now = super::second_factor::unix_now();
        self.db
            .call(move |c| db::sessions::mark_verified(c, &jti, now))
            .await?;
        Ok(())
    }

    /// `POST /auth/passkey`: signs in with a passkey alone (it verified its user: two factors
    /// in one), audited like a password sign-in.
    pub async fn login_with_passkey(
        &self,
        answer: PasskeyAssertion,
        from: &SignInFrom,
    ) -> Result<LoginResponse, AppError> {
        let mut identified = None;
        let result = async {
            let user_id = self.check_passkey(answer, None, &mut identified).await?;
            let uid = user_id.clone();
            let user = self
                .db
                .call(move |c| db::users::user_by_id(c, &uid))
                .await?
                .ok_or(AppError::PasskeyInvalid)?;
            self.issue_session(user, nuage_shared::SessionKind::Passkey, from)
                .await
        }
        .await;
        // A refused answer that named no account with passkeys is counted, not stored (like
        // refused anonymous requests: a flood of them must not fill the audit log); one that
        // named an account is that account's failed sign-in (a cloned key shows there).
        if let (Err(AppError::PasskeyInvalid), Some(uid)) = (&result, identified) {
            let user = self
                .db
                .call(move |c| db::users::user_by_id(c, &uid))
                .await?;
            self.record_audit(AuditRecord {
                actor: None,
                username: user.map(|u| u.username.chars().take(64).collect()),
                action: "auth.passkey".into(),
                path: "/api/v1/auth".into(),
                client: from.client,
                status: 401,
            })
            .await;
            return result;
        }
        if matches!(
            result,
            Err(AppError::PasskeyInvalid | AppError::RateLimited(_))
        ) {
            self.count_anonymous_refusal();
            return result;
        }
        let actor = result.as_ref().ok().map(Actor::signed_in);
        self.record_audit(AuditRecord {
            username: actor.as_ref().map(|a| a.username.clone()),
            actor,
            action: "auth.passkey".into(),
            path: "/api/v1/auth".into(),
            client: from.client,
            status: match &result {
                Ok(_) => 200,
                Err(AppError::Conflict(_)) => 409,
                Err(_) => 500,
            },
        })
        .await;
        result
    }

    /// `POST /auth/logout`: the token stops working at once (an API token is revoked).
    pub async fn logout(&self, actor: &Actor) -> Result<(), AppError> {
        if let Some(id) = actor.token_id() {
            return self.delete_token(actor, id).await;
        }
        let jti = actor.session.clone();
        self.db.call(move |c| db::sessions::revoke(c, &jti)).await?;
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
