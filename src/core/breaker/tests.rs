//! Breaker tests on explicit times (the manual clock of the core): transitions, backoff,
//! epochs, permit reclaim, and a model-based test against a small reference model.

use super::config::SlowCall;
use super::*;
use proptest::prelude::*;

fn cfg() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 3,
        success_threshold: 2,
        reset_timeout_ms: 1_000.0,
        half_open_max_calls: 2,
        max_reset_timeout_ms: 5_000.0,
        rolling_window_ms: 10_000.0,
        min_throughput: 10,
        ..BreakerConfig::default()
    }
}

fn permit(b: &mut Breaker, now: f64) -> (u32, u32) {
    match b.acquire(now).0 {
        Admission::Permit { word, trial } => (word, trial),
        r => panic!("expected a permit at {now}, got {r:?}"),
    }
}

fn fail(b: &mut Breaker, now: f64) -> Option<Transition> {
    let (w, t) = permit(b, now);
    b.settle(w, t, Settle::Failure, 1.0, now)
}

fn succeed(b: &mut Breaker, now: f64) -> Option<Transition> {
    let (w, t) = permit(b, now);
    b.settle(w, t, Settle::Success, 1.0, now)
}

fn trip(b: &mut Breaker, now: f64) {
    for _ in 0..b.config().failure_threshold {
        fail(b, now);
    }
    assert_eq!(b.kind(), StateKind::Open);
}

#[test]
fn full_cycle_closed_open_half_open_closed() {
    let mut b = Breaker::new(cfg());
    assert_eq!(fail(&mut b, 0.0), None);
    assert_eq!(fail(&mut b, 1.0), None);
    let t = fail(&mut b, 2.0).unwrap();
    assert_eq!(
        (t.from, t.to, t.cause),
        (
            StateKind::Closed,
            StateKind::Open,
            Cause::ConsecutiveFailures
        )
    );
    // Rejected until the open time is up, with the time left.
    assert_eq!(
        b.acquire(500.0).0,
        Admission::Reject {
            retry_after_ms: Some(502.0)
        }
    );
    // The first call after it moves to half-open and is a trial.
    let (adm, change) = b.acquire(1_002.0);
    assert_eq!(change.unwrap().cause, Cause::ResetTimeoutElapsed);
    let Admission::Permit { word, trial } = adm else {
        panic!()
    };
    assert!(trial > 0);
    assert_eq!(b.settle(word, trial, Settle::Success, 1.0, 1_003.0), None);
    let t = succeed(&mut b, 1_004.0).unwrap();
    assert_eq!(
        (t.from, t.to, t.cause),
        (
            StateKind::HalfOpen,
            StateKind::Closed,
            Cause::TrialsSucceeded
        )
    );
    // Closing clears the window.
    assert_eq!(b.metrics(1_004.0).window.counts.completed(), 0);
}

#[test]
fn a_success_resets_the_consecutive_count() {
    let mut b = Breaker::new(cfg());
    fail(&mut b, 0.0);
    fail(&mut b, 0.0);
    succeed(&mut b, 0.0);
    fail(&mut b, 0.0);
    fail(&mut b, 0.0);
    assert_eq!(b.kind(), StateKind::Closed);
    assert_eq!(b.metrics(0.0).consecutive_failures, 2);
}

#[test]
fn failure_rate_rule_needs_min_throughput() {
    let mut c = cfg();
    c.failure_threshold = 100;
    let mut b = Breaker::new(c);
    // Alternate: 50 % failures, never 3 in a row.
    for i in 0..9 {
        if i % 2 == 1 {
            fail(&mut b, i as f64)
        } else {
            succeed(&mut b, i as f64)
        };
    }
    assert_eq!(b.kind(), StateKind::Closed); // 9 calls: below minThroughput
                                             // The 10th call is a failure: 5 of 10 failed, exactly the 50 % threshold.
    let t = fail(&mut b, 9.0).unwrap();
    assert_eq!(t.cause, Cause::FailureRate);
}

#[test]
fn a_fast_success_never_opens_even_at_min_throughput() {
    let mut c = cfg();
    c.failure_threshold = 100;
    let mut b = Breaker::new(c);
    for i in 0..9 {
        if i % 3 == 0 {
            succeed(&mut b, 0.0)
        } else {
            fail(&mut b, 0.0)
        };
    }
    // 10th call, a success: volume reached, 60 % failed, but a success does not trip.
    assert_eq!(succeed(&mut b, 0.0), None);
    assert_eq!(fail(&mut b, 0.0).unwrap().cause, Cause::FailureRate);
}

#[test]
fn slow_call_rule_opens_on_slow_successes() {
    let mut c = cfg();
    c.slow_call = Some(SlowCall {
        duration_ms: 100.0,
        rate_threshold: 0.5,
    });
    let mut b = Breaker::new(c);
    let mut change = None;
    for i in 0..10 {
        let (w, t) = permit(&mut b, i as f64);
        let lat = if i % 2 == 1 { 150.0 } else { 5.0 };
        change = b.settle(w, t, Settle::Success, lat, i as f64);
        if change.is_some() {
            assert_eq!(i, 9, "opened before min throughput");
        }
    }
    assert_eq!(change.unwrap().cause, Cause::SlowCallRate);
    assert_eq!(b.metrics(10.0).window.counts.slow, 5);
}

#[test]
fn backoff_multiplies_and_caps_and_a_close_resets_it() {
    let mut b = Breaker::new(cfg()); // 1 s, ×2, cap 5 s
    trip(&mut b, 0.0);
    let mut now = 0.0;
    let mut seen = vec![b.metrics(now).current_reset_timeout_ms];
    for _ in 0..4 {
        now = b.metrics(now).next_attempt_at.unwrap();
        let t = fail(&mut b, now).unwrap(); // the trial fails: re-open
        assert_eq!(t.cause, Cause::TrialFailed);
        seen.push(b.metrics(now).current_reset_timeout_ms);
    }
    assert_eq!(seen, vec![1_000.0, 2_000.0, 4_000.0, 5_000.0, 5_000.0]);
    now = b.metrics(now).next_attempt_at.unwrap();
    succeed(&mut b, now);
    succeed(&mut b, now);
    assert_eq!(b.kind(), StateKind::Closed);
    trip(&mut b, now);
    assert_eq!(b.metrics(now).current_reset_timeout_ms, 1_000.0);
}

#[test]
fn no_backoff_when_disabled() {
    let mut c = cfg();
    c.exponential_backoff = false;
    let mut b = Breaker::new(c);
    trip(&mut b, 0.0);
    let now = b.metrics(0.0).next_attempt_at.unwrap();
    fail(&mut b, now);
    assert_eq!(b.metrics(now).current_reset_timeout_ms, 1_000.0);
}

#[test]
fn jitter_shortens_within_the_ratio() {
    let mut c = cfg();
    c.jitter_ratio = 0.5;
    c.exponential_backoff = false;
    let mut seen = Vec::new();
    for _ in 0..50 {
        let mut b = Breaker::new(c.clone());
        trip(&mut b, 0.0);
        let ms = b.metrics(0.0).current_reset_timeout_ms;
        assert!((500.0..=1_000.0).contains(&ms), "{ms}");
        seen.push(ms);
        // a second open from the same breaker differs
        let now = b.metrics(0.0).next_attempt_at.unwrap();
        fail(&mut b, now);
        seen.push(b.metrics(now).current_reset_timeout_ms);
    }
    seen.sort_by(f64::total_cmp);
    seen.dedup();
    assert!(seen.len() > 10, "jitter does not spread: {seen:?}");
}

#[test]
fn half_open_admits_at_most_max_trials_and_rejects_the_rest_at_once() {
    let mut b = Breaker::new(cfg()); // 2 trials
    trip(&mut b, 0.0);
    let p1 = permit(&mut b, 1_000.0);
    let p2 = permit(&mut b, 1_000.0);
    assert_ne!(p1.1, p2.1);
    assert!(matches!(b.acquire(1_000.0).0, Admission::Reject { .. }));
    // Settling one frees its slot.
    b.settle(p1.0, p1.1, Settle::Success, 1.0, 1_001.0);
    let p3 = permit(&mut b, 1_001.0);
    b.settle(p3.0, p3.1, Settle::Success, 1.0, 1_002.0);
    assert_eq!(b.kind(), StateKind::Closed);
    // The last trial, now stale, changes nothing.
    assert_eq!(b.settle(p2.0, p2.1, Settle::Failure, 1.0, 1_003.0), None);
    assert_eq!(b.kind(), StateKind::Closed);
}

#[test]
fn a_failed_trial_reopens_with_the_next_backoff_step() {
    let mut b = Breaker::new(cfg());
    trip(&mut b, 0.0);
    let p = permit(&mut b, 1_000.0);
    let t = b.settle(p.0, p.1, Settle::Failure, 1.0, 1_000.0).unwrap();
    assert_eq!((t.from, t.to), (StateKind::HalfOpen, StateKind::Open));
    assert_eq!(b.metrics(1_000.0).next_attempt_at, Some(3_000.0));
}

#[test]
fn unsettled_trials_are_reclaimed_after_the_reset_timeout_or_call_timeout() {
    let mut b = Breaker::new(cfg()); // no call timeout: reclaim after 1 s
    trip(&mut b, 0.0);
    let leaked1 = permit(&mut b, 1_000.0);
    let _leaked2 = permit(&mut b, 1_000.0);
    assert_eq!(
        b.acquire(1_999.0).0,
        Admission::Reject {
            retry_after_ms: Some(1.0)
        }
    );
    let fresh = permit(&mut b, 2_000.0);
    // The reclaimed permit's late outcome is ignored.
    assert_eq!(
        b.settle(leaked1.0, leaked1.1, Settle::Failure, 1.0, 2_001.0),
        None
    );
    assert_eq!(b.kind(), StateKind::HalfOpen);
    b.settle(fresh.0, fresh.1, Settle::Success, 1.0, 2_002.0);

    let mut c = cfg();
    c.call_timeout_ms = Some(100.0);
    let mut b = Breaker::new(c);
    trip(&mut b, 0.0);
    permit(&mut b, 1_000.0);
    permit(&mut b, 1_000.0);
    assert!(matches!(b.acquire(1_099.0).0, Admission::Reject { .. }));
    permit(&mut b, 1_100.0);
}

#[test]
fn epochs_a_slow_success_from_before_the_open_does_not_count() {
    let mut b = Breaker::new(cfg());
    let slow = permit(&mut b, 0.0); // started while closed
    trip(&mut b, 1.0);
    // It ends after the open: neither closes the circuit nor counts as a trial.
    assert_eq!(
        b.settle(slow.0, slow.1, Settle::Success, 1.0, 1_500.0),
        None
    );
    let m = b.metrics(1_500.0);
    assert_eq!(m.state, StateKind::Open);
    // Lifetime counts it; the window (the policy's input) does not.
    assert_eq!(m.lifetime.counts.successes, 1);
    assert_eq!(m.window.counts.successes, 0);
}

#[test]
fn ignored_errors_count_neither_way_but_release_the_trial() {
    let mut b = Breaker::new(cfg());
    fail(&mut b, 0.0);
    fail(&mut b, 0.0);
    let p = permit(&mut b, 0.0);
    assert_eq!(b.settle(p.0, p.1, Settle::Ignored, 1.0, 0.0), None);
    assert_eq!(b.metrics(0.0).consecutive_failures, 2);
    assert_eq!(b.metrics(0.0).lifetime.counts.completed(), 2);
    fail(&mut b, 0.0);
    assert_eq!(b.kind(), StateKind::Open);
    let t1 = permit(&mut b, 1_000.0);
    permit(&mut b, 1_000.0);
    b.settle(t1.0, t1.1, Settle::Ignored, 1.0, 1_000.0);
    permit(&mut b, 1_000.0); // the slot came back
}

#[test]
fn timeouts_count_as_failures_and_as_timeouts() {
    let mut b = Breaker::new(cfg());
    let p = permit(&mut b, 0.0);
    b.settle(p.0, p.1, Settle::Timeout, 30_000.0, 0.0);
    let m = b.metrics(0.0);
    assert_eq!(
        (
            m.lifetime.counts.failures,
            m.lifetime.counts.timeouts,
            m.consecutive_failures
        ),
        (1, 1, 1)
    );
}

#[test]
fn manual_controls() {
    let mut b = Breaker::new(cfg());
    let t = b.open_for(250.0, 10.0).unwrap().unwrap();
    assert_eq!((t.to, t.cause), (StateKind::Open, Cause::OpenFor));
    assert_eq!(
        b.acquire(100.0).0,
        Admission::Reject {
            retry_after_ms: Some(160.0)
        }
    );
    assert!(b.open_for(0.0, 0.0).is_err());
    assert!(b.open_for(f64::NAN, 0.0).is_err());
    assert_eq!(
        b.open_for(-1.0, 0.0).unwrap_err().code(),
        "ERR_INVALID_ARGUMENT"
    );

    assert_eq!(b.force_open(300.0).unwrap().to, StateKind::ForcedOpen);
    assert_eq!(
        b.acquire(10_000.0).0,
        Admission::Reject {
            retry_after_ms: None
        }
    ); // never lazily half-opens
    assert_eq!(b.force_open(10_000.0), None);

    assert_eq!(b.disable(10_001.0).unwrap().to, StateKind::Disabled);
    for _ in 0..20 {
        fail(&mut b, 10_001.0); // pass-through, still measured
    }
    assert_eq!(b.kind(), StateKind::Disabled);
    assert_eq!(b.metrics(10_001.0).window.counts.failures, 20);

    assert_eq!(b.reset(10_002.0).unwrap().to, StateKind::Closed);
    let m = b.metrics(10_002.0);
    assert_eq!(
        (m.lifetime.counts, m.window.counts, m.open_count),
        (Counts::default(), Counts::default(), 0)
    );
    // A reset from closed changes the epoch but reports no transition.
    let w = b.word();
    assert_eq!(b.reset(10_003.0), None);
    assert_ne!(b.word(), w);
}

#[test]
fn disabled_from_config_and_probe_early() {
    let mut c = cfg();
    c.enabled = false;
    let b = Breaker::new(c);
    assert_eq!(b.kind(), StateKind::Disabled);
    let mut b = Breaker::new(cfg());
    assert_eq!(b.probe_early(0.0), None);
    trip(&mut b, 0.0);
    assert_eq!(b.probe_early(10.0).unwrap().to, StateKind::HalfOpen);
}

#[test]
fn metrics_report_percentiles_rates_and_open_times() {
    let mut c = cfg();
    c.failure_threshold = 1_000;
    c.min_throughput = 1_000;
    let mut b = Breaker::new(c);
    for ms in 1..=100 {
        let (w, t) = permit(&mut b, 0.0);
        let how = if ms <= 10 {
            Settle::Failure
        } else {
            Settle::Success
        };
        b.settle(w, t, how, ms as f64, 0.0);
    }
    let m = b.metrics(0.0);
    assert_eq!(m.lifetime.counts.completed(), 100);
    assert!((m.window.counts.failure_rate() - 0.1).abs() < 1e-12);
    assert!((m.window.latency.p50_ms - 50.0).abs() <= 0.5);
    assert!((m.lifetime.latency.p99_ms - 99.0).abs() <= 1.0);
    assert_eq!(m.opened_at, None);
    b.open_for(1_000.0, 5.0).unwrap();
    let m = b.metrics(5.0);
    assert_eq!(
        (m.opened_at, m.next_attempt_at, m.open_count),
        (Some(5.0), Some(1_005.0), 1)
    );
}

// ---------- model-based test ----------

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    Success(usize),
    Failure(usize),
    Advance(u16),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        3 => (0usize..8).prop_map(Op::Success),
        3 => (0usize..8).prop_map(Op::Failure),
        2 => (0u16..1_500).prop_map(Op::Advance),
        1 => Just(Op::Reset),
    ]
}

/// The reference model: the documented rules written as plainly as possible, with the window
/// kept as a list of every outcome.
#[derive(Debug)]
struct Model {
    state: StateKind,
    epoch: u64,
    until: f64,
    step: i32,
    consecutive: u32,
    trials: Vec<(u64, u64, f64)>, // (epoch, id, issued_at)
    successes: u32,
    outcomes: Vec<(f64, bool)>, // (time, failed)
    next_id: u64,
}

const BUCKET: f64 = 100.0; // window 1 000 ms in 10 buckets

impl Model {
    fn in_window(&self, now: f64) -> (u64, u64) {
        let head = (now / BUCKET).floor();
        let mut ok = 0;
        let mut bad = 0;
        for (t, failed) in &self.outcomes {
            if (t / BUCKET).floor() > head - 10.0 {
                if *failed {
                    bad += 1
                } else {
                    ok += 1
                }
            }
        }
        (ok, bad)
    }

    fn open(&mut self, now: f64) {
        let ms = (1_000.0 * 2f64.powi(self.step)).min(5_000.0);
        self.step += 1;
        self.state = StateKind::Open;
        self.until = now + ms;
        self.epoch += 1;
    }

    fn acquire(&mut self, now: f64) -> Option<(u64, u64)> {
        if self.state == StateKind::Open && now >= self.until {
            self.state = StateKind::HalfOpen;
            self.epoch += 1;
            self.trials.clear();
            self.successes = 0;
        }
        match self.state {
            StateKind::Closed => Some((self.epoch, 0)),
            StateKind::HalfOpen => {
                self.trials.retain(|t| now - t.2 < 1_000.0);
                if self.trials.len() < 2 {
                    self.next_id += 1;
                    self.trials.push((self.epoch, self.next_id, now));
                    Some((self.epoch, self.next_id))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn settle(&mut self, epoch: u64, id: u64, failed: bool, now: f64) {
        if epoch != self.epoch {
            return;
        }
        match self.state {
            StateKind::Closed => {
                self.outcomes.push((now, failed));
                self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                let (ok, bad) = self.in_window(now);
                let rate_trip = failed && ok + bad >= 4 && bad * 2 >= ok + bad;
                if self.consecutive >= 3 || rate_trip {
                    self.open(now);
                }
            }
            StateKind::HalfOpen => {
                let Some(i) = self.trials.iter().position(|t| t.1 == id) else {
                    return;
                };
                self.trials.remove(i);
                self.outcomes.push((now, failed));
                self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                if failed {
                    self.open(now);
                } else {
                    self.successes += 1;
                    if self.successes >= 2 {
                        self.state = StateKind::Closed;
                        self.epoch += 1;
                        self.outcomes.clear();
                        self.consecutive = 0;
                        self.step = 0;
                    }
                }
            }
            _ => {}
        }
    }

    fn reset(&mut self) {
        self.state = StateKind::Closed;
        self.epoch += 1;
        self.outcomes.clear();
        self.consecutive = 0;
        self.step = 0;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn breaker_matches_the_reference_model(ops in prop::collection::vec(op(), 1..60)) {
        let c = BreakerConfig {
            failure_threshold: 3,
            success_threshold: 2,
            reset_timeout_ms: 1_000.0,
            half_open_max_calls: 2,
            max_reset_timeout_ms: 5_000.0,
            rolling_window_ms: 1_000.0,
            min_throughput: 4,
            failure_rate_threshold: 0.5,
            ..BreakerConfig::default()
        };
        let mut b = Breaker::new(c);
        let mut m = Model {
            state: StateKind::Closed, epoch: 0, until: 0.0, step: 0, consecutive: 0,
            trials: vec![], successes: 0, outcomes: vec![], next_id: 0,
        };
        let mut now = 0.0;
        // Outstanding permits: (breaker word, trial, model epoch, model id).
        let mut held: Vec<(u32, u32, u64, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire => {
                    let real = b.acquire(now).0;
                    let model = m.acquire(now);
                    match (real, model) {
                        (Admission::Permit { word, trial }, Some((e, id))) => held.push((word, trial, e, id)),
                        (Admission::Reject { .. }, None) => {}
                        (r, mo) => prop_assert!(false, "acquire at {now}: breaker {r:?}, model {mo:?}"),
                    }
                }
                Op::Success(i) | Op::Failure(i) if !held.is_empty() => {
                    let failed = matches!(op, Op::Failure(_));
                    let (word, trial, e, id) = held.remove(i % held.len());
                    let how = if failed { Settle::Failure } else { Settle::Success };
                    b.settle(word, trial, how, 1.0, now);
                    m.settle(e, id, failed, now);
                }
                Op::Success(_) | Op::Failure(_) => {}
                Op::Advance(ms) => now += f64::from(ms),
                Op::Reset => {
                    b.reset(now);
                    m.reset();
                }
            }
            prop_assert_eq!(b.kind(), m.state, "state after {:?} at {}", op, now);
            let metrics = b.metrics(now);
            prop_assert_eq!(metrics.consecutive_failures, m.consecutive);
            if m.state == StateKind::Closed {
                let (ok, bad) = m.in_window(now);
                prop_assert_eq!((metrics.window.counts.successes, metrics.window.counts.failures), (ok, bad));
            }
            if m.state == StateKind::Open {
                prop_assert_eq!(metrics.next_attempt_at, Some(m.until));
            }
        }
    }
}
