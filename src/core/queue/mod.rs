//! The retry queue's state: items by id, each service's items in due order, dead letters and
//! the idempotency keys of completed items, optionally journaled to a file. Every method takes
//! `now`; none reads a clock. The JS layer runs the handlers and reports each outcome here.

pub mod journal;
pub mod redis;
pub mod storage;

use crate::core::rng::Jitter;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use crate::core::error::{Error, Result};
use crate::core::fallback::config::{QueueConfig, MAX_REMEMBERED_KEYS};
use crate::core::options::MAX_DURATION_MS;
pub use journal::DeadReason;
use journal::{encode, encode_put, header, put_size, remember_size, ItemFields, Record};
use storage::{FileStorage, Lock, Notify, Writer};

/// Below this many journal bytes, compaction is not worth it.
pub const DEFAULT_COMPACT_MIN_BYTES: usize = 1 << 20;

/// A time with a total order, for the ordered sets.
#[derive(Debug, Clone, Copy, PartialEq)]
struct At(f64);

impl Eq for At {}

impl PartialOrd for At {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for At {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Run by the handler registered for `operation`; `payload` is JSON text.
    Operation { operation: String, payload: String },
    /// A function kept by the JS layer (in-memory queues only).
    Function,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: u64,
    pub service: Arc<str>,
    pub work: Work,
    pub key: Option<String>,
    pub enqueued_at: f64,
    pub due_at: f64,
    /// Attempts started so far (an attempt counts from its start).
    pub attempts: u32,
    pub last_error: Option<String>,
    pub running: bool,
    /// The journal sequence number of its `Put` record (0 in memory).
    pub seq: u64,
    /// Replay only: an attempt started and never ended (the process stopped during it).
    interrupted: bool,
}

impl Item {
    pub fn operation(&self) -> Option<&str> {
        match &self.work {
            Work::Operation { operation, .. } => Some(operation),
            Work::Function => None,
        }
    }

    pub fn payload(&self) -> Option<&str> {
        match &self.work {
            Work::Operation { payload, .. } => Some(payload),
            Work::Function => None,
        }
    }

    fn fields(&self, dead: Option<(f64, DeadReason)>) -> ItemFields<'_> {
        ItemFields {
            id: self.id,
            service: &self.service,
            operation: self.operation().unwrap_or(""),
            payload: self.payload().unwrap_or(""),
            key: self.key.as_deref(),
            enqueued_at: self.enqueued_at,
            due_at: self.due_at,
            attempts: self.attempts,
            last_error: self.last_error.as_deref(),
            dead,
        }
    }

    fn snap_size(&self, dead: Option<(f64, DeadReason)>) -> usize {
        put_size(&self.fields(dead))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub item: Item,
    pub at: f64,
    pub reason: DeadReason,
}

#[derive(Debug, Default)]
struct ServiceState {
    /// Queued (not running) items by due time, then id.
    due: BTreeSet<(At, u64)>,
    running: u32,
}

#[derive(Debug, Clone)]
struct Remembered {
    key: String,
    id: u64,
    at: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Enqueued {
    pub id: u64,
    /// The idempotency key was known: `id` is the existing item's.
    pub existing: bool,
    /// Wait until this journal sequence number is durable before acknowledging (0: nothing).
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Due again at `due_at`, after a wait of `delay_ms`.
    Retry {
        due_at: f64,
        delay_ms: f64,
    },
    Dead {
        reason: DeadReason,
    },
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct QueueStats {
    pub enqueued: u64,
    pub deduplicated: u64,
    pub rejected_full: u64,
    pub attempts: u64,
    pub completed: u64,
    pub failed_attempts: u64,
    pub dead_lettered: u64,
    pub compactions: u64,
}

/// What opening a journal found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReplayReport {
    pub records: u64,
    pub torn_bytes: u64,
    pub items: usize,
    pub dead_letters: usize,
    pub interrupted: usize,
}

/// A random number that differs between processes and queues (ids, jitter seeds).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.finish()
}

/// The wait before the next attempt when `attempts` were made:
/// `retryDelayMs × retryBackoffMultiplier^attempts`, capped, then shortened by up to
/// `retryJitterRatio` (so the cap holds). `unit` is a random number in 0..1. Shared by the local
/// queue and the Redis backend.
pub fn backoff_delay(cfg: &QueueConfig, attempts: u32, unit: f64) -> f64 {
    let exp = i32::try_from(attempts).unwrap_or(i32::MAX);
    let d = (cfg.retry_delay_ms * cfg.backoff_multiplier.powi(exp)).min(MAX_DURATION_MS);
    if cfg.jitter_ratio > 0.0 {
        d * (1.0 - cfg.jitter_ratio * unit)
    } else {
        d
    }
}

/// After a failed attempt (the `attempts`-th): why the item is dead-lettered now, if it is
/// (`maxRetryAttempts` used up, or past `expires_at` = enqueued + `queueTtlMs`).
pub fn dead_after_failure(
    cfg: &QueueConfig,
    attempts: u32,
    expires_at: f64,
    now: f64,
) -> Option<DeadReason> {
    if attempts >= cfg.max_attempts {
        Some(DeadReason::MaxAttempts)
    } else if now >= expires_at {
        Some(DeadReason::Expired)
    } else {
        None
    }
}

pub struct Queue {
    cfg: QueueConfig,
    /// Random per journal (or per in-memory queue): it prefixes every id, so ids from two
    /// queues never collide downstream, where they serve as idempotency keys.
    epoch: u64,
    next_id: u64,
    items: HashMap<u64, Item>,
    services: HashMap<Arc<str>, ServiceState>,
    /// Queued (not running) items by the time they expire, then id.
    expiry: BTreeSet<(At, u64)>,
    /// Idempotency key → id, for queued, running and remembered completed items.
    keys: HashMap<String, u64>,
    completed: VecDeque<Remembered>,
    dead: BTreeMap<u64, DeadLetter>,
    /// Items found at replay with all their attempts used by interrupted runs; dead-lettered
    /// by the first `expire`, so the JS layer reports them.
    startup_dead: Vec<u64>,
    writer: Option<Writer>,
    path: Option<String>,
    _lock: Option<Lock>,
    rng: Jitter,
    stats: QueueStats,
    /// The size a compacted journal would have.
    live_bytes: usize,
    /// The size of the journal now (about).
    journal_bytes: usize,
    compact_min_bytes: usize,
    closed: bool,
}

impl Queue {
    /// A queue in memory only.
    pub fn new(cfg: QueueConfig) -> Queue {
        let seed = random_u64();
        Queue {
            cfg,
            epoch: seed >> 16,
            next_id: 1,
            items: HashMap::new(),
            services: HashMap::new(),
            expiry: BTreeSet::new(),
            keys: HashMap::new(),
            completed: VecDeque::new(),
            dead: BTreeMap::new(),
            startup_dead: Vec::new(),
            writer: None,
            path: None,
            _lock: None,
            rng: Jitter::from_seed(seed),
            stats: QueueStats::default(),
            live_bytes: 0,
            journal_bytes: 0,
            compact_min_bytes: DEFAULT_COMPACT_MIN_BYTES,
            closed: false,
        }
    }

    /// Opens the journal at `cfg.persist_path` (creating it if needed), replays it and starts
    /// its writer. `notify` hears of every durable group and of a write failure.
    pub fn open(cfg: QueueConfig, notify: Notify, now: f64) -> Result<(Queue, ReplayReport)> {
        let Some(path) = cfg.persist_path.clone() else {
            return Ok((Queue::new(cfg), ReplayReport::default()));
        };
        let lock = Lock::acquire(&path)?;
        let opened = FileStorage::open(&path)?;
        let mut storage = opened.storage;
        let mut q = Queue::new(cfg);
        let scan = journal::scan(&path, &opened.contents, |rec| q.apply(rec))?;
        drop(opened.contents);
        match scan.epoch {
            Some(epoch) => {
                q.epoch = epoch;
                if scan.torn_bytes > 0 {
                    storage.truncate(scan.valid_len)?;
                }
            }
            None => storage.create(&header(q.epoch))?,
        }
        q.journal_bytes = (scan.valid_len as usize).max(journal::HEADER_LEN);
        q.writer = Some(Writer::start(Box::new(storage), &path, notify)?);
        q.path = Some(path);
        q._lock = Some(lock);
        let interrupted = q.finish_replay(now);
        let report = ReplayReport {
            records: scan.records,
            torn_bytes: scan.torn_bytes,
            items: q.items.len(),
            dead_letters: q.dead.len(),
            interrupted,
        };
        q.maybe_compact();
        Ok((q, report))
    }

    pub fn config(&self) -> &QueueConfig {
        &self.cfg
    }

    pub fn persistent(&self) -> bool {
        self.writer.is_some()
    }

    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    /// Queued and running items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn running(&self) -> usize {
        self.services.values().map(|s| s.running as usize).sum()
    }

    pub fn dead_letter_count(&self) -> usize {
        self.dead.len()
    }

    pub fn remembered_keys(&self) -> usize {
        self.completed.len()
    }

    pub fn journal_bytes(&self) -> usize {
        self.journal_bytes
    }

    /// For tests: compaction starts at a smaller journal.
    pub fn set_compact_min_bytes(&mut self, n: usize) {
        self.compact_min_bytes = n;
    }

    /// The public form of an id: the queue's epoch, then the number.
    pub fn id_string(&self, id: u64) -> String {
        format!("{:012x}-{id}", self.epoch & 0xffff_ffff_ffff)
    }

    /// The number inside an id string of this queue.
    pub fn parse_id(&self, s: &str) -> Option<u64> {
        let (epoch, n) = s.split_once('-')?;
        if u64::from_str_radix(epoch, 16).ok()? != self.epoch & 0xffff_ffff_ffff {
            return None;
        }
        n.parse().ok()
    }

    fn delay(&mut self, attempts: u32) -> f64 {
        let unit = if self.cfg.jitter_ratio > 0.0 {
            self.rng.unit()
        } else {
            0.0
        };
        backoff_delay(&self.cfg, attempts, unit)
    }

    fn intern(&self, service: &str) -> Arc<str> {
        match self.services.get_key_value(service) {
            Some((k, _)) => k.clone(),
            None => Arc::from(service),
        }
    }

    /// Appends records to the journal, if any. A failure here is already reported through
    /// `notify` (the journal stops), and what happened in memory cannot be undone, so it is
    /// not an error of the caller.
    fn log(&mut self, records: u64, write: impl FnOnce(&mut Vec<u8>) -> usize) {
        if let Some(w) = &self.writer {
            let mut n = 0;
            let _ = w.append(records, |b| n = write(b));
            self.journal_bytes += n;
        }
    }

    fn index(&mut self, id: u64) {
        let Some(item) = self.items.get(&id) else {
            return;
        };
        let (service, due, expires) = (
            item.service.clone(),
            item.due_at,
            item.enqueued_at + self.cfg.ttl_ms,
        );
        self.services
            .entry(service)
            .or_default()
            .due
            .insert((At(due), id));
        self.expiry.insert((At(expires), id));
    }

    fn unindex(&mut self, id: u64) {
        let Some(item) = self.items.get(&id) else {
            return;
        };
        let expires = item.enqueued_at + self.cfg.ttl_ms;
        let due = item.due_at;
        if let Some(s) = self.services.get_mut(&item.service) {
            s.due.remove(&(At(due), id));
        }
        self.expiry.remove(&(At(expires), id));
    }

    fn drop_service_if_idle(&mut self, service: &Arc<str>) {
        if let Some(s) = self.services.get(service) {
            if s.due.is_empty() && s.running == 0 {
                self.services.remove(service);
            }
        }
    }

    /// Forgets completed keys past their retention, or beyond `MAX_REMEMBERED_KEYS`.
    fn forget_old(&mut self, now: f64) {
        let retention = self.cfg.idempotency_retention_ms;
        while let Some(front) = self.completed.front() {
            if front.at + retention > now && self.completed.len() <= MAX_REMEMBERED_KEYS {
                break;
            }
            if let Some(r) = self.completed.pop_front() {
                if self.keys.get(&r.key) == Some(&r.id) {
                    self.keys.remove(&r.key);
                }
                self.live_bytes = self.live_bytes.saturating_sub(remember_size(&r.key));
            }
        }
    }

    /// Adds an item, or finds the one with the same idempotency key (queued, running or
    /// completed recently). Refused when the queue is full: nothing queued is ever dropped.
    pub fn enqueue(
        &mut self,
        service: &str,
        work: Work,
        key: Option<String>,
        now: f64,
    ) -> Result<Enqueued> {
        if self.closed {
            return Err(Error::QueueClosed);
        }
        if !self.cfg.enabled {
            return Err(Error::QueueDisabled);
        }
        self.forget_old(now);
        if let Some(&id) = key.as_ref().and_then(|k| self.keys.get(k)) {
            self.stats.deduplicated += 1;
            let seq = self.items.get(&id).map_or(0, |i| i.seq);
            return Ok(Enqueued {
                id,
                existing: true,
                seq,
            });
        }
        if self.items.len() >= self.cfg.max_queue_size as usize {
            self.stats.rejected_full += 1;
            return Err(Error::QueueFull {
                max: self.cfg.max_queue_size,
            });
        }
        if work == Work::Function && self.persistent() {
            return Err(Error::NotSerializable {
                what: "a function item".into(),
                reason: "a function cannot be written to the journal (persistPath is set); enqueue { operation, payload } and register a handler for the operation".into(),
            });
        }
        let id = self.next_id;
        let delay = self.delay(0);
        let mut item = Item {
            id,
            service: self.intern(service),
            work,
            key,
            enqueued_at: now,
            due_at: now + delay,
            attempts: 0,
            last_error: None,
            running: false,
            seq: 0,
            interrupted: false,
        };
        if let Some(w) = &self.writer {
            let mut n = 0;
            let fields = item.fields(None);
            item.seq = w.append(1, |b| n = encode_put(&fields, b))?;
            self.journal_bytes += n;
        }
        self.next_id += 1;
        self.live_bytes += item.snap_size(None);
        if let Some(k) = &item.key {
            self.keys.insert(k.clone(), id);
        }
        let seq = item.seq;
        self.items.insert(id, item);
        self.index(id);
        self.stats.enqueued += 1;
        self.maybe_compact();
        Ok(Enqueued {
            id,
            existing: false,
            seq,
        })
    }

    /// Each service with queued items, its earliest due time and its running count.
    pub fn schedule(&self) -> Vec<(Arc<str>, f64, u32)> {
        self.services
            .iter()
            .filter_map(|(s, st)| st.due.first().map(|(at, _)| (s.clone(), at.0, st.running)))
            .collect()
    }

    /// When the next queued item expires.
    pub fn next_expiry(&self) -> Option<f64> {
        if !self.startup_dead.is_empty() {
            return Some(f64::NEG_INFINITY);
        }
        self.expiry.first().map(|(at, _)| at.0)
    }

    /// The next item of `service` to run now: due, and within `concurrency`.
    pub fn peek(&self, service: &str, now: f64) -> Option<&Item> {
        let s = self.services.get(service)?;
        if s.running >= self.cfg.concurrency {
            return None;
        }
        let (at, id) = s.due.first()?;
        if at.0 > now {
            return None;
        }
        self.items.get(id)
    }

    pub fn get(&self, id: u64) -> Option<&Item> {
        self.items.get(&id)
    }

    fn unknown(id: u64, what: &str) -> Error {
        Error::Internal(format!("queue item {id} is not {what}"))
    }

    /// Starts an attempt of a queued item; returns its attempt number (from 1).
    pub fn start(&mut self, id: u64, _now: f64) -> Result<u32> {
        match self.items.get(&id) {
            Some(i) if !i.running => {}
            _ => return Err(Self::unknown(id, "queued")),
        }
        self.unindex(id);
        let Some(item) = self.items.get_mut(&id) else {
            return Err(Self::unknown(id, "queued"));
        };
        item.running = true;
        item.attempts += 1;
        let attempts = item.attempts;
        let service = item.service.clone();
        self.services.entry(service).or_default().running += 1;
        self.stats.attempts += 1;
        self.log(1, |b| encode(&Record::Attempt { id, attempts }, b));
        Ok(attempts)
    }

    fn stop_running(&mut self, id: u64) -> Result<Arc<str>> {
        let Some(item) = self.items.get_mut(&id).filter(|i| i.running) else {
            return Err(Self::unknown(id, "running"));
        };
        item.running = false;
        let service = item.service.clone();
        if let Some(s) = self.services.get_mut(&service) {
            s.running = s.running.saturating_sub(1);
        }
        Ok(service)
    }

    /// The attempt succeeded: the item leaves the queue; its key is remembered.
    pub fn complete(&mut self, id: u64, now: f64) -> Result<()> {
        let service = self.stop_running(id)?;
        let Some(item) = self.items.remove(&id) else {
            return Err(Self::unknown(id, "running"));
        };
        self.drop_service_if_idle(&service);
        self.live_bytes = self.live_bytes.saturating_sub(item.snap_size(None));
        if let Some(key) = item.key {
            self.live_bytes += remember_size(&key);
            self.completed.push_back(Remembered { key, id, at: now });
        }
        self.stats.completed += 1;
        self.log(1, |b| encode(&Record::Done { id, at: now }, b));
        self.forget_old(now);
        self.maybe_compact();
        Ok(())
    }

    /// The attempt failed with `error`: the item waits for its next attempt, or is
    /// dead-lettered after `maxRetryAttempts` attempts or past `queueTtlMs`.
    pub fn fail(&mut self, id: u64, error: String, now: f64) -> Result<Outcome> {
        self.stop_running(id)?;
        self.stats.failed_attempts += 1;
        let (attempts, expires) = match self.items.get_mut(&id) {
            Some(item) => {
                self.live_bytes = self.live_bytes.saturating_sub(item.snap_size(None));
                item.last_error = Some(error);
                self.live_bytes += item.snap_size(None);
                (item.attempts, item.enqueued_at + self.cfg.ttl_ms)
            }
            None => return Err(Self::unknown(id, "running")),
        };
        if let Some(reason) = dead_after_failure(&self.cfg, attempts, expires, now) {
            self.bury(id, reason, now);
            return Ok(Outcome::Dead { reason });
        }
        let delay = self.delay(attempts);
        let due_at = now + delay;
        let error = match self.items.get_mut(&id) {
            Some(item) => {
                item.due_at = due_at;
                item.last_error.clone()
            }
            None => None,
        };
        self.index(id);
        self.log(1, |b| encode(&Record::Retry { id, due_at, error }, b));
        self.maybe_compact();
        Ok(Outcome::Retry {
            due_at,
            delay_ms: delay,
        })
    }

    /// A queued item that cannot run yet (no handler for its operation) waits until `due_at`,
    /// without using an attempt; `reason` becomes its last error.
    pub fn defer(&mut self, id: u64, due_at: f64, reason: String) -> Result<()> {
        match self.items.get(&id) {
            Some(i) if !i.running => {}
            _ => return Err(Self::unknown(id, "queued")),
        }
        self.unindex(id);
        if let Some(item) = self.items.get_mut(&id) {
            self.live_bytes = self.live_bytes.saturating_sub(item.snap_size(None));
            item.due_at = due_at;
            item.last_error = Some(reason.clone());
            self.live_bytes += item.snap_size(None);
        }
        self.index(id);
        self.log(1, |b| {
            encode(
                &Record::Retry {
                    id,
                    due_at,
                    error: Some(reason),
                },
                b,
            )
        });
        Ok(())
    }

    /// Moves an item (queued, or running and just failed) to the dead letters.
    fn bury(&mut self, id: u64, reason: DeadReason, now: f64) -> Option<&DeadLetter> {
        self.unindex(id);
        let item = self.items.remove(&id)?;
        self.drop_service_if_idle(&item.service);
        if let Some(k) = &item.key {
            if self.keys.get(k) == Some(&id) {
                self.keys.remove(k);
            }
        }
        self.live_bytes = self.live_bytes.saturating_sub(item.snap_size(None));
        self.live_bytes += item.snap_size(Some((now, reason)));
        self.stats.dead_lettered += 1;
        let error = item.last_error.clone();
        self.log(1, |b| {
            encode(
                &Record::Dead {
                    id,
                    at: now,
                    reason,
                    error,
                },
                b,
            )
        });
        self.dead.insert(
            id,
            DeadLetter {
                item,
                at: now,
                reason,
            },
        );
        self.dead.get(&id)
    }

    /// Dead-letters every queued item older than `queueTtlMs` (and any left at replay with no
    /// attempt to spare); returns their ids, oldest first.
    pub fn expire(&mut self, now: f64) -> Vec<u64> {
        let mut out = Vec::new();
        for id in std::mem::take(&mut self.startup_dead) {
            if self.items.contains_key(&id) && self.bury(id, DeadReason::MaxAttempts, now).is_some()
            {
                out.push(id);
            }
        }
        while let Some(&(at, id)) = self.expiry.first() {
            if at.0 > now {
                break;
            }
            self.expiry.remove(&(at, id));
            if self.bury(id, DeadReason::Expired, now).is_some() {
                out.push(id);
            }
        }
        if !out.is_empty() {
            self.maybe_compact();
        }
        out
    }

    pub fn dead_letter(&self, id: u64) -> Option<&DeadLetter> {
        self.dead.get(&id)
    }

    /// Queued and running items (of one service, or all), in enqueue order.
    pub fn list(&self, service: Option<&str>) -> Vec<&Item> {
        let mut v: Vec<&Item> = self
            .items
            .values()
            .filter(|i| service.is_none_or(|s| &*i.service == s))
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }

    /// Dead letters, oldest id first.
    pub fn dead_letters(&self) -> Vec<&DeadLetter> {
        self.dead.values().collect()
    }

    /// Removes every dead letter; returns how many.
    pub fn clear_dead_letters(&mut self) -> usize {
        let dead = std::mem::take(&mut self.dead);
        let n = dead.len();
        for (id, d) in dead {
            self.live_bytes = self
                .live_bytes
                .saturating_sub(d.item.snap_size(Some((d.at, d.reason))));
            self.log(1, |b| encode(&Record::Clear { id }, b));
        }
        self.maybe_compact();
        n
    }

    fn maybe_compact(&mut self) {
        if self.writer.is_some()
            && self.journal_bytes >= self.compact_min_bytes.max(2 * self.live_bytes)
        {
            let _ = self.compact();
        }
    }

    /// Rewrites the journal as a snapshot of the state: every live item, dead letter and
    /// remembered key, and nothing else.
    pub fn compact(&mut self) -> Result<()> {
        let Some(w) = &self.writer else {
            return Ok(());
        };
        let mut out = Vec::with_capacity(self.live_bytes + 64);
        out.extend_from_slice(&header(self.epoch));
        encode(&Record::NextId { next: self.next_id }, &mut out);
        let mut ids: Vec<u64> = self.items.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(item) = self.items.get(&id) else {
                continue;
            };
            if item.running {
                // Written as it was before this attempt, then the attempt: a crash during
                // the attempt is then seen as an interrupted attempt, as without compaction.
                let mut f = item.fields(None);
                f.attempts = item.attempts.saturating_sub(1);
                encode_put(&f, &mut out);
                encode(
                    &Record::Attempt {
                        id,
                        attempts: item.attempts,
                    },
                    &mut out,
                );
            } else {
                encode_put(&item.fields(None), &mut out);
            }
        }
        for d in self.dead.values() {
            encode_put(&d.item.fields(Some((d.at, d.reason))), &mut out);
        }
        for r in &self.completed {
            encode(
                &Record::Remember {
                    id: r.id,
                    at: r.at,
                    key: r.key.clone(),
                },
                &mut out,
            );
        }
        self.journal_bytes = out.len();
        self.live_bytes = out.len();
        w.rotate(out)?;
        self.stats.compactions += 1;
        Ok(())
    }

    /// The journal's last durable and last appended sequence numbers.
    pub fn journal_seqs(&self) -> Option<(u64, u64)> {
        self.writer.as_ref().map(|w| (w.committed(), w.appended()))
    }

    pub fn journal_failed(&self) -> bool {
        self.writer.as_ref().is_some_and(Writer::failed)
    }

    /// Writes and syncs the journal now, on this thread; returns the durable sequence number.
    pub fn flush_now(&self) -> Result<u64> {
        match &self.writer {
            Some(w) => w.flush_now(),
            None => Ok(0),
        }
    }

    /// Flushes the journal, stops its thread and releases the file. Later enqueues fail with
    /// `ERR_QUEUE_CLOSED`.
    pub fn close(&mut self) -> Result<u64> {
        self.closed = true;
        let r = match &mut self.writer {
            Some(w) => w.close(),
            None => Ok(0),
        };
        self._lock = None;
        r
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Applies one replayed record.
    fn apply(&mut self, rec: Record) -> std::result::Result<(), String> {
        match rec {
            Record::Put(r) => {
                self.next_id = self.next_id.max(r.id.saturating_add(1));
                let service = self.intern(&r.service);
                // Services are interned through `services`; make sure the name is there.
                self.services.entry(service.clone()).or_default();
                let item = Item {
                    id: r.id,
                    service,
                    work: Work::Operation {
                        operation: r.operation,
                        payload: r.payload,
                    },
                    key: r.key,
                    enqueued_at: r.enqueued_at,
                    due_at: r.due_at,
                    attempts: r.attempts,
                    last_error: r.last_error,
                    running: false,
                    seq: 0,
                    interrupted: false,
                };
                match r.dead {
                    Some((at, reason)) => {
                        self.dead.insert(r.id, DeadLetter { item, at, reason });
                    }
                    None => {
                        if let Some(k) = &item.key {
                            self.keys.insert(k.clone(), r.id);
                        }
                        self.items.insert(r.id, item);
                    }
                }
            }
            Record::Attempt { id, attempts } => {
                if let Some(item) = self.items.get_mut(&id) {
                    item.attempts = attempts;
                    item.interrupted = true;
                }
            }
            Record::Retry { id, due_at, error } => {
                if let Some(item) = self.items.get_mut(&id) {
                    item.due_at = due_at;
                    item.last_error = error;
                    item.interrupted = false;
                }
            }
            Record::Done { id, at } => {
                if let Some(item) = self.items.remove(&id) {
                    if let Some(key) = item.key {
                        self.completed.push_back(Remembered { key, id, at });
                    }
                }
            }
            Record::Dead {
                id,
                at,
                reason,
                error,
            } => {
                if let Some(mut item) = self.items.remove(&id) {
                    if let Some(k) = &item.key {
                        if self.keys.get(k) == Some(&id) {
                            self.keys.remove(k);
                        }
                    }
                    item.last_error = error;
                    item.interrupted = false;
                    self.dead.insert(id, DeadLetter { item, at, reason });
                }
            }
            Record::Remember { id, at, key } => {
                self.next_id = self.next_id.max(id.saturating_add(1));
                self.keys.insert(key.clone(), id);
                self.completed.push_back(Remembered { key, id, at });
            }
            Record::Clear { id } => {
                self.dead.remove(&id);
            }
            Record::NextId { next } => self.next_id = self.next_id.max(next),
        }
        Ok(())
    }

    /// After replay: builds the indexes and the compaction budget, and marks interrupted
    /// attempts. Returns how many attempts were interrupted.
    fn finish_replay(&mut self, now: f64) -> usize {
        let mut interrupted = 0;
        let mut ids: Vec<u64> = self.items.keys().copied().collect();
        ids.sort_unstable();
        for &id in &ids {
            if let Some(item) = self.items.get_mut(&id) {
                if item.interrupted {
                    interrupted += 1;
                    item.interrupted = false;
                    item.last_error = Some(format!(
                        "interrupted: the process stopped during attempt {}",
                        item.attempts
                    ));
                    if item.attempts >= self.cfg.max_attempts {
                        self.startup_dead.push(id);
                    }
                }
            }
            self.index(id);
        }
        self.services
            .retain(|_, s| !s.due.is_empty() || s.running > 0);
        self.forget_old(now);
        let mut live = journal::HEADER_LEN;
        live += self
            .items
            .values()
            .map(|i| i.snap_size(None))
            .sum::<usize>();
        live += self
            .dead
            .values()
            .map(|d| d.item.snap_size(Some((d.at, d.reason))))
            .sum::<usize>();
        live += self
            .completed
            .iter()
            .map(|r| remember_size(&r.key))
            .sum::<usize>();
        self.live_bytes = live;
        interrupted
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn cfg() -> QueueConfig {
        QueueConfig {
            jitter_ratio: 0.0,
            retry_delay_ms: 1_000.0,
            backoff_multiplier: 2.0,
            max_attempts: 3,
            ttl_ms: 100_000.0,
            max_queue_size: 10,
            ..QueueConfig::default()
        }
    }

    fn op(name: &str) -> Work {
        Work::Operation {
            operation: name.into(),
            payload: "{\"x\":1}".into(),
        }
    }

    fn enqueue(q: &mut Queue, service: &str, key: Option<&str>, now: f64) -> u64 {
        q.enqueue(service, op("publish_ad"), key.map(String::from), now)
            .unwrap()
            .id
    }

    #[test]
    fn the_first_attempt_waits_retry_delay_then_backs_off_exponentially() {
        let mut q = Queue::new(cfg());
        let id = enqueue(&mut q, "meta_api", None, 0.0);
        assert!(q.peek("meta_api", 999.0).is_none());
        assert_eq!(q.peek("meta_api", 1_000.0).map(|i| i.id), Some(id));
        assert_eq!(q.start(id, 1_000.0).unwrap(), 1);
        assert_eq!(
            q.fail(id, "503".into(), 1_000.0).unwrap(),
            Outcome::Retry {
                due_at: 3_000.0,
                delay_ms: 2_000.0
            }
        );
        assert!(q.peek("meta_api", 2_999.0).is_none());
        assert_eq!(q.start(id, 3_000.0).unwrap(), 2);
        assert_eq!(
            q.fail(id, "503".into(), 3_000.0).unwrap(),
            Outcome::Retry {
                due_at: 7_000.0,
                delay_ms: 4_000.0
            }
        );
        assert_eq!(q.get(id).unwrap().last_error.as_deref(), Some("503"));
    }

    #[test]
    fn jitter_shortens_each_wait_within_the_ratio() {
        let mut c = cfg();
        c.jitter_ratio = 0.5;
        c.max_queue_size = 1_000;
        let mut q = Queue::new(c);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let id = enqueue(&mut q, "s", None, 0.0);
            let due = q.get(id).unwrap().due_at;
            assert!((500.0..=1_000.0).contains(&due), "{due}");
            seen.insert(due.to_bits());
        }
        assert!(seen.len() > 50, "jitter does not spread");
    }

    #[test]
    fn dead_letters_after_max_attempts_with_the_last_error() {
        let mut q = Queue::new(cfg());
        let id = enqueue(&mut q, "s", Some("k"), 0.0);
        let mut now = 1_000.0;
        for n in 1..=3 {
            assert_eq!(q.start(id, now).unwrap(), n);
            let out = q.fail(id, format!("fail {n}"), now).unwrap();
            if n < 3 {
                let Outcome::Retry { due_at, .. } = out else {
                    panic!("{out:?}")
                };
                now = due_at;
            } else {
                assert_eq!(
                    out,
                    Outcome::Dead {
                        reason: DeadReason::MaxAttempts
                    }
                );
            }
        }
        assert!(q.is_empty());
        let d = q.dead_letter(id).unwrap();
        assert_eq!(d.item.last_error.as_deref(), Some("fail 3"));
        assert_eq!(d.reason, DeadReason::MaxAttempts);
        // A dead item's key may be enqueued again.
        let again = q
            .enqueue("s", op("publish_ad"), Some("k".into()), now)
            .unwrap();
        assert!(!again.existing);
    }

    #[test]
    fn items_older_than_the_ttl_are_dead_lettered() {
        let mut q = Queue::new(cfg());
        let a = enqueue(&mut q, "s", None, 0.0);
        let b = enqueue(&mut q, "s", None, 50_000.0);
        assert_eq!(q.next_expiry(), Some(100_000.0));
        assert!(q.expire(99_999.0).is_empty());
        assert_eq!(q.expire(100_000.0), vec![a]);
        assert_eq!(q.dead_letter(a).unwrap().reason, DeadReason::Expired);
        assert_eq!(
            q.list(None).iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![b]
        );
        // A failure past the TTL dead-letters at once.
        q.start(b, 149_000.0).unwrap();
        assert_eq!(
            q.fail(b, "x".into(), 150_000.0).unwrap(),
            Outcome::Dead {
                reason: DeadReason::Expired
            }
        );
        // A running item does not expire under its handler.
        let c = enqueue(&mut q, "s", None, 200_000.0);
        q.start(c, 201_000.0).unwrap();
        assert!(q.expire(1e9).is_empty());
    }

    #[test]
    fn a_full_queue_refuses_and_keeps_what_it_has() {
        let mut q = Queue::new(cfg());
        let ids: Vec<u64> = (0..10).map(|_| enqueue(&mut q, "s", None, 0.0)).collect();
        let e = q.enqueue("s", op("x"), None, 0.0).unwrap_err();
        assert_eq!(e.code(), "ERR_QUEUE_FULL");
        assert!(e.to_string().contains("maxQueueSize (10)"), "{e}");
        assert_eq!(q.list(None).iter().map(|i| i.id).collect::<Vec<_>>(), ids);
        assert_eq!(q.stats().rejected_full, 1);
        // A known key is still answered when full: nothing new is added.
        let k = q.enqueue("s", op("x"), None, 0.0);
        assert!(k.is_err());
    }

    #[test]
    fn idempotency_keys_return_the_existing_id_while_queued_running_or_completed() {
        let mut c = cfg();
        c.idempotency_retention_ms = 10_000.0;
        let mut q = Queue::new(c);
        let id = enqueue(&mut q, "s", Some("ad-1"), 0.0);
        let again = q.enqueue("s", op("x"), Some("ad-1".into()), 1.0).unwrap();
        assert_eq!((again.id, again.existing), (id, true));
        q.start(id, 1_000.0).unwrap();
        assert_eq!(enqueue(&mut q, "s", Some("ad-1"), 1_000.0), id);
        q.complete(id, 2_000.0).unwrap();
        assert_eq!(enqueue(&mut q, "s", Some("ad-1"), 11_999.0), id);
        assert_eq!(q.len(), 0, "no second item");
        assert_eq!(q.stats().deduplicated, 3);
        // Past the retention, the key is forgotten.
        let fresh = enqueue(&mut q, "s", Some("ad-1"), 12_000.0);
        assert_ne!(fresh, id);
    }

    #[test]
    fn concurrency_limits_running_items_per_service() {
        let mut c = cfg();
        c.concurrency = 2;
        let mut q = Queue::new(c);
        let a = enqueue(&mut q, "s", None, 0.0);
        let b = enqueue(&mut q, "s", None, 0.0);
        let x = enqueue(&mut q, "t", None, 0.0);
        enqueue(&mut q, "s", None, 0.0);
        q.start(a, 1_000.0).unwrap();
        q.start(b, 1_000.0).unwrap();
        assert!(q.peek("s", 1_000.0).is_none(), "two running");
        assert_eq!(q.peek("t", 1_000.0).map(|i| i.id), Some(x));
        q.complete(a, 1_001.0).unwrap();
        assert!(q.peek("s", 1_001.0).is_some());
        let sched = q.schedule();
        assert_eq!(sched.len(), 2);
    }

    #[test]
    fn defer_waits_without_using_an_attempt() {
        let mut q = Queue::new(cfg());
        let id = enqueue(&mut q, "s", None, 0.0);
        q.defer(id, 5_000.0, "no handler for publish_ad".into())
            .unwrap();
        let item = q.get(id).unwrap();
        assert_eq!((item.attempts, item.due_at), (0, 5_000.0));
        assert!(q.peek("s", 4_999.0).is_none());
        assert!(q.start(id, 5_000.0).is_ok());
        assert!(q.defer(id, 1.0, "x".into()).is_err(), "not while running");
    }

    #[test]
    fn wrong_ids_and_states_are_errors_not_panics() {
        let mut q = Queue::new(cfg());
        assert_eq!(q.start(99, 0.0).unwrap_err().code(), "ERR_INTERNAL");
        assert!(q.complete(99, 0.0).is_err());
        assert!(q.fail(99, "e".into(), 0.0).is_err());
        let id = enqueue(&mut q, "s", None, 0.0);
        assert!(q.complete(id, 0.0).is_err(), "not running");
        q.start(id, 0.0).unwrap();
        assert!(q.start(id, 0.0).is_err(), "already running");
    }

    #[test]
    fn ids_carry_the_queue_epoch() {
        let q = Queue::new(cfg());
        let s = q.id_string(17);
        assert!(s.ends_with("-17"), "{s}");
        assert_eq!(q.parse_id(&s), Some(17));
        let other = Queue::new(cfg());
        assert_eq!(other.parse_id(&s), None);
        assert_eq!(q.parse_id("nope"), None);
    }

    #[test]
    fn disabled_and_closed_queues_refuse() {
        let mut c = cfg();
        c.enabled = false;
        let mut q = Queue::new(c);
        assert_eq!(
            q.enqueue("s", op("x"), None, 0.0).unwrap_err().code(),
            "ERR_QUEUE_DISABLED"
        );
        let mut q = Queue::new(cfg());
        q.close().unwrap();
        assert_eq!(
            q.enqueue("s", op("x"), None, 0.0).unwrap_err().code(),
            "ERR_QUEUE_CLOSED"
        );
    }

    // ---- persistence ----

    struct TempDir(std::path::PathBuf);
    impl TempDir {
        fn new(name: &str) -> TempDir {
            let d = std::env::temp_dir().join(format!(
                "breakwater-queue-{}-{name}-{}",
                std::process::id(),
                random_u64()
            ));
            std::fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }
        fn file(&self) -> String {
            self.0.join("q.journal").display().to_string()
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn persistent(path: &str) -> (Queue, ReplayReport, mpsc::Receiver<(u64, Option<String>)>) {
        let mut c = cfg();
        c.persist_path = Some(path.to_string());
        c.max_queue_size = 100_000;
        let (tx, rx) = mpsc::channel();
        let tx = parking_lot::Mutex::new(tx);
        let (q, r) = Queue::open(
            c,
            Box::new(move |s, e| {
                let _ = tx.lock().send((s, e));
            }),
            0.0,
        )
        .unwrap();
        (q, r, rx)
    }

    #[test]
    fn a_journal_brings_back_items_attempts_dead_letters_and_keys() {
        let dir = TempDir::new("replay");
        let path = dir.file();
        let (a, b, c, d);
        {
            let (mut q, report, _rx) = persistent(&path);
            assert_eq!(report, ReplayReport::default());
            a = enqueue(&mut q, "meta_api", Some("ad-1"), 0.0);
            b = enqueue(&mut q, "meta_api", Some("ad-2"), 0.0);
            c = enqueue(&mut q, "openai_api", None, 0.0);
            d = enqueue(&mut q, "openai_api", None, 0.0);
            q.start(a, 1_000.0).unwrap();
            q.complete(a, 1_000.0).unwrap();
            q.start(b, 1_000.0).unwrap();
            q.fail(b, "HTTP 503".into(), 1_000.0).unwrap();
            q.start(c, 1_000.0).unwrap(); // interrupted by the "crash"
            assert_eq!(q.expire(200_000.0), vec![b, d]);
            q.close().unwrap();
        }
        let (mut q, report, _rx) = persistent(&path);
        assert_eq!(
            (report.items, report.dead_letters, report.interrupted),
            (1, 2, 1)
        );
        let item = q.get(c).unwrap();
        assert_eq!(item.attempts, 1);
        assert!(!item.running);
        assert!(item
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("interrupted"));
        assert_eq!(
            q.dead_letter(b).unwrap().item.last_error.as_deref(),
            Some("HTTP 503")
        );
        assert_eq!(q.dead_letter(d).unwrap().reason, DeadReason::Expired);
        // The completed key is remembered; new ids follow the old ones.
        assert_eq!(enqueue(&mut q, "meta_api", Some("ad-1"), 2_000.0), a);
        assert!(enqueue(&mut q, "meta_api", None, 2_000.0) > d);
    }

    #[test]
    fn an_item_interrupted_on_its_last_attempt_is_dead_lettered_by_the_first_expire() {
        let dir = TempDir::new("lastattempt");
        let path = dir.file();
        let id;
        {
            let (mut q, _, _rx) = persistent(&path);
            id = enqueue(&mut q, "s", None, 0.0);
            for n in 1..=3 {
                q.start(id, 1e4 * f64::from(n)).unwrap();
                if n < 3 {
                    q.fail(id, "e".into(), 1e4 * f64::from(n)).unwrap();
                }
            }
        }
        let (mut q, report, _rx) = persistent(&path);
        assert_eq!(report.interrupted, 1);
        assert_eq!(q.next_expiry(), Some(f64::NEG_INFINITY));
        assert_eq!(q.expire(0.0), vec![id]);
        assert_eq!(q.dead_letter(id).unwrap().reason, DeadReason::MaxAttempts);
    }

    #[test]
    fn enqueue_reports_the_sequence_number_to_wait_for() {
        let dir = TempDir::new("seq");
        let (mut q, _, rx) = persistent(&dir.file());
        let e = q.enqueue("s", op("x"), None, 0.0).unwrap();
        assert_eq!(e.seq, 1);
        let (seq, err) = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!((seq, err), (1, None));
        assert_eq!(q.journal_seqs(), Some((1, 1)));
    }

    #[test]
    fn function_items_cannot_be_persisted() {
        let dir = TempDir::new("fn");
        let (mut q, _, _rx) = persistent(&dir.file());
        let e = q.enqueue("s", Work::Function, None, 0.0).unwrap_err();
        assert_eq!(e.code(), "ERR_NOT_SERIALIZABLE");
        assert!(q.is_empty());
        let mut mem = Queue::new(cfg());
        assert!(mem.enqueue("s", Work::Function, None, 0.0).is_ok());
    }

    #[test]
    fn a_second_queue_on_the_same_journal_is_refused() {
        let dir = TempDir::new("locked");
        let (_q, _, _rx) = persistent(&dir.file());
        let mut c = cfg();
        c.persist_path = Some(dir.file());
        let e = Queue::open(c, Box::new(|_, _| {}), 0.0).err().unwrap();
        assert_eq!(e.code(), "ERR_JOURNAL_LOCKED");
    }

    #[test]
    fn compaction_keeps_the_journal_small_and_the_state_whole() {
        let dir = TempDir::new("compact");
        let path = dir.file();
        let (keep, done);
        {
            let (mut q, _, _rx) = persistent(&path);
            q.set_compact_min_bytes(4_096);
            keep = enqueue(&mut q, "s", Some("keep"), 0.0);
            done = enqueue(&mut q, "s", Some("done"), 0.0);
            q.start(done, 1.0).unwrap();
            q.complete(done, 1.0).unwrap();
            for _ in 0..2_000 {
                let id = enqueue(&mut q, "s", None, 0.0);
                q.start(id, 1_000.0).unwrap();
                q.complete(id, 1_000.0).unwrap();
            }
            q.start(keep, 1_000.0).unwrap();
            q.fail(keep, "later".into(), 1_000.0).unwrap();
            assert!(q.stats().compactions > 0);
            q.close().unwrap();
        }
        // About 250 KB of records were written; the state is one item and one key.
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 16_384, "journal is {size} bytes");
        let (mut q, report, _rx) = persistent(&path);
        assert_eq!(report.items, 1);
        let item = q.get(keep).unwrap();
        assert_eq!(
            (item.attempts, item.last_error.as_deref()),
            (1, Some("later"))
        );
        assert_eq!(enqueue(&mut q, "s", Some("done"), 2_000.0), done);
        // Ids are never reused, even though the last ones left no record but `NextId`.
        assert!(enqueue(&mut q, "s", None, 2_000.0) > done + 2_000);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_earlier_records_are_kept() {
        let dir = TempDir::new("torn");
        let path = dir.file();
        {
            let (mut q, _, _rx) = persistent(&path);
            for _ in 0..5 {
                enqueue(&mut q, "s", None, 0.0);
            }
            q.close().unwrap();
        }
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 7]).unwrap();
        {
            let (mut q, report, _rx) = persistent(&path);
            assert_eq!(report.items, 4);
            assert!(report.torn_bytes > 0);
            enqueue(&mut q, "s", None, 0.0);
            q.close().unwrap();
        }
        let (_q, report, _rx) = persistent(&path);
        assert_eq!((report.items, report.torn_bytes), (5, 0));
    }

    #[test]
    fn a_corrupt_journal_is_an_error_naming_the_file() {
        let dir = TempDir::new("corrupt");
        let path = dir.file();
        std::fs::write(
            &path,
            b"this is some other file, long enough to have a header",
        )
        .unwrap();
        let mut c = cfg();
        c.persist_path = Some(path.clone());
        let e = Queue::open(c, Box::new(|_, _| {}), 0.0).err().unwrap();
        assert_eq!(e.code(), "ERR_CORRUPT_JOURNAL");
        assert!(e.to_string().contains(&path), "{e}");
        // The lock was released: once the file is fixed, it opens.
        std::fs::remove_file(&path).unwrap();
        assert!(persistent(&path).0.is_empty());
    }

    // A model-based test of the journal: random operations (with compaction at a tiny size),
    // then a restart; the replayed state must equal the state before it.
    mod replay_model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Enqueue(u8, Option<u8>),
            Start(u8),
            Complete(u8),
            Fail(u8),
            Advance(u16),
            Defer(u8),
            ClearDead,
            Compact,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0u8..3, proptest::option::of(0u8..6)).prop_map(|(s, k)| Op::Enqueue(s, k)),
                3 => any::<u8>().prop_map(Op::Start),
                2 => any::<u8>().prop_map(Op::Complete),
                2 => any::<u8>().prop_map(Op::Fail),
                2 => (0u16..30_000).prop_map(Op::Advance),
                1 => any::<u8>().prop_map(Op::Defer),
                1 => Just(Op::ClearDead),
                1 => Just(Op::Compact),
            ]
        }

        /// What must survive a restart. A running item comes back queued, its attempt counted
        /// and marked as interrupted.
        #[allow(clippy::type_complexity)]
        fn state(
            q: &Queue,
        ) -> (
            Vec<(
                u64,
                String,
                Option<String>,
                Option<String>,
                f64,
                f64,
                u32,
                Option<String>,
            )>,
            Vec<(u64, f64, &'static str, Option<String>)>,
            Vec<(String, u64)>,
            Vec<(String, u64, f64)>,
            u64,
        ) {
            let mut items: Vec<_> = q
                .items
                .values()
                .map(|i| {
                    let err = if i.running {
                        Some(format!(
                            "interrupted: the process stopped during attempt {}",
                            i.attempts
                        ))
                    } else {
                        i.last_error.clone()
                    };
                    (
                        i.id,
                        i.service.to_string(),
                        i.payload().map(String::from),
                        i.key.clone(),
                        i.enqueued_at,
                        i.due_at,
                        i.attempts,
                        err,
                    )
                })
                .collect();
            items.sort_by_key(|i| i.0);
            let dead = q
                .dead
                .values()
                .map(|d| {
                    (
                        d.item.id,
                        d.at,
                        d.reason.as_str(),
                        d.item.last_error.clone(),
                    )
                })
                .collect();
            let mut keys: Vec<_> = q.keys.iter().map(|(k, v)| (k.clone(), *v)).collect();
            keys.sort();
            let completed = q
                .completed
                .iter()
                .map(|r| (r.key.clone(), r.id, r.at))
                .collect();
            (items, dead, keys, completed, q.next_id)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]
            #[test]
            fn replay_restores_the_state(ops in proptest::collection::vec(op(), 1..80)) {
                let dir = TempDir::new("model");
                let path = dir.file();
                let before;
                let mut now = 0.0;
                {
                    let mut c = cfg();
                    c.persist_path = Some(path.clone());
                    c.max_queue_size = 20;
                    c.max_attempts = 3;
                    c.ttl_ms = 40_000.0;
                    c.jitter_ratio = 0.3;
                    c.idempotency_retention_ms = 50_000.0;
                    let (mut q, _) = Queue::open(c, Box::new(|_, _| {}), 0.0).unwrap();
                    q.set_compact_min_bytes(512);
                    for op in ops {
                        let queued: Vec<u64> = q.list(None).iter().filter(|i| !i.running).map(|i| i.id).collect();
                        let running: Vec<u64> = q.list(None).iter().filter(|i| i.running).map(|i| i.id).collect();
                        let pick = |v: &Vec<u64>, n: u8| (!v.is_empty()).then(|| v[n as usize % v.len()]);
                        match op {
                            Op::Enqueue(s, k) => {
                                let _ = q.enqueue(&format!("svc{s}"), op_work(), k.map(|k| format!("key{k}")), now);
                            }
                            Op::Start(n) => if let Some(id) = pick(&queued, n) { q.start(id, now).unwrap(); },
                            Op::Complete(n) => if let Some(id) = pick(&running, n) { q.complete(id, now).unwrap(); },
                            Op::Fail(n) => if let Some(id) = pick(&running, n) { q.fail(id, format!("err at {now}"), now).unwrap(); },
                            Op::Advance(ms) => { now += f64::from(ms); q.expire(now); }
                            Op::Defer(n) => if let Some(id) = pick(&queued, n) { q.defer(id, now + 500.0, "wait".into()).unwrap(); },
                            Op::ClearDead => { q.clear_dead_letters(); }
                            Op::Compact => q.compact().unwrap(),
                        }
                    }
                    // Keys are forgotten lazily; replay forgets the expired ones at once.
                    q.forget_old(now);
                    before = state(&q);
                    q.close().unwrap();
                }
                let mut c = cfg();
                c.persist_path = Some(path.clone());
                c.max_attempts = 100; // so no interrupted item is dead-lettered at replay
                c.ttl_ms = 40_000.0;
                c.idempotency_retention_ms = 50_000.0;
                // Reopened at the same time: time-based rules (key retention) see the same clock.
                let (q, report) = Queue::open(c, Box::new(|_, _| {}), now).unwrap();
                prop_assert_eq!(report.torn_bytes, 0);
                let after = state(&q);
                prop_assert_eq!(after, before);
            }
        }

        fn op_work() -> Work {
            Work::Operation {
                operation: "publish_ad".into(),
                payload: "{\"ad\":1}".into(),
            }
        }
    }
}
