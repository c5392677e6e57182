//! `GET /api/v1/events`: a WebSocket of JSON messages about the caller's servers (state changes
//! from libvirt's own events, sizes, deletions). Authenticated before the upgrade; an admin may
//! ask for every server's events with `?all=true`.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use nuage_shared::Event;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::extract::ws_actor;
use crate::app::{Actor, App, OwnedEvent};

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct EventsQuery {
    /// The bearer token, for clients that cannot set headers on a WebSocket (browsers).
    token: Option<String>,
    /// Every tenant's events (admins only).
    #[serde(default)]
    all: bool,
}

/// A WebSocket of JSON `Event` messages about the caller's servers; authenticated before the
/// upgrade (bearer header or `token` query parameter).
#[utoipa::path(get, path = "/events", tag = "service", params(EventsQuery),
    responses((status = 101, description = "Switching to a WebSocket of Event messages", body = nuage_shared::Event),
              (status = 401, body = nuage_shared::ErrorBody), (status = 403, body = nuage_shared::ErrorBody)))]
pub async fn events(
    State(app): State<Arc<App>>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let actor = ws_actor(&app, &parts, q.token.as_deref()).await?;
    if q.all {
        actor.require_admin()?;
    }
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &app)
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let rx = app.events.subscribe();
    Ok(upgrade
        .on_upgrade(move |socket| relay(socket, rx, actor, q.all))
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
) {
    loop {
        tokio::select! {
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
