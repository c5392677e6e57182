//! The end-to-end harness: a real libvirtd, real guests under TCG, the real `nuaged` binary on a
//! free loopback port with its own data dir, and headless Chromium through chromedriver.
//!
//! Everything a test starts is torn down by `Drop`, also when the test fails: daemons get SIGTERM
//! (then SIGKILL), every libvirt domain whose disks lie in a test's temporary folder is destroyed
//! and undefined, and the folder is removed. When a test panics, the daemon's log is printed.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use fantoccini;

/// The libvirt URI of the end-to-end tests.
pub const QEMU_SYSTEM: &str = "qemu:///system";

/// The admin password every test daemon is started with.
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Makes sure a libvirtd answers at `qemu:///system`, starting virtlogd and libvirtd if none does
/// (machines without systemd start nothing by themselves).
pub fn ensure_libvirtd() {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    {
        let answers = || {
            Command::new("virsh")
                .args(["-c", QEMU_SYSTEM, "uri"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        // A libvirtd that was just told to stop may still be exiting: start a new one only once
        // no process is left, and keep checking until one answers.
        let running = |name: &str| {
            Command::new("pgrep")
                .args(["-x", name])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers() {
            for daemon in ["virtlogd", "libvirtd"] {
                if !running(daemon) {
                    let _ = Command::new(daemon).arg("-d").status();
                }
            }
            assert!(
                Instant::now() < deadline,
                "libvirtd did not answer at {QEMU_SYSTEM} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The test guest's base image, built (or found cached) under `target/test-guest`.
pub fn test_guest_image() -> PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let out = target_dir().join("test-guest");
            let status = Command::new("bash")
                .arg(workspace_root().join("tests/guest/build.sh"))
                .arg(&out)
                .status()
                .expect("run tests/guest/build.sh");
            assert!(status.success(), "building the test guest failed");
            let image = out.join("base.qcow2");
            // QEMU runs as another user and reads the image as a backing file.
            make_reachable(&image);
            image
        })
        .clone()
}

/// The real distribution guest (a Debian 12 cloud image from Debian's packages, with
/// cloud-init), built (or found cached) under `target/test-guest` by `tests/guest/build-debian.sh`.
pub fn debian_guest_image() -> PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let out = target_dir().join("test-guest");
            let status = Command::new("bash")
                .arg(workspace_root().join("tests/guest/build-debian.sh"))
                .arg(&out)
                .status()
                .expect("run tests/guest/build-debian.sh");
            assert!(status.success(), "building the Debian guest failed");
            let image = out.join("debian.qcow2");
            make_reachable(&image);
            image
        })
        .clone()
}

/// Lets QEMU (an unprivileged user under qemu:///system) traverse to and read `path`.
fn make_reachable(path: &Path) {
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644));
    for dir in path.ancestors().skip(1) {
        if let Ok(meta) = std::fs::metadata(dir) {
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                let _ =
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o001));
            }
        }
    }
}

/// A temporary folder QEMU can traverse (mode 0711), removed with everything libvirt defined in it.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(prefix: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("create a temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_domains_under(self.dir.path());
    }
}

/// Names of the domains on `qemu:///system` that use a file below `dir`, with whether each runs.
pub fn domains_under(dir: &Path) -> Vec<(String, bool)> {
    let Ok(conn) = virt::connect::Connect::open(Some(QEMU_SYSTEM)) else {
        return Vec::new();
    };
    let needle = dir.to_string_lossy().into_owned();
    conn.list_all_domains(0)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.xml_desc(0).is_ok_and(|x| x.contains(&needle)))
        .filter_map(|d| Some((d.name().ok()?, d.is_active().unwrap_or(false))))
        .collect()
}

/// The domain XML of `name` on `qemu:///system` (inactive: the definition for the next boot).
pub fn domain_xml(name: &str, inactive: bool) -> Option<String> {
    let conn = virt::connect::Connect::open(Some(QEMU_SYSTEM)).ok()?;
    let dom = conn.lookup_domain_by_name(name).ok()?;
    dom.xml_desc(if inactive {
        virt::sys::VIR_DOMAIN_XML_INACTIVE
    } else {
        0
    })
    .ok()
}

/// Destroys and undefines every domain on `qemu:///system` that uses a file below `dir`.
pub fn remove_domains_under(dir: &Path) {
    let Ok(conn) = virt::connect::Connect::open(Some(QEMU_SYSTEM)) else {
        return;
    };
    let needle = dir.to_string_lossy().into_owned();
    for dom in conn.list_all_domains(0).unwrap_or_default() {
        let Ok(xml) = dom.xml_desc(0) else { continue };
        if !xml.contains(&needle) {
            continue;
        }
        if dom.is_active().unwrap_or(false) {
            let _ = dom.destroy();
        }
        let _ = dom.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA);
    }
}

/// A free TCP port on loopback (for chromedriver, which cannot report the one it picked).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nuaged_binary() -> PathBuf {
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
        Daemon {
            child,
            base_url,
            scratch,
            log,
            uri: uri.to_owned(),
            network,
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

    /// A small JSON client for this daemon, signed in with `token`.
    pub fn api(&self, token: &str) -> Api {
        Api {
            base: self.base_url.clone(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Signs in as the admin and returns the token.
    pub async fn admin_token(&self) -> String {
        self.token_of("admin", ADMIN_PASSWORD).await
    }

    /// Signs `user` in and returns the token.
    pub async fn token_of(&self, user: &str, password: &str) -> String {
        let resp: serde_json::Value = reqwest::Client::new()
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
            .await
            .expect("login request")
            .json()
            .await
            .expect("login body");
        resp["token"].as_str().expect("a token").to_owned()
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
fn network_name(scratch: &Scratch) -> String {
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

/// Stops and undefines a network on `qemu:///system`, if it exists.
pub fn remove_network(name: &str) {
    let Ok(conn) = virt::connect::Connect::open(Some(QEMU_SYSTEM)) else {
        return;
    };
    if let Ok(net) = conn.lookup_network_by_name(name) {
        let _ = net.destroy();
        let _ = net.undefine();
    }
}

fn spawn_daemon(
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
    let mut cmd = Command::new(nuaged_binary());
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--accel",
        "tcg",
        "--libvirt-uri",
        uri,
    ])
    .arg("--data-dir")
    .arg(&data)
    .env("NUAGE_ADMIN_PASSWORD", ADMIN_PASSWORD)
    .env("NUAGE_LOG", "info,tower_http=debug")
    // Guest networks in tests are isolated (no forwarding) and the daemon's own.
    .env("NUAGE_NETWORK_MODE", "isolated")
    .env("NUAGE_NETWORK_NAME", network)
    .env("NUAGE_METRICS_INTERVAL", "2")
    .envs(env.iter().copied())
    .stdout(Stdio::piped())
    .stderr(stderr);
    if let Some(web) = web_dir() {
        cmd.arg("--web-dir").arg(web);
    }
    let mut child = cmd.spawn().expect("spawn nuaged");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
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

/// JSON calls to a daemon's API with a bearer token; each returns the status and the body.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
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

/// The SHA-256 of what a guest sees on `disk` (its whole backing chain, read as raw bytes; shared
/// read, so a running guest's disk can be read too).
pub fn content_hash(disk: &Path) -> String {
    let scratch = Scratch::new("nuage-hash-");
    let raw = scratch.path().join("disk.raw");
    let out = Command::new("qemu-img")
        .args(["convert", "-U", "-O", "raw"])
        .arg(disk)
        .arg(&raw)
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "qemu-img convert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("sha256sum")
        .arg(&raw)
        .output()
        .expect("run sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_owned()
}

/// Writes 1 MiB of `pattern` at `offset_mib` into a stopped server's disk, as its guest would.
pub fn scribble(disk: &Path, pattern: u8, offset_mib: u64) {
    let out = Command::new("qemu-io")
        .args(["-f", "qcow2", "-c"])
        .arg(format!("write -P {pattern} {offset_mib}M 1M"))
        .arg(disk)
        .output()
        .expect("run qemu-io");
    assert!(
        out.status.success(),
        "qemu-io: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A guest booted straight through libvirt (not through the daemon) from a linked clone of the
/// test image, with an optional NoCloud seed, its serial port written to a file.
pub struct Guest {
    pub name: String,
    pub serial_log: PathBuf,
    pub scratch: Scratch,
}

impl Guest {
    pub fn boot(name_prefix: &str, seed_hostname: Option<&str>) -> Guest {
        use nuage_daemon::hypervisor::domain::{DiskSpec, DomainSpec, DomainTag};
        use nuage_daemon::hypervisor::{libvirt::Libvirt, Hypervisor};
        ensure_libvirtd();
        let base = test_guest_image();
        let scratch = Scratch::new("nuage-guest-");
        let dir = scratch.path();
        let disk = dir.join("disk.qcow2");
        let status = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&base)
            .arg(&disk)
            .arg("1G")
            .status()
            .expect("run qemu-img");
        assert!(status.success(), "qemu-img create failed");
        let mut disks = vec![DiskSpec {
            path: disk,
            format: "qcow2",
            target: "vda".into(),
            readonly: false,
        }];
        if let Some(host) = seed_hostname {
            let seed = dir.join("seed.img");
            make_fat_seed(&seed, host);
            disks.push(DiskSpec {
                path: seed,
                format: "raw",
                target: "vdb".into(),
                readonly: true,
            });
        }
        let uuid = uuid_v4();
        let name = format!("{name_prefix}-{}", &uuid[..8]);
        let serial_log = dir.join("serial.log");
        let hv = Libvirt::connect(QEMU_SYSTEM).expect("connect to libvirt");
        let spec = DomainSpec {
            name: name.clone(),
            uuid,
            domain_type: hv.domain_type(nuage_shared::Accel::Tcg),
            vcpus: 1,
            memory_mib: 256,
            disks,
            serial_log: Some(serial_log.clone()),
            tag: DomainTag {
                daemon: "e2e-harness".into(),
                owner: String::new(),
                vps: String::new(),
            },
            limits: Default::default(),
            nic: None,
            vnc_loopback: false,
        };
        let guest = Guest {
            name: name.clone(),
            serial_log,
            scratch,
        };
        hv.define(&spec.to_xml().expect("domain XML"))
            .expect("define the guest");
        hv.start(&name).expect("start the guest");
        guest
    }

    /// Waits until the serial output contains `marker`; returns how long it took.
    pub fn wait_for_serial(&self, marker: &str, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.serial_log).unwrap_or_default();
            if text.contains(marker) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{marker} not seen within {timeout:?}; serial output:\n{text}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A NoCloud seed made with the system's FAT tools (the daemon builds its own with a library).
fn make_fat_seed(path: &Path, hostname: &str) {
    let dir = path.parent().unwrap();
    std::fs::write(
        dir.join("meta-data"),
        format!("instance-id: e2e\nlocal-hostname: {hostname}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("user-data"), "#cloud-config\n").unwrap();
    let run = |cmd: &mut Command| assert!(cmd.status().expect("run a seed tool").success());
    run(Command::new("truncate").args(["-s", "2M"]).arg(path));
    run(Command::new("mkfs.vfat")
        .args(["-n", "CIDATA"])
        .arg(path)
        .stdout(Stdio::null()));
    run(Command::new("mcopy")
        .arg("-i")
        .arg(path)
        .arg(dir.join("meta-data"))
        .arg(dir.join("user-data"))
        .arg("::"));
}

fn uuid_v4() -> String {
    let b: [u8; 16] = std::fs::read("/proc/sys/kernel/random/uuid")
        .ok()
        .and_then(|v| String::from_utf8(v).ok())
        .map(|s| {
            let hex: String = s.trim().chars().filter(|c| *c != '-').collect();
            let mut out = [0u8; 16];
            for (i, o) in out.iter_mut().enumerate() {
                *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
            }
            out
        })
        .unwrap_or([0; 16]);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Drop for Guest {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- serial output of {} ----\n{}",
                self.name,
                std::fs::read_to_string(&self.serial_log).unwrap_or_default()
            );
        }
    }
}

/// Headless Chromium driven through chromedriver.
pub struct Browser {
    driver: Child,
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

/// `virsh -c qemu:///system ARGS`: its standard output, trimmed.
pub fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh")
        .args(["-c", QEMU_SYSTEM])
        .args(args)
        .output()
        .expect("run virsh");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

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

/// The pid of a running domain's QEMU, from libvirt's pid file.
pub fn qemu_pid(domain: &str) -> Option<i32> {
    std::fs::read_to_string(format!("/run/libvirt/qemu/{domain}.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
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

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, …); `None` once the process is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
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
