//! `/api/v1/events` messages, and the single-use tickets of the WebSockets.

use serde::{Deserialize, Serialize};

use crate::{Job, MetricSample, StopReason, Vm, VmId, VmState};

/// `POST /vms/{id}/console`: a single-use ticket for the server's screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsoleTicket {
    pub ticket: String,
    /// The WebSocket to open (relative to the daemon), ticket included.
    pub url: String,
    pub expires_at: String,
}

/// One message on `/api/v1/events`: an object with one key naming the kind, e.g.
/// `{"vm_state": {"vm_id": "…", "state": "stopped", "at": "…"}}`. (Externally tagged: an
/// internally tagged enum costs the browser console 15 KiB of wasm, gzipped, to decode.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A VPS changed state (from libvirt's own lifecycle events).
    VmState {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        vm_id: VmId,
        state: VmState,
        at: String,
        /// Why it stopped, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_reason: Option<StopReason>,
    },
    /// A VPS appeared, changed size or name.
    VmUpdated { vm: Box<Vm> },
    /// A VPS is gone.
    VmDeleted {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        vm_id: VmId,
    },
    /// A new usage sample of a VPS (every sampling interval while it runs).
    Metrics {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        vm_id: VmId,
        sample: MetricSample,
    },
    /// A job started, progressed or ended.
    Job { job: Job },
    /// The connection fell behind and `missed` events were dropped: reload the list.
    Lagged { missed: u64 },
}
