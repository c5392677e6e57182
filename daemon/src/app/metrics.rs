//! Usage metrics: one bulk libvirt stats call per interval for every running server, turned into
//! rates, kept as a compact in-memory history (the last hour at the sampling interval, 24 hours
//! in 5-minute averages), pushed on `/api/v1/events`, counted into monthly traffic, and handed to the HTTP layer for
//! Prometheus (`http/prometheus.rs` renders the text format).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nuage_shared::{Event, MetricSample, MonthlyTraffic, VmMetrics};

use super::{Actor, App, AppError, OwnedEvent};
use crate::db::vms;
pub use crate::hypervisor::raw::DomainStats;

/// How long recent samples are kept at full resolution, and the older ones' step and span.
const RECENT_SPAN: Duration = Duration::from_secs(3600);
const COARSE_STEP: i64 = 300;
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 288: a small positive constant
const COARSE_SPAN: usize = (24 * 3600 / COARSE_STEP) as usize;

/// Every server's history, by server id.
#[derive(Default)]
pub struct Store {
    inner: Mutex<HashMap<nuage_shared::VmId, History>>,
}

#[derive(Default)]
struct History {
    /// The last counters read, with the time (ns since the epoch) they were read.
    last: Option<(i128, DomainStats)>,
    recent: VecDeque<MetricSample>,
    coarse: VecDeque<MetricSample>,
    /// Samples of the current coarse step, averaged when the step ends.
    bucket: Vec<MetricSample>,
}

/// `a - b` of a cumulative counter; a counter that went back (the guest's QEMU restarted) counts
/// from zero.
fn delta(now: u64, before: u64) -> u64 {
    now.checked_sub(before).unwrap_or(now)
}

/// The sample between two readings `secs` apart. Rates are shown to three figures: `f32` holds them.
#[allow(clippy::cast_possible_truncation)]
pub fn sample_between(t: i64, secs: f64, now: &DomainStats, before: &DomainStats) -> MetricSample {
    let rate = |a: u64, b: u64| (delta(a, b) as f64 / secs) as f32;
    MetricSample {
        t,
        cpu_percent: (delta(now.cpu_time_ns, before.cpu_time_ns) as f64 / (secs * 1e9) * 100.0)
            as f32,
        memory_mib: (now.rss_kib as f64 / 1024.0) as f32,
        disk_read_bytes_per_sec: rate(now.block_rd_bytes, before.block_rd_bytes),
        disk_write_bytes_per_sec: rate(now.block_wr_bytes, before.block_wr_bytes),
        disk_read_iops: rate(now.block_rd_reqs, before.block_rd_reqs),
        disk_write_iops: rate(now.block_wr_reqs, before.block_wr_reqs),
        net_rx_bytes_per_sec: rate(now.net_rx_bytes, before.net_rx_bytes),
        net_tx_bytes_per_sec: rate(now.net_tx_bytes, before.net_tx_bytes),
    }
}

fn average(t: i64, samples: &[MetricSample]) -> MetricSample {
    let n = samples.len().max(1) as f32;
    let avg = |f: fn(&MetricSample) -> f32| samples.iter().map(f).sum::<f32>() / n;
    MetricSample {
        t,
        cpu_percent: avg(|s| s.cpu_percent),
        memory_mib: avg(|s| s.memory_mib),
        disk_read_bytes_per_sec: avg(|s| s.disk_read_bytes_per_sec),
        disk_write_bytes_per_sec: avg(|s| s.disk_write_bytes_per_sec),
        disk_read_iops: avg(|s| s.disk_read_iops),
        disk_write_iops: avg(|s| s.disk_write_iops),
        net_rx_bytes_per_sec: avg(|s| s.net_rx_bytes_per_sec),
        net_tx_bytes_per_sec: avg(|s| s.net_tx_bytes_per_sec),
    }
}

impl History {
    /// Records new counters read at `at_ns`; returns the sample and the traffic since the last
    /// reading (none for the first reading).
    fn record(
        &mut self,
        at_ns: i128,
        stats: DomainStats,
        keep_recent: usize,
    ) -> Option<(MetricSample, u64, u64)> {
        let out = self.last.as_ref().and_then(|(t0, before)| {
            let secs = (at_ns - t0) as f64 / 1e9;
            (secs > 0.0).then(|| {
                let t = i64::try_from(at_ns / 1_000_000_000).unwrap_or(i64::MAX);
                (
                    sample_between(t, secs, &stats, before),
                    delta(stats.net_rx_bytes, before.net_rx_bytes),
                    delta(stats.net_tx_bytes, before.net_tx_bytes),
                )
            })
        });
        self.last = Some((at_ns, stats));
        if let Some((s, _, _)) = &out {
            self.push(*s, keep_recent);
        }
        out
    }

    fn push(&mut self, s: MetricSample, keep_recent: usize) {
        if let Some(first) = self.bucket.first() {
            if first.t / COARSE_STEP != s.t / COARSE_STEP {
                let step_start = first.t / COARSE_STEP * COARSE_STEP;
                self.coarse.push_back(average(step_start, &self.bucket));
                self.bucket.clear();
                while self.coarse.len() > COARSE_SPAN {
                    self.coarse.pop_front();
                }
            }
        }
        self.bucket.push(s);
        self.recent.push_back(s);
        while self.recent.len() > keep_recent {
            self.recent.pop_front();
        }
    }

    /// Samples from `since` on: coarse ones up to where the recent ones begin, then the recent.
    fn since(&self, since: i64) -> Vec<MetricSample> {
        let recent_from = self.recent.front().map_or(i64::MAX, |s| s.t);
        self.coarse
            .iter()
            .filter(|s| s.t >= since && s.t < recent_from)
            .chain(self.recent.iter().filter(|s| s.t >= since))
            .copied()
            .collect()
    }
}

/// `YYYY-MM` of a Unix time, UTC.
fn month_of(unix: i64) -> String {
    let dt =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}", dt.year(), u8::from(dt.month()))
}

fn now_ns() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
}

/// `?since=`: RFC 3339 or Unix seconds; none means everything kept.
pub fn parse_since(since: Option<&str>) -> Result<i64, AppError> {
    let Some(s) = since.filter(|s| !s.is_empty()) else {
        return Ok(0);
    };
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            AppError::Invalid(
                "since must be a time such as 2026-11-26T10:00:00Z, or Unix seconds.".into(),
            )
        })
}

impl App {
    /// One sampling cycle: a single bulk stats call, rates into histories, traffic into the
    /// database, samples to subscribers. Returns how many servers were sampled.
    pub async fn sample_metrics(&self) -> Result<usize, AppError> {
        let stats = self.hv_call(|hv| hv.all_stats()).await?;
        let at = now_ns();
        let host = self.daemon_id.clone();
        let owners: HashMap<nuage_shared::VmId, nuage_shared::UserId> = self
            .db
            .call(move |c| {
                Ok(vms::list_on_host(c, &host)?
                    .into_iter()
                    .map(|v| (v.id, v.owner_id))
                    .collect())
            })
            .await?;
        let keep = usize::try_from(
            (RECENT_SPAN.as_secs() / self.settings.host.metrics_interval.as_secs().max(1)).max(1),
        )
        .unwrap_or(1);
        let mut samples = Vec::new();
        let mut traffic = Vec::new();
        {
            let mut store = self.metrics.inner.lock().unwrap_or_else(|p| p.into_inner());
            // Forget servers that are gone; keep stopped ones' history.
            store.retain(|id, _| owners.contains_key(id));
            for s in stats {
                let Some(id) = s.name.strip_prefix("nuage-").map(nuage_shared::VmId::from) else {
                    continue;
                };
                let Some(owner) = owners.get(&id) else {
                    continue;
                };
                let h = store.entry(id.clone()).or_default();
                if let Some((sample, rx, tx)) = h.record(at, s, keep) {
                    if rx > 0 || tx > 0 {
                        traffic.push((id.clone(), rx, tx));
                    }
                    samples.push((id, owner.clone(), sample));
                }
            }
        }
        if !traffic.is_empty() {
            let month = month_of(i64::try_from(at / 1_000_000_000).unwrap_or(i64::MAX));
            self.db
                .call(move |c| vms::add_traffic_all(c, &month, &traffic))
                .await?;
        }
        let n = samples.len();
        for (vm_id, owner_id, sample) in samples {
            let _ = self.events.send(OwnedEvent {
                owner_id,
                event: Event::Metrics { vm_id, sample },
            });
        }
        Ok(n)
    }

    /// Samples every interval for as long as the app lives.
    pub(super) fn start_sampler(self: &Arc<Self>) {
        let app = Arc::downgrade(self);
        let every = self.settings.host.metrics_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(app) = app.upgrade() else { break };
                if let Err(e) = app.sample_metrics().await {
                    tracing::warn!(error = %super::chain(&e), "metrics sampling failed");
                }
            }
        });
    }

    /// `GET /vms/{id}/metrics?since=`: the owner's (or an admin's) view of a server's usage.
    pub async fn vm_metrics(
        &self,
        actor: &Actor,
        id: &str,
        since: Option<&str>,
    ) -> Result<VmMetrics, AppError> {
        let vm = self.visible_vm(actor, id).await?;
        let since = parse_since(since)?;
        let samples = self
            .metrics
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&vm.id)
            .map(|h| h.since(since))
            .unwrap_or_default();
        let month = month_of(time::OffsetDateTime::now_utc().unix_timestamp());
        let (key, m) = (vm.id.clone(), month.clone());
        let (rx, tx) = self.db.call(move |c| vms::traffic(c, &key, &m)).await?;
        Ok(VmMetrics {
            vm_id: vm.id,
            interval_secs: u32::try_from(self.settings.host.metrics_interval.as_secs())
                .unwrap_or(u32::MAX),
            samples,
            traffic: MonthlyTraffic {
                month,
                rx_bytes: rx,
                tx_bytes: tx,
            },
        })
    }

    /// What `GET /metrics` reports (the HTTP layer renders it in Prometheus' text format): the
    /// host's allocation and capacity, and each of its servers with its latest counters.
    pub async fn metrics_snapshot(&self) -> Result<MetricsSnapshot, AppError> {
        let host = self.daemon_id.clone();
        let (list, allocated) = self
            .db
            .call(move |c| Ok((vms::list_on_host(c, &host)?, vms::allocated(c, &host)?)))
            .await?;
        let room = self.host_room().await;
        let store = self.metrics.inner.lock().unwrap_or_else(|p| p.into_inner());
        let servers = list
            .into_iter()
            .map(|vm| {
                let last = store
                    .get(&vm.id)
                    .and_then(|h| h.last.as_ref())
                    .map(|(_, s)| s.clone());
                (vm, last)
            })
            .collect();
        Ok(MetricsSnapshot {
            allocated,
            capacity: room.limit,
            anonymous_refusals: self.anonymous_refusals(),
            servers,
        })
    }
}

/// The figures behind `GET /metrics`.
pub struct MetricsSnapshot {
    pub allocated: nuage_shared::Allocation,
    pub capacity: nuage_shared::Allocation,
    pub anonymous_refusals: u64,
    /// Each server on this host, with its latest counters when it has been sampled.
    pub servers: Vec<(nuage_shared::Vm, Option<DomainStats>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(cpu_s: u64, rx: u64) -> DomainStats {
        DomainStats {
            cpu_time_ns: cpu_s * 1_000_000_000,
            rss_kib: 2048,
            net_rx_bytes: rx,
            ..Default::default()
        }
    }

    #[test]
    fn rates_come_from_deltas_and_restarts_count_from_zero() {
        let mut h = History::default();
        let s = 1_000_000_000_i128;
        assert!(
            h.record(100 * s, stats(5, 1000), 360).is_none(),
            "first reading"
        );
        let (x, rx, _) = h.record(110 * s, stats(10, 3000), 360).unwrap();
        assert_eq!(x.cpu_percent, 50.0);
        assert_eq!(x.net_rx_bytes_per_sec, 200.0);
        assert_eq!(x.memory_mib, 2.0);
        assert_eq!(rx, 2000);
        // QEMU restarted: counters start again.
        let (x, rx, _) = h.record(120 * s, stats(1, 500), 360).unwrap();
        assert_eq!(x.cpu_percent, 10.0);
        assert_eq!(rx, 500);
    }

    #[test]
    fn history_is_bounded_and_downsampled() {
        let mut h = History::default();
        for i in 0..(3 * 3600 / 10) {
            h.push(
                MetricSample {
                    t: 1_000_000 + i * 10,
                    cpu_percent: (i % 2) as f32 * 100.0,
                    ..Default::default()
                },
                360,
            );
        }
        assert_eq!(h.recent.len(), 360);
        assert!(h.coarse.len() >= 35, "{}", h.coarse.len());
        assert!(h.coarse.iter().all(|s| s.t % COARSE_STEP == 0));
        assert!(h
            .coarse
            .iter()
            .skip(1)
            .all(|s| (s.cpu_percent - 50.0).abs() < 1.0));
        let all = h.since(0);
        assert!(
            all.windows(2).all(|w| w[0].t < w[1].t),
            "in time order, no overlap"
        );
        let last_hour = h.since(1_000_000 + 2 * 3600);
        assert!(last_hour.len() <= 361);
    }

    #[test]
    fn since_takes_rfc3339_or_seconds() {
        assert_eq!(parse_since(None).unwrap(), 0);
        assert_eq!(parse_since(Some("1700000000")).unwrap(), 1_700_000_000);
        assert_eq!(
            parse_since(Some("2023-11-14T22:13:20Z")).unwrap(),
            1_700_000_000
        );
        assert!(parse_since(Some("yesterday")).is_err());
        assert_eq!(month_of(1_700_000_000), "2023-11");
    }
}
