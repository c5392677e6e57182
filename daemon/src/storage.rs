//! Disk files: validating images with `qemu-img info`, making a VPS disk as a qcow2 linked clone
//! of its image, growing it, and writing the NoCloud seed (a small FAT image labelled `CIDATA`).
//!
//! Architecture invariant: files and `qemu-img` only; no libvirt (that is `hypervisor`), no SQL,
//! no users. Calls block: async callers use `spawn_blocking`.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file is not something we accept; the message is for the user.
    #[error("{0}")]
    Rejected(String),
    #[error("qemu-img {what} failed: {stderr}")]
    QemuImg { what: &'static str, stderr: String },
    #[error("I/O on {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What `qemu-img info` says about a disk image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `qcow2` or `raw`.
    pub format: &'static str,
    pub virtual_size: u64,
    pub actual_size: u64,
}

#[derive(Deserialize)]
struct QemuImgInfo {
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "actual-size", default)]
    actual_size: u64,
    #[serde(rename = "backing-filename")]
    backing_filename: Option<String>,
    #[serde(rename = "data-file", default)]
    data_file: Option<String>,
}

fn qemu_img(what: &'static str, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, StorageError> {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .map_err(|e| StorageError::QemuImg {
            what,
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(StorageError::QemuImg {
            what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Reads and validates an image that a user wants imported: a qcow2 or raw image standing on its
/// own. A qcow2 that names a backing file or an external data file is refused: it would make the
/// daemon read a file of the image author's choosing.
pub fn inspect_image(path: &Path) -> Result<ImageInfo, StorageError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if !meta.is_file() {
        return Err(StorageError::Rejected(
            "The path is not a regular file.".into(),
        ));
    }
    let stdout = qemu_img(
        "info",
        &["info".as_ref(), "--output=json".as_ref(), path.as_os_str()],
    )
    .map_err(|_| {
        StorageError::Rejected("The file is not a disk image qemu-img can read.".into())
    })?;
    let info: QemuImgInfo = serde_json::from_slice(&stdout).map_err(|_| {
        StorageError::Rejected("The file is not a disk image qemu-img can read.".into())
    })?;
    let format = match info.format.as_str() {
        "qcow2" => "qcow2",
        "raw" => "raw",
        other => {
            return Err(StorageError::Rejected(format!(
                "Images must be qcow2 or raw; this one is {other}."
            )))
        }
    };
    if info.backing_filename.is_some() || info.data_file.is_some() {
        return Err(StorageError::Rejected(
            "The image depends on another file (a backing or data file); flatten it first.".into(),
        ));
    }
    if info.virtual_size == 0 {
        return Err(StorageError::Rejected("The image is empty.".into()));
    }
    // qemu-img reads any file as "raw"; a disk is at least a whole number of sectors.
    // (qemu-img rounds a raw file's size up to whole sectors: look at the file itself.)
    if format == "raw" && meta.len() % 512 != 0 {
        return Err(StorageError::Rejected(
            "The file is not a disk image (a raw image is a whole number of 512-byte sectors)."
                .into(),
        ));
    }
    Ok(ImageInfo {
        format,
        virtual_size: info.virtual_size,
        actual_size: info.actual_size,
    })
}

/// Copies an image into the daemon's store, keeping holes (sparse) where the file system allows.
pub fn copy_image(from: &Path, to: &Path) -> Result<(), StorageError> {
    let out = Command::new("cp")
        .arg("--sparse=always")
        .arg("--")
        .arg(from)
        .arg(to)
        .output()
        .map_err(io(to))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(to);
        return Err(StorageError::Io {
            path: to.display().to_string(),
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        });
    }
    Ok(())
}

/// Creates `disk` as a qcow2 linked clone of `base` (which stays read-only and shared), sized
/// `size_gib`. Takes milliseconds whatever the image's size.
pub fn create_linked_clone(
    base: &Path,
    base_format: &str,
    disk: &Path,
    size_gib: u64,
) -> Result<(), StorageError> {
    let size = format!("{size_gib}G");
    qemu_img(
        "create",
        &[
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "-F".as_ref(),
            base_format.as_ref(),
            "-b".as_ref(),
            base.as_os_str(),
            disk.as_os_str(),
            size.as_ref(),
        ],
    )?;
    Ok(())
}

/// Writes the whole content of `disk` (its backing chain included) into `out`, a new standalone
/// qcow2 with unallocated clusters where the content is zero. Stops (and removes `out`) when
/// `cancel` turns true. The disk must not be written meanwhile (its server is stopped).
pub fn flatten(
    disk: &Path,
    out: &Path,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<(), StorageError> {
    let mut child = Command::new("qemu-img")
        .args(["convert", "-q", "-O", "qcow2"])
        .arg(disk)
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(io(out))?;
    loop {
        if let Some(status) = child.try_wait().map_err(io(out))? {
            if status.success() {
                return Ok(());
            }
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            let _ = std::fs::remove_file(out);
            return Err(StorageError::QemuImg {
                what: "convert",
                stderr: stderr.trim().to_owned(),
            });
        }
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(out);
            return Err(StorageError::Rejected("cancelled".into()));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Grows a (stopped) disk to `size_gib`.
pub fn grow(disk: &Path, size_gib: u64) -> Result<(), StorageError> {
    let size = format!("{size_gib}G");
    qemu_img(
        "resize",
        &[
            "resize".as_ref(),
            "-q".as_ref(),
            disk.as_os_str(),
            size.as_ref(),
        ],
    )?;
    Ok(())
}

/// What goes into a VPS's NoCloud seed.
#[derive(Debug, Clone)]
pub struct Seed<'a> {
    pub instance_id: &'a str,
    /// Validated by the caller: `[a-z0-9-]`, 1 to 63 characters.
    pub hostname: &'a str,
    pub ssh_authorized_keys: &'a [String],
    pub password: Option<&'a str>,
}

impl Seed<'_> {
    /// `meta-data`: YAML whose values were validated to plain tokens.
    fn meta_data(&self) -> String {
        format!(
            "instance-id: {}\nlocal-hostname: {}\n",
            self.instance_id, self.hostname
        )
    }

    /// `user-data`: `#cloud-config` followed by JSON, which YAML reads as-is, so no user string
    /// (an SSH key comment, a password) can change the document's structure.
    fn user_data(&self) -> String {
        let mut doc = serde_json::json!({
            "hostname": self.hostname,
            "ssh_authorized_keys": self.ssh_authorized_keys,
        });
        if let Some(p) = self.password {
            doc["password"] = p.into();
            doc["chpasswd"] = serde_json::json!({"expire": false});
            doc["ssh_pwauth"] = true.into();
        }
        format!("#cloud-config\n{doc}\n")
    }
}

/// Writes the seed as a 1 MiB FAT image labelled `CIDATA` holding `meta-data` and `user-data`.
pub fn write_seed(path: &Path, seed: &Seed<'_>) -> Result<(), StorageError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path))?;
    file.set_len(1024 * 1024).map_err(io(path))?;
    let fat_io = |source| StorageError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = file;
    fatfs::format_volume(
        &mut file,
        fatfs::FormatVolumeOptions::new().volume_label(*b"CIDATA     "),
    )
    .map_err(fat_io)?;
    {
        let fs = fatfs::FileSystem::new(&mut file, fatfs::FsOptions::new()).map_err(fat_io)?;
        for (name, text) in [
            ("meta-data", seed.meta_data()),
            ("user-data", seed.user_data()),
        ] {
            let mut f = fs.root_dir().create_file(name).map_err(fat_io)?;
            f.truncate().map_err(fat_io)?;
            f.write_all(text.as_bytes()).map_err(fat_io)?;
        }
        fs.unmount().map_err(fat_io)?;
    }
    file.sync_all().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_seed_is_a_fat_volume_labelled_cidata_with_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.img");
        let keys = vec!["ssh-ed25519 AAAA key\"with: yaml\n- injection".to_owned()];
        let seed = Seed {
            instance_id: "id-1",
            hostname: "web-1",
            ssh_authorized_keys: &keys,
            password: Some("p: [x]"),
        };
        write_seed(&path, &seed).unwrap();

        let file = std::fs::File::open(&path).unwrap();
        let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.volume_label().trim(), "CIDATA");
        let read = |name: &str| {
            let mut s = String::new();
            fs.root_dir()
                .open_file(name)
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            s
        };
        assert_eq!(
            read("meta-data"),
            "instance-id: id-1\nlocal-hostname: web-1\n"
        );
        let user = read("user-data");
        let (header, body) = user.split_once('\n').unwrap();
        assert_eq!(header, "#cloud-config");
        let doc: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(doc["ssh_authorized_keys"][0], keys[0]);
        assert_eq!(doc["password"], "p: [x]");
        assert_eq!(doc["hostname"], "web-1");
    }

    #[test]
    fn only_standalone_qcow2_and_raw_images_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("a.raw");
        std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
        let info = inspect_image(&raw).unwrap();
        assert_eq!((info.format, info.virtual_size), ("raw", 1 << 20));

        let base = dir.path().join("base.qcow2");
        let clone = dir.path().join("clone.qcow2");
        qemu_img(
            "create",
            &[
                "create".as_ref(),
                "-q".as_ref(),
                "-f".as_ref(),
                "qcow2".as_ref(),
                base.as_os_str(),
                "64M".as_ref(),
            ],
        )
        .unwrap();
        assert_eq!(inspect_image(&base).unwrap().format, "qcow2");
        create_linked_clone(&base, "qcow2", &clone, 1).unwrap();
        // A clone has a backing file: it may not be imported as an image.
        assert!(matches!(
            inspect_image(&clone),
            Err(StorageError::Rejected(_))
        ));

        let vmdk = dir.path().join("a.vmdk");
        qemu_img(
            "create",
            &[
                "create".as_ref(),
                "-q".as_ref(),
                "-f".as_ref(),
                "vmdk".as_ref(),
                vmdk.as_os_str(),
                "1M".as_ref(),
            ],
        )
        .unwrap();
        assert!(
            matches!(inspect_image(&vmdk), Err(StorageError::Rejected(m)) if m.contains("vmdk"))
        );
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, b"hello, not a disk").unwrap();
        assert!(matches!(
            inspect_image(&text),
            Err(StorageError::Rejected(_))
        ));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            inspect_image(&empty),
            Err(StorageError::Rejected(_))
        ));
        assert!(matches!(
            inspect_image(dir.path()),
            Err(StorageError::Rejected(_))
        ));
    }

    #[test]
    fn a_linked_clone_grows_to_the_asked_size() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.raw");
        std::fs::write(&base, vec![0u8; 1 << 20]).unwrap();
        let disk = dir.path().join("disk.qcow2");
        create_linked_clone(&base, "raw", &disk, 2).unwrap();
        grow(&disk, 3).unwrap();
        let out = qemu_img(
            "info",
            &["info".as_ref(), "--output=json".as_ref(), disk.as_os_str()],
        )
        .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(info["virtual-size"], 3u64 << 30);
        assert_eq!(info["backing-filename"], base.to_str().unwrap());
    }
}
