//! The hardening's abuse cases against the real `nuaged` binary (on libvirt's simulated
//! hypervisor: nothing here needs a guest): a burst of wrong sign-ins, 1,000 hostile
//! connections, an anonymous flood, and a crafted qcow2 that points at a host file.
//! `nuage-bench abuse` measures the same against the release build.

use std::time::Duration;

use nuage_e2e::Daemon;

fn db_bytes(daemon: &Daemon) -> u64 {
    ["nuage.db", "nuage.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(daemon.data_dir().join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_daemon_holds_under_a_login_burst_hostile_connections_and_an_anonymous_flood() {
    nuage_daemon::raise_open_files_limit();
    let daemon = tokio::task::spawn_blocking(|| Daemon::start("test:///default"))
        .await
        .unwrap();
    let http = nuage_e2e::http_client();
    let login = daemon.url("/api/v1/auth/login");
    // Signed in before the burst: the burst's address is throttled after it.
    let admin = daemon.api(&daemon.admin_token().await);

    // 200 concurrent wrong passwords: exactly the limit is checked; memory stays bounded.
    let burst: Vec<_> = (0..200)
        .map(|i| {
            let (http, login) = (http.clone(), login.clone());
            tokio::spawn(async move {
                let body =
                    serde_json::json!({"username": "admin", "password": format!("guess-{i}")});
                http.post(login)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for b in burst {
        statuses.push(b.await.unwrap());
    }
    let count = |code| statuses.iter().filter(|&&s| s == code).count();
    assert_eq!((count(401), count(429)), (5, 195), "{statuses:?}");
    let peak_mib = nuage_e2e::proc_status_kib(daemon.pid(), "VmHWM").unwrap() / 1024;
    eprintln!("abuse: peak RSS {peak_mib} MiB after the burst");
    assert!(peak_mib < 300, "{peak_mib} MiB (Argon2 checks are bounded)");

    // 1,000 hostile connections, /healthz still answers.
    let addr = daemon.url("").trim_start_matches("http://").to_owned();
    let hostile = nuage_e2e::hostile_connections(&addr, 1000).await;
    for _ in 0..20 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            http.get(daemon.url("/healthz")).send(),
        )
        .await
        .expect("/healthz answers under 1,000 hostile connections")
        .unwrap();
        assert_eq!(r.status(), 200);
    }
    drop(hostile);

    // An anonymous flood of long-path POSTs adds nothing to the database.
    let (_, before_log) = admin.get("/api/v1/audit?limit=1000").await;
    let before = db_bytes(&daemon);
    let long = "y".repeat(16 * 1024);
    for i in 0..300 {
        let path = if i % 2 == 0 {
            daemon.url(&format!("/api/v1/vms/{long}/stop"))
        } else {
            daemon.url(&format!("/api/v1/{long}"))
        };
        http.post(path).body("{}").send().await.unwrap();
    }
    let (_, after_log) = admin.get("/api/v1/audit?limit=1000").await;
    assert_eq!(
        after_log.as_array().unwrap().len(),
        before_log.as_array().unwrap().len(),
        "no audit entry per anonymous request"
    );
    let growth = db_bytes(&daemon).saturating_sub(before);
    eprintln!("abuse: database growth for 300 anonymous requests: {growth} bytes");
    assert!(growth < 1024, "{growth} bytes");
}

/// A qcow2 whose data lives in a host file (`data_file`) is refused at upload, and the file is
/// untouched.
#[tokio::test(flavor = "multi_thread")]
async fn a_crafted_qcow2_pointing_at_a_host_file_is_refused_and_the_file_untouched() {
    let daemon = tokio::task::spawn_blocking(|| Daemon::start("test:///default"))
        .await
        .unwrap();
    let admin = daemon.api(&daemon.admin_token().await);
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary");
    let evil = dir.path().join("evil.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-o"])
        .arg(format!("data_file={},data_file_raw=on", canary.display()))
        .arg(&evil)
        .arg("1M")
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(&canary, b"host secret").unwrap();
    let (status, body) = admin
        .post_bytes(
            "/api/v1/images/upload?name=evil",
            std::fs::read(&evil).unwrap(),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("data file"), "{body}");
    assert_eq!(std::fs::read(&canary).unwrap(), b"host secret");
    let (_, images) = admin.get("/api/v1/images").await;
    assert_eq!(images, serde_json::json!([]));
}
