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

/// `?ticket=…` for `token`, from `POST /events/ticket` (and `extra`, e.g. `&all=true`).
async fn ticket(server: &TestServer, token: &str, extra: &str) -> String {
    let r = server
        .app
        .post("/api/v1/events/ticket", Some(token), "")
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let url = r.body["url"].as_str().unwrap();
    assert!(url.starts_with("/api/v1/events?ticket="), "{url}");
    assert!(!url.contains(token), "the token itself never goes in a URL");
    format!("?ticket={}{extra}", r.body["ticket"].as_str().unwrap())
}

/// Waits (at most 3 s) for the server to close the socket; the time it took.
async fn closed_within(socket: &mut Socket) -> Duration {
    let start = Instant::now();
    let limit = Duration::from_secs(3);
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), socket.next()).await {
            Err(_) => panic!("the socket stayed open for {limit:?}"),
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return start.elapsed(),
            Ok(Some(Ok(_))) => {}
        }
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
    assert_eq!(connect(&server, "?ticket=forged").await.err(), Some(401));
    let admin = t.admin_token().await;
    let (alice, _) = t
        .user_with_quota(
            &admin,
            "alice",
            json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0}),
        )
        .await;
    // A login token in the URL is not accepted any more (proxies log URLs).
    assert_eq!(
        connect(&server, &format!("?token={alice}")).await.err(),
        Some(401)
    );
    let q = ticket(&server, &alice, "&all=true").await;
    assert_eq!(connect(&server, &q).await.err(), Some(403));
    let q = ticket(&server, &alice, "").await;
    assert!(connect(&server, &q).await.is_ok());
    assert_eq!(connect(&server, &q).await.err(), Some(401), "single use");
    let q = ticket(&server, &admin, "&all=true").await;
    assert!(connect(&server, &q).await.is_ok());
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
    let q = ticket(&server, &alice, "").await;
    let mut alice_events = connect(&server, &q).await.unwrap();
    let q = ticket(&server, &bob, "").await;
    let mut bob_events = connect(&server, &q).await.unwrap();

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

/// An open events socket closes within a second of the end of the credential it was opened
/// with: logout, an API token's deletion (by its owner or an admin), a password reset, "sign out
/// everywhere", the user's deletion, a demotion from admin. Others' sockets stay open.
#[tokio::test(flavor = "multi_thread")]
async fn open_sockets_close_when_their_credential_ends() {
    let server = TestServer::start().await;
    let t = &server.app;
    let admin = t.admin_token().await;
    let q = json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0});
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", q.clone()).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", q).await;
    let srv = &server;
    let open = |token: String| async move {
        let q = ticket(srv, &token, "").await;
        connect(srv, &q).await.unwrap()
    };
    let mut bystander = open(bob.clone()).await;

    // Logout.
    let mut s = open(alice.clone()).await;
    let r = t.post("/api/v1/auth/logout", Some(&alice), "").await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(closed_within(&mut s).await < Duration::from_secs(1));

    // An API token deleted by its owner, then one revoked by an admin.
    let alice = t.login("alice", "password-1").await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for by_admin in [false, true] {
        let r = t
            .post("/api/v1/tokens", Some(&alice), r#"{"name":"ci"}"#)
            .await;
        let (id, token) = (
            r.body["id"].as_str().unwrap().to_owned(),
            r.body["token"].as_str().unwrap().to_owned(),
        );
        let mut s = open(token.clone()).await;
        let (path, who) = if by_admin {
            (format!("/api/v1/users/{alice_id}/tokens/{id}"), &admin)
        } else {
            (format!("/api/v1/tokens/{id}"), &alice)
        };
        let r = t
            .send(axum::http::Method::DELETE, &path, Some(who), None)
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert!(closed_within(&mut s).await < Duration::from_secs(1));
        assert_eq!(t.get("/api/v1/me", Some(&token)).await.status, 401);
    }

    // A password reset by an admin, and "sign out everywhere".
    for reset in [true, false] {
        let alice = t.login("alice", "password-1").await.body["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = t
            .post("/api/v1/tokens", Some(&alice), r#"{"name":"ci"}"#)
            .await;
        let api = r.body["token"].as_str().unwrap().to_owned();
        let (mut s1, mut s2) = (open(alice.clone()).await, open(api.clone()).await);
        let r = if reset {
            t.send(
                axum::http::Method::PATCH,
                &format!("/api/v1/users/{alice_id}"),
                Some(&admin),
                Some(r#"{"password":"password-1"}"#),
            )
            .await
        } else {
            t.post(
                &format!("/api/v1/users/{alice_id}/sign-out"),
                Some(&admin),
                "",
            )
            .await
        };
        assert!(r.status.is_success(), "{}", r.text);
        assert!(closed_within(&mut s1).await < Duration::from_secs(1));
        assert!(closed_within(&mut s2).await < Duration::from_secs(1));
        assert_eq!(t.get("/api/v1/me", Some(&alice)).await.status, 401);
        assert_eq!(
            t.get("/api/v1/me", Some(&api)).await.status,
            401,
            "the reset revoked the API token too"
        );
    }

    // Demotion from admin closes an admin's every-tenant view.
    let r = t
        .post(
            "/api/v1/users",
            Some(&admin),
            r#"{"username":"carol","password":"password-1","role":"admin"}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let carol_id = r.body["id"].as_str().unwrap().to_owned();
    let carol = t.login("carol", "password-1").await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = ticket(&server, &carol, "&all=true").await;
    let mut s = connect(&server, &q).await.unwrap();
    let r = t
        .send(
            axum::http::Method::PATCH,
            &format!("/api/v1/users/{carol_id}"),
            Some(&admin),
            Some(r#"{"role":"user"}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(closed_within(&mut s).await < Duration::from_secs(1));

    // Deletion.
    let mut s = open(carol.clone()).await;
    let r = t
        .send(
            axum::http::Method::DELETE,
            &format!("/api/v1/users/{carol_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(closed_within(&mut s).await < Duration::from_secs(1));

    // Bob heard of none of it.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), bystander.next())
            .await
            .is_err(),
        "the bystander's socket is still open and quiet"
    );
}

/// A user holds at most 32 live sockets; closing one frees its place.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_holds_a_bounded_number_of_sockets() {
    let server = TestServer::start().await;
    let t = &server.app;
    let admin = t.admin_token().await;
    let q = json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0});
    let (alice, _) = t.user_with_quota(&admin, "alice", q).await;
    let cap = nuage_daemon::app::revoke::MAX_SOCKETS_PER_USER;
    let mut open = Vec::new();
    for _ in 0..cap {
        let q = ticket(&server, &alice, "").await;
        open.push(connect(&server, &q).await.unwrap());
    }
    let q = ticket(&server, &alice, "").await;
    assert_eq!(connect(&server, &q).await.err(), Some(429));
    // Others are not affected.
    let q = ticket(&server, &admin, "").await;
    assert!(connect(&server, &q).await.is_ok());
    let mut one = open.pop().unwrap();
    one.close(None).await.unwrap();
    drop(one);
    let mut reopened = false;
    for _ in 0..50 {
        let q = ticket(&server, &alice, "").await;
        if connect(&server, &q).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened, "a closed socket frees its place");
}
