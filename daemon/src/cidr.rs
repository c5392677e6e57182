//! An IPv4 subnet and its address plan: a leaf module that the settings, the database and the
//! hypervisor layer all use, and that knows none of them.

/// An IPv4 subnet from /16 to /24: the host takes its first address, servers the rest but the
/// last (broadcast).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    base: u32,
    len: u8,
}

impl Cidr {
    pub const LENGTHS: std::ops::RangeInclusive<u8> = 16..=24;

    pub fn new(base: std::net::Ipv4Addr, len: u8) -> Result<Cidr, String> {
        let base = u32::from(base);
        if !Self::LENGTHS.contains(&len) {
            return Err(format!("a subnet from /16 to /24, not /{len}"));
        }
        if base & ((1u32 << (32 - len)) - 1) != 0 {
            return Err(format!(
                "{}/{len} has host bits set",
                std::net::Ipv4Addr::from(base)
            ));
        }
        Ok(Cidr { base, len })
    }

    /// `10.77.0.0/22`.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("network {text:?}: give an IPv4 subnet such as 10.77.0.0/22");
        let (addr, len) = text.split_once('/').ok_or_else(bad)?;
        let ip: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        Cidr::new(ip, len).map_err(|e| format!("network {text:?}: {e}"))
    }

    fn size(&self) -> u32 {
        1 << (32 - self.len)
    }

    /// The `i`-th address of the subnet.
    pub fn host(&self, i: u32) -> String {
        std::net::Ipv4Addr::from(self.base + i).to_string()
    }

    pub fn netmask(&self) -> String {
        std::net::Ipv4Addr::from(!(self.size() - 1)).to_string()
    }

    /// Host numbers servers may get.
    pub fn pool(&self) -> std::ops::RangeInclusive<u32> {
        2..=self.size() - 2
    }

    /// A locally administered MAC under QEMU's 52:54:00 prefix: the address's low 24 bits, so
    /// it is unique within the subnet and across subnets that differ there.
    pub fn mac(&self, i: u32) -> String {
        let n = (self.base + i) & 0xff_ffff;
        format!(
            "52:54:00:{:02x}:{:02x}:{:02x}",
            n >> 16,
            (n >> 8) & 0xff,
            n & 0xff
        )
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", std::net::Ipv4Addr::from(self.base), self.len)
    }
}

/// An IPv4 address reached over an IPv6 socket (`::ffff:a.b.c.d`) is the IPv4 address: what
/// trusted-proxy lists and a token's client CIDRs compare.
pub fn unmapped(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr() -> Cidr {
        Cidr::parse("10.77.4.0/22").unwrap()
    }

    #[test]
    fn subnets_parse_strictly_and_give_unique_macs() {
        let c = cidr();
        assert_eq!(c.to_string(), "10.77.4.0/22");
        assert_eq!(c.pool().count(), 1021);
        assert_eq!(Cidr::parse("10.0.0.0/24").unwrap().pool().count(), 253);
        for bad in [
            "10.0.0.0/25",
            "10.0.0.0/8",
            "10.0.1.0/22",
            "10.0.0.0",
            "ten/24",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        let macs: std::collections::HashSet<_> = c.pool().map(|h| c.mac(h)).collect();
        assert_eq!(macs.len(), c.pool().count());
    }
}
