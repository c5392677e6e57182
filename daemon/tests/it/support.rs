//! Builds a real `App` (real SQLite, real libvirt test driver) in a temp dir, and sends requests.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use clap::Parser;
use http_body_util::BodyExt;
use nuage_daemon::config::{AccelSetting, ConsoleListen, LibvirtTarget, Settings};
use serde_json::Value;
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "it-admin-password";

pub struct TestApp {
    pub router: Router,
    pub app: Arc<nuage_daemon::app::App>,
    pub data_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub bytes: Vec<u8>,
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// The real server on 127.0.0.1:0, for WebSocket tests; requests through `app` reach the same
/// daemon.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub app: TestApp,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let (app_arc, app) = TestApp::build(None, &[]).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(nuage_daemon::serve(
            listener,
            app_arc,
            None,
            std::future::pending(),
        ));
        TestServer { addr, app }
    }
}

impl TestApp {
    pub async fn new() -> TestApp {
        Self::with_web_dir(None).await
    }

    pub async fn with_web_dir(web_dir: Option<std::path::PathBuf>) -> TestApp {
        let (app, t) = Self::build(web_dir, &[]).await;
        app.start_background();
        t
    }

    /// An app with host-policy flags (e.g. `--cpu-overcommit 0.25`), background tasks started.
    pub async fn with_policy(flags: &[&str]) -> (Arc<nuage_daemon::app::App>, TestApp) {
        let (app, t) = Self::build(None, flags).await;
        app.start_background();
        (app, t)
    }

    /// The app (background tasks not started) and a `TestApp` routing to it.
    async fn build(
        web_dir: Option<std::path::PathBuf>,
        policy: &[&str],
    ) -> (Arc<nuage_daemon::app::App>, TestApp) {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["nuaged", "--network-mode", "isolated"];
        args.extend_from_slice(policy);
        let resolved = Settings::resolve(nuage_daemon::config::Cli::try_parse_from(args).unwrap())
            .expect("valid policy flags");
        let host = resolved.host;
        // The tests' own default is no second factor required, unless they name a policy.
        let require_2fa = if policy.contains(&"--require-2fa") {
            resolved.require_2fa
        } else {
            nuage_daemon::config::Require2fa::None
        };
        let settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            libvirt: LibvirtTarget::Explicit("test:///default".into()),
            accel: AccelSetting::Tcg,
            console_listen: ConsoleListen::None,
            import_dirs: vec![dir.path().join("data/import")],
            web_dir,
            trusted_proxies: Vec::new(),
            tls: nuage_daemon::config::TlsSetting::Off,
            require_2fa,
            public_url: resolved.public_url.clone(),
            admin_password: Some(ADMIN_PASSWORD.into()),
            host,
        };
        let app = tokio::task::spawn_blocking(move || nuage_daemon::app::start(settings))
            .await
            .unwrap()
            .expect("the app starts on test:///default");
        let app = Arc::new(app);
        let router = nuage_daemon::http::router(app.clone());
        let t = TestApp {
            router,
            app: app.clone(),
            data_dir: dir.path().join("data"),
            _dir: dir,
        };
        (app, t)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        self.send_from(None, method, path, token, body).await
    }

    /// [`TestApp::send`] as if from `client` (what the listener would have found).
    pub async fn send_from(
        &self,
        client: Option<std::net::SocketAddr>,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = client {
            req = req.extension(axum::extract::ConnectInfo(c));
        }
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_owned())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            bytes: bytes.to_vec(),
            status,
            content_type,
            headers,
            body,
            text,
        }
    }

    /// Sends `body` as raw bytes (an upload, an archive).
    pub async fn send_bytes(&self, path: &str, token: &str, body: Vec<u8>) -> Reply {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            bytes: bytes.to_vec(),
            status,
            content_type: String::new(),
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    /// Makes every session look verified longer ago than the five-minute window.
    pub async fn age_verifications(&self) {
        self.app
            .db
            .call(|c| {
                c.execute("UPDATE sessions SET verified_at = verified_at - 301", [])?;
                Ok(())
            })
            .await
            .unwrap();
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &str) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        let body = serde_json::json!({"username": username, "password": password}).to_string();
        self.post("/api/v1/auth/login", None, &body).await
    }

    pub async fn admin_token(&self) -> String {
        let r = self.login("admin", ADMIN_PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["token"].as_str().unwrap().to_owned()
    }
}

impl TestApp {
    /// Puts a raw disk image of `mib` MiB in the import dir and imports it as `name`.
    pub async fn import_raw_image(&self, admin: &str, name: &str, mib: u64) -> String {
        let file = self.data_dir.join("import").join(format!("{name}.raw"));
        let f = std::fs::File::create(&file).unwrap();
        f.set_len(mib << 20).unwrap();
        let body = serde_json::json!({"name": name, "path": file.to_str().unwrap()}).to_string();
        let r = self.post("/api/v1/images", Some(admin), &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Creates a user with the given quota and returns a token of theirs and their id.
    pub async fn user_with_quota(&self, admin: &str, name: &str, quota: Value) -> (String, String) {
        let body = serde_json::json!({"username": name, "password": "password-1", "role": "user", "quota": quota});
        let r = self
            .post("/api/v1/users", Some(admin), &body.to_string())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_owned();
        let token = self.login(name, "password-1").await.body["token"]
            .as_str()
            .unwrap()
            .to_owned();
        (token, id)
    }
}

/// One HTTP/1.1 request over a real TCP connection from the loopback address `from` (any of
/// 127.0.0.0/8, so tests can play several clients), to `url` on a [`TestServer`]: status and
/// body.
pub async fn raw_http(
    from: &str,
    url: &str,
    method: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut s = socket.connect(host.parse().unwrap()).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = json.unwrap_or("");
    let head = format!(
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// An `Actor` for calling the app directly as a tenant (the tests that abandon a call half-way).
pub fn tenant(user_id: &str, username: &str) -> nuage_daemon::app::Actor {
    nuage_daemon::app::Actor {
        user_id: user_id.into(),
        username: username.to_owned(),
        role: nuage_shared::Role::User,
        session: String::new(),
        expires: None,
        scope: nuage_shared::TokenScope::Full,
        verified_at: None,
        must_enrol: false,
    }
}

impl TestApp {
    /// GETs `path` as `token` until `done` holds for its body, at most 5 s; the last body.
    pub async fn poll(&self, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut body = Value::Null;
        for _ in 0..250 {
            body = self.get(path, Some(token)).await.body;
            if done(&body) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        body
    }

    /// `POST /vms/{vm}/snapshots` named `name`.
    pub async fn snapshot(&self, token: &str, vm: &str, name: &str) -> Reply {
        let body = serde_json::json!({ "name": name }).to_string();
        self.post(&format!("/api/v1/vms/{vm}/snapshots"), Some(token), &body)
            .await
    }
}
