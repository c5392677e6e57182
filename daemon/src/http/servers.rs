//! Images and virtual servers.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use nuage_shared::{
    CreateVm, ErrorBody, Image, ImportImage, LimitOverrides, UpdateVm, UserDetail, Vm, VmMetrics,
};

use super::error::ApiError;
use super::extract::ApiJson;
use super::{ApiResult, AppState};
use crate::app::vms::{ListScope, VmAction};
use crate::app::Actor;

/// The disk images servers can be created from.
#[utoipa::path(get, path = "/images", tag = "images", security(("bearer" = [])),
    responses((status = 200, body = [Image]), (status = 401, body = ErrorBody)))]
pub async fn list_images(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<Image>>> {
    Ok(Json(app.list_images(&actor).await?))
}

/// Import a qcow2 or raw image lying in one of the daemon's import directories (admins).
#[utoipa::path(post, path = "/images", tag = "images", security(("bearer" = [])), request_body = ImportImage,
    responses((status = 201, body = Image), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import_image(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<ImportImage>,
) -> ApiResult<(StatusCode, Json<Image>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.import_image(&actor, req).await?),
    ))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The new image's name.
    name: String,
    /// A free label such as `debian-12`.
    os: Option<String>,
}

/// Upload a qcow2 or raw image as the request body (admins); validated like an import.
#[utoipa::path(post, path = "/images/upload", tag = "images", security(("bearer" = [])), params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Image), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload_image(
    State(app): State<AppState>,
    actor: Actor,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Body,
) -> ApiResult<(StatusCode, Json<Image>)> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let image = app
        .upload_image(&actor, q.name, q.os, body.into_data_stream())
        .await?;
    Ok((StatusCode::CREATED, Json(image)))
}

/// Delete an image no server stands on (admins).
#[utoipa::path(delete, path = "/images/{id}", tag = "images", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_image(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_image(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListVmsQuery {
    /// Every tenant's servers (admins only).
    #[serde(default)]
    all: bool,
}

/// The caller's servers (an admin's `?all=true`: everyone's).
#[utoipa::path(get, path = "/vms", tag = "servers", security(("bearer" = [])), params(ListVmsQuery),
    responses((status = 200, body = [Vm]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list_vms(
    State(app): State<AppState>,
    actor: Actor,
    query: Result<Query<ListVmsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<Vm>>> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let scope = if q.all {
        ListScope::All
    } else {
        ListScope::Mine
    };
    Ok(Json(app.list_vms(&actor, scope).await?))
}

/// Create a server within quota from an image; it boots unless `start` is false.
#[utoipa::path(post, path = "/vms", tag = "servers", security(("bearer" = [])), request_body = CreateVm,
    responses((status = 201, body = Vm), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "quota_exceeded"), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_vm(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreateVm>,
) -> ApiResult<(StatusCode, Json<Vm>)> {
    Ok((StatusCode::CREATED, Json(app.create_vm(&actor, req).await?)))
}

/// One server (another tenant's is 404, like a missing one).
#[utoipa::path(get, path = "/vms/{id}", tag = "servers", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Vm), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_vm(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vm>> {
    Ok(Json(app.get_vm(&actor, &id).await?))
}

/// Rename, or resize within quota (disks only grow; a running server takes new vCPUs and memory
/// at its next boot, shown as `pending`).
#[utoipa::path(patch, path = "/vms/{id}", tag = "servers", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = UpdateVm,
    responses((status = 200, body = Vm), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_vm(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateVm>,
) -> ApiResult<Json<Vm>> {
    Ok(Json(app.update_vm(&actor, &id, req).await?))
}

/// Delete a server: its domain, disk and seed go, its quota is freed.
#[utoipa::path(delete, path = "/vms/{id}", tag = "servers", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_vm(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_vm(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A power action: `start`, `shutdown` (ACPI), `stop` (power off), `reboot`, `reset`, `suspend`,
/// `resume`; each allowed only in the states where it makes sense (409 otherwise).
#[utoipa::path(post, path = "/vms/{id}/{action}", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path),
           ("action" = String, Path, description = "start | shutdown | stop | reboot | reset | suspend | resume")),
    responses((status = 202, body = Vm), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn vm_action(
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

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// Only samples from this time on: RFC 3339, or Unix seconds.
    since: Option<String>,
}

/// A server's usage over time (the last hour at the sampling interval, then 5-minute averages
/// over 24 hours) and its network traffic this month.
#[utoipa::path(get, path = "/vms/{id}/metrics", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path), MetricsQuery),
    responses((status = 200, body = VmMetrics), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn vm_metrics(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    query: Result<Query<MetricsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<VmMetrics>> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(app.vm_metrics(&actor, &id, q.since.as_deref()).await?))
}

/// Set the resource limits of one server (admins); fields left out inherit from its owner and
/// the host's policy, 0 means unlimited. A running server takes them at its next boot.
#[utoipa::path(put, path = "/vms/{id}/limits", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = LimitOverrides,
    responses((status = 200, body = Vm), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_vm_limits(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LimitOverrides>,
) -> ApiResult<Json<Vm>> {
    Ok(Json(app.set_vm_limits(&actor, &id, req).await?))
}

/// Set the resource limits of all of a user's servers (admins).
#[utoipa::path(put, path = "/users/{id}/limits", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = LimitOverrides,
    responses((status = 200, body = UserDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_user_limits(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LimitOverrides>,
) -> ApiResult<Json<UserDetail>> {
    Ok(Json(app.set_user_limits(&actor, &id, req).await?))
}
