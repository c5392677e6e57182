//! `relay`: the console relay beside websockify: throughput and round trips.

use std::time::{Duration, Instant};

use crate::support::{p50_p99, percentile};

/// A loopback TCP source: each connection gets `total` bytes then EOF, or (`total == 0`) an echo.
pub(crate) async fn tcp_source(total: usize) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            s.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                if total == 0 {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                } else {
                    let chunk: Vec<u8> = (0..64 * 1024u32)
                        .map(|i| u8::try_from(i * 7 % 256).unwrap())
                        .collect();
                    let mut sent = 0;
                    while sent < total {
                        let n = chunk.len().min(total - sent);
                        if s.write_all(&chunk[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                }
            });
        }
    });
    addr
}

/// nuaged's relay loop (`http::pump`) on its own axum server, pumping to `target`.
pub(crate) async fn our_relay(target: std::net::SocketAddr) -> String {
    use axum::extract::ws::WebSocketUpgrade;
    let app = axum::Router::new().route(
        "/ws",
        axum::routing::get(move |up: WebSocketUpgrade| async move {
            up.protocols(["binary"]).on_upgrade(move |ws| async move {
                let tcp = tokio::net::TcpStream::connect(target).await.unwrap();
                tcp.set_nodelay(true).unwrap();
                nuage_daemon::http::pump(ws, tcp, std::future::pending()).await;
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

pub(crate) async fn ws_connect(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    for _ in 0..100 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(req.clone()).await {
            return ws;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no WebSocket at {url}");
}

/// Reads `total` bytes of binary frames; returns the time taken.
pub(crate) async fn ws_drain(url: &str, total: usize) -> Duration {
    use futures_util::StreamExt;
    let mut ws = ws_connect(url).await;
    let t = Instant::now();
    let mut got = 0;
    while got < total {
        match ws.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b))) => got += b.len(),
            Some(Ok(_)) => {}
            other => panic!("the stream ended at {got} of {total} bytes: {other:?}"),
        }
    }
    t.elapsed()
}

/// Round trips of 64-byte messages through `url` to an echo; p50/p99.
pub(crate) async fn ws_round_trips(url: &str, n: usize) -> Vec<Duration> {
    use futures_util::{SinkExt, StreamExt};
    let mut ws = ws_connect(url).await;
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let t = Instant::now();
        ws.send(tokio_tungstenite::tungstenite::Message::Binary(
            vec![7u8; 64].into(),
        ))
        .await
        .unwrap();
        let mut got = 0;
        while got < 64 {
            if let Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b))) = ws.next().await {
                got += b.len();
            }
        }
        if i >= 50 {
            out.push(t.elapsed());
        }
    }
    out
}

/// The console relay against websockify (Debian's, 0.10) relaying the same bytes on loopback:
/// throughput of a bulk stream, and round trips to an echo beside a direct TCP round trip.
pub(crate) async fn bench_relay() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let total = 512 << 20;
    let bulk = tcp_source(total).await;
    let echo = tcp_source(0).await;
    // nuaged's relay in a process of its own, as websockify is.
    let spawn_ours = |target: std::net::SocketAddr| {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["relay-serve", &target.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        (child, line.trim().to_owned())
    };
    let (mut o1, ours_bulk) = spawn_ours(bulk);
    let (mut o2, ours_echo) = spawn_ours(echo);
    let ws_port = |p: u16| p.to_string();
    let (p1, p2) = (nuage_e2e::free_port(), nuage_e2e::free_port());
    let spawn_ws = |listen: u16, target: std::net::SocketAddr| {
        std::process::Command::new("websockify")
            .args([
                &format!("127.0.0.1:{}", ws_port(listen)),
                &target.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("websockify (apt install websockify)")
    };
    let mut w1 = spawn_ws(p1, bulk);
    let mut w2 = spawn_ws(p2, echo);
    let (wsk_bulk, wsk_echo) = (
        format!("ws://127.0.0.1:{p1}/"),
        format!("ws://127.0.0.1:{p2}/"),
    );

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..3 {
        ours.push(ws_drain(&ours_bulk, total).await);
        theirs.push(ws_drain(&wsk_bulk, total).await);
    }
    let (o, t) = (percentile(&mut ours, 0.5), percentile(&mut theirs, 0.5));
    // Direct TCP round trips to the echo, the baseline for "added latency".
    let mut direct = Vec::new();
    let mut s = tokio::net::TcpStream::connect(echo).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..2050 {
        let t0 = Instant::now();
        s.write_all(&[7u8; 64]).await.unwrap();
        s.read_exact(&mut buf).await.unwrap();
        if i >= 50 {
            direct.push(t0.elapsed());
        }
    }
    let mut ours_rt = ws_round_trips(&ours_echo, 2000).await;
    let mut theirs_rt = ws_round_trips(&wsk_echo, 2000).await;
    for c in [&mut w1, &mut w2, &mut o1, &mut o2] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let mbps = |d: Duration| total as f64 / (1 << 20) as f64 / d.as_secs_f64();
    println!("| loopback, 512 MiB then 2,000 round trips of 64 bytes | nuaged's relay | websockify 0.10 |");
    println!("|---|---|---|");
    println!(
        "| throughput (median of 3) | {:.0} MiB/s | {:.0} MiB/s |",
        mbps(o),
        mbps(t)
    );
    println!(
        "| round trip p50 / p99 (direct TCP: {}) | {} | {} |",
        p50_p99(&mut direct),
        p50_p99(&mut ours_rt),
        p50_p99(&mut theirs_rt)
    );
}
