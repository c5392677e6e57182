//! The SQLite store: users, sessions and (later) quotas, images and VPS records.
//!
//! Architecture invariant: this module knows SQL and nothing of HTTP or libvirt. It answers the app
//! layer's questions with plain Rust values; it does not decide who may ask.
//!
//! Connections are pooled (opened lazily, returned after each call) and every call runs on tokio's
//! blocking pool, so a slow query never stalls the executor. WAL mode lets readers run beside a
//! writer; writers that must see a consistent picture (quota checks) use `BEGIN IMMEDIATE`.

pub mod audit;
pub mod backups;
pub mod images;
mod migrations;
pub mod passkeys;
mod refusal;
pub mod second_factor;
pub mod sessions;
pub mod tokens;
pub mod users;
pub mod vms;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

pub use refusal::{Outcome, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database task was lost")]
    TaskLost(#[from] tokio::task::JoinError),
    #[error("the database schema is version {found}, newer than this nuaged knows ({known})")]
    TooNew { found: i64, known: i64 },
}

impl DbError {
    /// A UNIQUE constraint refused the write (a name already taken).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
    }
}

/// A cheap-to-clone handle on the database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Connections not in use. Bounded by how many calls ran at once, which the blocking pool bounds.
    idle: Mutex<Vec<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let mut conn = connect(path)?;
        migrations::apply(&mut conn)?;
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                idle: Mutex::new(vec![conn]),
            }),
        })
    }

    /// Runs `f` with a connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.with_conn(f)).await?
    }

    /// Runs `f` on the calling thread (for start-up and for code already on a blocking thread).
    pub fn call_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.inner.with_conn(f)
    }

    /// A cheap query that fails when the database is unusable (health checks).
    pub async fn ping(&self) -> bool {
        self.call(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .is_ok()
    }
}

impl Inner {
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(&self.path)?,
        };
        let result = f(&mut conn);
        // A connection left inside a transaction (a panic-free early return cannot do that with
        // rusqlite's Transaction guard, but be sure) is not returned to the pool.
        if conn.is_autocommit() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
        result
    }
}

fn connect(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// The current time as RFC 3339 (UTC), the format every timestamp is stored and sent in.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Limits as stored (JSON); unreadable or absent text is no override at all.
pub fn parse_limits(text: Option<&str>) -> nuage_shared::LimitOverrides {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// `NULL` for no override at all, else JSON.
pub fn limits_json(l: &nuage_shared::LimitOverrides) -> Option<String> {
    (*l != nuage_shared::LimitOverrides::default())
        .then(|| serde_json::to_string(l).unwrap_or_default())
}

/// A typed id (`VmId`, `UserId`, …) from a TEXT column.
pub(crate) fn id<T: From<String>>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T> {
    Ok(T::from(r.get::<_, String>(i)?))
}

/// A typed id from a nullable TEXT column.
pub(crate) fn opt_id<T: From<String>>(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<Option<T>> {
    Ok(r.get::<_, Option<String>>(i)?.map(T::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nuage.db");
        let db = Db::open(&path).unwrap();
        assert!(db.ping().await);
        drop(db);
        // A second open finds the schema current and changes nothing.
        let db = Db::open(&path).unwrap();
        let version: i64 = db
            .call(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(version, migrations::LATEST);
    }
}
