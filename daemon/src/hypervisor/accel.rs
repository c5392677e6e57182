//! Choosing how guests run: KVM or TCG.
//!
//! `/dev/kvm` existing is not enough. Some hosts (nested or paravirtual KVM such as `kvm_pvm`)
//! expose a KVM device that cannot run an ordinary guest: the boot spins at 100% system time and
//! prints nothing. So `auto` asks for every sign that KVM can really run a guest, and says which
//! one was missing.

/// What was observed on the host; gathered by [`KvmProbe::observe`]; the app decides with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvmProbe {
    /// `/dev/kvm` can be opened for reading and writing.
    pub dev_kvm_usable: bool,
    /// `/proc/cpuinfo` lists `vmx` or `svm`: the CPU exposes hardware virtualisation.
    pub cpu_has_virt_ext: bool,
    /// The `kvm_pvm` module is loaded: a paravirtual KVM that only runs specially built kernels.
    pub pvm_kvm: bool,
    /// libvirt offers `kvm` domains on this connection.
    pub libvirt_offers_kvm: bool,
}

impl KvmProbe {
    /// Reads the host's signs. `libvirt_offers_kvm` comes from the hypervisor's capabilities.
    pub fn observe(libvirt_offers_kvm: bool) -> KvmProbe {
        let dev_kvm_usable = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_has_virt_ext = cpuinfo
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
        let pvm_kvm = std::path::Path::new("/sys/module/kvm_pvm").exists();
        KvmProbe {
            dev_kvm_usable,
            cpu_has_virt_ext,
            pvm_kvm,
            libvirt_offers_kvm,
        }
    }

    /// The host's own signs (device, CPU flags, no kvm_pvm) allow KVM; libvirt not yet asked.
    pub fn host_allows_kvm(&self) -> bool {
        KvmProbe {
            libvirt_offers_kvm: true,
            ..*self
        }
        .obstacle()
        .is_none()
    }

    /// Why KVM cannot run an ordinary guest here, or `None` when it can.
    pub fn obstacle(&self) -> Option<&'static str> {
        if !self.libvirt_offers_kvm {
            Some("libvirt offers no KVM domains on this host")
        } else if !self.dev_kvm_usable {
            Some("/dev/kvm is missing or cannot be opened")
        } else if self.pvm_kvm {
            Some("the host's KVM is the paravirtual kvm_pvm, which cannot boot ordinary guests")
        } else if !self.cpu_has_virt_ext {
            Some("the CPU exposes no hardware virtualisation (no vmx/svm flag)")
        } else {
            None
        }
    }
}

/// The user QEMU runs as under `qemu:///system` and its groups, as libvirt resolves them: the
/// `user` of `/etc/libvirt/qemu.conf`, else Debian's `libvirt-qemu`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuUser {
    pub name: String,
    pub uid: u32,
    pub gids: Vec<u32>,
}

impl QemuUser {
    /// Reads `/etc/libvirt/qemu.conf`, `/etc/passwd` and `/etc/group`; `None` when the user is
    /// unknown (a libvirt that runs QEMU as root, or another distribution's layout).
    pub fn observe() -> Option<QemuUser> {
        let conf = std::fs::read_to_string("/etc/libvirt/qemu.conf").unwrap_or_default();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        QemuUser::parse(&conf, &passwd, &group)
    }

    fn parse(conf: &str, passwd: &str, group: &str) -> Option<QemuUser> {
        let configured = conf.lines().find_map(|l| {
            let (key, value) = l.trim().split_once('=')?;
            (key.trim() == "user").then(|| value.trim().trim_matches('"').to_owned())
        });
        let name = configured.unwrap_or_else(|| "libvirt-qemu".into());
        let (uid, gid) = passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })?;
        let mut gids = vec![gid];
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() > 3 && f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse() {
                    gids.push(g);
                }
            }
        }
        Some(QemuUser { name, uid, gids })
    }

    /// Whether a device of this owner and mode is readable and writable by this user.
    pub fn can_use(&self, owner: u32, group: u32, mode: u32) -> bool {
        let rw = |shift: u32| (mode >> shift) & 0o6 == 0o6;
        self.uid == 0
            || (owner == self.uid && rw(6))
            || (self.gids.contains(&group) && rw(3))
            || rw(0)
    }
}

/// When `/dev/kvm` exists but QEMU's user cannot open it, libvirt finds KVM "enabled when probed
/// but not available now" and probes QEMU again on every call: a domain definition takes 30 s
/// and a first create minutes. Says so, with the fix, for the log and `GET /api/v1/host`.
pub fn dev_kvm_warning() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/dev/kvm").ok()?;
    let user = QemuUser::observe()?;
    dev_kvm_warning_for(&user, meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

fn dev_kvm_warning_for(user: &QemuUser, owner: u32, group: u32, mode: u32) -> Option<String> {
    (!user.can_use(owner, group, mode)).then(|| {
        format!(
            "/dev/kvm (mode {mode:04o}, owner {owner}:{group}) cannot be opened by QEMU's user \
             {}: libvirt then probes QEMU again on every call and each operation takes seconds \
             to minutes. Fix: chown root:kvm /dev/kvm && chmod 0660 /dev/kvm (and make {} a \
             member of the kvm group); scripts/setup does this.",
            user.name, user.name
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dev_kvm_that_qemus_user_cannot_open_is_reported_with_the_fix() {
        let passwd = "root:x:0:0::/root:/bin/sh\nlibvirt-qemu:x:64055:64055::/:/bin/false\n";
        let group = "kvm:x:107:libvirt-qemu\nlibvirt-qemu:x:64055:\n";
        let user = QemuUser::parse("# user = \"root\"\n", passwd, group).unwrap();
        assert_eq!(user.gids, vec![64055, 107]);
        // A fresh machine without udev: root:root 0600.
        let why = dev_kvm_warning_for(&user, 0, 0, 0o600).unwrap();
        assert!(why.contains("chmod 0660 /dev/kvm"), "{why}");
        // Debian's usual owner and mode.
        assert_eq!(dev_kvm_warning_for(&user, 0, 107, 0o660), None);
        assert_eq!(dev_kvm_warning_for(&user, 0, 0, 0o666), None);
        // QEMU configured to run as root can open anything.
        let root = QemuUser::parse("user = \"root\"\n", passwd, group).unwrap();
        assert_eq!(dev_kvm_warning_for(&root, 0, 0, 0o600), None);
        assert_eq!(QemuUser::parse("", "root:x:0:0::/:/bin/sh\n", group), None);
    }
}
