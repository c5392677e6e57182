//! Snapshots, backups, schedules, export/import and jobs.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use nuage_shared::{
    Backup, BackupSchedule, CreateSnapshot, ErrorBody, Imported, Job, RestoreBackup, Snapshot, Vm,
};

use super::error::ApiError;
use super::extract::ApiJson;
use super::{ApiResult, AppState};
use crate::app::Actor;

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query<T>(q: QueryResult<T>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// A server's snapshots.
#[utoipa::path(get, path = "/vms/{id}/snapshots", tag = "backups", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [Snapshot]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_snapshots(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Snapshot>>> {
    Ok(Json(app.list_snapshots(&actor, &id).await?))
}

/// Take a snapshot (with the guest's memory when the server runs), within the `snapshots` quota.
#[utoipa::path(post, path = "/vms/{id}/snapshots", tag = "backups", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CreateSnapshot,
    responses((status = 201, body = Snapshot), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "quota_exceeded"), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_snapshot(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateSnapshot>,
) -> ApiResult<(StatusCode, Json<Snapshot>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.create_snapshot(&actor, &id, req).await?),
    ))
}

/// Go back to a snapshot; returns the server in the state that leaves it.
#[utoipa::path(post, path = "/vms/{id}/snapshots/{sid}/revert", tag = "backups", security(("bearer" = [])),
    params(("id" = String, Path), ("sid" = String, Path)),
    responses((status = 200, body = Vm), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn revert_snapshot(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<Json<Vm>> {
    Ok(Json(app.revert_snapshot(&actor, &id, &sid).await?))
}

/// Delete a snapshot (frees its quota).
#[utoipa::path(delete, path = "/vms/{id}/snapshots/{sid}", tag = "backups", security(("bearer" = [])),
    params(("id" = String, Path), ("sid" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn delete_snapshot(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.delete_snapshot(&actor, &id, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a backup job; the server keeps running. Counts against the disk quota.
#[utoipa::path(post, path = "/vms/{id}/backups", tag = "backups", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 202, body = Job), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "quota_exceeded"), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 507, body = ErrorBody)))]
pub async fn start_backup(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(app.start_backup(&actor, &id).await?),
    ))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListBackupsQuery {
    /// Every tenant's backups (admins only).
    #[serde(default)]
    all: bool,
    /// Only the backups of this server.
    vm: Option<String>,
}

/// The caller's backups, newest first.
#[utoipa::path(get, path = "/backups", tag = "backups", security(("bearer" = [])), params(ListBackupsQuery),
    responses((status = 200, body = [Backup]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list_backups(
    State(app): State<AppState>,
    actor: Actor,
    q: QueryResult<ListBackupsQuery>,
) -> ApiResult<Json<Vec<Backup>>> {
    let q = query(q)?;
    Ok(Json(app.list_backups(&actor, q.all, q.vm).await?))
}

/// One backup.
#[utoipa::path(get, path = "/backups/{bid}", tag = "backups", security(("bearer" = [])), params(("bid" = String, Path)),
    responses((status = 200, body = Backup), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_backup(
    State(app): State<AppState>,
    actor: Actor,
    Path(bid): Path<String>,
) -> ApiResult<Json<Backup>> {
    Ok(Json(app.get_backup(&actor, &bid).await?))
}

/// Delete a backup (frees its share of the disk quota).
#[utoipa::path(delete, path = "/backups/{bid}", tag = "backups", security(("bearer" = [])), params(("bid" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_backup(
    State(app): State<AppState>,
    actor: Actor,
    Path(bid): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_backup(&actor, &bid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restore a backup into its stopped server, or (`as_new`) as a new server: a job.
#[utoipa::path(post, path = "/backups/{bid}/restore", tag = "backups", security(("bearer" = [])),
    params(("bid" = String, Path)), request_body = RestoreBackup,
    responses((status = 202, body = Job), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn restore_backup(
    State(app): State<AppState>,
    actor: Actor,
    Path(bid): Path<String>,
    ApiJson(req): ApiJson<RestoreBackup>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(app.restore_backup(&actor, &bid, req).await?),
    ))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Stream this stored backup of the server instead of making a fresh archive.
    backup: Option<String>,
}

/// Download a portable archive of the server (tar: description, zstd-compressed qcow2 disk,
/// SHA256SUMS), for `POST /vms/import` on another host.
#[utoipa::path(get, path = "/vms/{id}/export", tag = "backups", security(("bearer" = [])),
    params(("id" = String, Path), ExportQuery),
    responses((status = 200, content_type = "application/x-tar", body = Vec<u8>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn export_vm(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    q: QueryResult<ExportQuery>,
) -> ApiResult<Response> {
    let q = query(q)?;
    let crate::app::backups::export::Export {
        file,
        size,
        name,
        mut guard,
    } = app.export_vm(&actor, &id, q.backup).await?;
    use futures_util::StreamExt;
    // The export job follows the download and ends with it (the guard is dropped with the body).
    let stream =
        tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 1 << 20).map(
            move |chunk| {
                if let (Ok(bytes), Some(g)) = (&chunk, guard.as_mut()) {
                    g.sent(bytes.len() as u64);
                }
                chunk
            },
        );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The tenant who will own the server (default: the caller).
    owner: Option<String>,
    /// The server's name (default: the archive's).
    name: Option<String>,
}

/// Recreate a server from an archive in the request body (admins). Every checksum is verified
/// before anything is created; a bad archive is 422 and leaves nothing behind.
#[utoipa::path(post, path = "/vms/import", tag = "backups", security(("bearer" = [])), params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/x-tar"),
    responses((status = 201, body = Imported), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 507, body = ErrorBody)))]
pub async fn import_vm(
    State(app): State<AppState>,
    actor: Actor,
    q: QueryResult<ImportQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<(StatusCode, Json<Imported>)> {
    let q = query(q)?;
    let total = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let (vm, job) = app
        .import_vm(&actor, q.owner, q.name, total, body.into_data_stream())
        .await?;
    Ok((StatusCode::CREATED, Json(Imported { vm, job })))
}

/// A server's daily backup schedule.
#[utoipa::path(get, path = "/vms/{id}/backup-schedule", tag = "backups", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = BackupSchedule), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_schedule(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<BackupSchedule>> {
    Ok(Json(app.get_schedule(&actor, &id).await?))
}

/// Back the server up every day at `time` (UTC), keeping the newest `keep` scheduled backups.
#[utoipa::path(put, path = "/vms/{id}/backup-schedule", tag = "backups", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = BackupSchedule,
    responses((status = 200, body = BackupSchedule), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_schedule(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<BackupSchedule>,
) -> ApiResult<Json<BackupSchedule>> {
    Ok(Json(app.set_schedule(&actor, &id, req).await?))
}

/// Stop backing the server up on a schedule (its backups stay).
#[utoipa::path(delete, path = "/vms/{id}/backup-schedule", tag = "backups", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_schedule(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_schedule(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListJobsQuery {
    /// Every user's jobs (admins only).
    #[serde(default)]
    all: bool,
}

/// The caller's newest jobs.
#[utoipa::path(get, path = "/jobs", tag = "backups", security(("bearer" = [])), params(ListJobsQuery),
    responses((status = 200, body = [Job]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list_jobs(
    State(app): State<AppState>,
    actor: Actor,
    q: QueryResult<ListJobsQuery>,
) -> ApiResult<Json<Vec<Job>>> {
    let q = query(q)?;
    Ok(Json(app.list_jobs(&actor, q.all).await?))
}

/// One job: kind, state, progress (0..1), error.
#[utoipa::path(get, path = "/jobs/{id}", tag = "backups", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Job), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Job>> {
    Ok(Json(app.get_job(&actor, &id).await?))
}

/// Cancel a running job: it ends `cancelled`, its partial files removed.
#[utoipa::path(post, path = "/jobs/{id}/cancel", tag = "backups", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 202, body = Job), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn cancel_job(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(app.cancel_job(&actor, &id).await?),
    ))
}
