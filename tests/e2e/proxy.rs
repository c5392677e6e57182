//! The README's reverse-proxy snippets, run for real: nginx and Caddy (Debian's packages) with
//! the very configuration the README shows (only the names, addresses and certificate paths
//! replaced), in front of nuaged on the loopback with `--trusted-proxy 127.0.0.1`. Through each,
//! a client from 127.0.0.7 signs in over HTTPS, the audit log names 127.0.0.7 (not the proxy),
//! the events WebSocket upgrades, and a request body streams through.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nuage_e2e::{free_port, tls_config, Daemon, Scratch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The fenced block of `lang` in the README.
fn readme_block(lang: &str) -> String {
    let readme = std::fs::read_to_string(nuage_e2e::workspace_root().join("README.md")).unwrap();
    let start = readme
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("the README has a {lang} snippet"));
    let body = &readme[start + lang.len() + 4..];
    body[..body.find("```").unwrap()].to_owned()
}

/// Replaces `from` (which must be there) with `to`.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the snippet has {from:?}:\n{text}");
    text.replace(from, to)
}

struct Proxy(Child);

impl Drop for Proxy {
    /// SIGTERM, so that nginx's master takes its workers with it (SIGKILL would orphan them).
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx(dir: &Path, listen: &str, upstream: &str, cert: &Path, key: &Path) -> Proxy {
    let snippet = readme_block("nginx");
    let snippet = swap(
        &snippet,
        "listen 443 ssl http2;",
        &format!("listen {listen} ssl http2;"),
    );
    let snippet = swap(
        &snippet,
        "/etc/letsencrypt/live/panel.example.com/fullchain.pem",
        cert.to_str().unwrap(),
    );
    let snippet = swap(
        &snippet,
        "/etc/letsencrypt/live/panel.example.com/privkey.pem",
        key.to_str().unwrap(),
    );
    let snippet = swap(
        &snippet,
        "http://127.0.0.1:8080",
        &format!("http://{upstream}"),
    );
    let d = dir.display();
    let conf = format!(
        "daemon off;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{}}\nhttp {{\naccess_log off;\nclient_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\nfastcgi_temp_path {d}/fcgi;\nuwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n{snippet}}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx (scripts/setup installs nginx-light)");
    Proxy(child)
}

fn caddy(dir: &Path, listen: &str, upstream: &str, cert: &Path, key: &Path) -> Proxy {
    let snippet = readme_block("caddyfile");
    let snippet = swap(
        &snippet,
        "panel.example.com {",
        &format!("https://{listen} {{"),
    );
    let snippet = swap(
        &snippet,
        "reverse_proxy 127.0.0.1:8080",
        // The test's own certificate instead of one from Let's Encrypt.
        &format!(
            "tls {} {}\n    reverse_proxy {upstream}",
            cert.display(),
            key.display()
        ),
    );
    // No admin endpoint, no HTTP->HTTPS redirect listener: nothing but the site's port.
    let file = format!("{{\n    admin off\n    auto_https disable_redirects\n}}\n{snippet}");
    std::fs::write(dir.join("Caddyfile"), file).unwrap();
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.join("Caddyfile"))
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("caddy (scripts/setup installs it)");
    Proxy(child)
}

async fn through(name: &str, start: fn(&Path, &str, &str, &Path, &Path) -> Proxy) {
    let env = [("NUAGE_TRUSTED_PROXIES", "127.0.0.1")];
    let daemon = tokio::task::spawn_blocking(move || Daemon::start_with("test:///default", &env))
        .await
        .unwrap();
    let upstream = daemon.base_url.trim_start_matches("http://").to_owned();
    let dir = Scratch::new("nuage-e2e-proxy-");
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.2".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let pem = made.cert.pem().into_bytes();
    let listen = format!("127.0.0.2:{}", free_port());
    let mut proxy = start(dir.path(), &listen, &upstream, &cert, &key);
    let base = format!("https://{listen}");

    // A client from 127.0.0.7, trusting only the test's certificate.
    let http = reqwest::Client::builder()
        .local_address(Some("127.0.0.7".parse().unwrap()))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let started = Instant::now();
    let login = loop {
        let sent = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": nuage_e2e::ADMIN_PASSWORD}))
            .send()
            .await;
        match sent {
            Ok(r) => break r,
            Err(e) => {
                if let Ok(Some(status)) = proxy.0.try_wait() {
                    panic!("{name} exited at once ({status}); see its stderr above");
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "{name} did not come up: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(login.status(), 200, "{name}: sign-in through the proxy");
    let token = login.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = nuage_e2e::Api::with_client(http.clone(), &base, &token);
    let (status, log) = admin.get("/api/v1/audit?limit=5").await;
    assert_eq!(status, 200, "{name}: {log}");
    let sign_in = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "auth.login")
        .unwrap_or_else(|| panic!("{name}: a sign-in in {log}"));
    assert_eq!(
        sign_in["client"], "127.0.0.7",
        "{name}: the client, not the proxy"
    );

    // A 4 MiB upload (a raw disk of zeros) arrives whole through the proxy.
    let (status, image) = admin
        .post_bytes("/api/v1/images/upload?name=zeros", vec![0u8; 4 << 20])
        .await;
    assert_eq!(status, 201, "{name}: {image}");
    assert_eq!(image["virtual_size_bytes"], 4 << 20, "{name}: {image}");

    // The events WebSocket upgrades through the proxy.
    let mut req = format!("wss://{listen}/api/v1/events")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (_ws, resp) = tokio_tungstenite::connect_async_tls_with_config(
        req,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(tls_config(&pem))),
    )
    .await
    .unwrap_or_else(|e| panic!("{name}: the events WebSocket through the proxy: {e}"));
    assert_eq!(resp.status(), 101, "{name}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_nginx_snippet_passes_the_client_websockets_and_bodies() {
    through("nginx", nginx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_caddy_snippet_passes_the_client_websockets_and_bodies() {
    through("caddy", caddy).await;
}
