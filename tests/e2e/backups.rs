//! Snapshots, backups and moving a server between two daemons, on a real libvirtd with the test
//! guest under TCG; and what a SIGKILL in the middle of a backup or an import leaves.

use std::time::{Duration, Instant};

use nuage_e2e::{content_hash, domains_under, scribble, virsh, Daemon, QEMU_SYSTEM};
use serde_json::json;

async fn wait_serial(path: &std::path::Path, marker: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(marker) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "{marker} not in the serial output within {timeout:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn hash(disk: std::path::PathBuf) -> String {
    tokio::task::spawn_blocking(move || content_hash(&disk))
        .await
        .unwrap()
}

fn empty_or_missing(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_backup_restore_and_a_move_to_another_host_keep_the_disk_intact() {
    let (a, admin, image) = Daemon::with_guest_image(&[]).await;
    let quota = json!({"vcpus": 4, "memory_mib": 1024, "disk_gib": 10, "vms": 3, "snapshots": 2});
    let alice = a.user(&admin, "alice", "alice-pass", quota.clone()).await;
    let (id, _) = alice
        .create_small_vm(
            &image,
            json!({"name": "web", "hostname": "moved-web", "start": false}),
        )
        .await;
    let dir = a.data_dir().join("vms").join(&id);
    let disk = dir.join("disk.qcow2");

    // Snapshot → change the disk → revert: the content is the snapshot's again.
    let original = hash(disk.clone()).await;
    let (status, snap) = alice
        .post(
            &format!("/api/v1/vms/{id}/snapshots"),
            json!({"name": "before"}),
        )
        .await;
    assert_eq!(status, 201, "{snap}");
    assert_eq!(snap["with_memory"], false, "a stopped server: disk only");
    scribble(&disk, 0x5a, 300);
    assert_ne!(hash(disk.clone()).await, original, "the disk changed");
    let (status, body) = alice
        .post(
            &format!(
                "/api/v1/vms/{id}/snapshots/{}/revert",
                snap["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("stopped")),
        "{body}"
    );
    assert_eq!(
        hash(disk.clone()).await,
        original,
        "reverted to the snapshot"
    );

    // Running: a snapshot with memory; reverting to it leaves the guest running.
    alice.act(&id, "start").await;
    wait_serial(
        &dir.join("serial.log"),
        "NUAGE-HOSTNAME=moved-web",
        Duration::from_secs(90),
    )
    .await;
    let (status, live) = alice
        .post(
            &format!("/api/v1/vms/{id}/snapshots"),
            json!({"name": "booted"}),
        )
        .await;
    assert_eq!(status, 201, "{live}");
    assert_eq!(live["with_memory"], true);
    let (status, body) = alice
        .post(
            &format!(
                "/api/v1/vms/{id}/snapshots/{}/revert",
                live["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("running")),
        "{body}"
    );
    assert_eq!(virsh(&["domstate", &format!("nuage-{id}")]), "running");
    let running = hash(disk.clone()).await;

    // A backup of the running server, while it runs.
    let started = Instant::now();
    let (status, job) = alice
        .post(&format!("/api/v1/vms/{id}/backups"), json!({}))
        .await;
    assert_eq!(status, 202, "{job}");
    let job = alice
        .wait_job(job["id"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    eprintln!(
        "backup of the running test guest: {:.2?}",
        started.elapsed()
    );
    assert_eq!(
        virsh(&["domstate", &format!("nuage-{id}")]),
        "running",
        "the guest kept running"
    );
    let (_, got) = alice.get(&format!("/api/v1/vms/{id}")).await;
    assert_eq!(got["state"], "running");
    let bid = job["backup_id"].as_str().unwrap().to_owned();
    let (_, backup) = alice.get(&format!("/api/v1/backups/{bid}")).await;
    eprintln!("backup: {} bytes", backup["size_bytes"]);

    // Restore as new: the same content.
    let (status, job) = alice
        .post(
            &format!("/api/v1/backups/{bid}/restore"),
            json!({"as_new": true}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let job = alice
        .wait_job(job["id"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let copy = job["vm_id"].as_str().unwrap();
    let (_, copied) = alice.get(&format!("/api/v1/vms/{copy}")).await;
    assert_eq!(
        (copied["name"].as_str(), copied["state"].as_str()),
        (Some("web-restored"), Some("stopped"))
    );
    let copy_disk = a.data_dir().join("vms").join(copy).join("disk.qcow2");
    assert_eq!(
        hash(copy_disk).await,
        running,
        "restored as new with the same content"
    );

    // Export from A, import into B (another daemon, another data dir): same content, and it boots.
    let (status, archive) = alice.get_bytes(&format!("/api/v1/vms/{id}/export")).await;
    assert_eq!(status, 200);
    eprintln!("export archive: {} bytes", archive.len());
    let b = tokio::task::spawn_blocking(|| Daemon::start(QEMU_SYSTEM))
        .await
        .unwrap();
    let admin_b = b.api(&b.admin_token().await);
    let carol = b.user(&admin_b, "carol", "carol-pass", quota).await;
    let (_, me) = carol.get("/api/v1/me").await;
    let import = format!(
        "/api/v1/vms/import?owner={}",
        me["user"]["id"].as_str().unwrap()
    );

    let mut flipped = archive.clone();
    flipped[archive.len() / 2] ^= 0x01;
    for (what, bad) in [
        ("one flipped byte", flipped),
        ("cut short", archive[..archive.len() / 3].to_vec()),
    ] {
        let (status, body) = admin_b.post_bytes(&import, bad).await;
        assert_eq!(status, 422, "{what}: {body}");
        assert!(
            domains_under(&b.data_dir()).is_empty(),
            "{what} left a domain"
        );
        assert!(
            empty_or_missing(&b.data_dir().join("vms")),
            "{what} left server files"
        );
        assert!(
            empty_or_missing(&b.data_dir().join("work")),
            "{what} left work files"
        );
    }
    let (status, imported) = admin_b.post_bytes(&import, archive).await;
    assert_eq!(status, 201, "{imported}");
    let moved = imported["vm"]["id"].as_str().unwrap().to_owned();
    let moved_dir = b.data_dir().join("vms").join(&moved);
    assert_eq!(
        hash(moved_dir.join("disk.qcow2")).await,
        running,
        "byte-for-byte on B"
    );
    let (status, body) = carol
        .post(&format!("/api/v1/vms/{moved}/start"), json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    wait_serial(
        &moved_dir.join("serial.log"),
        "NUAGE-HOSTNAME=moved-web",
        Duration::from_secs(90),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_during_a_backup_or_an_import_fails_the_job_and_leaves_nothing() {
    let points = [("NUAGE_FAILPOINTS", "backup-copy")];
    let (mut a, admin, image) = Daemon::with_guest_image(&points).await;
    let quota = json!({"vcpus": 4, "memory_mib": 1024, "disk_gib": 10, "vms": 3, "snapshots": 2});
    let alice = a.user(&admin, "alice", "alice-pass", quota).await;
    let (id, _) = alice.create_small_vm(&image, json!({"name": "web"})).await;
    let disk = a.data_dir().join("vms").join(&id).join("disk.qcow2");
    let before = hash(disk.clone()).await;
    let work = a.data_dir().join("work");

    // The backup job sits at the failpoint with libvirt's copy under way: kill the daemon.
    let (status, job) = alice
        .post(&format!("/api/v1/vms/{id}/backups"), json!({}))
        .await;
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while empty_or_missing(&work) {
        assert!(
            Instant::now() < deadline,
            "the backup never started writing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| a.kill_and_restart(&[]));
    let alice = a.api(&a.token_of("alice", "alice-pass").await);
    let (_, job) = alice.get(&format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("daemon stopped"),
        "{job}"
    );
    assert!(empty_or_missing(&work), "partial files left");
    assert!(
        empty_or_missing(&a.data_dir().join("backups")),
        "a partial backup left"
    );
    let (_, backups) = alice.get("/api/v1/backups").await;
    assert_eq!(backups, json!([]));
    let (_, me) = alice.get("/api/v1/me").await;
    assert_eq!(me["usage"]["disk_gib"], 1, "the reservation is freed: {me}");
    let (_, got) = alice.get(&format!("/api/v1/vms/{id}")).await;
    assert_eq!(got["state"], "running", "the source is intact");
    assert_eq!(
        hash(disk.clone()).await,
        before,
        "the source disk is intact"
    );
    let jobinfo = virsh(&["domjobinfo", &format!("nuage-{id}")]);
    assert!(
        jobinfo.contains("None"),
        "libvirt's backup job is over: {jobinfo}"
    );

    // Now an import, killed halfway through the archive.
    let (status, archive) = alice.get_bytes(&format!("/api/v1/vms/{id}/export")).await;
    assert_eq!(status, 200);
    tokio::task::block_in_place(|| a.kill_and_restart(&[("NUAGE_FAILPOINTS", "import-half")]));
    let admin = a.api(&a.admin_token().await);
    let upload = {
        let admin = a.api(&a.admin_token().await);
        tokio::spawn(async move {
            admin
                .post_bytes("/api/v1/vms/import?name=moved", archive)
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, jobs) = admin.get("/api/v1/jobs").await;
        let half = jobs.as_array().unwrap().iter().any(|j| {
            j["kind"] == "import"
                && j["state"] == "running"
                && j["progress"].as_f64().unwrap() > 0.4
        });
        if half {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the import never got halfway: {jobs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !empty_or_missing(&work),
        "the import is writing in its work folder"
    );
    tokio::task::block_in_place(|| a.kill_and_restart(&[]));
    let _ = upload.await;
    let admin = a.api(&a.admin_token().await);
    let (_, jobs) = admin.get("/api/v1/jobs").await;
    let import = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "import")
        .unwrap()
        .clone();
    assert_eq!(import["state"], "failed", "{import}");
    assert!(empty_or_missing(&work), "partial import files left");
    let (_, all) = admin.get("/api/v1/vms?all=true").await;
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "no server was made: {all}"
    );
    assert_eq!(domains_under(&a.data_dir()).len(), 1, "no domain was made");
}
