//! The HTTP surface: routes, extractors, error responses and the web console's files. Handlers only
//! extract, call the app layer, and return.
//!
//! Architecture invariant: no SQL and no libvirt here; every decision is the app layer's.

pub mod error;
pub mod extract;

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use nuage_shared::{Health, HostInfo, LoginRequest, LoginResponse};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::app::{Actor, App};
use error::ApiError;
use extract::ApiJson;

type AppState = Arc<App>;
type ApiResult<T> = Result<T, ApiError>;

/// Bodies above this are refused before they are read (JSON requests are small).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The whole router: API, health, and the web console at `/`.
pub fn router(app: AppState) -> Router {
    let api = Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/host", get(host))
        .fallback(|| async { ApiError::NoRoute });
    let router = Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT));
    let router = match &app.settings.web_dir {
        Some(dir) => router.fallback_service(console_files(dir)),
        None => router.fallback(no_console),
    };
    router.layer(TraceLayer::new_for_http()).with_state(app)
}

/// The built console; any path that is not a file is a client-side route and gets `index.html`.
fn console_files(dir: &Path) -> ServeDir<ServeFile> {
    ServeDir::new(dir)
        .precompressed_gzip()
        .fallback(ServeFile::new(dir.join("index.html")))
}

async fn no_console() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(
            "<!doctype html><title>Nuage</title><h1>Nuage</h1><p>The web console is not built. \
             Build it with <code>trunk build --release</code> at the repository root, or point \
             <code>--web-dir</code> at a built console. The API is at <code>/api/v1</code>.</p>",
        ),
    )
        .into_response()
}

async fn healthz(State(app): State<AppState>) -> (StatusCode, Json<Health>) {
    let health = app.health().await;
    let status = if health.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

async fn login(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(app.login(req).await?))
}

async fn logout(State(app): State<AppState>, actor: Actor) -> ApiResult<StatusCode> {
    app.logout(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn host(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<HostInfo>> {
    Ok(Json(app.host_info(&actor).await?))
}
