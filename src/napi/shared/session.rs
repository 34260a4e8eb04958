//! The Redis session: one task on napi's tokio runtime that owns a multiplexed command
//! connection and a pub/sub connection, and runs until `disconnectShared`. It publishes local
//! transitions (one Lua script each), answers lease requests, adopts the fleet's messages
//! (through JS, which supplies the breaker's clock) and resynchronises every shared breaker on
//! each (re)connect. Any failure (error or timeout) becomes a `sharedStateError` event and ends
//! the session; the task reconnects with backoff, first replaying what was published locally
//! meanwhile, then reading every breaker's keys again. Every command has its own timeout.
//!
//! Supervising the two connections ourselves (rather than redis' ConnectionManager, which
//! reconnects silently) is what tells us when a reconnect happened and so when to resync; it
//! also ties the pub/sub connection to the same life cycle.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{AsyncConnectionConfig, Client, RedisResult, Script, Value};
use tokio::sync::{mpsc, oneshot, watch};

use super::{held_leases, lease_answer, lease_failed, set_live, Local, SharedEvent, ToJs};
use crate::core::shared::keys::channel;
use crate::core::shared::message::open_value_votes;
use crate::core::shared::plan::{quorum_reached, reconnect_delay_ms};
use crate::core::shared::{scripts, Keys, Message, MessageKind, Publish, SharedConfig};
use crate::napi::table::TABLE;

pub(super) struct Start {
    pub client: Client,
    pub cfg: SharedConfig,
    pub rx: mpsc::UnboundedReceiver<Local>,
    pub stop: watch::Receiver<bool>,
    pub js: ToJs,
    /// The outcome of the first attempt, for `connectShared` to resolve with.
    pub first: oneshot::Sender<(bool, Vec<SharedEvent>)>,
}

struct Scripts {
    vote: Script,
    close: Script,
    forced: Script,
    reset: Script,
    lease: Script,
    release: Script,
}

/// Why a session ended.
enum End {
    Stopped,
    Lost(String),
}

/// A publication not yet in Redis, kept while disconnected (the latest per breaker).
struct Pending {
    id: f64,
    what: Publish,
    at: Instant,
}

struct Task {
    client: Client,
    cfg: SharedConfig,
    channel: String,
    scripts: Scripts,
    js: ToJs,
    timeout: Duration,
    connect_timeout: Duration,
    pending: HashMap<u64, Pending>,
    rng: u64,
}

pub(super) async fn run(start: Start) {
    let Start {
        client,
        cfg,
        mut rx,
        mut stop,
        js,
        first,
    } = start;
    let mut task = Task {
        client,
        channel: channel(&cfg.key_prefix),
        timeout: Duration::from_secs_f64(cfg.command_timeout_ms / 1000.0),
        connect_timeout: Duration::from_secs_f64(cfg.connect_timeout_ms() / 1000.0),
        cfg,
        scripts: Scripts {
            vote: Script::new(scripts::VOTE),
            close: Script::new(scripts::CLOSE),
            forced: Script::new(scripts::FORCED),
            reset: Script::new(scripts::RESET),
            lease: Script::new(scripts::LEASE),
            release: Script::new(scripts::RELEASE),
        },
        js,
        pending: HashMap::new(),
        rng: seed(),
    };
    let mut first = Some(first);
    let mut attempt: u32 = 0;
    let mut reconnect = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let connected = tokio::select! {
            biased;
            _ = stop.changed() => return,
            r = tokio::time::timeout(task.connect_timeout, task.connect()) => match r {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no connection within {} ms", task.connect_timeout.as_millis())),
            },
        };
        match connected {
            Ok((mut con, mut messages)) => {
                attempt = 0;
                set_live(true);
                let end = match task.start_session(&mut con).await {
                    Ok(events) => {
                        match first.take() {
                            Some(tx) => {
                                let _ = tx.send((true, events));
                            }
                            None => {
                                for ev in events {
                                    task.emit(ev);
                                }
                                task.emit(SharedEvent {
                                    kind: "connected".into(),
                                    instance: Some(task.cfg.instance_id.clone()),
                                    reconnect: Some(reconnect),
                                    ..SharedEvent::default()
                                });
                            }
                        }
                        task.session(&mut con, &mut messages, &mut rx, &mut stop)
                            .await
                    }
                    Err(e) => End::Lost(e),
                };
                set_live(false);
                match end {
                    End::Stopped => {
                        task.give_back_leases(&mut con).await;
                        return;
                    }
                    End::Lost(e) => {
                        let ev = SharedEvent::error("connection", e);
                        match first.take() {
                            Some(tx) => {
                                let _ = tx.send((false, vec![ev]));
                            }
                            None => task.emit(ev),
                        }
                    }
                }
            }
            Err(e) => {
                let ev = SharedEvent::error(
                    "connect",
                    format!("cannot connect to Redis: {e}; retrying with backoff"),
                );
                match first.take() {
                    Some(tx) => {
                        let _ = tx.send((false, vec![ev]));
                    }
                    None => task.emit(ev),
                }
            }
        }
        reconnect = true;
        // Back off; what happens locally meanwhile is kept for the replay.
        let delay = reconnect_delay_ms(attempt, task.unit());
        attempt = attempt.saturating_add(1);
        let sleep = tokio::time::sleep(Duration::from_secs_f64(delay / 1000.0));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                _ = &mut sleep => break,
                ev = rx.recv() => match ev {
                    Some(ev) => task.keep(ev),
                    None => return,
                },
            }
        }
    }
}

/// A seed for the reconnect jitter: different per process and per session.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)) | 1
}

impl Task {
    fn unit(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn emit(&self, ev: SharedEvent) {
        // Non-blocking: an event for an environment that is going away is dropped.
        let _ = self.js.call(ev, ThreadsafeFunctionCallMode::NonBlocking);
    }

    async fn connect(&self) -> RedisResult<(MultiplexedConnection, PubSubStream)> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.timeout));
        let con = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(&self.channel).await?;
        Ok((con, pubsub.into_on_message()))
    }

    /// Runs one command (or script) with the command timeout.
    async fn timed<T>(
        &self,
        what: &str,
        fut: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("{what}: {e}")),
            Err(_) => Err(format!(
                "{what}: no answer within commandTimeoutMs ({} ms)",
                self.timeout.as_millis()
            )),
        }
    }

    /// After a (re)connect: replay the publications made while disconnected, then read every
    /// shared breaker's keys. Returns the resync events.
    async fn start_session(
        &mut self,
        con: &mut MultiplexedConnection,
    ) -> Result<Vec<SharedEvent>, String> {
        let pending: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        let mut failed = None;
        for p in pending {
            if failed.is_some() {
                self.keep_pending(p);
                continue;
            }
            let what = match p.what {
                // An open replays with what is left of it.
                Publish::Vote {
                    open_ms,
                    window_ms,
                    cause,
                } => {
                    let left = open_ms - p.at.elapsed().as_secs_f64() * 1000.0;
                    if left <= 0.0 {
                        continue;
                    }
                    Publish::Vote {
                        open_ms: left,
                        window_ms,
                        cause,
                    }
                }
                other => other,
            };
            if let Err(e) = self.publish(con, p.id, what).await {
                failed = Some(e);
                self.keep_pending(p);
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let named = TABLE.lock().named();
        let mut events = Vec::with_capacity(named.len());
        for chunk in named.chunks(100) {
            events.extend(self.read(con, chunk).await?);
        }
        Ok(events)
    }

    fn keep_pending(&mut self, p: Pending) {
        self.pending.entry(p.id.to_bits()).or_insert(p);
    }

    /// While disconnected: keep publications (the latest per breaker) for the replay. Lease
    /// traffic is dropped (the lease gate is off without Redis), and resyncs happen anyway.
    fn keep(&mut self, ev: Local) {
        if let Local::Publish { id, what, at } = ev {
            self.pending.insert(id.to_bits(), Pending { id, what, at });
        }
    }

    async fn session(
        &mut self,
        con: &mut MultiplexedConnection,
        messages: &mut PubSubStream,
        rx: &mut mpsc::UnboundedReceiver<Local>,
        stop: &mut watch::Receiver<bool>,
    ) -> End {
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => return End::Stopped,
                msg = messages.next() => match msg {
                    Some(msg) => self.on_message(&msg),
                    None => return End::Lost("the connection to Redis closed".into()),
                },
                ev = rx.recv() => match ev {
                    Some(ev) => if let Err(e) = self.on_local(con, ev).await {
                        return End::Lost(e);
                    },
                    None => return End::Stopped,
                },
            }
        }
    }

    fn on_message(&self, msg: &redis::Msg) {
        let Ok(text) = msg.get_payload::<String>() else {
            self.emit(SharedEvent::error("message", "a message that is not text"));
            return;
        };
        let Some(m) = Message::decode(&text) else {
            let shown: String = text.chars().take(200).collect();
            self.emit(SharedEvent::error(
                "message",
                format!("ignored a malformed message on {}: {shown}", self.channel),
            ));
            return;
        };
        if m.instance == self.cfg.instance_id {
            return; // our own publication
        }
        let (op, ms, votes) = match m.kind {
            MessageKind::Open {
                remaining_ms,
                votes,
                ..
            } => {
                if !quorum_reached(votes, self.cfg.quorum) {
                    return;
                }
                ("open", Some(remaining_ms), Some(votes))
            }
            MessageKind::Close => ("close", None, None),
            MessageKind::Reset => ("reset", None, None),
            MessageKind::Forced(f) => (f.as_str(), None, None),
        };
        self.emit(SharedEvent {
            kind: "adopt".into(),
            name: Some(m.name),
            op: Some(op.into()),
            ms,
            votes,
            instance: Some(m.instance),
            ..SharedEvent::default()
        });
    }

    async fn on_local(&mut self, con: &mut MultiplexedConnection, ev: Local) -> Result<(), String> {
        match ev {
            Local::Publish { id, what, at } => {
                if let Err(e) = self.publish(con, id, what).await {
                    self.pending.insert(id.to_bits(), Pending { id, what, at });
                    return Err(e);
                }
            }
            Local::Lease { id, seq, lease_ms } => {
                let Some(name) = name_of(id) else {
                    return Ok(());
                };
                let keys = Keys::new(&self.cfg.key_prefix, &name);
                let answer: Result<i64, String> = self
                    .timed(
                        "lease",
                        self.scripts
                            .lease
                            .key(&keys.lease)
                            .arg(&self.cfg.instance_id)
                            .arg(lease_ms)
                            .invoke_async(con),
                    )
                    .await;
                match answer {
                    Ok(n) => {
                        let granted = n < 0;
                        if !lease_answer(id, seq, granted, n as f64, lease_ms) {
                            // Won, but no longer wanted: give it back at once.
                            self.release(con, &keys).await?;
                        }
                    }
                    Err(e) => {
                        lease_failed(id, seq);
                        return Err(e);
                    }
                }
            }
            Local::Release { id } => {
                if let Some(name) = name_of(id) {
                    let keys = Keys::new(&self.cfg.key_prefix, &name);
                    self.release(con, &keys).await?;
                }
            }
            Local::Resync { id } => {
                if let Some(name) = name_of(id) {
                    for ev in self.read(con, &[(id, name)]).await? {
                        self.emit(ev);
                    }
                }
            }
        }
        Ok(())
    }

    async fn release(&self, con: &mut MultiplexedConnection, keys: &Keys) -> Result<(), String> {
        self.timed(
            "release",
            self.scripts
                .release
                .key(&keys.lease)
                .arg(&self.cfg.instance_id)
                .invoke_async::<i64>(con),
        )
        .await
        .map(|_| ())
    }

    /// Disconnecting: give back the leases this instance holds (best effort; they expire anyway).
    async fn give_back_leases(&self, con: &mut MultiplexedConnection) {
        for id in held_leases() {
            if let Some(name) = name_of(id) {
                let keys = Keys::new(&self.cfg.key_prefix, &name);
                let _ = self.release(con, &keys).await;
            }
        }
        set_live(false);
    }

    /// Publishes one local transition of breaker `id` (skipped unless it is named, i.e. in the
    /// global registry).
    async fn publish(
        &self,
        con: &mut MultiplexedConnection,
        id: f64,
        what: Publish,
    ) -> Result<(), String> {
        let Some(name) = name_of(id) else {
            return Ok(());
        };
        let keys = Keys::new(&self.cfg.key_prefix, &name);
        let me = &self.cfg.instance_id;
        let message = |kind| {
            Message {
                name: name.clone(),
                instance: me.clone(),
                kind,
            }
            .encode()
        };
        match what {
            Publish::Vote {
                open_ms,
                window_ms,
                cause,
            } => self
                .timed(
                    "vote",
                    self.scripts
                        .vote
                        .key(&keys.open)
                        .key(&keys.failing)
                        .key(&keys.forced)
                        .key(&keys.lease)
                        .arg(me)
                        .arg(self.cfg.quorum)
                        .arg(window_ms)
                        .arg(open_ms)
                        .arg(&self.channel)
                        .arg(&name)
                        .arg(cause.as_str())
                        .invoke_async::<Vec<i64>>(con),
                )
                .await
                .map(|_| ()),
            Publish::Close => self
                .timed(
                    "close",
                    self.scripts
                        .close
                        .key(&keys.open)
                        .key(&keys.failing)
                        .key(&keys.lease)
                        .arg(me)
                        .arg(&self.channel)
                        .arg(message(MessageKind::Close))
                        .invoke_async::<i64>(con),
                )
                .await
                .map(|_| ()),
            Publish::Forced {
                state: f,
                only_if_missing,
            } => self
                .timed(
                    "forced",
                    self.scripts
                        .forced
                        .key(&keys.forced)
                        .key(&keys.lease)
                        .arg(f.as_str())
                        .arg(me)
                        .arg(&self.channel)
                        .arg(message(MessageKind::Forced(f)))
                        .arg(u8::from(only_if_missing))
                        .invoke_async::<i64>(con),
                )
                .await
                .map(|_| ()),
            Publish::Reset => self
                .timed(
                    "reset",
                    self.scripts
                        .reset
                        .key(&keys.forced)
                        .key(&keys.open)
                        .key(&keys.failing)
                        .key(&keys.lease)
                        .arg(&self.channel)
                        .arg(message(MessageKind::Reset))
                        .invoke_async::<i64>(con),
                )
                .await
                .map(|_| ()),
        }
    }

    /// Reads the forced and open keys of some breakers in one pipeline: resync events.
    async fn read(
        &self,
        con: &mut MultiplexedConnection,
        breakers: &[(f64, String)],
    ) -> Result<Vec<SharedEvent>, String> {
        let mut pipe = redis::pipe();
        for (_, name) in breakers {
            let keys = Keys::new(&self.cfg.key_prefix, name);
            pipe.get(&keys.forced).get(&keys.open).pttl(&keys.open);
        }
        let values: Vec<Value> = self.timed("resync", pipe.query_async(con)).await?;
        let mut out = Vec::with_capacity(breakers.len());
        for ((_, name), v) in breakers.iter().zip(values.chunks_exact(3)) {
            let forced: Option<String> = redis::from_redis_value_ref(&v[0]).ok().flatten();
            let open: Option<String> = redis::from_redis_value_ref(&v[1]).ok().flatten();
            let pttl: i64 = redis::from_redis_value_ref(&v[2]).unwrap_or(-2);
            let (ms, votes) = match open {
                Some(text) if pttl > 0 => (Some(pttl as f64), Some(open_value_votes(&text))),
                _ => (None, None),
            };
            out.push(SharedEvent {
                kind: "resync".into(),
                name: Some(name.clone()),
                forced,
                ms,
                votes,
                ..SharedEvent::default()
            });
        }
        Ok(out)
    }
}

fn name_of(id: f64) -> Option<String> {
    TABLE.lock().name_of(id)
}
