//! The one typed client of the daemon's API, built on the `shared` wire types. Every failure comes
//! back as an [`ApiFailure`] with a sentence for the user; nothing here unwraps network data.

use gloo_net::http::{Request, RequestBuilder, Response};
use nuage_shared::{
    AuditEntry, ConsoleTicket, CreateVm, ErrorBody, ErrorCode, Health, HostInfo, Image,
    ImportImage, LoginRequest, LoginResponse, Me, UpdateVm, Vm, VmAction, VmMetrics, API_BASE,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

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

    pub(crate) fn local(message: &str) -> ApiFailure {
        ApiFailure {
            code: None,
            message: message.into(),
        }
    }

    pub fn is_unauthenticated(&self) -> bool {
        self.code == Some(ErrorCode::Unauthenticated)
    }
}

fn url(path: &str) -> String {
    format!("{API_BASE}{path}")
}

/// The bearer token on a request (none for an anonymous call: an empty token).
fn with_token(req: RequestBuilder, token: &str) -> RequestBuilder {
    if token.is_empty() {
        return req;
    }
    req.header("Authorization", &format!("Bearer {token}"))
}

async fn failure(resp: Response) -> ApiFailure {
    match resp.json::<ErrorBody>().await {
        Ok(body) => ApiFailure {
            code: Some(body.error.code),
            message: body.error.message,
        },
        Err(_) => ApiFailure::local(&format!(
            "The daemon answered with status {}.",
            resp.status()
        )),
    }
}

async fn read<T: DeserializeOwned>(
    resp: Result<Response, gloo_net::Error>,
) -> Result<T, ApiFailure> {
    let resp = resp.map_err(|_| ApiFailure::unreachable())?;
    if resp.ok() {
        resp.json::<T>().await.map_err(|_| {
            ApiFailure::local("The daemon sent an answer this console does not understand.")
        })
    } else {
        Err(failure(resp).await)
    }
}

async fn read_empty(resp: Result<Response, gloo_net::Error>) -> Result<(), ApiFailure> {
    let resp = resp.map_err(|_| ApiFailure::unreachable())?;
    if resp.ok() {
        Ok(())
    } else {
        Err(failure(resp).await)
    }
}

async fn get<T: DeserializeOwned>(path: &str, token: &str) -> Result<T, ApiFailure> {
    read(with_token(Request::get(&url(path)), token).send().await).await
}

async fn send_json<B: Serialize, T: DeserializeOwned>(
    req: RequestBuilder,
    token: &str,
    body: &B,
) -> Result<T, ApiFailure> {
    let req = with_token(req, token)
        .json(body)
        .map_err(|_| ApiFailure::local("Could not encode the request."))?;
    read(req.send().await).await
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

/// `POST /auth/login`, with the user's code (or a passkey's answer) when their account has a
/// second factor.
pub async fn login(login: &LoginRequest) -> Result<LoginResponse, ApiFailure> {
    let req = Request::post(&url("/auth/login"))
        .json(login)
        .map_err(|_| ApiFailure::local("Could not encode the request."))?;
    read(req.send().await).await
}

pub async fn logout(token: &str) {
    // Best effort: the console forgets the token whatever the daemon answers.
    let _ = with_token(Request::post(&url("/auth/logout")), token)
        .send()
        .await;
}

pub async fn host(token: &str) -> Result<HostInfo, ApiFailure> {
    get("/host", token).await
}

pub async fn me(token: &str) -> Result<Me, ApiFailure> {
    get("/me", token).await
}

pub async fn images(token: &str) -> Result<Vec<Image>, ApiFailure> {
    get("/images", token).await
}

pub async fn vms(token: &str) -> Result<Vec<Vm>, ApiFailure> {
    get("/vms", token).await
}

pub async fn vm(token: &str, id: &str) -> Result<Vm, ApiFailure> {
    get(&format!("/vms/{id}"), token).await
}

pub async fn vm_metrics(token: &str, id: &str) -> Result<VmMetrics, ApiFailure> {
    get(&format!("/vms/{id}/metrics"), token).await
}

pub async fn create_vm(token: &str, req: &CreateVm) -> Result<Vm, ApiFailure> {
    send_json(Request::post(&url("/vms")), token, req).await
}

pub async fn update_vm(token: &str, id: &str, req: &UpdateVm) -> Result<Vm, ApiFailure> {
    send_json(Request::patch(&url(&format!("/vms/{id}"))), token, req).await
}

pub async fn vm_action(token: &str, id: &str, action: VmAction) -> Result<Vm, ApiFailure> {
    read(
        with_token(
            Request::post(&url(&format!("/vms/{id}/{}", action.name()))),
            token,
        )
        .send()
        .await,
    )
    .await
}

pub async fn delete_vm(token: &str, id: &str) -> Result<(), ApiFailure> {
    read_empty(
        with_token(Request::delete(&url(&format!("/vms/{id}"))), token)
            .send()
            .await,
    )
    .await
}

pub async fn import_image(token: &str, req: &ImportImage) -> Result<Image, ApiFailure> {
    send_json(Request::post(&url("/images")), token, req).await
}

pub async fn delete_image(token: &str, id: &str) -> Result<(), ApiFailure> {
    read_empty(
        with_token(Request::delete(&url(&format!("/images/{id}"))), token)
            .send()
            .await,
    )
    .await
}

/// `GET /audit` with its filters (empty strings are left out).
pub async fn audit(token: &str, user: &str, vm: &str) -> Result<Vec<AuditEntry>, ApiFailure> {
    let mut query = Vec::new();
    for (k, v) in [("user", user), ("vm", vm)] {
        if !v.trim().is_empty() {
            query.push(format!("{k}={}", js_sys_encode(v.trim())));
        }
    }
    let path = if query.is_empty() {
        "/audit".to_owned()
    } else {
        format!("/audit?{}", query.join("&"))
    };
    get(&path, token).await
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn js_sys_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One request of the snapshot and backup panels: `method` on `path` with an optional JSON body;
/// the answer's text on success. One function (not one per endpoint) keeps their wasm small.
pub async fn call(
    token: &str,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<String, ApiFailure> {
    let req = with_token(
        RequestBuilder::new(&url(path)).method(match method {
            "POST" => gloo_net::http::Method::POST,
            "PUT" => gloo_net::http::Method::PUT,
            "DELETE" => gloo_net::http::Method::DELETE,
            "PATCH" => gloo_net::http::Method::PATCH,
            _ => gloo_net::http::Method::GET,
        }),
        token,
    );
    let sent = match body {
        Some(b) => {
            req.header("Content-Type", "application/json")
                .body(b)
                .map_err(|_| ApiFailure::local("Could not encode the request."))?
                .send()
                .await
        }
        None => req.send().await,
    };
    let resp = sent.map_err(|_| ApiFailure::unreachable())?;
    if resp.ok() {
        Ok(resp.text().await.unwrap_or_default())
    } else {
        Err(failure(resp).await)
    }
}

/// A single-use ticket (30 s) for a server's screen.
pub async fn console_ticket(token: &str, id: &str) -> Result<ConsoleTicket, ApiFailure> {
    read(
        with_token(Request::post(&url(&format!("/vms/{id}/console"))), token)
            .send()
            .await,
    )
    .await
}

/// `POST /images/upload?name=…&os=…` with `file` as the body, through XMLHttpRequest (fetch
/// reports no upload progress): `on_progress` receives the fraction sent, 0 to 1.
pub async fn upload_image(
    token: &str,
    name: &str,
    os: Option<&str>,
    file: &web_sys::File,
    on_progress: impl Fn(f64) + 'static,
) -> Result<Image, ApiFailure> {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    let enc = |s: &str| String::from(js_sys::encode_uri_component(s));
    let mut path = format!("/images/upload?name={}", enc(name));
    if let Some(os) = os {
        path.push_str(&format!("&os={}", enc(os)));
    }
    let xhr = web_sys::XmlHttpRequest::new()
        .map_err(|_| ApiFailure::local("This browser cannot upload."))?;
    xhr.open("POST", &url(&path))
        .map_err(|_| ApiFailure::local("Could not start the upload."))?;
    let _ = xhr.set_request_header("Authorization", &format!("Bearer {token}"));
    let _ = xhr.set_request_header("Content-Type", "application/octet-stream");
    let progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
            if e.length_computable() && e.total() > 0.0 {
                on_progress(e.loaded() / e.total());
            }
        });
    if let Ok(upload) = xhr.upload() {
        upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
    }
    // Settles when the request ends, however it ends.
    let done = js_sys::Promise::new(&mut |resolve, _reject| {
        xhr.set_onloadend(Some(&resolve));
    });
    xhr.send_with_opt_blob(Some(file))
        .map_err(|_| ApiFailure::unreachable())?;
    let _ = wasm_bindgen_futures::JsFuture::from(done).await;
    drop(progress);
    let status = xhr.status().unwrap_or(0);
    let text = xhr.response_text().ok().flatten().unwrap_or_default();
    match status {
        0 => Err(ApiFailure::unreachable()),
        201 => serde_json::from_str(&text).map_err(|_| {
            ApiFailure::local("The daemon sent an answer this console does not understand.")
        }),
        _ => Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ApiFailure {
                code: Some(body.error.code),
                message: body.error.message,
            },
            Err(_) => ApiFailure::local(&format!("The daemon answered with status {status}.")),
        }),
    }
}
