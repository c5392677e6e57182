//! Account security in headless Chromium: an administrator required to have a second factor
//! (`--require-2fa admins`, the default) is shown only the enrolment after signing in, enrols
//! TOTP from the Account page (the test computes the codes from the key the page shows, as an
//! authenticator app would), gets ten recovery codes, signs out and in again with a code;
//! creates a read-only API token there; and on the Users page sees and resets another user's
//! second factor.

use fantoccini::Locator;
use nuage_e2e::{Browser, Daemon};
use serde_json::json;
use totp_rs::TOTP;

fn code(secret: &str, steps: u64) -> String {
    let url = format!("otpauth://totp/Nuage:user?secret={secret}&issuer=Nuage");
    let totp = TOTP::from_url_unchecked(url).expect("the key the page shows");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now + steps * 30)
}

async fn fill_sign_in(browser: &Browser, password: &str) {
    browser.set_field("username", "admin").await;
    browser.set_field("password", password).await;
    browser.click(Locator::Id("sign-in")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_enrols_totp_in_the_browser_and_signs_in_with_a_code() {
    assert!(
        nuage_e2e::web_dir().is_some(),
        "dist/ is missing: run scripts/build-console"
    );
    let env = [("NUAGE_REQUIRE_2FA", "admins")];
    let daemon = tokio::task::spawn_blocking(move || Daemon::start_with("test:///default", &env))
        .await
        .unwrap();
    let ui = Browser::start().await;
    ui.client.goto(&daemon.base_url).await.unwrap();
    ui.wait_for(Locator::Id("login-form"), 45).await;
    fill_sign_in(&ui, nuage_e2e::ADMIN_PASSWORD).await;

    // Only the enrolment shows until it is done.
    ui.wait_for(Locator::Id("must-enrol"), 30).await;
    assert!(ui.client.find(Locator::Id("servers")).await.is_err());
    assert!(ui.client.find(Locator::Id("token-form")).await.is_err());
    ui.click(Locator::Id("totp-begin")).await;
    let secret = ui
        .wait_for(Locator::Id("totp-secret"), 20)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(secret.len(), 32, "{secret}");
    ui.wait_for(Locator::Css("#totp-qr img"), 5).await;
    assert!(
        ui.client.find(Locator::Id("account-error")).await.is_err(),
        "no error while enrolling: {}",
        ui.text_of("body").await
    );
    ui.screenshot("account-00-enrol").await;
    ui.set_field("totp-code", &code(&secret, 0)).await;
    ui.click(Locator::Id("totp-confirm")).await;
    ui.wait_for(Locator::Id("recovery-codes"), 20).await;
    let codes = ui
        .client
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    let href = ui
        .client
        .find(Locator::Id("recovery-download"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(href.starts_with("data:text/plain"), "{href}");
    ui.wait_text("#totp-state", "10 recovery codes left", 20)
        .await;
    ui.screenshot("account-01-recovery-codes").await;
    // Saved: the whole console opens.
    ui.click(Locator::Id("codes-done")).await;
    ui.wait_for(Locator::Id("servers"), 20).await;
    assert!(ui.client.find(Locator::Id("must-enrol")).await.is_err());

    // Signed out, the password alone is not enough; the next code is.
    ui.click(Locator::Id("sign-out")).await;
    ui.wait_for(Locator::Id("login-form"), 20).await;
    fill_sign_in(&ui, nuage_e2e::ADMIN_PASSWORD).await;
    ui.wait_for(Locator::Id("totp"), 20).await;
    ui.set_field("totp", &code(&secret, 1)).await;
    ui.click(Locator::Id("sign-in")).await;
    ui.wait_for(Locator::Id("servers"), 30).await;

    // A read-only token from the Account page: shown once, and read-only indeed.
    ui.click(Locator::Id("account-link")).await;
    ui.wait_text("#totp-state", "On:", 20).await;
    ui.set_field("token-name", "monitoring").await;
    ui.click(Locator::Id("create-token")).await;
    let token = ui
        .wait_for(Locator::Id("new-token"), 20)
        .await
        .text()
        .await
        .unwrap();
    ui.wait_text("#token-list", "monitoring", 20).await;
    ui.wait_text("#session-list", "this one", 20).await;
    ui.screenshot("account-02-tokens-sessions").await;
    let reader = daemon.api(&token);
    assert_eq!(reader.get("/api/v1/vms").await.0, 200);
    let (status, body) = reader.post("/api/v1/tokens", json!({"name": "x"})).await;
    assert_eq!(status, 403, "{body}");

    // Users: bob's second factor shows, and the admin resets it.
    ui.click(Locator::LinkText("Users")).await;
    ui.wait_for(Locator::Id("user-form"), 20).await;
    ui.set_field("new-username", "bob").await;
    ui.set_field("new-password", "bob-password").await;
    ui.click(Locator::Id("create-user")).await;
    ui.wait_text("[data-user=bob] .totp", "off", 20).await;
    let bob = daemon.api(&daemon.token_of("bob", "bob-password").await);
    let (_, begun) = bob.post("/api/v1/me/totp", json!({})).await;
    let bob_secret = begun["secret"].as_str().unwrap().to_owned();
    let (status, _) = bob
        .post(
            "/api/v1/me/totp/confirm",
            json!({"code": code(&bob_secret, 0)}),
        )
        .await;
    assert_eq!(status, 200);
    ui.client.refresh().await.unwrap();
    ui.wait_for(Locator::Id("user-form"), 20).await;
    ui.wait_text("[data-user=bob] .totp", "on", 20).await;
    ui.click(Locator::Css("[data-user=bob] .reset-totp")).await;
    ui.wait_text("[data-user=bob] .totp", "off", 20).await;
    ui.screenshot("account-03-users-2fa").await;
    assert_eq!(bob.get("/api/v1/me").await.0, 401, "bob's sessions ended");
    ui.close().await;
}
