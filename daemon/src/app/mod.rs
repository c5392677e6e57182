//! The application layer: what a request means. It authenticates callers, decides what they may do,
//! and drives the database and the hypervisor to do it.
//!
//! Architecture invariant: no HTTP here (no axum, no status codes) and no SQL or libvirt calls
//! written inline: those go through `db` and `hypervisor`. Every function that touches a tenant's
//! resource takes the calling [`Actor`] first and checks it before anything else happens.

mod accel;
pub mod audit;
pub mod auth;
mod background;
pub mod backups;
pub mod console;
pub mod error;
pub mod host;
pub mod housekeeping;
pub mod images;
pub mod jobs;
mod lifecycle;
pub mod metrics;
pub mod passkeys;
pub mod paths;
pub mod ratelimit;
mod record;
pub mod resources;
mod restart;
pub mod revoke;
mod second_factor;
pub mod sessions;
mod start;
pub mod tickets;
pub mod tokens;
mod totp;
mod turns;
pub mod users;
pub mod vms;

use std::sync::Arc;

use nuage_shared::Accel;

pub use auth::Actor;
pub use error::AppError;
pub use start::{chain, start, StartError};

use crate::config::Settings;
use crate::db::Db;
use crate::hypervisor::Hypervisor;

/// Everything a request may need, shared by all requests.
pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub hv: Arc<dyn Hypervisor>,
    /// The libvirt URI actually connected to (after `auto` resolved it).
    pub libvirt_uri: String,
    /// True on libvirt's simulated `test:///default`.
    pub simulated: bool,
    pub accel: Accel,
    pub accel_reason: String,
    /// Problems of the host's setup found at start (`HostInfo::warnings`).
    pub host_warnings: Vec<String>,
    /// This daemon's identity, written into every domain it creates, so that daemons sharing a
    /// libvirtd never touch each other's domains.
    pub daemon_id: String,
    auth: auth::Keys,
    /// Every event about a server, tagged with its owner; `/api/v1/events` filters per caller.
    pub events: tokio::sync::broadcast::Sender<OwnedEvent>,
    /// Credentials that just ended, for the sockets opened with them (`revoke.rs`).
    revocations: tokio::sync::broadcast::Sender<revoke::Revocation>,
    /// Open WebSockets per user (`revoke.rs`).
    sockets: revoke::Sockets,
    /// Anonymous requests refused (counted, not stored: `audit.rs`).
    anonymous_refusals: std::sync::atomic::AtomicU64,
    /// How many of them the audit log's last summary entry covered.
    anonymous_reported: std::sync::atomic::AtomicU64,
    /// Failed sign-ins per username and per client address.
    logins: ratelimit::LoginLimiter,
    /// Wrong second-factor codes per user.
    codes: ratelimit::CodeLimiter,
    /// The WebAuthn relying party and the passkey ceremonies under way.
    passkeys: passkeys::Passkeys,
    /// The bound on password checks running at once (Argon2's memory).
    password_checks: auth::PasswordChecks,
    /// Tickets that open `/events` once.
    event_tickets: tickets::Tickets<Actor>,
    /// Console tickets and open console sessions.
    consoles: console::Consoles,
    /// The daemon's libvirt network.
    net: resources::Net,
    /// The host's CPUs and memory (read once at start).
    physical: resources::Physical,
    /// Recent usage of every server, sampled in the background.
    pub metrics: metrics::Store,
    /// Running jobs (progress, cancel flags) and the servers they hold busy.
    jobs: jobs::Jobs,
    /// The QEMU pid of each running server, to tell an OOM kill from a crash.
    qemu_pids: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Whose turn it is to change each server (`turns.rs`).
    turns: turns::Turns,
}

/// An event and whose server it concerns.
#[derive(Debug, Clone)]
pub struct OwnedEvent {
    pub owner_id: nuage_shared::UserId,
    pub event: nuage_shared::Event,
}

/// Runs a multi-step change to its end whatever happens to the caller: a client that disconnects
/// drops its request's future, and a change dropped half-way would leave a server `creating` or
/// `deleting` with its quota held until the next restart. The caller still gets the outcome when
/// it waits.
pub async fn to_completion<T: Send + 'static>(
    change: impl std::future::Future<Output = Result<T, AppError>> + Send + 'static,
) -> Result<T, AppError> {
    tokio::spawn(change)
        .await
        .map_err(|e| AppError::internal("a change was lost", e))?
}

pub use crate::failpoints::{arm_failpoint, failpoint, failpoint_for, failpoint_set};

impl App {
    /// Runs a blocking hypervisor call on the blocking pool.
    pub async fn hv_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Hypervisor) -> Result<T, crate::hypervisor::HvError> + Send + 'static,
    ) -> Result<T, AppError> {
        let hv = self.hv.clone();
        tokio::task::spawn_blocking(move || f(hv.as_ref()))
            .await
            .map_err(|e| AppError::internal("hypervisor task was lost", e))?
            .map_err(AppError::from)
    }
}
