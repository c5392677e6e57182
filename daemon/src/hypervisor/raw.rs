//! The two libvirt calls the `virt` crate does not wrap safely, on `virt::sys`:
//! `virConnectGetAllDomainStats` (the crate hands back raw records and never frees them) and
//! `virNetworkGetDHCPLeases` (not wrapped at all). Each copies what it needs into owned Rust
//! values and frees libvirt's memory before returning.

use std::ffi::CStr;

use virt::connect::Connect;
use virt::network::Network;
use virt::sys;

use super::network::Lease;

/// Counters of one running domain, as libvirt's bulk stats call returns them. Counters are
/// cumulative since the domain's QEMU process started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainStats {
    pub name: String,
    /// `cpu.time`, nanoseconds.
    pub cpu_time_ns: u64,
    /// `balloon.rss`: what QEMU holds on the host, KiB.
    pub rss_kib: u64,
    pub block_rd_bytes: u64,
    pub block_wr_bytes: u64,
    pub block_rd_reqs: u64,
    pub block_wr_reqs: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
}

impl DomainStats {
    fn add(&mut self, field: &str, v: u64) {
        // block.N.rd.bytes → ("block", "rd.bytes"), net.N.rx.bytes → ("net", "rx.bytes").
        let mut parts = field.splitn(3, '.');
        let (group, second, rest) = (parts.next(), parts.next(), parts.next());
        match (group, second, rest) {
            (Some("cpu"), Some("time"), None) => self.cpu_time_ns = v,
            (Some("balloon"), Some("rss"), None) => self.rss_kib = v,
            (Some("block"), Some(n), Some(what)) if n.parse::<u32>().is_ok() => match what {
                "rd.bytes" => self.block_rd_bytes += v,
                "wr.bytes" => self.block_wr_bytes += v,
                "rd.reqs" => self.block_rd_reqs += v,
                "wr.reqs" => self.block_wr_reqs += v,
                _ => {}
            },
            (Some("net"), Some(n), Some(what)) if n.parse::<u32>().is_ok() => match what {
                "rx.bytes" => self.net_rx_bytes += v,
                "tx.bytes" => self.net_tx_bytes += v,
                _ => {}
            },
            _ => {}
        }
    }
}

/// One bulk call for every running domain of the connection.
pub fn all_domain_stats(conn: &Connect) -> Result<Vec<DomainStats>, virt::error::Error> {
    let stats = sys::VIR_DOMAIN_STATS_CPU_TOTAL
        | sys::VIR_DOMAIN_STATS_BALLOON
        | sys::VIR_DOMAIN_STATS_INTERFACE
        | sys::VIR_DOMAIN_STATS_BLOCK;
    let mut records: *mut sys::virDomainStatsRecordPtr = std::ptr::null_mut();
    // SAFETY: the connection pointer is valid while `conn` lives; libvirt fills `records` with a
    // NULL-terminated array that we free below with the matching function.
    let n = unsafe {
        sys::virConnectGetAllDomainStats(
            conn.as_ptr(),
            stats,
            &mut records,
            sys::VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE,
        )
    };
    if n < 0 {
        return Err(virt::error::Error::last_error());
    }
    let n = usize::try_from(n).unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: `records` holds `n` valid record pointers; each record's `params` holds
        // `nparams` typed parameters whose `field` is a NUL-terminated name.
        unsafe {
            let rec = *records.add(i);
            let name_ptr = sys::virDomainGetName((*rec).dom);
            if name_ptr.is_null() {
                continue;
            }
            let mut s = DomainStats {
                name: CStr::from_ptr(name_ptr).to_string_lossy().into_owned(),
                ..DomainStats::default()
            };
            for j in 0..usize::try_from((*rec).nparams).unwrap_or(0) {
                let p = &*(*rec).params.add(j);
                let v = match u32::try_from(p.type_).unwrap_or(0) {
                    sys::VIR_TYPED_PARAM_ULLONG => p.value.ul,
                    sys::VIR_TYPED_PARAM_UINT => u64::from(p.value.ui),
                    sys::VIR_TYPED_PARAM_LLONG => u64::try_from(p.value.l).unwrap_or(0),
                    sys::VIR_TYPED_PARAM_INT => u64::try_from(p.value.i).unwrap_or(0),
                    _ => continue,
                };
                let field = CStr::from_ptr(p.field.as_ptr()).to_string_lossy();
                s.add(&field, v);
            }
            out.push(s);
        }
    }
    if !records.is_null() {
        // SAFETY: the array came from virConnectGetAllDomainStats and is freed once.
        unsafe { sys::virDomainStatsRecordListFree(records) };
    }
    Ok(out)
}

/// The leases a network's DHCP server handed out.
pub fn dhcp_leases(net: &Network) -> Result<Vec<Lease>, virt::error::Error> {
    let mut leases: *mut sys::virNetworkDHCPLeasePtr = std::ptr::null_mut();
    // SAFETY: valid network pointer; libvirt allocates `n` leases and the array, freed below.
    let n = unsafe { sys::virNetworkGetDHCPLeases(net.as_ptr(), std::ptr::null(), &mut leases, 0) };
    if n < 0 {
        return Err(virt::error::Error::last_error());
    }
    let n = usize::try_from(n).unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: `leases` holds `n` valid lease pointers with NUL-terminated (or NULL) strings.
        unsafe {
            let l = *leases.add(i);
            let text = |p: *mut std::os::raw::c_char| {
                (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
            };
            if let (Some(mac), Some(ip)) = (text((*l).mac), text((*l).ipaddr)) {
                out.push(Lease {
                    mac: mac.to_ascii_lowercase(),
                    ip,
                });
            }
            sys::virNetworkDHCPLeaseFree(l);
        }
    }
    if !leases.is_null() {
        // SAFETY: the array itself was allocated by libvirt with malloc.
        unsafe { libc::free(leases.cast()) };
    }
    Ok(out)
}

/// `virDomainBackupBegin` without a checkpoint (the `virt` crate does not wrap it).
pub fn backup_begin(dom: &virt::domain::Domain, xml: &str) -> Result<(), virt::error::Error> {
    let xml = std::ffi::CString::new(xml).map_err(|_| virt::error::Error::last_error())?;
    // SAFETY: the domain pointer is live for the call; the XML is a NUL-terminated string that
    // outlives it; a null checkpoint XML is allowed.
    let r = unsafe { sys::virDomainBackupBegin(dom.as_ptr(), xml.as_ptr(), std::ptr::null(), 0) };
    if r < 0 {
        return Err(virt::error::Error::last_error());
    }
    Ok(())
}

/// `virDomainAbortJob` (not wrapped by the `virt` crate).
pub fn abort_job(dom: &virt::domain::Domain) -> Result<(), virt::error::Error> {
    // SAFETY: the domain pointer is live for the call.
    let r = unsafe { sys::virDomainAbortJob(dom.as_ptr()) };
    if r < 0 {
        return Err(virt::error::Error::last_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_fields_add_up_per_group() {
        let mut s = DomainStats::default();
        for (f, v) in [
            ("cpu.time", 7),
            ("cpu.user", 99),
            ("balloon.rss", 2048),
            ("block.0.rd.bytes", 10),
            ("block.1.rd.bytes", 5),
            ("block.0.wr.reqs", 3),
            ("block.count", 2),
            ("block.0.name", 1),
            ("net.0.rx.bytes", 100),
            ("net.0.tx.bytes", 50),
            ("net.count", 1),
        ] {
            s.add(f, v);
        }
        assert_eq!(
            s,
            DomainStats {
                name: String::new(),
                cpu_time_ns: 7,
                rss_kib: 2048,
                block_rd_bytes: 15,
                block_wr_bytes: 0,
                block_rd_reqs: 0,
                block_wr_reqs: 3,
                net_rx_bytes: 100,
                net_tx_bytes: 50,
            }
        );
    }
}
