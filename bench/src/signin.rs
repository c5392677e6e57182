//! `nuage-bench signin`: sign-in latency of the release daemon, p50 / p99 over sequential
//! sign-ins, with the password only, with the password and a TOTP code, and with a recovery
//! code, beside the Argon2 check alone (what every sign-in spends most of its time on). The
//! goal: the second factor adds under 5 ms.
//!
//! A TOTP code signs in once (its time step is recorded), so each TOTP sign-in is a different
//! enrolled user with the current code, as in life.
//!
//! Passkeys: in headless Chromium with WebDriver's virtual authenticator, on the console's page,
//! with the console's own passkey module: a passkey sign-in (challenge, the authenticator's
//! signature, the daemon's check) and the password with a passkey as the second factor, beside a
//! password sign-in from the same page, interleaved.

use std::time::{Duration, Instant};

use serde_json::json;
use totp_rs::TOTP;

use crate::support::{p50_p99, percentile, spawn_simulated, PASSWORD};

const N: usize = 40;

fn code(url: &str) -> String {
    TOTP::from_url_unchecked(url)
        .expect("an otpauth URL")
        .generate_current()
        .expect("a clock")
}

async fn login(http: &reqwest::Client, url: &str, body: serde_json::Value) -> Duration {
    let t = Instant::now();
    let r = http
        .post(format!("{url}/api/v1/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    let took = t.elapsed();
    assert!(status.is_success(), "{status}: {text}");
    took
}

pub async fn bench_signin() {
    // The Argon2 check alone, in this process, on a hash made like the daemon's.
    let hash = nuage_daemon::app::auth::hash_password("correct horse battery").unwrap();
    let mut argon = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        assert!(nuage_daemon::app::auth::verify_password(
            "correct horse battery",
            &hash
        ));
        argon.push(t.elapsed());
    }

    let (mut child, url, _dir) = spawn_simulated("nuage-bench-signin-");
    let http = nuage_e2e::http_client();
    let admin = nuage_e2e::Api::sign_in(&url, "admin", PASSWORD).await;
    // Users: one with the password only, N with TOTP on (one sign-in each).
    let mut users = Vec::new();
    for i in 0..=N {
        let name = format!("user{i}");
        let (status, body) = admin
            .post(
                "/api/v1/users",
                json!({"username": name, "password": "password-1", "role": "user"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        users.push(name);
    }
    let mut enrolled = Vec::new();
    let mut recovery = Vec::new();
    for name in &users[1..] {
        let api = nuage_e2e::Api::sign_in(&url, name, "password-1").await;
        let (_, begun) = api.post("/api/v1/me/totp", json!({})).await;
        let otpauth = begun["otpauth_url"].as_str().unwrap().to_owned();
        let (status, codes) = api
            .post("/api/v1/me/totp/confirm", json!({"code": code(&otpauth)}))
            .await;
        assert_eq!(status, 200, "{codes}");
        recovery.push((
            name.clone(),
            codes["recovery_codes"][0].as_str().unwrap().to_owned(),
        ));
        enrolled.push((name.clone(), otpauth));
    }
    // A step boundary between confirming and signing in keeps each code fresh.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    tokio::time::sleep(Duration::from_secs(30 - now % 30 + 1)).await;

    // Interleaved, so that the machine's drift touches the three alike.
    let (mut password_only, mut with_totp, mut with_recovery) = (vec![], vec![], vec![]);
    for ((name, otpauth), (_, c)) in enrolled.iter().zip(&recovery) {
        password_only.push(
            login(
                &http,
                &url,
                json!({"username": users[0], "password": "password-1"}),
            )
            .await,
        );
        let body = json!({"username": name, "password": "password-1", "totp": code(otpauth)});
        with_totp.push(login(&http, &url, body).await);
        let body = json!({"username": name, "password": "password-1", "totp": c});
        with_recovery.push(login(&http, &url, body).await);
    }
    let passkeys = passkey_rows(&url, &admin).await;
    let _ = child.kill();
    let _ = child.wait();

    let added = percentile(&mut with_totp, 0.5).as_secs_f64()
        - percentile(&mut password_only, 0.5).as_secs_f64();
    println!("| sign-in ({N} sequential, release nuaged, loopback) | p50 / p99 |");
    println!("|---|---|");
    println!(
        "| Argon2 check alone (in process, the peer) | {} |",
        p50_p99(&mut argon)
    );
    println!("| password only | {} |", p50_p99(&mut password_only));
    println!("| password + TOTP code | {} |", p50_p99(&mut with_totp));
    println!(
        "| password + recovery code | {} |",
        p50_p99(&mut with_recovery)
    );
    println!(
        "| TOTP's addition at p50 | {:+.2} ms (goal: under 5 ms) |",
        added * 1000.0
    );
    let [mut page_password, mut whole, mut daemon_part, mut second, mut second_daemon] = passkeys;
    println!(
        "| in Chromium: password sign-in (the peer) | {} |",
        p50_p99(&mut page_password)
    );
    println!(
        "| in Chromium: passkey sign-in, whole ceremony | {} |",
        p50_p99(&mut whole)
    );
    println!(
        "| in Chromium: passkey sign-in, the daemon's part (challenge + check) | {} |",
        p50_p99(&mut daemon_part)
    );
    let passkey_added = percentile(&mut second_daemon, 0.5).as_secs_f64()
        - percentile(&mut page_password, 0.5).as_secs_f64();
    println!(
        "| in Chromium: password + passkey as the second factor, whole | {} |",
        p50_p99(&mut second)
    );
    println!(
        "| in Chromium: password + passkey, the daemon's part (challenge + sign-in) | {} |",
        p50_p99(&mut second_daemon)
    );
    println!(
        "| the passkey's addition to the daemon's part at p50 | {:+.2} ms (goal: under 5 ms) |",
        passkey_added * 1000.0
    );
}

/// In the console's page at `localhost` (a passkey's relying party is a host name): registers a
/// passkey for a new user, then times `N` sign-ins of each kind, interleaved. The password
/// sign-ins, the passkey sign-ins whole, the daemon's part of those, and sign-ins with the
/// password and the passkey as the second factor.
async fn passkey_rows(url: &str, admin: &nuage_e2e::Api) -> [Vec<Duration>; 5] {
    let (status, body) = admin
        .post(
            "/api/v1/users",
            json!({"username": "pk", "password": "password-1", "role": "user"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = nuage_e2e::Api::sign_in(url, "pk", "password-1")
        .await
        .token()
        .to_owned();
    // The console's passkey module, as the page loads it (its path carries a hash).
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/snippets");
    let module = std::fs::read_dir(&dist)
        .expect("dist/ is missing: run scripts/build-console")
        .filter_map(Result::ok)
        .map(|d| {
            format!(
                "/snippets/{}/src/passkey.js",
                d.file_name().to_string_lossy()
            )
        })
        .next()
        .expect("the console's passkey module");
    let browser = nuage_e2e::Browser::start().await;
    browser.add_authenticator().await;
    let page = url.replace("127.0.0.1", "localhost");
    browser.client.goto(&format!("{page}/")).await.unwrap();
    let script = r#"
        const [module, token, n, done] = arguments;
        (async () => {
            const { passkey_answer } = await import(module);
            const post = async (path, body, auth) => {
                const headers = { "Content-Type": "application/json" };
                if (auth) headers.Authorization = "Bearer " + auth;
                const r = await fetch("/api/v1" + path, { method: "POST", headers, body });
                const text = await r.text();
                if (!r.ok) throw new Error(path + ": " + r.status + " " + text);
                return text;
            };
            const challenge = await post("/me/passkeys/options", null, token);
            await post("/me/passkeys", await passkey_answer(challenge, "bench"), token);
            const password = [], whole = [], daemon = [], second = [], second_daemon = [];
            for (let i = 0; i < n; i++) {
                let t = performance.now();
                await post("/auth/login", JSON.stringify({ username: "user0", password: "password-1" }));
                password.push(performance.now() - t);
                const t0 = performance.now();
                const c = await post("/auth/passkey/options", null);
                const t1 = performance.now();
                const answer = await passkey_answer(c, undefined);
                const t2 = performance.now();
                await post("/auth/passkey", answer);
                const t3 = performance.now();
                whole.push(t3 - t0);
                daemon.push(t1 - t0 + (t3 - t2));
                // The same passkey as the second factor after the password.
                const t4 = performance.now();
                const c2 = await post("/auth/passkey/options", null);
                const t5 = performance.now();
                const a2 = JSON.parse(await passkey_answer(c2, undefined));
                const t6 = performance.now();
                await post("/auth/login", JSON.stringify({ username: "pk", password: "password-1", passkey: a2 }));
                const t7 = performance.now();
                second.push(t7 - t4);
                second_daemon.push(t5 - t4 + (t7 - t6));
            }
            done({ password, whole, daemon, second, second_daemon });
        })().catch((e) => done({ error: String(e) }));
    "#;
    let got = browser
        .client
        .execute_async(script, vec![json!(module), json!(token), json!(N)])
        .await
        .expect("the page runs the sign-ins");
    assert!(got.get("error").is_none(), "{got}");
    let times = |k: &str| -> Vec<Duration> {
        got[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Duration::from_secs_f64(v.as_f64().unwrap() / 1000.0))
            .collect()
    };
    let rows = [
        times("password"),
        times("whole"),
        times("daemon"),
        times("second"),
        times("second_daemon"),
    ];
    browser.close().await;
    rows
}
