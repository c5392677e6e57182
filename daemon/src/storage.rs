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

/// The formats we can tell by their first bytes. Anything else is a raw disk.
fn sniff_format(head: &[u8]) -> &'static str {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(0, b"QFI\xfb") {
        match head.get(4..8) {
            Some([0, 0, 0, 2 | 3]) => "qcow2",
            _ => "qcow",
        }
    } else if at(0, b"KDMV") || at(0, b"COWD") || at(0, b"# Disk DescriptorFile") {
        "vmdk"
    } else if at(0, b"QED\0") {
        "qed"
    } else if at(0, b"conectix") {
        "vpc"
    } else if at(0, b"vhdxfile") {
        "vhdx"
    } else if at(64, &[0x7f, 0x10, 0xda, 0xbe]) {
        "vdi"
    } else if at(0, b"LUKS\xba\xbe") {
        "luks"
    } else if at(0, b"WithoutFreeSpace") || at(0, b"WithouFreSpacExt") {
        "parallels"
    } else if at(0, b"Bochs Virtual HD Image") {
        "bochs"
    } else {
        "raw"
    }
}

/// Reads a qcow2 header and refuses every feature that makes QEMU (or `qemu-img`, run by the
/// daemon as root) open or write another file, or that we cannot vouch for: a backing file, an
/// external data file, encryption, unknown incompatible features, a corrupt image. This reads
/// the bytes themselves, so it holds whatever `qemu-img info` prints in whichever version.
fn check_qcow2_header(file: &mut std::fs::File) -> Result<(), StorageError> {
    use std::io::{Seek, SeekFrom};
    let refuse = |why: &str| Err(StorageError::Rejected(why.to_owned()));
    let mut h = [0u8; 104];
    file.seek(SeekFrom::Start(0))
        .map_err(|source| StorageError::Io {
            path: "image".into(),
            source,
        })?;
    let n = read_full(file, &mut h)?;
    let be32 = |o: usize| u32::from_be_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
    let be64 = |o: usize| (u64::from(be32(o)) << 32) | u64::from(be32(o + 4));
    if n < 72 {
        return refuse("The qcow2 header is cut short.");
    }
    let version = be32(4);
    if be64(8) != 0 || be32(16) != 0 {
        return refuse("The image depends on a backing file; flatten it first (qemu-img convert).");
    }
    if be32(32) != 0 {
        return refuse("Encrypted images are not accepted; decrypt it first (qemu-img convert).");
    }
    let (ext_start, header_len) = if version >= 3 {
        if n < 104 {
            return refuse("The qcow2 header is cut short.");
        }
        let incompatible = be64(72);
        // Bit 0 dirty (a refcount repair), 3 compression type, 4 extended L2: QEMU handles
        // those within the file. Bit 1 corrupt, bit 2 external data file, and any bit we do
        // not know are refused.
        if incompatible & (1 << 2) != 0 || be64(88) & (1 << 1) != 0 {
            return refuse(
                "The image keeps its data in another file (an external data file); \
                 convert it to a standalone qcow2 first.",
            );
        }
        if incompatible & (1 << 1) != 0 {
            return refuse("The image is marked corrupt; repair it with qemu-img check -r all.");
        }
        if incompatible & !0b11001 != 0 {
            return refuse("The image uses qcow2 features this host does not accept.");
        }
        let len = be32(100);
        (u64::from(len), len)
    } else {
        (72, 72)
    };
    if !(72..=4096).contains(&header_len) {
        return refuse("The qcow2 header is not valid.");
    }
    // Header extensions: a data file name, an encryption header or a backing format are refused
    // even when the header fields above look innocent.
    file.seek(SeekFrom::Start(ext_start))
        .map_err(|source| StorageError::Io {
            path: "image".into(),
            source,
        })?;
    let mut offset = ext_start;
    for _ in 0..64 {
        let mut ext = [0u8; 8];
        if read_full(file, &mut ext)? < 8 {
            break;
        }
        let kind = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
        let len = u32::from_be_bytes([ext[4], ext[5], ext[6], ext[7]]);
        match kind {
            0 => return Ok(()),
            0x4441_5441 => {
                return refuse(
                    "The image keeps its data in another file (an external data file); \
                     convert it to a standalone qcow2 first.",
                )
            }
            0x0537_be77 => return refuse("Encrypted images are not accepted."),
            0xe279_2aca => return refuse("The image depends on a backing file; flatten it first."),
            _ => {}
        }
        let padded = u64::from(len).div_ceil(8) * 8;
        offset += 8 + padded;
        if offset > 1 << 20 {
            return refuse("The qcow2 header extensions are not valid.");
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|source| StorageError::Io {
                path: "image".into(),
                source,
            })?;
    }
    Ok(())
}

fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> Result<usize, StorageError> {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(StorageError::Io {
                    path: "image".into(),
                    source,
                })
            }
        }
    }
    Ok(n)
}

/// Reads and validates an image that a user wants imported (or that an archive carries): a qcow2
/// or raw image standing on its own. The format is read from the file's first bytes and then
/// named to `qemu-img` (`-f`), never probed by it. A qcow2 that names a backing file, keeps its
/// data in an external data file, is encrypted, or has any child node but its own file is
/// refused: it would make the daemon, and the guest, read or write a file of the image author's
/// choosing. Call it on a file only the daemon can change (a copy in its store).
pub fn inspect_image(path: &Path) -> Result<ImageInfo, StorageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let not_a_file = || StorageError::Rejected("The path is not a regular file.".into());
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => not_a_file(),
            _ => io(path)(e),
        })?;
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    let mut head = [0u8; 512];
    let n = read_full(&mut file, &mut head)?;
    let format = match sniff_format(&head[..n]) {
        "qcow2" => "qcow2",
        "raw" => "raw",
        other => {
            return Err(StorageError::Rejected(format!(
                "Images must be qcow2 or raw; this one is {other}."
            )))
        }
    };
    if format == "qcow2" {
        check_qcow2_header(&mut file)?;
    }
    let unreadable =
        || StorageError::Rejected("The file is not a disk image qemu-img can read.".into());
    let stdout = qemu_img(
        "info",
        &[
            "info".as_ref(),
            "-f".as_ref(),
            format.as_ref(),
            "--output=json".as_ref(),
            path.as_os_str(),
        ],
    )
    .map_err(|_| unreadable())?;
    let info: QemuImgInfo = serde_json::from_slice(&stdout).map_err(|_| unreadable())?;
    let raw: serde_json::Value = serde_json::from_slice(&stdout).map_err(|_| unreadable())?;
    let data_file = raw
        .pointer("/format-specific/data/data-file")
        .is_some_and(|v| !v.is_null());
    // QEMU 8 and later list an image's child nodes: only its own `file` may be there.
    let foreign_child = raw["children"]
        .as_array()
        .is_some_and(|c| c.iter().any(|child| child["name"] != "file"));
    if info.format != format {
        return Err(unreadable());
    }
    if info.backing_filename.is_some()
        || raw.get("full-backing-filename").is_some()
        || info.data_file.is_some()
        || data_file
        || foreign_child
    {
        return Err(StorageError::Rejected(
            "The image depends on another file (a backing or data file); flatten it first.".into(),
        ));
    }
    if raw["encrypted"] == true {
        return Err(StorageError::Rejected(
            "Encrypted images are not accepted; decrypt it first (qemu-img convert).".into(),
        ));
    }
    if info.virtual_size == 0 {
        return Err(StorageError::Rejected("The image is empty.".into()));
    }
    // A disk is a whole number of sectors (qemu-img rounds a raw file's size up to whole
    // sectors: look at the file itself).
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

/// Opens a file for import without following a symbolic link at its last component, and checks
/// that what was opened is a regular file at `expected` (so a path swapped after it was checked
/// is refused). The caller copies from this descriptor, not from the path.
pub fn open_for_import(expected: &Path) -> Result<std::fs::File, StorageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let refused = || StorageError::Rejected("The path is not a regular file.".into());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(expected)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused(),
            _ => io(expected)(e),
        })?;
    if !file.metadata().map_err(io(expected))?.is_file() {
        return Err(refused());
    }
    // What the descriptor really is, whatever happened to the path's directories meanwhile.
    use std::os::fd::AsRawFd;
    let real =
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(io(expected))?;
    if real != expected {
        return Err(StorageError::Rejected(
            "The file changed while it was imported.".into(),
        ));
    }
    Ok(file)
}

/// Copies an open file into a new file `to` of `mode` (never an existing one), leaving holes
/// where the source has whole zero blocks.
pub fn copy_sparse(from: &mut std::fs::File, to: &Path, mode: u32) -> Result<(), StorageError> {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(to)
        .map_err(io(to))?;
    // The mode as asked, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    out.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io(to))?;
    let copied = (|| -> Result<(), StorageError> {
        from.seek(SeekFrom::Start(0)).map_err(io(to))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = read_full(from, &mut buf)?;
            if n == 0 {
                break;
            }
            if buf[..n].iter().all(|&b| b == 0) {
                out.seek(SeekFrom::Current(n as i64)).map_err(io(to))?;
            } else {
                out.write_all(&buf[..n]).map_err(io(to))?;
            }
            total += n as u64;
        }
        out.set_len(total).map_err(io(to))?;
        out.sync_all().map_err(io(to))
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
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
    // A tenant's disk is the daemon's alone (libvirt gives QEMU's user access while it runs).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(disk, std::fs::Permissions::from_mode(0o600)).map_err(io(disk))
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
        .args(["convert", "-q", "-f", "qcow2", "-O", "qcow2"])
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
            "-f".as_ref(),
            "qcow2".as_ref(),
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
    /// (an SSH key comment, a password) can change the document's structure. The password goes
    /// in as a SHA-512 crypt hash, which cloud-init recognises and applies as a hash.
    fn user_data(&self) -> Result<String, StorageError> {
        let mut doc = serde_json::json!({
            "hostname": self.hostname,
            "ssh_authorized_keys": self.ssh_authorized_keys,
        });
        if let Some(p) = self.password {
            let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
                .map_err(|e| StorageError::Rejected(format!("cannot hash the password: {e:?}")))?;
            let hash = sha_crypt::sha512_simple(p, &params)
                .map_err(|e| StorageError::Rejected(format!("cannot hash the password: {e:?}")))?;
            doc["password"] = hash.into();
            doc["chpasswd"] = serde_json::json!({"expire": false});
            doc["ssh_pwauth"] = true.into();
        }
        Ok(format!("#cloud-config\n{doc}\n"))
    }
}

/// Writes the seed as a 1 MiB FAT image labelled `CIDATA` holding `meta-data` and `user-data`,
/// readable by the daemon only (libvirt gives QEMU's user access while the domain runs).
pub fn write_seed(path: &Path, seed: &Seed<'_>) -> Result<(), StorageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let user_data = seed.user_data()?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
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
        for (name, text) in [("meta-data", seed.meta_data()), ("user-data", user_data)] {
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
        // Only a SHA-512 crypt hash of the password, which verifies, and no plain text.
        let hash = doc["password"].as_str().unwrap();
        assert!(hash.starts_with("$6$"), "{hash}");
        assert!(sha_crypt::sha512_check("p: [x]", hash).is_ok());
        assert!(!user.contains("p: [x]"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
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

    fn qemu_img_create(args: &[&str]) {
        let args: Vec<&std::ffi::OsStr> = std::iter::once("create".as_ref())
            .chain(args.iter().map(|a| a.as_ref()))
            .collect();
        qemu_img("create", &args).unwrap();
    }

    /// A qcow2 whose data lives in another file (`data_file`) would make nuaged's `qemu-img
    /// resize` extend that file and hand it to the guest read-write as its disk.
    #[test]
    fn images_that_reach_another_file_are_refused_and_the_file_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        let evil = dir.path().join("evil.qcow2");
        // qemu-img makes the data file; the canary's content is written after it.
        qemu_img_create(&[
            "-q",
            "-f",
            "qcow2",
            "-o",
            &format!("data_file={},data_file_raw=on", canary.display()),
            evil.to_str().unwrap(),
            "1M",
        ]);
        std::fs::write(&canary, b"host secret").unwrap();
        let err = inspect_image(&evil).unwrap_err();
        assert!(
            matches!(&err, StorageError::Rejected(m) if m.contains("data file")),
            "{err:?}"
        );
        assert_eq!(std::fs::read(&canary).unwrap(), b"host secret");

        // An encrypted image and a symbolic link are refused too.
        let secret = dir.path().join("secret.qcow2");
        qemu_img_create(&[
            "-q",
            "--object",
            "secret,id=s0,data=password",
            "-f",
            "qcow2",
            "-o",
            "encrypt.format=luks,encrypt.key-secret=s0",
            secret.to_str().unwrap(),
            "1M",
        ]);
        assert!(
            matches!(inspect_image(&secret), Err(StorageError::Rejected(m)) if m.contains("ncrypted"))
        );
        let link = dir.path().join("link.raw");
        std::fs::write(dir.path().join("target.raw"), vec![0u8; 4096]).unwrap();
        std::os::unix::fs::symlink(dir.path().join("target.raw"), &link).unwrap();
        assert!(matches!(
            inspect_image(&link),
            Err(StorageError::Rejected(_))
        ));
        assert!(matches!(
            open_for_import(&link),
            Err(StorageError::Rejected(_))
        ));
        // A qcow2 header bit flipped to "external data file" by hand is seen without qemu-img.
        let plain = dir.path().join("plain.qcow2");
        qemu_img_create(&["-q", "-f", "qcow2", plain.to_str().unwrap(), "1M"]);
        let mut bytes = std::fs::read(&plain).unwrap();
        bytes[79] |= 1 << 2;
        std::fs::write(&plain, &bytes).unwrap();
        assert!(
            matches!(inspect_image(&plain), Err(StorageError::Rejected(m)) if m.contains("data file"))
        );
    }

    #[test]
    fn a_sparse_copy_keeps_the_content_and_the_holes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.raw");
        let mut data = vec![0u8; 8 << 20];
        data[3 << 20] = 7;
        data[(8 << 20) - 1] = 9;
        std::fs::write(&src, &data).unwrap();
        let out = dir.path().join("out.raw");
        let mut f = open_for_import(&src).unwrap();
        copy_sparse(&mut f, &out, 0o600).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), data);
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&out).unwrap();
        assert!(
            meta.blocks() * 512 < 4 << 20,
            "holes kept: {}",
            meta.blocks()
        );
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert!(
            copy_sparse(&mut f, &out, 0o600).is_err(),
            "never over an existing file"
        );
    }
}
