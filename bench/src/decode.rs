//! `decode` and `decode-browser`: the `rfb` crate's decoding natively, and our wasm client beside noVNC in Chromium.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::run_cmd;

/// Native decoding speed of the `rfb` crate on the sessions recorded from QEMU (rfb/fixtures):
/// each whole session (handshake and first full frame) decoded again and again.
pub(crate) fn bench_decode() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rfb/fixtures");
    println!(
        "| recorded QEMU session (720x400) | bytes | frames/s | MB/s of the stream | Mpixel/s |"
    );
    println!("|---|---|---|---|---|");
    for name in ["zrle", "tight", "hextile", "zlib"] {
        let bytes = std::fs::read(dir.join(format!("qemu-{name}.bin"))).unwrap();
        let mut runs = 0u32;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            let mut c = rfb::Client::new();
            let ev = c.receive(&bytes).unwrap();
            assert!(ev.contains(&rfb::Event::UpdateDone));
            runs += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "| {name} | {} | {:.0} | {:.0} | {:.0} |",
            bytes.len(),
            runs as f64 / secs,
            bytes.len() as f64 * runs as f64 / secs / 1e6,
            720.0 * 400.0 * runs as f64 / secs / 1e6
        );
    }
}

/// The page of `decode-browser`: replays each recorded session through our wasm client and
/// through noVNC's RFB (given a fake channel that delivers the same bytes), each drawing on its
/// canvas; times the frame's bytes from delivery to drawn.
pub(crate) const DECODE_PAGE: &str = include_str!("../assets/decode.html");

/// Our wasm decoder beside noVNC's JavaScript decoders, in the same headless Chromium, on the
/// same recorded QEMU sessions (handshake plus a full 720x400 frame each).
pub(crate) async fn bench_decode_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = nuage_e2e::target_dir();
    // Built as the console ships: the wasm-release profile, then wasm-opt -Oz when present.
    run_cmd(Command::new("cargo").current_dir(&root).args([
        "build",
        "-q",
        "--profile",
        "wasm-release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "nuage-decode-wasm",
    ]));
    let (site, mut server, port) = nuage_e2e::novnc_site(DECODE_PAGE);
    let wasm = target.join("wasm32-unknown-unknown/wasm-release/nuage_decode_wasm.wasm");
    run_cmd(
        Command::new("wasm-bindgen")
            .args(["--target", "web", "--no-typescript", "--out-dir"])
            .arg(site.path().join("wasm"))
            .arg(&wasm),
    );
    let bg = site.path().join("wasm/nuage_decode_wasm_bg.wasm");
    let wasm_opt = target.join("tools/node_modules/.bin/wasm-opt");
    let optimised = wasm_opt.exists()
        && Command::new(&wasm_opt)
            .args([
                "-Oz",
                "--enable-bulk-memory",
                "--enable-nontrapping-float-to-int",
            ])
            .args([
                "--enable-sign-ext",
                "--enable-mutable-globals",
                "--enable-reference-types",
            ])
            .arg(&bg)
            .arg("-o")
            .arg(&bg)
            .status()
            .is_ok_and(|s| s.success());
    std::os::unix::fs::symlink(root.join("rfb/fixtures"), site.path().join("fixtures")).unwrap();
    let browser = nuage_e2e::Browser::start().await;
    let c = &browser.client;
    let page = format!("http://127.0.0.1:{port}/index.html");
    c.goto(&page).await.unwrap();
    let t = Instant::now();
    let result = loop {
        let r = c
            .execute(
                "return window.result || {pending: window.progress || null, error: window.failure || null};",
                vec![],
            )
            .await
            .unwrap();
        if r.get("pending").is_none() {
            break r;
        }
        assert!(r["error"].is_null(), "the page failed: {r}");
        assert!(t.elapsed() < Duration::from_secs(60), "no result: {r}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "Headless Chromium; one frame = the first full 720x400 update of the test guest's screen, \
         from bytes delivered to pixels on the canvas, after a fresh client's handshake (wasm {}):\n",
        if optimised { "wasm-opt -Oz, as shipped" } else { "not wasm-opt'ed" }
    );
    println!(
        "| session | bytes | ours p50 | ours frames/s | noVNC 1.7 p50 | noVNC frames/s | ratio | ours, decoding only (no canvas) p50 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for name in ["zrle", "tight", "hextile", "zlib"] {
        let r = &result[name];
        assert!(
            r["novnc_ok"].as_bool() == Some(true),
            "{name}: noVNC did not connect: {r}"
        );
        for who in ["ours_lit", "novnc_lit"] {
            assert!(
                r[who].as_u64() > Some(500),
                "{name}: {who} drew no text: {r}"
            );
        }
        let fps =
            |who: &str| r["frames"].as_f64().unwrap() * 1000.0 / r[who]["mean"].as_f64().unwrap();
        println!(
            "| {name} | {} | {:.2} ms | {:.0} | {:.2} ms | {:.0} | {:.1}x | {:.2} ms |",
            r["bytes"],
            r["ours"]["p50"].as_f64().unwrap(),
            fps("ours"),
            r["novnc"]["p50"].as_f64().unwrap(),
            fps("novnc"),
            fps("ours") / fps("novnc"),
            r["ours_decode"]["p50"].as_f64().unwrap()
        );
    }
    browser.close().await;
}
