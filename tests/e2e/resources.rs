//! Issue 7 with the test guest under TCG: the running domain carries its limits and the
//! anti-spoofing filter, the guest gets its address from the daemon's isolated network (read from
//! libvirt's lease list; no traffic is sent to the guest), metrics show CPU time rising while it
//! boots, and the Prometheus output parses.

use std::time::{Duration, Instant};

use nuage_e2e::{domain_xml, Daemon};
use serde_json::json;

/// libvirt's leases on `network`, as (MAC, IP).
fn leases(network: &str) -> Vec<(String, String)> {
    let out = std::process::Command::new("virsh")
        .args(["-c", "qemu:///system", "net-dhcp-leases", network])
        .output()
        .expect("virsh runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Expiry date, time, MAC, protocol, IP/prefix, ...
            (f.len() >= 5 && f[2].contains(':')).then(|| {
                (
                    f[2].to_owned(),
                    f[4].split('/').next().unwrap_or("").to_owned(),
                )
            })
        })
        .collect()
}

/// Prometheus text, scraped with the admin's token. Without one it is refused even from
/// loopback (a reverse proxy on the host makes every client look like loopback).
async fn scrape(daemon: &Daemon, admin_token: &str) -> prometheus_parse::Scrape {
    let anonymous = reqwest::get(daemon.url("/metrics")).await.unwrap();
    assert_eq!(anonymous.status(), 401, "loopback is no credential");
    let resp = nuage_e2e::http_client()
        .get(daemon.url("/metrics"))
        .bearer_auth(admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the Prometheus text parses")
}

fn cpu_seconds(scrape: &prometheus_parse::Scrape, vm: &str) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == "nuage_vm_cpu_seconds_total" && s.labels.get("vm") == Some(vm))
        .and_then(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => Some(v),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_server_is_limited_filtered_addressed_and_measured() {
    let (daemon, admin, image) = Daemon::with_guest_image(&[
        ("NUAGE_METRICS_INTERVAL", "1"),
        ("NUAGE_CPU_CAP_PERCENT", "90"),
    ])
    .await;
    let quota = json!({"vcpus": 2, "memory_mib": 512, "disk_gib": 4, "vms": 2, "snapshots": 0});
    let alice = daemon
        .user(&admin, "alice", "alice-pass", quota.clone())
        .await;
    let (id, vm) = alice
        .create_small_vm(&image, json!({"name": "metered"}))
        .await;
    let ip = vm["ip_addresses"][0]
        .as_str()
        .expect("an address")
        .to_owned();
    let mac = vm["mac_address"].as_str().expect("a MAC").to_owned();
    let domain = format!("nuage-{id}");

    // The running domain carries the limits and the filter bound to its address.
    let xml = domain_xml(&domain, false).expect("the domain runs");
    for want in [
        "<shares>1024</shares>".to_owned(),
        "<quota>90000</quota>".to_owned(),
        "<total_iops_sec>2000</total_iops_sec>".to_owned(),
        "<total_bytes_sec>209715200</total_bytes_sec>".to_owned(),
        format!("<source network='{}'", daemon.network),
        format!("<mac address='{mac}'/>"),
        "<filterref filter='clean-traffic'>".to_owned(),
        format!("<parameter name='IP' value='{ip}'/>"),
    ] {
        assert!(
            xml.contains(&want),
            "missing {want} in the live XML:\n{xml}"
        );
    }
    let (_, host) = admin.get("/api/v1/host").await;
    if host["network"]["bandwidth_limits"] == true {
        assert!(xml.contains("<bandwidth>"), "{xml}");
    } else {
        // This kernel cannot shape traffic: the host says why, and no server is left unbootable.
        let note = host["network"]["bandwidth_note"].as_str().unwrap_or("");
        assert!(!note.is_empty(), "{host}");
        assert!(!xml.contains("<bandwidth>"), "{xml}");
        eprintln!("NIC rate limits not enforced here: {note}");
    }
    assert_eq!(host["network"]["mode"], "isolated");
    assert!(
        !xml.contains("<forward"),
        "an isolated network, no forwarding"
    );
    let conn = virt::connect::Connect::open(Some("qemu:///system")).unwrap();
    let dom = conn.lookup_domain_by_name(&domain).unwrap();
    let mem = dom
        .memory_parameters(virt::sys::VIR_DOMAIN_AFFECT_LIVE)
        .unwrap();
    assert_eq!(
        mem.hard_limit,
        Some((256 + 256 + 256 / 8 + 128) * 1024),
        "memory hard limit: the guest's memory, the overhead allowance, an eighth of the \
         memory and the TCG translation cache, KiB"
    );
    assert!(
        xml.contains("<tb-cache unit='KiB'>131072</tb-cache>"),
        "TCG's translation cache is bounded: {xml}"
    );
    let net_xml = conn
        .lookup_network_by_name(&daemon.network)
        .unwrap()
        .xml_desc(0)
        .unwrap();
    assert!(!net_xml.contains("<forward"), "{net_xml}");
    assert!(
        net_xml.contains(&format!("<host mac='{mac}' ip='{ip}'/>")),
        "{net_xml}"
    );

    // CPU time rises while the guest boots (TCG works hard), seen in the API and in Prometheus.
    let admin_token = daemon.admin_token().await;
    let first = scrape(&daemon, &admin_token).await;
    let start = Instant::now();
    let mut busy = false;
    while start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (status, m) = alice.get(&format!("/api/v1/vms/{id}/metrics")).await;
        assert_eq!(status, 200, "{m}");
        busy = m["samples"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["cpu_percent"].as_f64().unwrap_or(0.0) > 5.0);
        if busy {
            break;
        }
    }
    assert!(busy, "no sample showed the booting guest using CPU");
    // Prometheus shows the sampler's latest sample: wait for a sample taken after the first
    // scrape (two scrapes inside one sampling interval show the same figure).
    let a = cpu_seconds(&first, &id);
    let mut b = a;
    let start = Instant::now();
    while b <= a && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        b = cpu_seconds(&scrape(&daemon, &admin_token).await, &id);
    }
    assert!(
        matches!((a, b), (Some(a), Some(b)) if b > a),
        "CPU seconds did not rise: {a:?} then {b:?}"
    );

    // The guest asks the isolated network's DHCP and gets the address the daemon recorded.
    let start = Instant::now();
    let lease = loop {
        let found = leases(&daemon.network)
            .into_iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(&mac));
        if let Some(l) = found {
            break l;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no DHCP lease for {mac} on {}",
            daemon.network
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(lease.1, ip, "the lease is the recorded address");
    eprintln!(
        "guest {mac} leased {ip} {:.1?} after the CPU check",
        start.elapsed()
    );

    // Another tenant sees none of it; deleting frees the address from the network.
    let bob = daemon.user(&admin, "bob", "bob-pass-1", quota).await;
    let (status, _) = bob.get(&format!("/api/v1/vms/{id}/metrics")).await;
    assert_eq!(status, 404);
    let (status, _) = alice.delete(&format!("/api/v1/vms/{id}")).await;
    assert!(status == 204 || status == 202, "{status}");
    let net_xml = conn
        .lookup_network_by_name(&daemon.network)
        .unwrap()
        .xml_desc(0)
        .unwrap();
    assert!(!net_xml.contains(&mac), "the DHCP entry is gone: {net_xml}");
}
