//! Account security through the API: TOTP enrolment and sign-in (replay, recovery codes, the
//! sign-in limits), an admin's reset, `--require-2fa`, re-authentication before sensitive
//! changes, token scopes and client CIDRs, and the caller's sessions. Codes are computed by
//! `totp-rs` from the `otpauth://` URL the daemon hands out, as an authenticator app would.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use totp_rs::TOTP;

use crate::support::{raw_http, TestApp, TestServer};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code an app reading `url` shows `steps` steps from now.
pub fn code(url: &str, steps: i64) -> String {
    let totp = TOTP::from_url_unchecked(url).expect("an otpauth URL an app can read");
    totp.generate(now().saturating_add_signed(steps * 30))
}

async fn login(
    t: &TestApp,
    user: &str,
    password: &str,
    totp: Option<&str>,
) -> crate::support::Reply {
    let mut body = json!({"username": user, "password": password});
    if let Some(c) = totp {
        body["totp"] = json!(c);
    }
    t.post("/api/v1/auth/login", None, &body.to_string()).await
}

/// Enrols `token`'s user; returns the otpauth URL and the recovery codes.
async fn enrol(t: &TestApp, token: &str) -> (String, Vec<String>) {
    let begun = t.post("/api/v1/me/totp", Some(token), "").await;
    assert_eq!(begun.status, StatusCode::CREATED, "{}", begun.text);
    let url = begun.body["otpauth_url"].as_str().unwrap().to_owned();
    assert!(begun.body["qr_svg"].as_str().unwrap().starts_with("<?xml"));
    assert_eq!(
        TOTP::from_url_unchecked(&url).unwrap().get_secret_base32(),
        begun.body["secret"].as_str().unwrap()
    );
    // Not on until confirmed: a sign-in needs no code yet.
    let me = t.get("/api/v1/me", Some(token)).await;
    assert_eq!(me.body["security"]["totp"], false, "{}", me.text);
    let wrong = t
        .post(
            "/api/v1/me/totp/confirm",
            Some(token),
            r#"{"code":"12345"}"#,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "totp_invalid");
    let ok = t
        .post(
            "/api/v1/me/totp/confirm",
            Some(token),
            &json!({"code": code(&url, 0)}).to_string(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let codes: Vec<String> = ok.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (url, codes)
}

#[tokio::test]
async fn totp_signs_in_once_per_code_and_recovery_codes_once_each() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", json!(null)).await;
    let (url, recovery) = enrol(&t, &alice).await;
    let me = t.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(me.body["security"]["totp"], true);
    assert_eq!(me.body["security"]["recovery_codes_left"], 10);
    let detail = t
        .get(&format!("/api/v1/users/{alice_id}"), Some(&admin))
        .await;
    assert_eq!(
        detail.body["totp"], true,
        "admins see who has a second factor"
    );
    // Enrolling again while on is refused.
    let again = t.post("/api/v1/me/totp", Some(&alice), "").await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // The password alone: asked for the code. A wrong password is still the password's error.
    let r = login(&t, "alice", "password-1", None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "totp_required")
    );
    assert!(r.body.get("token").is_none());
    let r = login(&t, "alice", "wrong", Some(&code(&url, 0))).await;
    assert_eq!(r.code(), "unauthenticated");
    // The code that confirmed the enrolment was used: it cannot sign in (replay).
    let r = login(&t, "alice", "password-1", Some(&code(&url, 0))).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "totp_invalid")
    );
    // The next step's code (one step of drift) works, once.
    let next = code(&url, 1);
    let r = login(&t, "alice", "password-1", Some(&next)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = login(&t, "alice", "password-1", Some(&next)).await;
    assert_eq!(r.code(), "totp_invalid", "a code never works twice");
    // A recovery code in place of the code: once.
    let r = login(&t, "alice", "password-1", Some(&recovery[3].to_uppercase())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let me = t.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.body["security"]["recovery_codes_left"], 9);
    let r = login(&t, "alice", "password-1", Some(&recovery[3])).await;
    assert_eq!(r.code(), "totp_invalid");

    // Turning it off takes a code (a wrong one is refused), then the password alone signs in.
    let r = t
        .send(
            Method::DELETE,
            "/api/v1/me/totp",
            Some(&token),
            Some(r#"{"code":"000000x"}"#),
        )
        .await;
    assert_eq!(r.code(), "totp_invalid");
    let r = t
        .send(
            Method::DELETE,
            "/api/v1/me/totp",
            Some(&token),
            Some(&json!({"code": recovery[0]}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = login(&t, "alice", "password-1", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["must_enrol_second_factor"], false);
}

#[tokio::test]
async fn wrong_codes_count_like_wrong_passwords_and_an_admin_reset_ends_sessions() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (bob, bob_id) = t.user_with_quota(&admin, "bob", json!(null)).await;
    let (url, _) = enrol(&t, &bob).await;
    for _ in 0..nuage_daemon::app::ratelimit::PER_USER {
        let r = login(&t, "bob", "password-1", Some("000000")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
    let r = login(&t, "bob", "password-1", Some(&code(&url, 1))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);

    // A lost phone: the admin resets it (audited); bob's sessions end; the password alone works.
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{bob_id}/totp"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "not bob's own to reset");
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{bob_id}/totp"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{bob_id}/totp"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "nothing left to reset");
    assert_eq!(
        t.get("/api/v1/me", Some(&bob)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let audit = t.get("/api/v1/audit?limit=50", Some(&admin)).await;
    assert!(
        audit.text.contains(&format!("/api/v1/users/{bob_id}/totp")) || audit.text.contains("totp"),
        "{}",
        audit.text
    );
    let detail = t
        .get(&format!("/api/v1/users/{bob_id}"), Some(&admin))
        .await;
    assert_eq!(detail.body["totp"], false);
}

#[tokio::test]
async fn a_required_second_factor_must_be_enrolled_before_anything_else() {
    let (_, t) = TestApp::with_policy(&["--require-2fa", "all"]).await;
    let r = t.login("admin", crate::support::ADMIN_PASSWORD).await;
    assert_eq!(r.body["must_enrol_second_factor"], true, "{}", r.text);
    let admin = r.body["token"].as_str().unwrap().to_owned();
    for (method, path) in [
        (Method::GET, "/api/v1/vms"),
        (Method::GET, "/api/v1/users"),
        (Method::POST, "/api/v1/tokens"),
        (Method::GET, "/api/v1/me/sessions"),
    ] {
        let r = t
            .send(method, path, Some(&admin), Some(r#"{"name":"x"}"#))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
        assert_eq!(r.code(), "second_factor_required", "{path}");
    }
    let me = t.get("/api/v1/me", Some(&admin)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["security"]["must_enrol"], true);
    let (url, _) = enrol(&t, &admin).await;
    // The same session goes on, now enrolled; it cannot turn the factor off (required).
    assert_eq!(
        t.get("/api/v1/users", Some(&admin)).await.status,
        StatusCode::OK
    );
    let r = t
        .send(
            Method::DELETE,
            "/api/v1/me/totp",
            Some(&admin),
            Some(&json!({"code": code(&url, 1)}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    // `admins` (the default) asks it of administrators only.
    let (_, t) = TestApp::with_policy(&["--require-2fa", "admins"]).await;
    let r = t.login("admin", crate::support::ADMIN_PASSWORD).await;
    assert_eq!(r.body["must_enrol_second_factor"], true);
    let admin = r.body["token"].as_str().unwrap().to_owned();
    let _ = enrol(&t, &admin).await;
    let (user, _) = t.user_with_quota(&admin, "carol", json!(null)).await;
    assert_eq!(
        t.get("/api/v1/vms", Some(&user)).await.status,
        StatusCode::OK
    );
    let d = nuage_daemon::config::Settings::resolve(
        <nuage_daemon::config::Cli as clap::Parser>::try_parse_from(["nuaged"]).unwrap(),
    )
    .unwrap();
    assert_eq!(d.require_2fa, nuage_daemon::config::Require2fa::Admins);
}

#[tokio::test]
async fn sensitive_changes_need_a_verification_in_the_last_five_minutes() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (dave, _) = t.user_with_quota(&admin, "dave", json!(null)).await;
    // Just signed in: verified.
    let r = t
        .post("/api/v1/tokens", Some(&dave), r#"{"name":"fresh"}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let old_token = r.body["token"].as_str().unwrap().to_owned();
    t.age_verifications().await;
    for (method, path, body) in [
        (Method::POST, "/api/v1/tokens", r#"{"name":"later"}"#),
        (Method::POST, "/api/v1/me/totp", ""),
        (
            Method::PUT,
            "/api/v1/me/password",
            r#"{"password":"password-2"}"#,
        ),
    ] {
        let r = t.send(method, path, Some(&dave), Some(body)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text);
        assert_eq!(r.code(), "reauthentication_required", "{path}");
    }
    let r = t
        .post("/api/v1/auth/verify", Some(&dave), r#"{"password":"nope"}"#)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t
        .post(
            "/api/v1/auth/verify",
            Some(&dave),
            r#"{"password":"password-1"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = t
        .send(
            Method::PUT,
            "/api/v1/me/password",
            Some(&dave),
            Some(r#"{"password":"short"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let other = t.login("dave", "password-1").await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .send(
            Method::PUT,
            "/api/v1/me/password",
            Some(&dave),
            Some(r#"{"password":"password-2"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        t.login("dave", "password-1").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(t.login("dave", "password-2").await.status, StatusCode::OK);
    assert_eq!(
        t.get("/api/v1/me", Some(&other)).await.status,
        StatusCode::UNAUTHORIZED,
        "the other sessions ended"
    );
    assert_eq!(
        t.get("/api/v1/me", Some(&dave)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        t.get("/api/v1/me", Some(&old_token)).await.status,
        StatusCode::UNAUTHORIZED,
        "API tokens end with the old password too"
    );
    let r = t
        .post("/api/v1/tokens", Some(&dave), r#"{"name":"after"}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let api_token = r.body["token"].as_str().unwrap().to_owned();
    // An API token cannot do what needs a person.
    for (method, path, body) in [
        (Method::POST, "/api/v1/me/totp", ""),
        (
            Method::PUT,
            "/api/v1/me/password",
            r#"{"password":"password-3"}"#,
        ),
        (
            Method::POST,
            "/api/v1/auth/verify",
            r#"{"password":"password-2"}"#,
        ),
    ] {
        let r = t.send(method, path, Some(&api_token), Some(body)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn token_scopes_narrow_what_a_token_may_do() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (erin, _) = t.user_with_quota(&admin, "erin", json!(null)).await;
    let make = |token: String, body: Value| {
        let t = &t;
        async move {
            t.post("/api/v1/tokens", Some(&token), &body.to_string())
                .await
        }
    };
    let r = make(erin.clone(), json!({"name": "r", "scope": "read"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["scope"], "read");
    let read = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        t.get("/api/v1/vms", Some(&read)).await.status,
        StatusCode::OK
    );
    let r = t
        .post(
            "/api/v1/vms",
            Some(&read),
            r#"{"name":"x","image_id":"y","vcpus":1,"memory_mib":256,"disk_gib":1}"#,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    assert!(r.text.contains("read-only"), "{}", r.text);
    let r = make(erin.clone(), json!({"name": "a", "scope": "admin"})).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a user's token is never admin"
    );
    let r = make(
        erin.clone(),
        json!({"name": "c", "allowed_cidrs": ["10.0.0.1/8"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = make(erin.clone(), json!({"name": "s", "scope": "sudo"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let listed = t.get("/api/v1/tokens", Some(&erin)).await;
    assert_eq!(listed.body[0]["scope"], "read", "{}", listed.text);

    // An admin's `full` token is a tenant's; only an `admin` token administers.
    let r = make(admin.clone(), json!({"name": "f"})).await;
    let full = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        t.get("/api/v1/users", Some(&full)).await.status,
        StatusCode::FORBIDDEN
    );
    let r = make(admin.clone(), json!({"name": "adm", "scope": "admin"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let adm = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        t.get("/api/v1/users", Some(&adm)).await.status,
        StatusCode::OK
    );
    // A token never mints a broader one.
    let r = make(full.clone(), json!({"name": "up", "scope": "admin"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = make(full, json!({"name": "down", "scope": "read"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn a_token_works_only_from_its_client_cidrs() {
    let server = TestServer::start().await;
    let t = &server.app;
    let admin = t.admin_token().await;
    let (frank, _) = t.user_with_quota(&admin, "frank", json!(null)).await;
    let r = t
        .post(
            "/api/v1/tokens",
            Some(&frank),
            r#"{"name":"ci","allowed_cidrs":["127.0.0.2","10.0.0.0/8"]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body["allowed_cidrs"],
        json!(["127.0.0.2/32", "10.0.0.0/8"])
    );
    let token = r.body["token"].as_str().unwrap().to_owned();
    let url = format!("http://{}/api/v1/vms", server.addr);
    let (status, _) = raw_http("127.0.0.2", &url, "GET", Some(&token), None).await;
    assert_eq!(status, 200);
    let (status, body) = raw_http("127.0.0.3", &url, "GET", Some(&token), None).await;
    assert_eq!(status, 401, "{body}");
    let listed = t.get("/api/v1/tokens", Some(&frank)).await;
    assert_eq!(
        listed.body[0]["last_client"], "127.0.0.2",
        "{}",
        listed.text
    );
}

#[tokio::test]
async fn a_user_lists_and_ends_their_own_sessions() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (gina, _) = t.user_with_quota(&admin, "gina", json!(null)).await;
    let second = t.login("gina", "password-1").await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let third = t.login("gina", "password-1").await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .post("/api/v1/tokens", Some(&gina), r#"{"name":"bot"}"#)
        .await;
    let token_id = r.body["id"].as_str().unwrap().to_owned();
    let list = t.get("/api/v1/me/sessions", Some(&gina)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let sessions = list.body.as_array().unwrap();
    assert_eq!(sessions.len(), 4, "{}", list.text);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(
        sessions.iter().filter(|s| s["kind"] == "password").count(),
        3
    );
    let bot = sessions.iter().find(|s| s["kind"] == "token").unwrap();
    assert_eq!(bot["id"], format!("token:{token_id}"));
    assert_eq!(bot["name"], "bot");
    // End the second session by its id.
    let mine = t.get("/api/v1/me/sessions", Some(&second)).await;
    let second_id = mine
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{second_id}"),
            Some(&gina),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.get("/api/v1/me", Some(&second)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{second_id}"),
            Some(&gina),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "already ended");
    // Another user's session is not found, and stays.
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{second_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Everywhere else: the third ends, this one and the API token stay.
    let r = t.post("/api/v1/me/sign-out", Some(&gina), "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.get("/api/v1/me", Some(&third)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.get("/api/v1/me", Some(&gina)).await.status,
        StatusCode::OK
    );
    let list = t.get("/api/v1/me/sessions", Some(&gina)).await;
    assert_eq!(list.body.as_array().unwrap().len(), 2, "{}", list.text);
    // Revoking the token through the sessions list.
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/me/sessions/token:{token_id}"),
            Some(&gina),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.get("/api/v1/tokens", Some(&gina)).await.body, json!([]));
}

#[tokio::test]
async fn code_guesses_are_limited_per_user_from_any_number_of_addresses() {
    let server = TestServer::start().await;
    let t = &server.app;
    let admin = t.admin_token().await;
    let (hank, _) = t.user_with_quota(&admin, "hank", json!(null)).await;
    let (url, _) = enrol(t, &hank).await;
    let login_url = format!("http://{}/api/v1/auth/login", server.addr);
    let body = |code: &str| {
        json!({"username": "hank", "password": "password-1", "totp": code}).to_string()
    };
    // Each wrong guess from a fresh address (a clean client is not throttled by the password
    // limits): still only CODE_FAILURES of them.
    for i in 0..nuage_daemon::app::ratelimit::CODE_FAILURES {
        let from = format!("127.0.1.{}", i + 1);
        let (status, text) = raw_http(&from, &login_url, "POST", None, Some(&body("000000"))).await;
        assert_eq!(status, 401, "{text}");
    }
    let (status, text) = raw_http(
        "127.0.2.1",
        &login_url,
        "POST",
        None,
        Some(&body(&code(&url, 1))),
    )
    .await;
    assert_eq!(status, 429, "even the right code waits now: {text}");
}

#[tokio::test]
async fn a_token_stays_within_its_cidrs_and_admins_change_their_own_account_only_themselves() {
    let server = TestServer::start().await;
    let t = &server.app;
    let admin = t.admin_token().await;
    let (ivy, ivy_id) = t.user_with_quota(&admin, "ivy", json!(null)).await;
    let r = t
        .post(
            "/api/v1/tokens",
            Some(&ivy),
            r#"{"name":"fenced","allowed_cidrs":["127.0.0.0/8"]}"#,
        )
        .await;
    let fenced = r.body["token"].as_str().unwrap().to_owned();
    let url = format!("http://{}/api/v1/tokens", server.addr);
    // Minted by the fenced token: without a list it inherits the parent's; a broader list is
    // refused.
    let (status, text) = raw_http(
        "127.0.0.2",
        &url,
        "POST",
        Some(&fenced),
        Some(r#"{"name":"child"}"#),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let child: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(child["allowed_cidrs"], json!(["127.0.0.0/8"]));
    let (status, text) = raw_http(
        "127.0.0.2",
        &url,
        "POST",
        Some(&fenced),
        Some(r#"{"name":"wide","allowed_cidrs":["0.0.0.0/0"]}"#),
    )
    .await;
    assert_eq!(status, 403, "{text}");

    // An admin's own password and second factor change only through their own endpoints.
    let me = t.get("/api/v1/me", Some(&admin)).await;
    let admin_id = me.body["user"]["id"].as_str().unwrap().to_owned();
    let r = t
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            Some(&admin),
            Some(r#"{"password":"taken-over-1"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{admin_id}/totp"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // Another user's password is still theirs to set, and ends their credentials.
    let r = t
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{ivy_id}"),
            Some(&admin),
            Some(r#"{"password":"new-password-9"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
