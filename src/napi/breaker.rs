//! Breakers by numeric id: one core breaker behind a mutex each, plus the batch entry point that
//! applies the fast successes the JS layer recorded without crossing into native code.

use std::cell::Cell as StdCell;

use napi::bindgen_prelude::{Float64ArraySlice, Object};
use napi::Env;
use napi_derive::napi;

use crate::core::breaker::{Admission, Breaker, BreakerConfig, Metrics, Settle};
use crate::core::env::breaker_env;

use super::error::to_js;
use super::options::{entries, env_lookup};
use super::page;
use super::shared;
use super::table::{self, Created, TABLE};

fn settle_kind(how: u32) -> Settle {
    match how {
        0 => Settle::Success,
        1 => Settle::Failure,
        2 => Settle::Timeout,
        _ => Settle::Ignored,
    }
}

/// The resolved options the JS layer needs on its side of the hot path.
#[napi(object)]
pub struct ResolvedOptions {
    pub call_timeout_ms: Option<f64>,
    pub slow_call_duration_ms: Option<f64>,
    pub reset_timeout_ms: f64,
    pub rolling_window_ms: f64,
    pub half_open_max_calls: u32,
}

/// The order in which `metrics()` writes its numbers. The JS layer checks it at load.
const METRICS_FIELDS: &[&str] = &[
    "word",
    "totalRequests",
    "successfulRequests",
    "failedRequests",
    "rejectedRequests",
    "timedOutRequests",
    "slowRequests",
    "latencyP50Ms",
    "latencyP95Ms",
    "latencyP99Ms",
    "latencyMeanMs",
    "latencyMaxMs",
    "window.totalRequests",
    "window.successfulRequests",
    "window.failedRequests",
    "window.rejectedRequests",
    "window.timedOutRequests",
    "window.slowRequests",
    "window.latencyP50Ms",
    "window.latencyP95Ms",
    "window.latencyP99Ms",
    "window.latencyMeanMs",
    "window.latencyMaxMs",
    "window.windowMs",
    "consecutiveFailures",
    "openCount",
    "openedAt",
    "nextAttemptAt",
    "currentResetTimeoutMs",
    "halfOpenInFlight",
];

#[napi(js_name = "metricsFields")]
pub fn metrics_fields() -> Vec<&'static str> {
    METRICS_FIELDS.to_vec()
}

fn write_metrics(m: &Metrics, out: &mut [f64]) {
    let l = &m.lifetime;
    let w = &m.window;
    let vals = [
        f64::from(m.word),
        (l.counts.completed() + l.counts.rejected) as f64,
        l.counts.successes as f64,
        l.counts.failures as f64,
        l.counts.rejected as f64,
        l.counts.timeouts as f64,
        l.counts.slow as f64,
        l.latency.p50_ms,
        l.latency.p95_ms,
        l.latency.p99_ms,
        l.latency.mean_ms,
        l.latency.max_ms,
        (w.counts.completed() + w.counts.rejected) as f64,
        w.counts.successes as f64,
        w.counts.failures as f64,
        w.counts.rejected as f64,
        w.counts.timeouts as f64,
        w.counts.slow as f64,
        w.latency.p50_ms,
        w.latency.p95_ms,
        w.latency.p99_ms,
        w.latency.mean_ms,
        w.latency.max_ms,
        m.window_ms,
        f64::from(m.consecutive_failures),
        m.open_count as f64,
        m.opened_at.unwrap_or(f64::NAN),
        m.next_attempt_at.unwrap_or(f64::NAN),
        m.current_reset_timeout_ms,
        f64::from(m.half_open_in_flight),
    ];
    for (slot, v) in out.iter_mut().zip(vals) {
        *slot = v;
    }
}

/// Runs `f` on the breaker with this id; `None` if it was dropped (never for a live JS object).
fn with<T>(id: f64, f: impl FnOnce(&mut Breaker) -> T) -> Option<T> {
    with_named(id, |b, _| f(b))
}

/// `with`, also telling `f` whether the breaker is named (process-wide, so shared through Redis).
fn with_named<T>(id: f64, f: impl FnOnce(&mut Breaker, bool) -> T) -> Option<T> {
    let (cell, named) = {
        let table = TABLE.lock();
        let (cell, named) = table.get_named(id)?;
        (cell.clone(), named)
    };
    let mut b = cell.lock();
    let before = b.word();
    let out = f(&mut b, named);
    publish_if_changed(id, &b, before);
    Some(out)
}

/// Publishes a changed state to every thread's page, and to the fleet when shared (under the
/// breaker's lock).
pub(super) fn publish_if_changed(id: f64, b: &Breaker, before: u32) {
    let after = b.word();
    if after != before {
        page::publish(table::slot_of(id), after, b.open_until());
        shared::after_change(id, b);
    }
}

fn unknown(id: f64) -> napi::Error {
    to_js(crate::core::error::Error::UnknownBreaker {
        name: format!("#{id}"),
    })
}

// Breakers are plain numeric ids rather than napi classes: a wrapped object costs about 700
// bytes of native bookkeeping per breaker, and a free function call is half the price of a
// method call. The JS layer frees an id through a FinalizationRegistry.

/// The result of `breakerCreate`.
#[napi(object)]
pub struct CreatedBreaker {
    pub id: f64,
    /// The state slot of this breaker in the thread's state page.
    pub slot: u32,
    /// True when an existing breaker of that name was joined.
    pub shared: bool,
    /// When joining with options that differ from the first creator's: what differs.
    pub conflict: Option<String>,
}

thread_local! {
    static CLEANUP_REGISTERED: StdCell<bool> = const { StdCell::new(false) };
}

/// Validates `options` (the user's object, host-only keys included) over the environment
/// defaults read from `env_vars`; throws one `ERR_INVALID_CONFIG` naming every problem. With a
/// `shared_name`, a breaker of that name anywhere in the process (any thread) is joined instead,
/// and the first creator's options win.
#[napi(js_name = "breakerCreate", catch_unwind)]
pub fn breaker_create(
    env: Env,
    options: Option<Object>,
    env_vars: Option<Object>,
    shared_name: Option<String>,
) -> napi::Result<CreatedBreaker> {
    let opts = match &options {
        Some(o) => entries(o)?,
        None => Vec::new(),
    };
    let cfg =
        BreakerConfig::resolve(breaker_env(env_lookup(env_vars.as_ref())), opts).map_err(to_js)?;
    if !CLEANUP_REGISTERED.with(|c| c.replace(true)) {
        // A worker that exits releases what its wrappers still hold.
        env.add_env_cleanup_hook((), |_| table::release_thread())?;
    }
    let created = TABLE
        .lock()
        .create(shared_name.as_deref(), || Breaker::new(cfg.clone()))
        .ok_or_else(|| {
            to_js(crate::core::error::Error::Internal(format!(
                "too many circuit breakers: at most {} may exist at once",
                page::CAPACITY
            )))
        })?;
    let (id, shared, conflict) = match created {
        Created::New(id) => {
            if shared_name.is_some() {
                shared::after_create(id);
            }
            (id, false, None)
        }
        Created::Existing(id, cell) => {
            let theirs = cell.lock().config().clone();
            let conflict = (theirs != cfg).then(|| describe_difference(&theirs, &cfg));
            (id, true, conflict)
        }
    };
    table::hold(id);
    Ok(CreatedBreaker {
        id,
        slot: table::slot_of(id) as u32,
        shared,
        conflict,
    })
}

/// Which resolved options differ, as `field = kept (requested other)`.
fn describe_difference(kept: &BreakerConfig, wanted: &BreakerConfig) -> String {
    kept.differences(wanted)
        .into_iter()
        .map(|(field, a, b)| format!("{field} = {a} (requested {b})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Releases this thread's reference (the JS wrapper was collected).
#[napi(js_name = "breakerDrop")]
pub fn breaker_drop(id: f64) {
    table::unhold(id);
}

/// This thread's state page: `[word, openUntil]` per breaker slot, written by Rust whenever a
/// breaker's state changes (from any thread). The JS layer creates it once per thread.
#[napi(js_name = "statePage", catch_unwind)]
pub fn state_page(env: Env) -> napi::Result<napi::bindgen_prelude::Float64ArraySlice<'static>> {
    let fill = |write: &mut dyn FnMut(usize, u32, Option<f64>)| {
        TABLE.lock().each(|slot, cell| {
            let b = cell.lock();
            write(slot, b.word(), b.open_until());
        })
    };
    let (page_id, ptr) = page::new_page(fill).ok_or_else(|| {
        to_js(crate::core::error::Error::Internal(
            "cannot allocate the state page".into(),
        ))
    })?;
    // Safety: the cells stay allocated until the finalizer drops the page; Rust writes them only
    // through atomics, and this thread's JS only reads them.
    unsafe {
        Float64ArraySlice::from_external(&env, ptr, 2 * page::CAPACITY, page_id, |_, id| {
            page::drop_page(id)
        })
    }
}

/// Live native breakers, named ones, and state pages (threads), for tests and diagnostics.
#[napi(object)]
pub struct NativeStats {
    pub breakers: u32,
    pub named: u32,
    pub pages: u32,
}

#[napi(js_name = "nativeStats")]
pub fn native_stats() -> NativeStats {
    let (breakers, named) = TABLE.lock().counts();
    NativeStats {
        breakers,
        named,
        pages: page::page_count(),
    }
}

#[napi(js_name = "breakerOptions")]
pub fn breaker_options(id: f64) -> napi::Result<ResolvedOptions> {
    with(id, |b| {
        let c = b.config();
        ResolvedOptions {
            call_timeout_ms: c.call_timeout_ms,
            slow_call_duration_ms: c.slow_call.map(|s| s.duration_ms),
            reset_timeout_ms: c.reset_timeout_ms,
            rolling_window_ms: c.rolling_window_ms,
            half_open_max_calls: c.half_open_max_calls,
        }
    })
    .ok_or_else(|| unknown(id))
}

/// A permit packs as `word + trial × 2^32` (exact in an f64); a rejection is negative:
/// `-1 - retryAfterMs`, or `-Infinity` when no time can be given (forced open).
#[napi(js_name = "breakerAcquire", catch_unwind)]
pub fn breaker_acquire(id: f64, now: f64) -> f64 {
    // A shared breaker whose open time is up goes half-open only with the fleet's trial lease.
    let admission = with_named(id, |b, named| {
        if named {
            if let Some(reject) = shared::gate(id, b, now) {
                return reject;
            }
        }
        b.acquire(now).0
    });
    match admission {
        Some(Admission::Permit { word, trial }) => {
            f64::from(word) + f64::from(trial) * 4_294_967_296.0
        }
        Some(Admission::Reject {
            retry_after_ms: Some(ms),
        }) => -1.0 - ms,
        Some(Admission::Reject {
            retry_after_ms: None,
        })
        | None => f64::NEG_INFINITY,
    }
}

/// Reports an outcome (0 success, 1 failure, 2 timeout, 3 ignored); returns the new word.
#[napi(js_name = "breakerSettle", catch_unwind)]
pub fn breaker_settle(id: f64, word: u32, trial: u32, how: u32, latency_ms: f64, now: f64) -> u32 {
    with(id, |b| {
        b.settle(word, trial, settle_kind(how), latency_ms, now);
        b.word()
    })
    .unwrap_or(0)
}

/// The cause of the last transition (`consecutive_failures`, `reset`, ...).
#[napi(js_name = "breakerLastCause")]
pub fn breaker_last_cause(id: f64) -> Option<&'static str> {
    with(id, |b| b.last_transition().map(|t| t.cause.as_str())).flatten()
}

#[napi(js_name = "breakerOpenFor", catch_unwind)]
pub fn breaker_open_for(id: f64, ms: f64, now: f64) -> napi::Result<u32> {
    with(id, |b| b.open_for(ms, now).map(|_| b.word()))
        .ok_or_else(|| unknown(id))?
        .map_err(to_js)
}

/// Manual controls: 0 force open, 1 disable, 2 reset, 3 probe early. Returns the new word.
#[napi(js_name = "breakerControl", catch_unwind)]
pub fn breaker_control(id: f64, op: u32, now: f64) -> napi::Result<u32> {
    with_named(id, |b, named| {
        match op {
            0 => b.force_open(now),
            1 => b.disable(now),
            2 => b.reset(now),
            // A shared breaker probes early (a passing health check) only with the fleet's
            // trial lease; without it, the lease is asked for and a later probe proceeds.
            _ if named && !shared::may_probe(id, b, now) => None,
            _ => b.probe_early(now),
        };
        b.word()
    })
    .ok_or_else(|| unknown(id))
}

/// Writes the metrics into `out` in `METRICS_FIELDS` order (NaN for "none").
#[napi(js_name = "breakerMetrics", catch_unwind)]
pub fn breaker_metrics(id: f64, now: f64, mut out: Float64ArraySlice) -> napi::Result<()> {
    let m = with(id, |b| b.metrics(now)).ok_or_else(|| unknown(id))?;
    // Safety: the JS thread that owns `out` is blocked in this call.
    write_metrics(&m, unsafe { out.as_mut() });
    Ok(())
}

/// Applies a batch of outcomes recorded by the JS layer: `count` entries of five numbers
/// `(breaker id, word, how, latencyMs, endMs)`, where `how` is 0 success, 1 failure, 2 timeout,
/// 3 ignored or 4 a rejection decided in JS. Returns the state word of the last entry's breaker
/// (the JS layer ends a batch with a failure to learn the state the failure left).
#[napi(js_name = "flushBatch", catch_unwind)]
pub fn flush_batch(buf: Float64ArraySlice, count: u32) -> u32 {
    let table = TABLE.lock();
    let n = (count as usize).min(buf.len() / BATCH_STRIDE);
    let mut entries = buf[..n * BATCH_STRIDE]
        .chunks_exact(BATCH_STRIDE)
        .peekable();
    let mut last_word = 0;
    // Runs of entries for one breaker (the common case) take its lock once.
    while let Some(first) = entries.next() {
        let id = first[0];
        let Some(cell) = table.get(id) else { continue };
        let mut b = cell.lock();
        let before = b.word();
        let mut e = first;
        loop {
            match e[2] as u32 {
                4 => b.note_rejected(e[4]),
                how => {
                    b.settle(e[1] as u32, 0, settle_kind(how), e[3], e[4]);
                }
            }
            match entries.peek() {
                Some(next) if next[0] == id => e = entries.next().unwrap_or(e),
                _ => break,
            }
        }
        publish_if_changed(id, &b, before);
        last_word = b.word();
    }
    last_word
}

/// Numbers per batch entry.
const BATCH_STRIDE: usize = 5;
