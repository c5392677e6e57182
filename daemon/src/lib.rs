//! `nuaged`, the Nuage host daemon, as a library: the binary parses settings and calls [`serve`];
//! tests build an [`app::App`] and drive [`http::router`] or a real server on port 0.
//!
//! Layers, each knowing only the ones below it:
//! `http` (axum) → `app` (meaning, authorisation) → `db` (SQLite) / `hypervisor` (libvirt).

pub mod app;
pub mod archive;
pub mod config;
pub mod db;
pub mod http;
pub mod hypervisor;
pub mod storage;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

/// Serves the daemon on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Arc<app::App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    app.start_background();
    let router = http::router(app);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
