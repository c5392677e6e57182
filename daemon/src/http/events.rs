//! `GET /api/v1/events`: a WebSocket of JSON messages about the caller's servers (state changes
//! from libvirt's own events, sizes, deletions). Authenticated before the upgrade, by a bearer
//! header or a single-use ticket from `POST /events/ticket` (browsers cannot set headers, and a
//! login token in a URL ends up in proxies' logs); an admin may ask for every server's events
//! with `?all=true`. The socket closes when the credential it was opened with ends.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use nuage_shared::Event;
use tokio::sync::broadcast::error::RecvError;

use axum::http::StatusCode;
use axum::Json;
use nuage_shared::{ConsoleTicket, ErrorBody};

use super::error::ApiError;
use super::extract::bearer;
use crate::app::revoke::CredentialWatch;
use crate::app::{Actor, App, AppError, OwnedEvent};

/// Messages a client may send on `/events` (it needs to send none): anything larger ends it.
const MAX_CLIENT_MESSAGE: usize = 4096;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// A ticket from `POST /events/ticket`, for clients that cannot set headers (browsers).
    ticket: Option<String>,
    /// Every tenant's events (admins only).
    #[serde(default)]
    all: bool,
}

/// A single-use ticket, valid 30 s, that opens `/events` once as the caller.
#[utoipa::path(post, path = "/events/ticket", tag = "service", security(("bearer" = [])),
    responses((status = 201, body = ConsoleTicket), (status = 401, body = ErrorBody)))]
pub async fn events_ticket(
    State(app): State<Arc<App>>,
    actor: Actor,
) -> Result<(StatusCode, Json<ConsoleTicket>), ApiError> {
    let ticket = app.events_ticket(&actor);
    let expires_at =
        crate::db::rfc3339(time::OffsetDateTime::now_utc() + crate::app::tickets::TICKET_TTL);
    let url = format!("{}/events?ticket={ticket}", nuage_shared::API_BASE);
    Ok((
        StatusCode::CREATED,
        Json(ConsoleTicket {
            ticket,
            url,
            expires_at,
        }),
    ))
}

/// A WebSocket of JSON `Event` messages about the caller's servers; authenticated before the
/// upgrade (bearer header, or a `ticket` from `POST /events/ticket`).
#[utoipa::path(get, path = "/events", tag = "service", params(EventsQuery),
    responses((status = 101, description = "Switching to a WebSocket of Event messages", body = nuage_shared::Event),
              (status = 401, body = nuage_shared::ErrorBody), (status = 403, body = nuage_shared::ErrorBody)))]
pub async fn events(
    State(app): State<Arc<App>>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let listener = app.listen_for_revocations();
    let actor = match (bearer(&parts), q.ticket.as_deref()) {
        (Some(token), _) => {
            app.authenticate(token, super::extract::client(&parts))
                .await?
        }
        (None, Some(ticket)) if !ticket.is_empty() => app.events_open(ticket).await?,
        _ => {
            return Err(AppError::Unauthenticated(
                "Sign in first: this call needs a bearer token or an events ticket.",
            )
            .into())
        }
    };
    super::extract::admit(&actor, &parts)?;
    if q.all {
        actor.require_admin()?;
    }
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &app)
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE);
    let slot = app.socket_slot(&actor)?;
    let rx = app.events.subscribe();
    let watch = app.watch(listener, &actor);
    Ok(upgrade
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            relay(socket, rx, actor, q.all, watch).await
        })
        .into_response())
}

fn concerns(ev: &OwnedEvent, actor: &Actor, all: bool) -> bool {
    all || ev.owner_id == actor.user_id
}

async fn relay(
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<OwnedEvent>,
    actor: Actor,
    all: bool,
    mut watch: CredentialWatch,
) {
    loop {
        tokio::select! {
            () = watch.ended() => {
                // The credential ended (logout, revocation, expiry): so does the socket.
                let _ = socket.send(Message::Close(Some(axum::extract::ws::CloseFrame {
                    code: 4001,
                    reason: "credential ended".into(),
                }))).await;
                return;
            }
            ev = rx.recv() => match ev {
                Ok(ev) if concerns(&ev, &actor, all) => {
                    let Ok(text) = serde_json::to_string(&ev.event) else { continue };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // A slow reader missed events: tell it to reload rather than show stale states.
                Err(RecvError::Lagged(missed)) => {
                    let Ok(text) = serde_json::to_string(&Event::Lagged { missed }) else { continue };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                // The client says nothing we need; its close (or a broken socket) ends the relay.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
