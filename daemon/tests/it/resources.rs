//! Issue 7 on libvirt's simulated host (16 CPUs, 3 GiB): host capacity (507), addresses from the
//! daemon's network (unique under concurrency, freed on delete), limits in the domain definition
//! and their admin overrides, metrics isolation and the Prometheus endpoint.

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestApp;

fn server(name: &str, image: &str, vcpus: u32, memory_mib: u64) -> String {
    json!({"name": name, "image_id": image, "vcpus": vcpus, "memory_mib": memory_mib, "disk_gib": 1})
        .to_string()
}

fn roomy() -> Value {
    json!({"vcpus": 64, "memory_mib": 65536, "disk_gib": 1000, "vms": 50, "snapshots": 0})
}

/// The persistent domain XML libvirt holds for a server, what its next boot runs with (the test
/// driver is shared within the process).
fn domain_xml(vm_id: &str) -> String {
    let conn = virt::connect::Connect::open(Some("test:///default")).unwrap();
    let dom = conn
        .lookup_domain_by_name(&format!("nuage-{vm_id}"))
        .unwrap();
    dom.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE).unwrap()
}

#[tokio::test]
async fn a_create_or_resize_beyond_the_hosts_capacity_is_507_and_frees_nothing() {
    // 16 CPUs × 0.25 = 4 vCPUs; 3072 MiB − 2048 reserved = 1024 MiB.
    let (_app, t) =
        TestApp::with_policy(&["--cpu-overcommit", "0.25", "--reserved-memory-mib", "2048"]).await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", roomy()).await;

    let host = t.get("/api/v1/host", Some(&admin)).await.body;
    assert_eq!(host["capacity"]["limit"]["vcpus"], 4);
    assert_eq!(host["capacity"]["limit"]["memory_mib"], 1024);
    assert_eq!(host["capacity"]["cpu_overcommit"], 0.25);

    for name in ["a", "b"] {
        let r = t
            .post("/api/v1/vms", Some(&alice), &server(name, &image, 2, 256))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = t
        .post("/api/v1/vms", Some(&alice), &server("c", &image, 1, 256))
        .await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{}", r.text);
    assert_eq!(r.code(), "insufficient_capacity");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("vCPUs") && msg.contains("4 of 4"), "{msg}");

    // Memory: 512 of 1024 used; 600 more does not fit.
    let list = t.get("/api/v1/vms", Some(&alice)).await.body;
    let a = list[0]["id"].as_str().unwrap().to_owned();
    let r = t
        .send(
            Method::PATCH,
            &format!("/api/v1/vms/{a}"),
            Some(&alice),
            Some(r#"{"memory_mib": 856}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{}", r.text);
    assert!(r.text.contains("memory"), "{}", r.text);
    let host = t.get("/api/v1/host", Some(&admin)).await.body;
    assert_eq!(
        host["capacity"]["allocated"],
        json!({"vcpus": 4, "memory_mib": 512, "disk_gib": 2, "vms": 2}),
        "refusals took nothing"
    );

    // Freeing room lets the next create in.
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/vms/{a}"),
            Some(&alice),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = t
        .post("/api/v1/vms", Some(&alice), &server("c", &image, 1, 256))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn concurrent_creates_never_overrun_capacity_or_share_an_address() {
    // 16 × 0.5 = 8 vCPUs: room for exactly four 2-vCPU servers.
    let (app, t) = TestApp::with_policy(&["--cpu-overcommit", "0.5"]).await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", roomy()).await;
    let t = Arc::new(t);
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (t, alice, body) = (
                t.clone(),
                alice.clone(),
                server(&format!("s{i}"), &image, 2, 128),
            );
            tokio::spawn(async move { t.post("/api/v1/vms", Some(&alice), &body).await })
        })
        .collect();
    let (mut created, mut refused) = (Vec::new(), 0);
    for task in tasks {
        let r = task.await.unwrap();
        match r.status {
            StatusCode::CREATED => created.push(r.body),
            StatusCode::INSUFFICIENT_STORAGE => refused += 1,
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!((created.len(), refused), (4, 8));
    let ips: HashSet<String> = created
        .iter()
        .map(|v| v["ip_addresses"][0].as_str().unwrap().to_owned())
        .collect();
    let macs: HashSet<&str> = created
        .iter()
        .map(|v| v["mac_address"].as_str().unwrap())
        .collect();
    assert_eq!((ips.len(), macs.len()), (4, 4), "{ips:?}");

    // Each address is a static DHCP entry of the daemon's network, in its /24.
    let host = t.get("/api/v1/host", Some(&admin)).await.body;
    let net = host["network"]["name"].as_str().unwrap().to_owned();
    let cidr = host["network"]["cidr"].as_str().unwrap().to_owned();
    assert_eq!(host["network"]["mode"], "isolated");
    assert_eq!(host["network"]["addresses_used"], 4);
    assert!(cidr.ends_with("/22"), "{cidr}");
    let (base, _) = cidr.split_once('/').unwrap();
    let base = u32::from(base.parse::<std::net::Ipv4Addr>().unwrap());
    assert!(
        ips.iter().all(|ip| {
            let a = u32::from(ip.parse::<std::net::Ipv4Addr>().unwrap());
            a & !0x3ff == base && a - base >= 2
        }),
        "{ips:?} in {cidr}"
    );
    let hv = app.hv.clone();
    let (_, hosts) = hv.read_network(&net).unwrap().unwrap();
    let in_dhcp: HashSet<String> = hosts.iter().map(|h| h.ip.clone()).collect();
    assert_eq!(in_dhcp, ips);
    // ...and the server's NIC carries the address in its anti-spoofing filter.
    let vm = &created[0];
    let xml = domain_xml(vm["id"].as_str().unwrap());
    let ip = vm["ip_addresses"][0].as_str().unwrap();
    assert!(xml.contains(&format!("<source network='{net}'/>")), "{xml}");
    assert!(xml.contains("<filterref filter='clean-traffic'>"), "{xml}");
    assert!(
        xml.contains(&format!("<parameter name='IP' value='{ip}'/>")),
        "{xml}"
    );

    // Deleting a server frees its address (entry and DHCP host); the next create may take it.
    let id = vm["id"].as_str().unwrap();
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/vms/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let (_, hosts) = hv.read_network(&net).unwrap().unwrap();
    assert!(!hosts.iter().any(|h| h.ip == ip), "{ip} still in DHCP");
    let r = t
        .post(
            "/api/v1/vms",
            Some(&alice),
            &server("again", &image, 2, 128),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body["ip_addresses"][0].as_str().unwrap(),
        ip,
        "the pool hands out its lowest free address, the one just freed"
    );
}

#[tokio::test]
async fn limits_come_from_size_and_policy_and_admins_can_override_them() {
    let (_app, t) = TestApp::with_policy(&["--disk-iops", "1500", "--cpu-cap-percent", "80"]).await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", roomy()).await;
    let r = t
        .post("/api/v1/vms", Some(&alice), &server("web", &image, 2, 512))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let limits = &r.body["limits"];
    assert_eq!(limits["cpu_shares"], 2048);
    assert_eq!(limits["cpu_cap_percent"], 80);
    // Memory, the overhead allowance and an eighth of the memory (no TCG cache: simulated).
    assert_eq!(limits["memory_hard_limit_mib"], 512 + 256 + 64);
    assert_eq!(limits["disk_iops"], 1500);
    assert_eq!(limits["net_inbound_kib_per_sec"], 12500);
    let xml = domain_xml(&id);
    for want in [
        "<shares>2048</shares>",
        "<period>100000</period>",
        "<quota>80000</quota>",
        "<total_iops_sec>1500</total_iops_sec>",
        "<total_bytes_sec>209715200</total_bytes_sec>",
        "<inbound average='12500'/>",
        "<outbound average='12500'/>",
    ] {
        assert!(xml.contains(want), "missing {want} in {xml}");
    }

    // The owner's override applies to all their servers; the server's own wins over it.
    let r = t
        .send(
            Method::PUT,
            &format!("/api/v1/users/{alice_id}/limits"),
            Some(&admin),
            Some(r#"{"disk_iops": 300, "net_outbound_kib_per_sec": 1000}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["limits"]["disk_iops"], 300);
    let xml = domain_xml(&id);
    assert!(
        xml.contains("<total_iops_sec>300</total_iops_sec>"),
        "{xml}"
    );
    assert!(xml.contains("<outbound average='1000'/>"), "{xml}");
    let r = t
        .send(
            Method::PUT,
            &format!("/api/v1/vms/{id}/limits"),
            Some(&admin),
            Some(r#"{"disk_iops": 0, "cpu_cap_percent": 0}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["limits"]["disk_iops"], 0, "0: unlimited");
    assert_eq!(
        r.body["limit_overrides"],
        json!({"disk_iops": 0, "cpu_cap_percent": 0})
    );
    let xml = domain_xml(&id);
    assert!(!xml.contains("total_iops_sec"), "{xml}");
    assert!(!xml.contains("<quota>"), "{xml}");
    assert!(
        xml.contains("<outbound average='1000'/>"),
        "the owner's still applies: {xml}"
    );

    // Bad values are 422, unknown fields 400, tenants 403; nothing changes.
    for (body, status) in [
        (
            r#"{"cpu_cap_percent": 150}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (r#"{"disk_iops": 3}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"net_inbound_kib_per_sec": 99999999}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (r#"{"iops": 5}"#, StatusCode::BAD_REQUEST),
    ] {
        let r = t
            .send(
                Method::PUT,
                &format!("/api/v1/vms/{id}/limits"),
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
    }
    let r = t
        .send(
            Method::PUT,
            &format!("/api/v1/vms/{id}/limits"),
            Some(&alice),
            Some(r#"{"disk_iops": 0}"#),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a tenant cannot lift their own limits"
    );
    let vm = t.get(&format!("/api/v1/vms/{id}"), Some(&alice)).await.body;
    assert_eq!(
        vm["limit_overrides"],
        json!({"disk_iops": 0, "cpu_cap_percent": 0})
    );
}

#[tokio::test]
async fn metrics_are_the_owners_alone_and_prometheus_output_parses() {
    let (app, t) = TestApp::with_policy(&["--metrics-interval", "1"]).await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", roomy()).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", roomy()).await;
    let r = t
        .post("/api/v1/vms", Some(&alice), &server("web", &image, 1, 256))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // Two sampling cycles make a sample (rates need two readings).
    app.sample_metrics().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(app.sample_metrics().await.unwrap(), 1);

    let r = t
        .get(&format!("/api/v1/vms/{id}/metrics"), Some(&alice))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["vm_id"], id.as_str());
    assert_eq!(r.body["interval_secs"], 1);
    assert!(
        !r.body["samples"].as_array().unwrap().is_empty(),
        "{}",
        r.text
    );
    assert!(r.body["traffic"]["month"].as_str().unwrap().len() == 7);
    let future = t
        .get(
            &format!("/api/v1/vms/{id}/metrics?since=2999-01-01T00:00:00Z"),
            Some(&alice),
        )
        .await;
    assert_eq!(future.body["samples"], json!([]));
    let bad = t
        .get(
            &format!("/api/v1/vms/{id}/metrics?since=yesterday"),
            Some(&alice),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let other = t
        .get(&format!("/api/v1/vms/{id}/metrics"), Some(&bob))
        .await;
    assert_eq!(
        other.status,
        StatusCode::NOT_FOUND,
        "another tenant's metrics"
    );
    assert_eq!(
        t.get(&format!("/api/v1/vms/{id}/metrics"), Some(&admin))
            .await
            .status,
        StatusCode::OK
    );

    // Prometheus: admins (or loopback) only; the text parses and names the server and owner.
    assert_eq!(
        t.get("/metrics", Some(&alice)).await.status,
        StatusCode::FORBIDDEN
    );
    let r = t.get("/metrics", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.content_type.starts_with("text/plain; version=0.0.4"));
    let lines = r.text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text parses");
    let running: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "nuage_vm_running")
        .collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].labels.get("vm"), Some(id.as_str()));
    assert_eq!(running[0].labels.get("owner"), Some(alice_id.as_str()));
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "nuage_host_allocated_vcpus"
            && matches!(s.value, prometheus_parse::Value::Gauge(v) if v == 1.0)));
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "nuage_vm_cpu_seconds_total"));
}

#[tokio::test]
async fn servers_without_an_address_get_one_at_start() {
    let (app, t) = TestApp::with_policy(&[]).await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", roomy()).await;
    let r = t
        .post("/api/v1/vms", Some(&alice), &server("old", &image, 1, 256))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // As if it had been created before the daemon managed a network.
    let key = id.clone();
    app.db
        .call(move |c| {
            c.execute("DELETE FROM addresses WHERE vm_id = ?1", [&key])?;
            Ok(())
        })
        .await
        .unwrap();
    let vm = t.get(&format!("/api/v1/vms/{id}"), Some(&alice)).await.body;
    assert_eq!(vm["ip_addresses"], json!([]));
    assert_eq!(app.assign_missing_addresses().await.unwrap(), 1);
    let vm = t.get(&format!("/api/v1/vms/{id}"), Some(&alice)).await.body;
    let ip = vm["ip_addresses"][0].as_str().expect("an address now");
    assert!(domain_xml(&id).contains(&format!("<parameter name='IP' value='{ip}'/>")));
    assert_eq!(
        app.assign_missing_addresses().await.unwrap(),
        0,
        "idempotent"
    );
}
