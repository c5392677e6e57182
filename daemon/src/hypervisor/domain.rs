//! Domain XML, serialised from typed structures with quick-xml. No user string is ever pasted into
//! XML text: names, paths and metadata are values that the serialiser escapes.
//!
//! [`DomainSpec`] is what the rest of the daemon (and the e2e harness) fills in; [`DomainSpec::to_xml`]
//! turns it into libvirt's `<domain>` document.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use nuage_shared::ResourceLimits;

use super::HvError;

/// The XML namespace of Nuage's `<metadata>` element: domains carrying it were created by Nuage.
pub const METADATA_NS: &str = "https://nuage.dev/xmlns/domain/1";

/// Everything Nuage decides about one guest.
#[derive(Debug, Clone)]
pub struct DomainSpec {
    /// libvirt's domain name; unique on the libvirtd (Nuage uses `nuage-<uuid>`).
    pub name: String,
    pub uuid: String,
    /// `kvm`, `qemu` or `test`, from [`super::Hypervisor::domain_type`].
    pub domain_type: &'static str,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disks: Vec<DiskSpec>,
    /// A file the guest's first serial port writes to, if any.
    pub serial_log: Option<PathBuf>,
    /// The tag that lets a daemon recognise its own domains.
    pub tag: DomainTag,
    /// CPU and disk limits (`<cputune>`, `<iotune>` on the first disk); the NIC's are in `nic`.
    /// The memory hard limit is not in the XML: see [`super::Hypervisor::set_memory_hard_limit`].
    pub limits: ResourceLimits,
    pub nic: Option<NicSpec>,
    /// The VNC server also listens on 127.0.0.1 (a port libvirt picks), for when the socket
    /// pair of virDomainOpenGraphicsFD cannot be had; else it listens on no TCP port.
    pub vnc_loopback: bool,
}

/// The guest's network card on the daemon's libvirt network.
#[derive(Debug, Clone)]
pub struct NicSpec {
    pub network: String,
    pub mac: String,
    /// The address the network's DHCP hands this MAC: libvirt's `clean-traffic` filter lets the
    /// guest send from this IP and MAC only.
    pub ip: String,
    /// `<bandwidth>` inbound/outbound average in KiB/s (0: none), when the host can enforce it.
    pub inbound_kib_per_sec: u64,
    pub outbound_kib_per_sec: u64,
}

/// The CFS period Nuage uses for CPU caps, microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct DiskSpec {
    pub path: PathBuf,
    /// `qcow2` or `raw`.
    pub format: &'static str,
    /// `vda`, `vdb`, ...
    pub target: String,
    pub readonly: bool,
}

/// Who a domain belongs to: the daemon that created it, and (for VPS) the owner and the VPS id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainTag {
    pub daemon: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vps: String,
}

impl DomainSpec {
    pub fn to_xml(&self) -> Result<String, HvError> {
        let doc = XmlDomain {
            kind: self.domain_type,
            name: &self.name,
            uuid: &self.uuid,
            metadata: XmlMetadata {
                tag: XmlTag {
                    xmlns: METADATA_NS,
                    daemon: &self.tag.daemon,
                    owner: (!self.tag.owner.is_empty()).then_some(self.tag.owner.as_str()),
                    vps: (!self.tag.vps.is_empty()).then_some(self.tag.vps.as_str()),
                },
            },
            memory: XmlMemory {
                unit: "MiB",
                value: self.memory_mib,
            },
            vcpu: self.vcpus,
            cputune: XmlCputune {
                shares: self.limits.cpu_shares.max(2),
                period: (self.limits.cpu_cap_percent > 0).then_some(CPU_PERIOD_US),
                // vcpu quota is per vCPU thread: percent of one core each.
                quota: (self.limits.cpu_cap_percent > 0)
                    .then(|| CPU_PERIOD_US * u64::from(self.limits.cpu_cap_percent) / 100),
            },
            os: XmlOs {
                kind: XmlOsType {
                    arch: "x86_64",
                    value: "hvm",
                },
                boot: XmlBoot { dev: "hd" },
            },
            features: XmlFeatures {
                acpi: Empty {},
                apic: Empty {},
                // Software emulation's translation cache defaults to 1 GiB of QEMU's own memory,
                // which a memory cgroup limit sized for the guest does not allow for.
                tcg: (self.domain_type == "qemu").then_some(XmlTcg {
                    tb_cache: XmlMemory {
                        unit: "MiB",
                        value: TCG_TB_CACHE_MIB,
                    },
                }),
            },
            on_poweroff: "destroy",
            on_reboot: "restart",
            on_crash: "destroy",
            devices: XmlDevices {
                disk: self
                    .disks
                    .iter()
                    .map(|d| XmlDisk {
                        kind: "file",
                        device: "disk",
                        driver: XmlDriver {
                            name: "qemu",
                            kind: d.format,
                        },
                        source: XmlFileSource {
                            file: d.path.to_string_lossy().into_owned(),
                        },
                        target: XmlTarget {
                            dev: d.target.clone(),
                            bus: "virtio",
                        },
                        readonly: d.readonly.then_some(Empty {}),
                        // Limits on the server's own disk; the read-only seed is not its I/O.
                        iotune: (!d.readonly
                            && (self.limits.disk_bytes_per_sec > 0 || self.limits.disk_iops > 0))
                            .then_some(XmlIotune {
                                total_bytes_sec: nonzero(self.limits.disk_bytes_per_sec),
                                total_iops_sec: nonzero(self.limits.disk_iops),
                            }),
                    })
                    .collect(),
                interface: self
                    .nic
                    .iter()
                    .map(|n| XmlInterface {
                        kind: "network",
                        mac: XmlMac {
                            address: n.mac.clone(),
                        },
                        source: XmlNetSource {
                            network: n.network.clone(),
                        },
                        model: XmlVideoModel { kind: "virtio" },
                        bandwidth: (n.inbound_kib_per_sec > 0 || n.outbound_kib_per_sec > 0).then(
                            || XmlBandwidth {
                                inbound: nonzero(n.inbound_kib_per_sec)
                                    .map(|average| XmlRate { average }),
                                outbound: nonzero(n.outbound_kib_per_sec)
                                    .map(|average| XmlRate { average }),
                            },
                        ),
                        filterref: XmlFilterRef {
                            filter: "clean-traffic",
                            parameter: XmlFilterParam {
                                name: "IP",
                                value: n.ip.clone(),
                            },
                        },
                    })
                    .collect(),
                serial: self
                    .serial_log
                    .iter()
                    .map(|p| XmlSerial {
                        kind: "file",
                        source: XmlPathSource {
                            path: p.to_string_lossy().into_owned(),
                        },
                        target: XmlSerialTarget { port: 0 },
                    })
                    .collect(),
                // VNC without any TCP port: the console is reached only through
                // virDomainOpenGraphicsFD, i.e. only through the daemon. The loopback fallback
                // is reachable from this host only, and the daemon relays it the same way.
                graphics: XmlGraphics {
                    kind: "vnc",
                    port: None,
                    autoport: self.vnc_loopback.then_some("yes"),
                    // A loopback VNC server asks for a password (any local user could reach
                    // it otherwise); the hypervisor gives each boot its own (`start`).
                    passwd: self.vnc_loopback.then(vnc_password),
                    listen: if self.vnc_loopback {
                        XmlListen {
                            kind: "address",
                            address: Some("127.0.0.1"),
                        }
                    } else {
                        XmlListen {
                            kind: "none",
                            address: None,
                        }
                    },
                },
                video: XmlVideo {
                    model: XmlVideoModel { kind: "vga" },
                },
                memballoon: XmlMemballoon { model: "virtio" },
            },
        };
        quick_xml::se::to_string(&doc).map_err(HvError::Xml)
    }
}

/// Reads Nuage's tag back from a domain's XML; `None` for domains Nuage did not create.
pub fn read_tag(domain_xml: &str) -> Option<DomainTag> {
    #[derive(Deserialize)]
    struct Doc {
        metadata: Option<Meta>,
    }
    #[derive(Deserialize)]
    struct Meta {
        // libvirt re-serialises foreign metadata with its own prefix; match on the local name.
        #[serde(rename = "tag", alias = "nuage:tag")]
        tag: Option<DomainTag>,
    }
    let doc: Doc = quick_xml::de::from_str(domain_xml).ok()?;
    doc.metadata?.tag.filter(|t| !t.daemon.is_empty())
}

#[derive(Serialize)]
#[serde(rename = "domain")]
struct XmlDomain<'a> {
    #[serde(rename = "@type")]
    kind: &'a str,
    name: &'a str,
    uuid: &'a str,
    metadata: XmlMetadata<'a>,
    memory: XmlMemory,
    vcpu: u32,
    cputune: XmlCputune,
    os: XmlOs,
    features: XmlFeatures,
    on_poweroff: &'a str,
    on_reboot: &'a str,
    on_crash: &'a str,
    devices: XmlDevices,
}

#[derive(Serialize)]
struct XmlMetadata<'a> {
    #[serde(rename = "nuage:tag")]
    tag: XmlTag<'a>,
}

#[derive(Serialize)]
struct XmlTag<'a> {
    #[serde(rename = "@xmlns:nuage")]
    xmlns: &'a str,
    #[serde(rename = "nuage:daemon")]
    daemon: &'a str,
    #[serde(rename = "nuage:owner", skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    #[serde(rename = "nuage:vps", skip_serializing_if = "Option::is_none")]
    vps: Option<&'a str>,
}

#[derive(Serialize)]
struct XmlMemory {
    #[serde(rename = "@unit")]
    unit: &'static str,
    #[serde(rename = "$text")]
    value: u64,
}

#[derive(Serialize)]
struct XmlOs {
    #[serde(rename = "type")]
    kind: XmlOsType,
    boot: XmlBoot,
}

#[derive(Serialize)]
struct XmlOsType {
    #[serde(rename = "@arch")]
    arch: &'static str,
    #[serde(rename = "$text")]
    value: &'static str,
}

#[derive(Serialize)]
struct XmlBoot {
    #[serde(rename = "@dev")]
    dev: &'static str,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct XmlFeatures {
    acpi: Empty,
    apic: Empty,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcg: Option<XmlTcg>,
}

#[derive(Serialize)]
struct XmlTcg {
    #[serde(rename = "tb-cache")]
    tb_cache: XmlMemory,
}

/// The translation cache of a software-emulated (TCG) guest's QEMU, MiB.
pub const TCG_TB_CACHE_MIB: u64 = 128;

#[derive(Serialize)]
struct XmlDevices {
    disk: Vec<XmlDisk>,
    interface: Vec<XmlInterface>,
    serial: Vec<XmlSerial>,
    graphics: XmlGraphics,
    video: XmlVideo,
    memballoon: XmlMemballoon,
}

#[derive(Serialize)]
struct XmlDisk {
    #[serde(rename = "@type")]
    kind: &'static str,
    #[serde(rename = "@device")]
    device: &'static str,
    driver: XmlDriver,
    source: XmlFileSource,
    target: XmlTarget,
    #[serde(skip_serializing_if = "Option::is_none")]
    readonly: Option<Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iotune: Option<XmlIotune>,
}

fn nonzero(v: u64) -> Option<u64> {
    (v > 0).then_some(v)
}

#[derive(Serialize)]
struct XmlCputune {
    shares: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<u64>,
}

#[derive(Serialize)]
struct XmlIotune {
    #[serde(skip_serializing_if = "Option::is_none")]
    total_bytes_sec: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_iops_sec: Option<u64>,
}

#[derive(Serialize)]
struct XmlInterface {
    #[serde(rename = "@type")]
    kind: &'static str,
    mac: XmlMac,
    source: XmlNetSource,
    model: XmlVideoModel,
    #[serde(skip_serializing_if = "Option::is_none")]
    bandwidth: Option<XmlBandwidth>,
    filterref: XmlFilterRef,
}

#[derive(Serialize)]
struct XmlMac {
    #[serde(rename = "@address")]
    address: String,
}

#[derive(Serialize)]
struct XmlNetSource {
    #[serde(rename = "@network")]
    network: String,
}

#[derive(Serialize)]
struct XmlBandwidth {
    #[serde(skip_serializing_if = "Option::is_none")]
    inbound: Option<XmlRate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outbound: Option<XmlRate>,
}

#[derive(Serialize)]
struct XmlRate {
    #[serde(rename = "@average")]
    average: u64,
}

#[derive(Serialize)]
struct XmlFilterRef {
    #[serde(rename = "@filter")]
    filter: &'static str,
    parameter: XmlFilterParam,
}

#[derive(Serialize)]
struct XmlFilterParam {
    #[serde(rename = "@name")]
    name: &'static str,
    #[serde(rename = "@value")]
    value: String,
}

#[derive(Serialize)]
struct XmlDriver {
    #[serde(rename = "@name")]
    name: &'static str,
    #[serde(rename = "@type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct XmlFileSource {
    #[serde(rename = "@file")]
    file: String,
}

#[derive(Serialize)]
struct XmlPathSource {
    #[serde(rename = "@path")]
    path: String,
}

#[derive(Serialize)]
struct XmlTarget {
    #[serde(rename = "@dev")]
    dev: String,
    #[serde(rename = "@bus")]
    bus: &'static str,
}

#[derive(Serialize)]
struct XmlSerial {
    #[serde(rename = "@type")]
    kind: &'static str,
    source: XmlPathSource,
    target: XmlSerialTarget,
}

#[derive(Serialize)]
struct XmlSerialTarget {
    #[serde(rename = "@port")]
    port: u32,
}

#[derive(Serialize)]
#[serde(rename = "graphics")]
struct XmlGraphics {
    #[serde(rename = "@type")]
    kind: &'static str,
    #[serde(rename = "@port", skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(rename = "@autoport", skip_serializing_if = "Option::is_none")]
    autoport: Option<&'static str>,
    #[serde(rename = "@passwd", skip_serializing_if = "Option::is_none")]
    passwd: Option<String>,
    listen: XmlListen,
}

/// A random VNC password: VNC authentication uses 8 bytes, here 8 of 62 characters.
pub fn vnc_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// The graphics device of a running domain's loopback VNC server on `port`, with a new
/// `password` (for `virDomainUpdateDeviceFlags` on the live domain).
pub fn vnc_loopback_device(port: u16, password: &str) -> Result<String, quick_xml::SeError> {
    quick_xml::se::to_string(&XmlGraphics {
        kind: "vnc",
        port: Some(port),
        autoport: Some("yes"),
        passwd: Some(password.to_owned()),
        listen: XmlListen {
            kind: "address",
            address: Some("127.0.0.1"),
        },
    })
}

#[derive(Serialize)]
struct XmlListen {
    #[serde(rename = "@type")]
    kind: &'static str,
    #[serde(rename = "@address", skip_serializing_if = "Option::is_none")]
    address: Option<&'static str>,
}

/// A running domain's VNC server on the loopback, read back from its live XML (with its secure
/// parts, for the password): the fallback when no socket pair can be had. `None` unless it
/// listens on 127.0.0.1 at a known port.
pub fn vnc_loopback(live_xml: &str) -> Option<(u16, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Doc {
        devices: Devices,
    }
    #[derive(serde::Deserialize)]
    struct Devices {
        #[serde(default)]
        graphics: Vec<Graphics>,
    }
    #[derive(serde::Deserialize)]
    struct Graphics {
        #[serde(rename = "@type")]
        kind: String,
        #[serde(rename = "@port")]
        port: Option<i32>,
        #[serde(rename = "@passwd")]
        passwd: Option<String>,
        #[serde(default)]
        listen: Vec<Listen>,
    }
    #[derive(serde::Deserialize)]
    struct Listen {
        #[serde(rename = "@type")]
        kind: String,
        #[serde(rename = "@address")]
        address: Option<String>,
    }
    let doc: Doc = quick_xml::de::from_str(live_xml).ok()?;
    let g = doc.devices.graphics.into_iter().find(|g| g.kind == "vnc")?;
    let loopback = g
        .listen
        .iter()
        .any(|l| l.kind == "address" && l.address.as_deref() == Some("127.0.0.1"));
    let port = u16::try_from(g.port?).ok().filter(|&p| p > 0)?;
    loopback.then_some((port, g.passwd))
}

#[derive(Serialize)]
struct XmlVideo {
    model: XmlVideoModel,
}

#[derive(Serialize)]
struct XmlVideoModel {
    #[serde(rename = "@type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct XmlMemballoon {
    #[serde(rename = "@model")]
    model: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DomainSpec {
        DomainSpec {
            name: "nuage-1".into(),
            uuid: "6f1c1a9e-8a43-4e43-9d7e-3f3f6a0d0c11".into(),
            domain_type: "qemu",
            vcpus: 2,
            memory_mib: 256,
            disks: vec![
                DiskSpec {
                    path: "/var/lib/nuage/disks/a.qcow2".into(),
                    format: "qcow2",
                    target: "vda".into(),
                    readonly: false,
                },
                DiskSpec {
                    path: "/var/lib/nuage/seeds/a.img".into(),
                    format: "raw",
                    target: "vdb".into(),
                    readonly: true,
                },
            ],
            serial_log: Some("/var/lib/nuage/vms/a/serial.log".into()),
            tag: DomainTag {
                daemon: "d1".into(),
                owner: "u1".into(),
                vps: "v1".into(),
            },
            limits: ResourceLimits {
                cpu_shares: 2048,
                cpu_cap_percent: 0,
                memory_hard_limit_mib: 512,
                disk_iops: 2000,
                disk_bytes_per_sec: 200 << 20,
                net_inbound_kib_per_sec: 12_500,
                net_outbound_kib_per_sec: 6_250,
            },
            nic: Some(NicSpec {
                network: "nuage-d1".into(),
                mac: "52:54:00:0a:4d:05".into(),
                ip: "10.77.3.5".into(),
                inbound_kib_per_sec: 12_500,
                outbound_kib_per_sec: 6_250,
            }),
            vnc_loopback: false,
        }
    }

    #[test]
    fn the_loopback_fallback_listens_on_127_0_0_1_only_and_reads_back() {
        let mut s = spec();
        s.vnc_loopback = true;
        let xml = s.to_xml().unwrap();
        assert!(
            xml.contains("<graphics type=\"vnc\" autoport=\"yes\" passwd=\"")
                && xml.contains("<listen type=\"address\" address=\"127.0.0.1\"/></graphics>"),
            "{xml}"
        );
        let password = xml
            .split("passwd=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(password.len(), 8, "VNC authentication uses 8 bytes");
        assert_ne!(
            s.to_xml().unwrap(),
            xml,
            "each definition has its own password"
        );
        // No port in the definition: libvirt picks one at start, and the live XML says which.
        assert_eq!(vnc_loopback(&xml), None);
        let live = |graphics: &str| format!("<domain><devices>{graphics}</devices></domain>");
        let port = live(
            "<graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'>\
             <listen type='address' address='127.0.0.1'/></graphics>",
        );
        assert_eq!(vnc_loopback(&port), Some((5901, None)));
        let secure = live(
            "<graphics type='vnc' port='5901' autoport='yes' passwd='Ab3dEf9h'>\
             <listen type='address' address='127.0.0.1'/></graphics>",
        );
        assert_eq!(vnc_loopback(&secure), Some((5901, Some("Ab3dEf9h".into()))));
        let device = vnc_loopback_device(5901, "Zz9yXx8w").unwrap();
        assert_eq!(
            device,
            "<graphics type=\"vnc\" port=\"5901\" autoport=\"yes\" passwd=\"Zz9yXx8w\">\
             <listen type=\"address\" address=\"127.0.0.1\"/></graphics>"
        );
        for other in [
            // Another address than the loopback is never used.
            "<graphics type='vnc' port='5901'><listen type='address' address='0.0.0.0'/></graphics>",
            "<graphics type='vnc' port='-1'><listen type='none'/></graphics>",
            "<graphics type='spice' port='5901'><listen type='address' address='127.0.0.1'/></graphics>",
            "",
        ] {
            assert_eq!(vnc_loopback(&live(other)), None, "{other}");
        }
    }

    /// Each limit, as a change to the spec and what the XML must then (not) contain.
    #[test]
    fn the_xml_carries_each_limit() {
        type Change = fn(&mut DomainSpec);
        let table: &[(&str, Change, &[&str], &[&str])] = &[
            (
                "defaults",
                |_| {},
                &[
                    "<cputune><shares>2048</shares></cputune>",
                    "<iotune><total_bytes_sec>209715200</total_bytes_sec>\
                     <total_iops_sec>2000</total_iops_sec></iotune>",
                    "<interface type=\"network\"><mac address=\"52:54:00:0a:4d:05\"/>\
                     <source network=\"nuage-d1\"/><model type=\"virtio\"/>",
                    "<bandwidth><inbound average=\"12500\"/><outbound average=\"6250\"/></bandwidth>",
                    "<filterref filter=\"clean-traffic\"><parameter name=\"IP\" value=\"10.77.3.5\"/>\
                     </filterref>",
                ],
                &["<period>", "<quota>"],
            ),
            (
                "a 50% cap per vCPU",
                |s| s.limits.cpu_cap_percent = 50,
                &["<cputune><shares>2048</shares><period>100000</period><quota>50000</quota></cputune>"],
                &[],
            ),
            (
                "unlimited disk",
                |s| {
                    s.limits.disk_iops = 0;
                    s.limits.disk_bytes_per_sec = 0
                },
                &[],
                &["<iotune"],
            ),
            (
                "only an IOPS limit",
                |s| s.limits.disk_bytes_per_sec = 0,
                &["<iotune><total_iops_sec>2000</total_iops_sec></iotune>"],
                &["total_bytes_sec"],
            ),
            (
                "no NIC rate limits (host cannot enforce them)",
                |s| {
                    let nic = s.nic.as_mut().unwrap();
                    nic.inbound_kib_per_sec = 0;
                    nic.outbound_kib_per_sec = 0;
                },
                &["<filterref filter=\"clean-traffic\">"],
                &["<bandwidth"],
            ),
            (
                "inbound only",
                |s| s.nic.as_mut().unwrap().outbound_kib_per_sec = 0,
                &["<bandwidth><inbound average=\"12500\"/></bandwidth>"],
                &["outbound"],
            ),
            ("no NIC", |s| s.nic = None, &[], &["<interface", "filterref"]),
        ];
        for (case, change, want, unwanted) in table {
            let mut s = spec();
            change(&mut s);
            let xml = s.to_xml().unwrap();
            for w in *want {
                assert!(xml.contains(w), "{case}: missing {w} in {xml}");
            }
            for u in *unwanted {
                assert!(!xml.contains(u), "{case}: unexpected {u} in {xml}");
            }
            // Only the server's own disk is throttled, never the seed.
            assert!(xml.matches("<iotune").count() <= 1, "{case}: {xml}");
        }
    }

    #[test]
    fn the_xml_carries_every_setting() {
        let xml = spec().to_xml().unwrap();
        for want in [
            "<domain type=\"qemu\">",
            "<name>nuage-1</name>",
            "<memory unit=\"MiB\">256</memory>",
            "<vcpu>2</vcpu>",
            "<type arch=\"x86_64\">hvm</type>",
            "<driver name=\"qemu\" type=\"qcow2\"/>",
            "<source file=\"/var/lib/nuage/disks/a.qcow2\"/>",
            "<target dev=\"vdb\" bus=\"virtio\"/><readonly/>",
            "<serial type=\"file\"><source path=\"/var/lib/nuage/vms/a/serial.log\"/>",
            "<graphics type=\"vnc\"><listen type=\"none\"/></graphics>",
            "<nuage:daemon>d1</nuage:daemon>",
        ] {
            assert!(xml.contains(want), "missing {want} in {xml}");
        }
        assert_eq!(xml.matches("<readonly/>").count(), 1);
    }

    #[test]
    fn hostile_strings_are_escaped_not_interpreted() {
        let mut s = spec();
        s.name = "x'><devices><disk".into();
        s.disks[0].path = "/tmp/a\"/><source file=\"/etc/shadow".into();
        let xml = s.to_xml().unwrap();
        // Parsed back, the hostile strings are plain values and the structure is unchanged.
        #[derive(Deserialize)]
        struct Back {
            name: String,
            devices: BackDevices,
        }
        #[derive(Deserialize)]
        struct BackDevices {
            disk: Vec<BackDisk>,
        }
        #[derive(Deserialize)]
        struct BackDisk {
            source: BackSource,
        }
        #[derive(Deserialize)]
        struct BackSource {
            #[serde(rename = "@file")]
            file: String,
        }
        let back: Back = quick_xml::de::from_str(&xml).unwrap();
        assert_eq!(back.name, s.name);
        assert_eq!(back.devices.disk.len(), 2);
        assert_eq!(
            back.devices.disk[0].source.file,
            s.disks[0].path.to_str().unwrap()
        );
    }

    #[test]
    fn the_tag_reads_back_from_libvirt_style_xml() {
        let xml = spec().to_xml().unwrap();
        assert_eq!(read_tag(&xml), Some(spec().tag));
        // libvirt re-emits foreign metadata with the namespace declared on the element itself.
        let libvirt = "<domain type='qemu'><name>n</name><metadata>\
            <nuage:tag xmlns:nuage=\"https://nuage.dev/xmlns/domain/1\">\
            <nuage:daemon>d9</nuage:daemon></nuage:tag></metadata></domain>";
        assert_eq!(read_tag(libvirt).unwrap().daemon, "d9");
        assert_eq!(read_tag("<domain><name>other</name></domain>"), None);
        assert_eq!(read_tag("not xml <"), None);
    }
}
