//! libvirtd, domains and networks on `qemu:///system`, and the processes QEMU runs.

use crate::QEMU_SYSTEM;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Makes sure a libvirtd answers at `qemu:///system`, starting virtlogd and libvirtd if none does
/// (machines without systemd start nothing by themselves).
pub fn ensure_libvirtd() {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    {
        let answers = || {
            Command::new("virsh")
                .args(["-c", QEMU_SYSTEM, "uri"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        // A libvirtd that was just told to stop may still be exiting: start a new one only once
        // no process is left, and keep checking until one answers.
        let running = |name: &str| {
            Command::new("pgrep")
                .args(["-x", name])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers() {
            for daemon in ["virtlogd", "libvirtd"] {
                if !running(daemon) {
                    let _ = Command::new(daemon).arg("-d").status();
                }
            }
            assert!(
                Instant::now() < deadline,
                "libvirtd did not answer at {QEMU_SYSTEM} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Names of the domains on `qemu:///system` that use a file below `dir`, with whether each runs.
pub fn domains_under(dir: &Path) -> Vec<(String, bool)> {
    let Ok(conn) = virt::connect::Connect::open(Some(QEMU_SYSTEM)) else {
        return Vec::new();
    };
    let needle = dir.to_string_lossy().into_owned();
    conn.list_all_domains(0)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.xml_desc(0).is_ok_and(|x| x.contains(&needle)))
        .filter_map(|d| Some((d.name().ok()?, d.is_active().unwrap_or(false))))
        .collect()
}

/// The domain XML of `name` on `qemu:///system` (inactive: the definition for the next boot).
pub fn domain_xml(name: &str, inactive: bool) -> Option<String> {
    let conn = virt::connect::Connect::open(Some(QEMU_SYSTEM)).ok()?;
    let dom = conn.lookup_domain_by_name(name).ok()?;
    dom.xml_desc(if inactive {
        virt::sys::VIR_DOMAIN_XML_INACTIVE
    } else {
        0
    })
    .ok()
}

/// Destroys and undefines every domain on `qemu:///system` that uses a file below `dir`.
pub fn remove_domains_under(dir: &Path) {
    let Ok(conn) = virt::connect::Connect::open(Some(QEMU_SYSTEM)) else {
        return;
    };
    let needle = dir.to_string_lossy().into_owned();
    for dom in conn.list_all_domains(0).unwrap_or_default() {
        let Ok(xml) = dom.xml_desc(0) else { continue };
        if !xml.contains(&needle) {
            continue;
        }
        if dom.is_active().unwrap_or(false) {
            let _ = dom.destroy();
        }
        let _ = dom.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA);
    }
}

/// Stops and undefines a network on `qemu:///system`, if it exists.
pub fn remove_network(name: &str) {
    let Ok(conn) = virt::connect::Connect::open(Some(QEMU_SYSTEM)) else {
        return;
    };
    if let Ok(net) = conn.lookup_network_by_name(name) {
        let _ = net.destroy();
        let _ = net.undefine();
    }
}

/// `virsh -c qemu:///system ARGS`: its standard output, trimmed.
pub fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh")
        .args(["-c", QEMU_SYSTEM])
        .args(args)
        .output()
        .expect("run virsh");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The pid of a running domain's QEMU, from libvirt's pid file.
pub fn qemu_pid(domain: &str) -> Option<i32> {
    std::fs::read_to_string(format!("/run/libvirt/qemu/{domain}.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, …); `None` once the process is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
