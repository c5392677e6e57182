//! The daemon's own libvirt network, as typed XML: a bridge with a /24, libvirt's dnsmasq handing
//! every server the address recorded for it (a static DHCP host entry per MAC), and NAT forwarding
//! on real hosts or none at all (isolated) in tests.

use serde::{Deserialize, Serialize};

use super::HvError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    /// The bridge device (at most 15 bytes).
    pub bridge: String,
    /// The /24's first three octets; the host is `.1`.
    pub prefix: [u8; 3],
    /// NAT forwarding; `false`: isolated (no `<forward>` at all).
    pub nat: bool,
    /// Static DHCP entries present from the start.
    pub hosts: Vec<DhcpHost>,
}

/// One static DHCP entry: this MAC gets this address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DhcpHost {
    pub mac: String,
    pub ip: String,
}

/// A network's /24 prefix and its static DHCP hosts.
pub type NetworkState = ([u8; 3], Vec<DhcpHost>);

/// A lease libvirt's dnsmasq handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub mac: String,
    pub ip: String,
}

/// The usable pool of a /24: `.2` to `.254` (`.1` is the host, `.255` broadcast).
pub const POOL: std::ops::RangeInclusive<u8> = 2..=254;

pub fn ip_in(prefix: [u8; 3], host: u8) -> String {
    format!("{}.{}.{}.{host}", prefix[0], prefix[1], prefix[2])
}

/// A locally administered MAC under QEMU's 52:54:00 prefix, unique per (network, address): the
/// /24's last octet and the host number.
pub fn mac_for(prefix: [u8; 3], host: u8) -> String {
    format!("52:54:00:{:02x}:{:02x}:{:02x}", prefix[1], prefix[2], host)
}

impl NetworkSpec {
    pub fn to_xml(&self) -> Result<String, HvError> {
        let doc = XmlNetwork {
            name: &self.name,
            forward: self.nat.then_some(XmlForward { mode: "nat" }),
            bridge: XmlBridge {
                name: &self.bridge,
                stp: "off",
            },
            ip: XmlIp {
                address: ip_in(self.prefix, 1),
                netmask: "255.255.255.0",
                dhcp: XmlDhcp {
                    range: XmlRange {
                        start: ip_in(self.prefix, *POOL.start()),
                        end: ip_in(self.prefix, *POOL.end()),
                    },
                    host: self
                        .hosts
                        .iter()
                        .map(|h| XmlHost {
                            mac: h.mac.clone(),
                            ip: h.ip.clone(),
                        })
                        .collect(),
                },
            },
        };
        quick_xml::se::to_string(&doc).map_err(HvError::Xml)
    }
}

/// One `<host>` element, as `virNetworkUpdate` takes it.
pub fn host_xml(h: &DhcpHost) -> Result<String, HvError> {
    quick_xml::se::to_string_with_root(
        "host",
        &XmlHost {
            mac: h.mac.clone(),
            ip: h.ip.clone(),
        },
    )
    .map_err(HvError::Xml)
}

/// The /24 prefix and static hosts of a network's XML as libvirt returns it.
pub fn read_network(xml: &str) -> Option<NetworkState> {
    #[derive(Deserialize)]
    struct Doc {
        ip: Option<Ip>,
    }
    #[derive(Deserialize)]
    struct Ip {
        #[serde(rename = "@address")]
        address: String,
        dhcp: Option<Dhcp>,
    }
    #[derive(Deserialize)]
    struct Dhcp {
        #[serde(default)]
        host: Vec<Host>,
    }
    #[derive(Deserialize)]
    struct Host {
        #[serde(rename = "@mac")]
        mac: Option<String>,
        #[serde(rename = "@ip")]
        ip: Option<String>,
    }
    let doc: Doc = quick_xml::de::from_str(xml).ok()?;
    let ip = doc.ip?;
    let addr: std::net::Ipv4Addr = ip.address.parse().ok()?;
    let o = addr.octets();
    let hosts = ip
        .dhcp
        .map(|d| {
            d.host
                .into_iter()
                .filter_map(|h| {
                    Some(DhcpHost {
                        mac: h.mac?.to_ascii_lowercase(),
                        ip: h.ip?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(([o[0], o[1], o[2]], hosts))
}

#[derive(Serialize)]
#[serde(rename = "network")]
struct XmlNetwork<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    forward: Option<XmlForward>,
    bridge: XmlBridge<'a>,
    ip: XmlIp,
}

#[derive(Serialize)]
struct XmlForward {
    #[serde(rename = "@mode")]
    mode: &'static str,
}

#[derive(Serialize)]
struct XmlBridge<'a> {
    #[serde(rename = "@name")]
    name: &'a str,
    #[serde(rename = "@stp")]
    stp: &'static str,
}

#[derive(Serialize)]
struct XmlIp {
    #[serde(rename = "@address")]
    address: String,
    #[serde(rename = "@netmask")]
    netmask: &'static str,
    dhcp: XmlDhcp,
}

#[derive(Serialize)]
struct XmlDhcp {
    range: XmlRange,
    host: Vec<XmlHost>,
}

#[derive(Serialize)]
struct XmlRange {
    #[serde(rename = "@start")]
    start: String,
    #[serde(rename = "@end")]
    end: String,
}

#[derive(Serialize)]
struct XmlHost {
    #[serde(rename = "@mac")]
    mac: String,
    #[serde(rename = "@ip")]
    ip: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nat: bool) -> NetworkSpec {
        NetworkSpec {
            name: "nuage-abcd1234".into(),
            bridge: "nu-abcd1234".into(),
            prefix: [10, 77, 3],
            nat,
            hosts: vec![DhcpHost {
                mac: mac_for([10, 77, 3], 5),
                ip: ip_in([10, 77, 3], 5),
            }],
        }
    }

    #[test]
    fn isolated_networks_have_no_forward_and_nat_ones_do() {
        let iso = spec(false).to_xml().unwrap();
        assert!(!iso.contains("<forward"), "{iso}");
        assert!(
            iso.contains("<bridge name=\"nu-abcd1234\" stp=\"off\"/>"),
            "{iso}"
        );
        assert!(
            iso.contains("<ip address=\"10.77.3.1\" netmask=\"255.255.255.0\">"),
            "{iso}"
        );
        assert!(
            iso.contains("<range start=\"10.77.3.2\" end=\"10.77.3.254\"/>"),
            "{iso}"
        );
        assert!(
            iso.contains("<host mac=\"52:54:00:4d:03:05\" ip=\"10.77.3.5\"/>"),
            "{iso}"
        );
        assert!(spec(true)
            .to_xml()
            .unwrap()
            .contains("<forward mode=\"nat\"/>"));
    }

    #[test]
    fn a_network_reads_back_with_its_hosts() {
        let s = spec(false);
        let (prefix, hosts) = read_network(&s.to_xml().unwrap()).unwrap();
        assert_eq!(prefix, [10, 77, 3]);
        assert_eq!(hosts, s.hosts);
        assert_eq!(
            host_xml(&s.hosts[0]).unwrap(),
            "<host mac=\"52:54:00:4d:03:05\" ip=\"10.77.3.5\"/>"
        );
        assert_eq!(read_network("<network><name>x</name></network>"), None);
    }

    #[test]
    fn macs_are_unique_per_address() {
        let macs: std::collections::HashSet<_> = POOL.map(|h| mac_for([10, 77, 3], h)).collect();
        assert_eq!(macs.len(), POOL.count());
    }
}
