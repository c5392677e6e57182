//! The web console in headless Chromium against the real daemon on qemu:///system with the test
//! guest: a tenant's whole self-service flow, live updates, and a second tenant who sees nothing
//! of it. Screenshots of each step go to target/e2e-screenshots/.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use nuage_e2e::{Browser, Daemon};
use serde_json::json;

/// Runs `js` (which returns a number) until it gives at least `want`, within 30 s.
async fn wait_js_number(browser: &Browser, js: &str, want: u64, what: &str) -> u64 {
    let start = Instant::now();
    loop {
        let n = browser
            .client
            .execute(js, vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0);
        if n >= want {
            return n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: {n}, wanted at least {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page is no wider than the window (a phone's, here); with a screenshot.
async fn fits_a_phone(browser: &Browser, page: &str, shot: &str) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let js = "return document.documentElement.scrollWidth - document.documentElement.clientWidth;";
    let extra = browser
        .client
        .execute(js, vec![])
        .await
        .unwrap()
        .as_i64()
        .unwrap_or(-1);
    assert_eq!(extra, 0, "the {page} is {extra} px wider than a phone");
    browser.screenshot(shot).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_runs_a_server_from_the_browser_and_another_never_sees_it() {
    assert!(
        nuage_e2e::web_dir().is_some(),
        "dist/ is missing: run `trunk build --release --offline`"
    );
    let (daemon, image) = tokio::task::spawn_blocking(|| Daemon::start_for_guest(&[]))
        .await
        .unwrap();
    let admin = daemon.api(&daemon.admin_token().await);

    // The admin creates Alice with a quota and imports the test image, in the browser.
    let admin_ui = Browser::start().await;
    admin_ui
        .sign_in(&daemon, "admin", nuage_e2e::ADMIN_PASSWORD)
        .await;
    admin_ui.click(Locator::LinkText("Users")).await;
    admin_ui.wait_for(Locator::Id("user-form"), 30).await;
    admin_ui.set_field("new-username", "alice").await;
    admin_ui.set_field("new-password", "alice-password").await;
    for (id, value) in [
        ("new-q-vcpus", "2"),
        ("new-q-memory", "512"),
        ("new-q-disk", "4"),
        ("new-q-vms", "1"),
        ("new-q-snapshots", "0"),
    ] {
        admin_ui.set_field(id, value).await;
    }
    admin_ui.click(Locator::Id("create-user")).await;
    admin_ui
        .wait_text("[data-user=alice]", "0 / 512 MiB", 30)
        .await;
    admin_ui.screenshot("console-00a-admin-users").await;
    admin_ui.click(Locator::LinkText("Images")).await;
    admin_ui.wait_for(Locator::Id("image-form"), 30).await;
    admin_ui.set_field("image-name", "test-guest").await;
    admin_ui
        .set_field("image-path", image.to_str().unwrap())
        .await;
    admin_ui.click(Locator::Id("import-image")).await;
    admin_ui
        .wait_text("[data-image=test-guest]", "qcow2", 60)
        .await;
    // An upload from the browser's computer: a 256 MiB raw disk, named after its file, with a
    // progress bar while it travels.
    let upload = daemon.data_dir().join("uploaded-disk.raw");
    std::fs::File::create(&upload)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    admin_ui
        .client
        .find(Locator::Id("upload-file"))
        .await
        .unwrap()
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    admin_ui.click(Locator::Id("upload-image")).await;
    let progress_js = "const p = document.getElementById('upload-progress'); \
        return p ? Number(p.getAttribute('aria-valuenow')) : null;";
    let mut seen = Vec::new();
    let uploading = Instant::now();
    while uploading.elapsed() < Duration::from_secs(60) {
        match admin_ui
            .client
            .execute(progress_js, vec![])
            .await
            .unwrap()
            .as_f64()
        {
            Some(v) => seen.push(v),
            None if !seen.is_empty() => break,
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("upload progress seen: {seen:?}");
    assert!(!seen.is_empty(), "no progress bar during the upload");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {seen:?}"
    );
    assert!(
        seen.iter().any(|v| *v > 0.0 && *v < 100.0),
        "the bar moved through the upload: {seen:?}"
    );
    admin_ui
        .wait_text("[data-image=uploaded-disk]", "raw", 60)
        .await;
    assert!(
        admin_ui
            .client
            .find(Locator::Id("upload-progress"))
            .await
            .is_err(),
        "the progress bar goes once the upload is done"
    );
    admin_ui.screenshot("console-00b-admin-images").await;
    let quota = json!({"vcpus": 2, "memory_mib": 512, "disk_gib": 4, "vms": 1, "snapshots": 0});
    let body =
        json!({"username": "bob", "password": "bob-password", "role": "user", "quota": quota});
    assert_eq!(admin.post("/api/v1/users", body).await.0, 201);

    let alice = Browser::start().await;
    let c = &alice.client;
    alice.sign_in(&daemon, "alice", "alice-password").await;
    alice.wait_for(Locator::Id("no-servers"), 30).await;
    alice
        .wait_text("[data-resource=vCPUs] .quota-numbers", "0 / 2", 30)
        .await;
    alice
        .wait_text("[data-resource=Servers] .quota-numbers", "0 / 1", 30)
        .await;
    alice.screenshot("console-01-empty").await;

    // The form checks as you type and knows what the quota has left.
    alice.click(Locator::Id("new-server")).await;
    alice.wait_for(Locator::Id("create-form"), 30).await;
    alice
        .wait_text("#quota-left", "2 vCPU, 512 MiB, 4 GiB, 1 server", 30)
        .await;
    alice.set_field("name", "Web 1").await;
    alice.wait_text("#name-error", "lowercase", 10).await;
    alice.set_field("memory", "4096").await;
    alice.wait_text("#memory-error", "512 MiB left", 10).await;
    alice.screenshot("console-02-form-errors").await;
    alice.set_field("name", "web-1").await;
    alice.set_field("memory", "256").await;
    alice.set_field("disk", "1").await;
    alice.set_field("hostname", "browser-made").await;
    alice.click(Locator::Id("create")).await;
    let booted = alice.wait_text("#server-state", "running", 60).await;
    eprintln!("from Create to a running server on screen: {booted:.2?}");
    alice.screenshot("console-03-running").await;

    // The console: the guest's screen on a canvas, and keys typed there reach the guest.
    let vm_id = c
        .current_url()
        .await
        .unwrap()
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let serial = daemon
        .data_dir()
        .join("vms")
        .join(&vm_id)
        .join("serial.log");
    daemon
        .wait_guest_ready(&vm_id, Duration::from_secs(90))
        .await;
    alice.click(Locator::Id("open-console")).await;
    alice.wait_text("#console-status", "connected", 30).await;
    // QEMU takes scancodes: what is typed below travels by physical key.
    alice.wait_text("#console-keys", "scancodes", 30).await;
    let lit_js = "const c = document.getElementById('console-canvas'); \
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; \
        for (let i = 0; i < d.length; i += 4) { if (d[i] > 64 || d[i + 1] > 64 || d[i + 2] > 64) n++; } return n;";
    let drawing = Instant::now();
    let lit = wait_js_number(&alice, lit_js, 500, "lit pixels on the console").await;
    eprintln!(
        "console drew the guest's screen ({lit} lit pixels) {:.2?} after opening",
        drawing.elapsed()
    );
    let canvas = c.find(Locator::Id("console-canvas")).await.unwrap();
    canvas.click().await.unwrap();
    canvas.send_keys("echo typed ok\u{E007}").await.unwrap();
    let typing = Instant::now();
    while !std::fs::read_to_string(&serial)
        .unwrap_or_default()
        .lines()
        .any(|l| l.trim_end().ends_with("typed ok") && !l.contains("echo"))
    {
        assert!(
            typing.elapsed() < Duration::from_secs(30),
            "the typed command never ran in the guest:\n{}",
            std::fs::read_to_string(&serial).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Paste as keystrokes: text typed into the guest key by key, capitals and all.
    alice.click(Locator::Id("paste-open")).await;
    alice.set_field("paste-text", "echo Pasted-OK\n").await;
    alice.click(Locator::Id("paste-type")).await;
    let pasting = Instant::now();
    while !std::fs::read_to_string(&serial)
        .unwrap_or_default()
        .lines()
        .any(|l| l.trim_end().ends_with("Pasted-OK") && !l.contains("echo"))
    {
        assert!(
            pasting.elapsed() < Duration::from_secs(30),
            "the pasted command never ran in the guest:\n{}",
            std::fs::read_to_string(&serial).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    alice.screenshot("console-03b-console").await;

    // The metrics tab draws the server's use live (samples arrive on the events stream), and the
    // page shows the address the daemon's network gave it.
    alice.wait_text("#server-address", ".", 10).await;
    alice.click(Locator::Id("tab-metrics")).await;
    let points_js = "const p = document.querySelector('#graph-cpu polyline'); \
        return p ? (p.getAttribute('points') || '').split(' ').filter(x => x).length : 0;";
    wait_js_number(&alice, points_js, 3, "points on the CPU graph").await;
    alice.screenshot("console-03c-metrics").await;

    // Snapshots: Alice's quota holds none, and the tab says so in the daemon's words.
    alice.click(Locator::Id("tab-snapshots")).await;
    alice.wait_for(Locator::Id("snapshot-name"), 10).await;
    alice.set_field("snapshot-name", "before-update").await;
    alice.click(Locator::Id("take-snapshot")).await;
    alice
        .wait_text("#snapshots [role=alert]", "snapshots", 30)
        .await;
    // Backups: a backup of the running server with its progress bar, then the backup listed.
    alice.click(Locator::Id("tab-backups")).await;
    alice.wait_for(Locator::Id("backup-now"), 10).await;
    alice.click(Locator::Id("backup-now")).await;
    alice.wait_text("#job-list li", "backup: done", 60).await;
    alice
        .wait_text("#backup-list li", "Restore as new", 30)
        .await;
    alice.screenshot("console-03e-backups").await;

    // The admin sees the host's allocation with Alice's server in it.
    admin_ui.click(Locator::LinkText("Host")).await;
    admin_ui
        .wait_text("[data-resource=vCPUs] .quota-numbers", "1 / ", 30)
        .await;
    admin_ui
        .wait_text("[data-resource=Addresses] .quota-numbers", "1 / 1021", 30)
        .await;
    admin_ui.screenshot("console-03d-host-allocation").await;
    admin_ui.close().await;

    // Bob, signed in at the same time, sees nothing of it, even with its address.
    let bob = Browser::start().await;
    bob.sign_in(&daemon, "bob", "bob-password").await;
    bob.wait_for(Locator::Id("no-servers"), 30).await;
    let url = c.current_url().await.unwrap();
    bob.client.goto(url.as_str()).await.unwrap();
    bob.wait_text("#server-error", "No such virtual server", 30)
        .await;
    bob.screenshot("console-04-bob-sees-nothing").await;
    bob.close().await;

    // A power action from the page, then a change made elsewhere arrives live (no reload).
    alice.click(Locator::Id("action-stop")).await;
    alice.wait_text("#server-state", "stopped", 30).await;
    alice.click(Locator::Id("action-start")).await;
    alice.wait_text("#server-state", "running", 60).await;
    let id = url.path().rsplit('/').next().unwrap().to_owned();
    admin.act(&id, "stop").await;
    let live = alice.wait_text("#server-state", "stopped", 10).await;
    eprintln!("a stop made elsewhere showed on the page {live:.2?} after the API answered");
    alice.screenshot("console-05-stopped-live").await;

    // The list shows it, with the quota used.
    alice.click(Locator::LinkText("My servers")).await;
    alice.wait_text("[data-server=web-1]", "stopped", 30).await;
    alice
        .wait_text("[data-resource=Servers] .quota-numbers", "1 / 1", 30)
        .await;
    alice.screenshot("console-06-list").await;

    // Readable on a phone: at 390 px nothing overflows sideways, on the list and on the server page.
    let (w, h) = c.get_window_size().await.unwrap();
    c.set_window_size(390, 844).await.unwrap();
    fits_a_phone(&alice, "list", "console-06b-list-phone").await;
    alice.click(Locator::LinkText("web-1")).await;
    alice.wait_for(Locator::Id("server-state"), 30).await;
    fits_a_phone(&alice, "server page", "console-06c-server-phone").await;
    c.set_window_size(u32::try_from(w).unwrap(), u32::try_from(h).unwrap())
        .await
        .unwrap();
    alice.click(Locator::LinkText("My servers")).await;
    alice.wait_text("[data-server=web-1]", "stopped", 30).await;

    // Delete, with a confirmation.
    alice.click(Locator::LinkText("web-1")).await;
    alice
        .wait_for(Locator::Id("delete"), 30)
        .await
        .click()
        .await
        .unwrap();
    alice
        .wait_for(Locator::Id("confirm-delete"), 10)
        .await
        .click()
        .await
        .unwrap();
    alice.wait_for(Locator::Id("no-servers"), 30).await;
    alice
        .wait_text("[data-resource=Servers] .quota-numbers", "0 / 1", 30)
        .await;
    alice.screenshot("console-07-deleted").await;
    alice.close().await;
    let (_, vms) = admin.get("/api/v1/vms?all=true").await;
    assert_eq!(vms, json!([]));
}
