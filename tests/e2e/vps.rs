//! A tenant's server on a real libvirtd with the test guest under TCG.

use std::time::{Duration, Instant};

use nuage_e2e::{domain_xml, domains_under, Daemon};
use serde_json::json;

async fn wait_serial(path: &std::path::Path, marker: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(marker) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "{marker} not in the serial output within {timeout:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_runs_a_real_server_from_create_to_delete() {
    let (daemon, admin, image) = Daemon::with_guest_image(&[]).await;
    let quota = json!({"vcpus": 2, "memory_mib": 512, "disk_gib": 4, "vms": 1, "snapshots": 0});
    let alice = daemon.user(&admin, "alice", "alice-pass", quota).await;

    let created = Instant::now();
    let (status, vm) = alice
        .post(
            "/api/v1/vms",
            json!({"name": "e2e-web", "hostname": "hello-e2e", "image_id": image, "vcpus": 1,
                   "memory_mib": 256, "disk_gib": 1}),
        )
        .await;
    let create_time = created.elapsed();
    assert_eq!(status, 201, "{vm}");
    assert_eq!(vm["state"], "running");
    let id = vm["id"].as_str().unwrap().to_owned();
    let domain = format!("nuage-{id}");
    let vm_dir = daemon.data_dir().join("vms").join(&id);

    // The guest really boots from the linked clone and reads the hostname from its seed.
    let boot = wait_serial(
        &vm_dir.join("serial.log"),
        "NUAGE-HOSTNAME=hello-e2e",
        Duration::from_secs(90),
    )
    .await;
    eprintln!("create answered in {create_time:.2?}; the guest printed its seeded hostname {boot:.1?} later");
    let xml = domain_xml(&domain, false).expect("the domain exists");
    assert!(xml.contains("type='qemu'"), "TCG domain expected");
    assert!(
        xml.contains(&format!("<nuage:vps>{id}</nuage:vps>")),
        "tagged with the server id"
    );
    assert!(xml.contains("<listen type='none'/>"), "VNC on no TCP port");

    // Shutdown asks the guest (this busybox guest ignores ACPI), stop powers off.
    let (status, body) = alice
        .post(&format!("/api/v1/vms/{id}/shutdown"), json!({}))
        .await;
    assert_eq!((status, body["state"].as_str()), (202, Some("stopping")));
    let (status, body) = alice
        .post(&format!("/api/v1/vms/{id}/stop"), json!({}))
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (202, Some("stopped")),
        "{body}"
    );
    assert_eq!(
        domains_under(&daemon.data_dir()),
        vec![(domain.clone(), false)]
    );

    // Resize, then boot with the new size.
    let (status, body) = alice
        .patch(
            &format!("/api/v1/vms/{id}"),
            json!({"vcpus": 2, "memory_mib": 384, "disk_gib": 2}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    alice.act(&id, "start").await;
    let xml = domain_xml(&domain, false).unwrap();
    assert!(xml.contains(">2</vcpu>"), "{xml}");
    assert!(xml.contains("<memory unit='KiB'>393216</memory>"), "{xml}");
    let (_, me) = alice.get("/api/v1/me").await;
    assert_eq!(
        me["usage"],
        json!({"vcpus": 2, "memory_mib": 384, "disk_gib": 2, "vms": 1, "snapshots": 0})
    );

    let (status, _) = alice.delete(&format!("/api/v1/vms/{id}")).await;
    assert_eq!(status, 204);
    assert!(
        domains_under(&daemon.data_dir()).is_empty(),
        "no domain left"
    );
    assert!(!vm_dir.exists(), "no disk, seed or log left");
    let (_, me) = alice.get("/api/v1/me").await;
    assert_eq!(
        me["usage"],
        json!({"vcpus": 0, "memory_mib": 0, "disk_gib": 0, "vms": 0, "snapshots": 0})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_in_the_middle_of_a_create_cleans_up_on_restart() {
    let (mut daemon, admin, image) =
        Daemon::with_guest_image(&[("NUAGE_FAILPOINTS", "create-after-define")]).await;
    let request = {
        // The daemon dies under this request: its error is expected, so no panicking client.
        let (url, token) = (daemon.url("/api/v1/vms"), daemon.admin_token().await);
        let body = json!({"name": "doomed", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1});
        tokio::spawn(async move {
            nuage_e2e::http_client()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
        })
    };
    // Wait until the domain is defined and the daemon sits in the failpoint, then SIGKILL it.
    let data = daemon.data_dir();
    let start = Instant::now();
    while domains_under(&data).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the create never defined its domain"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, vms) = admin.get("/api/v1/vms?all=true").await;
    assert_eq!(vms[0]["state"], "creating", "{vms}");
    let daemon = tokio::task::spawn_blocking(move || {
        daemon.kill_and_restart(&[]);
        daemon
    })
    .await
    .unwrap();
    assert!(
        request.await.unwrap().is_err(),
        "the killed daemon never answered"
    );

    let admin = daemon.api(&daemon.admin_token().await);
    let (_, vms) = admin.get("/api/v1/vms?all=true").await;
    assert_eq!(vms, json!([]), "the half-created server is gone");
    assert!(
        domains_under(&daemon.data_dir()).is_empty(),
        "its domain is gone"
    );
    assert_eq!(
        std::fs::read_dir(daemon.data_dir().join("vms"))
            .unwrap()
            .count(),
        0,
        "its files are gone"
    );
    let (_, me) = admin.get("/api/v1/me").await;
    assert_eq!(me["usage"]["vms"], 0, "its quota is free");
    drop(daemon);
}
