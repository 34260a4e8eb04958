//! `NativeRedisQueue`: the IO of the retry queue's Redis backend (see core/queue/redis.rs for
//! the design). Each method runs one Lua script on a multiplexed connection, on napi's tokio
//! runtime, with its own timeout, and returns a promise. A lost connection (or no answer in
//! time) rejects with `ERR_QUEUE_UNAVAILABLE` and is dropped; the next call reconnects, so the
//! JS layer's drain loop resumes by itself once Redis is back. Handlers run in JS.

use crate::core::rng::Jitter;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{JsObjectValue, Object, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script, Value};

use crate::core::error::Error;
use crate::core::fallback::FallbackConfig;
use crate::core::queue::backoff_delay;
use crate::core::queue::redis::{
    after_failure, ms_arg, parse_listed, parse_taken, script, AfterFailure, Listed,
    RedisQueueConfig, CLEAR_DEAD_BODY, COMPLETE_BODY, COUNTS_BODY, ENQUEUE_BODY, FAIL_BODY,
    LIST_BODY, MAX_LIST, MAX_TAKE, TAKE_BODY, TOUCH_BODY,
};

use super::error::to_js;
use super::fallback::{resolve, resolved, ResolvedFallbackOptions};
use super::options::entries;
use super::queue::QueueItem;
use super::shared::{connection_lost, redis_client};

struct Scripts {
    enqueue: Script,
    take: Script,
    complete: Script,
    fail: Script,
    touch: Script,
    list: Script,
    counts: Script,
    clear_dead: Script,
}

struct Inner {
    client: Client,
    cfg: RedisQueueConfig,
    fallback: FallbackConfig,
    scripts: Scripts,
    con: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    rng: Mutex<Jitter>,
}

#[napi]
pub struct NativeRedisQueue {
    inner: Arc<Inner>,
}

/// The resolved options: the queue rules and the Redis backend's own.
#[napi(object)]
pub struct RedisQueueOptions {
    pub rules: ResolvedFallbackOptions,
    pub key_prefix: String,
    pub visibility_timeout_ms: f64,
    pub heartbeat_ms: f64,
    pub consumer: String,
    pub poll_interval_ms: f64,
    pub command_timeout_ms: f64,
}

#[napi(object)]
pub struct RedisEnqueued {
    pub id: String,
    pub existing: bool,
    /// When the first attempt is due (Redis' clock); absent for an existing item.
    pub due_at: Option<f64>,
}

#[napi(object)]
pub struct TakeRequest {
    pub service: String,
    pub count: u32,
}

#[napi(object)]
pub struct TakenItem {
    pub service: String,
    /// `run`, or `expired` (dead-lettered at take: past queueTtlMs).
    pub kind: String,
    pub id: String,
    pub entry: String,
    pub attempts: u32,
    pub operation: String,
    /// JSON text.
    pub payload: String,
    pub idempotency_key: Option<String>,
    pub enqueued_at: f64,
    pub last_error: Option<String>,
}

#[napi(object)]
pub struct TakeResult {
    /// Redis' clock when the items were taken.
    pub now: f64,
    /// Every service that ever had an item in this queue.
    pub services: Vec<String>,
    pub items: Vec<TakenItem>,
    /// Queued and running items, fleet-wide, after the take.
    pub live: u32,
    pub dead: u32,
}

#[napi(object)]
pub struct RedisFailOutcome {
    /// False when another instance holds the item now (this attempt's outcome is dropped).
    pub held: bool,
    pub dead: bool,
    pub reason: Option<String>,
    pub next_attempt_at: f64,
    pub delay_ms: f64,
}

#[napi(object)]
pub struct RedisCounts {
    pub live: u32,
    pub dead: u32,
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::Double(d) => d.to_string(),
        _ => String::new(),
    }
}

fn array(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => &[],
    }
}

fn texts(v: &Value) -> Vec<String> {
    array(v).iter().map(text).collect()
}

fn number(v: &Value) -> f64 {
    text(v).parse().unwrap_or(0.0)
}

/// A script's status code (0 when absent).
fn status(v: Option<&Value>) -> i64 {
    v.map_or(0, |v| number(v) as i64)
}

fn item_js(l: Listed) -> QueueItem {
    QueueItem {
        num: l.id.parse().unwrap_or(0.0),
        id: l.id,
        service: l.service,
        operation: Some(l.operation),
        payload: Some(l.payload),
        idempotency_key: l.key,
        attempts: l.attempts,
        enqueued_at: l.enqueued_at,
        next_attempt_at: l.due_at.unwrap_or(l.enqueued_at),
        last_error: l.last_error,
        running: l.running,
        dead_at: l.dead_at,
        reason: l.reason,
    }
}

impl Inner {
    fn unit(&self) -> f64 {
        self.rng.lock().unit()
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.cfg.command_timeout_ms / 1000.0)
    }

    /// The connection, (re)connecting when there is none.
    async fn connection(&self) -> Result<MultiplexedConnection, Error> {
        let mut con = self.con.lock().await;
        if let Some(c) = con.as_ref() {
            return Ok(c.clone());
        }
        let connect = Duration::from_secs_f64(self.cfg.connect_timeout_ms() / 1000.0);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect))
            .set_response_timeout(Some(self.timeout()));
        let c = tokio::time::timeout(
            connect,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| {
            Error::QueueUnavailable(format!(
                "no connection to Redis within {} ms",
                connect.as_millis()
            ))
        })?
        .map_err(|e| Error::QueueUnavailable(format!("cannot connect to Redis: {e}")))?;
        *con = Some(c.clone());
        Ok(c)
    }

    /// Runs one script with the command timeout. A lost connection is dropped for the next
    /// call to replace.
    async fn run(&self, op: &str, s: &Script, args: &[String]) -> Result<Value, Error> {
        let mut con = self.connection().await?;
        let mut inv = s.prepare_invoke();
        inv.arg(&self.cfg.key_prefix);
        for a in args {
            inv.arg(a);
        }
        let lost = match tokio::time::timeout(self.timeout(), inv.invoke_async(&mut con)).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if !connection_lost(&e) => {
                return Err(Error::QueueUnavailable(format!("{op}: Redis refused: {e}")))
            }
            Ok(Err(e)) => format!("{op}: {e}"),
            Err(_) => format!(
                "{op}: no answer within commandTimeoutMs ({} ms)",
                self.cfg.command_timeout_ms
            ),
        };
        *self.con.lock().await = None;
        Err(Error::QueueUnavailable(lost))
    }
}

type Promise<'env, T> = napi::Result<PromiseRaw<'env, T>>;

#[napi]
impl NativeRedisQueue {
    /// Validates the fallback options and their `queue` object (one `ERR_INVALID_CONFIG`
    /// each); connects lazily, on the first call.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        options: Object,
        env: Option<Object>,
        default_consumer: String,
    ) -> napi::Result<Self> {
        let fallback = resolve(Some(&options), env.as_ref())?;
        let queue: Object = options.get_named_property("queue")?;
        let cfg = RedisQueueConfig::resolve(
            entries(&queue)?,
            &default_consumer,
            fallback.queue.persist_path.is_some(),
        )
        .map_err(to_js)?;
        let client = redis_client(&cfg.redis_url, "queue options")?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                cfg,
                fallback,
                scripts: Scripts {
                    enqueue: Script::new(&script(ENQUEUE_BODY)),
                    take: Script::new(&script(TAKE_BODY)),
                    complete: Script::new(&script(COMPLETE_BODY)),
                    fail: Script::new(&script(FAIL_BODY)),
                    touch: Script::new(&script(TOUCH_BODY)),
                    list: Script::new(&script(LIST_BODY)),
                    counts: Script::new(&script(COUNTS_BODY)),
                    clear_dead: Script::new(&script(CLEAR_DEAD_BODY)),
                },
                con: tokio::sync::Mutex::new(None),
                rng: Mutex::new(Jitter::new()),
            }),
        })
    }

    #[napi]
    pub fn options(&self) -> RedisQueueOptions {
        let c = &self.inner.cfg;
        RedisQueueOptions {
            rules: resolved(&self.inner.fallback),
            key_prefix: c.key_prefix.clone(),
            visibility_timeout_ms: c.visibility_timeout_ms,
            heartbeat_ms: c.heartbeat_ms(),
            consumer: c.consumer.clone(),
            poll_interval_ms: c.poll_interval_ms,
            command_timeout_ms: c.command_timeout_ms,
        }
    }

    /// Adds `{ operation, payload }` for `service`, or finds the item of its idempotency key
    /// (queued, running, or completed within the retention) anywhere in the fleet.
    #[napi(catch_unwind)]
    pub fn enqueue<'env>(
        &self,
        env: &'env Env,
        service: String,
        operation: String,
        payload: String,
        key: Option<String>,
    ) -> Promise<'env, RedisEnqueued> {
        let inner = self.inner.clone();
        let q = &inner.fallback.queue;
        if !q.enabled {
            return Err(to_js(Error::QueueDisabled));
        }
        let max = q.max_queue_size;
        let first = backoff_delay(q, 0, inner.unit());
        env.spawn_future(async move {
            let args = [
                service,
                operation,
                payload,
                key.unwrap_or_default(),
                max.to_string(),
                ms_arg(first),
            ];
            let v = inner
                .run("enqueue", &inner.scripts.enqueue, &args)
                .await
                .map_err(to_js)?;
            let r = array(&v);
            let id = r.first().map(text).unwrap_or_default();
            match status(r.get(1)) {
                2 => Err(to_js(Error::QueueFull { max })),
                1 => Ok(RedisEnqueued {
                    id,
                    existing: true,
                    due_at: None,
                }),
                _ => Ok(RedisEnqueued {
                    id,
                    existing: false,
                    due_at: r.get(2).map(number),
                }),
            }
        })
    }

    /// Takes up to `count` items of each service for attempts (reclaiming items whose holder
    /// went silent for the visibility timeout), after promoting due retries.
    #[napi(catch_unwind)]
    pub fn take<'env>(
        &self,
        env: &'env Env,
        requests: Vec<TakeRequest>,
    ) -> Promise<'env, TakeResult> {
        let inner = self.inner.clone();
        env.spawn_future(async move {
            let c = &inner.cfg;
            let mut args = vec![
                c.consumer.clone(),
                ms_arg(c.visibility_timeout_ms),
                ms_arg(inner.fallback.queue.ttl_ms),
            ];
            for r in requests {
                if r.count > 0 {
                    args.push(r.service);
                    args.push(r.count.min(MAX_TAKE).to_string());
                }
            }
            let v = inner
                .run("take", &inner.scripts.take, &args)
                .await
                .map_err(to_js)?;
            let r = array(&v);
            let now = r.first().map_or(0.0, number);
            let services = r.get(1).map(texts).unwrap_or_default();
            let mut items = Vec::new();
            for row in r.get(2).map(array).unwrap_or_default() {
                let Some(t) = parse_taken(&texts(row)) else {
                    continue;
                };
                items.push(TakenItem {
                    service: t.service,
                    kind: if t.expired { "expired" } else { "run" }.into(),
                    id: t.id,
                    entry: t.entry,
                    attempts: t.attempts,
                    operation: t.operation,
                    payload: t.payload,
                    idempotency_key: t.key,
                    enqueued_at: t.enqueued_at,
                    last_error: t.last_error,
                });
            }
            Ok(TakeResult {
                now,
                services,
                items,
                live: r.get(3).map_or(0.0, number) as u32,
                dead: r.get(4).map_or(0.0, number) as u32,
            })
        })
    }

    /// The attempt succeeded: the item leaves the queue (fleet-wide); its key is remembered
    /// for `idempotencyRetentionMs`. Resolves false when it was gone already.
    #[napi(catch_unwind)]
    pub fn complete<'env>(
        &self,
        env: &'env Env,
        service: String,
        id: String,
        entry: String,
    ) -> Promise<'env, bool> {
        let inner = self.inner.clone();
        env.spawn_future(async move {
            let retention = ms_arg(inner.fallback.queue.idempotency_retention_ms);
            let v = inner
                .run(
                    "complete",
                    &inner.scripts.complete,
                    &[service, id, entry, retention],
                )
                .await
                .map_err(to_js)?;
            Ok(number(&v) == 1.0)
        })
    }

    /// The `attempts`-th attempt failed at `now` (Redis' clock, estimated by the caller): the
    /// item is retried after a backoff with jitter, or dead-lettered with `error`.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn fail<'env>(
        &self,
        env: &'env Env,
        service: String,
        id: String,
        entry: String,
        attempts: u32,
        enqueued_at: f64,
        now: f64,
        error: String,
    ) -> Promise<'env, RedisFailOutcome> {
        let inner = self.inner.clone();
        let decision = after_failure(
            &inner.fallback.queue,
            attempts,
            enqueued_at,
            now,
            inner.unit(),
        );
        env.spawn_future(async move {
            let (mode, delay, reason) = match decision {
                AfterFailure::Retry { delay_ms } => ("retry", delay_ms, ""),
                AfterFailure::Dead { reason } => ("dead", 0.0, reason.as_str()),
            };
            let args = [
                service,
                id,
                entry,
                inner.cfg.consumer.clone(),
                error,
                mode.into(),
                ms_arg(delay),
                reason.into(),
            ];
            let v = inner
                .run("fail", &inner.scripts.fail, &args)
                .await
                .map_err(to_js)?;
            let r = array(&v);
            let at = r.get(1).map_or(0.0, number);
            Ok(match status(r.first()) {
                1 => RedisFailOutcome {
                    held: true,
                    dead: false,
                    reason: None,
                    next_attempt_at: at,
                    delay_ms: delay,
                },
                2 => RedisFailOutcome {
                    held: true,
                    dead: true,
                    reason: Some(reason.into()),
                    next_attempt_at: at,
                    delay_ms: 0.0,
                },
                _ => RedisFailOutcome {
                    held: false,
                    dead: false,
                    reason: None,
                    next_attempt_at: 0.0,
                    delay_ms: 0.0,
                },
            })
        })
    }

    /// Gives a taken item back without using its attempt, due again after `delayMs`; `reason`
    /// (if not empty) becomes its last error.
    #[napi(catch_unwind)]
    pub fn release<'env>(
        &self,
        env: &'env Env,
        service: String,
        id: String,
        entry: String,
        delay_ms: f64,
        reason: String,
    ) -> Promise<'env, bool> {
        let inner = self.inner.clone();
        env.spawn_future(async move {
            let args = [
                service,
                id,
                entry,
                inner.cfg.consumer.clone(),
                reason,
                "release".into(),
                ms_arg(delay_ms),
                String::new(),
            ];
            let v = inner
                .run("release", &inner.scripts.fail, &args)
                .await
                .map_err(to_js)?;
            Ok(array(&v).first().map(number) == Some(1.0))
        })
    }

    /// The visibility heartbeat: `held` lists (service, entry) pairs flat. Resolves with how
    /// many this instance still holds.
    #[napi(catch_unwind)]
    pub fn touch<'env>(&self, env: &'env Env, held: Vec<String>) -> Promise<'env, u32> {
        let inner = self.inner.clone();
        env.spawn_future(async move {
            let mut args = vec![inner.cfg.consumer.clone()];
            args.extend(held);
            let v = inner
                .run("touch", &inner.scripts.touch, &args)
                .await
                .map_err(to_js)?;
            Ok(number(&v) as u32)
        })
    }

    /// Queued and running items (`live`) or dead letters (`dead`), fleet-wide.
    #[napi(catch_unwind)]
    pub fn list<'env>(&self, env: &'env Env, which: String) -> Promise<'env, Vec<QueueItem>> {
        let inner = self.inner.clone();
        env.spawn_future(async move {
            let v = inner
                .run("list", &inner.scripts.list, &[which, MAX_LIST.to_string()])
                .await
                .map_err(to_js)?;
            Ok(array(&v)
                .iter()
                .map(|row| {
                    let r = array(row);
                    let id = r.first().map(text).unwrap_or_default();
                    let due = r.get(1).map(text).unwrap_or_default();
                    let pairs = r.get(2).map(texts).unwrap_or_default();
                    item_js(parse_listed(&id, &pairs, &due))
                })
                .collect())
        })
    }

    #[napi(catch_unwind)]
    pub fn counts<'env>(&self, env: &'env Env) -> Promise<'env, RedisCounts> {
        let inner = self.inner.clone();
        env.spawn_future(async move {
            let v = inner
                .run("counts", &inner.scripts.counts, &[])
                .await
                .map_err(to_js)?;
            let r = array(&v);
            Ok(RedisCounts {
                live: r.first().map_or(0.0, number) as u32,
                dead: r.get(1).map_or(0.0, number) as u32,
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn clear_dead_letters<'env>(&self, env: &'env Env) -> Promise<'env, u32> {
        let inner = self.inner.clone();
        env.spawn_future(async move {
            let v = inner
                .run("clearDeadLetters", &inner.scripts.clear_dead, &[])
                .await
                .map_err(to_js)?;
            Ok(number(&v) as u32)
        })
    }

    /// Closes the connection; a later call would open a new one.
    #[napi(catch_unwind)]
    pub fn close<'env>(&self, env: &'env Env) -> Promise<'env, bool> {
        let inner = self.inner.clone();
        env.spawn_future(async move { Ok(inner.con.lock().await.take().is_some()) })
    }
}
