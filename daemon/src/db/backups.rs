//! Snapshots, backups, backup schedules and jobs.

use nuage_shared::{Backup, BackupSchedule, BackupState, Job, JobKind, JobState, Quota, Snapshot};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::refusal::{immediate, naming, refuse};
use super::vms::HostRoom;
use super::{DbError, Outcome, Refusal};

fn snapshot_from(r: &Row<'_>) -> rusqlite::Result<Snapshot> {
    Ok(Snapshot {
        id: super::id(r, 0)?,
        vm_id: super::id(r, 1)?,
        name: r.get(2)?,
        created_at: r.get(3)?,
        with_memory: r.get(4)?,
    })
}

const SNAPSHOT_COLUMNS: &str = "id, vm_id, name, created_at, with_memory";

pub fn insert_snapshot(c: &Connection, s: &Snapshot) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO snapshots (id, vm_id, name, created_at, with_memory)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            s.id.as_str(),
            s.vm_id.as_str(),
            s.name,
            s.created_at,
            s.with_memory
        ],
    )?;
    Ok(())
}

/// A new snapshot's record, admitted for `more`. A snapshot holds what the guest overwrites after
/// it, on the host's disk: none is taken while `owner`'s disks, snapshots and backups fill their
/// disk quota.
pub fn insert_snapshot_admitted(
    c: &mut Connection,
    s: &Snapshot,
    owner: &str,
    more: &Quota,
    room: &HostRoom,
) -> Outcome<()> {
    immediate(c, |tx| {
        let (used, quota) = (
            super::users::usage(tx, owner)?,
            super::users::quota(tx, owner)?,
        );
        if used.disk_gib >= quota.disk_gib {
            return refuse(Refusal::DiskFull {
                used_gib: used.disk_gib,
                quota_gib: quota.disk_gib,
            });
        }
        if let Some(r) = super::vms::admit(tx, owner, more, room)? {
            return refuse(r);
        }
        if let Err(r) = naming(insert_snapshot(tx, s))? {
            return refuse(r);
        }
        Ok(Ok(()))
    })
}

pub fn set_snapshot_memory(c: &Connection, id: &str, with_memory: bool) -> Result<(), DbError> {
    c.execute(
        "UPDATE snapshots SET with_memory = ?2 WHERE id = ?1",
        params![id, with_memory],
    )?;
    Ok(())
}

pub fn snapshots(c: &Connection, vm_id: &str) -> Result<Vec<Snapshot>, DbError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE vm_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = stmt
        .query_map([vm_id], snapshot_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn snapshot(c: &Connection, vm_id: &str, id: &str) -> Result<Option<Snapshot>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE vm_id = ?1 AND id = ?2"),
        [vm_id, id],
        snapshot_from,
    )
    .optional()?)
}

pub fn delete_snapshot(c: &Connection, id: &str) -> Result<(), DbError> {
    c.execute("DELETE FROM snapshots WHERE id = ?1", [id])?;
    Ok(())
}

const BACKUP_COLUMNS: &str = "id, vm_id, vm_name, owner_id, created_at, state, size_bytes, \
                              quota_gib, disk_gib, scheduled, sha256";

fn backup_from(r: &Row<'_>) -> rusqlite::Result<Backup> {
    Ok(Backup {
        id: super::id(r, 0)?,
        vm_id: super::id(r, 1)?,
        vm_name: r.get(2)?,
        owner_id: super::id(r, 3)?,
        created_at: r.get(4)?,
        state: BackupState::parse(&r.get::<_, String>(5)?).unwrap_or(BackupState::Running),
        size_bytes: r.get::<_, u64>(6)?,
        quota_gib: r.get::<_, u64>(7)?,
        disk_gib: r.get::<_, u64>(8)?,
        scheduled: r.get(9)?,
        sha256: r.get(10)?,
    })
}

pub fn insert_backup(c: &Connection, b: &Backup, host_id: &str) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO backups (id, vm_id, vm_name, owner_id, host_id, created_at, state,
                              size_bytes, quota_gib, disk_gib, scheduled, sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            b.id.as_str(),
            b.vm_id.as_str(),
            b.vm_name,
            b.owner_id.as_str(),
            host_id,
            b.created_at,
            b.state.as_str(),
            b.size_bytes as i64,
            b.quota_gib as i64,
            b.disk_gib as i64,
            b.scheduled,
            b.sha256
        ],
    )?;
    Ok(())
}

/// A finished backup: its archive's size (and so its share of the quota) and checksum.
pub fn finish_backup(
    c: &Connection,
    id: &str,
    size_bytes: u64,
    quota_gib: u64,
    sha256: &str,
) -> Result<(), DbError> {
    c.execute(
        "UPDATE backups SET state = 'ready', size_bytes = ?2, quota_gib = ?3, sha256 = ?4
         WHERE id = ?1",
        params![id, size_bytes as i64, quota_gib as i64, sha256],
    )?;
    Ok(())
}

pub fn backup(c: &Connection, id: &str) -> Result<Option<Backup>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {BACKUP_COLUMNS} FROM backups WHERE id = ?1"),
        [id],
        backup_from,
    )
    .optional()?)
}

/// Backups of `owner` (all when `None`), newest first; of one server with `vm_id`.
pub fn backups(
    c: &Connection,
    owner: Option<&str>,
    vm_id: Option<&str>,
) -> Result<Vec<Backup>, DbError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {BACKUP_COLUMNS} FROM backups
         WHERE (?1 IS NULL OR owner_id = ?1) AND (?2 IS NULL OR vm_id = ?2)
         ORDER BY created_at DESC, id"
    ))?;
    let rows = stmt
        .query_map(params![owner, vm_id], backup_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn delete_backup(c: &Connection, id: &str) -> Result<(), DbError> {
    c.execute("DELETE FROM backups WHERE id = ?1", [id])?;
    Ok(())
}

/// Backups a crash left half-made on this host (their jobs died with the daemon).
pub fn running_backups(c: &Connection, host_id: &str) -> Result<Vec<String>, DbError> {
    let mut stmt = c.prepare("SELECT id FROM backups WHERE state = 'running' AND host_id = ?1")?;
    let rows = stmt
        .query_map([host_id], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn set_schedule(c: &Connection, vm_id: &str, s: &BackupSchedule) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO backup_schedules (vm_id, time, keep, next_run) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (vm_id) DO UPDATE SET time = excluded.time, keep = excluded.keep,
             next_run = excluded.next_run",
        params![vm_id, s.time, s.keep, s.next_run],
    )?;
    Ok(())
}

pub fn schedule(c: &Connection, vm_id: &str) -> Result<Option<BackupSchedule>, DbError> {
    Ok(c.query_row(
        "SELECT time, keep, next_run FROM backup_schedules WHERE vm_id = ?1",
        [vm_id],
        |r| {
            Ok(BackupSchedule {
                time: r.get(0)?,
                keep: r.get(1)?,
                next_run: r.get(2)?,
            })
        },
    )
    .optional()?)
}

pub fn delete_schedule(c: &Connection, vm_id: &str) -> Result<bool, DbError> {
    Ok(c.execute("DELETE FROM backup_schedules WHERE vm_id = ?1", [vm_id])? > 0)
}

/// Schedules due at `now` (RFC 3339 strings in UTC compare as text), of servers on this host.
pub fn due_schedules(
    c: &Connection,
    host_id: &str,
    now: &str,
) -> Result<Vec<(String, BackupSchedule)>, DbError> {
    let mut stmt = c.prepare(
        "SELECT s.vm_id, s.time, s.keep, s.next_run FROM backup_schedules s
         JOIN vms v ON v.id = s.vm_id WHERE v.host_id = ?1 AND s.next_run <= ?2",
    )?;
    let rows = stmt
        .query_map([host_id, now], |r| {
            Ok((
                r.get(0)?,
                BackupSchedule {
                    time: r.get(1)?,
                    keep: r.get(2)?,
                    next_run: r.get(3)?,
                },
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn kind_str(k: JobKind) -> &'static str {
    match k {
        JobKind::Backup => "backup",
        JobKind::Restore => "restore",
        JobKind::Export => "export",
        JobKind::Import => "import",
    }
}

fn kind_parse(s: &str) -> JobKind {
    match s {
        "restore" => JobKind::Restore,
        "export" => JobKind::Export,
        "import" => JobKind::Import,
        _ => JobKind::Backup,
    }
}

const JOB_COLUMNS: &str =
    "id, kind, state, progress, error, owner_id, vm_id, backup_id, created_at, finished_at";

fn job_from(r: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: super::id(r, 0)?,
        kind: kind_parse(&r.get::<_, String>(1)?),
        state: JobState::parse(&r.get::<_, String>(2)?).unwrap_or(JobState::Failed),
        progress: r.get(3)?,
        error: r.get(4)?,
        owner_id: super::id(r, 5)?,
        vm_id: super::opt_id(r, 6)?,
        backup_id: super::opt_id(r, 7)?,
        created_at: r.get(8)?,
        finished_at: r.get(9)?,
    })
}

/// A new backup's record, admitted for `more` (its reservation until its archive is written).
pub fn insert_backup_admitted(
    c: &mut Connection,
    b: &Backup,
    host_id: &str,
    more: &Quota,
    room: &HostRoom,
) -> Outcome<()> {
    super::vms::admitted(c, &b.owner_id, more, room, |tx| {
        if let Err(r) = naming(insert_backup(tx, b, host_id))? {
            return refuse(r);
        }
        Ok(Ok(()))
    })
}

/// A new running job that holds `gib` of its owner's disk quota until it ends, admitted for it;
/// [`Refusal::NameTaken`] when a unique index says such a job runs already.
pub fn insert_job_charged(c: &mut Connection, j: &Job, gib: u64, room: &HostRoom) -> Outcome<()> {
    let more = Quota {
        vcpus: 0,
        memory_mib: 0,
        disk_gib: gib,
        vms: 0,
        snapshots: 0,
    };
    super::vms::admitted(c, &j.owner_id, &more, room, |tx| {
        if let Err(r) = naming(save_job(tx, j))? {
            return refuse(r);
        }
        set_job_quota(tx, &j.id, gib)?;
        Ok(Ok(()))
    })
}

/// Writes a job as it now is (insert or update).
pub fn save_job(c: &Connection, j: &Job) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO jobs (id, kind, state, progress, error, owner_id, vm_id, backup_id,
                           created_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, progress = excluded.progress,
             error = excluded.error, vm_id = excluded.vm_id, backup_id = excluded.backup_id,
             finished_at = excluded.finished_at",
        params![
            j.id.as_str(),
            kind_str(j.kind),
            j.state.as_str(),
            j.progress,
            j.error,
            j.owner_id.as_str(),
            j.vm_id.as_deref(),
            j.backup_id.as_deref(),
            j.created_at,
            j.finished_at
        ],
    )?;
    Ok(())
}

pub fn job(c: &Connection, id: &str) -> Result<Option<Job>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
        [id],
        job_from,
    )
    .optional()?)
}

/// The newest 200 jobs of `owner` (all when `None`).
pub fn jobs(c: &Connection, owner: Option<&str>) -> Result<Vec<Job>, DbError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR owner_id = ?1)
         ORDER BY created_at DESC, id LIMIT 200"
    ))?;
    let rows = stmt
        .query_map(params![owner], job_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Marks every job still running as failed: they died with the previous daemon. Returns them.
pub fn fail_interrupted_jobs(c: &Connection, at: &str) -> Result<Vec<Job>, DbError> {
    let mut stmt = c.prepare(&format!(
        "UPDATE jobs SET state = 'failed', finished_at = ?1,
             error = 'The daemon stopped while this job ran; its partial files were removed.'
         WHERE state = 'running' RETURNING {JOB_COLUMNS}"
    ))?;
    let rows = stmt
        .query_map([at], job_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Forgets jobs that finished before `before` (RFC 3339).
pub fn prune_jobs(c: &Connection, before: &str) -> Result<usize, DbError> {
    Ok(c.execute(
        "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1",
        [before],
    )?)
}

/// Forgets every snapshot record of a server (its disk was replaced).
pub fn delete_snapshots_of(c: &Connection, vm_id: &str) -> Result<(), DbError> {
    c.execute("DELETE FROM snapshots WHERE vm_id = ?1", [vm_id])?;
    Ok(())
}

/// Records what a running job holds of its owner's disk quota.
pub fn set_job_quota(c: &Connection, id: &str, gib: u64) -> Result<(), DbError> {
    c.execute(
        "UPDATE jobs SET quota_gib = ?2 WHERE id = ?1",
        params![id, i64::try_from(gib).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}

/// Records a running job's progress (nothing once it has ended).
pub fn set_job_progress(c: &Connection, id: &str, progress: f64) -> Result<(), DbError> {
    c.execute(
        "UPDATE jobs SET progress = ?2 WHERE id = ?1 AND state = 'running'",
        params![id, progress],
    )?;
    Ok(())
}
