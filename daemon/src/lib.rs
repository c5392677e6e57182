//! `nuaged`, the Nuage host daemon, as a library: the binary parses settings and calls [`serve`];
//! tests build an [`app::App`] and drive [`http::router`] or a real server on port 0.
//!
//! Layers, each knowing only the ones below it:
//! `http` (axum) → `app` (meaning, authorisation) → `db` (SQLite) / `hypervisor` (libvirt).

pub mod app;
pub mod archive;
pub mod cidr;
pub mod config;
pub mod db;
pub mod failpoints;
pub mod http;
pub mod hypervisor;
pub mod storage;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

/// Serves the daemon on `listener` (over `tls` when given) until `shutdown` resolves, then
/// finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Arc<app::App>,
    tls: Option<Arc<http::tls::Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    app.start_background();
    let limits = http::serve::Limits {
        max_connections: app.settings.host.max_connections,
        trusted_proxies: app.settings.trusted_proxies.clone(),
        tls,
    };
    let router = http::router(app);
    http::serve::run(listener, router, limits, shutdown).await
}

/// Raises the soft limit on open files to the hard limit (often 1024 → 524288): every client
/// connection, console and disk takes a descriptor, and `--max-connections` needs room beyond
/// them. Returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            return getrlimit(Resource::Nofile).current;
        }
    }
    limit.current
}
