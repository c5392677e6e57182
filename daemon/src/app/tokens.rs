//! Personal API tokens for automation: `nuage_<id>_<secret>`, the secret shown once and kept only
//! as a SHA-256, with an optional expiry, revocable by their owner.

use base64::Engine;
use nuage_shared::{ApiToken, CreateToken, NewToken};
use sha2::{Digest, Sha256};

use super::{Actor, App, AppError};
use crate::db::{self, tokens};

pub const PREFIX: &str = "nuage_";

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

    /// `POST /tokens`.
    pub async fn create_token(
        &self,
        actor: &Actor,
        req: CreateToken,
    ) -> Result<NewToken, AppError> {
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
        let id: String = uuid::Uuid::new_v4().simple().to_string();
        let secret =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let token = ApiToken {
            id: id.clone(),
            name: name.to_owned(),
            created_at: db::rfc3339(now),
            expires_at: req
                .expires_in_days
                .map(|d| db::rfc3339(now + time::Duration::days(d.into()))),
            last_used_at: None,
        };
        let (uid, row, h) = (actor.user_id.clone(), token.clone(), hash(&secret));
        self.db
            .call(move |c| tokens::insert(c, &uid, &row, &h))
            .await?;
        Ok(NewToken {
            token: format!("{PREFIX}{id}_{secret}"),
            id,
            name: token.name,
            expires_at: token.expires_at,
        })
    }

    /// `DELETE /tokens/{id}`: only the owner's own tokens; others are 404.
    pub async fn delete_token(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        let (uid, key) = (actor.user_id.clone(), id.to_owned());
        if self.db.call(move |c| tokens::delete(c, &uid, &key)).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("token"))
        }
    }

    /// The actor behind an API token, if it is valid and unexpired.
    pub(super) async fn authenticate_api_token(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<Option<Actor>, AppError> {
        let key = id.to_owned();
        let Some((stored, expires, user)) = self.db.call(move |c| tokens::lookup(c, &key)).await?
        else {
            return Ok(None);
        };
        if stored != hash(secret) {
            return Ok(None);
        }
        let now = db::now_rfc3339();
        if expires.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        let key = id.to_owned();
        self.db.call(move |c| tokens::touch(c, &key, &now)).await?;
        Ok(Some(Actor {
            user_id: user.id,
            username: user.username,
            role: user.role,
            session: format!("token:{id}"),
        }))
    }
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
}
