//! The console relay with a real guest: through nuaged's WebSocket, an RFB client completes the
//! handshake with the guest's VNC server (which listens on no TCP port) and receives ServerInit.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nuage_e2e::Daemon;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads binary frames until `n` bytes have arrived (RFB does not align with frames).
async fn read_exact(ws: &mut Ws, pending: &mut Vec<u8>, n: usize) -> Vec<u8> {
    while pending.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("RFB data in time");
        match msg {
            Some(Ok(Message::Binary(b))) => pending.extend_from_slice(&b),
            other => panic!("expected binary RFB data, got {other:?}"),
        }
    }
    pending.drain(..n).collect()
}

async fn connect(daemon: &Daemon, url_path: &str) -> Result<(Ws, Option<String>), u16> {
    let url = format!("{}{url_path}", daemon.base_url.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            let proto = resp
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_owned());
            Ok((ws, proto))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

/// Opens a console session on server `id` and runs `client` until the first update that drew
/// pixels is complete; returns the events and the server's bytes (to keep as a fixture).
async fn first_frame(
    daemon: &Daemon,
    admin: &nuage_e2e::Api,
    id: &str,
    client: &mut rfb::Client,
) -> (Vec<rfb::Event>, Vec<u8>) {
    let (_, t) = admin
        .post(&format!("/api/v1/vms/{id}/console"), json!({}))
        .await;
    let (mut ws, _) = connect(daemon, t["url"].as_str().unwrap())
        .await
        .expect("the relay upgrades");
    let (mut events, mut recorded) = (Vec::new(), Vec::new());
    let (mut connected, mut drawn) = (false, false);
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a frame in time");
        let Some(Ok(Message::Binary(data))) = msg else {
            panic!("relay closed: {msg:?}")
        };
        recorded.extend_from_slice(&data);
        for ev in client.receive(&data).expect("a valid RFB stream") {
            connected |= matches!(ev, rfb::Event::Connected { .. });
            // An update that drew pixels (QEMU's acknowledgements are updates too).
            drawn |= matches!(ev, rfb::Event::Damage { .. } | rfb::Event::Fill { .. });
            let done = connected && drawn && ev == rfb::Event::UpdateDone;
            events.push(ev);
            if done {
                return (events, recorded);
            }
        }
        let out = client.take_output();
        if !out.is_empty() {
            ws.send(Message::Binary(out.into())).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_rfb_client_reaches_the_guest_screen_through_the_relay() {
    let (daemon, admin, image) = Daemon::with_guest_image(&[]).await;
    let (id, _) = admin
        .create_small_vm(&image, json!({"name": "screen"}))
        .await;

    let (status, ticket) = admin
        .post(&format!("/api/v1/vms/{id}/console"), json!({}))
        .await;
    assert_eq!(status, 201, "{ticket}");
    let url = ticket["url"].as_str().unwrap().to_owned();
    let (mut ws, proto) = connect(&daemon, &url).await.expect("the relay upgrades");
    assert_eq!(
        proto.as_deref(),
        Some("binary"),
        "speaks websockify's subprotocol"
    );

    // RFB 3.8: version, security type None, ClientInit, ServerInit.
    let mut pending = Vec::new();
    let version = read_exact(&mut ws, &mut pending, 12).await;
    assert_eq!(&version, b"RFB 003.008\n");
    ws.send(Message::Binary(b"RFB 003.008\n".to_vec().into()))
        .await
        .unwrap();
    let count = read_exact(&mut ws, &mut pending, 1).await[0] as usize;
    let types = read_exact(&mut ws, &mut pending, count).await;
    assert!(types.contains(&1), "security type None offered: {types:?}");
    ws.send(Message::Binary(vec![1u8].into())).await.unwrap();
    assert_eq!(
        read_exact(&mut ws, &mut pending, 4).await,
        [0, 0, 0, 0],
        "security result OK"
    );
    ws.send(Message::Binary(vec![1u8].into())).await.unwrap();
    let init = read_exact(&mut ws, &mut pending, 24).await;
    let (width, height) = (
        u16::from_be_bytes([init[0], init[1]]),
        u16::from_be_bytes([init[2], init[3]]),
    );
    let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
    let name = String::from_utf8(read_exact(&mut ws, &mut pending, name_len).await).unwrap();
    eprintln!("guest screen through the relay: {width}x{height}, desktop name {name:?}");
    assert!(width >= 320 && height >= 200, "{width}x{height}");

    // The guest's VNC server listens on no TCP port: only libvirt's socket pair reaches it.
    let xml = nuage_e2e::virsh(&["dumpxml", &format!("nuage-{id}")]);
    assert!(
        xml.contains("<graphics type='vnc'>") && xml.contains("<listen type='none'/>"),
        "no port, no address: {xml}"
    );

    // The ticket was single use.
    assert_eq!(connect(&daemon, &url).await.err(), Some(401));
    // At most four sessions per server.
    let mut open = Vec::new();
    for _ in 0..3 {
        let (_, t) = admin
            .post(&format!("/api/v1/vms/{id}/console"), json!({}))
            .await;
        open.push(
            connect(&daemon, t["url"].as_str().unwrap())
                .await
                .expect("within the cap")
                .0,
        );
    }
    let (_, t) = admin
        .post(&format!("/api/v1/vms/{id}/console"), json!({}))
        .await;
    assert_eq!(
        connect(&daemon, t["url"].as_str().unwrap()).await.err(),
        Some(429)
    );
    drop(open);
    drop(ws);

    // The sans-I/O client decodes a whole frame of the booted guest's screen.
    daemon.wait_guest_ready(&id, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut client = rfb::Client::new();
    let started = std::time::Instant::now();
    let (events, recorded) = first_frame(&daemon, &admin, &id, &mut client).await;
    let bytes = recorded.len();
    let extended = events.contains(&rfb::Event::ExtendedKeys);
    let lit = client
        .framebuffer()
        .chunks_exact(4)
        .filter(|p| p[0] > 64 || p[1] > 64 || p[2] > 64)
        .count();
    eprintln!(
        "first full frame: {}x{}, {bytes} bytes in {:.0?}, {lit} lit pixels",
        client.width(),
        client.height(),
        started.elapsed()
    );
    assert!(
        lit > 500,
        "the guest's screen shows text, not a black frame ({lit} lit pixels)"
    );
    assert!(
        extended && client.extended_keys(),
        "QEMU acknowledged extended key events (keys go as scancodes)"
    );

    // The same screen through each compressed encoding: every decoder draws it alike. The
    // server's bytes are kept (target/rfb-sessions/) as fixtures for the rfb crate's tests.
    let keep = nuage_e2e::target_dir().join("rfb-sessions");
    std::fs::create_dir_all(&keep).unwrap();
    let mut frames = Vec::new();
    for (name, enc) in [
        ("zrle", rfb::ENC_ZRLE),
        ("hextile", rfb::ENC_HEXTILE),
        ("zlib", rfb::ENC_ZLIB),
        ("tight", rfb::ENC_TIGHT),
    ] {
        // Tight with a JPEG quality: QEMU may send JPEG where it judges the image smooth.
        let mut client =
            rfb::Client::with_encodings(&[enc, rfb::ENC_DESKTOP_SIZE, rfb::ENC_JPEG_QUALITY_0 + 6]);
        let (_, recorded) = first_frame(&daemon, &admin, &id, &mut client).await;
        eprintln!("{name}: the first frame took {} bytes", recorded.len());
        std::fs::write(keep.join(format!("qemu-{name}.bin")), &recorded).unwrap();
        frames.push((name, client.framebuffer().to_vec()));
    }
    for (name, fb) in &frames[1..] {
        let differ = fb
            .chunks_exact(4)
            .zip(frames[0].1.chunks_exact(4))
            .filter(|(a, b)| a != b)
            .count();
        // The text cursor blinks between sessions: a few pixels may differ, no more.
        assert!(differ < 200, "{name} and zrle differ in {differ} pixels");
    }

    // noVNC itself (npm @novnc/novnc, installed by scripts/setup) in headless Chromium, given
    // the relay's URL unchanged: the relay speaks what websockify speaks.
    let (_site, mut server, port) = nuage_e2e::novnc_site(nuage_e2e::NOVNC_PAGE);
    let ws_url = daemon.console_ws_url(&admin, &id).await;
    let browser = nuage_e2e::Browser::start().await;
    let page = nuage_e2e::novnc_page_url(port, &ws_url);
    let start = std::time::Instant::now();
    loop {
        if browser.client.goto(&page).await.is_ok() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the page server never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lit_js = "const c = document.querySelector('#screen canvas'); if (!c || window.novnc !== 'connected') return -1; \
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; \
        for (let i = 0; i < d.length; i += 4) { if (d[i] > 64 || d[i + 1] > 64 || d[i + 2] > 64) n++; } return n;";
    let drawing = std::time::Instant::now();
    let lit = loop {
        let n = browser
            .client
            .execute(lit_js, vec![])
            .await
            .ok()
            .and_then(|v| v.as_i64())
            .unwrap_or(-1);
        if n > 500 {
            break n;
        }
        if drawing.elapsed() > Duration::from_secs(30) {
            let state = browser
                .client
                .execute("return String(window.novnc)", vec![])
                .await;
            let _ = server.kill();
            panic!("noVNC drew no screen through the relay (state {state:?}, {n} lit pixels)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "noVNC drew the guest's screen through the relay: {lit} lit pixels in {:.2?}",
        drawing.elapsed()
    );
    browser.screenshot("novnc-through-the-relay").await;
    browser.close().await;
    let _ = server.kill();
    let _ = server.wait();
}

/// Percent-encodes a query value.
/// With `--console-listen loopback`, when libvirt cannot hand a socket over (a failpoint here;
/// libvirt over TCP or SSH in life), the daemon relays the guest's VNC on 127.0.0.1.
#[tokio::test(flavor = "multi_thread")]
async fn the_relay_falls_back_to_the_loopback_when_no_socket_can_be_handed_over() {
    let env = [
        ("NUAGE_CONSOLE_LISTEN", "loopback"),
        ("NUAGE_FAILPOINTS", "console-no-fd"),
    ];
    let (daemon, admin, image) = Daemon::with_guest_image(&env).await;
    let (status, vm) = admin
        .post("/api/v1/vms", json!({"name": "fallback", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}))
        .await;
    assert_eq!(status, 201, "{vm}");
    let id = vm["id"].as_str().unwrap().to_owned();
    let xml = nuage_e2e::virsh(&["dumpxml", &format!("nuage-{id}")]);
    assert!(
        xml.contains("<listen type='address' address='127.0.0.1'/>"),
        "VNC on the loopback only: {xml}"
    );
    assert!(!xml.contains("0.0.0.0"), "{xml}");

    let mut client = rfb::Client::new();
    let (events, _) = first_frame(&daemon, &admin, &id, &mut client).await;
    let connected = events
        .iter()
        .any(|e| matches!(e, rfb::Event::Connected { .. }));
    assert!(connected && client.width() >= 320, "{}", client.width());
    let log = daemon.log_text();
    assert!(
        log.contains("console through the loopback fallback"),
        "the daemon says which way it went"
    );

    // The loopback VNC server asks for a password (other local users reach 127.0.0.1 too), and
    // each boot has its own; the relay answered it, the browser never saw it.
    let password = |domain: &str| {
        let xml = nuage_e2e::virsh(&["dumpxml", "--security-info", domain]);
        xml.split("passwd='")
            .nth(1)
            .map(|r| r.split('\'').next().unwrap().to_owned())
    };
    let domain = format!("nuage-{id}");
    let first = password(&domain).expect("the VNC server has a password");
    let port: u16 = nuage_e2e::virsh(&["vncdisplay", &domain])
        .trim()
        .trim_start_matches("127.0.0.1:")
        .parse::<u16>()
        .expect("a VNC display")
        + 5900;
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    let mut version = [0u8; 12];
    raw.read_exact(&mut version).unwrap();
    raw.write_all(b"RFB 003.008\n").unwrap();
    let mut count = [0u8; 1];
    raw.read_exact(&mut count).unwrap();
    let mut types = vec![0u8; count[0] as usize];
    raw.read_exact(&mut types).unwrap();
    assert_eq!(types, vec![2], "VNC authentication only, never None");
    drop(raw);
    for action in ["stop", "start"] {
        let (status, body) = admin
            .post(&format!("/api/v1/vms/{id}/{action}"), json!({}))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let second = password(&domain).expect("a password again");
    assert_ne!(first, second, "each boot has its own password");
    let mut client = rfb::Client::new();
    let (events, _) = first_frame(&daemon, &admin, &id, &mut client).await;
    assert!(events
        .iter()
        .any(|e| matches!(e, rfb::Event::Connected { .. })));
}
