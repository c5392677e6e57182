//! The HTTP surface: routes, extractors, error responses and the web console's files. Handlers only
//! extract, call the app layer, and return.
//!
//! Architecture invariant: no SQL and no libvirt here; every decision is the app layer's.

mod account;
mod audit;
mod backups;
mod console;
pub use console::pump;
pub mod error;
mod events;
pub mod extract;
mod identity;
mod passkeys;
mod prometheus;
pub mod serve;
mod servers;
pub mod tls;
mod vnc_login;

use std::path::Path as FsPath;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router};
use nuage_shared::{ErrorBody, Health, HostInfo};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{Actor, App};
use error::ApiError;

type AppState = Arc<App>;
type ApiResult<T> = Result<T, ApiError>;

/// The route that answers every unknown API path (a JSON 404, never the console).
const CATCH_ALL: &str = "/api/v1/{*rest}";

/// Bodies above this are refused before they are read (JSON requests are small).
pub const BODY_LIMIT: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Nuage", description = "The nuaged API: self-service VPS on KVM hosts."),
    modifiers(&BearerAuth),
    tags(
        (name = "identity", description = "Sign-in, the caller, API tokens"),
        (name = "admin", description = "Users, quotas, host, audit (administrators)"),
        (name = "images", description = "Disk images"),
        (name = "servers", description = "Virtual private servers"),
        (name = "backups", description = "Snapshots, backups, export/import, jobs"),
        (name = "service", description = "Health, events, this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or nuage_ API token")
                    .build(),
            ),
        );
    }
}

/// Every API route, each registered together with its OpenAPI description.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(identity::login))
        .routes(routes!(identity::logout))
        .routes(routes!(identity::me))
        .routes(routes!(account::verify))
        .routes(routes!(account::begin_totp, account::remove_totp))
        .routes(routes!(account::confirm_totp))
        .routes(routes!(account::list_sessions))
        .routes(routes!(account::end_session))
        .routes(routes!(account::sign_out_others))
        .routes(routes!(account::change_password))
        .routes(routes!(account::reset_totp))
        .routes(routes!(passkeys::begin_passkey))
        .routes(routes!(passkeys::list_passkeys, passkeys::add_passkey))
        .routes(routes!(passkeys::rename_passkey, passkeys::delete_passkey))
        .routes(routes!(passkeys::passkey_challenge))
        .routes(routes!(passkeys::passkey_login))
        .routes(routes!(identity::list_tokens, identity::create_token))
        .routes(routes!(identity::delete_token))
        .routes(routes!(identity::list_users, identity::create_user))
        .routes(routes!(
            identity::get_user,
            identity::update_user,
            identity::delete_user
        ))
        .routes(routes!(identity::list_user_tokens))
        .routes(routes!(identity::revoke_user_token))
        .routes(routes!(identity::sign_out_everywhere))
        .routes(routes!(host))
        .routes(routes!(audit::audit_log))
        .routes(routes!(servers::list_images, servers::import_image))
        .routes(routes!(servers::delete_image))
        .routes({
            // Uploads are streamed to disk: the only route without the JSON body limit.
            let (schemas, paths, method_router) = routes!(servers::upload_image);
            (
                schemas,
                paths,
                method_router.layer(axum::extract::DefaultBodyLimit::disable()),
            )
        })
        .routes(routes!(servers::list_vms, servers::create_vm))
        .routes(routes!(
            servers::get_vm,
            servers::update_vm,
            servers::delete_vm
        ))
        .routes(routes!(servers::vm_action))
        .routes(routes!(servers::vm_metrics))
        .routes(routes!(servers::set_vm_limits))
        .routes(routes!(servers::set_user_limits))
        .routes(routes!(prometheus::prometheus_v1))
        .routes(routes!(backups::list_snapshots, backups::create_snapshot))
        .routes(routes!(backups::revert_snapshot))
        .routes(routes!(backups::delete_snapshot))
        .routes(routes!(backups::start_backup))
        .routes(routes!(backups::list_backups))
        .routes(routes!(backups::get_backup, backups::delete_backup))
        .routes(routes!(backups::restore_backup))
        .routes(routes!(backups::export_vm))
        .routes({
            // Archives are streamed from the body: no JSON body limit here.
            let (schemas, paths, method_router) = routes!(backups::import_vm);
            (
                schemas,
                paths,
                method_router.layer(axum::extract::DefaultBodyLimit::disable()),
            )
        })
        .routes(routes!(
            backups::get_schedule,
            backups::set_schedule,
            backups::delete_schedule
        ))
        .routes(routes!(backups::list_jobs))
        .routes(routes!(backups::get_job))
        .routes(routes!(backups::cancel_job))
        .routes(routes!(console::console_ticket))
        .routes(routes!(console::console_ws))
        .routes(routes!(events::events_ticket))
        .routes(routes!(events::events))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of every endpoint (also served at `/api/v1/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(prometheus::prometheus))
        .nest("/api/v1", api_routes())
        .split_for_parts()
        .1
}

/// The whole router: API, health, and the web console at `/`.
pub fn router(app: AppState) -> Router {
    let (router, _) = OpenApiRouter::<AppState>::new()
        .routes(routes!(healthz))
        .routes(routes!(prometheus::prometheus))
        .nest("/api/v1", api_routes())
        .split_for_parts();
    let router = router
        // Unknown API paths are JSON 404s, never the console.
        .route(
            CATCH_ALL,
            axum::routing::any(|| async { ApiError::NoRoute }),
        )
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            audit::record,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        // A body may not pause longer than this between two pieces (slow-body clients).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            serve::BODY_IDLE,
        ));
    let router = match &app.settings.web_dir {
        Some(dir) => router.fallback_service(console_files(dir)),
        None => router.fallback(no_console),
    };
    // The span names the path only: query strings may carry tokens (WebSockets) and must not
    // reach the log.
    let trace = TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
        tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
    });
    let csp = content_security_policy(app.settings.web_dir.as_deref());
    router
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let csp = csp.clone();
                async move {
                    let mut resp = next.run(req).await;
                    let h = resp.headers_mut();
                    h.insert(header::CONTENT_SECURITY_POLICY, csp);
                    h.insert(
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    );
                    h.insert(
                        header::REFERRER_POLICY,
                        HeaderValue::from_static("no-referrer"),
                    );
                    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                    resp
                }
            },
        ))
        .layer(trace)
        .with_state(app)
}

/// The web console's Content-Security-Policy: everything from this origin only, WebAssembly
/// compiled by the page (`wasm-unsafe-eval`, no `unsafe-eval`), no framing, and Trunk's inline
/// loader script allowed by its hash (read from the built `index.html`), no other inline script.
fn content_security_policy(web_dir: Option<&FsPath>) -> HeaderValue {
    use base64::Engine;
    use sha2::Digest;
    let index = web_dir
        .and_then(|d| std::fs::read_to_string(d.join("index.html")).ok())
        .unwrap_or_default();
    let mut hashes = String::new();
    let mut rest = index.as_str();
    while let Some(open) = rest.find("<script") {
        let after = &rest[open..];
        let (Some(tag_end), Some(close)) = (after.find('>'), after.find("</script>")) else {
            break;
        };
        let body = &after[tag_end + 1..close.max(tag_end + 1)];
        if !after[..tag_end].contains(" src=") && !body.is_empty() {
            let sum = sha2::Sha256::digest(body.as_bytes());
            hashes.push_str(&format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(sum)
            ));
        }
        rest = &after[close.max(tag_end) + 1..];
    }
    let policy = format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "service", responses((status = 200, description = "OpenAPI 3 JSON")))]
async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| openapi().to_json().unwrap_or_default());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.as_str(),
    )
        .into_response()
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

/// 200 when the database and the hypervisor answer, 503 otherwise (same body). No token needed.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn healthz(State(app): State<AppState>) -> (StatusCode, Json<Health>) {
    let health = app.health().await;
    let status = if health.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

/// The host: hypervisor, acceleration in use and why, CPUs and memory (admins).
#[utoipa::path(get, path = "/host", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = HostInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn host(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<HostInfo>> {
    Ok(Json(app.host_info(&actor).await?))
}
