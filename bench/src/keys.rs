//! `keys`: key press to pixels through the whole console path, ours beside noVNC.

use std::time::{Duration, Instant};

use crate::support::p50_p99;
use serde_json::json;

/// Installed in the console page by `keys`: timestamps every key pressed on the canvas and
/// every drawing call, with the number of lit pixels after each (a typed `#` adds more than the
/// blinking text cursor takes away, which tells its echo from a blink).
pub(crate) const KEYS_PROBE: &str = include_str!("../assets/keys-probe.js");

/// Presses `#` on the canvas at `selector` `n` times (erasing it after each) and returns the time
/// from each key event to the first drawing call that shows the guest's echo of it.
pub(crate) async fn key_samples(
    c: &nuage_e2e::fantoccini::Client,
    selector: &str,
    n: usize,
) -> Vec<Duration> {
    use nuage_e2e::fantoccini::Locator;
    c.execute(KEYS_PROBE, vec![json!(selector)]).await.unwrap();
    let canvas = c.find(Locator::Css(selector)).await.unwrap();
    canvas.click().await.unwrap();
    let lit = || async {
        c.execute("return window.__lit();", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap()
    };
    let mut samples = Vec::new();
    for i in 0..n {
        // The most lit the screen gets without the key (cursor on), over a blink or two.
        let mut base = 0;
        for _ in 0..6 {
            base = base.max(lit().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.execute(
            "window.__keys = []; window.__draws = []; return true;",
            vec![],
        )
        .await
        .unwrap();
        canvas.send_keys("#").await.unwrap();
        let t = Instant::now();
        let latency = loop {
            let v = c
                .execute("return [window.__keys, window.__draws];", vec![])
                .await
                .unwrap();
            let key = v[0][0].as_f64();
            let echo = v[1].as_array().unwrap().iter().find_map(|d| {
                let (at, n) = (d[0].as_f64()?, d[1].as_u64()?);
                (key.is_some_and(|k| at >= k) && n > base + 10).then_some(at)
            });
            if let (Some(k), Some(e)) = (key, echo) {
                break Duration::from_secs_f64((e - k) / 1000.0);
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{selector}, press {i}: no echo ({base} lit before): {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        samples.push(latency);
        // Erase it, and wait until the screen is back.
        canvas.send_keys("\u{E003}").await.unwrap();
        let t = Instant::now();
        while lit().await > base {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "backspace never drawn"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    samples
}

/// Key press to pixels: a key typed in the console (headless Chromium, real keyboard events
/// through chromedriver) until the guest's echo of it is drawn on the canvas, through the whole
/// path (browser, relay, QEMU's VNC server, the guest under TCG, and back); then the same with
/// noVNC on the same relay and guest.
pub(crate) async fn bench_keys() {
    use nuage_e2e::fantoccini::Locator;
    let (daemon, admin, image) = nuage_e2e::Daemon::with_guest_image(&[]).await;
    let (status, vm) = admin
        .post(
            "/api/v1/vms",
            json!({"name": "keys", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}),
        )
        .await;
    assert_eq!(status, 201, "{vm}");
    let id = vm["id"].as_str().unwrap().to_owned();
    daemon.wait_guest_ready(&id, Duration::from_secs(120)).await;
    let browser = nuage_e2e::Browser::start().await;
    let c = &browser.client;
    browser
        .sign_in(&daemon, "admin", nuage_e2e::ADMIN_PASSWORD)
        .await;
    c.goto(&daemon.url(&format!("/servers/{id}")))
        .await
        .unwrap();
    browser.wait_for(Locator::Id("open-console"), 30).await;
    browser.click(Locator::Id("open-console")).await;
    let t = Instant::now();
    loop {
        if let Ok(k) = c.find(Locator::Id("console-keys")).await {
            if k.text().await.unwrap_or_default().contains("scancodes") {
                break;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the console did not connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut ours = key_samples(c, "#console-canvas", 40).await;

    let ws_url = daemon.console_ws_url(&admin, &id).await;
    let (_site, mut server, port) = nuage_e2e::novnc_site(nuage_e2e::NOVNC_PAGE);
    c.goto(&nuage_e2e::novnc_page_url(port, &ws_url))
        .await
        .unwrap();
    let t = Instant::now();
    while c.execute("return window.novnc;", vec![]).await.unwrap() != json!("connected") {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "noVNC did not connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut novnc = key_samples(c, "#screen canvas", 40).await;
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "Key press to pixels (the guest's echo of `#` drawn on the canvas), {} presses each, \
         Chromium → nuaged relay → QEMU VNC → guest (TCG) → back to the canvas:\n",
        ours.len()
    );
    println!("| client | p50 / p99 |");
    println!("|---|---|");
    println!("| Nuage console (rfb, wasm) | {} |", p50_p99(&mut ours));
    println!("| noVNC 1.7 | {} |", p50_p99(&mut novnc));
    browser.close().await;
}
