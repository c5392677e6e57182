//! The HTTP surface: routes, extractors, error responses and the web console's files. Handlers only
//! extract, call the app layer, and return.
//!
//! Architecture invariant: no SQL and no libvirt here; every decision is the app layer's.

mod audit;
pub mod error;
mod events;
pub mod extract;

use std::path::Path as FsPath;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use nuage_shared::{
    ApiToken, CreateToken, CreateUser, CreateVm, Health, HostInfo, Image, ImportImage,
    LoginRequest, LoginResponse, Me, NewToken, UpdateUser, UpdateVm, UserDetail, Vm,
};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::app::vms::VmAction;
use crate::app::{Actor, App};
use error::ApiError;
use extract::{ApiJson, ClientAddr};

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
        .route("/me", get(me))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(delete_token))
        .route("/users", get(list_users).post(create_user))
        .route(
            "/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/images", get(list_images).post(import_image))
        .route("/images/{id}", delete(delete_image))
        .route("/vms", get(list_vms).post(create_vm))
        .route("/vms/{id}", get(get_vm).patch(update_vm).delete(delete_vm))
        .route("/vms/{id}/{action}", post(vm_action))
        .route("/events", get(events::events))
        .route("/audit", get(audit::audit_log))
        .fallback(|| async { ApiError::NoRoute });
    let router = Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            audit::record,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT));
    let router = match &app.settings.web_dir {
        Some(dir) => router.fallback_service(console_files(dir)),
        None => router.fallback(no_console),
    };
    // The span names the path only: query strings may carry tokens (WebSockets) and must not
    // reach the log.
    let trace = TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
        tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
    });
    router.layer(trace).with_state(app)
}

/// The built console; any path that is not a file is a client-side route and gets `index.html`.
fn console_files(dir: &FsPath) -> ServeDir<ServeFile> {
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
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(app.login(req, client).await?))
}

async fn logout(State(app): State<AppState>, actor: Actor) -> ApiResult<StatusCode> {
    app.logout(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn host(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<HostInfo>> {
    Ok(Json(app.host_info(&actor).await?))
}

async fn me(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Me>> {
    Ok(Json(app.me(&actor).await?))
}

async fn list_users(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<UserDetail>>> {
    Ok(Json(app.list_users(&actor).await?))
}

async fn create_user(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserDetail>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.create_user(&actor, req).await?),
    ))
}

async fn get_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<UserDetail>> {
    Ok(Json(app.get_user(&actor, &id).await?))
}

async fn update_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> ApiResult<Json<UserDetail>> {
    Ok(Json(app.update_user(&actor, &id, req).await?))
}

async fn delete_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_user(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_images(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<Image>>> {
    Ok(Json(app.list_images(&actor).await?))
}

async fn import_image(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<ImportImage>,
) -> ApiResult<(StatusCode, Json<Image>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.import_image(&actor, req).await?),
    ))
}

async fn delete_image(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_image(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize)]
struct ListVmsQuery {
    #[serde(default)]
    all: bool,
}

async fn list_vms(
    State(app): State<AppState>,
    actor: Actor,
    query: Result<Query<ListVmsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<Vm>>> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(app.list_vms(&actor, q.all).await?))
}

async fn create_vm(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreateVm>,
) -> ApiResult<(StatusCode, Json<Vm>)> {
    Ok((StatusCode::CREATED, Json(app.create_vm(&actor, req).await?)))
}

async fn get_vm(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vm>> {
    Ok(Json(app.get_vm(&actor, &id).await?))
}

async fn update_vm(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateVm>,
) -> ApiResult<Json<Vm>> {
    Ok(Json(app.update_vm(&actor, &id, req).await?))
}

async fn delete_vm(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_vm(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn vm_action(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Vm>)> {
    let action = VmAction::parse(&action).ok_or(ApiError::NoRoute)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(app.vm_action(&actor, &id, action).await?),
    ))
}

async fn list_tokens(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(app.list_tokens(&actor).await?))
}

async fn create_token(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.create_token(&actor, req).await?),
    ))
}

async fn delete_token(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_token(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
