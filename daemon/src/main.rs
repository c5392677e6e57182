//! `nuaged`: parses the settings, prepares the host, serves until SIGTERM or SIGINT.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use nuage_daemon::config::{Cli, Settings};
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Argon2 works in 19 MiB of memory per password check. glibc's default, dynamic mmap threshold
    // rises past that after the first free, after which each thread's arena keeps those 19 MiB for
    // good (RSS 28 -> 68 MiB after two sign-ins). A fixed threshold hands large blocks back at
    // once. (`bench memory` measures this.)
    // SAFETY: mallopt only tunes the allocator; it is called before any other thread exists.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("NUAGE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Files the daemon creates are its own: disks, seeds, the database and its journal (which
    // holds password hashes) get no read or write bits for others; folders keep the traverse
    // bit QEMU's user needs.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o066));
    let open_files = nuage_daemon::raise_open_files_limit();
    tracing::debug!(?open_files, "open files limit");
    let settings = match Settings::resolve(cli) {
        Ok(s) => s,
        Err(e) => return refuse(&e),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return refuse(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(run(settings))
}

fn refuse(message: &str) -> ExitCode {
    eprintln!("nuaged: {message}");
    ExitCode::from(2)
}

async fn run(settings: Settings) -> ExitCode {
    let listen = settings.listen;
    // Taken before the (possibly long) start, so that a certbot hook's SIGHUP then does not end
    // the process.
    let hangup = signal(SignalKind::hangup()).ok();
    let app = match tokio::task::spawn_blocking(move || nuage_daemon::app::start(settings)).await {
        Ok(Ok(app)) => Arc::new(app),
        Ok(Err(e)) => return refuse(&e.0),
        Err(e) => return refuse(&format!("start-up failed: {e}")),
    };
    // After the start, which made the data dir with its own modes.
    let tls = match nuage_daemon::http::tls::prepare(&app.settings) {
        Ok(tls) => tls.map(Arc::new),
        Err(e) => return refuse(&e),
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => return refuse(&format!("cannot listen on {listen}: {e}")),
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if app.settings.web_dir.is_none() {
        tracing::warn!("no built web console found; `/` explains how to build it");
    }
    let scheme = if let Some(tls) = &tls {
        println!("TLS certificate SHA-256 fingerprint: {}", tls.fingerprint());
        "https"
    } else {
        "http"
    };
    reload_on_hangup(hangup, tls.clone());
    // The harness and the run script read this line to find the port.
    println!("nuaged listening on {scheme}://{addr}");
    match nuage_daemon::serve(listener, app, tls, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => refuse(&format!("server failed: {e}")),
    }
}

/// `SIGHUP` re-reads the certificate and key (a renewal); without TLS it is ignored rather than
/// ending the process.
fn reload_on_hangup(
    hangup: Option<tokio::signal::unix::Signal>,
    tls: Option<Arc<nuage_daemon::http::tls::Tls>>,
) {
    let Some(mut hangup) = hangup else {
        return;
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match &tls {
                None => tracing::info!("SIGHUP: no TLS certificate to re-read"),
                Some(tls) => match tls.reload() {
                    Ok(fingerprint) => {
                        tracing::info!(%fingerprint, "SIGHUP: TLS certificate re-read");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: keeping the certificate in use");
                    }
                },
            }
        }
    });
}

async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process still dies on SIGTERM, just less gracefully.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
