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
use std::net::{IpAddr, SocketAddr};
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

use crate::cidr::unmapped;

/// Time a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause allowed inside a request body.
pub const BODY_IDLE: Duration = Duration::from_secs(30);
/// How long sent data may stay unacknowledged before the kernel drops the connection.
pub const SEND_STALL: Duration = Duration::from_secs(60);

/// What the listener enforces.
#[derive(Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// HTTPS, when the settings ask for it; the listener never falls back to plain HTTP.
    pub tls: Option<Arc<super::tls::Tls>>,
}

/// The client of a request: the peer, or for a request from a trusted proxy the address that
/// proxy (and any trusted proxy before it) says it came from: walking `X-Forwarded-For` from the
/// right, the first address that is not itself a trusted proxy (those left of it are the
/// client's own say); when there is no `X-Forwarded-For`, the same walk over the `for=` of
/// `Forwarded` (RFC 7239). A proxy must therefore set (or overwrite) `X-Forwarded-For`.
pub fn client_of(
    peer: SocketAddr,
    headers: &hyper::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> SocketAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&unmapped(ip)));
    if !is_trusted(peer.ip()) {
        return peer;
    }
    let entries = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|e| e.trim().to_owned())
            .collect()
    };
    let xff = entries("x-forwarded-for");
    let chain: Vec<Option<IpAddr>> = if xff.is_empty() {
        entries("forwarded")
            .iter()
            .map(|e| forwarded_for(e))
            .collect()
    } else {
        xff.iter().map(|e| e.parse().ok()).collect()
    };
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if is_trusted(*ip) => continue,
            Some(ip) => return SocketAddr::new(unmapped(*ip), 0),
            // Garbage or an obfuscated name: nothing trustworthy beyond it.
            None => return peer,
        }
    }
    peer
}

/// The address of one `Forwarded` element's `for=` (`for=192.0.2.60`,
/// `for="[2001:db8::17]:4711"`); `None` for an obfuscated or unknown one.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| value.trim())
    })?;
    let value = value.trim_matches('"');
    if let Some(v6) = value.strip_prefix('[') {
        return v6.split(']').next()?.parse().ok();
    }
    let host = value.split(':').next()?;
    host.parse().ok()
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let trusted: Arc<[ipnet::IpNet]> = limits.trusted_proxies.into();
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
        let trusted = trusted.clone();
        let service = router
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                let client = client_of(peer, req.headers(), &trusted);
                req.extensions_mut().insert(ConnectInfo(client));
                req.map(axum::body::Body::new)
            });
        let mut stop = stop_rx.clone();
        let done = done_tx.clone();
        let tls = limits.tls.as_ref().map(|t| t.acceptor());
        tokio::spawn(async move {
            let _permit = permit;
            let _done = done;
            // A client has the header timeout to send its first byte too (hyper reads it to
            // tell HTTP/1 from HTTP/2 with no timeout of its own), and the TLS handshake.
            let mut first = [0u8; 1];
            match tokio::time::timeout(HEADER_TIMEOUT, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            match tls {
                None => serve_one(stream, peer, service, &mut stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_one(stream, peer, service, &mut stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(done_tx);
    // Every connection task holds a sender: this returns once they have all finished.
    let _ = done_rx.recv().await;
    Ok(())
}

async fn serve_one<S, IO>(
    stream: IO,
    peer: SocketAddr,
    service: S,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) where
    S: Service<hyper::Request<Incoming>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder
        .http2()
        .enable_connect_protocol()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stop.changed() => {
            // Shutting down: finish what is in flight, then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_proxy_names_the_client_and_then_by_its_own_entry() {
        let proxy: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mut h = hyper::HeaderMap::new();
        h.insert("x-forwarded-for", "10.9.9.9, 203.0.113.7".parse().unwrap());
        let trusted = ["127.0.0.0/8".parse().unwrap()];
        // The right-most entry is what the proxy saw; the ones before are the client's claim.
        assert_eq!(
            client_of(proxy, &h, &trusted).ip().to_string(),
            "203.0.113.7"
        );
        // Anyone else's header is ignored.
        let stranger: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        assert_eq!(client_of(stranger, &h, &trusted), stranger);
        assert_eq!(client_of(proxy, &h, &[]), proxy);
        // A trusted proxy that sends none (or garbage) leaves the peer.
        let empty = hyper::HeaderMap::new();
        assert_eq!(client_of(proxy, &empty, &trusted), proxy);
        // RFC 7239, when the proxy sends no X-Forwarded-For: its own (last) element counts.
        let mut f = hyper::HeaderMap::new();
        f.insert(
            "forwarded",
            "for=10.9.9.9, for=\"[2001:db8:cafe::17]:4711\";proto=https"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            client_of(proxy, &f, &trusted).ip().to_string(),
            "2001:db8:cafe::17"
        );
        f.insert(
            "forwarded",
            "for=198.51.100.4:8000;by=10.0.0.1".parse().unwrap(),
        );
        assert_eq!(
            client_of(proxy, &f, &trusted).ip().to_string(),
            "198.51.100.4"
        );
        f.insert("forwarded", "for=_hidden".parse().unwrap());
        assert_eq!(client_of(proxy, &f, &trusted), proxy);
        // A chain of trusted proxies: the first untrusted hop from the right is the client.
        let mut chain = hyper::HeaderMap::new();
        chain.insert(
            "x-forwarded-for",
            "10.9.9.9, 198.51.100.2, 127.0.0.5".parse().unwrap(),
        );
        assert_eq!(
            client_of(proxy, &chain, &trusted).ip().to_string(),
            "198.51.100.2"
        );
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4000".parse().unwrap();
        assert_eq!(
            client_of(mapped, &chain, &trusted).ip().to_string(),
            "198.51.100.2",
            "a v4-mapped proxy is the v4 proxy"
        );
        // X-Forwarded-For wins when both are there (what nginx and Caddy set).
        f.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert_eq!(
            client_of(proxy, &f, &trusted).ip().to_string(),
            "203.0.113.9"
        );
    }
}
