//! Sign-in, the caller, API tokens and user administration.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use nuage_shared::{
    ApiToken, CreateToken, CreateUser, ErrorBody, LoginRequest, LoginResponse, Me, NewToken,
    UpdateUser, UserDetail,
};

use super::extract::{ApiJson, ClientAddr};
use super::{ApiResult, AppState};
use crate::app::Actor;

/// Sign in with a username and a password; returns a short-lived bearer token.
#[utoipa::path(post, path = "/auth/login", tag = "identity", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(app): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(app.login(req, &sign_in_from(client, &headers)).await?))
}

/// Where a sign-in comes from: the client and its `User-Agent` (at most 256 characters).
pub fn sign_in_from(
    client: Option<std::net::IpAddr>,
    headers: &axum::http::HeaderMap,
) -> crate::app::auth::SignInFrom {
    crate::app::auth::SignInFrom {
        client,
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    }
}

/// End this session (or revoke this API token) at once.
#[utoipa::path(post, path = "/auth/logout", tag = "identity", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(app): State<AppState>, actor: Actor) -> ApiResult<StatusCode> {
    app.logout(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is, their quota and what they use of it.
#[utoipa::path(get, path = "/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Me>> {
    Ok(Json(app.me(&actor).await?))
}

/// The caller's personal API tokens (without their secrets).
#[utoipa::path(get, path = "/tokens", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = [ApiToken]), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(app.list_tokens(&actor).await?))
}

/// Create a personal API token; its secret is shown in this answer only.
#[utoipa::path(post, path = "/tokens", tag = "identity", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, body = NewToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.create_token(&actor, req).await?),
    ))
}

/// Revoke one of the caller's API tokens.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_token(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_token(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every user with quota and usage (admins).
#[utoipa::path(get, path = "/users", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [UserDetail]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<UserDetail>>> {
    Ok(Json(app.list_users(&actor).await?))
}

/// Create a user with a role and a quota (admins).
#[utoipa::path(post, path = "/users", tag = "admin", security(("bearer" = [])), request_body = CreateUser,
    responses((status = 201, body = UserDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserDetail>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.create_user(&actor, req).await?),
    ))
}

/// One user (admins).
#[utoipa::path(get, path = "/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserDetail), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<UserDetail>> {
    Ok(Json(app.get_user(&actor, &id).await?))
}

/// Change a user's password, role or quota (admins). A quota below usage blocks new allocations.
#[utoipa::path(patch, path = "/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = UpdateUser,
    responses((status = 200, body = UserDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> ApiResult<Json<UserDetail>> {
    Ok(Json(app.update_user(&actor, &id, req).await?))
}

/// Delete a user who owns no servers; their tokens stop working at once (admins).
#[utoipa::path(delete, path = "/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_user(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's API tokens, never their secrets (admins).
#[utoipa::path(get, path = "/users/{id}/tokens", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [ApiToken]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn list_user_tokens(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(app.list_user_tokens(&actor, &id).await?))
}

/// Revoke one of a user's API tokens; sockets opened with it close (admins).
#[utoipa::path(delete, path = "/users/{id}/tokens/{token_id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path), ("token_id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn revoke_user_token(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, token_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.revoke_user_token(&actor, &id, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign a user out everywhere: every session ends and every API token is deleted, open sockets
/// close (admins; the caller's own credential is kept).
#[utoipa::path(post, path = "/users/{id}/sign-out", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn sign_out_everywhere(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.sign_out_everywhere(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
