//! The one typed client of the daemon's API, built on the `shared` wire types. Every failure comes
//! back as an [`ApiFailure`] with a sentence for the user; nothing here unwraps network data.

use gloo_net::http::{Request, RequestBuilder, Response};
use nuage_shared::{ErrorBody, ErrorCode, Health, HostInfo, LoginRequest, LoginResponse, API_BASE};
use serde::de::DeserializeOwned;

/// A request that did not succeed, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFailure {
    /// `None` when the daemon could not be reached at all.
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl ApiFailure {
    fn unreachable() -> ApiFailure {
        ApiFailure {
            code: None,
            message: "The Nuage daemon cannot be reached. Check that nuaged is running.".into(),
        }
    }

    pub fn is_unauthenticated(&self) -> bool {
        self.code == Some(ErrorCode::Unauthenticated)
    }
}

fn with_token(req: RequestBuilder, token: &str) -> RequestBuilder {
    req.header("Authorization", &format!("Bearer {token}"))
}

async fn read<T: DeserializeOwned>(
    resp: Result<Response, gloo_net::Error>,
) -> Result<T, ApiFailure> {
    let resp = resp.map_err(|_| ApiFailure::unreachable())?;
    if resp.ok() {
        return resp.json::<T>().await.map_err(|_| ApiFailure {
            code: None,
            message: "The daemon sent an answer this console does not understand.".into(),
        });
    }
    match resp.json::<ErrorBody>().await {
        Ok(body) => Err(ApiFailure {
            code: Some(body.error.code),
            message: body.error.message,
        }),
        Err(_) => Err(ApiFailure {
            code: None,
            message: format!("The daemon answered with status {}.", resp.status()),
        }),
    }
}

/// `GET /healthz` (no token needed); answers with a body on 503 too.
pub async fn health() -> Result<Health, ApiFailure> {
    let resp = Request::get("/healthz")
        .send()
        .await
        .map_err(|_| ApiFailure::unreachable())?;
    resp.json::<Health>()
        .await
        .map_err(|_| ApiFailure::unreachable())
}

pub async fn login(username: String, password: String) -> Result<LoginResponse, ApiFailure> {
    let req = Request::post(&format!("{API_BASE}/auth/login"))
        .json(&LoginRequest { username, password })
        .map_err(|_| ApiFailure {
            code: None,
            message: "Could not encode the request.".into(),
        })?;
    read(req.send().await).await
}

pub async fn logout(token: &str) {
    // Best effort: the console forgets the token whatever the daemon answers.
    let _ = with_token(Request::post(&format!("{API_BASE}/auth/logout")), token)
        .send()
        .await;
}

pub async fn host(token: &str) -> Result<HostInfo, ApiFailure> {
    read(
        with_token(Request::get(&format!("{API_BASE}/host")), token)
            .send()
            .await,
    )
    .await
}
