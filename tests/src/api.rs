//! The one JSON client of the end-to-end tests and the benchmarks, and its polling helpers.

use std::time::{Duration, Instant};

/// The HTTP client every test and benchmark uses. nuaged closes a connection that has sent no
/// request for `HEADER_TIMEOUT` (10 s; hyper's header timeout is also its keep-alive idle
/// timeout), and a request written on a connection the server is closing at that moment is lost
/// to a reset. The pool therefore drops idle connections well before the server does.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client")
}

/// [`http_client`] over HTTPS that trusts only the certificate `pem` (a test's own; no public
/// roots).
pub fn tls_client(pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(5))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem).expect("a PEM certificate"))
        .build()
        .expect("an HTTPS client")
}

/// A rustls client configuration that trusts only the certificate `pem` (for `wss://`).
pub fn tls_config(pem: &[u8]) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.expect("a PEM certificate")).expect("a root");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// JSON calls to a daemon's API with a bearer token; each returns the status and the body.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    /// Signs `user` in at the daemon at `base`; a client with their token.
    pub async fn sign_in(base: &str, user: &str, password: &str) -> Api {
        Api::sign_in_with(http_client(), base, user, password).await
    }

    /// [`Api::sign_in`] through `http` (e.g. a [`tls_client`]), which the new client keeps.
    pub async fn sign_in_with(
        http: reqwest::Client,
        base: &str,
        user: &str,
        password: &str,
    ) -> Api {
        let resp: serde_json::Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
            .await
            .expect("login request")
            .json()
            .await
            .expect("login body");
        let token = resp["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {resp}"));
        Api::with_client(http, base, token)
    }

    /// The bearer token this client sends.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The signed-in user's id (`GET /me`).
    pub async fn my_id(&self) -> String {
        let (status, me) = self.get("/api/v1/me").await;
        assert_eq!(status, 200, "{me}");
        me["user"]["id"].as_str().expect("an id").to_owned()
    }

    /// A client of the daemon at `base` (`http://127.0.0.1:PORT`) with a bearer `token`.
    pub fn new(base: &str, token: &str) -> Api {
        Api::with_client(http_client(), base, token)
    }

    /// [`Api::new`] through `http`.
    pub fn with_client(http: reqwest::Client, base: &str, token: &str) -> Api {
        Api {
            base: base.to_owned(),
            token: token.to_owned(),
            http,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request to nuaged");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// A download: status and raw body.
    pub async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request to nuaged");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.expect("a body").to_vec())
    }

    /// An upload of raw bytes; status and JSON answer.
    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .expect("request to nuaged");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Polls `GET /jobs/{id}` until the job ends; returns it.
    pub async fn wait_job(&self, id: &str, timeout: Duration) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let (status, job) = self.get(&format!("/api/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if job["state"] != "running" {
                return job;
            }
            assert!(start.elapsed() < timeout, "job still running: {job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a small server (1 vCPU, 256 MiB, 1 GiB) from `image`, `fields` (its name,
    /// hostname, `start`…) added over those; asserts 201 and returns it with its id.
    pub async fn create_small_vm(
        &self,
        image: &str,
        fields: serde_json::Value,
    ) -> (String, serde_json::Value) {
        let mut body = serde_json::json!(
            {"image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}
        );
        if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
            b.extend(f.clone());
        }
        let (status, vm) = self.post("/api/v1/vms", body).await;
        assert_eq!(status, 201, "{vm}");
        let id = vm["id"].as_str().expect("the new server's id").to_owned();
        (id, vm)
    }

    /// `POST /vms/{id}/{action}`: asserts 202 (accepted) and returns the server as it then is.
    pub async fn act(&self, vm_id: &str, action: &str) -> serde_json::Value {
        let (status, body) = self
            .post(
                &format!("/api/v1/vms/{vm_id}/{action}"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 202, "{action}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

/// Polls `GET path` with `api` until `done` holds for the body, at most `limit`; the last body.
pub async fn wait_until(
    api: &Api,
    path: &str,
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let (_, body) = api.get(path).await;
        if done(&body) || start.elapsed() > limit {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `n` hostile connections to `addr` (host:port), held open by the caller: half send headers
/// and then one byte of a 100,000-byte body, half send half a header and nothing more.
pub async fn hostile_connections(addr: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut open = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head: &[u8] = if i % 2 == 0 {
            b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
        } else {
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        };
        s.write_all(head).await.unwrap();
        open.push(s);
    }
    open
}
