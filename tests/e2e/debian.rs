//! A real distribution guest: a Debian 12 cloud image with systemd and cloud-init, created through
//! the API under TCG with 768 MiB. It must boot, run cloud-init to its end with the seed's
//! hostname and hashed password, and stay alive under the memory limit the daemon sets (the old
//! limit, guest + 256 MiB, had its QEMU killed 20 s into boot).

use std::time::{Duration, Instant};

use nuage_e2e::{debian_guest_image, qemu_pid, Daemon};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_debian_cloud_guest_boots_runs_cloud_init_and_lives_under_its_memory_limit() {
    let image = tokio::task::spawn_blocking(debian_guest_image)
        .await
        .unwrap();
    let dir = image.parent().unwrap().to_str().unwrap().to_owned();
    let daemon = tokio::task::spawn_blocking(move || {
        Daemon::start_with(
            nuage_e2e::QEMU_SYSTEM,
            &[("NUAGE_IMPORT_DIRS", dir.as_str())],
        )
    })
    .await
    .unwrap();
    let admin = daemon.api(&daemon.admin_token().await);
    let (status, img) = admin
        .post(
            "/api/v1/images",
            json!({"name": "debian-12", "path": image.to_str().unwrap(), "os": "debian"}),
        )
        .await;
    assert_eq!(status, 201, "{img}");
    let quota = json!({"vcpus": 1, "memory_mib": 768, "disk_gib": 4, "vms": 1, "snapshots": 0});
    let alice = daemon.user(&admin, "alice", "alice-pass", quota).await;
    let (status, vm) = alice
        .post(
            "/api/v1/vms",
            json!({"name": "deb", "hostname": "deb-guest", "image_id": img["id"], "vcpus": 1,
                   "memory_mib": 768, "disk_gib": 4, "password": "Debian-Guest-77",
                   "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvA2y5tS0OHb0Yy6KHZrU5v3qAGKk5H9k5lVtTtCeJ5 test@nuage"]}),
        )
        .await;
    assert_eq!(status, 201, "{vm}");
    let id = vm["id"].as_str().unwrap().to_owned();
    let limit = vm["limits"]["memory_hard_limit_mib"].as_u64().unwrap();
    let pid = qemu_pid(&format!("nuage-{id}")).expect("QEMU runs");
    let serial = daemon.data_dir().join("vms").join(&id).join("serial.log");

    // cloud-init runs to its end: it says so on the serial port, and the login prompt shows the
    // seed's hostname.
    let start = Instant::now();
    let mut peak = 0;
    loop {
        let text = std::fs::read_to_string(&serial).unwrap_or_default();
        peak = peak.max(
            nuage_e2e::proc_status_kib(u32::try_from(pid).unwrap(), "VmHWM").unwrap_or(0) / 1024,
        );
        let (_, now) = alice.get(&format!("/api/v1/vms/{id}")).await;
        assert_eq!(
            now["state"],
            "running",
            "the guest died during boot (peak QEMU RSS {peak} MiB, limit {limit} MiB): {now}\n{}",
            text.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
        if text.contains("Cloud-init v.")
            && text.contains("finished")
            && text.contains("deb-guest login:")
        {
            assert!(
                text.contains("DataSourceNoCloud"),
                "cloud-init read the seed"
            );
            assert!(
                !text.contains("Debian-Guest-77"),
                "the plain password never appears"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "cloud-init did not finish in 10 minutes:\n{}",
            text.lines().rev().take(30).collect::<Vec<_>>().join("\n")
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!(
        "debian guest: cloud-init finished after {:?}; QEMU peak RSS {peak} MiB under a {limit} MiB limit",
        start.elapsed()
    );
    assert!(peak < limit, "peak {peak} MiB, limit {limit} MiB");
    // Still alive a little later, once the boot's work is over.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (_, now) = alice.get(&format!("/api/v1/vms/{id}")).await;
    assert_eq!(now["state"], "running", "{now}");
    let (status, _) = alice.delete(&format!("/api/v1/vms/{id}")).await;
    assert_eq!(status, 204);
}
