//! Recording and reading the audit log.
//!
//! What is stored is bounded, so that nobody can fill the disk that holds every server's disk
//! with it: only requests to a real route are recorded, each field is cut to a few dozen
//! characters, anonymous refusals are counted (one summary entry per housekeeping round, and
//! `nuage_audit_anonymous_refusals_total`) instead of stored one by one, and old entries go
//! after `--audit-retention-days` or past `--audit-max-rows` (`housekeeping.rs`).

use std::net::IpAddr;

use nuage_shared::AuditEntry;

use super::{Actor, App, AppError};
use crate::db::{self, audit::AuditFilter};

/// What one request did, as the HTTP layer saw it.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub actor: Option<Actor>,
    /// Who tried, when there is no actor (a failed login).
    pub username: Option<String>,
    pub action: String,
    /// The request path, from which the resource is read.
    pub path: String,
    pub client: Option<IpAddr>,
    pub status: u16,
}

/// The most characters a stored field keeps.
const FIELD: usize = 64;

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// `/api/v1/vms/<id>/stop` → (`vms`, `<id>`), each cut to [`FIELD`] characters.
fn resource_of(path: &str) -> (String, Option<String>) {
    let mut parts = path
        .trim_start_matches("/api/v1/")
        .split('/')
        .filter(|p| !p.is_empty());
    let kind = cut(parts.next().unwrap_or(""), FIELD);
    let id = parts.next().map(|p| cut(p, FIELD));
    (kind, id)
}

fn outcome(status: u16) -> &'static str {
    match status {
        200..=399 => "success",
        400..=499 => "denied",
        _ => "failed",
    }
}

impl App {
    /// Counts a request refused to a caller with no valid credential, instead of storing it.
    pub fn count_anonymous_refusal(&self) {
        self.anonymous_refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Refusals of anonymous requests since the daemon started.
    pub fn anonymous_refusals(&self) -> u64 {
        self.anonymous_refusals
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Appends one entry. A failure to record is logged, never shown to the caller.
    pub async fn record_audit(&self, rec: AuditRecord) {
        let (resource_type, resource_id) = resource_of(&rec.path);
        let entry = AuditEntry {
            id: 0,
            at: db::now_rfc3339(),
            user_id: rec.actor.as_ref().map(|a| a.user_id.clone()),
            username: rec
                .actor
                .as_ref()
                .map(|a| a.username.clone())
                .or(rec.username)
                .map(|u| cut(&u, FIELD)),
            vm_id: (resource_type == "vms")
                .then(|| resource_id.clone().map(Into::into))
                .flatten(),
            action: cut(&rec.action, 2 * FIELD),
            resource_type,
            resource_id,
            client: rec.client.map(|c| cut(&c.to_string(), FIELD)),
            outcome: outcome(rec.status).into(),
            status: Some(rec.status),
        };
        if let Err(e) = self.db.call(move |c| db::audit::insert(c, &entry)).await {
            tracing::error!(error = %super::chain(&e), "cannot write the audit log");
        }
    }

    /// `GET /audit` (admins).
    pub async fn audit_log(
        &self,
        actor: &Actor,
        mut filter: AuditFilter,
    ) -> Result<Vec<AuditEntry>, AppError> {
        actor.require_admin()?;
        if let Some(since) = &filter.since {
            let t =
                time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        AppError::Invalid(
                            "since must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z.".into(),
                        )
                    })?;
            filter.since = Some(db::rfc3339(t.to_offset(time::UtcOffset::UTC)));
        }
        filter.limit = match filter.limit {
            0 => 100,
            n => n.min(1000),
        };
        Ok(self.db.call(move |c| db::audit::list(c, &filter)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_is_read_from_the_path() {
        assert_eq!(
            resource_of("/api/v1/vms/abc/stop"),
            ("vms".into(), Some("abc".into()))
        );
        assert_eq!(resource_of("/api/v1/vms"), ("vms".into(), None));
        assert_eq!(
            resource_of("/api/v1/users/u1"),
            ("users".into(), Some("u1".into()))
        );
        assert_eq!(outcome(204), "success");
        assert_eq!(outcome(404), "denied");
        assert_eq!(outcome(500), "failed");
    }
}
