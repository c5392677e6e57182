//! `console`: the web console's first load and sign-in in Chromium.

use std::time::{Duration, Instant};

use crate::support::{epoch_ms, ms, p50_p99};
use serde_json::json;

/// The web console in headless Chromium on loopback, against nuaged on `qemu:///system` with the
/// test guest: navigation to an interactive sign-in form, and state changes made in libvirt
/// behind Nuage's back (suspend, resume, destroy) to the list showing them.
pub(crate) async fn bench_console() {
    use nuage_e2e::fantoccini::Locator;
    let (daemon, admin, image) = nuage_e2e::Daemon::with_guest_image(&[]).await;
    let (status, vm) = admin
        .post(
            "/api/v1/vms",
            json!({"name": "bench", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}),
        )
        .await;
    assert_eq!(status, 201, "{vm}");
    let id = vm["id"].as_str().unwrap().to_owned();
    let browser = nuage_e2e::Browser::start().await;
    let c = &browser.client;

    // 1. Navigation start to the sign-in form on screen (the page marks that moment).
    let mark = "const m = performance.getEntriesByName('nuage-login-ready'); \
                return m.length ? m[0].startTime : null;";
    let mut loads = Vec::new();
    for _ in 0..11 {
        c.goto("about:blank").await.unwrap();
        c.goto(&daemon.url("/")).await.unwrap();
        let t = Instant::now();
        let ms = loop {
            if let Some(ms) = c.execute(mark, vec![]).await.unwrap().as_f64() {
                break ms;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "no sign-in form");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        loads.push(Duration::from_secs_f64(ms / 1000.0));
    }
    let cold = loads.remove(0);

    // 2. libvirt changes a server's state; the list (signed in) shows it.
    browser
        .sign_in(&daemon, "admin", nuage_e2e::ADMIN_PASSWORD)
        .await;
    let row = "[data-server=bench]";
    let wait_row = |want: &'static str| async move {
        let t = Instant::now();
        loop {
            if let Ok(e) = c.find(Locator::Css(row)).await {
                if e.text().await.unwrap_or_default().contains(want) {
                    return;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{row} never showed {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // The page records when the row first shows `want` (clock: the same machine's epoch ms).
    let watch = |want: &str| {
        format!(
            "window.__at = null; const box = document.getElementById('servers'); \
             new MutationObserver(() => {{ const r = document.querySelector('[data-server=bench]'); \
               if (window.__at === null && r && r.textContent.includes('{want}')) \
                 window.__at = performance.timeOrigin + performance.now(); }}) \
             .observe(box, {{subtree: true, childList: true, characterData: true, attributes: true}}); \
             return true;"
        )
    };
    let name = format!("nuage-{id}");
    // A libvirt call behind Nuage's back; returns (epoch ms before, after).
    let behind = |what: &'static str| {
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            let conn = virt::connect::Connect::open(Some("qemu:///system")).unwrap();
            let dom = conn.lookup_domain_by_name(&name).unwrap();
            let before = epoch_ms();
            match what {
                "suspend" => dom.suspend().unwrap(),
                "resume" => dom.resume().unwrap(),
                _ => dom.destroy().unwrap(),
            };
            (before, epoch_ms())
        })
    };
    let seen = || async {
        let t = Instant::now();
        loop {
            if let Some(at) = c
                .execute("return window.__at;", vec![])
                .await
                .unwrap()
                .as_f64()
            {
                return at;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the list never changed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (mut changes, mut destroys, mut destroy_calls) = (Vec::new(), Vec::new(), Vec::new());
    wait_row("running").await;
    for _ in 0..10 {
        for (call, want) in [("suspend", "paused"), ("resume", "running")] {
            c.execute(&watch(want), vec![]).await.unwrap();
            let (before, _) = behind(call).await.unwrap();
            let at = seen().await;
            changes.push(Duration::from_secs_f64((at - before).max(0.0) / 1000.0));
        }
    }
    for _ in 0..3 {
        wait_row("running").await;
        c.execute(&watch("stopped"), vec![]).await.unwrap();
        let (before, after) = behind("destroy").await.unwrap();
        let at = seen().await;
        destroys.push(Duration::from_secs_f64((at - after).max(0.0) / 1000.0));
        destroy_calls.push(Duration::from_secs_f64((after - before) / 1000.0));
        let (status, body) = admin
            .post(&format!("/api/v1/vms/{id}/start"), json!({}))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    browser.close().await;
    println!("| web console in headless Chromium, loopback | figure |");
    println!("|---|---|");
    println!(
        "| navigation to an interactive sign-in form, first (cold cache) | {} |",
        ms(cold)
    );
    println!(
        "| the same, next 10 loads, p50 / p99 | {} |",
        p50_p99(&mut loads)
    );
    println!(
        "| suspend or resume in libvirt (behind nuaged) to the list showing it, 20 times, p50 / p99 | {} |",
        p50_p99(&mut changes)
    );
    println!(
        "| destroy in libvirt: the call itself, 3 times, p50 / p99 | {} |",
        p50_p99(&mut destroy_calls)
    );
    println!(
        "| destroy in libvirt: from the call's return to the list showing `stopped`, p50 / p99 | {} |",
        p50_p99(&mut destroys)
    );
}
