//! `nuage-bench abuse`: the release daemon under the attacks the hardening issue names, each
//! figure printed beside its goal: peak memory during a burst of 200 concurrent wrong sign-ins,
//! the guesses it let through, `/healthz` latency under 1,000 hostile connections (beside the
//! same with none), and what 1,000 anonymous requests with long paths add to the database.

use std::time::{Duration, Instant};

use crate::support::{spawn_simulated, PASSWORD};

/// p50 and p99 of `n` sequential `GET /healthz`, ms.
async fn healthz_latency(http: &reqwest::Client, url: &str, n: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = http.get(format!("{url}/healthz")).send().await.unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[n / 2], times[(n * 99 / 100).min(n - 1)])
}

fn db_bytes(dir: &std::path::Path) -> u64 {
    ["nuage.db", "nuage.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join("data").join(f)).ok())
        .map(|m| m.len())
        .sum()
}

pub async fn bench_abuse() {
    nuage_daemon::raise_open_files_limit();
    let (mut child, url, dir) = spawn_simulated("nuage-bench-abuse-");
    let pid = child.id();
    let http = nuage_e2e::http_client();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = nuage_e2e::proc_status_kib(pid, "VmRSS").unwrap();

    // 1. 200 concurrent wrong passwords for admin.
    let burst = (0..200).map(|i| {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            http.post(format!("{url}/api/v1/auth/login"))
                .json(&serde_json::json!({"username": "admin", "password": format!("guess-{i}")}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        })
    });
    let mut statuses = Vec::new();
    for b in burst.collect::<Vec<_>>() {
        statuses.push(b.await.unwrap());
    }
    let accepted = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    let peak = nuage_e2e::proc_status_kib(pid, "VmHWM").unwrap();
    // The owner, from an address that never failed, still signs in.
    let owner = reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let owner_in = owner
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status();

    // 2. /healthz with no hostile connection, then under 1,000 (slow bodies, half headers).
    let (calm50, calm99) = healthz_latency(&http, &url, 200).await;
    let addr = url.trim_start_matches("http://").to_owned();
    let hostile = nuage_e2e::hostile_connections(&addr, 1000).await;
    let (busy50, busy99) = healthz_latency(&http, &url, 200).await;
    drop(hostile);

    // 3. 1,000 anonymous POSTs with 16 KiB paths (to real routes, to none, with forged tokens).
    let before = db_bytes(dir.path());
    let long = "x".repeat(16 * 1024);
    for i in 0..1000 {
        let path = if i % 2 == 0 {
            format!("{url}/api/v1/vms/{long}/stop")
        } else {
            format!("{url}/api/v1/{long}")
        };
        let mut req = http.post(path).body("{}");
        if i % 3 == 0 {
            req = req.bearer_auth("forged.token.value");
        }
        req.send().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let growth = db_bytes(dir.path()).saturating_sub(before);

    let _ = child.kill();
    let _ = child.wait();
    println!("| nuaged (release), under attack | measured | goal |");
    println!("|---|---|---|");
    println!(
        "| peak RSS during 200 concurrent wrong sign-ins | {:.1} MiB (before: {:.1} MiB) | under 150 MiB |",
        peak as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    println!(
        "| guesses checked of the burst (401) / refused at once (429) | {accepted} / {refused} | the limit, 5 |"
    );
    println!("| the owner, from an address that never failed, signs in | {owner_in} | 200 |");
    println!("| /healthz p50 / p99, no hostile connection | {calm50:.2} / {calm99:.2} ms | |");
    println!(
        "| /healthz p50 / p99, under 1,000 hostile connections | {busy50:.2} / {busy99:.2} ms | p99 under 50 ms |"
    );
    println!(
        "| database growth per 1,000 anonymous long-path requests | {growth} bytes | under 1 KiB |"
    );
}
