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

/// An anonymous flood of long-path POSTs (to real routes and to none) stores nothing but one
/// summary entry: the audit log cannot be used to fill the disk.
#[tokio::test]
async fn anonymous_floods_are_counted_not_stored() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let count = |t: &TestApp| {
        let app = t.app.clone();
        async move {
            app.db
                .call(|c| nuage_daemon::db::audit::count(c))
                .await
                .unwrap()
        }
    };
    let before = count(&t).await;
    let long = "x".repeat(60_000);
    for i in 0..200 {
        let path = match i % 3 {
            0 => format!("/api/v1/vms/{long}/stop"),
            1 => format!("/api/v1/{long}"),
            _ => "/api/v1/vms".to_owned(),
        };
        let token = (i % 2 == 0).then_some("forged.token.here");
        let r = t.post(&path, token, "{}").await;
        assert!(r.status.is_client_error(), "{path:.40}: {}", r.status);
    }
    // 200 failed sign-ins past the limit, too.
    for _ in 0..200 {
        t.login("admin", "wrong").await;
    }
    let after = count(&t).await;
    assert!(
        after - before <= 5,
        "{} entries for 400 anonymous requests",
        after - before
    );
    assert!(t.app.anonymous_refusals() >= 395);
    t.app.housekeep().await.unwrap();
    let r = t.get("/api/v1/audit?limit=1", Some(&admin)).await;
    let summary = r.body[0]["action"].as_str().unwrap().to_owned();
    assert!(summary.ends_with("anonymous requests refused"), "{summary}");
    assert_eq!(count(&t).await, after + 1);
    // Entries a signed-in user causes keep their fields short.
    let r = t
        .post(&format!("/api/v1/vms/{long}/stop"), Some(&admin), "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t.get("/api/v1/audit?limit=1", Some(&admin)).await;
    assert_eq!(r.body[0]["resource_id"].as_str().unwrap().len(), 64);
    assert!(r.text.len() < 1024, "{}", r.text.len());
}

#[tokio::test]
async fn old_audit_entries_go_after_the_retention_and_past_the_row_cap() {
    let (app, t) = TestApp::with_policy(&["--audit-max-rows", "1000"]).await;
    let admin = t.admin_token().await;
    let entry = |at: &str, i: usize| nuage_shared::AuditEntry {
        id: 0,
        at: at.into(),
        user_id: None,
        username: None,
        action: format!("old {i}"),
        resource_type: "vms".into(),
        resource_id: None,
        vm_id: None,
        client: None,
        outcome: "success".into(),
        status: Some(200),
    };
    app.db
        .call(move |c| {
            for i in 0..10 {
                nuage_daemon::db::audit::insert(c, &entry("2001-01-01T00:00:00Z", i))?;
            }
            for i in 0..1500 {
                nuage_daemon::db::audit::insert(c, &entry(&nuage_daemon::db::now_rfc3339(), i))?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let swept = app.housekeep().await.unwrap();
    assert!(swept.audit >= 510, "{swept:?}");
    let total = app
        .db
        .call(|c| nuage_daemon::db::audit::count(c))
        .await
        .unwrap();
    assert_eq!(total, 1000);
    let r = t.get("/api/v1/audit?limit=1000", Some(&admin)).await;
    assert!(!r.text.contains("2001-01-01"));
    assert!(r.text.contains("old 1499"), "the newest stay");
}
