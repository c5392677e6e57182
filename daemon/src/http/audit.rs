//! The audit trail of the HTTP surface: every state-changing request (anything but GET, HEAD and
//! OPTIONS) to one of the API's routes is recorded with who made it, what it asked, from where,
//! and the status it got. Requests without a valid credential, and requests to no route, are
//! only counted (`app/audit.rs` says why). Sign-ins are recorded by the app itself (it knows
//! the username tried).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Query, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use nuage_shared::AuditEntry;

use super::error::ApiError;
use super::extract::bearer;
use crate::app::audit::AuditRecord;
use crate::app::{Actor, App};
use crate::db::audit::AuditFilter;

pub async fn record(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.uri().path() == "/api/v1/auth/login"
    {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    // Authenticated before the request runs: a logout revokes the very token it came with. The
    // handler's `Actor` extractor takes this one instead of checking the token a second time.
    let actor = match bearer(&parts) {
        Some(token) => app
            .authenticate(token, super::extract::client(&parts))
            .await
            .ok(),
        None => None,
    };
    if let Some(a) = &actor {
        parts.extensions.insert(a.clone());
    }
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let path = parts.uri.path().to_owned();
    let response;
    let action = match (&actor, route) {
        (Some(_), Some(route)) if route != super::CATCH_ALL => {
            let action = format!("{} {route}", parts.method);
            response = next.run(Request::from_parts(parts, body)).await;
            action
        }
        // No credential, or no such route: count it if refused, store nothing.
        _ => {
            let response = next.run(Request::from_parts(parts, body)).await;
            if !response.status().is_success() {
                app.count_anonymous_refusal();
            }
            return response;
        }
    };
    app.record_audit(AuditRecord {
        actor,
        username: None,
        action,
        path,
        client,
        status: response.status().as_u16(),
    })
    .await;
    response
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// A user id or a username.
    user: Option<String>,
    /// A server id.
    vm: Option<String>,
    /// RFC 3339: entries at or after this time.
    since: Option<String>,
    /// At most this many entries, newest first (default 100, at most 1000).
    #[serde(default)]
    limit: u32,
}

/// Who did what to which resource, when, from where, with what outcome (admins).
#[utoipa::path(get, path = "/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = [nuage_shared::AuditEntry]), (status = 400, body = nuage_shared::ErrorBody),
              (status = 401, body = nuage_shared::ErrorBody), (status = 403, body = nuage_shared::ErrorBody),
              (status = 422, body = nuage_shared::ErrorBody)))]
pub async fn audit_log(
    State(app): State<Arc<App>>,
    actor: Actor,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = AuditFilter {
        user: q.user,
        vm: q.vm,
        since: q.since,
        limit: q.limit,
    };
    Ok(Json(app.audit_log(&actor, filter).await?))
}
