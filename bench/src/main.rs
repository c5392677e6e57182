//! `cargo run --release -p nuage-bench -- <benchmark> [--uri URI]` (the benchmarks: `main` below).
//!
//! Each benchmark prints Markdown rows with Nuage's figure beside its peer's, measured in the same
//! run on the same machine. These are measurements, not pass/fail tests.
//!
//! One module per benchmark; their pages and scripts for the browser are files in `bench/assets/`.

mod abuse;
mod backup;
mod console;
mod create;
mod decode;
mod idle;
mod keys;
mod list;
mod memory;
mod metrics;
mod relay;
mod signin;
mod support;

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
        Some("list") => list::bench_list().await,
        Some("create") => create::bench_create(&uri).await,
        Some("backup") => backup::bench_backup(&uri).await,
        Some("decode") => decode::bench_decode(),
        Some("decode-browser") => decode::bench_decode_browser().await,
        Some("relay") => relay::bench_relay().await,
        Some("relay-serve") => {
            let target = args[2].parse().expect("relay-serve ADDR");
            println!("{}", relay::our_relay(target).await);
            std::future::pending::<()>().await
        }
        Some("memory") => memory::bench_memory().await,
        Some("metrics") => metrics::bench_metrics().await,
        Some("idle") => idle::bench_idle().await,
        Some("console") => console::bench_console().await,
        Some("keys") => keys::bench_keys().await,
        Some("abuse") => abuse::bench_abuse().await,
        Some("signin") => signin::bench_signin().await,
        _ => eprintln!(
            "usage: nuage-bench <list|create|backup|decode|decode-browser|relay|memory|metrics|idle|console|keys|abuse|signin> [--uri URI]"
        ),
    }
}
