//! Sharing breaker state across gateway instances through Redis: the process-wide link to the
//! session task, the hooks the breaker binding calls (after a state change, after a named
//! breaker is created, and the trial-lease gate of `breakerAcquire`), and the JS entry points
//! `sharedConnect`, `sharedDisconnect` and `sharedApply`.
//!
//! Local transitions are noticed here, in Rust, whatever JS thread caused them (worker threads
//! share the native breakers), so nothing depends on a JS listener. Adoptions go the other way
//! through JS (`sharedApply`), because only the JS side knows the breaker's clock (`now`).

mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{Object, PromiseRaw};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Status};
use napi_derive::napi;
use parking_lot::Mutex;
use redis::io::tcp::socket2::TcpKeepalive;
use redis::io::tcp::TcpSettings;
use redis::IntoConnectionInfo;
use tokio::sync::{mpsc, oneshot, watch};

use crate::core::breaker::{Admission, Adopt, Breaker};
use crate::core::error::Error;
use crate::core::shared::config::url_issue;
use crate::core::shared::plan::{self, RemoteForced};
use crate::core::shared::{Gate, Lease, Publish, Remote, RemoteOpen, SharedConfig};

use super::breaker::publish_if_changed;
use super::error::to_js;
use super::options::entries;
use super::table::TABLE;

/// Sharing is on (connected or reconnecting): local transitions are sent to the session.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// A Redis session is up: the trial lease gates half-open. While Redis is unreachable every
/// breaker runs locally, trials included.
static LIVE: AtomicBool = AtomicBool::new(false);
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The running session, if any.
struct Link {
    tx: mpsc::UnboundedSender<Local>,
    stop: watch::Sender<bool>,
    done: Option<oneshot::Receiver<()>>,
    generation: u64,
    quorum: u32,
}

static LINK: Mutex<Option<Link>> = Mutex::new(None);

/// This instance's view of each shared breaker's trial lease, by breaker id.
static LEASES: LazyLock<Mutex<HashMap<u64, Lease>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// What the hooks send to the session task.
#[derive(Debug)]
pub(crate) enum Local {
    Publish { id: f64, what: Publish, at: Instant },
    Lease { id: f64, seq: u64, lease_ms: f64 },
    Release { id: f64 },
    Resync { id: f64 },
}

fn send(ev: Local) {
    if let Some(link) = LINK.lock().as_ref() {
        let _ = link.tx.send(ev);
    }
}

// ---- hooks, called by the breaker binding under the breaker's lock ----

/// After a breaker's state changed: end its claim on the trial lease unless it just went
/// half-open, and publish what the fleet must learn.
pub(super) fn after_change(id: f64, b: &Breaker) {
    if !ACTIVE.load(Ordering::Acquire) {
        return;
    }
    let Some(t) = b.last_transition() else { return };
    if t.word != b.word() {
        return;
    }
    let held = plan::ends_lease(&t)
        && LEASES
            .lock()
            .remove(&id.to_bits())
            .is_some_and(|l| l.is_held());
    match plan::publication(&t, b.open_until(), b.config().rolling_window_ms) {
        // Every publishing script also gives back a lease this instance holds.
        Some(what) => send(Local::Publish {
            id,
            what,
            at: Instant::now(),
        }),
        None if held => send(Local::Release { id }),
        None => {}
    }
}

/// A named breaker was created while sharing is on: read its state from Redis.
pub(super) fn after_create(id: f64) {
    if ACTIVE.load(Ordering::Acquire) {
        send(Local::Resync { id });
    }
}

/// The trial-lease gate of a named breaker: `Some(rejection)` when its open time is up but this
/// instance does not hold the fleet's lease (a request is then sent, at most one in flight).
/// `None` lets `acquire` proceed, which moves the breaker to half-open.
pub(super) fn gate(id: f64, b: &mut Breaker, now: f64) -> Option<Admission> {
    if !LIVE.load(Ordering::Acquire) {
        return None;
    }
    let until = b.open_until()?;
    if now < until {
        return None;
    }
    let decision = LEASES.lock().entry(id.to_bits()).or_default().gate(now);
    match decision {
        Gate::Pass => None,
        Gate::Reject {
            retry_after_ms,
            request,
        } => {
            if let Some(seq) = request {
                send(Local::Lease {
                    id,
                    seq,
                    lease_ms: b.config().trial_reclaim_ms(),
                });
            }
            b.note_rejected(now);
            Some(Admission::Reject {
                retry_after_ms: Some(retry_after_ms),
            })
        }
    }
}

/// Whether a named open breaker may move to half-open before its time (`probeEarly`, a passing
/// health check): only while this instance holds the trial lease. Otherwise the lease is asked
/// for (at most one request in flight) and the probe is skipped; the health monitor's next
/// passing check probes once the lease is here.
pub(super) fn may_probe(id: f64, b: &Breaker, now: f64) -> bool {
    if !LIVE.load(Ordering::Acquire) || b.open_until().is_none() {
        return true;
    }
    let decision = LEASES.lock().entry(id.to_bits()).or_default().gate(now);
    match decision {
        Gate::Pass => true,
        Gate::Reject { request, .. } => {
            if let Some(seq) = request {
                send(Local::Lease {
                    id,
                    seq,
                    lease_ms: b.config().trial_reclaim_ms(),
                });
            }
            false
        }
    }
}

// ---- for the session task ----

pub(crate) fn set_live(live: bool) {
    LIVE.store(live, Ordering::Release);
    if !live {
        LEASES.lock().clear();
    }
}

/// The answer to lease request `seq`: granted (true) or held elsewhere for `pttl_ms`. Returns
/// false when a grant is stale and must be released in Redis.
pub(crate) fn lease_answer(id: f64, seq: u64, granted: bool, pttl_ms: f64, lease_ms: f64) -> bool {
    let mut leases = LEASES.lock();
    let Some(l) = leases.get_mut(&id.to_bits()) else {
        return !granted;
    };
    if granted {
        l.granted(seq, lease_ms)
    } else {
        l.refused(seq, pttl_ms);
        true
    }
}

pub(crate) fn lease_failed(id: f64, seq: u64) {
    if let Some(l) = LEASES.lock().get_mut(&id.to_bits()) {
        l.failed(seq);
    }
}

/// The ids of the leases this instance holds (to give back on disconnect).
pub(crate) fn held_leases() -> Vec<f64> {
    LEASES
        .lock()
        .iter()
        .filter(|(_, l)| l.is_held())
        .map(|(id, _)| f64::from_bits(*id))
        .collect()
}

// ---- JS entry points ----

/// An event for the JS layer (on the thread that connected), or the description of one adoption
/// it hands back to `sharedApply` with the breaker's clock time.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct SharedEvent {
    /// `adopt`, `resync`, `connected` or `error`.
    pub kind: String,
    pub name: Option<String>,
    /// For `adopt`: `open`, `close`, `reset`, `forced_open` or `disabled`.
    pub op: Option<String>,
    /// For `adopt` open: the fleet's remaining open time; for `resync`: the open key's PTTL.
    pub ms: Option<f64>,
    /// For `resync`: the forced key's value, if any.
    pub forced: Option<String>,
    /// For `resync` and `adopt` open: the votes behind the fleet's open.
    pub votes: Option<u32>,
    /// The instance that caused an adoption; this instance for `connected`.
    pub instance: Option<String>,
    /// For `error`: what failed (`connect`, `connection`, `vote`, `lease`, ...).
    pub operation: Option<String>,
    pub message: Option<String>,
    /// For `connected`: true when this is a reconnection.
    pub reconnect: Option<bool>,
}

impl SharedEvent {
    pub(crate) fn error(operation: &str, message: impl Into<String>) -> Self {
        Self {
            kind: "error".into(),
            operation: Some(operation.into()),
            message: Some(message.into()),
            ..Self::default()
        }
    }
}

/// Events reach JS through a weak threadsafe function: it never keeps the process alive, so a
/// connected gateway still exits when its work is done.
pub(crate) type ToJs = ThreadsafeFunction<SharedEvent, (), SharedEvent, Status, false, true>;

/// How the first connection attempt went, and (when it worked) the resync of every shared
/// breaker, which `connectShared` applies before it resolves.
#[napi(object)]
pub struct ConnectOutcome {
    pub connected: bool,
    pub instance_id: String,
    pub events: Vec<SharedEvent>,
}

/// A Redis client for `url`, with TCP keepalive: it notices a Redis host that vanished without
/// closing the connection (a pub/sub connection is otherwise silent) in about 25 s, without
/// sending a single command. Shared by the breaker session and the Redis queue backend; a bad
/// URL is an `ERR_INVALID_CONFIG` of `context` that does not echo the password.
pub(crate) fn redis_client(url: &str, context: &str) -> napi::Result<redis::Client> {
    let bad = |e: redis::RedisError| {
        to_js(Error::invalid_config(
            context,
            vec![url_issue(url, format!("a valid Redis URL ({e})"))],
        ))
    };
    let info = url.into_connection_info().map_err(bad)?;
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(5))
        .with_retries(3);
    let info = info.set_tcp_settings(
        TcpSettings::default()
            .set_nodelay(true)
            .set_keepalive(keepalive),
    );
    redis::Client::open(info).map_err(bad)
}

/// Whether a Redis error means the connection is gone (or Redis did not answer in time), as
/// opposed to a command Redis refused: the first calls for a reconnect, the second would not
/// be helped by one.
pub(crate) fn connection_lost(e: &redis::RedisError) -> bool {
    e.is_timeout()
        || e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// Starts sharing: validates `options` (one `ERR_INVALID_CONFIG` naming every field), starts
/// the session task, and resolves after the first connection attempt. A failed attempt does not
/// reject: the task keeps reconnecting with backoff and every breaker runs locally meanwhile.
#[napi(js_name = "sharedConnect", catch_unwind)]
pub fn shared_connect<'env>(
    env: &'env Env,
    options: Object,
    default_instance_id: String,
    on_event: ThreadsafeFunction<SharedEvent, (), SharedEvent, Status, false, true>,
) -> napi::Result<PromiseRaw<'env, ConnectOutcome>> {
    let cfg = SharedConfig::resolve(entries(&options)?, &default_instance_id).map_err(to_js)?;
    let client = redis_client(&cfg.redis_url, "shared state options")?;
    let mut link = LINK.lock();
    if link.is_some() {
        return Err(to_js(Error::SharedState(
            "this process is already connected; call disconnectShared() first".into(),
        )));
    }
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let (first_tx, first_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let instance_id = cfg.instance_id.clone();
    *link = Some(Link {
        tx,
        stop,
        done: Some(done_rx),
        generation,
        quorum: cfg.quorum,
    });
    ACTIVE.store(true, Ordering::Release);
    drop(link);
    // The thread that connected receives the events: if its environment goes (a worker that
    // exits), sharing stops with it.
    env.add_env_cleanup_hook(generation, stop_generation)?;
    napi::bindgen_prelude::spawn(async move {
        session::run(session::Start {
            client,
            cfg,
            rx,
            stop: stop_rx,
            js: on_event,
            first: first_tx,
        })
        .await;
        let _ = done_tx.send(());
    });
    env.spawn_future(async move {
        let (connected, events) = first_rx.await.unwrap_or((false, Vec::new()));
        Ok(ConnectOutcome {
            connected,
            instance_id,
            events,
        })
    })
}

/// Stops the session of `generation` if it is still the current one; returns its end signal.
fn stop_generation(generation: u64) {
    let _ = take_link(Some(generation));
}

fn take_link(generation: Option<u64>) -> Option<oneshot::Receiver<()>> {
    let mut link = LINK.lock();
    if generation.is_some_and(|g| link.as_ref().is_none_or(|l| l.generation != g)) {
        return None;
    }
    let mut l = link.take()?;
    ACTIVE.store(false, Ordering::Release);
    let _ = l.stop.send(true);
    l.done.take()
}

/// Stops sharing; resolves once the session has ended (held leases given back, connections
/// closed). Breakers keep their current state and go on locally.
#[napi(js_name = "sharedDisconnect", catch_unwind)]
pub fn shared_disconnect(env: &Env) -> napi::Result<PromiseRaw<'_, bool>> {
    let done = take_link(None);
    env.spawn_future(async move {
        Ok(match done {
            Some(rx) => rx.await.is_ok(),
            None => false,
        })
    })
}

/// Whether sharing is on, and whether a Redis session is up now.
#[napi(object)]
pub struct SharedStatus {
    pub active: bool,
    pub live: bool,
}

#[napi(js_name = "sharedStatus")]
pub fn shared_status() -> SharedStatus {
    SharedStatus {
        active: ACTIVE.load(Ordering::Acquire),
        live: LIVE.load(Ordering::Acquire),
    }
}

fn adoption(op: &str, ms: Option<f64>) -> Option<Adopt> {
    Some(match op {
        "open" => Adopt::Open(ms?),
        "close" => Adopt::Close,
        "reset" => Adopt::Reset,
        "forced_open" => Adopt::ForcedOpen,
        "disabled" => Adopt::Disabled,
        _ => return None,
    })
}

/// Applies an `adopt` or `resync` event to the named breaker at `now` (its clock). Returns the
/// breaker's state word afterwards, or 0 when no breaker has that name (any more).
#[napi(js_name = "sharedApply", catch_unwind)]
pub fn shared_apply(event: SharedEvent, now: f64) -> u32 {
    let Some(name) = event.name.as_deref() else {
        return 0;
    };
    let Some((id, cell)) = TABLE.lock().find_named(name) else {
        return 0;
    };
    let quorum = LINK.lock().as_ref().map_or(1, |l| l.quorum);
    let mut b = cell.lock();
    let before = b.word();
    match event.kind.as_str() {
        "adopt" => {
            if let Some(a) = event.op.as_deref().and_then(|op| adoption(op, event.ms)) {
                b.adopt(a, now);
                // Each adoption is published to the pages at once, so that a second one in the
                // same call (resync: reset, then open) is not merged into one change.
                publish_if_changed(id, &b, before);
            }
        }
        "resync" => {
            let remote = Remote {
                forced: RemoteForced::parse(event.forced.as_deref()),
                open: event.ms.map(|remaining_ms| RemoteOpen {
                    remaining_ms,
                    votes: event.votes.unwrap_or(0),
                }),
            };
            let plan = plan::resync(b.kind(), &remote, quorum);
            for a in plan.adopt {
                let step = b.word();
                b.adopt(a, now);
                publish_if_changed(id, &b, step);
            }
            if let Some(f) = plan.republish {
                send(Local::Publish {
                    id,
                    what: Publish::Forced {
                        state: f,
                        only_if_missing: true,
                    },
                    at: Instant::now(),
                });
            }
        }
        _ => {}
    }
    b.word()
}
