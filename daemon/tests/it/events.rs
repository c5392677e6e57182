//! `/api/v1/events` on the real server: authentication before the upgrade, and each tenant sees
//! only their own servers' events, including changes made behind the daemon's back in libvirt.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::TestServer;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &TestServer, query: &str) -> Result<Socket, u16> {
    let url = format!("ws://{}/api/v1/events{query}", server.addr);
    match tokio_tungstenite::connect_async(url).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

/// The next event about `vm_id` of kind `kind` (its body), skipping others; with its arrival
/// time.
async fn next_event(socket: &mut Socket, vm_id: &str, kind: &str) -> (Value, Instant) {
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            msg = socket.next() => {
                let Some(Ok(Message::Text(text))) = msg else { panic!("socket closed: {msg:?}") };
                let v: Value = serde_json::from_str(&text).unwrap();
                // One key, the kind: {"vm_state": {...}}.
                let body = &v[kind];
                let id = body["vm_id"].as_str().or(body["vm"]["id"].as_str()).unwrap_or("");
                if id == vm_id {
                    return (body.clone(), Instant::now());
                }
            }
            _ = &mut deadline => panic!("no {kind} event for {vm_id} within 5 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_need_a_valid_token_before_the_upgrade() {
    let server = TestServer::start().await;
    let t = &server.app;
    assert_eq!(connect(&server, "").await.err(), Some(401));
    assert_eq!(connect(&server, "?token=forged").await.err(), Some(401));
    let admin = t.admin_token().await;
    let (alice, _) = t
        .user_with_quota(
            &admin,
            "alice",
            json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0}),
        )
        .await;
    assert_eq!(
        connect(&server, &format!("?token={alice}&all=true"))
            .await
            .err(),
        Some(403)
    );
    assert!(connect(&server, &format!("?token={alice}")).await.is_ok());
    assert!(connect(&server, &format!("?token={admin}&all=true"))
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tenant_hears_only_about_their_own_servers() {
    let server = TestServer::start().await;
    let t = &server.app;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let roomy = json!({"vcpus": 4, "memory_mib": 4096, "disk_gib": 10, "vms": 2, "snapshots": 0});
    let (alice, _) = t.user_with_quota(&admin, "alice", roomy.clone()).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", roomy).await;
    let mut alice_events = connect(&server, &format!("?token={alice}")).await.unwrap();
    let mut bob_events = connect(&server, &format!("?token={bob}")).await.unwrap();

    let body =
        json!({"name": "web", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1})
            .to_string();
    let r = t.post("/api/v1/vms", Some(&alice), &body).await;
    let alice_vm = r.body["id"].as_str().unwrap().to_owned();
    let r = t.post("/api/v1/vms", Some(&bob), &body).await;
    let bob_vm = r.body["id"].as_str().unwrap().to_owned();
    let (created, _) = next_event(&mut alice_events, &alice_vm, "vm_updated").await;
    assert_eq!(created["vm"]["state"], "running");
    next_event(&mut bob_events, &bob_vm, "vm_updated").await;

    // A change made in libvirt behind the daemon's back (the test driver is shared within this
    // process) reaches the owner through libvirt's lifecycle event.
    let changed = Instant::now();
    let hv = nuage_daemon::hypervisor::libvirt::Libvirt::connect("test:///default").unwrap();
    use nuage_daemon::hypervisor::Hypervisor;
    hv.destroy(&format!("nuage-{alice_vm}")).unwrap();
    let (ev, at) = next_event(&mut alice_events, &alice_vm, "vm_state").await;
    assert_eq!(ev["state"], "stopped");
    eprintln!(
        "libvirt state change reached the subscriber in {:?}",
        at - changed
    );
    assert_eq!(
        t.get(&format!("/api/v1/vms/{alice_vm}"), Some(&alice))
            .await
            .body["state"],
        "stopped"
    );

    // Bob heard nothing of Alice's server: everything he receives is about his own.
    let r = t
        .send(
            axum::http::Method::DELETE,
            &format!("/api/v1/vms/{bob_vm}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let deadline = Instant::now() + Duration::from_millis(500);
    while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        bob_events.next(),
    )
    .await
    {
        assert!(
            !text.contains(&alice_vm),
            "bob received an event about alice's server: {text}"
        );
    }
}
