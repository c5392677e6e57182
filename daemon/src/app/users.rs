//! Users and their quotas: `GET /me` for everyone, `/users` for administrators.

use nuage_shared::{
    validate_password, validate_username, CreateUser, Me, Quota, UpdateUser, UserDetail,
};

use super::auth::hash_password;
use super::{Actor, App, AppError};
use crate::db::{self, users, Refusal};

/// Upper bounds on any quota: beyond them a value is a typo, not a plan.
const QUOTA_MAX: Quota = Quota {
    vcpus: 4096,
    memory_mib: 64 * 1024 * 1024,
    disk_gib: 1024 * 1024,
    vms: 10_000,
    snapshots: 100_000,
};

fn validate_quota(q: &Quota) -> Result<(), AppError> {
    let checks = [
        ("vcpus", q.vcpus as u64, QUOTA_MAX.vcpus as u64),
        ("memory_mib", q.memory_mib, QUOTA_MAX.memory_mib),
        ("disk_gib", q.disk_gib, QUOTA_MAX.disk_gib),
        ("vms", q.vms as u64, QUOTA_MAX.vms as u64),
        ("snapshots", q.snapshots as u64, QUOTA_MAX.snapshots as u64),
    ];
    for (name, value, max) in checks {
        if value > max {
            return Err(AppError::Invalid(format!(
                "The quota's {name} is {value}; at most {max} is allowed."
            )));
        }
    }
    Ok(())
}

/// A refusal about a user: a missing one is the user not found.
fn user_refused(r: Refusal) -> AppError {
    match r {
        Refusal::NotFound => AppError::NotFound("user"),
        other => other.into(),
    }
}

pub(super) async fn hash(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AppError::internal("password hashing was lost", e))?
        .map_err(|e| AppError::internal("cannot hash a password", e.to_string()))
}

impl App {
    /// `GET /me`: who the caller is, their quota, and what they use of it.
    pub async fn me(&self, actor: &Actor) -> Result<Me, AppError> {
        let id = actor.user_id.clone();
        let (quota, usage) = self
            .db
            .call(move |c| Ok((users::quota(c, &id)?, users::usage(c, &id)?)))
            .await?;
        Ok(Me {
            user: actor.user(),
            quota,
            usage,
            security: self.account_security(actor).await?,
        })
    }

    /// `GET /users` (admins).
    pub async fn list_users(&self, actor: &Actor) -> Result<Vec<UserDetail>, AppError> {
        actor.require_admin()?;
        Ok(self
            .db
            .call(|c| {
                let mut out = Vec::new();
                for id in users::list_user_ids(c)? {
                    out.extend(users::user_detail(c, &id)?);
                }
                Ok(out)
            })
            .await?)
    }

    /// `GET /users/{id}` (admins).
    pub async fn get_user(&self, actor: &Actor, id: &str) -> Result<UserDetail, AppError> {
        actor.require_admin()?;
        let id = id.to_owned();
        self.db
            .call(move |c| users::user_detail(c, &id))
            .await?
            .ok_or(AppError::NotFound("user"))
    }

    /// `POST /users` (admins).
    pub async fn create_user(
        &self,
        actor: &Actor,
        req: CreateUser,
    ) -> Result<UserDetail, AppError> {
        actor.require_admin()?;
        validate_username(&req.username).map_err(|m| AppError::Invalid(m.into()))?;
        validate_password(&req.password).map_err(|m| AppError::Invalid(m.into()))?;
        let quota = req.quota.unwrap_or(Quota::DEFAULT);
        validate_quota(&quota)?;
        let row = users::UserRow {
            id: uuid::Uuid::new_v4().to_string(),
            username: req.username.clone(),
            password_hash: hash(req.password).await?,
            role: req.role,
            second_factor: false,
        };
        let id = row.id.clone();
        let inserted = self
            .db
            .call(move |c| users::insert_user_with_quota(c, &row, &quota, &db::now_rfc3339()))
            .await;
        match inserted {
            Err(e) if e.is_unique_violation() => Err(AppError::Conflict(format!(
                "The username {} is taken.",
                req.username
            ))),
            other => {
                other?;
                self.get_user(actor, &id).await
            }
        }
    }

    /// `PATCH /users/{id}` (admins): password, role and quota. A quota below current usage is
    /// allowed (it blocks new allocations). A new password ends the user's other sessions and
    /// deletes their API tokens (but the caller's own); a new role closes the user's open
    /// sockets (what they were opened for may no longer be theirs to see).
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: &str,
        req: UpdateUser,
    ) -> Result<UserDetail, AppError> {
        actor.require_admin()?;
        if let Some(p) = &req.password {
            // One's own password changes on the Account page, after re-confirming who one is:
            // an admin token or a stale session must not take the account over this way.
            if id == actor.user_id.as_str() {
                return Err(AppError::Conflict(
                    "Change your own password with PUT /api/v1/me/password.".into(),
                ));
            }
            validate_password(p).map_err(|m| AppError::Invalid(m.into()))?;
        }
        if let Some(q) = &req.quota {
            validate_quota(q)?;
        }
        let new_hash = match req.password {
            Some(p) => Some(hash(p).await?),
            None => None,
        };
        let (target_id, keep) = (id.to_owned(), actor.session.clone());
        let (role, quota) = (req.role, req.quota);
        let resets = new_hash.is_some();
        let change = users::UserChange {
            password_hash: new_hash,
            role,
            quota,
        };
        self.db
            .call(move |c| users::update_user(c, &target_id, &keep, &change))
            .await?
            .map_err(user_refused)?;
        if resets || role.is_some() {
            self.revoked(id, None);
        }
        self.get_user(actor, id).await
    }

    /// `POST /users/{id}/sign-out` (admins): "sign out everywhere": ends every session of the
    /// user and deletes every API token of theirs (but the caller's own), at once, open sockets
    /// included.
    pub async fn sign_out_everywhere(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        actor.require_admin()?;
        let (target_id, keep) = (id.to_owned(), actor.session.clone());
        self.db
            .call(move |c| users::sign_out_everywhere(c, &target_id, &keep))
            .await?
            .map_err(user_refused)?;
        self.revoked(id, None);
        Ok(())
    }

    /// `DELETE /users/{id}` (admins): the user's tokens stop working at once. A user who still
    /// owns servers, the caller themself, and the last administrator cannot be deleted.
    pub async fn delete_user(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        actor.require_admin()?;
        if id == actor.user_id {
            return Err(AppError::Conflict(
                "You cannot delete your own account.".into(),
            ));
        }
        let target_id = id.to_owned();
        // For the refusal's sentence only: the transaction below decides.
        let key = target_id.clone();
        let username = self
            .db
            .call(move |c| users::user_by_id(c, &key))
            .await?
            .map(|u| u.username)
            .unwrap_or_default();
        self.db
            .call(move |c| users::delete_unless_owning(c, &target_id))
            .await?
            .map_err(|r| match r {
                Refusal::InUse {
                    count,
                    of: "server(s)",
                } => AppError::Conflict(format!(
                    "{username} still owns {count} server(s); delete them first."
                )),
                Refusal::InUse { count, of } => AppError::Conflict(format!(
                    "{username} still has {count} {of}; delete them first."
                )),
                other => user_refused(other),
            })?;
        self.revoked(id, None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_beyond_the_bounds_are_invalid_and_name_the_field() {
        assert!(validate_quota(&Quota::DEFAULT).is_ok());
        assert!(validate_quota(&QUOTA_MAX).is_ok());
        let table = [
            (
                Quota {
                    vcpus: QUOTA_MAX.vcpus + 1,
                    ..Quota::DEFAULT
                },
                "vcpus",
            ),
            (
                Quota {
                    memory_mib: u64::MAX,
                    ..Quota::DEFAULT
                },
                "memory_mib",
            ),
            (
                Quota {
                    disk_gib: QUOTA_MAX.disk_gib + 1,
                    ..Quota::DEFAULT
                },
                "disk_gib",
            ),
            (
                Quota {
                    vms: QUOTA_MAX.vms + 1,
                    ..Quota::DEFAULT
                },
                "vms",
            ),
            (
                Quota {
                    snapshots: u32::MAX,
                    ..Quota::DEFAULT
                },
                "snapshots",
            ),
        ];
        for (q, field) in table {
            let err = validate_quota(&q).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
