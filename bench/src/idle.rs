//! `idle`: the release daemon's CPU use while idle with 100 servers.

use std::time::{Duration, Instant};

use crate::support::{admin, cpu_ticks, fill_with_servers, spawn_simulated};

/// The release `nuaged`'s CPU use while idle with 100 servers (metrics sampled every 10 s, the
/// default), over a minute.
pub(crate) async fn bench_idle() {
    let (mut child, url, dir) = spawn_simulated("nuage-bench-idle-");
    let import = dir.path().join("data/import");
    fill_with_servers(&admin(&url).await, &import, 100).await;
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
