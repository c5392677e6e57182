//! Passkeys: the caller registers, lists, renames and deletes theirs; anyone signs in with one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use nuage_shared::{
    ErrorBody, LoginResponse, NewPasskey, PasskeyAssertion, PasskeyChallenge, PasskeyInfo,
    RegisteredPasskey, RenamePasskey,
};

use super::extract::{ApiJson, ClientAddr};
use super::identity::sign_in_from;
use super::{ApiResult, AppState};
use crate::app::Actor;

/// Begin registering a passkey: the options for `navigator.credentials.create()` (valid for
/// two minutes, once). Needs a verification in the last 5 minutes.
#[utoipa::path(post, path = "/me/passkeys/options", tag = "identity", security(("bearer" = [])),
    responses((status = 201, body = PasskeyChallenge), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn begin_passkey(
    State(app): State<AppState>,
    actor: Actor,
    ClientAddr(client): ClientAddr,
) -> ApiResult<(StatusCode, Json<PasskeyChallenge>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.begin_passkey(&actor, client).await?),
    ))
}

/// Finish registering a passkey with the browser's answer and a name. The account's first
/// second factor also brings ten recovery codes (shown this once).
#[utoipa::path(post, path = "/me/passkeys", tag = "identity", security(("bearer" = [])),
    request_body = NewPasskey,
    responses((status = 201, body = RegisteredPasskey), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_passkey(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<NewPasskey>,
) -> ApiResult<(StatusCode, Json<RegisteredPasskey>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.add_passkey(&actor, req).await?),
    ))
}

/// The caller's passkeys.
#[utoipa::path(get, path = "/me/passkeys", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = [PasskeyInfo]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_passkeys(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<PasskeyInfo>>> {
    Ok(Json(app.list_passkeys(&actor).await?))
}

/// Rename one of the caller's passkeys.
#[utoipa::path(patch, path = "/me/passkeys/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = RenamePasskey,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rename_passkey(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RenamePasskey>,
) -> ApiResult<StatusCode> {
    app.rename_passkey(&actor, &id, &req.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete one of the caller's passkeys (verified in the last 5 minutes); not the last second
/// factor of an account the host requires one of.
#[utoipa::path(delete, path = "/me/passkeys/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_passkey(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_passkey(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A passkey sign-in challenge: the options for `navigator.credentials.get()`, which any
/// passkey of this host may answer (to `POST /auth/passkey`, or as `passkey` in
/// `POST /auth/login` and `POST /auth/verify`). Valid for two minutes, once.
#[utoipa::path(post, path = "/auth/passkey/options", tag = "identity",
    responses((status = 201, body = PasskeyChallenge), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn passkey_challenge(
    State(app): State<AppState>,
    ClientAddr(client): ClientAddr,
) -> ApiResult<(StatusCode, Json<PasskeyChallenge>)> {
    Ok((StatusCode::CREATED, Json(app.passkey_challenge(client)?)))
}

/// Sign in with a passkey alone (it verified its user: both factors in one).
#[utoipa::path(post, path = "/auth/passkey", tag = "identity", request_body = PasskeyAssertion,
    responses((status = 200, body = LoginResponse), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn passkey_login(
    State(app): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<PasskeyAssertion>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(
        app.login_with_passkey(req, &sign_in_from(client, &headers))
            .await?,
    ))
}
