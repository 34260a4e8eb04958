//! One circuit breaker: the state machine, its window and its statistics. Every method takes
//! `now`; none reads a clock. Methods return what changed, and the caller emits events.

pub mod adopt;
pub mod config;
pub mod policy;
pub mod state;
pub mod window;

use hdrhistogram::Histogram;

use crate::core::error::{ConfigIssue, Error, Result};
use crate::core::options::{fmt_num, MAX_DURATION_MS};
pub use adopt::Adopt;
pub use config::BreakerConfig;
pub use state::{Cause, State, StateKind, Transition, Trial};
use window::{ms_to_us, new_histogram, summarize, Counts, Latency, Outcome, Window};

/// Trial ids wrap within 20 bits, so a permit (word and trial) packs exactly into one f64.
pub const MAX_TRIAL_ID: u32 = (1 << 20) - 1;

/// The answer to "may I call?".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// `word` is the epoch and state that issued the permit; `trial` is 0 unless the permit is
    /// a half-open trial.
    Permit { word: u32, trial: u32 },
    /// `retry_after_ms` is when a call may next be admitted; `None` when only an operator can
    /// say (forced open).
    Reject { retry_after_ms: Option<f64> },
}

/// How a call ended, as reported by the JS layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Settle {
    Success,
    Failure,
    Timeout,
    /// An error that `isFailure` says does not count: it only releases a trial permit.
    Ignored,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub counts: Counts,
    pub latency: Latency,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub state: StateKind,
    pub word: u32,
    /// Since creation or the last reset.
    pub lifetime: Stats,
    /// Over the rolling window.
    pub window: Stats,
    pub window_ms: f64,
    pub consecutive_failures: u32,
    pub open_count: u64,
    pub opened_at: Option<f64>,
    pub next_attempt_at: Option<f64>,
    pub current_reset_timeout_ms: f64,
    pub half_open_in_flight: u32,
}

#[derive(Debug)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: State,
    epoch: u32,
    consecutive_failures: u32,
    /// Opens in a row without a close: the exponent of the backoff.
    backoff_step: u32,
    current_reset_timeout_ms: f64,
    window: Window,
    lifetime: Counts,
    lifetime_hist: Option<Box<Histogram<u64>>>,
    open_count: u64,
    opened_at: Option<f64>,
    next_trial_id: u32,
    rng: u64,
    last_transition: Option<Transition>,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Self {
        let state = if cfg.enabled {
            State::Closed
        } else {
            State::Disabled
        };
        // A seed that differs between breakers (splitmix64 of a counter), for jitter only.
        static SEEDS: std::sync::atomic::AtomicU64 =
            std::sync::atomic::AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let mut seed = SEEDS.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed);
        seed = (seed ^ (seed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        seed = (seed ^ (seed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        seed ^= seed >> 31;
        Self {
            window: Window::new(cfg.rolling_window_ms),
            current_reset_timeout_ms: cfg.reset_timeout_ms,
            cfg,
            state,
            epoch: 0,
            consecutive_failures: 0,
            backoff_step: 0,
            lifetime: Counts::default(),
            lifetime_hist: None,
            open_count: 0,
            opened_at: None,
            next_trial_id: 1,
            rng: seed | 1,
            last_transition: None,
        }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.cfg
    }

    pub fn kind(&self) -> StateKind {
        self.state.kind()
    }

    /// The epoch and state in one number: a permit is valid only while this is unchanged.
    pub fn word(&self) -> u32 {
        (self.epoch << 3) | self.kind().code()
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The one place where the state changes. Illegal requests are refused (a bug, never a panic).
    fn transition(&mut self, to: State, cause: Cause, now: f64) -> Option<Transition> {
        let from = self.state.kind();
        let to_kind = to.kind();
        if !state::is_legal(from, to_kind, cause) {
            debug_assert!(
                false,
                "illegal transition {from:?} -> {to_kind:?} ({cause:?})"
            );
            return None;
        }
        self.state = to;
        self.epoch = self.epoch.wrapping_add(1) & (u32::MAX >> 3);
        let t = Transition {
            from,
            to: to_kind,
            cause,
            at: now,
            word: self.word(),
        };
        self.last_transition = Some(t);
        Some(t)
    }

    /// The most recent transition, for a caller that learnt of it from a changed state word.
    pub fn last_transition(&self) -> Option<Transition> {
        self.last_transition
    }

    /// When an open circuit lets the next call through.
    pub fn open_until(&self) -> Option<f64> {
        match self.state {
            State::Open { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Counts a call that the JS layer rejected on its own (from the published open-until time).
    pub fn note_rejected(&mut self, now: f64) {
        self.reject(now, None);
    }

    /// Asks for a permit. An open circuit whose time is up moves to half-open here (lazily).
    pub fn acquire(&mut self, now: f64) -> (Admission, Option<Transition>) {
        let mut change = None;
        if let State::Open { until, .. } = self.state {
            if now < until {
                return (self.reject(now, Some(until - now)), None);
            }
            change = self.enter_half_open(Cause::ResetTimeoutElapsed, now);
        }
        let word = self.word();
        let reclaim_ms = self.cfg.trial_reclaim_ms();
        let max = self.cfg.half_open_max_calls as usize;
        let admission = match &mut self.state {
            State::Closed | State::Disabled => Admission::Permit { word, trial: 0 },
            State::HalfOpen { trials, .. } => {
                // Permits never settled (a hung call, a leaked manual permit) are reclaimed, so
                // the breaker cannot stay stuck in half-open.
                trials.retain(|t| now - t.issued_at < reclaim_ms);
                if trials.len() < max {
                    let id = self.next_trial_id;
                    self.next_trial_id = (self.next_trial_id + 1) & MAX_TRIAL_ID;
                    self.next_trial_id = self.next_trial_id.max(1);
                    trials.push(Trial { id, issued_at: now });
                    Admission::Permit { word, trial: id }
                } else {
                    let soonest = trials
                        .iter()
                        .map(|t| t.issued_at + reclaim_ms)
                        .fold(f64::INFINITY, f64::min);
                    return (self.reject(now, Some((soonest - now).max(0.0))), change);
                }
            }
            State::ForcedOpen => return (self.reject(now, None), change),
            State::Open { .. } => return (self.reject(now, None), change),
        };
        (admission, change)
    }

    fn reject(&mut self, now: f64, retry_after_ms: Option<f64>) -> Admission {
        self.window.record(now, Outcome::Rejected, 0, false);
        self.lifetime.add(Outcome::Rejected, 0, false);
        Admission::Reject { retry_after_ms }
    }

    /// Reports how a permitted call ended. Outcomes whose permit came from an earlier epoch
    /// count in the lifetime totals only: they never move the state machine or the window.
    pub fn settle(
        &mut self,
        word: u32,
        trial: u32,
        how: Settle,
        latency_ms: f64,
        now: f64,
    ) -> Option<Transition> {
        let outcome = match how {
            Settle::Success => Outcome::Success,
            Settle::Failure => Outcome::Failure,
            Settle::Timeout => Outcome::Timeout,
            Settle::Ignored => {
                if word == self.word() {
                    self.release_trial(trial);
                }
                return None;
            }
        };
        let latency_us = ms_to_us(latency_ms);
        let slow = self
            .cfg
            .slow_call
            .is_some_and(|s| latency_ms >= s.duration_ms);
        self.lifetime.add(outcome, latency_us, slow);
        if self.lifetime_hist.is_none() {
            self.lifetime_hist = new_histogram();
        }
        if let Some(h) = &mut self.lifetime_hist {
            h.saturating_record(latency_us);
        }
        if word != self.word() {
            return None;
        }
        let success = outcome == Outcome::Success;
        match self.state.kind() {
            StateKind::Closed => {
                self.window.record(now, outcome, latency_us, slow);
                self.count_consecutive(success);
                // The rules are checked when a failure or a slow call is recorded: a fast success
                // never opens the circuit. (This is what lets the JS layer batch fast successes.)
                if success && !slow {
                    return None;
                }
                let totals = self.window.totals(now);
                let cause = policy::should_open(&self.cfg, self.consecutive_failures, &totals)?;
                self.open(cause, now)
            }
            StateKind::Disabled => {
                self.window.record(now, outcome, latency_us, slow);
                self.count_consecutive(success);
                None
            }
            StateKind::HalfOpen => {
                if !self.release_trial(trial) {
                    return None; // reclaimed earlier: too late to count
                }
                self.window.record(now, outcome, latency_us, slow);
                self.count_consecutive(success);
                if !success {
                    return self.open(Cause::TrialFailed, now);
                }
                let State::HalfOpen { successes, .. } = &mut self.state else {
                    return None;
                };
                *successes += 1;
                if *successes >= self.cfg.success_threshold {
                    return self.close(Cause::TrialsSucceeded, now);
                }
                None
            }
            // No permit is ever issued in these states, so a matching word cannot reach here.
            StateKind::Open | StateKind::ForcedOpen => None,
        }
    }

    fn count_consecutive(&mut self, success: bool) {
        if success {
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
    }

    /// Frees a half-open trial permit; false if it was not in flight.
    fn release_trial(&mut self, trial: u32) -> bool {
        let State::HalfOpen { trials, .. } = &mut self.state else {
            return false;
        };
        match trials.iter().position(|t| t.id == trial) {
            Some(i) => {
                trials.swap_remove(i);
                true
            }
            None => false,
        }
    }

    fn next_random(&mut self) -> f64 {
        crate::core::clock::unit_random(&mut self.rng)
    }

    /// The open time of the next open: `resetTimeoutMs × backoffMultiplier^step`, capped at
    /// `maxResetTimeoutMs`, then shortened by up to `jitterRatio` (so the cap always holds).
    fn next_open_ms(&mut self) -> f64 {
        let base = self.cfg.reset_timeout_ms;
        let t = if self.cfg.exponential_backoff {
            (base
                * self
                    .cfg
                    .backoff_multiplier
                    .powi(self.backoff_step.min(1024) as i32))
            .min(self.cfg.max_reset_timeout_ms)
        } else {
            base
        };
        if self.cfg.jitter_ratio > 0.0 {
            t * (1.0 - self.cfg.jitter_ratio * self.next_random())
        } else {
            t
        }
    }

    fn open(&mut self, cause: Cause, now: f64) -> Option<Transition> {
        let ms = self.next_open_ms();
        let change = self.transition(
            State::Open {
                opened_at: now,
                until: now + ms,
            },
            cause,
            now,
        )?;
        self.backoff_step = self.backoff_step.saturating_add(1);
        self.current_reset_timeout_ms = ms;
        self.open_count += 1;
        self.opened_at = Some(now);
        Some(change)
    }

    fn close(&mut self, cause: Cause, now: f64) -> Option<Transition> {
        let change = self.transition(State::Closed, cause, now)?;
        self.window.clear();
        self.consecutive_failures = 0;
        self.backoff_step = 0;
        self.current_reset_timeout_ms = self.cfg.reset_timeout_ms;
        Some(change)
    }

    fn enter_half_open(&mut self, cause: Cause, now: f64) -> Option<Transition> {
        self.transition(
            State::HalfOpen {
                trials: Vec::new(),
                successes: 0,
            },
            cause,
            now,
        )
    }

    /// Opens for exactly `ms` (a provider's Retry-After, say). It does not advance the backoff.
    pub fn open_for(&mut self, ms: f64, now: f64) -> Result<Option<Transition>> {
        if !(ms > 0.0 && ms <= MAX_DURATION_MS) {
            return Err(Error::InvalidArgument(ConfigIssue::new(
                "ms",
                fmt_num(ms),
                format!("a number of milliseconds greater than 0 and at most {MAX_DURATION_MS}"),
            )));
        }
        let change = self.transition(
            State::Open {
                opened_at: now,
                until: now + ms,
            },
            Cause::OpenFor,
            now,
        );
        if change.is_some() {
            self.open_count += 1;
            self.opened_at = Some(now);
            self.current_reset_timeout_ms = ms;
        }
        Ok(change)
    }

    /// Moves an open circuit to half-open before its time (a passing health check), so that
    /// recovery is probed by trial calls. Does nothing in any other state.
    pub fn probe_early(&mut self, now: f64) -> Option<Transition> {
        if self.kind() != StateKind::Open {
            return None;
        }
        self.enter_half_open(Cause::HealthCheckPassed, now)
    }

    pub fn force_open(&mut self, now: f64) -> Option<Transition> {
        if self.kind() == StateKind::ForcedOpen {
            return None;
        }
        self.transition(State::ForcedOpen, Cause::ForceOpen, now)
    }

    pub fn disable(&mut self, now: f64) -> Option<Transition> {
        if self.kind() == StateKind::Disabled {
            return None;
        }
        self.transition(State::Disabled, Cause::Disable, now)
    }

    /// Back to closed with the window, backoff and lifetime statistics cleared. The epoch moves
    /// on even from closed, so outcomes of calls started before the reset are not counted.
    pub fn reset(&mut self, now: f64) -> Option<Transition> {
        let from = self.kind();
        let change = self.transition(State::Closed, Cause::Reset, now);
        self.window.clear();
        self.consecutive_failures = 0;
        self.backoff_step = 0;
        self.current_reset_timeout_ms = self.cfg.reset_timeout_ms;
        self.lifetime = Counts::default();
        if let Some(h) = &mut self.lifetime_hist {
            h.reset();
        }
        self.open_count = 0;
        self.opened_at = None;
        change.filter(|_| from != StateKind::Closed)
    }

    pub fn metrics(&mut self, now: f64) -> Metrics {
        let window_counts = self.window.totals(now);
        let (next_attempt_at, in_flight) = match &self.state {
            State::Open { until, .. } => (Some(*until), 0),
            State::HalfOpen { trials, .. } => (None, trials.len() as u32),
            _ => (None, 0),
        };
        Metrics {
            state: self.kind(),
            word: self.word(),
            lifetime: Stats {
                counts: self.lifetime,
                latency: summarize(self.lifetime_hist.as_deref(), &self.lifetime),
            },
            window: Stats {
                counts: window_counts,
                latency: self.window.latency(),
            },
            window_ms: self.window.window_ms(),
            consecutive_failures: self.consecutive_failures,
            open_count: self.open_count,
            opened_at: self.opened_at,
            next_attempt_at,
            current_reset_timeout_ms: self.current_reset_timeout_ms,
            half_open_in_flight: in_flight,
        }
    }
}

#[cfg(test)]
mod tests;
