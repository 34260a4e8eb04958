//! The Redis session: one task on napi's tokio runtime that owns a multiplexed command
//! connection and a pub/sub connection, and runs until `disconnectShared`. It publishes local
//! transitions (one Lua script each), answers lease requests, adopts the fleet's messages
//! (through JS, which supplies the breaker's clock) and resynchronises every shared breaker on
//! each (re)connect. A lost connection or a command without an answer in time becomes a
//! `sharedStateError` event and ends the session; the task reconnects with backoff, first
//! replaying what was published locally meanwhile, then reading every breaker's keys again.
//! Every command has its own timeout.
//!
//! Supervising the two connections ourselves (rather than redis' ConnectionManager, which
//! reconnects silently) is what tells us when a reconnect happened and so when to resync; it
//! also ties the pub/sub connection to the same life cycle.

use crate::core::rng::Jitter;
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{AsyncConnectionConfig, Client, RedisResult, Script, Value};
use tokio::sync::{mpsc, oneshot, watch};

use super::{
    connection_lost, held_leases, lease_answer, lease_failed, set_live, Local, SharedEvent, ToJs,
};
use crate::core::shared::keys::channel;
use crate::core::shared::message::open_value_votes;
use crate::core::shared::plan::{quorum_reached, reconnect_delay_ms};
use crate::core::shared::{scripts, Keys, Message, MessageKind, Publish, SharedConfig};
use crate::napi::table::TABLE;

/// A session shorter than this does not reset the reconnect backoff, so a Redis that accepts
/// connections and then drops them is not retried in a tight loop.
const STABLE_SESSION: Duration = Duration::from_secs(5);
/// Breakers read per pipeline on a resync.
const RESYNC_CHUNK: usize = 100;

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

/// How an operation failed. `Lost`: the connection is gone or Redis did not answer in time, so
/// the session ends and reconnects. `Refused`: Redis answered with an error (a script refused,
/// an ACL): reconnecting would not help, so the operation is reported and dropped.
enum Fail {
    Lost(String),
    Refused {
        operation: &'static str,
        message: String,
    },
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
    rng: Jitter,
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
        rng: Jitter::new(),
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
        let failure = match connected {
            Ok((mut con, mut messages)) => {
                let started = Instant::now();
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
                if started.elapsed() >= STABLE_SESSION {
                    attempt = 0;
                }
                match end {
                    End::Stopped => {
                        task.give_back_leases(&mut con).await;
                        set_live(false);
                        return;
                    }
                    End::Lost(e) => {
                        set_live(false);
                        SharedEvent::error("connection", format!("{e}; reconnecting"))
                    }
                }
            }
            Err(e) => SharedEvent::error(
                "connect",
                format!("cannot connect to Redis: {e}; retrying with backoff"),
            ),
        };
        match first.take() {
            Some(tx) => {
                let _ = tx.send((false, vec![failure]));
            }
            None => task.emit(failure),
        }
        reconnect = true;
        // Back off; what happens locally meanwhile is kept for the replay.
        let delay = reconnect_delay_ms(attempt, task.rng.unit());
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
fn name_of(id: f64) -> Option<String> {
    TABLE.lock().name_of(id)
}

impl Task {
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
        operation: &'static str,
        fut: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, Fail> {
        let no_answer = || {
            Fail::Lost(format!(
                "{operation}: no answer within commandTimeoutMs ({} ms)",
                self.timeout.as_millis()
            ))
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            // The connection's own response timeout (the same length) may fire first.
            Ok(Err(e)) if e.is_timeout() => Err(no_answer()),
            Ok(Err(e)) => {
                let message = format!("{operation}: {e}");
                if connection_lost(&e) {
                    Err(Fail::Lost(message))
                } else {
                    Err(Fail::Refused { operation, message })
                }
            }
            Err(_) => Err(no_answer()),
        }
    }

    /// A refused operation is reported and the session goes on; a lost one ends the session.
    fn settle(&self, r: Result<(), Fail>) -> Result<(), String> {
        match r {
            Ok(()) => Ok(()),
            Err(Fail::Refused { operation, message }) => {
                self.emit(SharedEvent::error(operation, message));
                Ok(())
            }
            Err(Fail::Lost(m)) => Err(m),
        }
    }

    /// After a (re)connect: replay the publications made while disconnected, then read every
    /// shared breaker's keys. Returns the resync events.
    async fn start_session(
        &mut self,
        con: &mut MultiplexedConnection,
    ) -> Result<Vec<SharedEvent>, String> {
        let mut pending: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        while let Some(p) = pending.pop() {
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
            let r = self.publish(con, p.id, what).await;
            if let Err(e) = self.settle(r) {
                // Lost again: keep what is not replayed yet for the next session.
                for q in pending.into_iter().chain([p]) {
                    self.pending.entry(q.id.to_bits()).or_insert(q);
                }
                return Err(e);
            }
        }
        let named = TABLE.lock().named();
        let mut events = Vec::with_capacity(named.len());
        for chunk in named.chunks(RESYNC_CHUNK) {
            match self.read(con, chunk).await {
                Ok(evs) => events.extend(evs),
                Err(e) => self.settle(Err(e))?,
            }
        }
        Ok(events)
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
                // The publisher checked its quorum; this instance checks its own.
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

    /// One request from the hooks. `Err` when the connection is lost.
    async fn on_local(&mut self, con: &mut MultiplexedConnection, ev: Local) -> Result<(), String> {
        match ev {
            Local::Publish { id, what, at } => {
                let r = self.publish(con, id, what).await;
                if matches!(r, Err(Fail::Lost(_))) {
                    self.pending.insert(id.to_bits(), Pending { id, what, at });
                }
                self.settle(r)
            }
            Local::Lease { id, seq, lease_ms } => {
                let Some(name) = name_of(id) else {
                    return Ok(());
                };
                let keys = Keys::new(&self.cfg.key_prefix, &name);
                let answer = self
                    .timed(
                        "lease",
                        self.scripts
                            .lease
                            .key(&keys.lease)
                            .arg(&self.cfg.instance_id)
                            .arg(lease_ms)
                            .invoke_async::<i64>(con),
                    )
                    .await;
                match answer {
                    Ok(n) => {
                        if !lease_answer(id, seq, n < 0, n as f64, lease_ms) {
                            // Won, but no longer wanted: give it back at once.
                            let r = self.release(con, &keys).await;
                            return self.settle(r);
                        }
                        Ok(())
                    }
                    Err(e) => {
                        lease_failed(id, seq);
                        self.settle(Err(e))
                    }
                }
            }
            Local::Release { id } => match name_of(id) {
                Some(name) => {
                    let keys = Keys::new(&self.cfg.key_prefix, &name);
                    let r = self.release(con, &keys).await;
                    self.settle(r)
                }
                None => Ok(()),
            },
            Local::Resync { id } => match name_of(id) {
                Some(name) => match self.read(con, &[(id, name)]).await {
                    Ok(events) => {
                        for ev in events {
                            self.emit(ev);
                        }
                        Ok(())
                    }
                    Err(e) => self.settle(Err(e)),
                },
                None => Ok(()),
            },
        }
    }

    async fn release(&self, con: &mut MultiplexedConnection, keys: &Keys) -> Result<(), Fail> {
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
    }

    /// Publishes one local transition of breaker `id` (skipped unless it is named, i.e. in the
    /// global registry).
    async fn publish(
        &self,
        con: &mut MultiplexedConnection,
        id: f64,
        what: Publish,
    ) -> Result<(), Fail> {
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
            } => {
                let mut call = self.scripts.vote.key(&keys.open);
                call.key(&keys.failing)
                    .key(&keys.forced)
                    .key(&keys.lease)
                    .arg(me)
                    .arg(self.cfg.quorum)
                    .arg(window_ms)
                    .arg(open_ms)
                    .arg(&self.channel)
                    .arg(&name)
                    .arg(cause.as_str());
                self.timed("vote", call.invoke_async::<Vec<i64>>(con))
                    .await
                    .map(|_| ())
            }
            Publish::Close => {
                let mut call = self.scripts.close.key(&keys.open);
                call.key(&keys.failing)
                    .key(&keys.lease)
                    .arg(me)
                    .arg(&self.channel)
                    .arg(message(MessageKind::Close));
                self.timed("close", call.invoke_async::<i64>(con))
                    .await
                    .map(|_| ())
            }
            Publish::Forced {
                state,
                only_if_missing,
            } => {
                let mut call = self.scripts.forced.key(&keys.forced);
                call.key(&keys.lease)
                    .arg(state.as_str())
                    .arg(me)
                    .arg(&self.channel)
                    .arg(message(MessageKind::Forced(state)))
                    .arg(u8::from(only_if_missing));
                self.timed("forced", call.invoke_async::<i64>(con))
                    .await
                    .map(|_| ())
            }
            Publish::Reset => {
                let mut call = self.scripts.reset.key(&keys.forced);
                call.key(&keys.open)
                    .key(&keys.failing)
                    .key(&keys.lease)
                    .arg(&self.channel)
                    .arg(message(MessageKind::Reset));
                self.timed("reset", call.invoke_async::<i64>(con))
                    .await
                    .map(|_| ())
            }
        }
    }

    /// Reads the forced and open keys of some breakers in one pipeline: resync events.
    async fn read(
        &self,
        con: &mut MultiplexedConnection,
        breakers: &[(f64, String)],
    ) -> Result<Vec<SharedEvent>, Fail> {
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
