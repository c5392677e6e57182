//! Wire types of the Nuage API (`/api/v1`), compiled by both `nuaged` and the web console.
//!
//! Architecture invariant: this crate knows serde and nothing else: no tokio, no rusqlite, no virt,
//! no web-sys. A type lives here when it crosses the wire; the daemon's internal types do not.
#![forbid(unsafe_code)]
//!
//! One module per resource; everything is re-exported from the root, so a type is
//! `nuage_shared::Vm` wherever it lives.

mod audit;
mod backup;
mod error;
mod event;
mod host;
mod id;
mod image;
mod job;
mod metrics;
mod passkey;
mod token;
mod user;
mod validate;
mod vm;

pub use audit::*;
pub use backup::*;
pub use error::*;
pub use event::*;
pub use host::*;
pub use id::*;
pub use image::*;
pub use job::*;
pub use metrics::*;
pub use passkey::*;
pub use token::*;
pub use user::*;
pub use validate::*;
pub use vm::*;

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
    fn usernames_follow_the_rules() {
        for ok in ["alice", "a", "bob-2", "c.d_e", "0x", &"a".repeat(32)] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "-a",
            ".a",
            "a b",
            "a/b",
            "a<b",
            "é",
            "../x",
            &"a".repeat(33),
        ] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vm_names_and_hostnames_follow_the_rules() {
        for ok in ["a", "web-1", "0", &"a".repeat(63)] {
            assert!(validate_vm_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Web",
            "a_b",
            "a.b",
            "a<b",
            "a'b",
            "a/b",
            "..",
            "é",
            &"a".repeat(64),
        ] {
            assert!(validate_vm_name(bad).is_err(), "{bad}");
        }
        assert!(validate_hostname("web-1").is_ok());
        assert!(validate_hostname("-web").is_err());
        assert!(validate_hostname("web-").is_err());
    }

    #[test]
    fn vm_states_round_trip_their_names() {
        for s in [
            "creating", "stopped", "starting", "running", "stopping", "paused", "deleting", "error",
        ] {
            let state = VmState::parse(s).unwrap();
            assert_eq!(state.as_str(), s);
            assert_eq!(serde_json::to_value(state).unwrap(), serde_json::json!(s));
        }
        assert_eq!(VmState::parse("on"), None);
    }

    #[test]
    fn passwords_follow_the_rules() {
        assert!(validate_password("1234567").is_err());
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn login_request_refuses_unknown_fields() {
        let r: Result<LoginRequest, _> =
            serde_json::from_str(r#"{"username":"a","password":"b","admin":true}"#);
        assert!(r.is_err());
    }
}
