//! `NativeQueue`: the retry queue's state behind the JS `RequestQueue`. The JS layer runs the
//! handlers and reports each outcome; the journal's writer thread reports durable groups
//! through a weak threadsafe function (it never keeps the process alive by itself).

use napi::bindgen_prelude::{Float64ArraySlice, FnArgs, Function, Object};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;

use crate::core::fallback::FallbackConfig;
use crate::core::queue::{DeadLetter, Item, Outcome, Queue, ReplayReport, Work};

use super::error::to_js;
use super::fallback::{resolve, resolved, ResolvedFallbackOptions};

#[napi]
pub struct NativeQueue {
    q: Queue,
    report: ReplayReport,
    cfg: FallbackConfig,
}

/// An item as the JS layer sees it. `num` is the number inside `id`, for calls back here.
#[napi(object)]
pub struct QueueItem {
    pub num: f64,
    pub id: String,
    pub service: String,
    pub operation: Option<String>,
    /// JSON text.
    pub payload: Option<String>,
    pub idempotency_key: Option<String>,
    pub attempts: u32,
    pub enqueued_at: f64,
    pub next_attempt_at: f64,
    pub last_error: Option<String>,
    pub running: bool,
    pub dead_at: Option<f64>,
    pub reason: Option<String>,
}

#[napi(object)]
pub struct ScheduleEntry {
    pub service: String,
    pub next_due_at: f64,
    pub running: u32,
}

#[napi(object)]
pub struct FailOutcome {
    pub dead: bool,
    pub reason: Option<String>,
    pub next_attempt_at: f64,
    pub delay_ms: f64,
}

#[napi(object)]
pub struct NativeQueueMetrics {
    pub queued: u32,
    pub running: u32,
    pub dead_letters: u32,
    pub remembered_keys: u32,
    pub enqueued: f64,
    pub deduplicated: f64,
    pub rejected_full: f64,
    pub attempts: f64,
    pub completed: f64,
    pub failed_attempts: f64,
    pub dead_lettered: f64,
    pub compactions: f64,
    pub journal_bytes: f64,
    pub journal_failed: bool,
}

#[napi(object)]
pub struct NativeReplayReport {
    pub records: f64,
    pub torn_bytes: f64,
    pub items: u32,
    pub dead_letters: u32,
    pub interrupted: u32,
}

fn item_js(q: &Queue, i: &Item, dead: Option<&DeadLetter>) -> QueueItem {
    QueueItem {
        num: i.id as f64,
        id: q.id_string(i.id),
        service: i.service.to_string(),
        operation: i.operation().map(String::from),
        payload: i.payload().map(String::from),
        idempotency_key: i.key.clone(),
        attempts: i.attempts,
        enqueued_at: i.enqueued_at,
        next_attempt_at: i.due_at,
        last_error: i.last_error.clone(),
        running: i.running,
        dead_at: dead.map(|d| d.at),
        reason: dead.map(|d| d.reason.as_str().to_string()),
    }
}

fn num(n: f64) -> u64 {
    if n.is_finite() && n >= 0.0 {
        n as u64
    } else {
        u64::MAX
    }
}

#[napi]
impl NativeQueue {
    /// Validates the options, and with `persistPath` opens and replays the journal.
    /// `onCommit(seq, error)` hears of every durable group of journal records.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        options: Option<Object>,
        env: Option<Object>,
        now: f64,
        on_commit: Function<FnArgs<(f64, Option<String>)>, ()>,
    ) -> napi::Result<Self> {
        let cfg = resolve(options.as_ref(), env.as_ref())?;
        let tsfn = on_commit
            .build_threadsafe_function::<FnArgs<(f64, Option<String>)>>()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        let notify = Box::new(move |seq: u64, err: Option<String>| {
            tsfn.call(
                FnArgs {
                    data: (seq as f64, err),
                },
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        });
        let (q, report) = Queue::open(cfg.queue.clone(), notify, now).map_err(to_js)?;
        Ok(Self { q, report, cfg })
    }

    #[napi]
    pub fn options(&self) -> ResolvedFallbackOptions {
        resolved(&self.cfg)
    }

    #[napi]
    pub fn replay_report(&self) -> NativeReplayReport {
        let r = &self.report;
        NativeReplayReport {
            records: r.records as f64,
            torn_bytes: r.torn_bytes as f64,
            items: r.items as u32,
            dead_letters: r.dead_letters as u32,
            interrupted: r.interrupted as u32,
        }
    }

    /// What every id of this queue starts with.
    #[napi(getter)]
    pub fn id_prefix(&self) -> String {
        let s = self.q.id_string(0);
        s[..s.len() - 1].to_string()
    }

    /// Adds an item (`operation` and JSON `payload`, or neither for a function item); returns
    /// its number and writes `[existing (0 or 1), journal seq to wait for]` into `out`.
    #[napi(catch_unwind)]
    pub fn enqueue(
        &mut self,
        service: String,
        operation: Option<String>,
        payload: Option<String>,
        key: Option<String>,
        now: f64,
        mut out: Float64ArraySlice,
    ) -> napi::Result<f64> {
        let work = match operation {
            Some(operation) => Work::Operation {
                operation,
                payload: payload.unwrap_or_else(|| "null".to_string()),
            },
            None => Work::Function,
        };
        let e = self.q.enqueue(&service, work, key, now).map_err(to_js)?;
        // Safety: the JS thread that owns `out` is blocked in this call.
        let out = unsafe { out.as_mut() };
        if out.len() >= 2 {
            out[0] = f64::from(u8::from(e.existing));
            out[1] = e.seq as f64;
        }
        Ok(e.id as f64)
    }

    #[napi]
    pub fn schedule(&self) -> Vec<ScheduleEntry> {
        self.q
            .schedule()
            .into_iter()
            .map(|(s, due, running)| ScheduleEntry {
                service: s.to_string(),
                next_due_at: due,
                running,
            })
            .collect()
    }

    /// When the next queued item expires: NaN for never, -Infinity for now.
    #[napi]
    pub fn next_expiry(&self) -> f64 {
        self.q.next_expiry().unwrap_or(f64::NAN)
    }

    #[napi(catch_unwind)]
    pub fn peek(&self, service: String, now: f64) -> Option<QueueItem> {
        self.q
            .peek(&service, now)
            .map(|i| item_js(&self.q, i, None))
    }

    /// Starts an attempt; returns its number (from 1).
    #[napi(catch_unwind)]
    pub fn start(&mut self, num: f64, now: f64) -> napi::Result<u32> {
        self.q.start(self::num(num), now).map_err(to_js)
    }

    #[napi(catch_unwind)]
    pub fn complete(&mut self, num: f64, now: f64) -> napi::Result<()> {
        self.q.complete(self::num(num), now).map_err(to_js)
    }

    #[napi(catch_unwind)]
    pub fn fail(&mut self, num: f64, error: String, now: f64) -> napi::Result<FailOutcome> {
        let out = self.q.fail(self::num(num), error, now).map_err(to_js)?;
        Ok(match out {
            Outcome::Retry { due_at, delay_ms } => FailOutcome {
                dead: false,
                reason: None,
                next_attempt_at: due_at,
                delay_ms,
            },
            Outcome::Dead { reason } => FailOutcome {
                dead: true,
                reason: Some(reason.as_str().to_string()),
                next_attempt_at: f64::NAN,
                delay_ms: f64::NAN,
            },
        })
    }

    #[napi(catch_unwind)]
    pub fn defer(&mut self, num: f64, due_at: f64, reason: String) -> napi::Result<()> {
        self.q.defer(self::num(num), due_at, reason).map_err(to_js)
    }

    /// Dead-letters expired items; returns them.
    #[napi(catch_unwind)]
    pub fn expire(&mut self, now: f64) -> Vec<QueueItem> {
        let ids = self.q.expire(now);
        ids.into_iter()
            .filter_map(|id| {
                self.q
                    .dead_letter(id)
                    .map(|d| item_js(&self.q, &d.item, Some(d)))
            })
            .collect()
    }

    /// The dead letter with this number, if any.
    #[napi]
    pub fn dead_letter(&self, num: f64) -> Option<QueueItem> {
        self.q
            .dead_letter(self::num(num))
            .map(|d| item_js(&self.q, &d.item, Some(d)))
    }

    #[napi(catch_unwind)]
    pub fn list(&self, service: Option<String>) -> Vec<QueueItem> {
        self.q
            .list(service.as_deref())
            .into_iter()
            .map(|i| item_js(&self.q, i, None))
            .collect()
    }

    #[napi(catch_unwind)]
    pub fn dead_letters(&self) -> Vec<QueueItem> {
        self.q
            .dead_letters()
            .into_iter()
            .map(|d| item_js(&self.q, &d.item, Some(d)))
            .collect()
    }

    #[napi(catch_unwind)]
    pub fn clear_dead_letters(&mut self) -> u32 {
        self.q.clear_dead_letters() as u32
    }

    #[napi]
    pub fn metrics(&self) -> NativeQueueMetrics {
        let s = self.q.stats();
        let running = self.q.running();
        NativeQueueMetrics {
            queued: (self.q.len() - running) as u32,
            running: running as u32,
            dead_letters: self.q.dead_letter_count() as u32,
            remembered_keys: self.q.remembered_keys() as u32,
            enqueued: s.enqueued as f64,
            deduplicated: s.deduplicated as f64,
            rejected_full: s.rejected_full as f64,
            attempts: s.attempts as f64,
            completed: s.completed as f64,
            failed_attempts: s.failed_attempts as f64,
            dead_lettered: s.dead_lettered as f64,
            compactions: s.compactions as f64,
            journal_bytes: self.q.journal_bytes() as f64,
            journal_failed: self.q.journal_failed(),
        }
    }

    /// Rewrites the journal as a snapshot of the state (no-op in memory).
    #[napi(catch_unwind)]
    pub fn compact(&mut self) -> napi::Result<()> {
        self.q.compact().map_err(to_js)
    }

    /// Writes and syncs the journal on this thread; returns the durable sequence number.
    #[napi(catch_unwind)]
    pub fn flush_sync(&self) -> napi::Result<f64> {
        self.q.flush_now().map(|s| s as f64).map_err(to_js)
    }

    /// The last durable sequence number.
    #[napi]
    pub fn committed(&self) -> f64 {
        self.q.journal_seqs().map_or(0.0, |(c, _)| c as f64)
    }

    /// Flushes and releases the journal; later enqueues fail with `ERR_QUEUE_CLOSED`.
    #[napi(catch_unwind)]
    pub fn close(&mut self) -> napi::Result<f64> {
        self.q.close().map(|s| s as f64).map_err(to_js)
    }
}
