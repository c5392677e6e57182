//! Extractors: the authenticated caller, and JSON bodies whose rejections speak API.md's errors.

use std::sync::Arc;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::Method;
use nuage_shared::TokenScope;

use super::error::ApiError;
use crate::app::{Actor, App, AppError};

/// A JSON body; malformed JSON, unknown fields and wrong types are `400 bad_request`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<Arc<App>> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Actor, ApiError> {
        // Already authenticated by the audit layer (state-changing requests).
        let actor = match parts.extensions.get::<Actor>() {
            Some(actor) => actor.clone(),
            None => {
                let token = bearer(parts).ok_or(AppError::Unauthenticated(
                    "Sign in first: this call needs a bearer token.",
                ))?;
                app.authenticate(token, client(parts)).await?
            }
        };
        admit(&actor, parts)?;
        Ok(actor)
    }
}

/// What a session that must still enrol a second factor may call.
const ENROLMENT_PATHS: [&str; 7] = [
    "/api/v1/me",
    "/api/v1/me/totp",
    "/api/v1/me/passkeys",
    "/api/v1/me/passkeys/options",
    "/api/v1/me/totp/confirm",
    "/api/v1/auth/logout",
    "/api/v1/auth/verify",
];

/// The credential's limits on this request: a `read` token changes nothing (403 on every
/// method but GET and HEAD), and a user who must enrol a second factor may only do that.
pub fn admit(actor: &Actor, parts: &Parts) -> Result<(), AppError> {
    if actor.scope == TokenScope::Read && !matches!(parts.method, Method::GET | Method::HEAD) {
        return Err(AppError::Forbidden(
            "This API token is read-only; use a token with the full scope.",
        ));
    }
    // Nested routers see their path without the prefix; the original URI has it.
    let path = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(parts.uri.path(), |u| u.0.path());
    if actor.must_enrol && !ENROLMENT_PATHS.contains(&path) {
        return Err(AppError::SecondFactorRequired);
    }
    Ok(())
}

/// The client's address (after `--trusted-proxy`), when the server knows it.
pub fn client(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address, when the server knows it (it does not in `oneshot` tests).
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddr, Self::Rejection> {
        Ok(ClientAddr(client(parts)))
    }
}
