//! Passkeys through the API: a ceremony is used once and belongs to the session that began it;
//! registering needs a recent verification; a sign-in challenge is anonymous but bounded per
//! client, and a refused answer is counted, not stored; a passkey is a second factor (the
//! password alone no longer signs in, enrolment is satisfied, an admin's reset removes it).
//! The signatures themselves are checked end to end with Chromium's virtual authenticator
//! (`tests/e2e/passkeys.rs`).

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

/// Gives `user_id` a passkey row as the daemon keeps it (its credential is not needed to list,
/// rename, delete or count it).
async fn stored_passkey(t: &TestApp, user_id: &str, id: &str) {
    let (uid, id) = (user_id.to_owned(), id.to_owned());
    t.app
        .db
        .call(move |c| {
            c.execute(
                "INSERT INTO passkeys (id, user_id, name, credential_id, passkey, created_at)
                 VALUES (?1, ?2, 'old key', ?1, '{}', '2026-01-01T00:00:00Z')",
                [&id, &uid],
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_registration_is_used_once_by_the_session_that_began_it() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (dave, _) = t.user_with_quota(&admin, "dave", json!(null)).await;
    let r = t.post("/api/v1/me/passkeys/options", Some(&dave), "").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let o = &r.body["options"]["publicKey"];
    assert_eq!(o["rp"]["id"], "localhost", "{}", r.text);
    assert_eq!(o["user"]["name"], "dave");
    let sel = &o["authenticatorSelection"];
    assert_eq!(
        (sel["residentKey"].clone(), sel["userVerification"].clone()),
        (json!("required"), json!("required")),
        "a passkey is discoverable and verifies its user: {}",
        r.text
    );
    let challenge = r.body["challenge_id"].as_str().unwrap().to_owned();
    let answer = |name: &str| {
        json!({"challenge_id": challenge, "name": name, "credential": {"id": "x"}}).to_string()
    };
    // A bad name is refused before the ceremony is spent.
    for bad in ["", "   ", &"k".repeat(65), "a\u{7}b"] {
        let r = t
            .post("/api/v1/me/passkeys", Some(&dave), &answer(bad))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}: {}",
            r.text
        );
    }
    // Another session of the same user cannot finish it, and that spends it.
    let other = t.login("dave", "password-1").await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .post("/api/v1/me/passkeys", Some(&other), &answer("k"))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "passkey_invalid"),
        "{}",
        r.text
    );
    let r = t
        .post("/api/v1/me/passkeys", Some(&dave), &answer("k"))
        .await;
    assert_eq!(r.code(), "passkey_invalid", "used once: {}", r.text);
    // A sign-in challenge registers nothing.
    let signin = t.post("/api/v1/auth/passkey/options", None, "").await;
    let body = json!({"challenge_id": signin.body["challenge_id"], "name": "k", "credential": {}});
    let r = t
        .post("/api/v1/me/passkeys", Some(&dave), &body.to_string())
        .await;
    assert_eq!(r.code(), "passkey_invalid", "{}", r.text);
    // Past the five minutes a registration needs the user to confirm who they are again.
    t.age_verifications().await;
    let r = t.post("/api/v1/me/passkeys/options", Some(&dave), "").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "reauthentication_required"),
        "{}",
        r.text
    );
    let r = t
        .post(
            "/api/v1/auth/verify",
            Some(&dave),
            r#"{"password":"password-1"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = t.post("/api/v1/me/passkeys/options", Some(&dave), "").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // An API token cannot register one.
    let tok = t
        .post("/api/v1/tokens", Some(&dave), r#"{"name":"ci"}"#)
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t.post("/api/v1/me/passkeys/options", Some(&tok), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

#[tokio::test]
async fn sign_in_challenges_are_anonymous_single_use_bounded_and_refusals_are_not_stored() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let r = t.post("/api/v1/auth/passkey/options", None, "").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let o = &r.body["options"];
    assert_eq!(o["publicKey"]["userVerification"], "required", "{}", r.text);
    assert!(
        o["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "discoverable: no account is named before the passkey answers: {}",
        r.text
    );
    assert!(o.get("mediation").is_none(), "asked on a click: {}", r.text);
    let body =
        json!({"challenge_id": r.body["challenge_id"], "credential": {"id": "x"}}).to_string();
    for _ in 0..2 {
        let r = t.post("/api/v1/auth/passkey", None, &body).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "passkey_invalid"),
            "{}",
            r.text
        );
    }
    let unknown = json!({"challenge_id": "nope", "credential": {}}).to_string();
    let r = t.post("/api/v1/auth/passkey", None, &unknown).await;
    assert_eq!(r.code(), "passkey_invalid", "{}", r.text);
    let audit = t.get("/api/v1/audit", Some(&admin)).await;
    assert!(
        !audit.text.contains("auth.passkey"),
        "refused anonymous answers are counted, not stored: {}",
        audit.text
    );
    // Sixteen ceremonies wait at once per client address; another address is not held up.
    let from = |last: u8| std::net::SocketAddr::from(([198, 51, 100, last], 40000));
    for i in 0..16 {
        let r = t
            .send_from(
                Some(from(1)),
                Method::POST,
                "/api/v1/auth/passkey/options",
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "ceremony {i}: {}", r.text);
    }
    let r = t
        .send_from(
            Some(from(1)),
            Method::POST,
            "/api/v1/auth/passkey/options",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    // Nor is registering a passkey (its ceremonies are counted per user, apart).
    let (dave, _) = t.user_with_quota(&admin, "dave", json!(null)).await;
    let r = t.post("/api/v1/me/passkeys/options", Some(&dave), "").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // An IPv6 client counts per /64: its neighbours share its sixteen.
    for i in 0..16u16 {
        let addr = std::net::SocketAddr::from((
            std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0, 0, 0, i + 1),
            40000,
        ));
        let r = t
            .send_from(
                Some(addr),
                Method::POST,
                "/api/v1/auth/passkey/options",
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "address {i}: {}", r.text);
    }
    let neighbour = std::net::SocketAddr::from((
        std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0xffff, 0, 0, 99),
        40000,
    ));
    let r = t
        .send_from(
            Some(neighbour),
            Method::POST,
            "/api/v1/auth/passkey/options",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let r = t
        .send_from(
            Some(from(2)),
            Method::POST,
            "/api/v1/auth/passkey/options",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn a_passkey_is_a_second_factor_its_owner_names_and_deletes_and_an_admin_resets() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (carol, carol_id) = t.user_with_quota(&admin, "carol", json!(null)).await;
    stored_passkey(&t, &carol_id, "pk-1").await;
    let me = t.get("/api/v1/me", Some(&carol)).await;
    assert_eq!(me.body["security"]["passkeys"], 1, "{}", me.text);
    // The password alone no longer signs in: a code or a passkey is asked for.
    let r = t.login("carol", "password-1").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "totp_required"),
        "{}",
        r.text
    );
    let garbage = json!({"username": "carol", "password": "password-1",
        "passkey": {"challenge_id": "nope", "credential": {}}});
    let r = t
        .post("/api/v1/auth/login", None, &garbage.to_string())
        .await;
    assert_eq!(r.code(), "passkey_invalid", "{}", r.text);
    // Named by its owner (the name checked), listed to nobody else.
    let r = t
        .send(
            Method::PATCH,
            "/api/v1/me/passkeys/pk-1",
            Some(&carol),
            Some(r#"{"name":"  YubiKey 5  "}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = t
        .send(
            Method::PATCH,
            "/api/v1/me/passkeys/pk-1",
            Some(&carol),
            Some(&json!({"name": "x".repeat(65)}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let list = t.get("/api/v1/me/passkeys", Some(&carol)).await;
    assert_eq!(list.body[0]["name"], "YubiKey 5", "{}", list.text);
    let list = t.get("/api/v1/me/passkeys", Some(&admin)).await;
    assert_eq!(list.body, json!([]), "{}", list.text);
    // No authenticator app to turn off: refused before any code is spent.
    let r = t
        .send(
            Method::DELETE,
            "/api/v1/me/totp",
            Some(&carol),
            Some(r#"{"code":"000000"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // An app added beside a passkey: no new recovery codes, and her sessions go on.
    let begun = t.post("/api/v1/me/totp", Some(&carol), "").await;
    let url = begun.body["otpauth_url"].as_str().unwrap().to_owned();
    let r = t
        .post(
            "/api/v1/me/totp/confirm",
            Some(&carol),
            &json!({"code": crate::account::code(&url, 0)}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["recovery_codes"], json!([]), "{}", r.text);
    let me = t.get("/api/v1/me", Some(&carol)).await;
    assert_eq!(
        (
            me.body["security"]["totp"].clone(),
            me.body["security"]["passkeys"].clone()
        ),
        (json!(true), json!(1)),
        "{}",
        me.text
    );
    // The admin's user list says carol has a second factor; a reset removes the passkey and
    // ends her sessions; then her password alone signs in again.
    let detail = t
        .get(&format!("/api/v1/users/{carol_id}"), Some(&admin))
        .await;
    assert!(detail.text.contains("true"), "{}", detail.text);
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{carol_id}/totp"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        t.get("/api/v1/me", Some(&carol)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = t.login("carol", "password-1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let carol = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        t.get("/api/v1/me/passkeys", Some(&carol)).await.body,
        json!([])
    );
    // Deleting: her own only, after a recent verification.
    stored_passkey(&t, &carol_id, "pk-2").await;
    let r = t
        .send(
            Method::DELETE,
            "/api/v1/me/passkeys/pk-2",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    t.age_verifications().await;
    let r = t
        .send(
            Method::DELETE,
            "/api/v1/me/passkeys/pk-2",
            Some(&carol),
            None,
        )
        .await;
    assert_eq!(r.code(), "reauthentication_required", "{}", r.text);
    // With a passkey, the password alone does not confirm who she is either.
    let r = t
        .post(
            "/api/v1/auth/verify",
            Some(&carol),
            r#"{"password":"password-1"}"#,
        )
        .await;
    assert_eq!(r.code(), "totp_required", "{}", r.text);
    // (A passkey's answer would; its signature is the e2e test's.)
    t.app
        .db
        .call(|c| {
            c.execute("UPDATE sessions SET verified_at = verified_at + 301", [])?;
            Ok(())
        })
        .await
        .unwrap();
    let r = t
        .send(
            Method::DELETE,
            "/api/v1/me/passkeys/pk-2",
            Some(&carol),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(t.login("carol", "password-1").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_enrolling_user_may_register_a_passkey_which_then_cannot_be_the_last_one_deleted() {
    let (_, t) = TestApp::with_policy(&["--require-2fa", "all"]).await;
    let r = t.login("admin", crate::support::ADMIN_PASSWORD).await;
    assert_eq!(r.body["must_enrol_second_factor"], true, "{}", r.text);
    let admin = r.body["token"].as_str().unwrap().to_owned();
    let admin_id = r.body["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.get("/api/v1/me/passkeys", Some(&admin)).await.status,
        StatusCode::OK
    );
    let r = t
        .post("/api/v1/me/passkeys/options", Some(&admin), "")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        t.get("/api/v1/vms", Some(&admin)).await.code(),
        "second_factor_required"
    );
    // Once it has a passkey the account is enrolled; its only factor cannot be deleted.
    stored_passkey(&t, &admin_id, "pk-a").await;
    assert_eq!(
        t.get("/api/v1/vms", Some(&admin)).await.status,
        StatusCode::OK
    );
    let me = t.get("/api/v1/me", Some(&admin)).await;
    assert_eq!(me.body["security"]["must_enrol"], false, "{}", me.text);
    let r = t
        .send(
            Method::DELETE,
            "/api/v1/me/passkeys/pk-a",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(
        t.get("/api/v1/me/passkeys", Some(&admin))
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
