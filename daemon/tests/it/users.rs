//! Administration of users and quotas; `GET /me`.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

async fn create(t: &TestApp, admin: &str, body: serde_json::Value) -> crate::support::Reply {
    t.post("/api/v1/users", Some(admin), &body.to_string())
        .await
}

#[tokio::test]
async fn an_admin_creates_a_user_who_signs_in_and_sees_their_quota() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let quota = json!({"vcpus": 2, "memory_mib": 1024, "disk_gib": 10, "vms": 3, "snapshots": 1});
    let r = create(
        &t,
        &admin,
        json!({"username": "alice", "password": "alice-pass", "role": "user", "quota": quota}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["username"], "alice");
    assert_eq!(r.body["quota"], quota);

    let login = t.login("alice", "alice-pass").await;
    assert_eq!(login.status, StatusCode::OK);
    let alice = login.body["token"].as_str().unwrap().to_owned();
    let me = t.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["username"], "alice");
    assert_eq!(me.body["user"]["role"], "user");
    assert_eq!(me.body["quota"], quota);
    assert_eq!(
        me.body["usage"],
        json!({"vcpus": 0, "memory_mib": 0, "disk_gib": 0, "vms": 0, "snapshots": 0})
    );

    // Users may not administer.
    for (method, path) in [
        (Method::GET, "/api/v1/users"),
        (Method::GET, "/api/v1/host"),
    ] {
        let r = t.send(method, path, Some(&alice), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(r.code(), "forbidden");
    }
    let r = create(
        &t,
        &alice,
        json!({"username": "mallory", "password": "12345678", "role": "admin"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.login("mallory", "12345678").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_user_input_is_refused_and_creates_nothing() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let cases = [
        (
            json!({"username": "Bob", "password": "12345678", "role": "user"}),
            422,
        ),
        (
            json!({"username": "../etc", "password": "12345678", "role": "user"}),
            422,
        ),
        (
            json!({"username": "a<b", "password": "12345678", "role": "user"}),
            422,
        ),
        (
            json!({"username": "x".repeat(33), "password": "12345678", "role": "user"}),
            422,
        ),
        (
            json!({"username": "bob", "password": "short", "role": "user"}),
            422,
        ),
        (
            json!({"username": "bob", "password": "12345678", "role": "root"}),
            400,
        ),
        (
            json!({"username": "bob", "password": "12345678", "role": "user", "quota": {"vcpus": -1, "memory_mib": 1, "disk_gib": 1, "vms": 1, "snapshots": 1}}),
            400,
        ),
        (
            json!({"username": "bob", "password": "12345678", "role": "user", "quota": {"vcpus": 99999, "memory_mib": 1, "disk_gib": 1, "vms": 1, "snapshots": 1}}),
            422,
        ),
        (
            json!({"username": "bob", "password": "12345678", "role": "user", "extra": 1}),
            400,
        ),
    ];
    for (body, status) in cases {
        let r = create(&t, &admin, body.clone()).await;
        assert_eq!(r.status.as_u16(), status, "{body} -> {}", r.text);
    }
    let list = t.get("/api/v1/users", Some(&admin)).await;
    assert_eq!(
        list.body.as_array().unwrap().len(),
        1,
        "only admin exists: {}",
        list.text
    );

    let ok = json!({"username": "bob", "password": "12345678", "role": "user"});
    assert_eq!(
        create(&t, &admin, ok.clone()).await.status,
        StatusCode::CREATED
    );
    let dup = create(&t, &admin, ok).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "conflict");
}

#[tokio::test]
async fn patch_changes_password_role_and_quota() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let r = create(
        &t,
        &admin,
        json!({"username": "carol", "password": "carol-pass", "role": "user"}),
    )
    .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let carol = t.login("carol", "carol-pass").await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/users/{id}");

    let q = json!({"vcpus": 0, "memory_mib": 0, "disk_gib": 0, "vms": 0, "snapshots": 0});
    let r = t
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(&json!({"quota": q}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["quota"], q);

    // A new password ends the user's sessions; the new one works, the old one does not.
    let r = t
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(r#"{"password":"carol-new-pass"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.get("/api/v1/me", Some(&carol)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.login("carol", "carol-pass").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.login("carol", "carol-new-pass").await.status,
        StatusCode::OK
    );

    let r = t
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(r#"{"role":"admin"}"#),
        )
        .await;
    assert_eq!(r.body["role"], "admin");
    let r = t
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(r#"{"username":"x"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .send(
            Method::PATCH,
            "/api/v1/users/nope",
            Some(&admin),
            Some(r#"{"role":"user"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_user_revokes_their_tokens_at_once() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let r = create(
        &t,
        &admin,
        json!({"username": "dave", "password": "dave-pass", "role": "user"}),
    )
    .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let dave = t.login("dave", "dave-pass").await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        t.get("/api/v1/me", Some(&dave)).await.status,
        StatusCode::OK
    );

    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.get("/api/v1/me", Some(&dave)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.get(&format!("/api/v1/users/{id}"), Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let again = t
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_last_admin_can_be_neither_demoted_nor_deleted() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let me = t.get("/api/v1/me", Some(&admin)).await;
    let admin_id = me.body["user"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/users/{admin_id}");
    let r = t.send(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = t
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(r#"{"role":"user"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(
        t.get("/api/v1/users", Some(&admin)).await.status,
        StatusCode::OK
    );
}
