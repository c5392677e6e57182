//! The caller's own account security: re-authentication, TOTP enrolment and removal, sessions,
//! the password; and an admin's reset of a user's second factor.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use nuage_shared::{
    ErrorBody, NewPassword, Reauthenticate, RecoveryCodes, Session, TotpCode, TotpEnrolment,
};

use super::extract::{ApiJson, ClientAddr};
use super::{ApiResult, AppState};
use crate::app::Actor;

/// Prove again who you are (the password, with the code when TOTP is on; or a code alone):
/// for the next 5 minutes this session may change its second factors, password and tokens.
#[utoipa::path(post, path = "/auth/verify", tag = "identity", security(("bearer" = [])),
    request_body = Reauthenticate,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn verify(
    State(app): State<AppState>,
    actor: Actor,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<Reauthenticate>,
) -> ApiResult<StatusCode> {
    app.reauthenticate(&actor, req, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Begin TOTP enrolment: a secret and its `otpauth://` URL (with a QR code), not active until
/// `POST /me/totp/confirm`. Needs a verification in the last 5 minutes.
#[utoipa::path(post, path = "/me/totp", tag = "identity", security(("bearer" = [])),
    responses((status = 201, body = TotpEnrolment), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn begin_totp(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<(StatusCode, Json<TotpEnrolment>)> {
    Ok((StatusCode::CREATED, Json(app.begin_totp(&actor).await?)))
}

/// Turn TOTP off with a current code (or a recovery code). Needs a recent verification.
#[utoipa::path(delete, path = "/me/totp", tag = "identity", security(("bearer" = [])),
    request_body = TotpCode,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn remove_totp(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<TotpCode>,
) -> ApiResult<StatusCode> {
    app.remove_totp(&actor, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Confirm enrolment with the app's current code: TOTP is on, and ten single-use recovery
/// codes are shown this once.
#[utoipa::path(post, path = "/me/totp/confirm", tag = "identity", security(("bearer" = [])),
    request_body = TotpCode,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn confirm_totp(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<TotpCode>,
) -> ApiResult<Json<RecoveryCodes>> {
    Ok(Json(app.confirm_totp(&actor, &req.code).await?))
}

/// Where the caller is signed in: login sessions, then API tokens.
#[utoipa::path(get, path = "/me/sessions", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = [Session]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_sessions(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<Session>>> {
    Ok(Json(app.list_sessions(&actor).await?))
}

/// End one of the caller's sessions (`token:<id>`: revoke that API token); its sockets close.
#[utoipa::path(delete, path = "/me/sessions/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn end_session(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.end_session(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out everywhere else: every other login session of the caller ends.
#[utoipa::path(post, path = "/me/sign-out", tag = "identity", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn sign_out_others(State(app): State<AppState>, actor: Actor) -> ApiResult<StatusCode> {
    app.sign_out_others(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the caller's password (verified in the last 5 minutes); their other sessions end.
#[utoipa::path(put, path = "/me/password", tag = "identity", security(("bearer" = [])),
    request_body = NewPassword,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_password(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<NewPassword>,
) -> ApiResult<StatusCode> {
    app.change_password(&actor, req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reset a user's second factor (a lost phone); their sessions end (admins, audited).
#[utoipa::path(delete, path = "/users/{id}/totp", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reset_totp(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.reset_totp(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
