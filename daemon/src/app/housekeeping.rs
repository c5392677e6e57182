//! Housekeeping, every [`EVERY`] and once at start: forgets what can never be used again
//! (revoked or expired sessions, expired API tokens, jobs finished a month ago), applies the
//! audit log's retention (`--audit-retention-days`, `--audit-max-rows`), and writes one summary
//! entry for the anonymous requests refused since the last round.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::audit::AuditRecord;
use super::App;
use crate::db;

/// How often housekeeping runs.
pub const EVERY: Duration = Duration::from_secs(600);
/// Finished jobs are kept this long (their results are listed with them).
const KEEP_JOBS: time::Duration = time::Duration::days(30);

/// What one round removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sessions: usize,
    pub tokens: usize,
    pub jobs: usize,
    pub audit: usize,
}

impl App {
    /// One round of housekeeping.
    pub async fn housekeep(&self) -> Result<Swept, super::AppError> {
        let refused = self.anonymous_refusals();
        let last = self.anonymous_reported.swap(refused, Ordering::Relaxed);
        if refused > last {
            self.record_audit(AuditRecord {
                actor: None,
                username: None,
                action: format!("{} anonymous requests refused", refused - last),
                path: "/api/v1/anonymous".into(),
                client: None,
                status: 401,
            })
            .await;
        }
        let now = time::OffsetDateTime::now_utc();
        let (now_s, jobs_before) = (db::rfc3339(now), db::rfc3339(now - KEEP_JOBS));
        let audit_before =
            db::rfc3339(now - time::Duration::days(self.settings.host.audit_retention_days.into()));
        let keep = self.settings.host.audit_max_rows;
        let swept = self
            .db
            .call(move |c| {
                Ok(Swept {
                    sessions: db::sessions::prune(c, &now_s)?,
                    tokens: db::tokens::prune_expired(c, &now_s)?,
                    jobs: db::backups::prune_jobs(c, &jobs_before)?,
                    audit: db::audit::prune(c, &audit_before, keep)?,
                })
            })
            .await?;
        if swept != Swept::default() {
            tracing::info!(?swept, "housekeeping");
        }
        // What each disk holds grows as its guest writes over what its snapshots keep.
        let host = self.daemon_id.clone();
        for vm in self
            .db
            .call(move |c| db::vms::list_on_host(c, &host))
            .await?
        {
            self.measure_disk(&vm.id).await;
        }
        Ok(swept)
    }

    pub(super) fn start_housekeeping(self: &Arc<Self>) {
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(app) = app.upgrade() else { break };
                if let Err(e) = app.housekeep().await {
                    tracing::warn!(error = %super::chain(&e), "housekeeping failed");
                }
            }
        });
    }
}
