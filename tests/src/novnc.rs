//! noVNC served from a loopback folder, to prove the relay speaks what websockify speaks.

use crate::{free_port, target_dir, Scratch};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A folder with noVNC (npm, installed by scripts/setup) and `index` as its page, served by
/// python3's http.server on a free loopback port: the folder, the server and the port.
pub fn novnc_site(index: &str) -> (Scratch, std::process::Child, u16) {
    let novnc = target_dir().join("tools/node_modules/@novnc/novnc");
    assert!(
        novnc.join("core/rfb.js").exists(),
        "noVNC is missing: run scripts/setup"
    );
    let site = Scratch::new("nuage-novnc-");
    for d in ["core", "vendor"] {
        std::os::unix::fs::symlink(novnc.join(d), site.path().join(d)).unwrap();
    }
    std::fs::write(site.path().join("index.html"), index).unwrap();
    let port = free_port();
    let server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(site.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3's http.server");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (site, server, port)
}

/// noVNC's own page: connects to the relay URL given as `?url=` and says how it went in
/// `window.novnc` (`connecting`, `connected`, `disconnected: <clean>`).
pub const NOVNC_PAGE: &str = r#"<!doctype html><html><body><div id="screen" style="width:800px;height:500px"></div>
<script type="module">
import RFB from './core/rfb.js';
window.novnc = 'connecting';
const rfb = new RFB(document.getElementById('screen'), new URLSearchParams(location.search).get('url'),
                    { wsProtocols: ['binary'] });
rfb.addEventListener('connect', () => { window.novnc = 'connected'; });
rfb.addEventListener('disconnect', e => { window.novnc = 'disconnected: ' + e.detail.clean; });
</script></body></html>"#;

/// The address of [`NOVNC_PAGE`] on a [`novnc_site`] at `port`, pointed at `ws_url`.
pub fn novnc_page_url(port: u16, ws_url: &str) -> String {
    let query: String = ws_url
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("http://127.0.0.1:{port}/index.html?url={query}")
}
