//! The caller's own sessions and credentials: the list of where they are signed in (login
//! sessions and API tokens), ending one or all the others, and changing their password.

use nuage_shared::{Session, SessionKind};

use super::{Actor, App, AppError};
use crate::db::{self, sessions, tokens};

impl App {
    /// `GET /me/sessions`: the caller's live login sessions, then their API tokens.
    pub async fn list_sessions(&self, actor: &Actor) -> Result<Vec<Session>, AppError> {
        let uid = actor.user_id.to_string();
        let (rows, toks) = self
            .db
            .call(move |c| {
                Ok((
                    sessions::list(c, &uid, &db::now_rfc3339())?,
                    tokens::list(c, &uid)?,
                ))
            })
            .await?;
        let mut out: Vec<Session> = rows
            .into_iter()
            .map(|s| Session {
                current: s.jti == actor.session,
                kind: if s.kind == "passkey" {
                    SessionKind::Passkey
                } else {
                    SessionKind::Password
                },
                id: s.jti,
                created_at: s.created_at,
                expires_at: Some(s.expires_at),
                last_seen_at: s.last_seen_at,
                client: s.client,
                user_agent: s.user_agent,
                name: None,
            })
            .collect();
        out.extend(toks.into_iter().map(|t| {
            let id = format!("token:{}", t.id.as_str());
            Session {
                current: id == actor.session,
                id,
                kind: SessionKind::Token,
                created_at: t.created_at,
                expires_at: t.expires_at,
                last_seen_at: t.last_used_at,
                client: t.last_client,
                user_agent: None,
                name: Some(t.name),
            }
        }));
        Ok(out)
    }

    /// `DELETE /me/sessions/{id}`: ends one of the caller's sessions (or revokes one of their
    /// API tokens, `token:<id>`); its sockets close. Anyone else's is 404.
    pub async fn end_session(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        if let Some(token) = id.strip_prefix("token:") {
            return self.delete_token(actor, token).await;
        }
        let (uid, jti) = (actor.user_id.to_string(), id.to_owned());
        if !self
            .db
            .call(move |c| sessions::revoke_of(c, &uid, &jti))
            .await?
        {
            return Err(AppError::NotFound("session"));
        }
        self.revoked(&actor.user_id, Some(id));
        Ok(())
    }

    /// `POST /me/sign-out`: every other login session of the caller ends (API tokens stay:
    /// revoke them one by one). Returns how many ended.
    pub async fn sign_out_others(&self, actor: &Actor) -> Result<usize, AppError> {
        let uid = actor.user_id.to_string();
        let current = actor.session.clone();
        let ended = self
            .db
            .call(move |c| sessions::revoke_others(c, &uid, &current))
            .await?;
        for jti in &ended {
            self.revoked(&actor.user_id, Some(jti));
        }
        Ok(ended.len())
    }

    /// `PUT /me/password`: a new password for the caller (verified in the last five minutes);
    /// every other credential ends (sessions and API tokens), as when an admin sets it.
    pub async fn change_password(&self, actor: &Actor, password: String) -> Result<(), AppError> {
        self.require_recent_verification(actor)?;
        nuage_shared::validate_password(&password).map_err(|m| AppError::Invalid(m.into()))?;
        let hash = super::users::hash(password).await?;
        let (uid, keep) = (actor.user_id.to_string(), actor.session.clone());
        self.db
            .call(move |c| {
                db::users::set_password_hash(c, &uid, &hash)?;
                db::users::end_credentials(c, &uid, &keep)
            })
            .await?;
        self.revoked(&actor.user_id, None);
        Ok(())
    }
}
