//! Headless Chromium through chromedriver.

use crate::{free_port, target_dir, Daemon};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Headless Chromium driven through chromedriver.
pub struct Browser {
    driver: Child,
    /// chromedriver's port (for WebDriver extensions fantoccini has no call for).
    port: u16,
    pub client: fantoccini::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = free_port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver (scripts/setup installs chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let _ = driver.kill();
                panic!("chromedriver did not listen on {port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let args = serde_json::json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                let _ = driver.kill();
                panic!("cannot start a Chromium session: {e}");
            }
        };
        Browser {
            driver,
            port,
            client,
            _profile: profile,
        }
    }

    /// Waits up to `secs` for the element; on timeout saves a screenshot named `failed-<what>` and
    /// panics with the page's text.
    pub async fn wait_for(
        &self,
        locator: fantoccini::Locator<'_>,
        secs: u64,
    ) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(secs))
            .for_element(locator)
            .await
        {
            Ok(e) => e,
            Err(err) => {
                let what =
                    format!("{locator:?}").replace(|c: char| !c.is_ascii_alphanumeric(), "_");
                let shot = self.screenshot(&format!("failed-{what}")).await;
                let text = match self.client.find(fantoccini::Locator::Css("body")).await {
                    Ok(body) => body.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!("{locator:?} did not appear within {secs} s ({err}); screenshot {}; page text:\n{text}", shot.display());
            }
        }
    }

    /// The text of the element `css` finds, or nothing when there is none.
    pub async fn text_of(&self, css: &str) -> String {
        match self.client.find(fantoccini::Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits up to `secs` until the element's text contains `want`; how long that took. On
    /// timeout saves a screenshot and panics with the page's text.
    pub async fn wait_text(&self, css: &str, want: &str, secs: u64) -> Duration {
        let start = Instant::now();
        while !self.text_of(css).await.contains(want) {
            if start.elapsed() > Duration::from_secs(secs) {
                let shot = self
                    .screenshot(&format!("failed-{}", want.replace(' ', "-")))
                    .await;
                panic!(
                    "{css} never showed {want:?} within {secs} s (screenshot {}); page text:\n{}",
                    shot.display(),
                    self.text_of("body").await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        start.elapsed()
    }

    /// Types `value` into the input `id` (waiting up to 10 s for it), replacing what it held.
    pub async fn set_field(&self, id: &str, value: &str) {
        let input = self.wait_for(fantoccini::Locator::Id(id), 10).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    /// Clicks the element `locator` finds now (it must be on the page).
    pub async fn click(&self, locator: fantoccini::Locator<'_>) {
        let what = format!("{locator:?}");
        let element = self
            .client
            .find(locator)
            .await
            .unwrap_or_else(|e| panic!("{what} is not on the page: {e}"));
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {what}: {e}"));
    }

    /// Opens the console and signs in; waits for the servers page.
    pub async fn sign_in(&self, daemon: &Daemon, user: &str, password: &str) {
        use fantoccini::Locator;
        self.client
            .goto(&daemon.base_url)
            .await
            .expect("open the console");
        self.wait_for(Locator::Id("login-form"), 45).await;
        self.client
            .find(Locator::Id("username"))
            .await
            .unwrap()
            .send_keys(user)
            .await
            .unwrap();
        self.client
            .find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys(password)
            .await
            .unwrap();
        self.client
            .find(Locator::Id("sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_for(Locator::Id("servers"), 45).await;
    }

    /// A WebDriver extension command on this session (`path` after `/session/{id}`).
    async fn extension(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let id = self
            .client
            .session_id()
            .await
            .unwrap()
            .expect("a WebDriver session");
        let url = format!("http://127.0.0.1:{}/session/{id}{path}", self.port);
        let mut req = crate::http_client().request(method, &url);
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await.expect("chromedriver answers");
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {v}");
        v["value"].clone()
    }

    /// Adds a WebDriver virtual authenticator (a platform authenticator with resident keys and
    /// user verification that always succeeds, as a fingerprint would): its id.
    pub async fn add_authenticator(&self) -> String {
        let v = self
            .extension(
                reqwest::Method::POST,
                "/webauthn/authenticator",
                serde_json::json!({
                    "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                    "hasUserVerification": true, "isUserVerified": true,
                    "automaticPresenceSimulation": true,
                }),
            )
            .await;
        v.as_str().expect("an authenticator id").to_owned()
    }

    /// Removes a virtual authenticator with its credentials (a device lost).
    pub async fn remove_authenticator(&self, id: &str) {
        self.extension(
            reqwest::Method::DELETE,
            &format!("/webauthn/authenticator/{id}"),
            serde_json::Value::Null,
        )
        .await;
    }

    /// The credentials a virtual authenticator holds.
    pub async fn authenticator_credentials(&self, id: &str) -> Vec<serde_json::Value> {
        let v = self
            .extension(
                reqwest::Method::GET,
                &format!("/webauthn/authenticator/{id}/credentials"),
                serde_json::Value::Null,
            )
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// Ends the WebDriver session (closing Chromium) and chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Saves a screenshot under `target/e2e-screenshots/<name>.png` (CI keeps target/ output).
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = target_dir().join("e2e-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(&path, png);
        }
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A Chromium whose driver died is orphaned: find it by its profile dir.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self._profile.path())
            .stderr(Stdio::null())
            .status();
    }
}
