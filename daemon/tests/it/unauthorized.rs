//! Unauthorized coverage, after omicron's `unauthorized.rs`: every operation of the API, taken
//! from the OpenAPI document (which the router is built from), is called without a token, with a
//! forged, an expired and a revoked token, and with another tenant's token; each must fail as
//! API.md says, and the victim's resources must be unchanged afterwards. A route missing from the
//! table below fails the test.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

/// What another (non-admin) tenant may do with an operation that targets the victim.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Other {
    /// No token needed at all.
    Public,
    /// Administrators only: 403 for a user.
    Admin,
    /// The victim's resource: 404, exactly like a missing one.
    NotFound,
    /// Acts on the caller's own things (must not show or touch the victim's): this status.
    Own(u16),
    /// Needs a console ticket: every bearer token, good or bad, is 401.
    Ticket,
}

const TABLE: &[(&str, &str, Other)] = &[
    ("GET", "/healthz", Other::Public),
    ("GET", "/api/v1/openapi.json", Other::Public),
    ("POST", "/api/v1/auth/login", Other::Public),
    ("POST", "/api/v1/auth/logout", Other::Own(204)),
    ("GET", "/api/v1/me", Other::Own(200)),
    ("POST", "/api/v1/auth/verify", Other::Own(204)),
    ("POST", "/api/v1/me/totp", Other::Own(201)),
    // A wrong code (the enrolment above is bob's own).
    ("POST", "/api/v1/me/totp/confirm", Other::Own(401)),
    // Bob's own TOTP is not on (only begun): nothing to turn off.
    ("DELETE", "/api/v1/me/totp", Other::Own(409)),
    ("GET", "/api/v1/me/sessions", Other::Own(200)),
    ("DELETE", "/api/v1/me/sessions/{id}", Other::NotFound),
    ("POST", "/api/v1/me/sign-out", Other::Own(204)),
    ("PUT", "/api/v1/me/password", Other::Own(204)),
    ("DELETE", "/api/v1/users/{id}/totp", Other::Admin),
    ("POST", "/api/v1/me/passkeys/options", Other::Own(201)),
    ("GET", "/api/v1/me/passkeys", Other::Own(200)),
    // An answer to no ceremony of bob's.
    ("POST", "/api/v1/me/passkeys", Other::Own(401)),
    ("PATCH", "/api/v1/me/passkeys/{id}", Other::NotFound),
    ("DELETE", "/api/v1/me/passkeys/{id}", Other::NotFound),
    ("POST", "/api/v1/auth/passkey/options", Other::Public),
    ("POST", "/api/v1/auth/passkey", Other::Public),
    ("GET", "/api/v1/tokens", Other::Own(200)),
    ("POST", "/api/v1/tokens", Other::Own(201)),
    ("DELETE", "/api/v1/tokens/{id}", Other::NotFound),
    ("GET", "/api/v1/users", Other::Admin),
    ("POST", "/api/v1/users", Other::Admin),
    ("GET", "/api/v1/users/{id}", Other::Admin),
    ("PATCH", "/api/v1/users/{id}", Other::Admin),
    ("DELETE", "/api/v1/users/{id}", Other::Admin),
    ("GET", "/api/v1/users/{id}/tokens", Other::Admin),
    (
        "DELETE",
        "/api/v1/users/{id}/tokens/{token_id}",
        Other::Admin,
    ),
    ("POST", "/api/v1/users/{id}/sign-out", Other::Admin),
    ("GET", "/api/v1/host", Other::Admin),
    ("GET", "/api/v1/audit", Other::Admin),
    ("GET", "/api/v1/images", Other::Own(200)),
    ("POST", "/api/v1/images", Other::Admin),
    ("DELETE", "/api/v1/images/{id}", Other::Admin),
    ("POST", "/api/v1/images/upload", Other::Admin),
    ("GET", "/api/v1/vms", Other::Own(200)),
    ("POST", "/api/v1/vms", Other::Own(201)),
    ("GET", "/api/v1/vms/{id}", Other::NotFound),
    ("PATCH", "/api/v1/vms/{id}", Other::NotFound),
    ("DELETE", "/api/v1/vms/{id}", Other::NotFound),
    ("POST", "/api/v1/vms/{id}/{action}", Other::NotFound),
    ("POST", "/api/v1/vms/{id}/console", Other::NotFound),
    // Authenticated by its ticket alone (checked before the upgrade); a bearer token is no ticket.
    ("GET", "/api/v1/vms/{id}/console/ws", Other::Ticket),
    // Without WebSocket upgrade headers an authenticated call is a bad request.
    ("GET", "/api/v1/events", Other::Own(400)),
    ("POST", "/api/v1/events/ticket", Other::Own(201)),
    ("GET", "/api/v1/vms/{id}/metrics", Other::NotFound),
    ("PUT", "/api/v1/vms/{id}/limits", Other::Admin),
    ("GET", "/api/v1/vms/{id}/snapshots", Other::NotFound),
    ("POST", "/api/v1/vms/{id}/snapshots", Other::NotFound),
    (
        "POST",
        "/api/v1/vms/{id}/snapshots/{sid}/revert",
        Other::NotFound,
    ),
    (
        "DELETE",
        "/api/v1/vms/{id}/snapshots/{sid}",
        Other::NotFound,
    ),
    ("POST", "/api/v1/vms/{id}/backups", Other::NotFound),
    ("GET", "/api/v1/backups", Other::Own(200)),
    ("GET", "/api/v1/backups/{bid}", Other::NotFound),
    ("DELETE", "/api/v1/backups/{bid}", Other::NotFound),
    ("POST", "/api/v1/backups/{bid}/restore", Other::NotFound),
    ("GET", "/api/v1/vms/{id}/export", Other::NotFound),
    ("POST", "/api/v1/vms/import", Other::Admin),
    ("GET", "/api/v1/vms/{id}/backup-schedule", Other::NotFound),
    ("PUT", "/api/v1/vms/{id}/backup-schedule", Other::NotFound),
    (
        "DELETE",
        "/api/v1/vms/{id}/backup-schedule",
        Other::NotFound,
    ),
    ("GET", "/api/v1/jobs", Other::Own(200)),
    ("GET", "/api/v1/jobs/{id}", Other::NotFound),
    ("POST", "/api/v1/jobs/{id}/cancel", Other::NotFound),
    ("PUT", "/api/v1/users/{id}/limits", Other::Admin),
    // An admin token, from loopback too (`service::prometheus_metrics_need_an_admin_token…`).
    ("GET", "/metrics", Other::Admin),
    ("GET", "/api/v1/metrics", Other::Admin),
];

fn operations() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(nuage_daemon::http::openapi()).unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn the_table_covers_every_route_of_the_api() {
    let documented = operations();
    let table: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = documented.difference(&table).collect();
    let stale: Vec<_> = table.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the unauthorized-coverage table: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "table rows for routes that no longer exist: {stale:?}"
    );
}

/// A token signed with the daemon's own key whose time is up.
fn expired_token(data_dir: &std::path::Path, user_id: &str) -> String {
    let key = std::fs::read(data_dir.join("jwt.key")).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims =
        json!({"sub": user_id, "jti": "expired-session", "iat": now - 7200, "exp": now - 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap()
}

#[tokio::test]
async fn every_route_refuses_bad_tokens_and_other_tenants() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let quota = json!({"vcpus": 4, "memory_mib": 2048, "disk_gib": 10, "vms": 3, "snapshots": 1});
    let (alice, alice_id) = t.user_with_quota(&admin, "alice", quota.clone()).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", quota).await;
    let vm_body =
        json!({"name": "victim", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1});
    let vm = t
        .post("/api/v1/vms", Some(&alice), &vm_body.to_string())
        .await
        .body;
    let vm_id = vm["id"].as_str().unwrap().to_owned();
    let alice_token = t
        .post("/api/v1/tokens", Some(&alice), r#"{"name":"mine"}"#)
        .await
        .body;
    let token_id = alice_token["id"].as_str().unwrap().to_owned();
    let revoked = t.login("alice", "password-1").await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send(Method::POST, "/api/v1/auth/logout", Some(&revoked), None)
        .await;
    // Alice also has a snapshot, a backup (and so a job) and a schedule.
    let snap = t
        .post(
            &format!("/api/v1/vms/{vm_id}/snapshots"),
            Some(&alice),
            r#"{"name":"mine"}"#,
        )
        .await;
    assert_eq!(snap.status, StatusCode::CREATED, "{}", snap.text);
    let snap_id = snap.body["id"].as_str().unwrap().to_owned();
    let job = t
        .post(&format!("/api/v1/vms/{vm_id}/backups"), Some(&alice), "")
        .await;
    assert_eq!(job.status, StatusCode::ACCEPTED, "{}", job.text);
    let job = crate::backups::wait_job(&t, &alice, job.body["id"].as_str().unwrap()).await;
    let (job_id, backup_id) = (
        job["id"].as_str().unwrap().to_owned(),
        job["backup_id"].as_str().unwrap().to_owned(),
    );
    let r = t
        .send(
            Method::PUT,
            &format!("/api/v1/vms/{vm_id}/backup-schedule"),
            Some(&alice),
            Some(r#"{"time":"04:00","keep":3}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let sessions = t.get("/api/v1/me/sessions", Some(&alice)).await;
    let alice_session = sessions
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Alice has a passkey (its row as the daemon keeps it; no authenticator is needed to try
    // renaming or deleting it).
    rusqlite::Connection::open(t.data_dir.join("nuage.db"))
        .unwrap()
        .execute(
            "INSERT INTO passkeys (id, user_id, name, credential_id, passkey, created_at)
             VALUES ('pk-alice', ?1, 'alice key', 'Y3JlZA', '{}', '2026-01-01T00:00:00Z')",
            [&alice_id],
        )
        .unwrap();
    let expired = expired_token(&t.data_dir, &alice_id);
    let mut forged = alice.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");

    let fill = |path: &str| {
        let id: &str = if path.contains("/me/sessions/") {
            &alice_session
        } else if path.contains("/me/passkeys/") {
            "pk-alice"
        } else if path.contains("/jobs/") {
            &job_id
        } else if path.contains("/users/") {
            &alice_id
        } else if path.contains("/images/") {
            &image
        } else if path.contains("/tokens/") {
            &token_id
        } else {
            &vm_id
        };
        path.replace("{id}", id)
            .replace("{sid}", &snap_id)
            .replace("{bid}", &backup_id)
            .replace("{token_id}", &token_id)
            .replace("{action}", "stop")
            .replace("/upload", "/upload?name=sneaky")
    };
    let body_for = |method: &str, path: &str| -> Option<String> {
        Some(match (method, path) {
            ("POST", "/api/v1/vms") => json!({"name": "bobs", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}).to_string(),
            ("POST", "/api/v1/tokens") => r#"{"name":"bob's"}"#.into(),
            ("POST", "/api/v1/users") => r#"{"username":"mallory","password":"12345678","role":"admin"}"#.into(),
            ("PATCH", "/api/v1/users/{id}") => r#"{"role":"admin"}"#.into(),
            ("PATCH", "/api/v1/vms/{id}") => r#"{"vcpus":2}"#.into(),
            ("PUT", "/api/v1/vms/{id}/limits" | "/api/v1/users/{id}/limits") => {
                r#"{"cpu_cap_percent":1,"disk_iops":10}"#.into()
            }
            ("POST", "/api/v1/images") => r#"{"name":"x","path":"/etc/passwd"}"#.into(),
            ("POST", "/api/v1/vms/{id}/snapshots") => r#"{"name":"bobs"}"#.into(),
            ("POST", "/api/v1/backups/{bid}/restore") => r#"{"as_new":true}"#.into(),
            ("PUT", "/api/v1/vms/{id}/backup-schedule") => r#"{"time":"05:00","keep":1}"#.into(),
            ("POST", "/api/v1/auth/login") => r#"{"username":"alice","password":"wrong"}"#.into(),
            ("POST", "/api/v1/auth/verify") => r#"{"password":"password-1"}"#.into(),
            ("POST", "/api/v1/me/totp/confirm") | ("DELETE", "/api/v1/me/totp") => r#"{"code":"000000"}"#.into(),
            ("PUT", "/api/v1/me/password") => r#"{"password":"password-1"}"#.into(),
            ("POST", "/api/v1/me/passkeys") => r#"{"challenge_id":"x","name":"k","credential":{}}"#.into(),
            ("PATCH", "/api/v1/me/passkeys/{id}") => r#"{"name":"bob's now"}"#.into(),
            ("POST", "/api/v1/auth/passkey") => r#"{"challenge_id":"x","credential":{}}"#.into(),
            _ => return None,
        })
    };

    for &(method, template, other) in TABLE {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let path = fill(template);
        let body = body_for(method, template);
        if other == Other::Public {
            let r = t.send(m.clone(), &path, None, body.as_deref()).await;
            assert_ne!(r.status, StatusCode::FORBIDDEN, "{method} {template}");
            if !["/api/v1/auth/login", "/api/v1/auth/passkey"].contains(&template) {
                assert!(
                    r.status.is_success(),
                    "{method} {template} is public: {}",
                    r.status
                );
            }
            continue;
        }
        for (what, token) in [
            ("no", None),
            ("a forged", Some(&forged)),
            ("an expired", Some(&expired)),
            ("a revoked", Some(&revoked)),
        ] {
            let r = t
                .send(m.clone(), &path, token.map(String::as_str), body.as_deref())
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {template} with {what} token: {}",
                r.text
            );
            assert_eq!(r.code(), "unauthenticated", "{method} {template}");
        }
        // Logging out would end bob's own session: use a session of its own.
        let bob_token = if template == "/api/v1/auth/logout" {
            t.login("bob", "password-1").await.body["token"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            bob.clone()
        };
        let r = t
            .send(m.clone(), &path, Some(&bob_token), body.as_deref())
            .await;
        let want = match other {
            Other::Admin => 403,
            Other::NotFound => 404,
            Other::Own(s) => s,
            Other::Ticket => 401,
            Other::Public => unreachable!(),
        };
        assert_eq!(
            r.status.as_u16(),
            want,
            "{method} {template} as another tenant: {}",
            r.text
        );
        assert!(
            !r.text.contains(&vm_id)
                && !r.text.contains(&token_id)
                && !r.text.contains(&snap_id)
                && !r.text.contains(&backup_id),
            "{method} {template} leaked the victim's ids"
        );
    }

    // The victim's own read token changes nothing anywhere (403 on every method but GET), and
    // a token used from outside its CIDRs is no credential at all.
    let read = t
        .post(
            "/api/v1/tokens",
            Some(&alice),
            r#"{"name":"ro","scope":"read"}"#,
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let fenced = t
        .post(
            "/api/v1/tokens",
            Some(&alice),
            r#"{"name":"fenced","allowed_cidrs":["192.0.2.0/24"]}"#,
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for &(method, template, other) in TABLE {
        if other == Other::Public {
            continue;
        }
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let path = fill(template);
        let body = body_for(method, template);
        let r = t.send(m.clone(), &path, Some(&read), body.as_deref()).await;
        if method == "GET" {
            if other != Other::Ticket {
                assert_ne!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "GET {template}: {}",
                    r.text
                );
            }
            // A fresh export is a job holding the server and the disk quota: refused too.
            if template == "/api/v1/vms/{id}/export" {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
            } else if other != Other::Admin {
                assert_ne!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "GET {template}: {}",
                    r.text
                );
            }
        } else {
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{method} {template} with a read token: {}",
                r.text
            );
        }
        let outside: std::net::SocketAddr = "198.51.100.7:40000".parse().unwrap();
        let r = t
            .send_from(Some(outside), m, &path, Some(&fenced), body.as_deref())
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{method} {template} from outside the token's CIDRs: {}",
            r.text
        );
    }

    // From inside its CIDRs the fenced token works.
    let inside: std::net::SocketAddr = "192.0.2.9:40000".parse().unwrap();
    let r = t
        .send_from(
            Some(inside),
            Method::GET,
            "/api/v1/vms",
            Some(&fenced),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // The victim's server, token and account are as they were.
    let now = t.get(&format!("/api/v1/vms/{vm_id}"), Some(&alice)).await;
    assert_eq!(
        (
            now.body["state"].clone(),
            now.body["vcpus"].clone(),
            now.body["name"].clone()
        ),
        (vm["state"].clone(), vm["vcpus"].clone(), vm["name"].clone())
    );
    let snaps = t
        .get(&format!("/api/v1/vms/{vm_id}/snapshots"), Some(&alice))
        .await;
    assert_eq!(snaps.body.as_array().unwrap().len(), 1, "{}", snaps.text);
    let backups = t.get("/api/v1/backups", Some(&alice)).await;
    assert_eq!(
        backups.body.as_array().unwrap().len(),
        1,
        "{}",
        backups.text
    );
    let schedule = t
        .get(
            &format!("/api/v1/vms/{vm_id}/backup-schedule"),
            Some(&alice),
        )
        .await;
    assert_eq!(schedule.body["time"], "04:00", "{}", schedule.text);
    let tokens = t.get("/api/v1/tokens", Some(&alice)).await;
    assert_eq!(tokens.body.as_array().unwrap().len(), 3, "{}", tokens.text);
    let me = t.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(me.body["security"]["totp"], false, "{}", me.text);
    let keys = t.get("/api/v1/me/passkeys", Some(&alice)).await;
    assert_eq!(keys.body[0]["name"], "alice key", "{}", keys.text);
    assert_eq!(keys.body.as_array().unwrap().len(), 1, "{}", keys.text);
    assert_eq!(
        t.get("/api/v1/me", Some(&alice)).await.status,
        StatusCode::OK
    );
    let users = t.get("/api/v1/users", Some(&admin)).await;
    assert!(
        !users.text.contains("mallory"),
        "no user was created by a non-admin"
    );
}
