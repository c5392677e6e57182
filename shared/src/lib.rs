//! Wire types of the Nuage API (`/api/v1`), compiled by both `nuaged` and the web console.
//!
//! Architecture invariant: this crate knows serde and nothing else: no tokio, no rusqlite, no virt,
//! no web-sys. A type lives here when it crosses the wire; the daemon's internal types do not.

use serde::{Deserialize, Serialize};

/// The base path of every API endpoint.
pub const API_BASE: &str = "/api/v1";

/// The body of every error response: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// A sentence for a person. Never carries SQL, libvirt or file-system text.
    pub message: String,
}

/// The machine-readable error codes of API.md, one per documented status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Invalid,
    Unauthenticated,
    Forbidden,
    NotFound,
    QuotaExceeded,
    InsufficientCapacity,
    Conflict,
    RateLimited,
    Unavailable,
    /// A bug in the daemon (any 5xx other than 503/507). The message says no more than that.
    Internal,
}

impl ErrorCode {
    /// The HTTP status API.md fixes for this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Invalid => 422,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden | ErrorCode::QuotaExceeded => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::InsufficientCapacity => 507,
        }
    }
}

/// How guests are executed. `Kvm` is hardware virtualisation; `Tcg` is QEMU's software emulation,
/// used where KVM cannot run an ordinary guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accel {
    Kvm,
    Tcg,
}

/// `GET /healthz`: 200 when both are up, 503 otherwise (same body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"` or `"degraded"`.
    pub status: String,
    pub database: bool,
    pub hypervisor: bool,
    /// True when the daemon drives libvirt's simulated `test:///default` hypervisor: nothing it
    /// creates is a real machine. The web console shows a banner for it.
    pub simulated: bool,
}

/// `GET /api/v1/host`: what this host is and what runs the guests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub daemon_version: String,
    pub hypervisor: HypervisorInfo,
    /// The acceleration guests are started with.
    pub accel: Accel,
    /// Why that acceleration was chosen (e.g. why KVM was ruled out), for the operator.
    pub accel_reason: String,
    /// Logical CPUs of the host.
    pub cpus: u32,
    pub memory_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HypervisorInfo {
    /// The libvirt connection URI, e.g. `qemu:///system`.
    pub uri: String,
    /// libvirt's driver name, e.g. `QEMU` or `TEST`.
    pub driver: String,
    /// Hypervisor version as `major.minor.micro`.
    pub version: String,
    /// libvirt library version as `major.minor.micro`.
    pub libvirt_version: String,
    pub simulated: bool,
}

/// A user's role: admins manage users, images and the host; users manage their own VPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    User,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    pub user: User,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::QuotaExceeded,
                message: "m".into(),
            },
        };
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"error":{"code":"quota_exceeded","message":"m"}}"#);
    }

    #[test]
    fn every_code_maps_to_the_documented_status() {
        let table = [
            (ErrorCode::BadRequest, 400, "bad_request"),
            (ErrorCode::Invalid, 422, "invalid"),
            (ErrorCode::Unauthenticated, 401, "unauthenticated"),
            (ErrorCode::Forbidden, 403, "forbidden"),
            (ErrorCode::NotFound, 404, "not_found"),
            (ErrorCode::QuotaExceeded, 403, "quota_exceeded"),
            (
                ErrorCode::InsufficientCapacity,
                507,
                "insufficient_capacity",
            ),
            (ErrorCode::Conflict, 409, "conflict"),
            (ErrorCode::RateLimited, 429, "rate_limited"),
            (ErrorCode::Unavailable, 503, "unavailable"),
        ];
        for (code, status, name) in table {
            assert_eq!(code.status(), status, "{code:?}");
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(name));
        }
    }

    #[test]
    fn login_request_refuses_unknown_fields() {
        let r: Result<LoginRequest, _> =
            serde_json::from_str(r#"{"username":"a","password":"b","admin":true}"#);
        assert!(r.is_err());
    }
}
