//! The console relay: `POST /vms/{id}/console` hands out a ticket; `GET /vms/{id}/console/ws`
//! checks it *before* upgrading, then relays the guest's VNC (RFB) bytes both ways as binary
//! WebSocket frames, speaking the `binary` subprotocol that websockify and noVNC use. The guest's
//! VNC server listens on no TCP port: the socket comes from libvirt (virDomainOpenGraphicsFD).
//! With `--console-listen loopback` it also listens on 127.0.0.1, and the daemon connects there
//! when libvirt cannot hand a socket over (the hypervisor layer decides).

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use nuage_shared::{ConsoleTicket, ErrorBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::ApiError;
use super::{ApiResult, AppState};
use crate::app::console::SessionGuard;
use crate::app::revoke::CredentialWatch;
use crate::app::Actor;
use crate::db;
use crate::hypervisor::ConsoleStream;

/// With no byte either way for this long, the session ends.
const IDLE: Duration = Duration::from_secs(15 * 60);
/// The largest message a console client may send: RFB's client messages are a few bytes, but a
/// clipboard paste (ClientCutText) carries text.
const MAX_CLIENT_MESSAGE: usize = 256 * 1024;

/// A single-use ticket, valid 30 s, for this user and this server's screen.
#[utoipa::path(post, path = "/vms/{id}/console", tag = "servers", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 201, body = ConsoleTicket), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn console_ticket(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<ConsoleTicket>)> {
    let issued = app.console_ticket(&actor, &id).await?;
    let expires_at = db::rfc3339(time::OffsetDateTime::now_utc() + issued.expires_in);
    let url = format!(
        "{}/vms/{id}/console/ws?ticket={}",
        nuage_shared::API_BASE,
        issued.ticket
    );
    Ok((
        StatusCode::CREATED,
        Json(ConsoleTicket {
            ticket: issued.ticket,
            url,
            expires_at,
        }),
    ))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// The ticket from `POST /vms/{id}/console`.
    ticket: String,
}

/// The server's screen as a WebSocket of RFB bytes (binary frames, subprotocol `binary`).
/// The ticket is checked before the upgrade.
#[utoipa::path(get, path = "/vms/{id}/console/ws", tag = "servers", params(("id" = String, Path), WsQuery),
    responses((status = 101, description = "Switching to the RFB relay"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn console_ws(
    State(app): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<WsQuery>, axum::extract::rejection::QueryRejection>,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::from(crate::app::AppError::Unauthenticated(
            "A console ticket is needed.",
        ))
    })?;
    let listener = app.listen_for_revocations();
    let (stream, guard, actor) = app.console_open(&id, &q.ticket).await?;
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &app)
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE);
    let watch = app.watch(listener, &actor);
    let slot = app.socket_slot(&actor)?;
    let vnc = match stream {
        ConsoleStream::Fd(fd) => {
            let socket = std::os::unix::net::UnixStream::from(fd);
            socket
                .set_nonblocking(true)
                .map_err(|e| crate::app::AppError::internal("console socket", e))?;
            Vnc::Unix(
                tokio::net::UnixStream::from_std(socket)
                    .map_err(|e| crate::app::AppError::internal("console socket", e))?,
            )
        }
        ConsoleStream::Tcp { addr, password } => {
            let mut tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| crate::app::AppError::internal("console socket", e))?;
            // Logged in before the upgrade, so that a failure is an answer, not a closed socket.
            if let Some(p) = &password {
                super::vnc_login::login(&mut tcp, p)
                    .await
                    .map_err(|e| crate::app::AppError::internal("console login", e))?;
            }
            Vnc::Tcp(tcp, password.is_some())
        }
    };
    tracing::info!(vm = %id, via = vnc.via(), "console session opened");
    Ok(upgrade
        .protocols(["binary"])
        .on_upgrade(move |ws| async move {
            let _slot = slot;
            relay(ws, vnc, guard, watch).await
        })
        .into_response())
}

/// The guest's VNC server, through libvirt's socket pair or the loopback fallback (already
/// logged in when it asked for a password: the browser is then greeted by the relay).
enum Vnc {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream, bool),
}

impl Vnc {
    fn via(&self) -> &'static str {
        match self {
            Vnc::Unix(_) => "socket pair",
            Vnc::Tcp(..) => "loopback",
        }
    }
}

async fn relay(ws: WebSocket, vnc: Vnc, _slot: SessionGuard, mut watch: CredentialWatch) {
    // The session ends with the credential it was opened with (logout, revocation, expiry).
    let ended = async move { watch.ended().await };
    match vnc {
        Vnc::Unix(s) => pump(ws, s, ended).await,
        Vnc::Tcp(mut s, logged_in) => {
            let _ = s.set_nodelay(true);
            let mut ws = ws;
            if logged_in {
                match super::vnc_login::greet(&mut ws).await {
                    Ok(rest) if s.write_all(&rest).await.is_ok() => {}
                    Ok(_) => return,
                    Err(e) => {
                        tracing::info!(error = %e, "console opening failed");
                        return;
                    }
                }
            }
            pump(ws, s, ended).await
        }
    }
    tracing::info!("console session closed");
}

/// The most one read (so one WebSocket frame) carries.
const RELAY_CHUNK: usize = 256 * 1024;

/// Copies bytes both ways between a WebSocket (binary frames) and a byte stream until either
/// side closes, nothing moves for [`IDLE`], or `until` resolves. One direction waits while the
/// other is blocked, so a slow browser slows the guest's updates instead of filling memory.
/// Public for the relay benchmark, which pumps the same way to a plain TCP source.
pub async fn pump<S>(ws: WebSocket, stream: S, until: impl std::future::Future<Output = ()>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tokio::pin!(until);
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut vnc_rx, mut vnc_tx) = tokio::io::split(stream);
    // Read into a shared buffer and hand its filled part to the WebSocket without a copy.
    let mut buf = bytes::BytesMut::with_capacity(RELAY_CHUNK);
    loop {
        if buf.capacity() < RELAY_CHUNK / 4 {
            buf.reserve(RELAY_CHUNK);
        }
        tokio::select! {
            read = vnc_rx.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let frame = buf.split().freeze();
                    if ws_tx.send(Message::Binary(frame)).await.is_err() {
                        break;
                    }
                }
            },
            msg = ws_rx.next() => match msg {
                Some(Ok(Message::Binary(bytes))) => {
                    if vnc_tx.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                // noVNC sends binary; tolerate clients that send text frames of raw bytes.
                Some(Ok(Message::Text(text))) => {
                    if vnc_tx.write_all(text.as_bytes()).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            },
            () = &mut until => {
                let _ = ws_tx.send(Message::Close(Some(axum::extract::ws::CloseFrame {
                    code: 4001,
                    reason: "credential ended".into(),
                }))).await;
                break;
            }
            _ = tokio::time::sleep(IDLE) => {
                let _ = ws_tx.send(Message::Close(Some(axum::extract::ws::CloseFrame {
                    code: 4000,
                    reason: "idle for 15 minutes".into(),
                }))).await;
                break;
            }
        }
    }
    let _ = ws_tx.close().await;
}
