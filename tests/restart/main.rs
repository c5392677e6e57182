//! A libvirtd restart is survived: the daemon reports itself degraded while libvirtd is away,
//! reconnects, and is subscribed to libvirt's events again (a change made behind its back still
//! reaches the server's state). A host restart (the daemon, libvirtd and every QEMU killed
//! together) brings the servers that ran back up, and leaves stopped the ones their owner
//! stopped. The tests take turns: each restarts the shared libvirtd.

use std::process::Command;
use std::time::{Duration, Instant};

use nuage_e2e::{ensure_libvirtd, qemu_pid, wait_until, Daemon, QEMU_SYSTEM};
use serde_json::json;

/// One libvirtd restart at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn stop_libvirtd() {
    assert!(Command::new("pkill")
        .args(["-9", "-x", "libvirtd"])
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
}

/// Whether `pid` runs (a zombie, waiting for its parent to reap it, does not).
fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn libvirtd_answers() -> bool {
    Command::new("virsh")
        .args(["-c", QEMU_SYSTEM, "uri"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn nuaged_survives_a_libvirtd_restart() {
    let _turn = TURN.lock().await;
    let (daemon, admin, image) = Daemon::with_guest_image(&[]).await;
    let (status, vm) = admin
        .post("/api/v1/vms", json!({"name": "survivor", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}))
        .await;
    assert_eq!(status, 201, "{vm}");
    let id = vm["id"].as_str().unwrap().to_owned();

    stop_libvirtd().await;
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

#[tokio::test(flavor = "multi_thread")]
async fn after_a_host_restart_running_servers_run_again_and_stopped_ones_stay_stopped() {
    let _turn = TURN.lock().await;
    let (mut daemon, admin, image) = Daemon::with_guest_image(&[]).await;
    let mut ids = Vec::new();
    for name in ["runner", "resting"] {
        let (status, vm) = admin
            .post("/api/v1/vms", json!({"name": name, "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}))
            .await;
        assert_eq!(status, 201, "{vm}");
        ids.push(vm["id"].as_str().unwrap().to_owned());
    }
    let (runner, resting) = (ids[0].clone(), ids[1].clone());
    let (status, body) = admin
        .post(&format!("/api/v1/vms/{resting}/stop"), json!({}))
        .await;
    assert_eq!(
        (status, body["stop_reason"].as_str()),
        (202, Some("stopped")),
        "{body}"
    );

    // The host goes down: the daemon, libvirtd and the guests' QEMU, all at once.
    let pid = qemu_pid(&format!("nuage-{runner}")).expect("the runner's QEMU");
    daemon.kill();
    assert!(Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    // A killed QEMU takes a moment to exit (its memory is torn down): libvirtd stopped before
    // that would find it alive when it comes back, which is not a host restart.
    let killed = Instant::now();
    while process_alive(pid) {
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "QEMU did not die"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_libvirtd().await;

    // And comes back up.
    tokio::task::spawn_blocking(ensure_libvirtd).await.unwrap();
    daemon.restart(&[]);
    let admin = daemon.api(&daemon.admin_token().await);
    let vm = wait_until(
        &admin,
        &format!("/api/v1/vms/{runner}"),
        Duration::from_secs(90),
        |v| v["state"] == "running",
    )
    .await;
    assert_eq!(
        vm["state"], "running",
        "the server that ran runs again: {vm}"
    );
    let (_, vm) = admin.get(&format!("/api/v1/vms/{resting}")).await;
    assert_eq!(
        (vm["state"].as_str(), vm["stop_reason"].as_str()),
        (Some("stopped"), Some("stopped")),
        "the server its owner stopped stays stopped: {vm}"
    );
    assert!(
        daemon
            .log_text()
            .contains("started again after a host restart"),
        "the log says why it started"
    );
    for id in [runner, resting] {
        let (status, _) = admin.delete(&format!("/api/v1/vms/{id}")).await;
        assert_eq!(status, 204);
    }
}
