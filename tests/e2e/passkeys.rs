//! Passkeys in headless Chromium with WebDriver's virtual authenticator (a platform
//! authenticator whose user verification succeeds, as a fingerprint would), against the real
//! daemon and webauthn-rs: a user registers a passkey from the Account page (getting the recovery
//! codes of a first second factor), cannot register the same authenticator twice, registers a
//! second device, renames one; then signs in with a passkey alone, signs in with the password
//! and a passkey as the second factor, and deletes the lost device's passkey.

use fantoccini::Locator;
use nuage_e2e::{Browser, Daemon};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_user_registers_passkeys_and_signs_in_with_one_alone_or_after_the_password() {
    assert!(
        nuage_e2e::web_dir().is_some(),
        "dist/ is missing: run scripts/build-console"
    );
    let daemon = tokio::task::spawn_blocking(|| Daemon::start("test:///default"))
        .await
        .unwrap();
    let admin = daemon.api(&daemon.admin_token().await);
    let session = daemon
        .user(&admin, "erin", "erin-password", json!(null))
        .await;
    // A read token of hers, to look at her account while the browser changes it (a first
    // second factor ends her other sign-in sessions, not her tokens).
    let (status, made) = session
        .post("/api/v1/tokens", json!({"name": "look", "scope": "read"}))
        .await;
    assert_eq!(status, 201, "{made}");
    let erin = daemon.api(made["token"].as_str().unwrap());
    // Passkeys are bound to a host name: the console is opened at localhost, not 127.0.0.1.
    let base = daemon.base_url.replace("127.0.0.1", "localhost");
    let ui = Browser::start().await;
    let laptop = ui.add_authenticator().await;
    ui.client.goto(&base).await.unwrap();
    ui.wait_for(Locator::Id("login-form"), 45).await;
    ui.set_field("username", "erin").await;
    ui.set_field("password", "erin-password").await;
    ui.click(Locator::Id("sign-in")).await;
    ui.wait_for(Locator::Id("servers"), 30).await;

    // The first passkey: a first second factor, so ten recovery codes come with it.
    ui.click(Locator::Id("account-link")).await;
    ui.set_field("passkey-name", "laptop").await;
    ui.click(Locator::Id("passkey-add")).await;
    ui.wait_text("#passkey-list", "added", 30).await;
    ui.wait_for(Locator::Id("recovery-codes"), 20).await;
    let codes = ui
        .client
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(ui.authenticator_credentials(&laptop).await.len(), 1);
    let (_, keys) = erin.get("/api/v1/me/passkeys").await;
    assert_eq!(keys[0]["name"], "laptop", "{keys}");
    assert_eq!(
        session.get("/api/v1/me").await.0,
        401,
        "her session signed in with the password alone ended"
    );
    ui.screenshot("passkeys-00-registered").await;

    // The same authenticator again is refused by the browser (its credential is excluded).
    ui.set_field("passkey-name", "laptop again").await;
    ui.click(Locator::Id("passkey-add")).await;
    ui.wait_text("#account-error", "registered already", 30)
        .await;
    assert_eq!(ui.authenticator_credentials(&laptop).await.len(), 1);

    // A second device: a second passkey, no new recovery codes; renamed in place.
    ui.remove_authenticator(&laptop).await;
    let phone = ui.add_authenticator().await;
    ui.set_field("passkey-name", "phone").await;
    ui.click(Locator::Id("passkey-add")).await;
    ui.wait_text("#account-notice", "Passkey added", 30).await;
    let (_, keys) = erin.get("/api/v1/me/passkeys").await;
    assert_eq!(keys.as_array().unwrap().len(), 2, "{keys}");
    let (_, me) = erin.get("/api/v1/me").await;
    assert_eq!(
        (
            me["security"]["passkeys"].clone(),
            me["security"]["recovery_codes_left"].clone()
        ),
        (json!(2), json!(10)),
        "the first codes stand: {me}"
    );
    let phone_id = keys[1]["id"].as_str().unwrap().to_owned();
    let laptop_id = keys[0]["id"].as_str().unwrap().to_owned();
    ui.set_field(&format!("pk-{phone_id}"), "Phone (work)")
        .await;
    ui.click(Locator::Css(&format!(
        "[data-act=passkey-rename][data-id='{phone_id}']"
    )))
    .await;
    ui.wait_for(
        Locator::Css("#passkey-list li[data-passkey='Phone (work)']"),
        20,
    )
    .await;

    // Signed out: the passkey alone signs in (the username is not even typed).
    ui.click(Locator::Id("sign-out")).await;
    ui.wait_for(Locator::Id("login-form"), 20).await;
    ui.client.goto(&base).await.unwrap();
    ui.wait_for(Locator::Id("login-form"), 20).await;
    ui.click(Locator::Id("passkey-sign-in")).await;
    ui.wait_for(Locator::Id("servers"), 30).await;
    ui.screenshot("passkeys-01-signed-in").await;
    let (_, keys) = erin.get("/api/v1/me/passkeys").await;
    assert!(keys[1]["last_used_at"].is_string(), "{keys}");
    assert!(keys[0]["last_used_at"].is_null(), "{keys}");
    ui.click(Locator::Id("account-link")).await;
    ui.wait_text("#session-list", "Passkey", 20).await;

    // The password alone is no longer enough; a passkey is the second factor.
    ui.click(Locator::Id("sign-out")).await;
    ui.wait_for(Locator::Id("login-form"), 20).await;
    ui.client.goto(&base).await.unwrap();
    ui.wait_for(Locator::Id("login-form"), 20).await;
    ui.set_field("username", "erin").await;
    ui.set_field("password", "erin-password").await;
    ui.click(Locator::Id("sign-in")).await;
    ui.wait_for(Locator::Id("totp"), 20).await;
    ui.wait_text("#passkey-sign-in", "instead of a code", 10)
        .await;
    ui.click(Locator::Id("passkey-sign-in")).await;
    ui.wait_for(Locator::Id("servers"), 30).await;

    // The lost laptop's passkey is deleted (the sign-in just now is the verification).
    ui.click(Locator::Id("account-link")).await;
    ui.wait_for(Locator::Css("#passkey-list li[data-passkey=laptop]"), 20)
        .await;
    ui.click(Locator::Css(&format!(
        "[data-act=passkey-delete][data-id='{laptop_id}']"
    )))
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, keys) = erin.get("/api/v1/me/passkeys").await;
        if keys.as_array().map(Vec::len) == Some(1) {
            assert_eq!(keys[0]["name"], "Phone (work)", "{keys}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not deleted: {keys}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ui.authenticator_credentials(&phone).await.len(), 1);
    ui.screenshot("passkeys-02-one-left").await;
    ui.close().await;
}
