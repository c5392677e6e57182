//! Backup schedules: one per server, a daily time and how many scheduled backups to keep.

use std::sync::Arc;
use std::time::Duration;

use nuage_shared::{BackupSchedule, Job};

use crate::app::lifecycle::Request;
use crate::app::{Actor, App, AppError};
use crate::db::{self, backups as q};

/// The next time `HH:MM` (UTC) comes after `now`.
pub fn next_run(time: &str, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
    let (h, m) = time.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let at = time::Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()?;
    let today = now.replace_time(at);
    Some(if today > now {
        today
    } else {
        today + time::Duration::days(1)
    })
}

impl App {
    /// `GET /vms/{id}/backup-schedule` (404 when none is set).
    pub async fn get_schedule(
        &self,
        actor: &Actor,
        vm_id: &str,
    ) -> Result<BackupSchedule, AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        self.db
            .call(move |c| q::schedule(c, &vm.id))
            .await?
            .ok_or(AppError::NotFound("backup schedule"))
    }

    /// `PUT /vms/{id}/backup-schedule`: daily at `time` (UTC), keeping `keep` (1-30).
    pub async fn set_schedule(
        &self,
        actor: &Actor,
        vm_id: &str,
        req: BackupSchedule,
    ) -> Result<BackupSchedule, AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        if !(1..=30).contains(&req.keep) {
            return Err(AppError::Invalid("keep must be between 1 and 30.".into()));
        }
        let next = next_run(&req.time, time::OffsetDateTime::now_utc())
            .ok_or_else(|| AppError::Invalid("time must be HH:MM (UTC), e.g. 03:30.".into()))?;
        let schedule = BackupSchedule {
            time: req.time,
            keep: req.keep,
            next_run: Some(db::rfc3339(next)),
        };
        let row = schedule.clone();
        self.db
            .call(move |c| q::set_schedule(c, &vm.id, &row))
            .await?;
        Ok(schedule)
    }

    /// `DELETE /vms/{id}/backup-schedule`.
    pub async fn delete_schedule(&self, actor: &Actor, vm_id: &str) -> Result<(), AppError> {
        let vm = self.visible_vm(actor, vm_id).await?;
        if !self.db.call(move |c| q::delete_schedule(c, &vm.id)).await? {
            return Err(AppError::NotFound("backup schedule"));
        }
        Ok(())
    }

    /// Starts the backups due at `now` (each schedule moves to its next day first, so a failure
    /// is not retried in a loop). Returns the jobs started.
    pub async fn run_due_schedules(self: &Arc<Self>, now: time::OffsetDateTime) -> Vec<Job> {
        let (host, at) = (self.daemon_id.clone(), db::rfc3339(now));
        let due = match self.db.call(move |c| q::due_schedules(c, &host, &at)).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %crate::app::chain(&e), "cannot read backup schedules");
                return Vec::new();
            }
        };
        let mut started = Vec::new();
        for (vm_id, mut s) in due {
            s.next_run = next_run(&s.time, now).map(db::rfc3339);
            let (key, row) = (vm_id.clone(), s.clone());
            let _ = self.db.call(move |c| q::set_schedule(c, &key, &row)).await;
            let (vm, turn) = match self.take(&vm_id, Request::DiskWork).await {
                Ok((vm, turn, _)) => (vm, turn),
                Err(AppError::NotFound(_)) => continue,
                Err(e) => {
                    tracing::warn!(vm = %vm_id, why = %e, "scheduled backup skipped: the server is busy");
                    continue;
                }
            };
            match self.backup_job(vm, turn, true).await {
                Ok(job) => started.push(job),
                Err(e) => {
                    tracing::warn!(vm = %vm_id, error = %crate::app::chain(&e), "scheduled backup not started")
                }
            }
        }
        started
    }

    /// Checks the schedules every `tick`, for as long as the app lives.
    pub(in crate::app) fn start_scheduler(self: &Arc<Self>, tick: Duration) {
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let Some(app) = app.upgrade() else { return };
                app.run_due_schedules(time::OffsetDateTime::now_utc()).await;
            }
        });
    }
}
