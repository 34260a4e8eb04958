//! `NativeHealthMonitor`: the core monitor behind a mutex. The JS layer runs the checks and
//! passes `now` from its clock; this side validates options, keeps the histories, decides
//! what is due, and packs what each check changed into one number.

use napi::bindgen_prelude::{Float64ArraySlice, Object};
use napi_derive::napi;
use parking_lot::Mutex;

use crate::core::env::{health_enabled, health_env};
use crate::core::health::config::validate_monitor_options;
use crate::core::health::{CheckEffect, HealthConfig, Level, Monitor, Snapshot, Status};

use super::error::to_js;
use super::options::{entries, env_lookup};

/// The order in which `health()` and `summary()` write a service's numbers (NaN for "none").
/// The JS layer checks it at load.
const HEALTH_FIELDS: &[&str] = &[
    "id",
    "status",
    "errorRate",
    "uptime",
    "latencyP50Ms",
    "latencyP95Ms",
    "latencyP99Ms",
    "lastCheck",
    "consecutiveFailures",
    "totalChecks",
    "failedChecks",
    "nextCheckAt",
    "registeredAt",
    "inFlight",
];

/// The numbers before the records in `summary()`.
const SUMMARY_HEAD: usize = 6;

#[napi(js_name = "healthFields")]
pub fn health_fields() -> Vec<&'static str> {
    HEALTH_FIELDS.to_vec()
}

fn write_snapshot(id: u32, s: &Snapshot, out: &mut [f64]) {
    let vals = [
        f64::from(id),
        f64::from(s.status.code()),
        s.error_rate,
        s.uptime_pct,
        s.latency.p50_ms,
        s.latency.p95_ms,
        s.latency.p99_ms,
        s.last_check.unwrap_or(f64::NAN),
        f64::from(s.consecutive_failures),
        s.total_checks as f64,
        s.failed_checks as f64,
        s.next_check_at,
        s.registered_at,
        if s.in_flight { 1.0 } else { 0.0 },
    ];
    for (slot, v) in out.iter_mut().zip(vals) {
        *slot = v;
    }
}

fn level_code(l: Option<Level>) -> u32 {
    match l {
        None => 0,
        Some(Level::Warning) => 1,
        Some(Level::Critical) => 2,
    }
}

/// A check's effect in one u32: bits 0-1 the status, 2-3 the previous status, 4-8 the alerts
/// (in `AlertKind` order), 9-10 the error-rate level, 11-12 the latency level. A result that
/// did not count (late, or for an unknown service) is `u32::MAX`.
fn pack(e: Option<CheckEffect>) -> u32 {
    let Some(e) = e else { return u32::MAX };
    e.status.code()
        | (e.previous.code() << 2)
        | ((e.alerts.0 & 0x1f) << 4)
        | (level_code(e.error_rate_level) << 9)
        | (level_code(e.latency_level) << 11)
}

/// The resolved options the JS layer needs.
#[napi(object)]
pub struct ResolvedHealthOptions {
    pub check_interval_ms: f64,
    pub check_timeout_ms: f64,
    pub latency_warning_ms: f64,
    pub latency_critical_ms: f64,
    pub error_rate_warning: f64,
    pub error_rate_critical: f64,
    pub history_size: u32,
    pub alert_cooldown_ms: f64,
}

impl From<&HealthConfig> for ResolvedHealthOptions {
    fn from(c: &HealthConfig) -> Self {
        Self {
            check_interval_ms: c.check_interval_ms,
            check_timeout_ms: c.check_timeout_ms,
            latency_warning_ms: c.latency_warning_ms,
            latency_critical_ms: c.latency_critical_ms,
            error_rate_warning: c.error_rate_warning,
            error_rate_critical: c.error_rate_critical,
            history_size: c.history_size,
            alert_cooldown_ms: c.alert_cooldown_ms,
        }
    }
}

/// Whether `HealthMonitor.start()` should run, from `HEALTH_CHECK_ENABLED` in `env`.
#[napi(js_name = "healthCheckEnabled")]
pub fn health_check_enabled(env: Option<Object>) -> napi::Result<bool> {
    health_enabled(env_lookup(env.as_ref())).map_err(to_js)
}

#[napi]
pub struct NativeHealthMonitor {
    inner: Mutex<Monitor>,
}

#[napi]
impl NativeHealthMonitor {
    /// Validates the monitor's own options (all host-only: `clock`, `registry`).
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<Object>) -> napi::Result<Self> {
        let opts = match &options {
            Some(o) => entries(o)?,
            None => Vec::new(),
        };
        validate_monitor_options(opts).map_err(to_js)?;
        Ok(Self {
            inner: Mutex::new(Monitor::new()),
        })
    }

    /// Validates a service's options over the environment defaults read from `env`, and adds
    /// the service; returns its id. Throws one `ERR_INVALID_CONFIG` naming every problem.
    #[napi(catch_unwind)]
    pub fn register(
        &self,
        options: Option<Object>,
        env: Option<Object>,
        now: f64,
    ) -> napi::Result<u32> {
        let opts = match &options {
            Some(o) => entries(o)?,
            None => Vec::new(),
        };
        let cfg =
            HealthConfig::resolve(health_env(env_lookup(env.as_ref())), opts).map_err(to_js)?;
        Ok(self.inner.lock().register(cfg, now))
    }

    #[napi]
    pub fn options(&self, id: u32) -> Option<ResolvedHealthOptions> {
        self.inner
            .lock()
            .service(id)
            .map(|s| ResolvedHealthOptions::from(s.config()))
    }

    #[napi]
    pub fn unregister(&self, id: u32) -> bool {
        self.inner.lock().unregister(id)
    }

    #[napi(js_name = "restartSchedule", catch_unwind)]
    pub fn restart_schedule(&self, now: f64) {
        self.inner.lock().restart_schedule(now);
    }

    /// The checks due at `now`, each now in flight: `[id, token, id, token, ...]`.
    #[napi(js_name = "takeDue", catch_unwind)]
    pub fn take_due(&self, now: f64) -> Vec<u32> {
        let due = self.inner.lock().take_due(now);
        let mut out = Vec::with_capacity(due.len() * 2);
        for (id, token) in due {
            out.push(id);
            out.push(token);
        }
        out
    }

    /// When to call `takeDue` next (clock ms), or NaN with no services.
    #[napi(js_name = "nextWake", catch_unwind)]
    pub fn next_wake(&self) -> f64 {
        self.inner.lock().next_wake().unwrap_or(f64::NAN)
    }

    /// Starts a check outside the schedule: its token, or 0 when one is already in flight.
    #[napi]
    pub fn begin(&self, id: u32) -> u32 {
        self.inner.lock().begin(id).unwrap_or(0)
    }

    /// Records a check's result; returns its packed effect (see `pack`).
    #[napi(catch_unwind)]
    pub fn finish(&self, id: u32, token: u32, ok: bool, latency_ms: f64, now: f64) -> u32 {
        pack(self.inner.lock().finish(id, token, ok, latency_ms, now))
    }

    /// Writes one service's health into `out` in `HEALTH_FIELDS` order; false if unknown.
    #[napi(catch_unwind)]
    pub fn health(&self, id: u32, now: f64, mut out: Float64ArraySlice) -> bool {
        let Some(s) = self.inner.lock().snapshot(id, now) else {
            return false;
        };
        // Safety: the JS thread that owns `out` is blocked in this call.
        write_snapshot(id, &s, unsafe { out.as_mut() });
        true
    }

    /// Writes the summary into `out`: the overall status and the counts (total, healthy,
    /// degraded, unhealthy, unknown), then every service's health, one record of
    /// `HEALTH_FIELDS` after another, as many as fit. Returns the number of services.
    #[napi(catch_unwind)]
    pub fn summary(&self, now: f64, mut out: Float64ArraySlice) -> u32 {
        let m = self.inner.lock();
        // Safety: as above.
        let out = unsafe { out.as_mut() };
        if out.len() < SUMMARY_HEAD {
            return m.len() as u32;
        }
        let (head, records) = out.split_at_mut(SUMMARY_HEAD);
        let s = m.summary();
        let counts = [
            s.status.code(),
            s.total,
            s.healthy,
            s.degraded,
            s.unhealthy,
            s.unknown,
        ];
        for (slot, v) in head.iter_mut().zip(counts) {
            *slot = f64::from(v);
        }
        let mut chunks = records.chunks_exact_mut(HEALTH_FIELDS.len());
        for (id, s) in m.snapshots(now) {
            match chunks.next() {
                Some(chunk) => write_snapshot(id, &s, chunk),
                None => break,
            }
        }
        m.len() as u32
    }
}

/// The status names, by code.
#[napi(js_name = "healthStatusNames")]
pub fn health_status_names() -> Vec<&'static str> {
    [
        Status::Unknown,
        Status::Healthy,
        Status::Degraded,
        Status::Unhealthy,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect()
}

/// The alert type names, by bit.
#[napi(js_name = "healthAlertTypes")]
pub fn health_alert_types() -> Vec<&'static str> {
    crate::core::health::AlertKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect()
}
