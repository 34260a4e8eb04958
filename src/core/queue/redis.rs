//! The retry queue's Redis backend, pure parts: its options (`queue: { redisUrl, ... }`), key
//! names, the Lua scripts that make every step atomic, and the decoding of their replies. The
//! binding (src/napi/queue_redis.rs) runs the scripts; the JS layer runs the handlers.
//!
//! Why Redis Streams with a consumer group, and not BullMQ: BullMQ is a Node library with its own
//! Redis client and worker loop, which would put the queue's IO outside the Rust binding and
//! bring a second Redis connection stack next to the one the shared breakers use; its
//! job-id dedup forgets ids once jobs are removed, and its stalled-job checker is the same
//! visibility idea as XAUTOCLAIM. Streams give exactly the guarantees asked for, in plain
//! commands: XREADGROUP hands an entry to one consumer and keeps it pending until XACK
//! (at-least-once), XAUTOCLAIM moves entries idle longer than the visibility timeout to a live
//! consumer (an instance that died loses its items to the others), and with AOF + fsync every
//! acknowledged write survives a restart. Idempotency keys are plain `SET`s, delayed retries a
//! sorted set promoted into the service's stream when due. Every step is one Lua script, so an
//! instance that dies between two commands never leaves half a transition; the scripts read
//! `TIME`, so due times and ages come from Redis' clock, not from the instances' clocks.
//!
//! Keys (all under `keyPrefix`): `seq` (item ids), `live` (set of queued and running ids, which
//! bounds the queue), `item:{id}` (hash: service, op, payload, key, enq, att, err, eid, by; dead
//! items also dead and reason), `delayed` (zset: id by due time), `stream:{service}` (the
//! service's stream, group `workers`, entries `id={id}`), `services` (set), `dead` (zset: id
//! by dead time), `key:{idempotencyKey}` (the id; a PX of the retention once completed).
//! Scripts build key names from the prefix, so this backend needs a single Redis (no cluster).

use crate::core::error::Result;
use crate::core::options::{fmt_num, Options, Value};
use crate::core::shared::config::{
    command_timeout_option, redis_url_option, DEFAULT_COMMAND_TIMEOUT_MS,
};

use super::journal::DeadReason;
use super::{backoff_delay, dead_after_failure};
use crate::core::fallback::config::QueueConfig;

pub const DEFAULT_KEY_PREFIX: &str = "breakwater:queue:";
pub const DEFAULT_VISIBILITY_TIMEOUT_MS: f64 = 30_000.0;
pub const DEFAULT_POLL_INTERVAL_MS: f64 = 250.0;
/// The shortest visibility timeout: the heartbeat (a third of it) must fit in it comfortably.
pub const MIN_VISIBILITY_TIMEOUT_MS: f64 = 100.0;
pub const MAX_POLL_INTERVAL_MS: f64 = 60_000.0;
/// Items a poll takes per service at most (besides `concurrency`).
pub const MAX_TAKE: u32 = 100;
/// Items listed by `list()` and `deadLetters()` at most.
pub const MAX_LIST: u32 = 10_000;

const CONTEXT: &str = "queue options";
const KNOWN: &[&str] = &[
    "redisUrl",
    "keyPrefix",
    "visibilityTimeoutMs",
    "consumer",
    "pollIntervalMs",
    "commandTimeoutMs",
];

#[derive(Debug, Clone, PartialEq)]
pub struct RedisQueueConfig {
    pub redis_url: String,
    pub key_prefix: String,
    /// An item held (running) this long without a heartbeat is handed to another instance.
    pub visibility_timeout_ms: f64,
    /// This instance's consumer name in the group.
    pub consumer: String,
    /// How often an idle instance looks for due items (and promotes delayed ones).
    pub poll_interval_ms: f64,
    pub command_timeout_ms: f64,
}

impl RedisQueueConfig {
    /// Validates the `queue` option; `default_consumer` applies when `consumer` is not given.
    /// `persist_path` set at the same time is a conflict: the items live in Redis.
    pub fn resolve(
        entries: Vec<(String, Value)>,
        default_consumer: &str,
        persist_path: bool,
    ) -> Result<Self> {
        let mut o = Options::new(CONTEXT, entries);
        let redis_url = redis_url_option(&mut o);
        if persist_path {
            o.issue(
                "persistPath",
                "a path".into(),
                "no persistPath with a Redis queue (the items are kept in Redis)",
            );
        }
        let key_prefix = o.text("keyPrefix", 1, 256, false);
        let consumer = o.text("consumer", 1, 128, false);
        let visibility = o.duration("visibilityTimeoutMs", false, false);
        let visibility = visibility.and_then(|ms| {
            if ms >= MIN_VISIBILITY_TIMEOUT_MS {
                Some(ms)
            } else {
                o.issue(
                    "visibilityTimeoutMs",
                    fmt_num(ms),
                    format!("a number of milliseconds of at least {MIN_VISIBILITY_TIMEOUT_MS}"),
                );
                None
            }
        });
        let poll = o.duration("pollIntervalMs", false, false).and_then(|ms| {
            if ms <= MAX_POLL_INTERVAL_MS {
                Some(ms)
            } else {
                o.issue(
                    "pollIntervalMs",
                    fmt_num(ms),
                    format!("a number of milliseconds greater than 0 and at most {MAX_POLL_INTERVAL_MS}"),
                );
                None
            }
        });
        let timeout = command_timeout_option(&mut o);
        o.finish(KNOWN)?;
        Ok(Self {
            redis_url: redis_url.unwrap_or_default(),
            key_prefix: key_prefix.unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_string()),
            visibility_timeout_ms: visibility.unwrap_or(DEFAULT_VISIBILITY_TIMEOUT_MS),
            consumer: consumer.unwrap_or_else(|| default_consumer.to_string()),
            poll_interval_ms: poll.unwrap_or(DEFAULT_POLL_INTERVAL_MS),
            command_timeout_ms: timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT_MS),
        })
    }

    /// How often a running item's holder tells Redis it is alive: three beats per timeout, so
    /// one late beat does not hand a live item to another instance.
    pub fn heartbeat_ms(&self) -> f64 {
        self.visibility_timeout_ms / 3.0
    }

    /// Connecting may take twice a command, and at least a second.
    pub fn connect_timeout_ms(&self) -> f64 {
        (2.0 * self.command_timeout_ms).max(1_000.0)
    }
}

/// Milliseconds as the integer text the scripts expect.
pub fn ms_arg(ms: f64) -> String {
    if ms.is_finite() && ms > 0.0 {
        format!("{}", ms.round() as u64)
    } else {
        "0".into()
    }
}

/// What a failed attempt leads to, decided in Rust with the local queue's rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterFailure {
    Retry { delay_ms: f64 },
    Dead { reason: DeadReason },
}

/// After the `attempts`-th attempt failed at `now` (Redis' clock): dead-lettered, or retried
/// after a backoff with jitter (`unit` in 0..1), by the same rules as the local queue.
pub fn after_failure(
    cfg: &QueueConfig,
    attempts: u32,
    enqueued_at: f64,
    now: f64,
    unit: f64,
) -> AfterFailure {
    match dead_after_failure(cfg, attempts, enqueued_at + cfg.ttl_ms, now) {
        Some(reason) => AfterFailure::Dead { reason },
        None => AfterFailure::Retry {
            delay_ms: backoff_delay(cfg, attempts, unit),
        },
    }
}

/// An item taken for an attempt (or dead-lettered at take because it expired).
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    pub expired: bool,
    pub service: String,
    pub id: String,
    /// The stream entry, for XACK.
    pub entry: String,
    pub attempts: u32,
    pub operation: String,
    pub payload: String,
    pub key: Option<String>,
    pub enqueued_at: f64,
    pub last_error: Option<String>,
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Decodes one row of the TAKE script's reply:
/// `[kind, id, entry, attempts, op, payload, key, enq, err, service]`.
pub fn parse_taken(row: &[String]) -> Option<Taken> {
    let [kind, id, entry, attempts, op, payload, key, enq, err, service] = row else {
        return None;
    };
    Some(Taken {
        expired: kind == "expired",
        service: service.clone(),
        id: id.clone(),
        entry: entry.clone(),
        attempts: attempts.parse().ok()?,
        operation: op.clone(),
        payload: payload.clone(),
        key: opt(key),
        enqueued_at: enq.parse().ok()?,
        last_error: opt(err),
    })
}

/// An item as listed: the fields of its hash.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listed {
    pub id: String,
    pub service: String,
    pub operation: String,
    pub payload: String,
    pub key: Option<String>,
    pub attempts: u32,
    pub enqueued_at: f64,
    pub due_at: Option<f64>,
    pub last_error: Option<String>,
    pub running: bool,
    pub dead_at: Option<f64>,
    pub reason: Option<String>,
}

/// Decodes an item's HGETALL (flat field/value pairs) plus its due time (or "" when not delayed).
pub fn parse_listed(id: &str, pairs: &[String], due: &str) -> Listed {
    let mut l = Listed {
        id: id.to_string(),
        due_at: due.parse().ok(),
        ..Listed::default()
    };
    for kv in pairs.chunks_exact(2) {
        let v = &kv[1];
        match kv[0].as_str() {
            "service" => l.service = v.clone(),
            "op" => l.operation = v.clone(),
            "payload" => l.payload = v.clone(),
            "key" => l.key = opt(v),
            "att" => l.attempts = v.parse().unwrap_or(0),
            "enq" => l.enqueued_at = v.parse().unwrap_or(0.0),
            "err" => l.last_error = opt(v),
            "by" => l.running = !v.is_empty(),
            "dead" => l.dead_at = v.parse().ok(),
            "reason" => l.reason = opt(v),
            _ => {}
        }
    }
    if l.dead_at.is_some() {
        l.running = false;
    }
    l
}

/// Redis' clock in ms, as every script computes it.
const NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function num(x) return string.format('%.0f', x) end
local function ensure_group(stream)
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, 'workers', '0', 'MKSTREAM')
  end
end
local function bury(p, id, ik, reason)
  redis.call('HSET', ik, 'dead', num(now), 'reason', reason, 'by', '', 'eid', '')
  redis.call('SREM', p .. 'live', id)
  redis.call('ZREM', p .. 'delayed', id)
  redis.call('ZADD', p .. 'dead', now, id)
  local key = redis.call('HGET', ik, 'key')
  if key and key ~= '' and redis.call('GET', p .. 'key:' .. key) == id then
    redis.call('DEL', p .. 'key:' .. key)
  end
end
";

/// ARGV: prefix, service, operation, payload, idempotency key (or ""), maxQueueSize, first
/// delay ms. Returns `[id, 1]` for a known key, `["", 2]` when full, `[id, 0, dueAt]` when added.
pub const ENQUEUE_BODY: &str = r"
local p, svc, op, payload, key = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if key ~= '' then
  local existing = redis.call('GET', p .. 'key:' .. key)
  if existing then return {existing, 1} end
end
if redis.call('SCARD', p .. 'live') >= tonumber(ARGV[6]) then return {'', 2} end
local id = tostring(redis.call('INCR', p .. 'seq'))
local due = now + tonumber(ARGV[7])
redis.call('HSET', p .. 'item:' .. id, 'service', svc, 'op', op, 'payload', payload, 'key', key,
  'enq', num(now), 'att', '0', 'err', '', 'by', '', 'eid', '')
redis.call('SADD', p .. 'live', id)
redis.call('SADD', p .. 'services', svc)
if key ~= '' then redis.call('SET', p .. 'key:' .. key, id) end
redis.call('ZADD', p .. 'delayed', due, id)
return {id, 0, num(due)}
";

/// ARGV: prefix, consumer, visibility ms, queueTtlMs, then (service, count) pairs. Promotes due
/// retries into their streams, then per service reclaims entries idle past the visibility
/// timeout (XAUTOCLAIM) and reads new ones (XREADGROUP), up to count. Returns
/// `[now, services, rows, live count, dead count]`: rows as `parse_taken` reads them.
pub const TAKE_BODY: &str = r"
local p, consumer, vis, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', p .. 'delayed', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', p .. 'delayed', id)
  local s = redis.call('HGET', p .. 'item:' .. id, 'service')
  if s then
    local stream = p .. 'stream:' .. s
    ensure_group(stream)
    redis.call('XADD', stream, '*', 'id', id)
  end
end
local rows = {}
local i = 5
while ARGV[i] do
  local svc, count = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local stream = p .. 'stream:' .. svc
  if count > 0 and redis.call('EXISTS', stream) == 1 then
    local entries = {}
    local claimed = redis.call('XAUTOCLAIM', stream, 'workers', consumer, vis, '0-0', 'COUNT', count)
    for _, e in ipairs(claimed[2]) do
      if e then table.insert(entries, e) end
    end
    if #entries < count then
      local r = redis.call('XREADGROUP', 'GROUP', 'workers', consumer, 'COUNT', count - #entries, 'STREAMS', stream, '>')
      if r then
        for _, e in ipairs(r[1][2]) do table.insert(entries, e) end
      end
    end
    for _, e in ipairs(entries) do
      local eid, f = e[1], e[2]
      local id = f and f[2]
      local ik = p .. 'item:' .. (id or '')
      if not id or redis.call('EXISTS', ik) == 0 or redis.call('HEXISTS', ik, 'dead') == 1 then
        redis.call('XACK', stream, 'workers', eid)
        redis.call('XDEL', stream, eid)
      else
        local h = redis.call('HMGET', ik, 'op', 'payload', 'key', 'enq', 'err', 'att')
        if now >= tonumber(h[4]) + ttl then
          redis.call('XACK', stream, 'workers', eid)
          redis.call('XDEL', stream, eid)
          bury(p, id, ik, 'expired')
          table.insert(rows, {'expired', id, eid, h[6], h[1], h[2], h[3], h[4], h[5], svc})
        else
          local att = redis.call('HINCRBY', ik, 'att', 1)
          redis.call('HSET', ik, 'eid', eid, 'by', consumer)
          table.insert(rows, {'run', id, eid, tostring(att), h[1], h[2], h[3], h[4], h[5], svc})
        end
      end
    end
  end
end
return {num(now), redis.call('SMEMBERS', p .. 'services'), rows, redis.call('SCARD', p .. 'live'), redis.call('ZCARD', p .. 'dead')}
";

/// ARGV: prefix, service, id, entry, retention ms. The item leaves the queue; its key is kept
/// for the retention. Returns 1, or 0 when the item was already gone (completed elsewhere).
pub const COMPLETE_BODY: &str = r"
local p, svc, id, eid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local stream = p .. 'stream:' .. svc
redis.call('XACK', stream, 'workers', eid)
redis.call('XDEL', stream, eid)
local ik = p .. 'item:' .. id
if redis.call('EXISTS', ik) == 0 or redis.call('HEXISTS', ik, 'dead') == 1 then return 0 end
local key = redis.call('HGET', ik, 'key')
redis.call('DEL', ik)
redis.call('SREM', p .. 'live', id)
redis.call('ZREM', p .. 'delayed', id)
if key and key ~= '' then
  local ms = tonumber(ARGV[5])
  if ms > 0 then redis.call('SET', p .. 'key:' .. key, id, 'PX', ms)
  else redis.call('DEL', p .. 'key:' .. key) end
end
return 1
";

/// ARGV: prefix, service, id, entry, consumer, error, mode (`retry` | `dead` | `release`),
/// delay ms, dead reason. `release` gives the item back without using its attempt (a breaker
/// that refused after the take, no handler). Ignored (0) when another consumer holds the item
/// now. Returns `[1, dueAt]` for a retry or release, `[2, deadAt]` for a dead letter.
pub const FAIL_BODY: &str = r"
local p, svc, id, eid, consumer, err, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local ik = p .. 'item:' .. id
if redis.call('HGET', ik, 'by') ~= consumer or redis.call('HGET', ik, 'eid') ~= eid then return {0} end
local stream = p .. 'stream:' .. svc
redis.call('XACK', stream, 'workers', eid)
redis.call('XDEL', stream, eid)
if err ~= '' then redis.call('HSET', ik, 'err', err) end
if mode == 'dead' then
  bury(p, id, ik, ARGV[9])
  return {2, num(now)}
end
if mode == 'release' then redis.call('HINCRBY', ik, 'att', -1) end
redis.call('HSET', ik, 'by', '', 'eid', '')
local due = now + tonumber(ARGV[8])
redis.call('ZADD', p .. 'delayed', due, id)
return {1, num(due)}
";

/// ARGV: prefix, consumer, then (service, entry) pairs: resets the idle time of the entries this
/// consumer still holds (the visibility heartbeat). Returns how many it still holds.
pub const TOUCH_BODY: &str = r"
local p, consumer = ARGV[1], ARGV[2]
local held = 0
local i = 3
while ARGV[i] do
  local stream, eid = p .. 'stream:' .. ARGV[i], ARGV[i + 1]
  i = i + 2
  local pe = redis.call('XPENDING', stream, 'workers', eid, eid, 1)
  if pe[1] and pe[1][2] == consumer then
    redis.call('XCLAIM', stream, 'workers', consumer, 0, eid, 'JUSTID')
    held = held + 1
  end
end
return held
";

/// ARGV: prefix, which (`live` | `dead`), limit. Returns `[id, due or '', hgetall]` rows.
pub const LIST_BODY: &str = r"
local p, which, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ids
if which == 'dead' then ids = redis.call('ZRANGE', p .. 'dead', 0, limit - 1)
else ids = redis.call('SORT', p .. 'live', 'LIMIT', 0, limit) end
local out = {}
for _, id in ipairs(ids) do
  local due = redis.call('ZSCORE', p .. 'delayed', id)
  table.insert(out, {id, due or '', redis.call('HGETALL', p .. 'item:' .. id)})
end
return out
";

/// ARGV: prefix. Returns `[queued+running, dead]`.
pub const COUNTS_BODY: &str = r"
local p = ARGV[1]
return {redis.call('SCARD', p .. 'live'), redis.call('ZCARD', p .. 'dead')}
";

/// ARGV: prefix. Forgets every dead letter; returns how many.
pub const CLEAR_DEAD_BODY: &str = r"
local p = ARGV[1]
local ids = redis.call('ZRANGE', p .. 'dead', 0, -1)
for _, id in ipairs(ids) do redis.call('DEL', p .. 'item:' .. id) end
redis.call('DEL', p .. 'dead')
return #ids
";

/// A script: the shared prelude (clock, helpers) and its body.
pub fn script(body: &str) -> String {
    format!("{NOW}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::Error;

    fn entries(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn defaults_fill_every_gap() {
        let c = RedisQueueConfig::resolve(
            entries(&[("redisUrl", Value::Text("redis://127.0.0.1:6379".into()))]),
            "host-1",
            false,
        )
        .unwrap();
        assert_eq!(c.key_prefix, DEFAULT_KEY_PREFIX);
        assert_eq!(c.consumer, "host-1");
        assert_eq!(c.visibility_timeout_ms, DEFAULT_VISIBILITY_TIMEOUT_MS);
        assert_eq!(c.poll_interval_ms, DEFAULT_POLL_INTERVAL_MS);
        assert_eq!(c.heartbeat_ms(), DEFAULT_VISIBILITY_TIMEOUT_MS / 3.0);
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let e = RedisQueueConfig::resolve(
            entries(&[
                ("redisUrl", Value::Text("http://x".into())),
                ("visibilityTimeoutMs", Value::Number(5.0)),
                ("pollIntervalMs", Value::Number(0.0)),
                ("visibilityTimeout", Value::Number(5.0)),
            ]),
            "c",
            true,
        )
        .unwrap_err();
        let Error::InvalidConfig { issues, .. } = &e else {
            panic!("{e:?}")
        };
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        for f in [
            "redisUrl",
            "visibilityTimeoutMs",
            "pollIntervalMs",
            "unknown option \"visibilityTimeout\"",
            "persistPath",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert_eq!(e.code(), "ERR_INVALID_CONFIG");
    }

    #[test]
    fn a_missing_url_is_required() {
        let e = RedisQueueConfig::resolve(Vec::new(), "c", false).unwrap_err();
        assert!(e.to_string().contains("redisUrl"));
    }

    #[test]
    fn failures_retry_with_backoff_then_die() {
        let cfg = QueueConfig {
            max_attempts: 3,
            retry_delay_ms: 100.0,
            backoff_multiplier: 2.0,
            jitter_ratio: 0.5,
            ttl_ms: 10_000.0,
            ..QueueConfig::default()
        };
        let table = [
            (1, 0.0, 0.0, AfterFailure::Retry { delay_ms: 200.0 }),
            (2, 0.0, 0.0, AfterFailure::Retry { delay_ms: 400.0 }),
            (2, 0.0, 1.0, AfterFailure::Retry { delay_ms: 200.0 }),
            (
                3,
                0.0,
                0.0,
                AfterFailure::Dead {
                    reason: DeadReason::MaxAttempts,
                },
            ),
            (
                1,
                10_000.0,
                0.0,
                AfterFailure::Dead {
                    reason: DeadReason::Expired,
                },
            ),
        ];
        for (attempts, now, unit, want) in table {
            assert_eq!(
                after_failure(&cfg, attempts, 0.0, now, unit),
                want,
                "{attempts} {now}"
            );
        }
    }

    #[test]
    fn ms_args_are_integers() {
        assert_eq!(ms_arg(1500.4), "1500");
        assert_eq!(ms_arg(-1.0), "0");
        assert_eq!(ms_arg(f64::NAN), "0");
        assert_eq!(ms_arg(1.7e12), "1700000000000");
    }

    #[test]
    fn taken_rows_decode() {
        let row: Vec<String> = [
            "run", "7", "1-0", "2", "publish", "{}", "", "1000", "boom", "meta",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let t = parse_taken(&row).unwrap();
        assert!(!t.expired);
        assert_eq!(t.attempts, 2);
        assert_eq!(t.key, None);
        assert_eq!(t.last_error.as_deref(), Some("boom"));
        assert_eq!(parse_taken(&row[..3]), None);
        let mut bad = row.clone();
        bad[3] = "x".into();
        assert_eq!(parse_taken(&bad), None);
    }

    #[test]
    fn listed_items_decode() {
        let pairs: Vec<String> = [
            "service", "meta", "op", "publish", "payload", "1", "key", "k", "att", "1", "enq", "5",
            "err", "", "by", "c1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let l = parse_listed("3", &pairs, "");
        assert!(l.running);
        assert_eq!(l.key.as_deref(), Some("k"));
        assert_eq!(l.due_at, None);
        let mut dead = pairs.clone();
        dead.extend(["dead".to_string(), "9".to_string()]);
        let l = parse_listed("3", &dead, "12");
        assert!(!l.running);
        assert_eq!(l.dead_at, Some(9.0));
        assert_eq!(l.due_at, Some(12.0));
    }

    #[test]
    fn scripts_carry_the_prelude() {
        for body in [
            ENQUEUE_BODY,
            TAKE_BODY,
            COMPLETE_BODY,
            FAIL_BODY,
            TOUCH_BODY,
            LIST_BODY,
            COUNTS_BODY,
            CLEAR_DEAD_BODY,
        ] {
            let s = script(body);
            assert!(s.starts_with(NOW));
            assert!(s.contains("ARGV[1]"));
        }
    }
}
