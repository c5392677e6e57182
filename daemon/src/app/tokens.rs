//! Personal API tokens for automation: `nuage_<id>_<secret>`, the secret shown once and kept only
//! as a SHA-256, with an optional expiry, revocable by their owner and by admins. A token never
//! mints a token that outlives it, and a user holds at most [`MAX_PER_USER`].

use base64::Engine;
use nuage_shared::{ApiToken, CreateToken, NewToken, Role, TokenScope};
use sha2::{Digest, Sha256};

use super::{Actor, App, AppError};
use crate::db::{self, tokens};

pub const PREFIX: &str = "nuage_";
/// API tokens one user may hold at once.
pub const MAX_PER_USER: usize = 50;

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Splits `nuage_<id>_<secret>`; `None` for anything else.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 32 && !secret.is_empty()).then_some((id, secret))
}

impl App {
    /// `GET /tokens`: the caller's own tokens.
    pub async fn list_tokens(&self, actor: &Actor) -> Result<Vec<ApiToken>, AppError> {
        let uid = actor.user_id.clone();
        Ok(self.db.call(move |c| tokens::list(c, &uid)).await?)
    }

    /// `POST /tokens`. A signed-in person must have proved who they are in the last five
    /// minutes; a token may mint tokens, none broader (scope) or longer-lived than itself, and
    /// only within its own client CIDRs.
    pub async fn create_token(
        &self,
        actor: &Actor,
        req: CreateToken,
    ) -> Result<NewToken, AppError> {
        if actor.token_id().is_none() {
            self.require_recent_verification(actor)?;
        }
        if req.scope == TokenScope::Admin && actor.role != Role::Admin {
            return Err(AppError::Forbidden(
                "Only an administrator's token may have the admin scope.",
            ));
        }
        if req.scope > actor.scope {
            return Err(AppError::Forbidden(
                "A token cannot create a token broader than itself.",
            ));
        }
        if req.allowed_cidrs.len() > 32 {
            return Err(AppError::Invalid(
                "A token lists at most 32 client CIDRs.".into(),
            ));
        }
        let mut allowed: Vec<ipnet::IpNet> = req
            .allowed_cidrs
            .iter()
            .map(|c| crate::config::parse_net(c).map_err(AppError::Invalid))
            .collect::<Result<_, _>>()?;
        // A token limited to some clients mints tokens limited to (within) the same ones.
        if let Some(parent) = actor.token_id() {
            let key = parent.to_owned();
            let limits: Vec<ipnet::IpNet> = self
                .db
                .call(move |c| tokens::lookup(c, &key))
                .await?
                .map(|t| t.allowed_cidrs)
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect();
            if !limits.is_empty() {
                if allowed.is_empty() {
                    allowed = limits;
                } else if !allowed.iter().all(|n| limits.iter().any(|l| l.contains(n))) {
                    return Err(AppError::Forbidden(
                        "A token cannot create a token usable from outside its own CIDRs.",
                    ));
                }
            }
        }
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(AppError::Invalid(
                "A token name is 1 to 64 printable characters.".into(),
            ));
        }
        if let Some(days) = req.expires_in_days {
            if !(1..=3650).contains(&days) {
                return Err(AppError::Invalid(
                    "expires_in_days is between 1 and 3650.".into(),
                ));
            }
        }
        let now = time::OffsetDateTime::now_utc();
        let mut expires_at = req
            .expires_in_days
            .map(|d| now + time::Duration::days(d.into()));
        // A token may create tokens, but none that outlives it (by default: its own expiry).
        if let (true, Some(limit)) = (actor.session.starts_with("token:"), actor.expires) {
            let limit = time::OffsetDateTime::from_unix_timestamp(limit)
                .map_err(|e| AppError::internal("a token's expiry is out of range", e))?;
            match expires_at {
                None => expires_at = Some(limit),
                Some(asked) if asked > limit => {
                    return Err(AppError::Invalid(format!(
                        "This API token expires at {}; a token it creates cannot outlive it.",
                        db::rfc3339(limit)
                    )))
                }
                Some(_) => {}
            }
        }
        let uid = actor.user_id.clone();
        let held = self.db.call(move |c| tokens::list(c, &uid)).await?.len();
        if held >= MAX_PER_USER {
            return Err(AppError::Conflict(format!(
                "You hold {MAX_PER_USER} API tokens already; delete one first."
            )));
        }
        let id: String = uuid::Uuid::new_v4().simple().to_string();
        let secret =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let token = ApiToken {
            id: id.clone().into(),
            name: name.to_owned(),
            created_at: db::rfc3339(now),
            expires_at: expires_at.map(db::rfc3339),
            last_used_at: None,
            scope: req.scope,
            allowed_cidrs: allowed.iter().map(ToString::to_string).collect(),
            last_client: None,
        };
        let (uid, row, h) = (actor.user_id.clone(), token.clone(), hash(&secret));
        self.db
            .call(move |c| tokens::insert(c, &uid, &row, &h))
            .await?;
        Ok(NewToken {
            token: format!("{PREFIX}{id}_{secret}"),
            id: id.into(),
            name: token.name,
            expires_at: token.expires_at,
            scope: token.scope,
            allowed_cidrs: token.allowed_cidrs,
        })
    }

    /// `DELETE /tokens/{id}`: only the owner's own tokens; others are 404.
    pub async fn delete_token(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        let (uid, key) = (actor.user_id.clone(), id.to_owned());
        if self.db.call(move |c| tokens::delete(c, &uid, &key)).await? {
            self.revoked(&actor.user_id, Some(&format!("token:{id}")));
            Ok(())
        } else {
            Err(AppError::NotFound("token"))
        }
    }

    /// `GET /users/{id}/tokens` (admins): a user's API tokens (never their secrets).
    pub async fn list_user_tokens(
        &self,
        actor: &Actor,
        user_id: &str,
    ) -> Result<Vec<ApiToken>, AppError> {
        actor.require_admin()?;
        let key = user_id.to_owned();
        if self
            .db
            .call(move |c| db::users::user_by_id(c, &key))
            .await?
            .is_none()
        {
            return Err(AppError::NotFound("user"));
        }
        let uid = user_id.to_owned();
        Ok(self.db.call(move |c| tokens::list(c, &uid)).await?)
    }

    /// `DELETE /users/{id}/tokens/{token_id}` (admins): revokes one of a user's tokens.
    pub async fn revoke_user_token(
        &self,
        actor: &Actor,
        user_id: &str,
        token_id: &str,
    ) -> Result<(), AppError> {
        actor.require_admin()?;
        let (uid, key) = (user_id.to_owned(), token_id.to_owned());
        if self.db.call(move |c| tokens::delete(c, &uid, &key)).await? {
            self.revoked(user_id, Some(&format!("token:{token_id}")));
            Ok(())
        } else {
            Err(AppError::NotFound("token"))
        }
    }

    /// The actor behind an API token, if it is valid, unexpired, and used from one of its
    /// client CIDRs (an unknown client is outside every list).
    pub(super) async fn authenticate_api_token(
        &self,
        id: &str,
        secret: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<Option<Actor>, AppError> {
        let key = id.to_owned();
        let Some(found) = self.db.call(move |c| tokens::lookup(c, &key)).await? else {
            return Ok(None);
        };
        use subtle::ConstantTimeEq;
        if !bool::from(found.secret_hash.as_bytes().ct_eq(hash(secret).as_bytes())) {
            return Ok(None);
        }
        let now = db::now_rfc3339();
        if found
            .expires_at
            .as_deref()
            .is_some_and(|e| e <= now.as_str())
        {
            return Ok(None);
        }
        if !from_allowed(&found.allowed_cidrs, client) {
            return Ok(None);
        }
        let expires = match &found.expires_at {
            Some(e) => Some(
                time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| AppError::internal("a token's expiry does not parse", e))?
                    .unix_timestamp(),
            ),
            None => None,
        };
        let (key, from) = (id.to_owned(), client.map(|c| c.to_string()));
        self.db
            .call(move |c| tokens::touch(c, &key, &now, from.as_deref()))
            .await?;
        Ok(Some(self.token_actor(
            &found,
            format!("token:{id}"),
            expires,
        )))
    }

    /// The actor of token `t` (its scope no broader than its user's role allows).
    pub(super) fn token_actor(
        &self,
        t: &tokens::TokenRow,
        session: String,
        expires: Option<i64>,
    ) -> Actor {
        let u = &t.user;
        Actor {
            user_id: u.id.clone().into(),
            username: u.username.clone(),
            role: u.role,
            session,
            expires,
            scope: t.scope.min(Actor::session_scope(u.role)),
            verified_at: None,
            must_enrol: self.requires_second_factor(u.role) && !u.second_factor,
        }
    }
}

/// Whether `client` may use a token limited to `cidrs` (none: from anywhere).
fn from_allowed(cidrs: &[String], client: Option<std::net::IpAddr>) -> bool {
    if cidrs.is_empty() {
        return true;
    }
    let Some(ip) = client else { return false };
    let ip = crate::cidr::unmapped(ip);
    cidrs
        .iter()
        .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
        .any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_tokens_parse() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse(&format!("nuage_{id}_s3cr_et")), Some((id, "s3cr_et")));
        assert_eq!(parse(&format!("nuage_{id}_")), None);
        assert_eq!(parse("nuage_short_secret"), None);
        assert_eq!(parse("eyJhbGciOiJIUzI1NiJ9.x.y"), None);
    }

    #[test]
    fn a_cidr_list_admits_only_its_clients() {
        let list = vec!["10.0.0.0/8".to_owned(), "2001:db8::/32".to_owned()];
        let ip = |s: &str| Some(s.parse().unwrap());
        assert!(from_allowed(&list, ip("10.1.2.3")));
        assert!(from_allowed(&list, ip("::ffff:10.1.2.3")));
        assert!(from_allowed(&list, ip("2001:db8::1")));
        assert!(!from_allowed(&list, ip("11.0.0.1")));
        assert!(!from_allowed(&list, None));
        assert!(from_allowed(&[], None));
    }
}
