//! Personal API tokens.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn an_api_token_works_like_a_session_until_revoked() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let q = json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0});
    let (alice, _) = t.user_with_quota(&admin, "alice", q.clone()).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", q).await;

    let r = t
        .post(
            "/api/v1/tokens",
            Some(&alice),
            r#"{"name":"billing script","expires_in_days":30}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("nuage_"));
    assert!(r.body["expires_at"].as_str().is_some());

    let me = t.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.body["user"]["username"], "alice");
    let list = t.get("/api/v1/tokens", Some(&alice)).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert!(
        list.body[0].get("token").is_none(),
        "the secret is shown once only"
    );
    assert!(list.body[0]["last_used_at"].as_str().is_some());
    assert_eq!(t.get("/api/v1/tokens", Some(&bob)).await.body, json!([]));

    // A wrong secret for a real id, and another user's revocation, fail.
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(
        t.get("/api/v1/me", Some(&forged)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        t.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );

    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn token_requests_are_validated() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    for (body, status) in [
        (r#"{"name":""}"#, 422),
        (r#"{"name":"x","expires_in_days":0}"#, 422),
        (r#"{"name":"x","expires_in_days":5000}"#, 422),
        (r#"{"name":"x","expires_in_days":-1}"#, 400),
        (r#"{"nom":"x"}"#, 400),
    ] {
        assert_eq!(
            t.post("/api/v1/tokens", Some(&admin), body)
                .await
                .status
                .as_u16(),
            status,
            "{body}"
        );
    }
    // Logging out with an API token revokes it.
    let token = t
        .post("/api/v1/tokens", Some(&admin), r#"{"name":"ci"}"#)
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        t.send(Method::POST, "/api/v1/auth/logout", Some(&token), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_token_never_mints_a_token_that_outlives_it() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let q = json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0});
    let (alice, _) = t.user_with_quota(&admin, "alice", q).await;
    let r = t
        .post(
            "/api/v1/tokens",
            Some(&alice),
            r#"{"name":"short","expires_in_days":1}"#,
        )
        .await;
    let short = r.body["token"].as_str().unwrap().to_owned();
    let short_expiry = r.body["expires_at"].as_str().unwrap().to_owned();
    // Asking for longer is refused; asking for nothing inherits the parent's expiry.
    let r = t
        .post(
            "/api/v1/tokens",
            Some(&short),
            r#"{"name":"long","expires_in_days":30}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = t
        .post("/api/v1/tokens", Some(&short), r#"{"name":"forever"}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["expires_at"], short_expiry.as_str());
    // A login session may still make a token without expiry (the web console does).
    let r = t
        .post("/api/v1/tokens", Some(&alice), r#"{"name":"forever"}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.body["expires_at"].is_null());
}

#[tokio::test]
async fn tokens_per_user_are_capped_and_admins_list_and_revoke_them() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let q = json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0});
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", q.clone()).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", q).await;
    let cap = nuage_daemon::app::tokens::MAX_PER_USER;
    let mut first = None;
    for i in 0..cap {
        let r = t
            .post(
                "/api/v1/tokens",
                Some(&alice),
                &format!(r#"{{"name":"t{i}"}}"#),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        first.get_or_insert((
            r.body["id"].as_str().unwrap().to_owned(),
            r.body["token"].as_str().unwrap().to_owned(),
        ));
    }
    let r = t
        .post("/api/v1/tokens", Some(&alice), r#"{"name":"one too many"}"#)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    let path = format!("/api/v1/users/{alice_id}/tokens");
    let list = t.get(&path, Some(&admin)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), cap);
    assert!(list.body[0].get("token").is_none(), "never the secret");
    assert_eq!(t.get(&path, Some(&bob)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.get("/api/v1/users/nobody/tokens", Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let (id, token) = first.unwrap();
    assert_eq!(
        t.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );
    let r = t
        .send(Method::DELETE, &format!("{path}/{id}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = t
        .send(Method::DELETE, &format!("{path}/{id}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
