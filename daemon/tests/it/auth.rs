//! Login, tokens and logout.

use axum::http::{Method, StatusCode};

use crate::support::{TestApp, ADMIN_PASSWORD};

#[tokio::test]
async fn the_first_admin_signs_in_with_the_configured_password() {
    let t = TestApp::new().await;
    let r = t.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["user"]["username"], "admin");
    assert_eq!(r.body["user"]["role"], "admin");
    assert!(r.body["token"].as_str().unwrap().len() > 40);
    let expires = r.body["expires_at"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .is_ok()
    );
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_the_same_401() {
    let t = TestApp::new().await;
    let wrong = t.login("admin", "not-the-password").await;
    let unknown = t.login("nobody", "whatever").await;
    for r in [&wrong, &unknown] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.code(), "unauthenticated");
    }
    assert_eq!(
        wrong.body, unknown.body,
        "the answer must not reveal whether a user exists"
    );
}

#[tokio::test]
async fn bad_login_bodies_get_the_documented_4xx() {
    let t = TestApp::new().await;
    let cases = [
        (
            r#"{"username":"admin""#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            r#"{"username":"admin","password":"x","role":"admin"}"#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            r#"{"username":1,"password":"x"}"#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            r#"{"username":"admin"}"#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            r#"{"username":"","password":""}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
    ];
    for (body, status, code) in cases {
        let r = t.post("/api/v1/auth/login", None, body).await;
        assert_eq!(r.status, status, "{body} -> {}", r.text);
        assert_eq!(r.code(), code, "{body}");
        assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
    }
    let huge = format!(
        r#"{{"username":"admin","password":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let r = t.post("/api/v1/auth/login", None, &huge).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.code(), "bad_request");
}

#[tokio::test]
async fn missing_forged_and_revoked_tokens_are_401() {
    let t = TestApp::new().await;
    let token = t.admin_token().await;
    assert_eq!(
        t.get("/api/v1/host", Some(&token)).await.status,
        StatusCode::OK
    );

    assert_eq!(t.get("/api/v1/host", None).await.code(), "unauthenticated");
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [forged.as_str(), "not-a-jwt", ""] {
        let r = t.get("/api/v1/host", Some(bad)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(r.code(), "unauthenticated");
    }

    // Logout revokes at once; another session of the same user is untouched.
    let other = t.admin_token().await;
    let r = t
        .send(Method::POST, "/api/v1/auth/logout", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.get("/api/v1/host", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.get("/api/v1/host", Some(&other)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_from_another_daemon_is_refused() {
    let a = TestApp::new().await;
    let b = TestApp::new().await;
    let token_a = a.admin_token().await;
    // Each daemon has its own generated key: a token of daemon A means nothing to daemon B.
    assert_eq!(
        b.get("/api/v1/host", Some(&token_a)).await.status,
        StatusCode::UNAUTHORIZED
    );
}
