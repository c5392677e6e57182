//! The portable backup archive: a plain tar with three members, in this order:
//!
//! - `nuage-vm.json`: the server's description (the app layer's own JSON);
//! - `disk.qcow2.zst`: the disk, flattened into a standalone qcow2 (unallocated and zero clusters
//!   take no room: sparse-aware) and compressed with zstd;
//! - `SHA256SUMS`: the SHA-256 of both members, in `sha256sum`'s format.
//!
//! Any `tar` lists and extracts it, and `sha256sum -c SHA256SUMS` checks it. Reading verifies
//! every checksum before the caller may use anything, and refuses anything else: unknown,
//! missing, repeated or oversized members, a truncated or tampered stream.
//!
//! Architecture invariant: files and streams only; no libvirt, no SQL, no HTTP.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

pub const DESCRIPTION: &str = "nuage-vm.json";
pub const DISK: &str = "disk.qcow2.zst";
pub const SUMS: &str = "SHA256SUMS";
const BLOCK: u64 = 512;
/// [`BLOCK`] as a buffer length.
const BLOCK_LEN: usize = 512;
const CHUNK: usize = 1 << 20;
/// zstd level 1: the archive is written at disk speed; higher levels gain little on disk images.
const LEVEL: i32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive is not one we accept; the sentence says why (for the user).
    #[error("{0}")]
    Invalid(String),
    #[error("cancelled")]
    Cancelled,
    /// The disk would not fit on this host's disk (for the user).
    #[error("{0}")]
    NoRoom(String),
    #[error("{what}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> ArchiveError {
    move |source| ArchiveError::Io { what, source }
}

/// Reports progress (done, total) and says whether to go on.
pub struct Progress<'a> {
    pub cancel: &'a AtomicBool,
    pub report: &'a (dyn Fn(u64, u64) + Sync),
}

impl Progress<'_> {
    fn step(&self, done: u64, total: u64) -> Result<(), ArchiveError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(ArchiveError::Cancelled);
        }
        (self.report)(done, total);
        Ok(())
    }
}

/// What [`write`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    /// SHA-256 of the disk member, as listed in `SHA256SUMS`.
    pub disk_sha256: String,
}

/// A writer that hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(path: &str, size: u64) -> Result<tar::Header, ArchiveError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(io_err("name a member"))?;
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

fn pad(w: &mut impl Write, len: u64) -> io::Result<()> {
    let rest = (BLOCK - len % BLOCK) % BLOCK;
    w.write_all(&vec![0; rest as usize])
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes an archive of `description` and the standalone qcow2 `disk` to `out` (created, mode
/// 0600, synced to disk before returning).
pub fn write(
    out: &Path,
    description: &[u8],
    disk: &Path,
    progress: &Progress<'_>,
) -> Result<Written, ArchiveError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(io_err("create the archive"))?;
    let mut w = BufWriter::with_capacity(CHUNK, file);
    let w_err = io_err("write the archive");

    let desc_sum = hex(Sha256::digest(description));
    w.write_all(header(DESCRIPTION, description.len() as u64)?.as_bytes())
        .and_then(|()| w.write_all(description))
        .and_then(|()| pad(&mut w, description.len() as u64))
        .map_err(io_err("write the archive"))?;

    // The disk member's size is known only once compressed: a placeholder header now, the real
    // one written over it afterwards.
    let at = w.stream_position().map_err(io_err("write the archive"))?;
    w.write_all(&[0; BLOCK_LEN]).map_err(w_err)?;
    let mut src = File::open(disk).map_err(io_err("open the disk"))?;
    let total = src.metadata().map_err(io_err("open the disk"))?.len();
    let mut enc = zstd::stream::write::Encoder::new(
        Hashing {
            inner: &mut w,
            hash: Sha256::new(),
            len: 0,
        },
        LEVEL,
    )
    .map_err(io_err("start compressing"))?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    enc.multithread(threads)
        .map_err(io_err("start compressing"))?;
    enc.include_checksum(true)
        .map_err(io_err("start compressing"))?;
    let mut buf = vec![0; CHUNK];
    let mut done = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(io_err("read the disk"))?;
        if n == 0 {
            break;
        }
        enc.write_all(&buf[..n])
            .map_err(io_err("compress the disk"))?;
        done += n as u64;
        progress.step(done, total)?;
    }
    let hashing = enc.finish().map_err(io_err("compress the disk"))?;
    let (disk_len, disk_sum) = (hashing.len, hex(hashing.hash.finalize()));
    pad(&mut w, disk_len).map_err(io_err("write the archive"))?;
    let end = w.stream_position().map_err(io_err("write the archive"))?;
    w.seek(SeekFrom::Start(at))
        .and_then(|_| {
            w.write_all(
                header(DISK, disk_len)
                    .map_err(|e| io::Error::other(e.to_string()))?
                    .as_bytes(),
            )
        })
        .and_then(|()| w.seek(SeekFrom::Start(end)).map(drop))
        .map_err(io_err("write the archive"))?;

    let sums = format!("{desc_sum}  {DESCRIPTION}\n{disk_sum}  {DISK}\n");
    w.write_all(header(SUMS, sums.len() as u64)?.as_bytes())
        .and_then(|()| w.write_all(sums.as_bytes()))
        .and_then(|()| pad(&mut w, sums.len() as u64))
        .and_then(|()| w.write_all(&[0; 2 * BLOCK_LEN]))
        .map_err(io_err("write the archive"))?;
    let file = w.into_inner().map_err(|e| ArchiveError::Io {
        what: "write the archive",
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err("sync the archive"))?;
    let size = file.metadata().map_err(io_err("stat the archive"))?.len();
    Ok(Written {
        size,
        disk_sha256: disk_sum,
    })
}

/// What [`read`] unpacked, verified.
#[derive(Debug)]
pub struct Unpacked {
    pub description: Vec<u8>,
    /// The decompressed standalone qcow2, inside the directory given to [`read`].
    pub disk: PathBuf,
    pub disk_sha256: String,
}

/// A reader that counts, reports progress and stops when cancelled.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    progress: &'a Progress<'a>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.progress.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress.report)(self.done, self.total);
        Ok(n)
    }
}

/// A writer that refuses to grow past `limit` bytes (a decompression bomb stops here).
struct Capped<W> {
    inner: W,
    left: u64,
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "disk too large",
            ));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn invalid(why: impl Into<String>) -> ArchiveError {
    ArchiveError::Invalid(why.into())
}

/// Reads an archive from `input` (`total` bytes when known, for progress), unpacking the disk
/// into `dir` (whose files the caller removes on error). Every checksum is verified before this
/// returns `Ok`. `max_disk_bytes` is given the description (the first member) and says how large
/// the disk may decompress to (from the size the description states), or refuses: the disk
/// stops there, whatever its compressed stream claims.
pub fn read(
    input: impl Read,
    total: u64,
    dir: &Path,
    max_disk_bytes: &dyn Fn(&[u8]) -> Result<u64, ArchiveError>,
    progress: &Progress<'_>,
) -> Result<Unpacked, ArchiveError> {
    let counting = Counting {
        inner: input,
        done: 0,
        total,
        progress,
    };
    let mut archive = tar::Archive::new(counting);
    let cut = |e: io::Error| {
        if e.kind() == io::ErrorKind::Interrupted && progress.cancel.load(Ordering::Relaxed) {
            ArchiveError::Cancelled
        } else {
            invalid(format!(
                "The archive cannot be read: it is cut short or damaged ({e})."
            ))
        }
    };
    let mut description: Option<(Vec<u8>, String)> = None;
    let mut disk: Option<(PathBuf, String)> = None;
    let mut sums: Option<String> = None;
    for entry in archive.entries().map_err(cut)? {
        let mut entry = entry.map_err(cut)?;
        let name = entry.path().map_err(cut)?.to_string_lossy().into_owned();
        let size = entry.header().size().map_err(cut)?;
        match name.as_str() {
            DESCRIPTION if description.is_none() && disk.is_none() => {
                if size > 1 << 20 {
                    return Err(invalid("The archive's description is too large."));
                }
                let mut v = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                entry.read_to_end(&mut v).map_err(cut)?;
                let sum = hex(Sha256::digest(&v));
                description = Some((v, sum));
            }
            DISK if description.is_some() && disk.is_none() => {
                let max = max_disk_bytes(description.as_ref().map_or(&[][..], |d| &d.0))?;
                let path = dir.join("disk.qcow2");
                let file = {
                    use std::os::unix::fs::OpenOptionsExt;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .map_err(io_err("create the disk"))?
                };
                let mut hash = Sha256::new();
                let mut dec = zstd::stream::write::Decoder::new(Capped {
                    inner: BufWriter::with_capacity(CHUNK, file),
                    left: max,
                })
                .map_err(io_err("start decompressing"))?;
                let mut buf = vec![0; CHUNK];
                loop {
                    let n = entry.read(&mut buf).map_err(cut)?;
                    if n == 0 {
                        break;
                    }
                    hash.update(&buf[..n]);
                    dec.write_all(&buf[..n]).map_err(|e| match e.kind() {
                        io::ErrorKind::FileTooLarge => {
                            invalid("The archive's disk is larger than its description allows.")
                        }
                        io::ErrorKind::StorageFull | io::ErrorKind::PermissionDenied => {
                            ArchiveError::Io {
                                what: "write the disk",
                                source: e,
                            }
                        }
                        _ => invalid(
                            "The archive's disk is not valid zstd data: it was changed or damaged.",
                        ),
                    })?;
                }
                dec.flush()
                    .map_err(|_| invalid("The archive's disk is cut short or damaged."))?;
                let file = dec
                    .into_inner()
                    .inner
                    .into_inner()
                    .map_err(|e| ArchiveError::Io {
                        what: "write the disk",
                        source: e.into_error(),
                    })?;
                file.sync_all().map_err(io_err("sync the disk"))?;
                disk = Some((path, hex(hash.finalize())));
            }
            SUMS if disk.is_some() && sums.is_none() => {
                if size > 4096 {
                    return Err(invalid("The archive's checksum list is too large."));
                }
                let mut s = String::new();
                entry
                    .read_to_string(&mut s)
                    .map_err(|_| invalid("The archive's checksum list is not text."))?;
                sums = Some(s);
            }
            other => {
                return Err(invalid(format!(
                    "The archive holds an unexpected member '{}': it is not a Nuage backup, or it \
                     was changed.",
                    other.chars().take(100).collect::<String>()
                )))
            }
        }
    }
    let (Some((description, desc_sum)), Some((disk, disk_sum)), Some(sums)) =
        (description, disk, sums)
    else {
        return Err(invalid(
            "The archive is incomplete: it lacks its description, its disk or its checksums.",
        ));
    };
    let listed = |member: &str| {
        sums.lines().find_map(|l| {
            let (sum, name) = l.split_once("  ")?;
            (name == member).then(|| sum.to_owned())
        })
    };
    for (member, actual) in [(DESCRIPTION, &desc_sum), (DISK, &disk_sum)] {
        if listed(member).as_deref() != Some(actual.as_str()) {
            return Err(invalid(format!(
                "The archive's {member} does not match its checksum: it was changed or damaged."
            )));
        }
    }
    Ok(Unpacked {
        description,
        disk,
        disk_sha256: disk_sum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> (AtomicBool, impl Fn(u64, u64) + Sync) {
        (AtomicBool::new(false), |_, _| {})
    }

    fn make(dir: &Path) -> (PathBuf, Vec<u8>) {
        let disk = dir.join("src.qcow2");
        let mut content = vec![0u8; 3 << 20];
        for (i, b) in content.iter_mut().enumerate().take(1 << 20) {
            *b = u8::try_from(i * 7 % 251).unwrap();
        }
        std::fs::write(&disk, &content).unwrap();
        let out = dir.join("a.tar");
        let (cancel, report) = quiet();
        let p = Progress {
            cancel: &cancel,
            report: &report,
        };
        write(&out, br#"{"name":"web"}"#, &disk, &p).unwrap();
        (out, content)
    }

    fn unpack(bytes: &[u8], dir: &Path) -> Result<Unpacked, ArchiveError> {
        let (cancel, report) = quiet();
        let p = Progress {
            cancel: &cancel,
            report: &report,
        };
        read(bytes, bytes.len() as u64, dir, &|_| Ok(1 << 30), &p)
    }

    #[test]
    fn an_archive_round_trips_and_any_tar_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let (out, content) = make(dir.path());
        let bytes = std::fs::read(&out).unwrap();
        let into = tempfile::tempdir().unwrap();
        let got = unpack(&bytes, into.path()).unwrap();
        assert_eq!(got.description, br#"{"name":"web"}"#);
        assert_eq!(std::fs::read(&got.disk).unwrap(), content);
        // Compressed: 3 MiB with 2 MiB of zeros.
        assert!(bytes.len() < 1 << 20, "{}", bytes.len());
        let listing = std::process::Command::new("tar")
            .arg("tf")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&listing.stdout),
            "nuage-vm.json\ndisk.qcow2.zst\nSHA256SUMS\n"
        );
    }

    #[test]
    fn every_flipped_region_and_every_cut_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (out, _) = make(dir.path());
        let bytes = std::fs::read(&out).unwrap();
        // Flip one byte in each member's data and in each header.
        let data_len = bytes.len() - 1024;
        for at in (0..data_len)
            .step_by(data_len / 40)
            .chain([520, 1030, data_len - 600])
        {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            let into = tempfile::tempdir().unwrap();
            match unpack(&bad, into.path()) {
                Err(ArchiveError::Invalid(_)) => {}
                // A flip in padding or in a header field tar ignores changes nothing we use.
                Ok(u) => assert_eq!(
                    std::fs::read(&u.disk).unwrap(),
                    std::fs::read(dir.path().join("src.qcow2")).unwrap(),
                    "a flip at {at} went unnoticed"
                ),
                Err(e) => panic!("flip at {at}: {e}"),
            }
        }
        for cut in [
            0,
            100,
            512,
            1500,
            bytes.len() / 2,
            data_len - 700,
            data_len - 400,
        ] {
            let into = tempfile::tempdir().unwrap();
            assert!(
                matches!(
                    unpack(&bytes[..cut], into.path()),
                    Err(ArchiveError::Invalid(_))
                ),
                "cut at {cut} accepted"
            );
        }
    }

    #[test]
    fn a_cancelled_write_stops() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("d");
        std::fs::write(&disk, vec![1u8; 4 << 20]).unwrap();
        let cancel = AtomicBool::new(true);
        let p = Progress {
            cancel: &cancel,
            report: &|_, _| {},
        };
        let r = write(&dir.path().join("a.tar"), b"{}", &disk, &p);
        assert!(matches!(r, Err(ArchiveError::Cancelled)));
    }

    #[test]
    fn a_disk_larger_than_its_description_allows_stops_there() {
        let dir = tempfile::tempdir().unwrap();
        let (out, content) = make(dir.path());
        let bytes = std::fs::read(&out).unwrap();
        let (cancel, report) = quiet();
        let p = Progress {
            cancel: &cancel,
            report: &report,
        };
        let into = tempfile::tempdir().unwrap();
        let small = content.len() as u64 / 2;
        let seen = std::sync::Mutex::new(Vec::new());
        let limit = |desc: &[u8]| {
            seen.lock().unwrap().extend_from_slice(desc);
            Ok(small)
        };
        let err = read(&bytes[..], 0, into.path(), &limit, &p).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::Invalid(m) if m.contains("larger than its description")),
            "{err:?}"
        );
        assert_eq!(&*seen.lock().unwrap(), br#"{"name":"web"}"#);
        let written = std::fs::metadata(into.path().join("disk.qcow2"))
            .unwrap()
            .len();
        assert!(written <= small, "{written} > {small}");
        // The caller may refuse from the description alone (e.g. no room for the disk).
        let no_room = |_: &[u8]| Err(ArchiveError::Invalid("no room".into()));
        assert!(matches!(
            read(&bytes[..], 0, into.path(), &no_room, &p),
            Err(ArchiveError::Invalid(m)) if m == "no room"
        ));
    }
}
