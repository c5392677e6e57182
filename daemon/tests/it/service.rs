//! Health, host information, unknown routes and the web console's files.

use std::time::Duration;

use axum::http::StatusCode;

use crate::support::{raw_http, TestApp, TestServer};

#[tokio::test]
async fn healthz_needs_no_token_and_says_the_hypervisor_is_simulated() {
    let t = TestApp::new().await;
    let r = t.get("/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(r.body["database"], true);
    assert_eq!(r.body["hypervisor"], true);
    assert_eq!(r.body["simulated"], true);
}

#[tokio::test]
async fn host_reports_the_hypervisor_and_the_hardware() {
    let t = TestApp::new().await;
    let token = t.admin_token().await;
    let r = t.get("/api/v1/host", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let h = &r.body;
    assert_eq!(h["hypervisor"]["uri"], "test:///default");
    assert_eq!(h["hypervisor"]["driver"], "TEST");
    assert_eq!(h["hypervisor"]["simulated"], true);
    assert_eq!(h["accel"], "tcg");
    // libvirt's test driver simulates a fixed host: 16 CPUs, 3 GiB.
    assert_eq!(h["cpus"], 16);
    assert_eq!(h["memory_mib"], 3072);
    assert!(h["hypervisor"]["libvirt_version"]
        .as_str()
        .unwrap()
        .starts_with("9."));
}

#[tokio::test]
async fn unknown_api_paths_are_json_404s() {
    let t = TestApp::new().await;
    let r = t.get("/api/v1/no-such-thing", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
}

#[tokio::test]
async fn the_console_is_served_and_client_routes_get_index_html() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>console</title>",
    )
    .unwrap();
    std::fs::write(web.path().join("app.js"), "console.log(1)").unwrap();
    let t = TestApp::with_web_dir(Some(web.path().to_owned())).await;
    for path in ["/", "/servers/abc", "/admin/users"] {
        let r = t.get(path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.text.contains("<title>console</title>"), "{path}");
    }
    let js = t.get("/app.js", None).await;
    assert!(
        js.content_type.contains("javascript"),
        "{}",
        js.content_type
    );
    // The API is never shadowed by the console.
    assert_eq!(t.get("/api/v1/nope", None).await.code(), "not_found");
}

#[tokio::test]
async fn without_a_built_console_the_root_page_says_how_to_build_it() {
    let t = TestApp::new().await;
    let r = t.get("/", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text.contains("trunk build"));
}

#[tokio::test]
async fn every_response_carries_the_browser_security_headers() {
    let web = tempfile::tempdir().unwrap();
    let loader = "import init from '/app.js'; init();";
    std::fs::write(
        web.path().join("index.html"),
        format!("<!doctype html><title>console</title><script type=\"module\">{loader}</script>"),
    )
    .unwrap();
    let t = TestApp::with_web_dir(Some(web.path().to_owned())).await;
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(loader));
    for path in ["/", "/servers/abc", "/api/v1/nope", "/healthz"] {
        let r = t.get(path, None).await;
        let h = |name: &str| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .to_owned()
        };
        let csp = h("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
        assert!(!csp.contains("'unsafe-eval'"), "{csp}");
        // The loader Trunk inlines is allowed by its hash, and no other inline script is.
        assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("referrer-policy"), "no-referrer");
    }
}

#[tokio::test]
async fn prometheus_metrics_need_an_admin_token_even_from_loopback() {
    let server = TestServer::start().await;
    let url = format!("http://{}/metrics", server.addr);
    let get = |token: Option<String>| {
        let url = url.clone();
        async move {
            raw_http("127.0.0.1", &url, "GET", token.as_deref(), None)
                .await
                .0
        }
    };
    assert_eq!(get(None).await, 401, "a loopback peer is no credential");
    let admin = server.app.admin_token().await;
    assert_eq!(get(Some(admin)).await, 200);
}

/// A thousand clients that send headers and then a body one byte at a time (or half a header
/// and nothing) do not keep `/healthz` from answering; a half-sent header is cut off.
#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_while_a_thousand_slow_clients_hold_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    nuage_daemon::raise_open_files_limit();
    let server = TestServer::start().await;
    let mut slow = Vec::new();
    for i in 0..1000 {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let head: &[u8] = if i % 2 == 0 {
            b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
        } else {
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        };
        s.write_all(head).await.unwrap();
        slow.push(s);
    }
    let url = format!("http://{}/healthz", server.addr);
    for _ in 0..20 {
        let answered = tokio::time::timeout(
            Duration::from_secs(5),
            raw_http("127.0.0.1", &url, "GET", None, None),
        )
        .await
        .expect("/healthz answers under 1000 hostile connections");
        assert_eq!(answered.0, 200);
    }
    // The half-sent header is cut off once its time is up (the server closes or answers 408).
    let mut half = slow.pop().unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        nuage_daemon::http::serve::HEADER_TIMEOUT + Duration::from_secs(5),
        half.read_to_end(&mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "the connection is still open past the header timeout"
    );
}
