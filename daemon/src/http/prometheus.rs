//! `GET /metrics`: the app's figures (`app::metrics::MetricsSnapshot`) in Prometheus' text
//! format 0.0.4. Rendering is the HTTP layer's job: the app knows no wire formats.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use nuage_shared::ErrorBody;

use super::{ApiResult, AppState};
use crate::app::metrics::{DomainStats, MetricsSnapshot};
use crate::app::Actor;

/// Prometheus metrics: per-server series labelled by server id, owner and name, and the host's
/// allocation. Served at `/metrics` and `/api/v1/metrics` with an admin's token (an API token
/// in Prometheus' `authorization` setting): a reverse proxy on the same host makes every client
/// look like loopback, so the peer's address proves nothing.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn prometheus(State(app): State<AppState>, actor: Actor) -> ApiResult<Response> {
    prometheus_text(app, actor).await
}

/// The same as `/metrics`, under `/api/v1` (an operation id of its own: ids are unique).
#[utoipa::path(get, path = "/metrics", tag = "service", operation_id = "prometheus_v1",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn prometheus_v1(State(app): State<AppState>, actor: Actor) -> ApiResult<Response> {
    prometheus_text(app, actor).await
}

async fn prometheus_text(app: AppState, actor: Actor) -> ApiResult<Response> {
    actor.require_admin()?;
    let text = render(&app.metrics_snapshot().await?);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The text format: host gauges, then one series per server and counter.
pub fn render(snap: &MetricsSnapshot) -> String {
    let mut out = String::with_capacity(256 + snap.servers.len() * 900);
    let gauge = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    for (name, help, alloc, cap) in [
        (
            "vcpus",
            "vCPUs",
            snap.allocated.vcpus as f64,
            snap.capacity.vcpus as f64,
        ),
        (
            "memory_bytes",
            "memory",
            (snap.allocated.memory_mib << 20) as f64,
            (snap.capacity.memory_mib << 20) as f64,
        ),
        (
            "disk_bytes",
            "disk",
            (snap.allocated.disk_gib << 30) as f64,
            (snap.capacity.disk_gib << 30) as f64,
        ),
    ] {
        let a = format!("nuage_host_allocated_{name}");
        gauge(
            &mut out,
            &a,
            &format!("{help} allocated to servers"),
            "gauge",
        );
        let _ = writeln!(out, "{a} {alloc}");
        let c = format!("nuage_host_capacity_{name}");
        gauge(
            &mut out,
            &c,
            &format!("{help} the host can allocate"),
            "gauge",
        );
        let _ = writeln!(out, "{c} {cap}");
    }
    gauge(
        &mut out,
        "nuage_host_servers",
        "servers on this host",
        "gauge",
    );
    let _ = writeln!(out, "nuage_host_servers {}", snap.allocated.vms);
    gauge(
        &mut out,
        "nuage_audit_anonymous_refusals_total",
        "requests refused for want of a valid credential (counted, not stored)",
        "counter",
    );
    let _ = writeln!(
        out,
        "nuage_audit_anonymous_refusals_total {}",
        snap.anonymous_refusals
    );

    type Get = fn(&DomainStats) -> f64;
    let series: [(&str, &str, &str, Get); 8] = [
        (
            "nuage_vm_cpu_seconds_total",
            "CPU time used",
            "counter",
            |s| s.cpu_time_ns as f64 / 1e9,
        ),
        (
            "nuage_vm_memory_resident_bytes",
            "memory held on the host",
            "gauge",
            |s| (s.rss_kib * 1024) as f64,
        ),
        (
            "nuage_vm_disk_read_bytes_total",
            "bytes read",
            "counter",
            |s| s.block_rd_bytes as f64,
        ),
        (
            "nuage_vm_disk_written_bytes_total",
            "bytes written",
            "counter",
            |s| s.block_wr_bytes as f64,
        ),
        (
            "nuage_vm_disk_reads_total",
            "read operations",
            "counter",
            |s| s.block_rd_reqs as f64,
        ),
        (
            "nuage_vm_disk_writes_total",
            "write operations",
            "counter",
            |s| s.block_wr_reqs as f64,
        ),
        (
            "nuage_vm_network_receive_bytes_total",
            "bytes received",
            "counter",
            |s| s.net_rx_bytes as f64,
        ),
        (
            "nuage_vm_network_transmit_bytes_total",
            "bytes sent",
            "counter",
            |s| s.net_tx_bytes as f64,
        ),
    ];
    let labels = |vm: &nuage_shared::Vm| {
        format!(
            "vm=\"{}\",owner=\"{}\",name=\"{}\"",
            escape(&vm.id),
            escape(&vm.owner_id),
            escape(&vm.name)
        )
    };
    gauge(
        &mut out,
        "nuage_vm_running",
        "1 when the server runs",
        "gauge",
    );
    for (vm, _) in &snap.servers {
        let running = vm.state == nuage_shared::VmState::Running;
        let _ = writeln!(
            out,
            "nuage_vm_running{{{}}} {}",
            labels(vm),
            u8::from(running)
        );
    }
    gauge(&mut out, "nuage_vm_vcpus", "vCPUs allocated", "gauge");
    for (vm, _) in &snap.servers {
        let _ = writeln!(out, "nuage_vm_vcpus{{{}}} {}", labels(vm), vm.vcpus);
    }
    for (name, help, kind, get) in series {
        gauge(&mut out, name, help, kind);
        for (vm, last) in &snap.servers {
            if let Some(s) = last {
                let _ = writeln!(out, "{name}{{{}}} {}", labels(vm), get(s));
            }
        }
    }
    out
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
