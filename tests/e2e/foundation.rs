//! The foundation: the daemon on qemu:///system, a real guest booting, the console in a browser.

use std::time::Duration;

use fantoccini::Locator;
use nuage_e2e::{Browser, Daemon, Guest, QEMU_SYSTEM};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn nuaged_on_qemu_system_reports_healthy_with_tcg_and_stops_on_sigterm() {
    let mut daemon = tokio::task::spawn_blocking(|| Daemon::start(QEMU_SYSTEM))
        .await
        .unwrap();
    let http = nuage_e2e::http_client();

    let health = http.get(daemon.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["hypervisor"], true);
    assert_eq!(health["simulated"], false);

    let token = daemon.admin_token().await;
    let host: Value = http
        .get(daemon.url("/api/v1/host"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(host["accel"], "tcg", "{host}");
    assert_eq!(host["hypervisor"]["uri"], QEMU_SYSTEM);
    assert_eq!(host["hypervisor"]["driver"], "QEMU");
    assert_eq!(host["hypervisor"]["simulated"], false);
    assert!(host["cpus"].as_u64().unwrap() >= 1);
    assert!(host["memory_mib"].as_u64().unwrap() > 256);

    // The secrets and the database are private to root.
    use std::os::unix::fs::PermissionsExt;
    for file in ["jwt.key", "nuage.db"] {
        let mode = std::fs::metadata(daemon.data_dir().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} has mode {mode:o}");
    }

    let status = tokio::task::spawn_blocking(move || daemon.terminate())
        .await
        .unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM did not stop nuaged cleanly: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_test_guest_boots_under_tcg_and_reads_its_nocloud_seed() {
    let guest = tokio::task::spawn_blocking(|| Guest::boot("nuage-e2e-boot", Some("seeded-host")))
        .await
        .unwrap();
    let booted = guest
        .wait_for_serial("NUAGE-GUEST-BOOTED", Duration::from_secs(60))
        .unwrap();
    guest
        .wait_for_serial("NUAGE-HOSTNAME=seeded-host", Duration::from_secs(30))
        .unwrap();
    eprintln!("test guest: serial marker after {booted:.1?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_console_shows_the_host_in_chromium() {
    assert!(
        nuage_e2e::web_dir().is_some(),
        "dist/ is missing: run `trunk build --release --offline`"
    );
    let daemon = tokio::task::spawn_blocking(|| Daemon::start(QEMU_SYSTEM))
        .await
        .unwrap();
    let browser = Browser::start().await;
    let c = &browser.client;

    // A wrong password is refused with the API's sentence.
    c.goto(&daemon.base_url).await.unwrap();
    browser.wait_for(Locator::Id("login-form"), 45).await;
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("wrong")
        .await
        .unwrap();
    browser.click(Locator::Id("sign-in")).await;
    let alert = browser
        .wait_for(Locator::Css("#login-form [role=alert]"), 30)
        .await;
    assert!(alert.text().await.unwrap().contains("incorrect"));
    browser.screenshot("foundation-01-bad-password").await;

    // Everyone lands on their servers; the host page is an admin's.
    browser
        .sign_in(&daemon, "admin", nuage_e2e::ADMIN_PASSWORD)
        .await;
    browser.click(Locator::LinkText("Host")).await;
    let accel = browser.wait_for(Locator::Id("host-accel"), 45).await;
    assert!(accel.text().await.unwrap().contains("TCG"));
    let hv = c
        .find(Locator::Id("host-hypervisor"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(hv.contains("QEMU") && hv.contains(QEMU_SYSTEM), "{hv}");
    assert!(
        c.find(Locator::Id("simulated-banner")).await.is_err(),
        "no banner on a real hypervisor"
    );
    browser.screenshot("foundation-02-host").await;

    // The session survives a reload (a client-side route too), and sign-out ends it.
    c.goto(&daemon.url("/servers/some-route")).await.unwrap();
    let missing = browser.wait_for(Locator::Id("server-error"), 45).await;
    assert!(missing
        .text()
        .await
        .unwrap()
        .contains("No such virtual server"));
    browser.click(Locator::Id("sign-out")).await;
    browser.wait_for(Locator::Id("login-form"), 30).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_console_warns_when_the_hypervisor_is_simulated() {
    assert!(
        nuage_e2e::web_dir().is_some(),
        "dist/ is missing: run `trunk build --release --offline`"
    );
    let daemon = tokio::task::spawn_blocking(|| Daemon::start("test:///default"))
        .await
        .unwrap();
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&daemon.base_url).await.unwrap();
    let banner = browser.wait_for(Locator::Id("simulated-banner"), 45).await;
    assert!(banner.text().await.unwrap().contains("test:///default"));
    browser
        .sign_in(&daemon, "admin", nuage_e2e::ADMIN_PASSWORD)
        .await;
    c.goto(&daemon.url("/admin/host")).await.unwrap();
    let hv = browser.wait_for(Locator::Id("host-hypervisor"), 45).await;
    assert!(hv.text().await.unwrap().contains("TEST"));
    browser.screenshot("foundation-03-simulated").await;
    browser.close().await;
}
