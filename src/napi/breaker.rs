//! `NativeBreaker`: one core breaker behind a mutex, plus the batch entry point that applies
//! the fast successes the JS layer recorded without crossing into native code.

use std::sync::Arc;

use napi::bindgen_prelude::{Float64ArraySlice, Object};
use napi_derive::napi;
use parking_lot::Mutex;

use crate::core::breaker::{Admission, Breaker, BreakerConfig, Metrics, Settle};
use crate::core::env::breaker_env;

use super::error::to_js;
use super::options::{entries, env_lookup};

type Cell = Arc<Mutex<Breaker>>;

/// Breakers by numeric id, so a batch of outcomes can name them with a number. An id is
/// `slot + generation × 2^24`: a slot freed by a collected breaker and reused by a new one gets
/// a new generation, so late batch entries of the old breaker can never count for the new one.
static TABLE: Mutex<Table> = Mutex::new(Table {
    slots: Vec::new(),
    free: Vec::new(),
});

const SLOT_BITS: u32 = 24;
const SLOT_SPACE: f64 = (1u64 << SLOT_BITS) as f64;

struct Slot {
    generation: u32,
    cell: Option<Cell>,
}

struct Table {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

impl Table {
    fn insert(&mut self, cell: Cell) -> f64 {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    cell: None,
                });
                self.slots.len() - 1
            }
        };
        let s = &mut self.slots[slot];
        s.generation = s.generation.wrapping_add(1);
        s.cell = Some(cell);
        slot as f64 + f64::from(s.generation) * SLOT_SPACE
    }

    fn split(id: f64) -> (usize, u32) {
        let id = id as u64;
        (
            (id & ((1 << SLOT_BITS) - 1)) as usize,
            (id >> SLOT_BITS) as u32,
        )
    }

    fn get(&self, id: f64) -> Option<&Cell> {
        let (slot, generation) = Self::split(id);
        let s = self.slots.get(slot)?;
        if s.generation == generation {
            s.cell.as_ref()
        } else {
            None
        }
    }

    fn remove(&mut self, id: f64) {
        let (slot, _) = Self::split(id);
        if self.get(id).is_some() {
            self.slots[slot].cell = None;
            self.free.push(slot);
        }
    }
}

#[napi]
pub struct NativeBreaker {
    id: f64,
    cell: Cell,
}

impl Drop for NativeBreaker {
    fn drop(&mut self) {
        TABLE.lock().remove(self.id);
    }
}

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

#[napi]
impl NativeBreaker {
    /// Validates `options` (the user's object, host-only keys included) over the environment
    /// defaults read from `env`; throws one `ERR_INVALID_CONFIG` naming every problem.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<Object>, env: Option<Object>) -> napi::Result<Self> {
        let opts = match &options {
            Some(o) => entries(o)?,
            None => Vec::new(),
        };
        let cfg =
            BreakerConfig::resolve(breaker_env(env_lookup(env.as_ref())), opts).map_err(to_js)?;
        let cell = Arc::new(Mutex::new(Breaker::new(cfg)));
        let id = TABLE.lock().insert(cell.clone());
        Ok(Self { id, cell })
    }

    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.id
    }

    #[napi]
    pub fn options(&self) -> ResolvedOptions {
        let b = self.cell.lock();
        let c = b.config();
        ResolvedOptions {
            call_timeout_ms: c.call_timeout_ms,
            slow_call_duration_ms: c.slow_call.map(|s| s.duration_ms),
            reset_timeout_ms: c.reset_timeout_ms,
            rolling_window_ms: c.rolling_window_ms,
            half_open_max_calls: c.half_open_max_calls,
        }
    }

    #[napi]
    pub fn word(&self) -> u32 {
        self.cell.lock().word()
    }

    /// A permit packs as `word + trial × 2^32` (exact in an f64); a rejection is negative:
    /// `-1 - retryAfterMs`, or `-Infinity` when no time can be given (forced open).
    #[napi(catch_unwind)]
    pub fn acquire(&self, now: f64) -> f64 {
        let (admission, _) = self.cell.lock().acquire(now);
        match admission {
            Admission::Permit { word, trial } => {
                f64::from(word) + f64::from(trial) * 4_294_967_296.0
            }
            Admission::Reject {
                retry_after_ms: Some(ms),
            } => -1.0 - ms,
            Admission::Reject {
                retry_after_ms: None,
            } => f64::NEG_INFINITY,
        }
    }

    /// Reports an outcome (0 success, 1 failure, 2 timeout, 3 ignored); returns the new word.
    #[napi(catch_unwind)]
    pub fn settle(&self, word: u32, trial: u32, how: u32, latency_ms: f64, now: f64) -> u32 {
        let mut b = self.cell.lock();
        b.settle(word, trial, settle_kind(how), latency_ms, now);
        b.word()
    }

    /// `NaN` unless open.
    #[napi]
    pub fn open_until(&self) -> f64 {
        self.cell.lock().open_until().unwrap_or(f64::NAN)
    }

    /// The cause of the last transition (`consecutive_failures`, `reset`, ...).
    #[napi]
    pub fn last_cause(&self) -> Option<&'static str> {
        self.cell.lock().last_transition().map(|t| t.cause.as_str())
    }

    #[napi(catch_unwind)]
    pub fn open_for(&self, ms: f64, now: f64) -> napi::Result<u32> {
        let mut b = self.cell.lock();
        b.open_for(ms, now).map_err(to_js)?;
        Ok(b.word())
    }

    #[napi]
    pub fn force_open(&self, now: f64) -> u32 {
        let mut b = self.cell.lock();
        b.force_open(now);
        b.word()
    }

    #[napi]
    pub fn disable(&self, now: f64) -> u32 {
        let mut b = self.cell.lock();
        b.disable(now);
        b.word()
    }

    #[napi]
    pub fn reset(&self, now: f64) -> u32 {
        let mut b = self.cell.lock();
        b.reset(now);
        b.word()
    }

    #[napi]
    pub fn probe_early(&self, now: f64) -> u32 {
        let mut b = self.cell.lock();
        b.probe_early(now);
        b.word()
    }

    /// Writes the metrics into `out` in `METRICS_FIELDS` order (NaN for "none").
    #[napi(catch_unwind)]
    pub fn metrics(&self, now: f64, mut out: Float64ArraySlice) {
        let m = self.cell.lock().metrics(now);
        // Safety: the JS thread that owns `out` is blocked in this call.
        write_metrics(&m, unsafe { out.as_mut() });
    }
}

/// Applies a batch of outcomes recorded by the JS layer: `count` entries of four numbers
/// `(breaker id, word, latencyMs, endMs)`. A negative latency marks a rejection counted in JS.
#[napi(js_name = "flushBatch", catch_unwind)]
pub fn flush_batch(buf: Float64ArraySlice, count: u32) {
    let table = TABLE.lock();
    let n = (count as usize).min(buf.len() / 4);
    let mut entries = buf[..n * 4].chunks_exact(4).peekable();
    // Runs of entries for one breaker (the common case) take its lock once.
    while let Some(first) = entries.next() {
        let id = first[0];
        let Some(cell) = table.get(id) else { continue };
        let mut b = cell.lock();
        let mut e = first;
        loop {
            if e[2] < 0.0 {
                b.note_rejected(e[3]);
            } else {
                b.settle(e[1] as u32, 0, Settle::Success, e[2], e[3]);
            }
            match entries.peek() {
                Some(next) if next[0] == id => e = entries.next().unwrap_or(e),
                _ => break,
            }
        }
    }
}
