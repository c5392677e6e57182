//! Where things live: each server's folder and libvirt domain name, each job's work folder, each
//! backup's archive. Every module that needs a place asks here, so none needs another's module
//! for it (these were the reasons `jobs` named `backups` and `vms`).

use std::path::{Path, PathBuf};

use super::App;

/// The libvirt domain of server `vm_id`.
pub fn domain_name(vm_id: &str) -> String {
    format!("nuage-{vm_id}")
}

/// The server a domain of ours belongs to; `None` for a domain that is not ours.
pub fn vm_id_of(domain: &str) -> Option<&str> {
    domain.strip_prefix("nuage-")
}

/// A server's folder: its disk, its seed, its serial log.
pub fn vm_dir(data_dir: &Path, vm_id: &str) -> PathBuf {
    data_dir.join("vms").join(vm_id)
}

/// Where every job's work folder lives.
pub fn work_root(data_dir: &Path) -> PathBuf {
    data_dir.join("work")
}

/// Where the backups' archives live.
pub fn backup_store(data_dir: &Path) -> PathBuf {
    data_dir.join("backups")
}

/// Where backup `id`'s archive lives.
pub fn backup_file(data_dir: &Path, id: &str) -> PathBuf {
    backup_store(data_dir).join(format!("{id}.tar"))
}

impl App {
    pub(super) fn vm_dir(&self, id: &str) -> PathBuf {
        vm_dir(&self.settings.data_dir, id)
    }

    /// The folder a job works in (it writes nothing elsewhere).
    pub(super) fn work_dir(&self, job_id: &str) -> PathBuf {
        work_root(&self.settings.data_dir).join(job_id)
    }

    pub(super) fn backup_store(&self) -> PathBuf {
        backup_store(&self.settings.data_dir)
    }

    pub(super) fn backup_file(&self, id: &str) -> PathBuf {
        backup_file(&self.settings.data_dir, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_map_back_to_their_servers_only() {
        assert_eq!(domain_name("abc"), "nuage-abc");
        assert_eq!(vm_id_of("nuage-abc"), Some("abc"));
        assert_eq!(vm_id_of("other"), None);
    }
}
