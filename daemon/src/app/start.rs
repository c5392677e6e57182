//! Start-up: the data dir, the database, the secrets, the first admin and the hypervisor
//! connection. Every refusal here is a sentence an operator can act on.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::distr::{Alphanumeric, SampleString};

use super::accel;
use super::{auth, App};
use crate::config::{AccelSetting, LibvirtTarget, Settings};
use crate::db::{self, Db};
use crate::hypervisor::accel::{dev_kvm_warning, KvmProbe};
use crate::hypervisor::libvirt::Libvirt;
use crate::hypervisor::Hypervisor;

/// Why the daemon refused to start, for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

fn fail(msg: impl Into<String>) -> StartError {
    StartError(msg.into())
}

/// Prepares everything the daemon needs and returns the shared [`App`]. Blocking: call it before
/// serving, off the async executor.
pub fn start(settings: Settings) -> Result<App, StartError> {
    let passkeys = super::passkeys::Passkeys::new(&settings).map_err(fail)?;
    let data_dir = prepare_data_dir(&settings.data_dir)?;

    let (hv, uri) = connect_libvirt(&settings.libvirt)?;
    let facts = hv
        .host_facts()
        .map_err(|e| fail(format!("libvirt at {uri}: {}", chain(&e))))?;
    let simulated = facts.simulated();
    if simulated {
        tracing::warn!(
            "SIMULATED HYPERVISOR: connected to {uri}; no guest really runs. \
             Start libvirtd (or pass --libvirt-uri qemu:///system) for real virtual servers."
        );
    } else if uri.starts_with("qemu:///system") {
        // QEMU runs as its own user there and must reach the disks below the data dir.
        check_traversable(&data_dir)?;
    }

    let (accel, accel_reason) = if simulated {
        (
            nuage_shared::Accel::Tcg,
            "simulated hypervisor: no guest code runs".to_owned(),
        )
    } else {
        // Asking libvirt for its capabilities can take seconds (it probes QEMU): skip it when
        // the host's own signs already rule KVM out and nobody insisted on it.
        let mut probe = KvmProbe::observe(true);
        if settings.accel == AccelSetting::Kvm
            || (settings.accel == AccelSetting::Auto && probe.host_allows_kvm())
        {
            probe.libvirt_offers_kvm = hv
                .offers_kvm()
                .map_err(|e| fail(format!("libvirt: {}", chain(&e))))?;
        }
        accel::choose(settings.accel, probe).map_err(fail)?
    };
    tracing::info!(%uri, driver = %facts.driver, version = %facts.hypervisor_version,
        ?accel, %accel_reason, "hypervisor connected");
    let mut host_warnings = Vec::new();
    if !simulated && uri.starts_with("qemu:///system") {
        if let Some(why) = dev_kvm_warning() {
            tracing::warn!("{why}");
            host_warnings.push(why);
        }
    }

    let db_path = data_dir.join("nuage.db");
    let db = Db::open(&db_path).map_err(|e| {
        fail(format!(
            "cannot open the database in {}: {}",
            data_dir.display(),
            chain(&e)
        ))
    })?;
    // It holds password hashes and sessions, and so do its journal files.
    for path in [
        db_path.clone(),
        data_dir.join("nuage.db-wal"),
        data_dir.join("nuage.db-shm"),
    ] {
        match fs::set_permissions(&path, fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(fail(format!("cannot restrict {}: {e}", path.display())))
            }
            _ => {}
        }
    }
    let daemon_id = db
        .call_blocking(|c| match db::users::meta_get(c, "daemon_id")? {
            Some(id) => Ok(id),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                db::users::meta_set(c, "daemon_id", &id)?;
                Ok(id)
            }
        })
        .map_err(|e| fail(format!("database: {}", chain(&e))))?;

    let key = load_or_create_secret(&data_dir.join("jwt.key"))?;
    for dir in ["images", "vms"] {
        let d = data_dir.join(dir);
        if !d.exists() {
            fs::DirBuilder::new()
                .mode(0o711)
                .create(&d)
                .map_err(|e| fail(format!("cannot create {}: {e}", d.display())))?;
        }
    }
    super::vms::reconcile(&db, &hv, &daemon_id, &data_dir).map_err(|e| {
        fail(format!(
            "cannot reconcile the database with libvirt: {}",
            chain(&e)
        ))
    })?;
    super::jobs::recover(&db, &hv, &daemon_id, &data_dir)
        .map_err(|e| fail(format!("cannot recover interrupted jobs: {}", chain(&e))))?;
    bootstrap_admin(&db, &data_dir, settings.admin_password.as_deref())?;
    // Only a libvirtd on this machine can be probed for what its kernel enforces.
    let local = !uri.contains("://") || uri.split("://").nth(1).is_some_and(|r| r.starts_with('/'));
    let net =
        super::resources::setup_network(&db, &hv, &daemon_id, &settings.host, simulated, local)
            .map_err(|e| fail(format!("cannot set up the servers' network: {e}")))?;

    Ok(App {
        settings: Settings {
            data_dir,
            ..settings
        },
        db,
        hv: Arc::new(hv),
        libvirt_uri: uri,
        simulated,
        accel,
        accel_reason,
        host_warnings,
        daemon_id,
        auth: auth::Keys::new(&key),
        events: tokio::sync::broadcast::channel(1024).0,
        revocations: tokio::sync::broadcast::channel(1024).0,
        sockets: Default::default(),
        logins: Default::default(),
        codes: Default::default(),
        passkeys,
        anonymous_refusals: Default::default(),
        anonymous_reported: Default::default(),
        password_checks: Default::default(),
        consoles: Default::default(),
        event_tickets: Default::default(),
        net,
        physical: super::resources::Physical {
            cpus: facts.cpus,
            memory_mib: facts.memory_mib,
        },
        metrics: Default::default(),
        jobs: Default::default(),
        turns: Default::default(),
        qemu_pids: Default::default(),
    })
}

/// The full cause chain of an error on one line, for start-up messages and logs.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Creates the data dir and its import dir (mode 0711: others may traverse, not list) and returns
/// its absolute path.
fn prepare_data_dir(dir: &Path) -> Result<PathBuf, StartError> {
    for d in [dir.to_owned(), dir.join("import")] {
        if !d.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(&d)
                .map_err(|e| fail(format!("cannot create data dir {}: {e}", d.display())))?;
        }
    }
    fs::canonicalize(dir).map_err(|e| fail(format!("data dir {}: {e}", dir.display())))
}

/// QEMU under `qemu:///system` runs as an unprivileged user: every directory from `/` down to the
/// data dir must let others traverse it (the execute bit), or guests cannot open their disks.
fn check_traversable(dir: &Path) -> Result<(), StartError> {
    for d in dir.ancestors() {
        let mode = fs::metadata(d)
            .map_err(|e| fail(format!("data dir {}: {e}", d.display())))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            return Err(fail(format!(
                "data dir {} cannot be reached by QEMU, which runs as another user: {} has mode \
                 {:o} without execute permission for others. Run `chmod o+x {}` or choose \
                 another --data-dir.",
                dir.display(),
                d.display(),
                mode & 0o7777,
                d.display()
            )));
        }
    }
    Ok(())
}

fn connect_libvirt(target: &LibvirtTarget) -> Result<(Libvirt, String), StartError> {
    match target {
        LibvirtTarget::Explicit(uri) => Libvirt::connect(uri)
            .map(|hv| (hv, uri.clone()))
            .map_err(|e| fail(format!("cannot connect to libvirt: {}", chain(&e)))),
        LibvirtTarget::Auto => match Libvirt::connect("qemu:///system") {
            Ok(hv) => Ok((hv, "qemu:///system".into())),
            Err(e) => {
                tracing::warn!(cause = %chain(&e), "no libvirtd answers at qemu:///system");
                Libvirt::connect("test:///default")
                    .map(|hv| (hv, "test:///default".into()))
                    .map_err(|e| fail(format!("cannot open test:///default: {}", chain(&e))))
            }
        },
    }
}

/// Reads a 32-byte secret, creating it (mode 0600) on first start. A secret readable by others is
/// tightened back to 0600.
fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, StartError> {
    match fs::read(path) {
        Ok(key) if key.len() >= 32 => {
            let mode = fs::metadata(path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "secret was readable by others; now 0600");
                fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                    .map_err(|e| fail(format!("cannot restrict {}: {e}", path.display())))?;
            }
            Ok(key)
        }
        Ok(_) => Err(fail(format!(
            "{} is shorter than 32 bytes; remove it to regenerate",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            write_private(path, &key)?;
            Ok(key.to_vec())
        }
        Err(e) => Err(fail(format!("cannot read {}: {e}", path.display()))),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StartError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| fail(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))
}

/// On first start (no users at all) creates `admin` with `NUAGE_ADMIN_PASSWORD`, or with a
/// generated password that is printed once and written to `<data-dir>/admin-password` (0600).
fn bootstrap_admin(db: &Db, data_dir: &Path, preset: Option<&str>) -> Result<(), StartError> {
    let users = db
        .call_blocking(|c| db::users::count_users(c))
        .map_err(|e| fail(format!("database: {}", chain(&e))))?;
    if users > 0 {
        return Ok(());
    }
    let (password, generated) = match preset {
        Some(p) => (p.to_owned(), false),
        None => (Alphanumeric.sample_string(&mut rand::rng(), 20), true),
    };
    let hash = auth::hash_password(&password).map_err(|e| fail(format!("hashing: {e}")))?;
    let user = db::users::UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        username: "admin".into(),
        password_hash: hash,
        role: nuage_shared::Role::Admin,
        second_factor: false,
    };
    db.call_blocking(|c| {
        db::users::insert_user_with_quota(
            c,
            &user,
            &nuage_shared::Quota::DEFAULT,
            &db::now_rfc3339(),
        )
    })
    .map_err(|e| fail(format!("cannot create the admin user: {}", chain(&e))))?;
    if generated {
        let file = data_dir.join("admin-password");
        let _ = fs::remove_file(&file);
        write_private(&file, format!("{password}\n").as_bytes())?;
        println!(
            "First start: created user 'admin' with password {password} (also in {}, mode 0600)",
            file.display()
        );
    } else {
        println!("First start: created user 'admin' with the password from NUAGE_ADMIN_PASSWORD");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_others_cannot_traverse_is_refused_with_a_remedy() {
        let tmp = tempfile::tempdir().unwrap();
        let locked = tmp.path().join("locked");
        let data = locked.join("data");
        fs::create_dir_all(&data).unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o711)).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
        let err = check_traversable(&data).unwrap_err().0;
        assert!(
            err.contains(&format!("chmod o+x {}", locked.display())),
            "{err}"
        );
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o711)).unwrap();
        check_traversable(&data).unwrap();
    }

    #[test]
    fn secrets_are_created_private_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("jwt.key");
        let first = load_or_create_secret(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create_secret(&path).unwrap(), first);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
