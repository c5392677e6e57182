//! Typed XML for libvirt's snapshots (`<domainsnapshot>`) and push-mode backups
//! (`<domainbackup>`), and what a backup job reports.

use std::path::Path;

use serde::Serialize;

use super::HvError;

#[derive(Serialize)]
#[serde(rename = "domainsnapshot")]
struct XmlSnapshot<'a> {
    name: &'a str,
    memory: XmlSnapshotMode,
    disks: XmlSnapshotDisks<'a>,
}

#[derive(Serialize)]
struct XmlSnapshotMode {
    #[serde(rename = "@snapshot")]
    snapshot: &'static str,
}

#[derive(Serialize)]
struct XmlSnapshotDisks<'a> {
    disk: Vec<XmlSnapshotDisk<'a>>,
}

#[derive(Serialize)]
struct XmlSnapshotDisk<'a> {
    #[serde(rename = "@name")]
    name: &'a str,
    #[serde(rename = "@snapshot")]
    snapshot: &'static str,
}

/// An internal snapshot (inside the qcow2 file) of the disk `disk`, other disks left out
/// (`skip`, e.g. the read-only seed), with the guest's memory when `memory`.
pub fn snapshot_xml(
    name: &str,
    disk: &str,
    skip: &[&str],
    memory: bool,
) -> Result<String, HvError> {
    let mut disks = vec![XmlSnapshotDisk {
        name: disk,
        snapshot: "internal",
    }];
    disks.extend(skip.iter().map(|d| XmlSnapshotDisk {
        name: d,
        snapshot: "no",
    }));
    let doc = XmlSnapshot {
        name,
        memory: XmlSnapshotMode {
            snapshot: if memory { "internal" } else { "no" },
        },
        disks: XmlSnapshotDisks { disk: disks },
    };
    quick_xml::se::to_string(&doc).map_err(HvError::Xml)
}

#[derive(Serialize)]
#[serde(rename = "domainbackup")]
struct XmlBackup<'a> {
    #[serde(rename = "@mode")]
    mode: &'static str,
    disks: XmlBackupDisks<'a>,
}

#[derive(Serialize)]
struct XmlBackupDisks<'a> {
    disk: Vec<XmlBackupDisk<'a>>,
}

#[derive(Serialize)]
struct XmlBackupDisk<'a> {
    #[serde(rename = "@name")]
    name: &'a str,
    #[serde(rename = "@backup")]
    backup: &'static str,
    #[serde(rename = "@type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    driver: Option<XmlDriver>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<XmlTarget<'a>>,
}

#[derive(Serialize)]
struct XmlDriver {
    #[serde(rename = "@type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct XmlTarget<'a> {
    #[serde(rename = "@file")]
    file: &'a str,
}

/// A full push-mode backup of disk `disk` into a new qcow2 file `target` (flattened: the whole
/// backing chain's content, zero clusters left unallocated), other disks skipped.
pub fn backup_xml(disk: &str, skip: &[&str], target: &Path) -> Result<String, HvError> {
    let file = target
        .to_str()
        .ok_or_else(|| HvError::Refused("the backup path is not UTF-8".into()))?;
    let mut disks = vec![XmlBackupDisk {
        name: disk,
        backup: "yes",
        kind: Some("file"),
        driver: Some(XmlDriver { kind: "qcow2" }),
        target: Some(XmlTarget { file }),
    }];
    disks.extend(skip.iter().map(|d| XmlBackupDisk {
        name: d,
        backup: "no",
        kind: None,
        driver: None,
        target: None,
    }));
    let doc = XmlBackup {
        mode: "push",
        disks: XmlBackupDisks { disk: disks },
    };
    quick_xml::se::to_string(&doc).map_err(HvError::Xml)
}

/// Where a domain's backup job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupProgress {
    Running { done: u64, total: u64 },
    Completed,
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_snapshot_keeps_memory_and_skips_the_seed() {
        let xml = snapshot_xml("s-1", "vda", &["vdb"], true).unwrap();
        assert_eq!(
            xml,
            "<domainsnapshot><name>s-1</name><memory snapshot=\"internal\"/><disks>\
             <disk name=\"vda\" snapshot=\"internal\"/><disk name=\"vdb\" snapshot=\"no\"/>\
             </disks></domainsnapshot>"
        );
        let xml = snapshot_xml("s-2", "vda", &[], false).unwrap();
        assert!(xml.contains("<memory snapshot=\"no\"/>"), "{xml}");
    }

    #[test]
    fn a_backup_writes_the_disk_into_a_qcow2_file() {
        let xml = backup_xml("vda", &["vdb"], Path::new("/d/work/x/disk.qcow2")).unwrap();
        assert_eq!(
            xml,
            "<domainbackup mode=\"push\"><disks><disk name=\"vda\" backup=\"yes\" type=\"file\">\
             <driver type=\"qcow2\"/><target file=\"/d/work/x/disk.qcow2\"/></disk>\
             <disk name=\"vdb\" backup=\"no\"/></disks></domainbackup>"
        );
    }
}
