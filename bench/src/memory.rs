//! `memory`: the release daemon's resident memory, idle and with 1,000 servers.

use std::time::Duration;

use crate::support::{admin, fill_with_servers, get_vms_raw, rss_kib, spawn_simulated};

/// The release `nuaged` binary's resident memory, idle and holding 1,000 servers.
pub(crate) async fn bench_memory() {
    let (mut child, url, dir) = spawn_simulated("nuage-bench-mem-");
    let import = dir.path().join("data/import");
    let http = nuage_e2e::http_client();
    let admin = admin(&url).await;
    let token = admin.token().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(child.id());
    let created = fill_with_servers(&admin, &import, 1000).await;
    for _ in 0..20 {
        get_vms_raw(&http, &url, &token).await;
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
