//! What the benchmarks share: timing figures, the daemon served in-process or as the release binary, images, jobs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nuage_daemon::app::App;
use nuage_daemon::config::{
    AccelSetting, ConsoleListen, HostPolicy, LibvirtTarget, NetworkMode, Settings,
};
use nuage_e2e::{Api, Scratch};
use serde_json::{json, Value};

pub(crate) const PASSWORD: &str = "bench-password";

pub(crate) fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    // `p` is in 0..=1, so the index is within the slice; a float-to-int `as` saturates.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub(crate) fn p50_p99(samples: &mut [Duration]) -> String {
    format!(
        "{} / {}",
        ms(percentile(samples, 0.5)),
        ms(percentile(samples, 0.99))
    )
}

/// An app on `uri` with a temp data dir, served on loopback; returns it, its URL and the dir.
pub(crate) async fn serve(uri: &str, import: Option<&Path>) -> (Arc<App>, String, Scratch) {
    // A temp dir QEMU (another user under qemu:///system) can traverse.
    let dir = Scratch::new("nuage-bench-");
    let mut import_dirs = vec![dir.path().join("data/import")];
    import_dirs.extend(import.map(Path::to_owned));
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        libvirt: LibvirtTarget::Explicit(uri.into()),
        accel: AccelSetting::Tcg,
        console_listen: ConsoleListen::None,
        import_dirs,
        web_dir: None,
        trusted_proxies: Vec::new(),
        tls: nuage_daemon::config::TlsSetting::Off,
        require_2fa: nuage_daemon::config::Require2fa::None,
        public_url: None,
        admin_password: Some(PASSWORD.into()),
        host: HostPolicy {
            // libvirt's simulated host has 3 GiB and 16 CPUs: let the benchmark's thousands of
            // small servers be admitted there.
            cpu_overcommit: 1000.0,
            memory_overcommit: 1000.0,
            disk_overcommit: 1000.0,
            network_mode: NetworkMode::Isolated,
            ..HostPolicy::default()
        },
    };
    let app = Arc::new(
        tokio::task::spawn_blocking(move || nuage_daemon::app::start(settings))
            .await
            .unwrap()
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(nuage_daemon::serve(
        listener,
        app.clone(),
        None,
        std::future::pending(),
    ));
    (app, url, dir)
}

/// `GET {url}/api/v1/vms` with the bearer `token`, the body read whole and not parsed: what a
/// timing loop measures.
pub(crate) async fn get_vms_raw(http: &reqwest::Client, url: &str, token: &str) -> usize {
    http.get(format!("{url}/api/v1/vms"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len()
}

/// The benchmark daemon's admin, signed in.
pub(crate) async fn admin(url: &str) -> Api {
    Api::sign_in(url, "admin", PASSWORD).await
}

pub(crate) fn run(args: &[&str]) {
    run_cmd(Command::new(args[0]).args(&args[1..]))
}

pub(crate) fn run_cmd(cmd: &mut Command) {
    assert!(cmd.status().unwrap().success(), "{cmd:?}")
}

pub(crate) fn mib_s(bytes: u64, d: Duration) -> String {
    format!(
        "{:.0} MiB/s",
        bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
    )
}

/// Polls a job until it ends; returns how long that took from `since`.
pub(crate) async fn wait_job(api: &Api, job: &Value, since: Instant) -> Duration {
    let id = job["id"].as_str().unwrap_or_else(|| panic!("a job: {job}"));
    loop {
        let (_, j) = api.get(&format!("/api/v1/jobs/{id}")).await;
        if j["state"] != "running" {
            assert_eq!(j["state"], "succeeded", "{j}");
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

/// CPU time of a process (user + system), in clock ticks, from /proc.
pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

pub(crate) fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// `nuaged` on libvirt's simulated host (16 CPUs, 3 GiB) with room for thousands of servers.
pub(crate) const SIMULATED_ARGS: &[&str] = &[
    "--listen",
    "127.0.0.1:0",
    "--libvirt-uri",
    "test:///default",
    "--accel",
    "tcg",
    "--cpu-overcommit",
    "1000",
    "--memory-overcommit",
    "1000",
    "--disk-overcommit",
    "1000",
    "--network-mode",
    "isolated",
    // The benchmarks sign the admin in with the password alone.
    "--require-2fa",
    "none",
];

/// The release `nuaged` on the simulated host in a temp data dir holding a 1 MiB raw image in
/// its import dir; returns the process, its URL and the dir.
pub(crate) fn spawn_simulated(prefix: &str) -> (std::process::Child, String, tempfile::TempDir) {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/nuaged");
    assert!(
        bin.exists(),
        "build it first: cargo build --release -p nuage-daemon"
    );
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let import = dir.path().join("data/import");
    std::fs::create_dir_all(&import).unwrap();
    std::fs::File::create(import.join("tiny.raw"))
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let mut child = Command::new(&bin)
        .args(SIMULATED_ARGS)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("NUAGE_ADMIN_PASSWORD", PASSWORD)
        .env("NUAGE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let url = loop {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        if let Some(u) = line.trim().strip_prefix("nuaged listening on ") {
            break u.to_owned();
        }
    };
    // Keep reading its stdout, so that a later line never meets a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (child, url, dir)
}

/// Gives the signed-in admin room for `n` servers, imports the 1 MiB image from `import` and
/// creates `n` servers through the API; returns how long the creates took.
pub(crate) async fn fill_with_servers(api: &Api, import: &Path, n: u32) -> Duration {
    let admin_id = api.my_id().await;
    let (status, body) = api
        .patch(
            &format!("/api/v1/users/{admin_id}"),
            json!({"quota": {"vcpus": n, "memory_mib": 256 * n, "disk_gib": n, "vms": n, "snapshots": 0}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, r) = api
        .post(
            "/api/v1/images",
            json!({"name": "tiny", "path": import.join("tiny.raw").to_str().unwrap()}),
        )
        .await;
    let image = r["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let t = Instant::now();
    for i in 0..n {
        let (status, vm) = api
            .post(
                "/api/v1/vms",
                json!({"name": format!("s{i}"), "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}),
            )
            .await;
        assert_eq!(status, 201, "{vm}");
    }
    t.elapsed()
}

/// A 2 GiB qcow2 image with 1 GiB of data in `dir`: all random, or (`mixed`) 512 MiB random and
/// 512 MiB of the host's shared libraries (real, compressible content).
pub(crate) fn disk_image(dir: &Path, mixed: bool) -> PathBuf {
    let raw = dir.join("img.raw");
    let image = dir.join("img.qcow2");
    run(&["truncate", "-s", "2G", raw.to_str().unwrap()]);
    let of = format!("of={}", raw.display());
    let random_mib = if mixed { 512 } else { 1024 };
    run(&[
        "dd",
        "if=/dev/urandom",
        &of,
        "bs=16M",
        &format!("count={}", random_mib / 16),
        "conv=notrunc",
        "status=none",
    ]);
    if mixed {
        let script = format!(
            "find /usr/lib /usr/bin -type f -size +64k 2>/dev/null | xargs cat 2>/dev/null \
             | head -c 536870912 | dd of={} bs=16M seek=32 conv=notrunc iflag=fullblock status=none",
            raw.display()
        );
        run(&["sh", "-c", &script]);
    }
    run(&[
        "qemu-img",
        "convert",
        "-O",
        "qcow2",
        raw.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    std::fs::remove_file(&raw).unwrap();
    image
}

/// How long `qemu-img convert` (`-c`: compressed) of `from` into a new qcow2 `to` takes. The
/// copy is removed unless compressed (its size is wanted then).
pub(crate) fn timed_convert(from: &Path, to: &Path, compressed: bool) -> Duration {
    let t = Instant::now();
    let mut args = vec!["qemu-img", "convert", "-O", "qcow2"];
    if compressed {
        args.push("-c");
    }
    args.extend([from.to_str().unwrap(), to.to_str().unwrap()]);
    run(&args);
    let took = t.elapsed();
    if !compressed {
        std::fs::remove_file(to).unwrap();
    }
    took
}

/// [`serve`] on `uri` with `image` (in `work`) imported as "big": the app, its URL, its folder,
/// the admin and the image's id.
pub(crate) async fn serve_with_image(
    uri: &str,
    work: &Scratch,
    image: &Path,
) -> (Arc<App>, String, Scratch, Api, String) {
    let (app, url, dir) = serve(uri, Some(work.path())).await;
    let api = admin(&url).await;
    let (_, r) = api
        .post(
            "/api/v1/images",
            json!({"name": "big", "path": image.to_str().unwrap()}),
        )
        .await;
    let image_id = r["id"].as_str().expect("image imported").to_owned();
    (app, url, dir, api, image_id)
}
