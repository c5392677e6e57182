//! The listener loop: hyper serving the router on each accepted connection, with the limits a
//! server on the Internet needs and `axum::serve` does not offer:
//! - at most `--max-connections` connections at once (the next waits in the kernel's backlog);
//! - a client has [`HEADER_TIMEOUT`] to send a request's headers, and a request body may pause
//!   at most [`BODY_IDLE`] between two pieces (slow clients cannot hold connections forever);
//! - a connection whose peer stops acknowledging what we send (a download nobody reads) is
//!   dropped after [`SEND_STALL`] (`TCP_USER_TIMEOUT`), which ends the stream and its job;
//! - WebSockets (console, events) and streams have their own idle timeouts in their handlers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

/// Time a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause allowed inside a request body.
pub const BODY_IDLE: Duration = Duration::from_secs(30);
/// How long sent data may stay unacknowledged before the kernel drops the connection.
pub const SEND_STALL: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn run(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut stopping = stop_rx.clone();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            _ = stopping.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of descriptors and the like: wait a moment rather than spin.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopping.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let _ = rustix::net::sockopt::set_tcp_user_timeout(
            &stream,
            u32::try_from(SEND_STALL.as_millis()).unwrap_or(u32::MAX),
        );
        let service = router
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(axum::body::Body::new)
            });
        let mut stop = stop_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _done = done;
            serve_one(stream, peer, service, &mut stop).await;
        });
    }
    drop(done_tx);
    // Every connection task holds a sender: this returns once they have all finished.
    let _ = done_rx.recv().await;
    Ok(())
}

async fn serve_one<S>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    service: S,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) where
    S: Service<hyper::Request<Incoming>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder.http2().enable_connect_protocol();
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(conn);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                return;
            }
            _ = stop.changed() => conn.as_mut().graceful_shutdown(),
        }
    }
}
