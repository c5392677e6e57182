//! Snapshots, backups, restore, export/import and jobs on `test:///default` (real files, real
//! archives; the simulated driver's "running" guests write nothing, so copies are plain copies).

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Reply, TestApp};

fn quota(disk_gib: u64, snapshots: u32) -> Value {
    json!({"vcpus": 8, "memory_mib": 8192, "disk_gib": disk_gib, "vms": 4, "snapshots": snapshots})
}

async fn server(t: &TestApp, token: &str, image: &str, name: &str, start: bool) -> String {
    let body = json!({"name": name, "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1, "start": start});
    let r = t.post("/api/v1/vms", Some(token), &body.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

/// Polls a job until it ends; returns it.
pub async fn wait_job(t: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let r = t.get(&format!("/api/v1/jobs/{id}"), Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.body["state"] != "running" {
            return r.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {id} still running after 30 s");
}

async fn backup(t: &TestApp, token: &str, vm: &str) -> (Value, Value) {
    let r = t
        .post(&format!("/api/v1/vms/{vm}/backups"), Some(token), "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["kind"], "backup");
    let job = wait_job(t, token, r.body["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["progress"], 1.0);
    let b = t
        .get(
            &format!("/api/v1/backups/{}", job["backup_id"].as_str().unwrap()),
            Some(token),
        )
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    (job, b.body)
}

/// Alice (room for 6 GiB and 2 snapshots) with a stopped server `web` and one backup of it:
/// her token, the server's id and the backup's id.
async fn stopped_server_with_a_backup(t: &TestApp) -> (String, String, String) {
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", quota(6, 2)).await;
    let vm = server(t, &alice, &image, "web", false).await;
    let (_, b) = backup(t, &alice, &vm).await;
    let bid = b["id"].as_str().unwrap().to_owned();
    (alice, vm, bid)
}

/// `qemu-img compare`: whether two disks show the same content to a guest.
fn same_content(a: &std::path::Path, b: &std::path::Path) -> bool {
    std::process::Command::new("qemu-img")
        .arg("compare")
        .arg("-q")
        .arg(a)
        .arg(b)
        .status()
        .unwrap()
        .success()
}

/// Writes a pattern into a (stopped) disk through qemu-io, as a guest would.
pub fn scribble(disk: &std::path::Path, pattern: u8, offset_mib: u64) {
    let out = std::process::Command::new("qemu-io")
        .arg("-f")
        .arg("qcow2")
        .arg("-c")
        .arg(format!("write -P {pattern} {offset_mib}M 1M"))
        .arg(disk)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// True when the folder is missing or empty.
fn nothing_in(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

fn disk_of(t: &TestApp, vm: &str) -> std::path::PathBuf {
    t.data_dir.join("vms").join(vm).join("disk.qcow2")
}

#[tokio::test]
async fn snapshots_are_counted_named_and_reverted() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", quota(20, 2)).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", quota(20, 2)).await;
    let vm = server(&t, &alice, &image, "web", false).await;
    let snaps = format!("/api/v1/vms/{vm}/snapshots");

    for bad in ["", "Has Caps", "semi;colon", &"a".repeat(64)] {
        let r = t
            .post(&snaps, Some(&alice), &json!({ "name": bad }).to_string())
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
    }
    // A stopped server: disk only.
    let r = t.post(&snaps, Some(&alice), r#"{"name":"clean"}"#).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["with_memory"], false);
    let clean = r.body["id"].as_str().unwrap().to_owned();
    let r = t.post(&snaps, Some(&alice), r#"{"name":"clean"}"#).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    // A running one: with memory.
    let r = t
        .post(&format!("/api/v1/vms/{vm}/start"), Some(&alice), "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r = t.post(&snaps, Some(&alice), r#"{"name":"live"}"#).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["with_memory"], true);
    let live = r.body["id"].as_str().unwrap().to_owned();

    // The quota holds 2.
    let r = t.post(&snaps, Some(&alice), r#"{"name":"third"}"#).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.code(), "quota_exceeded");
    assert!(r.text.contains("snapshots"), "{}", r.text);

    // Bob sees none of it.
    assert_eq!(
        t.get(&snaps, Some(&bob)).await.status,
        StatusCode::NOT_FOUND
    );
    let r = t
        .post(&format!("{snaps}/{clean}/revert"), Some(&bob), "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t
        .send(
            Method::DELETE,
            &format!("{snaps}/{clean}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Reverting to the disk-only snapshot leaves the server off; to the live one, running.
    let r = t
        .post(&format!("{snaps}/{clean}/revert"), Some(&alice), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "stopped");
    let r = t
        .post(&format!("{snaps}/{live}/revert"), Some(&alice), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "running");
    let r = t
        .post(&format!("{snaps}/nope/revert"), Some(&alice), "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Deleting one frees its quota.
    let list = t.get(&snaps, Some(&alice)).await;
    assert_eq!(list.body.as_array().unwrap().len(), 2);
    let r = t
        .send(
            Method::DELETE,
            &format!("{snaps}/{clean}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = t.post(&snaps, Some(&alice), r#"{"name":"third"}"#).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Deleting the server takes its snapshots with it.
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/vms/{vm}"),
            Some(&alice),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let me = t.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(me.body["usage"]["snapshots"], 0, "{}", me.text);
}

#[tokio::test]
async fn a_backup_counts_against_the_disk_quota_and_restores_in_place_and_as_new() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", quota(3, 2)).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", quota(20, 2)).await;
    let vm = server(&t, &alice, &image, "web", true).await;
    scribble(&disk_of(&t, &vm), 0xab, 3);
    let before = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(disk_of(&t, &vm), before.path()).unwrap();

    let (job, b) = backup(&t, &alice, &vm).await;
    assert_eq!(job["vm_id"], vm.as_str());
    assert_eq!(b["state"], "ready");
    assert_eq!(b["quota_gib"], 1);
    assert!(b["size_bytes"].as_u64().unwrap() > 0);
    let bid = b["id"].as_str().unwrap().to_owned();
    let me = t.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(
        me.body["usage"]["disk_gib"], 2,
        "server 1 GiB + backup 1 GiB: {}",
        me.text
    );

    // Bob can neither see nor use it.
    assert_eq!(
        t.get(&format!("/api/v1/backups/{bid}"), Some(&bob))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.get("/api/v1/backups", Some(&bob)).await.body, json!([]));
    let r = t
        .post(
            &format!("/api/v1/backups/{bid}/restore"),
            Some(&bob),
            r#"{"as_new":true}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t
        .get(
            &format!("/api/v1/jobs/{}", job["id"].as_str().unwrap()),
            Some(&bob),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A second backup needs 1 GiB more while it runs: 3 of 3 then. A third does not fit.
    backup(&t, &alice, &vm).await;
    let r = t
        .post(&format!("/api/v1/vms/{vm}/backups"), Some(&alice), "")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.code(), "quota_exceeded");
    assert!(r.text.contains("disk_gib"), "{}", r.text);

    // In place needs a stopped server.
    let restore = format!("/api/v1/backups/{bid}/restore");
    let r = t.post(&restore, Some(&alice), "{}").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    t.post(&format!("/api/v1/vms/{vm}/stop"), Some(&alice), "")
        .await;
    scribble(&disk_of(&t, &vm), 0x11, 3);
    assert!(!same_content(&disk_of(&t, &vm), before.path()));
    let r = t.post(&restore, Some(&alice), "{}").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let job = wait_job(&t, &alice, r.body["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert!(
        same_content(&disk_of(&t, &vm), before.path()),
        "restored in place"
    );

    // As new: needs a server's room in the quota (3 GiB: server + 2 backups); free a backup.
    let r = t
        .post(
            &restore,
            Some(&alice),
            r#"{"as_new":true,"name":"web-copy"}"#,
        )
        .await;
    // Refused before anything is unpacked: the new server's disk is charged first.
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("disk_gib"), "{}", r.text);
    let others: Vec<Value> = t
        .get("/api/v1/backups", Some(&alice))
        .await
        .body
        .as_array()
        .unwrap()
        .clone();
    let other = others.iter().find(|x| x["id"] != bid.as_str()).unwrap();
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/backups/{}", other["id"].as_str().unwrap()),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = t
        .post(
            &restore,
            Some(&alice),
            r#"{"as_new":true,"name":"web-copy"}"#,
        )
        .await;
    let job = wait_job(&t, &alice, r.body["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let copy = job["vm_id"].as_str().unwrap();
    let r = t.get(&format!("/api/v1/vms/{copy}"), Some(&alice)).await;
    assert_eq!(r.body["name"], "web-copy");
    assert_eq!(r.body["state"], "stopped");
    assert_eq!(r.body["disk_gib"], 1);
    assert!(
        same_content(&disk_of(&t, copy), before.path()),
        "restored as new"
    );
    // Nothing is left in the work area.
    let work = t.data_dir.join("work");
    assert!(nothing_in(&work));
}

async fn export(t: &TestApp, token: &str, vm: &str) -> Vec<u8> {
    let r: Reply = t
        .get(&format!("/api/v1/vms/{vm}/export"), Some(token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.content_type, "application/x-tar");
    r.bytes
}

#[tokio::test]
async fn a_server_moves_between_two_hosts_and_bad_archives_leave_nothing() {
    let a = TestApp::new().await;
    let b = TestApp::new().await;
    let (admin_a, admin_b) = (a.admin_token().await, b.admin_token().await);
    let image = a.import_raw_image(&admin_a, "base", 16).await;
    let (alice, _) = a.user_with_quota(&admin_a, "alice", quota(20, 2)).await;
    let (bob, _) = a.user_with_quota(&admin_a, "bob", quota(20, 2)).await;
    let (carol, carol_id) = b.user_with_quota(&admin_b, "carol", quota(20, 2)).await;
    let vm = server(&a, &alice, &image, "web", true).await;
    scribble(&disk_of(&a, &vm), 0xcd, 5);

    assert_eq!(
        a.get(&format!("/api/v1/vms/{vm}/export"), Some(&bob))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let archive = export(&a, &alice, &vm).await;
    // The export job ends with its download.
    let job = a.get("/api/v1/jobs", Some(&alice)).await.body[0].clone();
    assert_eq!(job["kind"], "export");
    let job = wait_job(&a, &alice, job["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    let import = format!("/api/v1/vms/import?owner={carol_id}");
    // Only admins import.
    let r = b.send_bytes(&import, &carol, archive.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    // Damaged archives: one byte flipped in the disk, in the description, cut short, not a tar.
    let count = |t: &TestApp| std::fs::read_dir(t.data_dir.join("vms")).map_or(0, |d| d.count());
    let before = count(&b);
    let mid = archive.len() / 2;
    let mut flipped = archive.clone();
    flipped[mid] ^= 1;
    let mut desc = archive.clone();
    desc[530] ^= 1;
    for (what, bad) in [
        ("a flipped disk byte", flipped),
        ("a flipped description byte", desc),
        ("cut short", archive[..mid].to_vec()),
        ("not a tar", b"hello".repeat(300)),
        ("empty", Vec::new()),
    ] {
        let r = b.send_bytes(&import, &admin_b, bad).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            r.text
        );
        assert_eq!(count(&b), before, "{what} left a server folder");
        let work = b.data_dir.join("work");
        assert!(nothing_in(&work), "{what} left work files");
    }
    assert_eq!(
        b.get("/api/v1/vms?all=true", Some(&admin_b)).await.body,
        json!([])
    );
    let failed = b.get("/api/v1/jobs", Some(&admin_b)).await;
    assert!(failed
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["state"] == "failed"));

    // The real one: carol's, stopped, same disk content, its image found by name or not at all.
    let r = b.send_bytes(&import, &admin_b, archive.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let moved = r.body["vm"].clone();
    assert_eq!(r.body["job"]["state"], "succeeded");
    assert_eq!(moved["owner_id"], carol_id.as_str());
    assert_eq!(moved["name"], "web");
    assert_eq!(moved["state"], "stopped");
    assert_eq!(moved["image_id"], "");
    let moved_id = moved["id"].as_str().unwrap();
    assert!(same_content(&disk_of(&b, moved_id), &disk_of(&a, &vm)));
    let r = b
        .post(&format!("/api/v1/vms/{moved_id}/start"), Some(&carol), "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    // Importing it again: the name is taken for carol.
    let r = b.send_bytes(&import, &admin_b, archive.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = b
        .send_bytes(&format!("{import}&name=web-2"), &admin_b, archive)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn schedules_back_up_daily_and_keep_the_newest() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", quota(20, 2)).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", quota(20, 2)).await;
    let vm = server(&t, &alice, &image, "web", true).await;
    let path = format!("/api/v1/vms/{vm}/backup-schedule");
    assert_eq!(
        t.get(&path, Some(&alice)).await.status,
        StatusCode::NOT_FOUND
    );
    for bad in [
        json!({"time": "25:00", "keep": 2}),
        json!({"time": "3:00", "keep": 2}),
        json!({"time": "03:00", "keep": 0}),
    ] {
        let r = t
            .send(Method::PUT, &path, Some(&alice), Some(&bad.to_string()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
    }
    let r = t
        .send(
            Method::PUT,
            &path,
            Some(&bob),
            Some(r#"{"time":"03:00","keep":2}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t
        .send(
            Method::PUT,
            &path,
            Some(&alice),
            Some(r#"{"time":"03:00","keep":2}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["next_run"].as_str().unwrap().contains("T03:00:00"));

    // Three days pass: three scheduled backups, the newest two kept; one by hand stays.
    let (_, by_hand) = backup(&t, &alice, &vm).await;
    let app = t.app.clone();
    let mut now = time::OffsetDateTime::now_utc();
    for _ in 0..3 {
        now += time::Duration::days(1);
        let jobs = app.run_due_schedules(now).await;
        assert_eq!(jobs.len(), 1);
        wait_job(&t, &alice, &jobs[0].id).await;
        // Not again the same day.
        assert!(app.run_due_schedules(now).await.is_empty());
    }
    let list = t
        .get(&format!("/api/v1/backups?vm={vm}"), Some(&alice))
        .await;
    let list = list.body.as_array().unwrap();
    assert_eq!(list.iter().filter(|b| b["scheduled"] == true).count(), 2);
    assert!(list.iter().any(|b| b["id"] == by_hand["id"]));
    let r = t.send(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn ended_and_unknown_jobs_cannot_be_cancelled() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", quota(20, 2)).await;
    let vm = server(&t, &alice, &image, "web", true).await;
    let (job, _) = backup(&t, &alice, &vm).await;
    let r = t
        .post(
            &format!("/api/v1/jobs/{}/cancel", job["id"].as_str().unwrap()),
            Some(&alice),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(
        t.post("/api/v1/jobs/nope/cancel", Some(&alice), "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_cancelled_backup_ends_cancelled_and_leaves_nothing() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    // An image of 384 MiB that does not compress, so the job takes a while.
    let file = t.data_dir.join("import").join("noise.raw");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..384 {
            for chunk in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&block).unwrap();
        }
    }
    let body = json!({"name": "noise", "path": file.to_str().unwrap()}).to_string();
    let r = t.post("/api/v1/images", Some(&admin), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let image = r.body["id"].as_str().unwrap().to_owned();
    let (alice, _) = t.user_with_quota(&admin, "alice", quota(20, 2)).await;
    let vm = server(&t, &alice, &image, "web", false).await;

    let r = t
        .post(&format!("/api/v1/vms/{vm}/backups"), Some(&alice), "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // While it runs the server is busy.
    let r = t
        .post(&format!("/api/v1/vms/{vm}/start"), Some(&alice), "")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("backup"), "{}", r.text);
    let r = t
        .post(&format!("/api/v1/jobs/{id}/cancel"), Some(&alice), "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let job = wait_job(&t, &alice, &id).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    assert_eq!(t.get("/api/v1/backups", Some(&alice)).await.body, json!([]));
    let me = t.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(
        me.body["usage"]["disk_gib"], 1,
        "the reservation is freed: {}",
        me.text
    );
    let work = t.data_dir.join("work");
    assert!(nothing_in(&work));
    let store = t.data_dir.join("backups");
    assert!(nothing_in(&store));
    // And the server is free again.
    let r = t
        .post(&format!("/api/v1/vms/{vm}/start"), Some(&alice), "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
}

#[tokio::test]
async fn a_user_with_backups_is_not_deleted_until_they_are() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", quota(20, 2)).await;
    let vm = server(&t, &alice, &image, "web", false).await;
    let (_, b) = backup(&t, &alice, &vm).await;
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/vms/{vm}"),
            Some(&alice),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    // The backup outlives the server, and keeps its owner.
    let user = format!("/api/v1/users/{alice_id}");
    let r = t.send(Method::DELETE, &user, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("backup"), "{}", r.text);
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/backups/{}", b["id"].as_str().unwrap()),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = t.send(Method::DELETE, &user, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

/// A restore in place that fails before its disk is in place leaves the server as it was,
/// snapshots included (they used to be deleted first).
#[tokio::test]
async fn a_failed_restore_in_place_keeps_the_disk_and_the_snapshots() {
    let t = TestApp::new().await;
    let (alice, vm, bid) = stopped_server_with_a_backup(&t).await;
    let r = t.snapshot(&alice, &vm, "before").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    scribble(&disk_of(&t, &vm), 0x22, 2);
    let now = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(disk_of(&t, &vm), now.path()).unwrap();

    nuage_daemon::app::arm_failpoint(&format!("restore-before-rename:{vm}"));
    let r = t
        .post(
            &format!("/api/v1/backups/{bid}/restore"),
            Some(&alice),
            "{}",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let job = wait_job(&t, &alice, r.body["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        same_content(&disk_of(&t, &vm), now.path()),
        "the disk is untouched"
    );
    let snaps = t
        .get(&format!("/api/v1/vms/{vm}/snapshots"), Some(&alice))
        .await;
    assert_eq!(snaps.body.as_array().unwrap().len(), 1, "{}", snaps.text);
}

/// A fresh export is a job that charges the archive to the owner's disk quota while it exists,
/// one at a time per server, and ends with its download: succeeded when read to the end,
/// cancelled (its folder gone, its charge given back) when the download is dropped.
#[tokio::test]
async fn an_export_is_charged_while_it_exists_and_ends_with_its_download() {
    use axum::body::Body;
    use tower::ServiceExt;
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", quota(3, 0)).await;
    let vm = server(&t, &alice, &image, "web", false).await;
    let usage = || async {
        t.get("/api/v1/me", Some(&alice)).await.body["usage"]["disk_gib"]
            .as_u64()
            .unwrap()
    };
    let start_export = || {
        let req = axum::http::Request::get(format!("/api/v1/vms/{vm}/export"))
            .header("authorization", format!("Bearer {alice}"))
            .body(Body::empty())
            .unwrap();
        t.router.clone().oneshot(req)
    };
    // The export jobs, once none of them runs.
    let export_jobs = || async {
        let ended = |jobs: &Value| {
            jobs.as_array()
                .unwrap()
                .iter()
                .all(|j| j["state"] != "running")
        };
        let jobs = t.poll("/api/v1/jobs", &alice, ended).await;
        jobs.as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"] == "export")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(usage().await, 1);

    // The archive streams: charged, and a second export waits its turn.
    let resp = start_export().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(usage().await, 2, "the archive is charged while it exists");
    let second = start_export().await.unwrap();
    assert_eq!(second.status(), StatusCode::CONFLICT);
    // Dropped before its end (this small archive is one frame: none is read): cancelled,
    // nothing left, the charge given back.
    drop(resp);
    let jobs = export_jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["state"], "cancelled", "{jobs:?}");
    assert!(
        nothing_in(&t.data_dir.join("work")),
        "the work folder is gone"
    );
    assert_eq!(usage().await, 1);

    // Read to the end: succeeded.
    let archive = export(&t, &alice, &vm).await;
    assert!(!archive.is_empty());
    let jobs = export_jobs().await;
    assert!(jobs.iter().any(|j| j["state"] == "succeeded"), "{jobs:?}");
    assert_eq!(usage().await, 1);

    // No room in the quota for the archive: refused before any work.
    let (bob, _) = t.user_with_quota(&admin, "bob", quota(1, 0)).await;
    let bobs = server(&t, &bob, &image, "db", false).await;
    let r = t
        .get(&format!("/api/v1/vms/{bobs}/export"), Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.code(), "quota_exceeded");
}

/// A request abandoned while its archive is being made cancels the job: it does not stay
/// running forever.
#[tokio::test]
async fn an_export_abandoned_while_it_is_made_is_cancelled() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", quota(4, 0)).await;
    let vm = server(&t, &alice, &image, "web", false).await;
    let actor = crate::support::tenant(&alice_id, "alice");
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(1),
        t.app.export_vm(&actor, &vm, None),
    )
    .await;
    let jobs = t
        .poll("/api/v1/jobs", &alice, |j| {
            let j = j.as_array().unwrap();
            !j.is_empty() && j.iter().all(|j| j["state"] != "running")
        })
        .await;
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|j| j["state"] != "running"),
        "no export job runs on: {jobs}"
    );
    assert!(nothing_in(&t.data_dir.join("work")));
    assert_eq!(
        t.get("/api/v1/me", Some(&alice)).await.body["usage"]["disk_gib"],
        1
    );
}

/// Internal snapshots keep, inside the disk file, the data the guest overwrites after them: the
/// disk quota counts what the file really holds on the host, and no snapshot is taken once the
/// quota is full.
#[tokio::test]
async fn what_snapshots_hold_on_the_host_counts_against_the_disk_quota() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", quota(2, 5)).await;
    let vm = server(&t, &alice, &image, "web", false).await;
    let disk = disk_of(&t, &vm);
    let usage = || async {
        t.get("/api/v1/me", Some(&alice)).await.body["usage"]["disk_gib"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(usage().await, 1);
    // The guest fills 900 MiB, a snapshot keeps it, the guest overwrites it all.
    let fill = |pattern: u8| {
        let out = std::process::Command::new("qemu-io")
            .args(["-f", "qcow2", "-c", &format!("write -P {pattern} 0 900M")])
            .arg(&disk)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    fill(0x11);
    let out = std::process::Command::new("qemu-img")
        .args(["snapshot", "-c", "kept"])
        .arg(&disk)
        .output()
        .unwrap();
    assert!(out.status.success());
    fill(0x22);
    t.app.housekeep().await.unwrap();
    assert_eq!(usage().await, 2, "the 1 GiB disk's file holds 1.8 GiB");
    // The quota is full: no snapshot now.
    let r = t.snapshot(&alice, &vm, "more").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.code(), "quota_exceeded");
}

/// Claiming a server for a job and checking its state are one step: a start that arrives
/// between a restore's check that the server is stopped and its claim waits for the claim,
/// then finds the server busy (before, both went through and the restore ran under a running
/// guest).
#[tokio::test(flavor = "multi_thread")]
async fn a_start_cannot_slip_between_a_restores_check_and_its_claim() {
    let t = TestApp::new().await;
    let (alice, vm, bid) = stopped_server_with_a_backup(&t).await;
    nuage_daemon::app::arm_failpoint(&format!("restore-claim-pause:{vm}"));
    let restore = {
        let (t, alice, bid) = (&t, alice.clone(), bid.clone());
        async move {
            t.post(
                &format!("/api/v1/backups/{bid}/restore"),
                Some(&alice),
                "{}",
            )
            .await
        }
    };
    let start = async {
        // Inside the restore's pause.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        t.post(&format!("/api/v1/vms/{vm}/start"), Some(&alice), "")
            .await
    };
    let (restored, started) = tokio::join!(restore, start);
    assert_eq!(restored.status, StatusCode::ACCEPTED, "{}", restored.text);
    assert_eq!(started.status, StatusCode::CONFLICT, "{}", started.text);
    let job = wait_job(&t, &alice, restored.body["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let vm = t.get(&format!("/api/v1/vms/{vm}"), Some(&alice)).await;
    assert_eq!(vm.body["state"], "stopped", "{}", vm.text);
}
