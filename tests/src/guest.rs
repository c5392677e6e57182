//! The test guests' images, guests booted straight through libvirt, and what their disks hold.

use crate::scratch::make_reachable;
use crate::{ensure_libvirtd, target_dir, workspace_root, Scratch, QEMU_SYSTEM};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The test guest's base image, built (or found cached) under `target/test-guest`.
pub fn test_guest_image() -> PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let out = target_dir().join("test-guest");
            let status = Command::new("bash")
                .arg(workspace_root().join("tests/guest/build.sh"))
                .arg(&out)
                .status()
                .expect("run tests/guest/build.sh");
            assert!(status.success(), "building the test guest failed");
            let image = out.join("base.qcow2");
            // QEMU runs as another user and reads the image as a backing file.
            make_reachable(&image);
            image
        })
        .clone()
}

/// The real distribution guest (a Debian 12 cloud image from Debian's packages, with
/// cloud-init), built (or found cached) under `target/test-guest` by `tests/guest/build-debian.sh`.
pub fn debian_guest_image() -> PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let out = target_dir().join("test-guest");
            let status = Command::new("bash")
                .arg(workspace_root().join("tests/guest/build-debian.sh"))
                .arg(&out)
                .status()
                .expect("run tests/guest/build-debian.sh");
            assert!(status.success(), "building the Debian guest failed");
            let image = out.join("debian.qcow2");
            make_reachable(&image);
            image
        })
        .clone()
}

/// The SHA-256 of what a guest sees on `disk` (its whole backing chain, read as raw bytes; shared
/// read, so a running guest's disk can be read too).
pub fn content_hash(disk: &Path) -> String {
    let scratch = Scratch::new("nuage-hash-");
    let raw = scratch.path().join("disk.raw");
    let out = Command::new("qemu-img")
        .args(["convert", "-U", "-O", "raw"])
        .arg(disk)
        .arg(&raw)
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "qemu-img convert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("sha256sum")
        .arg(&raw)
        .output()
        .expect("run sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_owned()
}

/// Writes 1 MiB of `pattern` at `offset_mib` into a stopped server's disk, as its guest would.
pub fn scribble(disk: &Path, pattern: u8, offset_mib: u64) {
    let out = Command::new("qemu-io")
        .args(["-f", "qcow2", "-c"])
        .arg(format!("write -P {pattern} {offset_mib}M 1M"))
        .arg(disk)
        .output()
        .expect("run qemu-io");
    assert!(
        out.status.success(),
        "qemu-io: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A guest booted straight through libvirt (not through the daemon) from a linked clone of the
/// test image, with an optional NoCloud seed, its serial port written to a file.
pub struct Guest {
    pub name: String,
    pub serial_log: PathBuf,
    pub scratch: Scratch,
}

impl Guest {
    pub fn boot(name_prefix: &str, seed_hostname: Option<&str>) -> Guest {
        use nuage_daemon::hypervisor::domain::{DiskSpec, DomainSpec, DomainTag};
        use nuage_daemon::hypervisor::{libvirt::Libvirt, Hypervisor};
        ensure_libvirtd();
        let base = test_guest_image();
        let scratch = Scratch::new("nuage-guest-");
        let dir = scratch.path();
        let disk = dir.join("disk.qcow2");
        let status = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&base)
            .arg(&disk)
            .arg("1G")
            .status()
            .expect("run qemu-img");
        assert!(status.success(), "qemu-img create failed");
        let mut disks = vec![DiskSpec {
            path: disk,
            format: "qcow2",
            target: "vda".into(),
            readonly: false,
        }];
        if let Some(host) = seed_hostname {
            let seed = dir.join("seed.img");
            make_fat_seed(&seed, host);
            disks.push(DiskSpec {
                path: seed,
                format: "raw",
                target: "vdb".into(),
                readonly: true,
            });
        }
        let uuid = uuid_v4();
        let name = format!("{name_prefix}-{}", &uuid[..8]);
        let serial_log = dir.join("serial.log");
        let hv = Libvirt::connect(QEMU_SYSTEM).expect("connect to libvirt");
        let spec = DomainSpec {
            name: name.clone(),
            uuid,
            domain_type: hv.domain_type(nuage_shared::Accel::Tcg),
            vcpus: 1,
            memory_mib: 256,
            disks,
            serial_log: Some(serial_log.clone()),
            tag: DomainTag {
                daemon: "e2e-harness".into(),
                owner: String::new(),
                vps: String::new(),
            },
            limits: Default::default(),
            nic: None,
            vnc_loopback: false,
        };
        let guest = Guest {
            name: name.clone(),
            serial_log,
            scratch,
        };
        hv.define(&spec.to_xml().expect("domain XML"))
            .expect("define the guest");
        hv.start(&name).expect("start the guest");
        guest
    }

    /// Waits until the serial output contains `marker`; returns how long it took.
    pub fn wait_for_serial(&self, marker: &str, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.serial_log).unwrap_or_default();
            if text.contains(marker) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{marker} not seen within {timeout:?}; serial output:\n{text}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A NoCloud seed made with the system's FAT tools (the daemon builds its own with a library).
pub(crate) fn make_fat_seed(path: &Path, hostname: &str) {
    let dir = path.parent().unwrap();
    std::fs::write(
        dir.join("meta-data"),
        format!("instance-id: e2e\nlocal-hostname: {hostname}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("user-data"), "#cloud-config\n").unwrap();
    let run = |cmd: &mut Command| assert!(cmd.status().expect("run a seed tool").success());
    run(Command::new("truncate").args(["-s", "2M"]).arg(path));
    run(Command::new("mkfs.vfat")
        .args(["-n", "CIDATA"])
        .arg(path)
        .stdout(Stdio::null()));
    run(Command::new("mcopy")
        .arg("-i")
        .arg(path)
        .arg(dir.join("meta-data"))
        .arg(dir.join("user-data"))
        .arg("::"));
}

pub(crate) fn uuid_v4() -> String {
    let b: [u8; 16] = std::fs::read("/proc/sys/kernel/random/uuid")
        .ok()
        .and_then(|v| String::from_utf8(v).ok())
        .map(|s| {
            let hex: String = s.trim().chars().filter(|c| *c != '-').collect();
            let mut out = [0u8; 16];
            for (i, o) in out.iter_mut().enumerate() {
                *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
            }
            out
        })
        .unwrap_or([0; 16]);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Drop for Guest {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- serial output of {} ----\n{}",
                self.name,
                std::fs::read_to_string(&self.serial_log).unwrap_or_default()
            );
        }
    }
}
