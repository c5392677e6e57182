//! Schema migrations, applied in order at start. `PRAGMA user_version` records how many have run.
//! A migration, once released, is never edited: add a new one.

use rusqlite::Connection;

use super::DbError;

const MIGRATIONS: &[&str] = &[
    // 1: identity.
    "CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ('admin', 'user')),
        created_at    TEXT NOT NULL
    );
    -- One row per issued login token (by its JWT id), so that logout and user deletion
    -- revoke at once.
    CREATE TABLE sessions (
        jti        TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_user ON sessions(user_id);",
    // 2: quotas, images, servers, snapshots, the audit log.
    "CREATE TABLE quotas (
        user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        vcpus      INTEGER NOT NULL CHECK (vcpus >= 0),
        memory_mib INTEGER NOT NULL CHECK (memory_mib >= 0),
        disk_gib   INTEGER NOT NULL CHECK (disk_gib >= 0),
        vms        INTEGER NOT NULL CHECK (vms >= 0),
        snapshots  INTEGER NOT NULL CHECK (snapshots >= 0)
    );
    INSERT INTO quotas (user_id, vcpus, memory_mib, disk_gib, vms, snapshots)
        SELECT id, 4, 4096, 40, 2, 4 FROM users;
    CREATE TABLE images (
        id                 TEXT PRIMARY KEY,
        name               TEXT NOT NULL UNIQUE,
        format             TEXT NOT NULL CHECK (format IN ('qcow2', 'raw')),
        -- The image's file in <data-dir>/images.
        path               TEXT NOT NULL,
        virtual_size_bytes INTEGER NOT NULL,
        os                 TEXT,
        created_at         TEXT NOT NULL
    );
    -- Deliberately no ON DELETE CASCADE from users or images: a user who still owns servers, or
    -- an image servers still stand on, cannot be deleted by accident.
    CREATE TABLE vms (
        id             TEXT PRIMARY KEY,
        owner_id       TEXT NOT NULL REFERENCES users(id),
        -- The daemon (host) that holds the server, for when one panel drives many hosts.
        host_id        TEXT NOT NULL,
        name           TEXT NOT NULL,
        state          TEXT NOT NULL,
        vcpus          INTEGER NOT NULL,
        memory_mib     INTEGER NOT NULL,
        disk_gib       INTEGER NOT NULL,
        image_id       TEXT NOT NULL REFERENCES images(id),
        hostname       TEXT NOT NULL,
        -- vCPUs and memory that take effect at the next boot (NULL: none pending). Quota
        -- counts the larger of current and pending.
        pending_vcpus  INTEGER,
        pending_memory INTEGER,
        created_at     TEXT NOT NULL,
        UNIQUE (owner_id, name)
    );
    CREATE INDEX vms_owner ON vms(owner_id);
    CREATE TABLE snapshots (
        id         TEXT PRIMARY KEY,
        vm_id      TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (vm_id, name)
    );
    CREATE TABLE audit (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        at            TEXT NOT NULL,
        user_id       TEXT,
        username      TEXT,
        action        TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        resource_id   TEXT,
        vm_id         TEXT,
        client        TEXT,
        outcome       TEXT NOT NULL,
        detail        TEXT
    );
    CREATE INDEX audit_at ON audit(at);
    -- Personal API tokens: only a SHA-256 of the secret is kept (the secret is 256 random bits).
    CREATE TABLE api_tokens (
        id           TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        secret_hash  TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        expires_at   TEXT,
        last_used_at TEXT
    );
    CREATE INDEX api_tokens_user ON api_tokens(user_id);",
    // 3: resource limits, addresses, monthly traffic.
    "-- Limits an admin set (JSON LimitOverrides; NULL: none), on a user or on one server.
    ALTER TABLE users ADD COLUMN limits TEXT;
    ALTER TABLE vms ADD COLUMN limits TEXT;
    -- One IPv4 address (and MAC) per server, from the daemon's network's pool. The primary key
    -- makes an address unique under concurrent creates; deleting the server frees it.
    CREATE TABLE addresses (
        network TEXT NOT NULL,
        ip      TEXT NOT NULL,
        mac     TEXT NOT NULL UNIQUE,
        vm_id   TEXT NOT NULL UNIQUE REFERENCES vms(id) ON DELETE CASCADE,
        PRIMARY KEY (network, ip)
    );
    -- Network bytes per server per calendar month (UTC), for bandwidth quotas.
    CREATE TABLE traffic (
        vm_id    TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
        month    TEXT NOT NULL,
        rx_bytes INTEGER NOT NULL DEFAULT 0,
        tx_bytes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (vm_id, month)
    );",
    // 4: snapshots with memory, backups, their schedules, jobs; a server's image becomes
    // optional (a server imported or restored from an archive stands on no image of this host).
    // SQLite cannot drop NOT NULL in place: the table is rebuilt (foreign keys are off while
    // migrations run, see `apply`).
    "CREATE TABLE vms_new (
        id             TEXT PRIMARY KEY,
        owner_id       TEXT NOT NULL REFERENCES users(id),
        host_id        TEXT NOT NULL,
        name           TEXT NOT NULL,
        state          TEXT NOT NULL,
        vcpus          INTEGER NOT NULL,
        memory_mib     INTEGER NOT NULL,
        disk_gib       INTEGER NOT NULL,
        image_id       TEXT REFERENCES images(id),
        hostname       TEXT NOT NULL,
        pending_vcpus  INTEGER,
        pending_memory INTEGER,
        created_at     TEXT NOT NULL,
        limits         TEXT,
        UNIQUE (owner_id, name)
    );
    INSERT INTO vms_new (id, owner_id, host_id, name, state, vcpus, memory_mib, disk_gib,
                         image_id, hostname, pending_vcpus, pending_memory, created_at, limits)
        SELECT id, owner_id, host_id, name, state, vcpus, memory_mib, disk_gib, image_id,
               hostname, pending_vcpus, pending_memory, created_at, limits FROM vms;
    DROP TABLE vms;
    ALTER TABLE vms_new RENAME TO vms;
    CREATE INDEX vms_owner ON vms(owner_id);
    ALTER TABLE snapshots ADD COLUMN with_memory INTEGER NOT NULL DEFAULT 0;
    -- A backup outlives its server (vm_id is kept, not a foreign key): a deleted server can be
    -- restored as new. quota_gib counts against the owner's disk quota.
    CREATE TABLE backups (
        id         TEXT PRIMARY KEY,
        vm_id      TEXT NOT NULL,
        vm_name    TEXT NOT NULL,
        owner_id   TEXT NOT NULL REFERENCES users(id),
        host_id    TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state      TEXT NOT NULL CHECK (state IN ('running', 'ready')),
        size_bytes INTEGER NOT NULL DEFAULT 0,
        quota_gib  INTEGER NOT NULL,
        disk_gib   INTEGER NOT NULL,
        scheduled  INTEGER NOT NULL DEFAULT 0,
        sha256     TEXT
    );
    CREATE INDEX backups_owner ON backups(owner_id);
    CREATE TABLE backup_schedules (
        vm_id    TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
        time     TEXT NOT NULL,
        keep     INTEGER NOT NULL CHECK (keep >= 1),
        next_run TEXT NOT NULL
    );
    CREATE TABLE jobs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        state       TEXT NOT NULL,
        progress    REAL NOT NULL DEFAULT 0,
        error       TEXT,
        owner_id    TEXT NOT NULL,
        vm_id       TEXT,
        backup_id   TEXT,
        created_at  TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX jobs_owner ON jobs(owner_id);",
    // Why a server stopped, and whether it should be running (what a host restart restores).
    "ALTER TABLE vms ADD COLUMN stop_reason TEXT;
    ALTER TABLE vms ADD COLUMN wants_running INTEGER NOT NULL DEFAULT 0;
    UPDATE vms SET wants_running = 1 WHERE state IN ('running', 'paused', 'starting');",
    // What a running job holds of its owner's disk quota (an export's archive while it exists),
    // and one export at a time per server.
    "ALTER TABLE jobs ADD COLUMN quota_gib INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX one_export_per_vm ON jobs(vm_id)
        WHERE kind = 'export' AND state = 'running';",
    // What a server's disk file really holds on the host, GiB (internal snapshots keep old data
    // in it, beyond the disk's size); the disk quota counts the larger of the two.
    "ALTER TABLE vms ADD COLUMN held_gib INTEGER NOT NULL DEFAULT 0;",
    // Account security: a TOTP secret (pending until confirmed, then active) with the last
    // time step accepted (no replay), single-use recovery codes (hashed), what a session is
    // (how it signed in, from where, when last seen and last verified: re-authentication), and
    // a token's scope and client CIDRs.
    "ALTER TABLE users ADD COLUMN totp_secret BLOB;
    ALTER TABLE users ADD COLUMN totp_pending BLOB;
    ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
    CREATE TABLE recovery_codes (
        user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        code_hash TEXT NOT NULL,
        used_at   TEXT,
        PRIMARY KEY (user_id, code_hash)
    );
    ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'password';
    ALTER TABLE sessions ADD COLUMN client TEXT;
    ALTER TABLE sessions ADD COLUMN user_agent TEXT;
    ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
    ALTER TABLE sessions ADD COLUMN verified_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'full'
        CHECK (scope IN ('read', 'full', 'admin'));
    ALTER TABLE api_tokens ADD COLUMN allowed_cidrs TEXT;
    ALTER TABLE api_tokens ADD COLUMN last_client TEXT;
    UPDATE api_tokens SET scope = 'admin'
        WHERE user_id IN (SELECT id FROM users WHERE role = 'admin');",
    // Passkeys: each a WebAuthn credential (webauthn-rs's `Passkey`, as JSON, with its public
    // key and signature counter) under a name its user gave it.
    "CREATE TABLE passkeys (
        id            TEXT PRIMARY KEY,
        user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        credential_id TEXT NOT NULL UNIQUE,
        passkey       TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        last_used_at  TEXT
    );
    CREATE INDEX passkeys_of_user ON passkeys(user_id);",
];

pub const LATEST: i64 = MIGRATIONS.len() as i64;

pub fn apply(conn: &mut Connection) -> Result<(), DbError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > LATEST {
        return Err(DbError::TooNew {
            found: current,
            known: LATEST,
        });
    }
    // Foreign keys off while tables are rebuilt (SQLite's documented procedure: dropping a
    // referenced table with them on would cascade), checked before each commit, on again after.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = (|| {
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(current).unwrap_or(0))
        {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            let broken: i64 =
                tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            if broken > 0 {
                return Err(DbError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                    Some(format!("migration {} broke {broken} references", i + 1)),
                )));
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!(version = i + 1, "database migrated");
        }
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", "ON")?;
    result
}
