//! The daemon's own libvirt network, as typed XML: a bridge with an IPv4 subnet, libvirt's dnsmasq handing
//! every server the address recorded for it (a static DHCP host entry per MAC), and NAT forwarding
//! on real hosts or none at all (isolated) in tests.

use serde::{Deserialize, Serialize};

use super::HvError;
use crate::cidr::Cidr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    /// The bridge device (at most 15 bytes).
    pub bridge: String,
    /// The subnet; the host is its first address.
    pub cidr: Cidr,
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

/// A network's subnet and its static DHCP hosts.
pub type NetworkState = (Cidr, Vec<DhcpHost>);

/// A lease libvirt's dnsmasq handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub mac: String,
    pub ip: String,
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
                address: self.cidr.host(1),
                netmask: self.cidr.netmask(),
                dhcp: XmlDhcp {
                    range: XmlRange {
                        start: self.cidr.host(*self.cidr.pool().start()),
                        end: self.cidr.host(*self.cidr.pool().end()),
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

/// The subnet and static hosts of a network's XML as libvirt returns it.
pub fn read_network(xml: &str) -> Option<NetworkState> {
    #[derive(Deserialize)]
    struct Doc {
        ip: Option<Ip>,
    }
    #[derive(Deserialize)]
    struct Ip {
        #[serde(rename = "@address")]
        address: String,
        #[serde(rename = "@netmask")]
        netmask: Option<String>,
        #[serde(rename = "@prefix")]
        prefix: Option<u8>,
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
    let len = match (ip.prefix, &ip.netmask) {
        (Some(p), _) => p,
        (None, Some(m)) => {
            u8::try_from(u32::from(m.parse::<std::net::Ipv4Addr>().ok()?).count_ones()).ok()?
        }
        (None, None) => 24,
    };
    let mask = !((1u32 << (32 - u32::from(len.clamp(1, 31)))) - 1);
    let cidr = Cidr::new((u32::from(addr) & mask).into(), len).ok()?;
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
    Some((cidr, hosts))
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
    netmask: String,
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

    fn cidr() -> Cidr {
        Cidr::parse("10.77.4.0/22").unwrap()
    }

    fn spec(nat: bool) -> NetworkSpec {
        NetworkSpec {
            name: "nuage-abcd1234".into(),
            bridge: "nu-abcd1234".into(),
            cidr: cidr(),
            nat,
            hosts: vec![DhcpHost {
                mac: cidr().mac(5),
                ip: cidr().host(5),
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
            iso.contains("<ip address=\"10.77.4.1\" netmask=\"255.255.252.0\">"),
            "{iso}"
        );
        assert!(
            iso.contains("<range start=\"10.77.4.2\" end=\"10.77.7.254\"/>"),
            "{iso}"
        );
        assert!(
            iso.contains("<host mac=\"52:54:00:4d:04:05\" ip=\"10.77.4.5\"/>"),
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
        let (c, hosts) = read_network(&s.to_xml().unwrap()).unwrap();
        assert_eq!(c, cidr());
        assert_eq!(hosts, s.hosts);
        assert_eq!(
            host_xml(&s.hosts[0]).unwrap(),
            "<host mac=\"52:54:00:4d:04:05\" ip=\"10.77.4.5\"/>"
        );
        let libvirt = "<network><ip address='10.1.2.1' prefix='24'/></network>";
        assert_eq!(
            read_network(libvirt).unwrap().0,
            Cidr::parse("10.1.2.0/24").unwrap()
        );
        assert_eq!(read_network("<network><name>x</name></network>"), None);
    }
}
