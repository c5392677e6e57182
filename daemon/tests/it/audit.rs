//! The audit log and the sign-in rate limit.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{raw_http, TestApp, TestServer, ADMIN_PASSWORD};

#[tokio::test]
async fn state_changing_requests_are_audited_with_who_what_and_outcome() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let quota = json!({"vcpus": 2, "memory_mib": 1024, "disk_gib": 2, "vms": 1, "snapshots": 0});
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", quota.clone()).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", quota).await;
    let body =
        json!({"name": "web", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1})
            .to_string();
    let vm = t.post("/api/v1/vms", Some(&alice), &body).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send(
        Method::POST,
        &format!("/api/v1/vms/{vm}/stop"),
        Some(&alice),
        None,
    )
    .await;
    let denied = t
        .send(
            Method::DELETE,
            &format!("/api/v1/vms/{vm}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(denied.status, StatusCode::NOT_FOUND);
    t.login("alice", "wrong-password").await;
    // Reads are not audited.
    t.get("/api/v1/vms", Some(&alice)).await;

    let log = t.get(&format!("/api/v1/audit?vm={vm}"), Some(&admin)).await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text);
    let entries = log.body.as_array().unwrap();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["username"].as_str().unwrap_or("").into(),
                e["action"].as_str().unwrap().into(),
                e["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "bob".into(),
                "DELETE /api/v1/vms/{id}".into(),
                "denied".into()
            ),
            (
                "alice".into(),
                "POST /api/v1/vms/{id}/{action}".into(),
                "success".into()
            ),
        ],
        "newest first: {}",
        log.text
    );
    assert_eq!(entries[0]["status"], 404);

    let by_alice = t
        .get(&format!("/api/v1/audit?user={alice_id}"), Some(&admin))
        .await;
    let actions: Vec<&str> = by_alice
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"POST /api/v1/vms"), "{actions:?}");
    assert!(!actions.iter().any(|a| a.starts_with("GET")), "{actions:?}");
    let by_name = t.get("/api/v1/audit?user=alice", Some(&admin)).await;
    let failed_login = by_name
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "auth.login")
        .unwrap();
    assert_eq!(failed_login["outcome"], "denied");
    assert_eq!(failed_login["status"], 401);

    assert_eq!(
        t.get("/api/v1/audit", Some(&alice)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.get("/api/v1/audit?since=yesterday", Some(&admin))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let future = t
        .get("/api/v1/audit?since=2999-01-01T00:00:00Z", Some(&admin))
        .await;
    assert_eq!(future.body, json!([]));
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_rate_limited_per_user() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let q = json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0});
    t.user_with_quota(&admin, "carol", q.clone()).await;
    t.user_with_quota(&admin, "dave", q).await;
    for _ in 0..5 {
        assert_eq!(
            t.login("carol", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = t.login("carol", "password-1").await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "from an unknown address even the right password waits: {}",
        r.text
    );
    assert_eq!(r.code(), "rate_limited");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("second"));
    assert_eq!(
        t.login("dave", "password-1").await.status,
        StatusCode::OK,
        "other users are not affected"
    );
}

/// 200 concurrent wrong passwords from one address: exactly the limit are checked (401), the
/// rest refused at once (429); the owner, from an address that never failed, still signs in.
#[tokio::test]
async fn a_burst_of_wrong_passwords_gets_exactly_the_limit_and_the_owner_still_gets_in() {
    let server = TestServer::start().await;
    let url = format!("http://{}/api/v1/auth/login", server.addr);
    let guesses = (0..200).map(|i| {
        let url = url.clone();
        tokio::spawn(async move {
            let body = format!(r#"{{"username":"admin","password":"guess-{i}"}}"#);
            raw_http("127.0.0.1", &url, "POST", None, Some(&body))
                .await
                .0
        })
    });
    let mut statuses = Vec::new();
    for g in guesses.collect::<Vec<_>>() {
        statuses.push(g.await.unwrap());
    }
    let count = |code: u16| statuses.iter().filter(|&&s| s == code).count();
    assert_eq!(count(401), 5, "{statuses:?}");
    assert_eq!(count(429), 195, "{statuses:?}");
    // The guesser waits, even with the right password...
    let right = format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    let (status, _) = raw_http("127.0.0.1", &url, "POST", None, Some(&right)).await;
    assert_eq!(status, 429);
    // ...the owner elsewhere does not.
    let (status, body) = raw_http("127.0.0.2", &url, "POST", None, Some(&right)).await;
    assert_eq!(status, 200, "{body}");
}
