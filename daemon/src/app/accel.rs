//! The acceleration choice: the operator's `--accel` setting weighed against what the hypervisor
//! layer observed on the host (`hypervisor::accel::KvmProbe`). A policy, so it lives in the app.

use nuage_shared::Accel;

use crate::config::AccelSetting;
use crate::hypervisor::accel::KvmProbe;

/// Decides the acceleration for a setting, with a reason for the operator. An explicit `kvm` on a
/// host where libvirt offers no KVM domains is an error (every guest would fail to start); other
/// doubts about an explicit `kvm` are only warned about in the reason.
pub fn choose(setting: AccelSetting, probe: KvmProbe) -> Result<(Accel, String), String> {
    match (setting, probe.obstacle()) {
        (AccelSetting::Tcg, _) => Ok((Accel::Tcg, "TCG chosen by the accel setting".into())),
        (AccelSetting::Auto, None) => Ok((Accel::Kvm, "KVM works on this host".into())),
        (AccelSetting::Auto, Some(why)) => Ok((Accel::Tcg, format!("TCG, because {why}"))),
        (AccelSetting::Kvm, None) => Ok((Accel::Kvm, "KVM chosen by the accel setting".into())),
        (AccelSetting::Kvm, Some(why)) if !probe.libvirt_offers_kvm => {
            Err(format!("--accel kvm, but {why}; use --accel tcg or auto"))
        }
        (AccelSetting::Kvm, Some(why)) => Ok((
            Accel::Kvm,
            format!("KVM chosen by the accel setting, although {why}: guests may not boot"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: KvmProbe = KvmProbe {
        dev_kvm_usable: true,
        cpu_has_virt_ext: true,
        pvm_kvm: false,
        libvirt_offers_kvm: true,
    };

    #[test]
    fn auto_picks_kvm_only_when_every_sign_is_there() {
        let table = [
            (GOOD, Accel::Kvm, "works"),
            (
                KvmProbe {
                    dev_kvm_usable: false,
                    ..GOOD
                },
                Accel::Tcg,
                "/dev/kvm",
            ),
            (
                KvmProbe {
                    cpu_has_virt_ext: false,
                    ..GOOD
                },
                Accel::Tcg,
                "vmx/svm",
            ),
            (
                KvmProbe {
                    pvm_kvm: true,
                    ..GOOD
                },
                Accel::Tcg,
                "kvm_pvm",
            ),
            (
                KvmProbe {
                    libvirt_offers_kvm: false,
                    ..GOOD
                },
                Accel::Tcg,
                "libvirt offers no KVM",
            ),
            // The machines this project is tested on: /dev/kvm opens, libvirt offers kvm, but it
            // is kvm_pvm and the CPU flags lack vmx/svm.
            (
                KvmProbe {
                    cpu_has_virt_ext: false,
                    pvm_kvm: true,
                    ..GOOD
                },
                Accel::Tcg,
                "kvm_pvm",
            ),
        ];
        for (probe, want, reason) in table {
            let (got, why) = choose(AccelSetting::Auto, probe).unwrap();
            assert_eq!(got, want, "{probe:?}");
            assert!(why.contains(reason), "{probe:?}: {why}");
        }
    }

    #[test]
    fn explicit_settings_are_obeyed_within_reason() {
        let pvm = KvmProbe {
            pvm_kvm: true,
            ..GOOD
        };
        assert_eq!(choose(AccelSetting::Tcg, GOOD).unwrap().0, Accel::Tcg);
        let (accel, why) = choose(AccelSetting::Kvm, pvm).unwrap();
        assert_eq!(accel, Accel::Kvm);
        assert!(why.contains("may not boot"));
        let no_kvm = KvmProbe {
            libvirt_offers_kvm: false,
            ..GOOD
        };
        assert!(choose(AccelSetting::Kvm, no_kvm)
            .unwrap_err()
            .contains("--accel tcg"));
    }
}
