//! `cargo run --release -p nuage-bench -- <list|create|memory> [--uri URI]`
//!
//! Each benchmark prints Markdown rows with Nuage's figure beside its peer's, measured in the same
//! run on the same machine. These are measurements, not pass/fail tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nuage_daemon::app::App;
use nuage_daemon::config::{
    AccelSetting, ConsoleListen, HostPolicy, LibvirtTarget, NetworkMode, Settings,
};
use nuage_e2e::Scratch;
use nuage_shared::{Image, Vm, VmState};
use serde_json::{json, Value};

mod abuse;

const PASSWORD: &str = "bench-password";

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    // `p` is in 0..=1, so the index is within the slice; a float-to-int `as` saturates.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn p50_p99(samples: &mut [Duration]) -> String {
    format!(
        "{} / {}",
        ms(percentile(samples, 0.5)),
        ms(percentile(samples, 0.99))
    )
}

/// An app on `uri` with a temp data dir, served on loopback; returns it, its URL and the dir.
async fn serve(uri: &str, import: Option<&Path>) -> (Arc<App>, String, Scratch) {
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
        std::future::pending(),
    ));
    (app, url, dir)
}

/// Sends `body` as JSON with the bearer `token` and returns the answer as JSON.
async fn call(req: reqwest::RequestBuilder, token: &str, body: Value) -> Value {
    req.bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn login(http: &reqwest::Client, url: &str) -> String {
    let r: Value = http
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_owned()
}

/// `GET {url}{path}` with the bearer `token`, as JSON.
async fn get_json(http: &reqwest::Client, url: &str, path: &str, token: &str) -> Value {
    http.get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The signed-in user's id.
async fn my_id(http: &reqwest::Client, url: &str, token: &str) -> String {
    let me = get_json(http, url, "/api/v1/me", token).await;
    me["user"]["id"].as_str().unwrap().to_owned()
}

/// A libvirt test-driver node file holding `names` as defined, running domains.
fn test_node_file(dir: &Path, names: &[String]) -> PathBuf {
    let mut xml = String::from(
        "<node><cpu><mhz>2000</mhz><model>x86_64</model><active>16</active><max>16</max>\
         <nodes>1</nodes><sockets>1</sockets><cores>16</cores><threads>1</threads></cpu>\
         <memory>33554432</memory>",
    );
    for n in names {
        xml.push_str(&format!(
            "<domain type='test'><name>{n}</name><memory>262144</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os></domain>"
        ));
    }
    xml.push_str("</node>");
    let path = dir.join(format!("node-{}.xml", names.len()));
    std::fs::write(&path, xml).unwrap();
    path
}

/// Writes `n` running servers of `owner` straight into the database (creating thousands of disks
/// would measure qemu-img, not what the benchmark is about); returns their ids.
async fn insert_servers(app: &Arc<App>, owner: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let (rows, host, owner) = (ids.clone(), app.daemon_id.clone(), owner.to_owned());
    app.db
        .call(move |c| {
            let tx = c.transaction()?;
            let image = Image {
                id: "bench-image".into(),
                name: "bench".into(),
                format: "raw".into(),
                virtual_size_bytes: 1 << 20,
                os: None,
                created_at: "2026-01-01T00:00:00Z".into(),
            };
            nuage_daemon::db::images::insert(
                &tx,
                &nuage_daemon::db::images::ImageRow {
                    image,
                    path: "/nonexistent".into(),
                },
            )?;
            for (i, id) in rows.iter().enumerate() {
                let vm = Vm {
                    id: id.clone(),
                    name: format!("server-{i}"),
                    owner_id: owner.clone(),
                    host_id: host.clone(),
                    state: VmState::Running,
                    vcpus: 1,
                    memory_mib: 256,
                    disk_gib: 1,
                    image_id: "bench-image".into(),
                    hostname: format!("server-{i}"),
                    created_at: "2026-01-01T00:00:00Z".into(),
                    ip_addresses: vec![],
                    pending: None,
                    mac_address: None,
                    limits: Default::default(),
                    limit_overrides: Default::default(),
                    stop_reason: None,
                };
                nuage_daemon::db::vms::insert(&tx, &vm)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .unwrap();
    ids
}

/// `GET /api/v1/vms` with N servers, beside libvirt listing the same N domains.
async fn bench_list() {
    println!("| servers | nuaged GET /api/v1/vms p50 / p99 | `virsh list --all` p50 / p99 | libvirt API list + state, in-process p50 / p99 |");
    println!("|---|---|---|---|");
    for n in [1_000usize, 10_000] {
        let (app, url, dir) = serve("test:///default", None).await;
        let http = reqwest::Client::new();
        let token = login(&http, &url).await;
        let owner = my_id(&http, &url, &token).await;
        // The records are written straight into the database (creating 10,000 disks would
        // measure qemu-img, not the listing); the list is served from these rows either way.
        let names = insert_servers(&app, &owner, n).await;

        let rounds = if n > 5_000 { 60 } else { 200 };
        let mut ours = Vec::new();
        for i in 0..rounds + 10 {
            let t = Instant::now();
            let body = http
                .get(format!("{url}/api/v1/vms"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            if i >= 10 {
                ours.push(t.elapsed());
            }
            assert!(body.len() > n * 100, "the list holds every server");
        }

        let domain_names: Vec<String> = names.iter().map(|id| format!("nuage-{id}")).collect();
        let node = test_node_file(dir.path(), &domain_names);
        let uri = format!("test://{}", node.display());
        let mut virsh = Vec::new();
        for _ in 0..(if n > 5_000 { 10 } else { 30 }) {
            let t = Instant::now();
            let out = Command::new("virsh")
                .args(["-c", &uri, "list", "--all"])
                .stdout(Stdio::piped())
                .output()
                .unwrap();
            virsh.push(t.elapsed());
            assert!(out.stdout.len() > n * 40);
        }
        let uri2 = uri.clone();
        let mut api = tokio::task::spawn_blocking(move || {
            let conn = virt::connect::Connect::open(Some(&uri2)).unwrap();
            let mut samples = Vec::new();
            for _ in 0..30 {
                let t = Instant::now();
                let doms = conn.list_all_domains(0).unwrap();
                let mut count = 0;
                for d in &doms {
                    let _ = (d.name().unwrap(), d.state().unwrap());
                    count += 1;
                }
                samples.push(t.elapsed());
                assert_eq!(count, doms.len());
            }
            samples
        })
        .await
        .unwrap();
        println!(
            "| {n} | {} | {} | {} |",
            p50_p99(&mut ours),
            p50_p99(&mut virsh),
            p50_p99(&mut api)
        );
        drop(app);
    }
}

/// A 2 GiB image holding 1 GiB of data: create with a linked clone (what nuaged does) beside a
/// full copy of the image (`qemu-img convert`, what a panel without backing files does).
fn run(args: &[&str]) {
    run_cmd(Command::new(args[0]).args(&args[1..]))
}

fn run_cmd(cmd: &mut Command) {
    assert!(cmd.status().unwrap().success(), "{cmd:?}")
}

/// A 2 GiB qcow2 image with 1 GiB of data in `dir`: all random, or (`mixed`) 512 MiB random and
/// 512 MiB of the host's shared libraries (real, compressible content).
fn disk_image(dir: &Path, mixed: bool) -> PathBuf {
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
fn timed_convert(from: &Path, to: &Path, compressed: bool) -> Duration {
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
/// a client, the admin's token and the image's id.
async fn serve_with_image(
    uri: &str,
    work: &Scratch,
    image: &Path,
) -> (Arc<App>, String, Scratch, reqwest::Client, String, String) {
    let (app, url, dir) = serve(uri, Some(work.path())).await;
    let http = reqwest::Client::new();
    let token = login(&http, &url).await;
    let r = call(
        http.post(format!("{url}/api/v1/images")),
        &token,
        json!({"name": "big", "path": image.to_str().unwrap()}),
    )
    .await;
    let image_id = r["id"].as_str().expect("image imported").to_owned();
    (app, url, dir, http, token, image_id)
}

async fn bench_create(uri: &str) {
    // A temp dir QEMU (another user under qemu:///system) can traverse.
    let work = Scratch::new("nuage-bench-img-");
    let image = disk_image(work.path(), false);
    let (app, url, dir, http, token, image_id) = serve_with_image(uri, &work, &image).await;
    let mut linked = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let body = json!({"name": format!("linked-{i}"), "image_id": image_id, "vcpus": 1, "memory_mib": 256, "disk_gib": 3});
        let vm = call(http.post(format!("{url}/api/v1/vms")), &token, body).await;
        linked.push(t.elapsed());
        assert_eq!(vm["state"], "running", "{vm}");
        let id = vm["id"].as_str().unwrap();
        http.delete(format!("{url}/api/v1/vms/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }
    let mut full = Vec::new();
    for i in 0..3 {
        full.push(timed_convert(
            &image,
            &dir.path().join(format!("full-{i}.qcow2")),
            false,
        ));
    }
    println!("| image | create to `running` with a linked clone (nuaged, whole API call) | full copy of the disk alone (`qemu-img convert`) |");
    println!("|---|---|---|");
    println!(
        "| 2 GiB qcow2, 1 GiB of data, on {uri} | {} (median of 3) | {} (median of 3) |",
        ms(percentile(&mut linked, 0.5)),
        ms(percentile(&mut full, 0.5))
    );
    // The daemon's network outlives it by design; this one was the benchmark's.
    let (hv, net) = (app.hv.clone(), app.network().name.clone());
    let _ = tokio::task::spawn_blocking(move || hv.remove_network(&net)).await;
}

/// Polls a job until it ends; returns how long that took from `since`.
async fn wait_job(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    job: &Value,
    since: Instant,
) -> Duration {
    let id = job["id"].as_str().unwrap_or_else(|| panic!("a job: {job}"));
    loop {
        let j = get_json(http, url, &format!("/api/v1/jobs/{id}"), token).await;
        if j["state"] != "running" {
            assert_eq!(j["state"], "succeeded", "{j}");
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn mib_s(bytes: u64, d: Duration) -> String {
    format!(
        "{:.0} MiB/s",
        bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
    )
}

/// Backup and restore of a 2 GiB disk holding 1 GiB of data (half random, half the host's own
/// binaries), beside `qemu-img convert` of the same disk in the same run; and the archive's size
/// against the data.
async fn bench_backup(uri: &str) {
    let work = Scratch::new("nuage-bench-img-");
    let image = disk_image(work.path(), true);
    let (app, url, dir, http, token, image_id) = serve_with_image(uri, &work, &image).await;
    let body = json!({"name": "big", "image_id": image_id, "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "start": false});
    let vm = call(http.post(format!("{url}/api/v1/vms")), &token, body).await;
    let id = vm["id"].as_str().unwrap().to_owned();
    let disk = dir.path().join("data/vms").join(&id).join("disk.qcow2");
    let data: u64 = 1 << 30;
    let post = |path: String, body: Value| {
        let (http, token) = (http.clone(), token.clone());
        async move { call(http.post(path), &token, body).await }
    };

    let (mut stopped, mut running, mut restore, mut convert, mut sizes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..3 {
        let t = Instant::now();
        let job = post(format!("{url}/api/v1/vms/{id}/backups"), json!({})).await;
        stopped.push(wait_job(&http, &url, &token, &job, t).await);
        let path = format!("/api/v1/backups/{}", job["backup_id"].as_str().unwrap());
        let b = get_json(&http, &url, &path, &token).await;
        sizes.push(b["size_bytes"].as_u64().unwrap());
        // Restore in place (the server is stopped).
        let t = Instant::now();
        let job = post(
            format!("{url}/api/v1/backups/{}/restore", b["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
        restore.push(wait_job(&http, &url, &token, &job, t).await);
        // The practical limit: qemu-img copying the same disk (backing chain flattened).
        convert.push(timed_convert(
            &disk,
            &dir.path().join(format!("convert-{i}.qcow2")),
            false,
        ));
    }
    // For context: qemu-img's own compressed copy (zlib, one thread), once.
    let dest = dir.path().join("convert-c.qcow2");
    let compressed = timed_convert(&disk, &dest, true);
    let compressed_size = std::fs::metadata(&dest).unwrap().len();
    std::fs::remove_file(dest).unwrap();
    // While the server runs (libvirt's backup job on qemu:///system; the guest has no OS here, the
    // copy is what is measured).
    post(format!("{url}/api/v1/vms/{id}/start"), json!({})).await;
    for _ in 0..3 {
        let t = Instant::now();
        let job = post(format!("{url}/api/v1/vms/{id}/backups"), json!({})).await;
        running.push(wait_job(&http, &url, &token, &job, t).await);
    }
    let med = |v: &mut Vec<Duration>| percentile(v, 0.5);
    let (s, r, rs, c) = (
        med(&mut stopped),
        med(&mut running),
        med(&mut restore),
        med(&mut convert),
    );
    println!(
        "2 GiB disk, 1 GiB of data (512 MiB random, 512 MiB of binaries), {uri}, medians of 3:"
    );
    println!("| operation | time | throughput (data) | vs `qemu-img convert` |");
    println!("|---|---|---|---|");
    for (what, d) in [
        ("`qemu-img convert -O qcow2` (peer)", c),
        ("backup, server stopped (job, to a verified archive)", s),
        ("backup, server running (libvirt backup job + archive)", r),
        ("restore in place (verify + decompress)", rs),
        (
            "`qemu-img convert -c -O qcow2` (compressed copy, once)",
            compressed,
        ),
    ] {
        println!(
            "| {what} | {} | {} | {:.0}% |",
            ms(d),
            mib_s(data, d),
            100.0 * c.as_secs_f64() / d.as_secs_f64()
        );
    }
    let size = sizes[0];
    println!(
        "qemu-img's compressed qcow2: {:.0} MiB",
        compressed_size as f64 / (1 << 20) as f64
    );
    println!(
        "archive: {:.0} MiB for 1024 MiB of data ({:.0}% of the allocated bytes)",
        size as f64 / (1 << 20) as f64,
        100.0 * size as f64 / data as f64
    );
    let (hv, net) = (app.hv.clone(), app.network().name.clone());
    let _ = tokio::task::spawn_blocking(move || hv.remove_network(&net)).await;
}

/// Native decoding speed of the `rfb` crate on the sessions recorded from QEMU (rfb/fixtures):
/// each whole session (handshake and first full frame) decoded again and again.
fn bench_decode() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rfb/fixtures");
    println!(
        "| recorded QEMU session (720x400) | bytes | frames/s | MB/s of the stream | Mpixel/s |"
    );
    println!("|---|---|---|---|---|");
    for name in ["zrle", "tight", "hextile", "zlib"] {
        let bytes = std::fs::read(dir.join(format!("qemu-{name}.bin"))).unwrap();
        let mut runs = 0u32;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            let mut c = rfb::Client::new();
            let ev = c.receive(&bytes).unwrap();
            assert!(ev.contains(&rfb::Event::UpdateDone));
            runs += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "| {name} | {} | {:.0} | {:.0} | {:.0} |",
            bytes.len(),
            runs as f64 / secs,
            bytes.len() as f64 * runs as f64 / secs / 1e6,
            720.0 * 400.0 * runs as f64 / secs / 1e6
        );
    }
}

/// Installed in the console page by `keys`: timestamps every key pressed on the canvas and
/// every drawing call, with the number of lit pixels after each (a typed `#` adds more than the
/// blinking text cursor takes away, which tells its echo from a blink).
const KEYS_PROBE: &str = r#"
const canvas = document.querySelector(arguments[0]);
const ctx2d = canvas.getContext('2d');
window.__keys = []; window.__draws = [];
const lit = () => { const d = ctx2d.getImageData(0, 0, canvas.width, canvas.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 64 || d[i + 1] > 64 || d[i + 2] > 64) n++; return n; };
for (const name of ['putImageData', 'fillRect', 'drawImage']) {
  const orig = CanvasRenderingContext2D.prototype[name];
  CanvasRenderingContext2D.prototype[name] = function (...a) {
    const r = orig.apply(this, a);
    if (this === ctx2d) { const t = performance.now(); window.__draws.push([t, lit()]); }
    return r;
  };
}
canvas.addEventListener('keydown', () => window.__keys.push(performance.now()), true);
window.__lit = lit;
return true;
"#;

/// Presses `#` on the canvas at `selector` `n` times (erasing it after each) and returns the time
/// from each key event to the first drawing call that shows the guest's echo of it.
async fn key_samples(c: &nuage_e2e::fantoccini::Client, selector: &str, n: usize) -> Vec<Duration> {
    use nuage_e2e::fantoccini::Locator;
    c.execute(KEYS_PROBE, vec![json!(selector)]).await.unwrap();
    let canvas = c.find(Locator::Css(selector)).await.unwrap();
    canvas.click().await.unwrap();
    let lit = || async {
        c.execute("return window.__lit();", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap()
    };
    let mut samples = Vec::new();
    for i in 0..n {
        // The most lit the screen gets without the key (cursor on), over a blink or two.
        let mut base = 0;
        for _ in 0..6 {
            base = base.max(lit().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.execute(
            "window.__keys = []; window.__draws = []; return true;",
            vec![],
        )
        .await
        .unwrap();
        canvas.send_keys("#").await.unwrap();
        let t = Instant::now();
        let latency = loop {
            let v = c
                .execute("return [window.__keys, window.__draws];", vec![])
                .await
                .unwrap();
            let key = v[0][0].as_f64();
            let echo = v[1].as_array().unwrap().iter().find_map(|d| {
                let (at, n) = (d[0].as_f64()?, d[1].as_u64()?);
                (key.is_some_and(|k| at >= k) && n > base + 10).then_some(at)
            });
            if let (Some(k), Some(e)) = (key, echo) {
                break Duration::from_secs_f64((e - k) / 1000.0);
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{selector}, press {i}: no echo ({base} lit before): {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        samples.push(latency);
        // Erase it, and wait until the screen is back.
        canvas.send_keys("\u{E003}").await.unwrap();
        let t = Instant::now();
        while lit().await > base {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "backspace never drawn"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    samples
}

/// Key press to pixels: a key typed in the console (headless Chromium, real keyboard events
/// through chromedriver) until the guest's echo of it is drawn on the canvas, through the whole
/// path (browser, relay, QEMU's VNC server, the guest under TCG, and back); then the same with
/// noVNC on the same relay and guest.
async fn bench_keys() {
    use nuage_e2e::fantoccini::Locator;
    let (daemon, admin, image) = nuage_e2e::Daemon::with_guest_image(&[]).await;
    let (status, vm) = admin
        .post(
            "/api/v1/vms",
            json!({"name": "keys", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}),
        )
        .await;
    assert_eq!(status, 201, "{vm}");
    let id = vm["id"].as_str().unwrap().to_owned();
    daemon.wait_guest_ready(&id, Duration::from_secs(120)).await;
    let browser = nuage_e2e::Browser::start().await;
    let c = &browser.client;
    browser
        .sign_in(&daemon, "admin", nuage_e2e::ADMIN_PASSWORD)
        .await;
    c.goto(&daemon.url(&format!("/servers/{id}")))
        .await
        .unwrap();
    browser.wait_for(Locator::Id("open-console"), 30).await;
    browser.click(Locator::Id("open-console")).await;
    let t = Instant::now();
    loop {
        if let Ok(k) = c.find(Locator::Id("console-keys")).await {
            if k.text().await.unwrap_or_default().contains("scancodes") {
                break;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the console did not connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut ours = key_samples(c, "#console-canvas", 40).await;

    let ws_url = daemon.console_ws_url(&admin, &id).await;
    let (_site, mut server, port) = nuage_e2e::novnc_site(nuage_e2e::NOVNC_PAGE);
    c.goto(&nuage_e2e::novnc_page_url(port, &ws_url))
        .await
        .unwrap();
    let t = Instant::now();
    while c.execute("return window.novnc;", vec![]).await.unwrap() != json!("connected") {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "noVNC did not connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut novnc = key_samples(c, "#screen canvas", 40).await;
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "Key press to pixels (the guest's echo of `#` drawn on the canvas), {} presses each, \
         Chromium → nuaged relay → QEMU VNC → guest (TCG) → back to the canvas:\n",
        ours.len()
    );
    println!("| client | p50 / p99 |");
    println!("|---|---|");
    println!("| Nuage console (rfb, wasm) | {} |", p50_p99(&mut ours));
    println!("| noVNC 1.7 | {} |", p50_p99(&mut novnc));
    browser.close().await;
}

/// The page of `decode-browser`: replays each recorded session through our wasm client and
/// through noVNC's RFB (given a fake channel that delivers the same bytes), each drawing on its
/// canvas; times the frame's bytes from delivery to drawn.
const DECODE_PAGE: &str = r#"<!doctype html><html><body>
<script>
window.addEventListener('error', e => { window.failure = String(e.message); });
window.addEventListener('unhandledrejection', e => { window.failure = String(e.reason); });
</script>
<script type="module">
import RFB from './core/rfb.js';
import init, { Session } from './wasm/nuage_decode_wasm.js';
await init();
const out = {};
const frame = () => new Promise(r => requestAnimationFrame(() => r()));
// The recordings are RFB 3.8 with security None: version, types, result, then ServerInit.
function handshakeLength(b) {
  let p = 12; p += 1 + b[p]; p += 4 + 20;
  return p + 4 + ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
}
function lit(ctx) {
  const d = ctx.getImageData(0, 0, 720, 400).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 64 || d[i + 1] > 64 || d[i + 2] > 64) n++;
  return n;
}
// Each run: connect a fresh client with the handshake (untimed, and let it settle), then time
// the delivery of the frame's bytes until they are decoded and drawn.
async function ours(hello, update) {
  const cv = document.createElement('canvas'); cv.width = 720; cv.height = 400;
  const ctx = cv.getContext('2d');
  const s = new Session();
  s.feed(hello, ctx);
  const t = performance.now();
  const frames = s.feed(update, ctx);
  ctx.getImageData(0, 0, 1, 1); // the canvas has really drawn (its queued work is flushed)
  const ms = performance.now() - t;
  s.free();
  return { ms, frames, ctx };
}
// The same, decoding only: no canvas work.
async function oursDecode(hello, update) {
  const s = new Session();
  const ctx = document.createElement('canvas').getContext('2d');
  s.feed(hello, ctx);
  const t = performance.now();
  s.decode_only(update);
  const ms = performance.now() - t;
  s.free();
  return { ms };
}
async function novnc(hello, update) {
  const ch = { readyState: 'open', binaryType: 'arraybuffer', protocol: 'binary',
               send() {}, close() {}, onopen: null, onmessage: null, onerror: null, onclose: null };
  const box = document.createElement('div'); document.body.appendChild(box);
  const rfb = new RFB(box, ch);
  ch.onmessage({ data: hello.slice().buffer });
  // noVNC takes one handshake step per message (a server waits for each reply): nudge it on.
  for (let i = 0; i < 10 && rfb._sock._rQlen > rfb._sock._rQi; i++) {
    ch.onmessage({ data: new ArrayBuffer(0) });
  }
  await rfb._display.flush();
  await frame();
  const t = performance.now();
  ch.onmessage({ data: update.slice().buffer });
  // noVNC finishes a frame later when its render queue is busy: wait for that too.
  while (rfb._flushing || rfb._sock._rQlen > rfb._sock._rQi) {
    window.progress = `${rfb._sock._rQlen - rfb._sock._rQi} bytes left in noVNC`;
    await new Promise(r => setTimeout(r, 0));
  }
  rfb._canvas.getContext('2d').getImageData(0, 0, 1, 1);
  const ms = performance.now() - t;
  const r = { ms, ok: rfb._rfbConnectionState === 'connected', ctx: rfb._canvas.getContext('2d') };
  r.done = () => { rfb.disconnect(); box.remove(); };
  return r;
}
for (const name of ['zrle', 'tight', 'hextile', 'zlib']) {
  const bytes = new Uint8Array(await (await fetch(`fixtures/qemu-${name}.bin`)).arrayBuffer());
  const split = handshakeLength(bytes);
  const hello = bytes.subarray(0, split), update = bytes.subarray(split);
  const row = { bytes: update.length };
  // Both must draw the guest's screen before they are timed.
  const o = await ours(hello, update);
  const n = await novnc(hello, update);
  Object.assign(row, { frames: o.frames, ours_lit: lit(o.ctx), novnc_lit: lit(n.ctx), novnc_ok: n.ok });
  n.done();
  for (const [who, run] of [['ours', ours], ['ours_decode', oursDecode], ['novnc', novnc]]) {
    window.progress = `${name} ${who}`;
    const samples = []; const start = performance.now();
    while (performance.now() - start < 4000 || samples.length < 30) {
      const r = await run(hello, update);
      samples.push(r.ms);
      if (r.done) r.done();
    }
    samples.splice(0, 5);
    samples.sort((a, b) => a - b);
    row[who] = { n: samples.length, p50: samples[samples.length >> 1],
                 mean: samples.reduce((a, b) => a + b, 0) / samples.length };
  }
  out[name] = row;
}
window.result = out;
</script></body></html>"#;

/// Our wasm decoder beside noVNC's JavaScript decoders, in the same headless Chromium, on the
/// same recorded QEMU sessions (handshake plus a full 720x400 frame each).
async fn bench_decode_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = nuage_e2e::target_dir();
    // Built as the console ships: the wasm-release profile, then wasm-opt -Oz when present.
    run_cmd(Command::new("cargo").current_dir(&root).args([
        "build",
        "-q",
        "--profile",
        "wasm-release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "nuage-decode-wasm",
    ]));
    let (site, mut server, port) = nuage_e2e::novnc_site(DECODE_PAGE);
    let wasm = target.join("wasm32-unknown-unknown/wasm-release/nuage_decode_wasm.wasm");
    run_cmd(
        Command::new("wasm-bindgen")
            .args(["--target", "web", "--no-typescript", "--out-dir"])
            .arg(site.path().join("wasm"))
            .arg(&wasm),
    );
    let bg = site.path().join("wasm/nuage_decode_wasm_bg.wasm");
    let wasm_opt = target.join("tools/node_modules/.bin/wasm-opt");
    let optimised = wasm_opt.exists()
        && Command::new(&wasm_opt)
            .args([
                "-Oz",
                "--enable-bulk-memory",
                "--enable-nontrapping-float-to-int",
            ])
            .args([
                "--enable-sign-ext",
                "--enable-mutable-globals",
                "--enable-reference-types",
            ])
            .arg(&bg)
            .arg("-o")
            .arg(&bg)
            .status()
            .is_ok_and(|s| s.success());
    std::os::unix::fs::symlink(root.join("rfb/fixtures"), site.path().join("fixtures")).unwrap();
    let browser = nuage_e2e::Browser::start().await;
    let c = &browser.client;
    let page = format!("http://127.0.0.1:{port}/index.html");
    c.goto(&page).await.unwrap();
    let t = Instant::now();
    let result = loop {
        let r = c
            .execute(
                "return window.result || {pending: window.progress || null, error: window.failure || null};",
                vec![],
            )
            .await
            .unwrap();
        if r.get("pending").is_none() {
            break r;
        }
        assert!(r["error"].is_null(), "the page failed: {r}");
        assert!(t.elapsed() < Duration::from_secs(60), "no result: {r}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "Headless Chromium; one frame = the first full 720x400 update of the test guest's screen, \
         from bytes delivered to pixels on the canvas, after a fresh client's handshake (wasm {}):\n",
        if optimised { "wasm-opt -Oz, as shipped" } else { "not wasm-opt'ed" }
    );
    println!(
        "| session | bytes | ours p50 | ours frames/s | noVNC 1.7 p50 | noVNC frames/s | ratio | ours, decoding only (no canvas) p50 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for name in ["zrle", "tight", "hextile", "zlib"] {
        let r = &result[name];
        assert!(
            r["novnc_ok"].as_bool() == Some(true),
            "{name}: noVNC did not connect: {r}"
        );
        for who in ["ours_lit", "novnc_lit"] {
            assert!(
                r[who].as_u64() > Some(500),
                "{name}: {who} drew no text: {r}"
            );
        }
        let fps =
            |who: &str| r["frames"].as_f64().unwrap() * 1000.0 / r[who]["mean"].as_f64().unwrap();
        println!(
            "| {name} | {} | {:.2} ms | {:.0} | {:.2} ms | {:.0} | {:.1}x | {:.2} ms |",
            r["bytes"],
            r["ours"]["p50"].as_f64().unwrap(),
            fps("ours"),
            r["novnc"]["p50"].as_f64().unwrap(),
            fps("novnc"),
            fps("ours") / fps("novnc"),
            r["ours_decode"]["p50"].as_f64().unwrap()
        );
    }
    browser.close().await;
}

/// A loopback TCP source: each connection gets `total` bytes then EOF, or (`total == 0`) an echo.
async fn tcp_source(total: usize) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            s.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                if total == 0 {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                } else {
                    let chunk: Vec<u8> = (0..64 * 1024u32)
                        .map(|i| u8::try_from(i * 7 % 256).unwrap())
                        .collect();
                    let mut sent = 0;
                    while sent < total {
                        let n = chunk.len().min(total - sent);
                        if s.write_all(&chunk[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                }
            });
        }
    });
    addr
}

/// nuaged's relay loop (`http::pump`) on its own axum server, pumping to `target`.
async fn our_relay(target: std::net::SocketAddr) -> String {
    use axum::extract::ws::WebSocketUpgrade;
    let app = axum::Router::new().route(
        "/ws",
        axum::routing::get(move |up: WebSocketUpgrade| async move {
            up.protocols(["binary"]).on_upgrade(move |ws| async move {
                let tcp = tokio::net::TcpStream::connect(target).await.unwrap();
                tcp.set_nodelay(true).unwrap();
                nuage_daemon::http::pump(ws, tcp, std::future::pending()).await;
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn ws_connect(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    for _ in 0..100 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(req.clone()).await {
            return ws;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no WebSocket at {url}");
}

/// Reads `total` bytes of binary frames; returns the time taken.
async fn ws_drain(url: &str, total: usize) -> Duration {
    use futures_util::StreamExt;
    let mut ws = ws_connect(url).await;
    let t = Instant::now();
    let mut got = 0;
    while got < total {
        match ws.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b))) => got += b.len(),
            Some(Ok(_)) => {}
            other => panic!("the stream ended at {got} of {total} bytes: {other:?}"),
        }
    }
    t.elapsed()
}

/// Round trips of 64-byte messages through `url` to an echo; p50/p99.
async fn ws_round_trips(url: &str, n: usize) -> Vec<Duration> {
    use futures_util::{SinkExt, StreamExt};
    let mut ws = ws_connect(url).await;
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let t = Instant::now();
        ws.send(tokio_tungstenite::tungstenite::Message::Binary(
            vec![7u8; 64].into(),
        ))
        .await
        .unwrap();
        let mut got = 0;
        while got < 64 {
            if let Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b))) = ws.next().await {
                got += b.len();
            }
        }
        if i >= 50 {
            out.push(t.elapsed());
        }
    }
    out
}

/// The console relay against websockify (Debian's, 0.10) relaying the same bytes on loopback:
/// throughput of a bulk stream, and round trips to an echo beside a direct TCP round trip.
async fn bench_relay() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let total = 512 << 20;
    let bulk = tcp_source(total).await;
    let echo = tcp_source(0).await;
    // nuaged's relay in a process of its own, as websockify is.
    let spawn_ours = |target: std::net::SocketAddr| {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["relay-serve", &target.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        (child, line.trim().to_owned())
    };
    let (mut o1, ours_bulk) = spawn_ours(bulk);
    let (mut o2, ours_echo) = spawn_ours(echo);
    let ws_port = |p: u16| p.to_string();
    let (p1, p2) = (nuage_e2e::free_port(), nuage_e2e::free_port());
    let spawn_ws = |listen: u16, target: std::net::SocketAddr| {
        std::process::Command::new("websockify")
            .args([
                &format!("127.0.0.1:{}", ws_port(listen)),
                &target.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("websockify (apt install websockify)")
    };
    let mut w1 = spawn_ws(p1, bulk);
    let mut w2 = spawn_ws(p2, echo);
    let (wsk_bulk, wsk_echo) = (
        format!("ws://127.0.0.1:{p1}/"),
        format!("ws://127.0.0.1:{p2}/"),
    );

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..3 {
        ours.push(ws_drain(&ours_bulk, total).await);
        theirs.push(ws_drain(&wsk_bulk, total).await);
    }
    let (o, t) = (percentile(&mut ours, 0.5), percentile(&mut theirs, 0.5));
    // Direct TCP round trips to the echo, the baseline for "added latency".
    let mut direct = Vec::new();
    let mut s = tokio::net::TcpStream::connect(echo).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..2050 {
        let t0 = Instant::now();
        s.write_all(&[7u8; 64]).await.unwrap();
        s.read_exact(&mut buf).await.unwrap();
        if i >= 50 {
            direct.push(t0.elapsed());
        }
    }
    let mut ours_rt = ws_round_trips(&ours_echo, 2000).await;
    let mut theirs_rt = ws_round_trips(&wsk_echo, 2000).await;
    for c in [&mut w1, &mut w2, &mut o1, &mut o2] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let mbps = |d: Duration| total as f64 / (1 << 20) as f64 / d.as_secs_f64();
    println!("| loopback, 512 MiB then 2,000 round trips of 64 bytes | nuaged's relay | websockify 0.10 |");
    println!("|---|---|---|");
    println!(
        "| throughput (median of 3) | {:.0} MiB/s | {:.0} MiB/s |",
        mbps(o),
        mbps(t)
    );
    println!(
        "| round trip p50 / p99 (direct TCP: {}) | {} | {} |",
        p50_p99(&mut direct),
        p50_p99(&mut ours_rt),
        p50_p99(&mut theirs_rt)
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

/// `nuaged` on libvirt's simulated host (16 CPUs, 3 GiB) with room for thousands of servers.
const SIMULATED_ARGS: &[&str] = &[
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
];

/// The release `nuaged` on the simulated host in a temp data dir holding a 1 MiB raw image in
/// its import dir; returns the process, its URL and the dir.
fn spawn_simulated(prefix: &str) -> (std::process::Child, String, tempfile::TempDir) {
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
async fn fill_with_servers(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    import: &Path,
    n: u32,
) -> Duration {
    let admin_id = my_id(http, url, token).await;
    call(
        http.patch(format!("{url}/api/v1/users/{admin_id}")),
        token,
        json!({"quota": {"vcpus": n, "memory_mib": 256 * n, "disk_gib": n, "vms": n, "snapshots": 0}}),
    )
    .await;
    let r = call(
        http.post(format!("{url}/api/v1/images")),
        token,
        json!({"name": "tiny", "path": import.join("tiny.raw").to_str().unwrap()}),
    )
    .await;
    let image = r["id"].as_str().unwrap().to_owned();
    let t = Instant::now();
    for i in 0..n {
        let r = http
            .post(format!("{url}/api/v1/vms"))
            .bearer_auth(token)
            .json(&json!({"name": format!("s{i}"), "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    t.elapsed()
}

/// The release `nuaged` binary's resident memory, idle and holding 1,000 servers.
async fn bench_memory() {
    let (mut child, url, dir) = spawn_simulated("nuage-bench-mem-");
    let import = dir.path().join("data/import");
    let http = reqwest::Client::new();
    let token = login(&http, &url).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(child.id());
    let created = fill_with_servers(&http, &url, &token, &import, 1000).await;
    for _ in 0..20 {
        http.get(format!("{url}/api/v1/vms"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let loaded = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    println!("| nuaged (release) | idle | with 1,000 servers (created through the API in {:.1} s, listed 20 times) |", created.as_secs_f64());
    println!("|---|---|---|");
    println!(
        "| resident memory (VmRSS) | {:.1} MiB | {:.1} MiB |",
        idle as f64 / 1024.0,
        loaded as f64 / 1024.0
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let uri = args
        .iter()
        .position(|a| a == "--uri")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "test:///default".into());
    match args.get(1).map(String::as_str) {
        Some("list") => bench_list().await,
        Some("create") => bench_create(&uri).await,
        Some("backup") => bench_backup(&uri).await,
        Some("decode") => bench_decode(),
        Some("decode-browser") => bench_decode_browser().await,
        Some("relay") => bench_relay().await,
        Some("relay-serve") => {
            let target = args[2].parse().expect("relay-serve ADDR");
            println!("{}", our_relay(target).await);
            std::future::pending::<()>().await
        }
        Some("memory") => bench_memory().await,
        Some("metrics") => bench_metrics().await,
        Some("idle") => bench_idle().await,
        Some("console") => bench_console().await,
        Some("keys") => bench_keys().await,
        Some("abuse") => abuse::bench_abuse().await,
        _ => eprintln!(
            "usage: nuage-bench <list|create|backup|decode|decode-browser|relay|memory|metrics|idle|console|keys|abuse> [--uri URI]"
        ),
    }
}

/// One metrics cycle over 1,000 running servers on `test:///default` (one bulk stats call, rates,
/// history, events), beside polling the same domains one call each (what a panel without the
/// bulk call does) and `virsh domstats`.
async fn bench_metrics() {
    let n = 1_000usize;
    let (app, _url, dir) = serve("test:///default", None).await;
    let owner = app
        .db
        .call(|c| {
            Ok(
                c.query_row("SELECT id FROM users WHERE username = 'admin'", [], |r| {
                    r.get::<_, String>(0)
                })?,
            )
        })
        .await
        .unwrap();
    let ids = insert_servers(&app, &owner, n).await;
    // The same running domains in the daemon's simulated libvirt (shared within this process).
    let names: Vec<String> = ids.iter().map(|id| format!("nuage-{id}")).collect();
    let defined = names.clone();
    tokio::task::spawn_blocking(move || {
        let conn = virt::connect::Connect::open(Some("test:///default")).unwrap();
        for name in &defined {
            let xml = format!(
                "<domain type='test'><name>{name}</name><memory>262144</memory><vcpu>1</vcpu>\
                 <os><type>hvm</type></os></domain>"
            );
            conn.define_domain_xml(&xml).unwrap().create().unwrap();
        }
    })
    .await
    .unwrap();

    let mut ours = Vec::new();
    for i in 0..60 {
        let t = Instant::now();
        let sampled = app.sample_metrics().await.unwrap();
        if i >= 10 {
            ours.push(t.elapsed());
        }
        if i > 0 {
            assert_eq!(sampled, n, "every server sampled");
        }
    }
    let polled = tokio::task::spawn_blocking(move || {
        let conn = virt::connect::Connect::open(Some("test:///default")).unwrap();
        let mut samples = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            for name in &names {
                let dom = conn.lookup_domain_by_name(name).unwrap();
                let info = dom.info().unwrap();
                std::hint::black_box(info.cpu_time);
            }
            samples.push(t.elapsed());
        }
        samples
    })
    .await
    .unwrap();
    let mut polled = polled;
    // virsh runs in another process, so it gets its own simulated host with the same domains.
    let node = test_node_file(
        dir.path(),
        &ids.iter()
            .map(|id| format!("nuage-{id}"))
            .collect::<Vec<_>>(),
    );
    let uri = format!("test://{}", node.display());
    let mut virsh = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let out = Command::new("virsh")
            .args([
                "-c",
                &uri,
                "domstats",
                "--cpu-total",
                "--balloon",
                "--interface",
                "--block",
            ])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        virsh.push(t.elapsed());
        assert!(out.status.success());
    }
    println!("| 1,000 running servers, `test:///default` | p50 / p99 |");
    println!("|---|---|");
    println!(
        "| nuaged metrics cycle (bulk stats call, rates, history, events) | {} |",
        p50_p99(&mut ours)
    );
    println!(
        "| one `virDomainGetInfo` per server, in-process | {} |",
        p50_p99(&mut polled)
    );
    println!(
        "| `virsh domstats` (all groups nuaged reads) | {} |",
        p50_p99(&mut virsh)
    );
    drop(app);
}

/// CPU time of a process (user + system), in clock ticks, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// The release `nuaged`'s CPU use while idle with 100 servers (metrics sampled every 10 s, the
/// default), over a minute.
async fn bench_idle() {
    let (mut child, url, dir) = spawn_simulated("nuage-bench-idle-");
    let import = dir.path().join("data/import");
    let http = reqwest::Client::new();
    let token = login(&http, &url).await;
    fill_with_servers(&http, &url, &token, &import, 100).await;
    // Settle, then measure a minute of doing nothing but sampling.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let (t0, c0) = (Instant::now(), cpu_ticks(child.id()));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (secs, used) = (t0.elapsed().as_secs_f64(), cpu_ticks(child.id()) - c0);
    let _ = child.kill();
    let _ = child.wait();
    println!("| nuaged (release), 100 running servers on `test:///default`, metrics every 10 s | CPU over {secs:.0} s idle |");
    println!("|---|---|");
    println!(
        "| user + system time | {:.2} s = {:.3}% of one core |",
        used as f64 / ticks_per_s,
        used as f64 / ticks_per_s / secs * 100.0
    );
}

fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// The web console in headless Chromium on loopback, against nuaged on `qemu:///system` with the
/// test guest: navigation to an interactive sign-in form, and state changes made in libvirt
/// behind Nuage's back (suspend, resume, destroy) to the list showing them.
async fn bench_console() {
    use nuage_e2e::fantoccini::Locator;
    let (daemon, admin, image) = nuage_e2e::Daemon::with_guest_image(&[]).await;
    let (status, vm) = admin
        .post(
            "/api/v1/vms",
            json!({"name": "bench", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1}),
        )
        .await;
    assert_eq!(status, 201, "{vm}");
    let id = vm["id"].as_str().unwrap().to_owned();
    let browser = nuage_e2e::Browser::start().await;
    let c = &browser.client;

    // 1. Navigation start to the sign-in form on screen (the page marks that moment).
    let mark = "const m = performance.getEntriesByName('nuage-login-ready'); \
                return m.length ? m[0].startTime : null;";
    let mut loads = Vec::new();
    for _ in 0..11 {
        c.goto("about:blank").await.unwrap();
        c.goto(&daemon.url("/")).await.unwrap();
        let t = Instant::now();
        let ms = loop {
            if let Some(ms) = c.execute(mark, vec![]).await.unwrap().as_f64() {
                break ms;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "no sign-in form");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        loads.push(Duration::from_secs_f64(ms / 1000.0));
    }
    let cold = loads.remove(0);

    // 2. libvirt changes a server's state; the list (signed in) shows it.
    browser
        .sign_in(&daemon, "admin", nuage_e2e::ADMIN_PASSWORD)
        .await;
    let row = "[data-server=bench]";
    let wait_row = |want: &'static str| async move {
        let t = Instant::now();
        loop {
            if let Ok(e) = c.find(Locator::Css(row)).await {
                if e.text().await.unwrap_or_default().contains(want) {
                    return;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{row} never showed {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // The page records when the row first shows `want` (clock: the same machine's epoch ms).
    let watch = |want: &str| {
        format!(
            "window.__at = null; const box = document.getElementById('servers'); \
             new MutationObserver(() => {{ const r = document.querySelector('[data-server=bench]'); \
               if (window.__at === null && r && r.textContent.includes('{want}')) \
                 window.__at = performance.timeOrigin + performance.now(); }}) \
             .observe(box, {{subtree: true, childList: true, characterData: true, attributes: true}}); \
             return true;"
        )
    };
    let name = format!("nuage-{id}");
    // A libvirt call behind Nuage's back; returns (epoch ms before, after).
    let behind = |what: &'static str| {
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            let conn = virt::connect::Connect::open(Some("qemu:///system")).unwrap();
            let dom = conn.lookup_domain_by_name(&name).unwrap();
            let before = epoch_ms();
            match what {
                "suspend" => dom.suspend().unwrap(),
                "resume" => dom.resume().unwrap(),
                _ => dom.destroy().unwrap(),
            };
            (before, epoch_ms())
        })
    };
    let seen = || async {
        let t = Instant::now();
        loop {
            if let Some(at) = c
                .execute("return window.__at;", vec![])
                .await
                .unwrap()
                .as_f64()
            {
                return at;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the list never changed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (mut changes, mut destroys, mut destroy_calls) = (Vec::new(), Vec::new(), Vec::new());
    wait_row("running").await;
    for _ in 0..10 {
        for (call, want) in [("suspend", "paused"), ("resume", "running")] {
            c.execute(&watch(want), vec![]).await.unwrap();
            let (before, _) = behind(call).await.unwrap();
            let at = seen().await;
            changes.push(Duration::from_secs_f64((at - before).max(0.0) / 1000.0));
        }
    }
    for _ in 0..3 {
        wait_row("running").await;
        c.execute(&watch("stopped"), vec![]).await.unwrap();
        let (before, after) = behind("destroy").await.unwrap();
        let at = seen().await;
        destroys.push(Duration::from_secs_f64((at - after).max(0.0) / 1000.0));
        destroy_calls.push(Duration::from_secs_f64((after - before) / 1000.0));
        let (status, body) = admin
            .post(&format!("/api/v1/vms/{id}/start"), json!({}))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    browser.close().await;
    println!("| web console in headless Chromium, loopback | figure |");
    println!("|---|---|");
    println!(
        "| navigation to an interactive sign-in form, first (cold cache) | {} |",
        ms(cold)
    );
    println!(
        "| the same, next 10 loads, p50 / p99 | {} |",
        p50_p99(&mut loads)
    );
    println!(
        "| suspend or resume in libvirt (behind nuaged) to the list showing it, 20 times, p50 / p99 | {} |",
        p50_p99(&mut changes)
    );
    println!(
        "| destroy in libvirt: the call itself, 3 times, p50 / p99 | {} |",
        p50_p99(&mut destroy_calls)
    );
    println!(
        "| destroy in libvirt: from the call's return to the list showing `stopped`, p50 / p99 | {} |",
        p50_p99(&mut destroys)
    );
}
