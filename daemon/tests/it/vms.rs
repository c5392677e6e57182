//! Virtual servers on libvirt's test driver: lifecycle, isolation, quotas, bad input.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Reply, TestApp};

fn roomy() -> Value {
    json!({"vcpus": 8, "memory_mib": 8192, "disk_gib": 100, "vms": 5, "snapshots": 5})
}

fn server(name: &str, image: &str) -> Value {
    json!({"name": name, "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1})
}

async fn act(t: &TestApp, token: &str, id: &str, action: &str) -> Reply {
    t.send(
        Method::POST,
        &format!("/api/v1/vms/{id}/{action}"),
        Some(token),
        None,
    )
    .await
}

/// Waits until the server reaches `state` (libvirt's events arrive asynchronously).
async fn wait_state(t: &TestApp, token: &str, id: &str, state: &str) -> Value {
    for _ in 0..100 {
        let r = t.get(&format!("/api/v1/vms/{id}"), Some(token)).await;
        if r.body["state"] == state {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server {id} never reached {state}");
}

#[tokio::test]
async fn a_server_lives_from_create_to_delete() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", roomy()).await;

    let mut req = server("web-1", &image);
    req["hostname"] = "web".into();
    req["ssh_authorized_keys"] = json!(["ssh-ed25519 AAAAC3Nza alice@laptop"]);
    let r = t.post("/api/v1/vms", Some(&alice), &req.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let vm = r.body.clone();
    let id = vm["id"].as_str().unwrap().to_owned();
    assert_eq!(vm["state"], "running");
    assert_eq!(vm["owner_id"], alice_id.as_str());
    assert_eq!(vm["hostname"], "web");
    for key in [
        "id",
        "name",
        "owner_id",
        "state",
        "vcpus",
        "memory_mib",
        "disk_gib",
        "image_id",
        "created_at",
        "ip_addresses",
    ] {
        assert!(vm.get(key).is_some(), "missing {key}");
    }
    let dir = t.data_dir.join("vms").join(&id);
    assert!(dir.join("disk.qcow2").is_file() && dir.join("seed.img").is_file());
    let me = t.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(
        me.body["usage"],
        json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0})
    );
    assert_eq!(
        t.get("/api/v1/vms", Some(&alice))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Power actions, each only where it applies.
    assert_eq!(
        act(&t, &alice, &id, "start").await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        act(&t, &alice, &id, "resume").await.status,
        StatusCode::CONFLICT
    );
    let r = act(&t, &alice, &id, "suspend").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["state"], "paused");
    assert_eq!(
        act(&t, &alice, &id, "resume").await.body["state"],
        "running"
    );
    assert_eq!(
        act(&t, &alice, &id, "reboot").await.body["state"],
        "running"
    );
    assert_eq!(act(&t, &alice, &id, "reset").await.body["state"], "running");
    assert_eq!(act(&t, &alice, &id, "stop").await.body["state"], "stopped");
    assert_eq!(
        act(&t, &alice, &id, "stop").await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(act(&t, &alice, &id, "start").await.body["state"], "running");
    let r = act(&t, &alice, &id, "shutdown").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    wait_state(&t, &alice, &id, "stopped").await;
    assert_eq!(
        act(&t, &alice, &id, "explode").await.status,
        StatusCode::NOT_FOUND
    );

    // Resize while stopped: applied at once. Disks only grow.
    let path = format!("/api/v1/vms/{id}");
    let r = t
        .send(
            Method::PATCH,
            &path,
            Some(&alice),
            Some(r#"{"vcpus":2,"memory_mib":512,"disk_gib":2}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            r.body["vcpus"].as_u64(),
            r.body["memory_mib"].as_u64(),
            r.body["disk_gib"].as_u64()
        ),
        (Some(2), Some(512), Some(2))
    );
    let r = t
        .send(
            Method::PATCH,
            &path,
            Some(&alice),
            Some(r#"{"disk_gib":1}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Resize while running: vCPUs and memory wait for the next boot, and say so.
    act(&t, &alice, &id, "start").await;
    let r = t
        .send(Method::PATCH, &path, Some(&alice), Some(r#"{"vcpus":3}"#))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["vcpus"], 2);
    assert_eq!(r.body["pending"], json!({"vcpus": 3, "memory_mib": 512}));
    assert_eq!(
        t.get("/api/v1/me", Some(&alice)).await.body["usage"]["vcpus"],
        3
    );
    // A rename meanwhile keeps the resize pending (and its quota counted).
    let r = t
        .send(
            Method::PATCH,
            &path,
            Some(&alice),
            Some(r#"{"name":"web-live"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["name"].as_str(), r.body["vcpus"].as_u64()),
        (Some("web-live"), Some(2))
    );
    assert_eq!(r.body["pending"], json!({"vcpus": 3, "memory_mib": 512}));
    assert_eq!(
        t.get("/api/v1/me", Some(&alice)).await.body["usage"]["vcpus"],
        3
    );
    act(&t, &alice, &id, "stop").await;
    let r = t.get(&path, Some(&alice)).await;
    assert_eq!(r.body["vcpus"], 3);
    assert!(r.body.get("pending").is_none());
    let r = t
        .send(
            Method::PATCH,
            &path,
            Some(&alice),
            Some(r#"{"name":"web-2"}"#),
        )
        .await;
    assert_eq!(r.body["name"], "web-2");

    let r = t.send(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.get(&path, Some(&alice)).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(!dir.exists(), "disk and seed are removed");
    let me = t.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(
        me.body["usage"],
        json!({"vcpus": 0, "memory_mib": 0, "disk_gib": 0, "vms": 0, "snapshots": 0})
    );
}

#[tokio::test]
async fn no_tenant_sees_or_touches_another_tenants_server() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", roomy()).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", roomy()).await;
    let r = t
        .post(
            "/api/v1/vms",
            Some(&alice),
            &server("secret", &image).to_string(),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/vms/{id}");

    assert_eq!(t.get("/api/v1/vms", Some(&bob)).await.body, json!([]));
    let missing = t
        .get(
            "/api/v1/vms/00000000-0000-0000-0000-000000000000",
            Some(&bob),
        )
        .await;
    let theirs = t.get(&path, Some(&bob)).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(
        theirs.body, missing.body,
        "another's server looks exactly like a missing one"
    );
    for action in ["stop", "start", "shutdown", "reboot", "suspend"] {
        assert_eq!(
            act(&t, &bob, &id, action).await.status,
            StatusCode::NOT_FOUND,
            "{action}"
        );
    }
    assert_eq!(
        t.send(Method::PATCH, &path, Some(&bob), Some(r#"{"vcpus":2}"#))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.send(Method::DELETE, &path, Some(&bob), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get("/api/v1/vms?all=true", Some(&bob)).await.status,
        StatusCode::FORBIDDEN
    );
    // Bob may use the same name: names are unique per owner.
    assert_eq!(
        t.post(
            "/api/v1/vms",
            Some(&bob),
            &server("secret", &image).to_string()
        )
        .await
        .status,
        StatusCode::CREATED
    );

    let alice_view = t.get(&path, Some(&alice)).await;
    assert_eq!(alice_view.body["state"], "running", "untouched by bob");
    assert_eq!(alice_view.body["vcpus"], 1);
    let all = t.get("/api/v1/vms?all=true", Some(&admin)).await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    assert_eq!(
        t.get("/api/v1/vms", Some(&admin)).await.body,
        json!([]),
        "without all=true an admin sees their own"
    );
}

#[tokio::test]
async fn quota_refusals_name_the_resource_and_the_numbers() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t
        .user_with_quota(
            &admin,
            "alice",
            json!({"vcpus": 2, "memory_mib": 1024, "disk_gib": 10, "vms": 2, "snapshots": 0}),
        )
        .await;
    let mut big = server("big", &image);
    big["vcpus"] = 3.into();
    let r = t.post("/api/v1/vms", Some(&alice), &big.to_string()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "quota_exceeded");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("vcpus") && msg.contains('3') && msg.contains('2'),
        "{msg}"
    );

    let r = t
        .post(
            "/api/v1/vms",
            Some(&alice),
            &server("a", &image).to_string(),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = t
        .send(
            Method::PATCH,
            &format!("/api/v1/vms/{id}"),
            Some(&alice),
            Some(r#"{"disk_gib":11}"#),
        )
        .await;
    assert_eq!(r.code(), "quota_exceeded");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("disk_gib"));

    // Lowering a quota below usage is allowed; it blocks new allocations only.
    let me = t.get("/api/v1/me", Some(&alice)).await;
    let uid = me.body["user"]["id"].as_str().unwrap();
    let zero =
        json!({"quota": {"vcpus": 0, "memory_mib": 0, "disk_gib": 0, "vms": 0, "snapshots": 0}});
    assert_eq!(
        t.send(
            Method::PATCH,
            &format!("/api/v1/users/{uid}"),
            Some(&admin),
            Some(&zero.to_string())
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        t.post(
            "/api/v1/vms",
            Some(&alice),
            &server("b", &image).to_string()
        )
        .await
        .code(),
        "quota_exceeded"
    );
    assert_eq!(
        t.get(&format!("/api/v1/vms/{id}"), Some(&alice)).await.body["state"],
        "running"
    );
}

#[tokio::test]
async fn twenty_concurrent_creates_with_room_for_three_give_exactly_three() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t
        .user_with_quota(
            &admin,
            "alice",
            json!({"vcpus": 100, "memory_mib": 100000, "disk_gib": 100, "vms": 3, "snapshots": 0}),
        )
        .await;
    let t = std::sync::Arc::new(t);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (t, alice, body) = (
            t.clone(),
            alice.clone(),
            server(&format!("race-{i}"), &image).to_string(),
        );
        tasks.push(tokio::spawn(async move {
            t.post("/api/v1/vms", Some(&alice), &body).await
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for task in tasks {
        let r = task.await.unwrap();
        match r.status {
            StatusCode::CREATED => created += 1,
            StatusCode::FORBIDDEN if r.code() == "quota_exceeded" => refused += 1,
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!((created, refused), (3, 17));
    assert_eq!(
        t.get("/api/v1/vms", Some(&alice))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        std::fs::read_dir(t.data_dir.join("vms")).unwrap().count(),
        3,
        "refused creates leave no files"
    );
}

#[tokio::test]
async fn bad_server_requests_get_4xx_and_create_nothing() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", roomy()).await;
    let with = |field: &str, value: Value| {
        let mut v = server("ok", &image);
        v[field] = value;
        v.to_string()
    };
    let cases: Vec<(String, u16)> = vec![
        (with("name", "a<b".into()), 422),
        (with("name", "it's".into()), 422),
        (with("name", "a/b".into()), 422),
        (with("name", "..".into()), 422),
        (with("name", "x".repeat(64).into()), 422),
        (with("name", "".into()), 422),
        (with("hostname", "-bad".into()), 422),
        (with("vcpus", 0.into()), 422),
        (with("vcpus", 1000.into()), 422),
        (with("memory_mib", 1.into()), 422),
        (with("disk_gib", 0.into()), 422),
        (with("disk_gib", (-1).into()), 400),
        (with("vcpus", "two".into()), 400),
        (with("image_id", "no-such-image".into()), 422),
        (with("password", "short".into()), 422),
        (with("ssh_authorized_keys", json!(["not a key"])), 422),
        (
            with("ssh_authorized_keys", json!(["ssh-rsa AAAA\nssh-rsa BBBB"])),
            422,
        ),
        (with("surprise", true.into()), 400),
        (r#"{"name": "x""#.to_owned(), 400),
        ("[]".to_owned(), 400),
    ];
    for (body, status) in cases {
        let r = t.post("/api/v1/vms", Some(&alice), &body).await;
        assert_eq!(r.status.as_u16(), status, "{body} -> {}", r.text);
    }
    let huge = with("password", "x".repeat(2 << 20).into());
    assert_eq!(
        t.post("/api/v1/vms", Some(&alice), &huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(t.get("/api/v1/vms", Some(&alice)).await.body, json!([]));
    assert_eq!(
        std::fs::read_dir(t.data_dir.join("vms")).unwrap().count(),
        0
    );
    assert_eq!(
        t.get("/api/v1/me", Some(&alice)).await.body["usage"]["vms"],
        0
    );

    let ok = server("dup", &image).to_string();
    assert_eq!(
        t.post("/api/v1/vms", Some(&alice), &ok).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        t.post("/api/v1/vms", Some(&alice), &ok).await.status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn a_server_created_stopped_waits_to_be_started() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let mut req = server("later", &image);
    req["start"] = false.into();
    let r = t.post("/api/v1/vms", Some(&admin), &req.to_string()).await;
    assert_eq!(r.body["state"], "stopped", "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(act(&t, &admin, &id, "start").await.body["state"], "running");
}

#[tokio::test]
async fn a_late_libvirt_event_does_not_undo_a_newer_state() {
    use nuage_daemon::hypervisor::events::{DomainEvent, DomainEventKind, StopDetail};
    let (app, t) = TestApp::with_policy(&[]).await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let (alice, _) = t.user_with_quota(&admin, "alice", roomy()).await;
    let r = t
        .post(
            "/api/v1/vms",
            Some(&alice),
            &server("web", &image).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // The STOPPED of an earlier stop, delivered after the server was started again.
    app.on_domain_event(DomainEvent {
        name: format!("nuage-{id}"),
        kind: DomainEventKind::Stopped,
        stop: Some(StopDetail::Destroyed),
    })
    .await;
    let vm = t.get(&format!("/api/v1/vms/{id}"), Some(&alice)).await.body;
    assert_eq!(vm["state"], "running", "libvirt says it runs");
    // A stop that really happened behind nuaged's back is recorded.
    let conn = virt::connect::Connect::open(Some("test:///default")).unwrap();
    conn.lookup_domain_by_name(&format!("nuage-{id}"))
        .unwrap()
        .destroy()
        .unwrap();
    app.on_domain_event(DomainEvent {
        name: format!("nuage-{id}"),
        kind: DomainEventKind::Stopped,
        stop: Some(StopDetail::Destroyed),
    })
    .await;
    let vm = t.get(&format!("/api/v1/vms/{id}"), Some(&alice)).await.body;
    assert_eq!(vm["state"], "stopped");
    assert_eq!(vm["stop_reason"], "stopped", "powered off by someone: {vm}");
}

/// A resize whose disk grew but whose definition failed keeps the disk's new size in the
/// record, so the quota counts what the disk really takes.
#[tokio::test]
async fn a_failed_resize_keeps_counting_a_disk_that_already_grew() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let q = json!({"vcpus": 4, "memory_mib": 4096, "disk_gib": 10, "vms": 2, "snapshots": 0});
    let (alice, _) = t.user_with_quota(&admin, "alice", q).await;
    let body = json!({"name": "web", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1, "start": false});
    let r = t.post("/api/v1/vms", Some(&alice), &body.to_string()).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    nuage_daemon::app::arm_failpoint(&format!("resize-after-grow:{id}"));
    let r = t
        .send(
            Method::PATCH,
            &format!("/api/v1/vms/{id}"),
            Some(&alice),
            Some(r#"{"disk_gib":3,"vcpus":2}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    let out = std::process::Command::new("qemu-img")
        .args(["info", "-f", "qcow2", "--output=json"])
        .arg(t.data_dir.join("vms").join(&id).join("disk.qcow2"))
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["virtual-size"], 3u64 << 30, "the disk grew");
    let vm = t.get(&format!("/api/v1/vms/{id}"), Some(&alice)).await;
    assert_eq!(vm.body["disk_gib"], 3, "{}", vm.text);
    assert_eq!(vm.body["vcpus"], 1, "the rest is given back");
    let me = t.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(me.body["usage"]["disk_gib"], 3);
}

/// A caller that goes away in the middle of a create, an action or a delete (a client that
/// disconnects drops its request) leaves no server half-made: each change runs to its end.
#[tokio::test]
async fn changes_finish_when_their_caller_goes_away() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let q = json!({"vcpus": 40, "memory_mib": 40960, "disk_gib": 40, "vms": 40, "snapshots": 0});
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", q).await;
    let actor = crate::support::tenant(&alice_id, "alice");
    // Abandon each create after a growing delay, so that every await point gets its turn.
    for i in 0..20u64 {
        let req: nuage_shared::CreateVm = serde_json::from_value(json!({
            "name": format!("web-{i}"), "image_id": image, "vcpus": 1, "memory_mib": 256,
            "disk_gib": 1
        }))
        .unwrap();
        let _ = tokio::time::timeout(
            std::time::Duration::from_micros(200 * i),
            t.app.create_vm(&actor, req),
        )
        .await;
    }
    // Whatever was begun finishes: nothing stays `creating`, and usage matches what exists.
    let listed = t
        .poll("/api/v1/vms", &alice, |l| {
            l.as_array()
                .unwrap()
                .iter()
                .all(|v| v["state"] != "creating")
        })
        .await;
    let listed = listed.as_array().unwrap();
    let states: Vec<_> = listed.iter().map(|v| (&v["name"], &v["state"])).collect();
    assert!(listed.iter().all(|v| v["state"] == "running"), "{states:?}");
    let me = t.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(me.body["usage"]["vms"], listed.len(), "{}", me.text);
    // Deletes abandoned at once still finish.
    for v in listed {
        let id = v["id"].as_str().unwrap().to_owned();
        let _ = tokio::time::timeout(std::time::Duration::ZERO, t.app.delete_vm(&actor, &id)).await;
    }
    let listed = t
        .poll("/api/v1/vms", &alice, |l| l.as_array().unwrap().is_empty())
        .await;
    assert_eq!(listed, json!([]));
    assert_eq!(
        t.get("/api/v1/me", Some(&alice)).await.body["usage"]["vms"],
        0
    );
}

/// A tenant's disk and seed, and the database's journal, are the daemon's alone; the seed holds
/// only a hash of the server's password.
#[tokio::test]
async fn disks_seeds_and_the_database_are_private_and_the_seed_has_no_password() {
    use std::os::unix::fs::MetadataExt;
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let q = json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0});
    let (alice, _) = t.user_with_quota(&admin, "alice", q).await;
    let body = json!({"name": "web", "image_id": image, "vcpus": 1, "memory_mib": 256,
                      "disk_gib": 1, "password": "Tenant-Secret-42"});
    let r = t.post("/api/v1/vms", Some(&alice), &body.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let dir = t.data_dir.join("vms").join(r.body["id"].as_str().unwrap());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    for (file, want) in [
        (dir.join("disk.qcow2"), 0o600),
        (dir.join("seed.img"), 0o600),
        (t.data_dir.join("nuage.db"), 0o600),
        (t.data_dir.join("nuage.db-wal"), 0o600),
        (dir.clone(), 0o711),
    ] {
        assert_eq!(mode(&file), want, "{}", file.display());
    }
    let seed = std::fs::read(dir.join("seed.img")).unwrap();
    let needle = b"Tenant-Secret-42";
    assert!(
        !seed.windows(needle.len()).any(|w| w == needle),
        "the password is in the seed in plain text"
    );
    assert!(
        seed.windows(3).any(|w| w == b"$6$"),
        "a SHA-512 crypt hash is"
    );
}
