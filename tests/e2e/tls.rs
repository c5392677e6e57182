//! HTTPS end to end: the operator's certificate (made here by `rcgen`), trusted by a client that
//! trusts nothing else, serves the API and the console WebSocket (`wss://`); `SIGHUP` with a
//! renewed certificate serves it on the next connection and keeps the open ones; a public
//! listen without a certificate serves HTTPS with one nuaged made, never plain HTTP.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nuage_e2e::{tls_client, tls_config, wait_until, Daemon, Scratch};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A certificate for the loopback written to `dir/{name}.crt` and `.key`; returns its PEM.
fn certificate(dir: &Path, name: &str) -> Vec<u8> {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    std::fs::write(
        dir.join(format!("{name}.key")),
        made.signing_key.serialize_pem(),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), made.cert.pem()).unwrap();
    made.cert.pem().into_bytes()
}

/// Replaces `to` with `from` the way certbot does (a rename, never a half-written file).
fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

async fn next_binary(
    ws: &mut (impl StreamExt<Item = tokio_tungstenite::tungstenite::Result<Message>> + Unpin),
) -> Vec<u8> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("RFB data in time");
        match msg {
            Some(Ok(Message::Binary(b))) => return b.to_vec(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected binary RFB data, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_serves_the_api_and_the_console_and_a_renewed_certificate_after_sighup() {
    let certs = Scratch::new("nuage-e2e-certs-");
    let first = certificate(certs.path(), "first");
    let second = certificate(certs.path(), "second");
    let (cert, key) = (certs.path().join("live.crt"), certs.path().join("live.key"));
    install(&certs.path().join("first.crt"), &cert);
    install(&certs.path().join("first.key"), &key);
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let (daemon, admin, image) =
        Daemon::with_guest_image(&[("NUAGE_TLS_CERT", cert_s), ("NUAGE_TLS_KEY", key_s)]).await;
    assert!(
        daemon.base_url.starts_with("https://127.0.0.1:"),
        "{}",
        daemon.base_url
    );
    // Signed in already (with_guest_image) through a client that trusts only `first`.
    let (status, me) = admin.get("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    // No plain HTTP on the same port, and a client that does not trust the certificate stops.
    let plain = daemon.base_url.replacen("https", "http", 1);
    assert!(nuage_e2e::http_client()
        .get(format!("{plain}/healthz"))
        .send()
        .await
        .is_err());
    let stranger = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(stranger.get(daemon.url("/healthz")).send().await.is_err());

    // The console over wss://, with the client's trust of `first` only.
    let (id, _) = admin
        .create_small_vm(&image, json!({"name": "tls-console"}))
        .await;
    let vm = wait_until(
        &admin,
        &format!("/api/v1/vms/{id}"),
        Duration::from_secs(120),
        |v| v["state"] == "running",
    )
    .await;
    assert_eq!(vm["state"], "running", "{vm}");
    let url = daemon.console_ws_url(&admin, &id).await;
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        req,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(tls_config(&first))),
    )
    .await
    .expect("the console relay upgrades over wss://");
    let version = next_binary(&mut ws).await;
    assert!(version.starts_with(b"RFB 003."), "{version:?}");

    // A renewal: new files, then SIGHUP.
    install(&certs.path().join("second.crt"), &cert);
    install(&certs.path().join("second.key"), &key);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGHUP) };
    let start = std::time::Instant::now();
    while !daemon.log_text().contains("TLS certificate re-read") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no reload logged:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The open console goes on: the RFB handshake continues on the same connection.
    ws.send(Message::Binary(b"RFB 003.008\n".to_vec().into()))
        .await
        .unwrap();
    let security = next_binary(&mut ws).await;
    assert!(!security.is_empty() && security[0] > 0, "{security:?}");
    // The next connection gets the new certificate: a client that trusts only it signs in, one
    // that trusts only the old one cannot connect.
    let renewed = nuage_e2e::Api::sign_in_with(
        tls_client(&second),
        &daemon.base_url,
        "admin",
        nuage_e2e::ADMIN_PASSWORD,
    )
    .await;
    let (status, _) = renewed.get("/api/v1/me").await;
    assert_eq!(status, 200);
    assert!(tls_client(&first)
        .get(daemon.url("/healthz"))
        .send()
        .await
        .is_err());
    // A broken renewal is refused and the certificate in use stays.
    std::fs::write(&key, "not a key").unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGHUP) };
    let start = std::time::Instant::now();
    while !daemon.log_text().contains("keeping the certificate in use") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no refusal logged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = renewed.get("/api/v1/me").await;
    assert_eq!(status, 200);
    drop(ws);
    let (status, _) = renewed.delete(&format!("/api/v1/vms/{id}")).await;
    assert_eq!(status, 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_listen_without_a_certificate_serves_https_with_a_generated_one() {
    let env = [("NUAGE_LISTEN", "0.0.0.0:0")];
    let mut daemon =
        tokio::task::spawn_blocking(move || Daemon::start_with("test:///default", &env))
            .await
            .unwrap();
    assert!(
        daemon.base_url.starts_with("https://0.0.0.0:"),
        "{}",
        daemon.base_url
    );
    let tls = daemon.data_dir().join("tls");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&tls), 0o700);
    assert_eq!(mode(&tls.join("key.pem")), 0o600);
    assert_eq!(mode(&tls.join("cert.pem")), 0o600);
    let pem = std::fs::read(tls.join("cert.pem")).unwrap();
    let der = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()
    };
    let fingerprint = nuage_daemon::http::tls::fingerprint(&der);
    let line = format!("TLS certificate SHA-256 fingerprint: {fingerprint}");
    assert!(
        daemon.stdout_text().contains(&line),
        "the fingerprint is printed:\n{}",
        daemon.stdout_text()
    );
    assert!(daemon.stdout_text().contains("created user 'admin'"));

    // Reached over the loopback (the certificate names it for an all-addresses listen).
    let base = daemon.base_url.replacen("0.0.0.0", "127.0.0.1", 1);
    let health = tls_client(&pem)
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("HTTPS with the generated certificate");
    assert_eq!(health.status(), 200);
    let plain = base.replacen("https", "http", 1);
    assert!(nuage_e2e::http_client()
        .get(format!("{plain}/healthz"))
        .send()
        .await
        .is_err());

    // A restart serves the same certificate (it is made once).
    tokio::task::spawn_blocking(move || {
        daemon.kill_and_restart(&env);
        daemon
    })
    .await
    .map(|daemon| {
        assert_eq!(std::fs::read(tls.join("cert.pem")).unwrap(), pem);
        assert_eq!(daemon.stdout_text().matches(&line).count(), 2);
    })
    .unwrap();
}
