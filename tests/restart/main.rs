//! A libvirtd restart is survived: the daemon reports itself degraded while libvirtd is away,
//! reconnects, and is subscribed to libvirt's events again (a change made behind its back still
//! reaches the server's state).

use std::process::Command;
use std::time::{Duration, Instant};

use nuage_e2e::{ensure_libvirtd, Daemon, QEMU_SYSTEM};
use serde_json::json;

fn libvirtd_answers() -> bool {
    Command::new("virsh")
        .args(["-c", QEMU_SYSTEM, "uri"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn nuaged_survives_a_libvirtd_restart() {
    let (daemon, admin, image) = Daemon::with_guest_image(&[]).await;
    let (status, vm) = admin
        .post("/api/v1/vms", json!({"name": "survivor", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}))
        .await;
    assert_eq!(status, 201, "{vm}");
    let id = vm["id"].as_str().unwrap().to_owned();

    assert!(Command::new("pkill")
        .args(["-x", "libvirtd"])
        .status()
        .unwrap()
        .success());
    let gone = Instant::now();
    while libvirtd_answers() {
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "libvirtd did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health: serde_json::Value = reqwest::get(daemon.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (health["status"].as_str(), health["hypervisor"].as_bool()),
        (Some("degraded"), Some(false))
    );

    tokio::task::spawn_blocking(ensure_libvirtd).await.unwrap();
    let health = reqwest::get(daemon.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "healthy again once libvirtd is back");
    let (status, body) = admin
        .post(&format!("/api/v1/vms/{id}/stop"), json!({}))
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (202, Some("stopped")),
        "{body}"
    );

    // Started behind the daemon's back: only a renewed event subscription can tell it.
    assert!(Command::new("virsh")
        .args(["-c", QEMU_SYSTEM, "start", &format!("nuage-{id}")])
        .output()
        .unwrap()
        .status
        .success());
    let started = Instant::now();
    loop {
        let (_, vm) = admin.get(&format!("/api/v1/vms/{id}")).await;
        if vm["state"] == "running" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the start never reached the daemon: {vm}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = admin.delete(&format!("/api/v1/vms/{id}")).await;
    assert_eq!(status, 204);
}
