//! The one place where failures become HTTP responses with the status codes of API.md. The full
//! cause chain of a server-side failure is logged here, once; the client gets a sentence.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use nuage_shared::{ErrorBody, ErrorCode, ErrorDetail};

use crate::app::chain;
use crate::app::AppError;

/// A failed request: an app-layer outcome, or a request the HTTP layer could not even read.
#[derive(Debug)]
pub enum ApiError {
    App(AppError),
    /// Malformed JSON, an unknown field, a wrong type, a bad query string.
    BadRequest(String),
    /// A body over the size limit.
    TooLarge,
    /// No such endpoint.
    NoRoute,
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        ApiError::App(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest(r.body_text())
        }
    }
}

fn body(status: StatusCode, code: ErrorCode, message: String) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail { code, message },
        }),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = match self {
            ApiError::BadRequest(m) => {
                return body(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, m)
            }
            ApiError::TooLarge => {
                return body(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::BadRequest,
                    "The request body is too large.".into(),
                )
            }
            ApiError::NoRoute => {
                return body(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    "No such endpoint.".into(),
                )
            }
            ApiError::App(e) => e,
        };
        let code = match &e {
            AppError::Invalid(_) => ErrorCode::Invalid,
            AppError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AppError::TotpRequired => ErrorCode::TotpRequired,
            AppError::TotpInvalid => ErrorCode::TotpInvalid,
            AppError::PasskeyInvalid => ErrorCode::PasskeyInvalid,
            AppError::ReauthenticationRequired => ErrorCode::ReauthenticationRequired,
            AppError::SecondFactorRequired => ErrorCode::SecondFactorRequired,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            AppError::InsufficientCapacity(_) => ErrorCode::InsufficientCapacity,
            AppError::RateLimited(_) => ErrorCode::RateLimited,
            AppError::Unavailable { .. } => ErrorCode::Unavailable,
            AppError::Internal { .. } => ErrorCode::Internal,
        };
        let message = match &e {
            AppError::Unavailable { .. } => {
                tracing::warn!(error = %chain(&e), "service unavailable");
                e.to_string()
            }
            AppError::Internal { .. } => {
                tracing::error!(error = %chain(&e), "request failed");
                "Something went wrong on the server; it has been logged.".into()
            }
            AppError::NotFound(what) => format!("No such {what}."),
            _ => e.to_string(),
        };
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        body(status, code, message)
    }
}
