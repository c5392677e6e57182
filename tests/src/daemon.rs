//! A real `nuaged` on a free loopback port with its own data dir.

use crate::{
    ensure_libvirtd, remove_network, target_dir, test_guest_image, workspace_root, Api, Scratch,
    ADMIN_PASSWORD, QEMU_SYSTEM,
};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) fn nuaged_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("NUAGE_BIN") {
        return PathBuf::from(bin);
    }
    // Build it once per test run (cheap when target/ is warm).
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !*built {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "nuage-daemon", "--bin", "nuaged"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building nuaged failed");
        *built = true;
    }
    target_dir().join("debug/nuaged")
}

/// The built web console, if `trunk build` has run.
pub fn web_dir() -> Option<PathBuf> {
    let dist = workspace_root().join("dist");
    dist.join("index.html").is_file().then_some(dist)
}

/// A running `nuaged` with its own data dir.
pub struct Daemon {
    child: Child,
    pub base_url: String,
    pub scratch: Scratch,
    log: PathBuf,
    uri: String,
    /// The daemon's own libvirt network (isolated), removed when the daemon is dropped.
    pub network: String,
    /// The client of [`Daemon::api`]: over HTTPS (`NUAGE_TLS_CERT`) it trusts that certificate
    /// and nothing else.
    pub http: reqwest::Client,
}

impl Daemon {
    /// Starts `nuaged` on `uri` with `--accel tcg`, a fresh data dir and a free port, and waits
    /// until it listens.
    pub fn start(uri: &str) -> Daemon {
        Self::start_with(uri, &[])
    }

    /// Like [`Daemon::start`], with extra environment variables (e.g. `NUAGE_IMPORT_DIRS`).
    pub fn start_with(uri: &str, env: &[(&str, &str)]) -> Daemon {
        if uri.starts_with("qemu") {
            ensure_libvirtd();
        }
        let scratch = Scratch::new("nuage-e2e-");
        let log = scratch.path().join("nuaged.log");
        let network = network_name(&scratch);
        let (child, base_url) = spawn_daemon(uri, &scratch, &log, &network, env);
        let http = match env.iter().find(|(k, _)| *k == "NUAGE_TLS_CERT") {
            Some((_, cert)) => crate::tls_client(&std::fs::read(cert).expect("the certificate")),
            None => crate::http_client(),
        };
        Daemon {
            child,
            base_url,
            scratch,
            log,
            uri: uri.to_owned(),
            network,
            http,
        }
    }

    /// A daemon on qemu:///system that may import the test guest's image (its folder is an
    /// import dir), plus `env`; returns it and the image's path.
    pub fn start_for_guest(env: &[(&str, &str)]) -> (Daemon, PathBuf) {
        let image = test_guest_image();
        let dir = image
            .parent()
            .expect("the image has a folder")
            .to_str()
            .expect("a UTF-8 path")
            .to_owned();
        let mut all = vec![("NUAGE_IMPORT_DIRS", dir.as_str())];
        all.extend_from_slice(env);
        (Daemon::start_with(QEMU_SYSTEM, &all), image)
    }

    /// [`Daemon::start_for_guest`] with the image imported; returns the daemon, an admin API and
    /// the image's id.
    pub async fn with_guest_image(env: &[(&str, &str)]) -> (Daemon, Api, String) {
        let owned: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (daemon, image) = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = owned
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            Daemon::start_for_guest(&env)
        })
        .await
        .expect("the daemon starts");
        let admin = daemon.api(&daemon.admin_token().await);
        let body = serde_json::json!({"name": "test-guest", "path": image.to_str().unwrap(), "os": "busybox"});
        let (status, img) = admin.post("/api/v1/images", body).await;
        assert_eq!(status, 201, "{img}");
        let id = img["id"].as_str().expect("an image id").to_owned();
        (daemon, admin, id)
    }

    /// Kills the daemon with SIGKILL (no chance to clean up) and starts it again on the same
    /// data dir with `env` as its extra environment.
    pub fn kill_and_restart(&mut self, env: &[(&str, &str)]) {
        self.kill();
        self.restart(env);
    }

    /// Kills the daemon with SIGKILL (no chance to clean up).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the (killed) daemon again on the same data dir with `env` as its extra environment.
    pub fn restart(&mut self, env: &[(&str, &str)]) {
        let (child, base_url) =
            spawn_daemon(&self.uri, &self.scratch, &self.log, &self.network, env);
        self.child = child;
        self.base_url = base_url;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.scratch.path().join("data")
    }

    /// Waits until server `vm_id`'s guest has booted (the test guest prints its ready marker on
    /// the serial port, which the daemon logs to a file); panics after `limit`.
    pub async fn wait_guest_ready(&self, vm_id: &str, limit: Duration) {
        let serial = self.data_dir().join("vms").join(vm_id).join("serial.log");
        let t = Instant::now();
        while !std::fs::read_to_string(&serial)
            .unwrap_or_default()
            .contains("NUAGE-GUEST-READY")
        {
            assert!(
                t.elapsed() < limit,
                "the guest did not boot within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A fresh console ticket for server `vm_id`, as the `ws://` URL a browser opens.
    pub async fn console_ws_url(&self, api: &Api, vm_id: &str) -> String {
        let (status, t) = api
            .post(
                &format!("/api/v1/vms/{vm_id}/console"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 201, "a console ticket: {t}");
        self.url(t["url"].as_str().unwrap())
            .replacen("http", "ws", 1)
    }

    /// What the daemon has logged so far.
    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the daemon has printed on its standard output so far.
    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(self.scratch.path().join("nuaged.stdout")).unwrap_or_default()
    }

    /// A small JSON client for this daemon, signed in with `token`.
    pub fn api(&self, token: &str) -> Api {
        Api::with_client(self.http.clone(), &self.base_url, token)
    }

    /// Signs in as the admin and returns the token.
    pub async fn admin_token(&self) -> String {
        self.token_of("admin", ADMIN_PASSWORD).await
    }

    /// Signs `user` in and returns the token.
    pub async fn token_of(&self, user: &str, password: &str) -> String {
        Api::sign_in_with(self.http.clone(), &self.base_url, user, password)
            .await
            .token()
            .to_owned()
    }

    /// Has the admin create user `name` with `quota`, signs them in, and returns their API.
    pub async fn user(
        &self,
        admin: &Api,
        name: &str,
        password: &str,
        quota: serde_json::Value,
    ) -> Api {
        let (status, body) = admin
            .post(
                "/api/v1/users",
                serde_json::json!({"username": name, "password": password, "role": "user", "quota": quota}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        self.api(&self.token_of(name, password).await)
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

/// A network name unique to this daemon's scratch dir (at most 32 characters).
pub(crate) fn network_name(scratch: &Scratch) -> String {
    let base = scratch
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tail: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .rev()
        .take(12)
        .collect();
    format!("nuage-e2e-{}-{tail}", std::process::id())
}

pub(crate) fn spawn_daemon(
    uri: &str,
    scratch: &Scratch,
    log: &Path,
    network: &str,
    env: &[(&str, &str)],
) -> (Child, String) {
    let data = scratch.path().join("data");
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the daemon log");
    let listen = env
        .iter()
        .find(|(k, _)| *k == "NUAGE_LISTEN")
        .map_or("127.0.0.1:0", |(_, v)| *v);
    let mut cmd = Command::new(nuaged_binary());
    cmd.args(["--listen", listen, "--accel", "tcg", "--libvirt-uri", uri])
        .arg("--data-dir")
        .arg(&data)
        .env("NUAGE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("NUAGE_LOG", "info,tower_http=debug")
        // Guest networks in tests are isolated (no forwarding) and the daemon's own.
        .env("NUAGE_NETWORK_MODE", "isolated")
        .env("NUAGE_NETWORK_NAME", network)
        .env("NUAGE_METRICS_INTERVAL", "2")
        // The tests sign the admin in with a password alone; the ones about second factors say so.
        .env("NUAGE_REQUIRE_2FA", "none")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr);
    if let Some(web) = web_dir() {
        cmd.arg("--web-dir").arg(web);
    }
    let mut child = cmd.spawn().expect("spawn nuaged");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let mut copy = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(scratch.path().join("nuaged.stdout"))
        .expect("open the daemon's stdout copy");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(copy, "{line}");
            if let Some(url) = line.strip_prefix("nuaged listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(url) => (child, url),
        Err(_) => {
            let _ = child.kill();
            panic!(
                "nuaged did not start listening within 90 s; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
        if self.uri.starts_with("qemu") {
            remove_network(&self.network);
        }
        if std::thread::panicking() {
            eprintln!(
                "---- nuaged log ({}) ----\n{}",
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}
