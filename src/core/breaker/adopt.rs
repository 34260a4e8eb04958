//! Adopting the fleet's state: what a breaker does when another instance (through the shared
//! state in Redis) opened, closed, forced or reset it. Every change here has the cause
//! `shared_state`, which the publisher never sends back out, so adoption cannot echo.

use super::state::{Cause, State, StateKind, Transition};
use super::Breaker;
use crate::core::options::MAX_DURATION_MS;

/// A state change learnt from the fleet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Adopt {
    /// Another instance opened (or a quorum did): open for this many ms (Redis' PTTL).
    Open(f64),
    /// A trial succeeded elsewhere: close an open or half-open circuit.
    Close,
    /// An operator reset it elsewhere: close whatever the state, forced ones included.
    Reset,
    ForcedOpen,
    Disabled,
}

impl Breaker {
    /// Applies a change learnt from the fleet; `None` when it does not apply here. Operator
    /// states (forced open, disabled) are changed only by operator messages (forced, reset),
    /// never by the fleet's automatic opens and closes.
    pub fn adopt(&mut self, what: Adopt, now: f64) -> Option<Transition> {
        match what {
            Adopt::Open(ms) => self.adopt_open(ms, now),
            Adopt::Close => self.adopt_close(now),
            Adopt::Reset => self.adopt_reset(now),
            Adopt::ForcedOpen => self.adopt_forced_open(now),
            Adopt::Disabled => self.adopt_disabled(now),
        }
    }

    /// Opens for `ms`. An open circuit only moves to the later of the two open-until times, so
    /// an adopted open never shortens this instance's own. The backoff advances as if this
    /// instance had opened, so that whoever trials next re-opens with the fleet's step.
    pub fn adopt_open(&mut self, ms: f64, now: f64) -> Option<Transition> {
        if !(ms > 0.0 && ms <= MAX_DURATION_MS) {
            return None;
        }
        let until = now + ms;
        let (opened_at, from_open) = match self.state {
            State::ForcedOpen | State::Disabled => return None,
            // Within a millisecond counts as the same open (the message took that long).
            State::Open { until: current, .. } if current >= until - 1.0 => return None,
            State::Open { opened_at, .. } => (opened_at, true),
            _ => (now, false),
        };
        let change = self.transition(State::Open { opened_at, until }, Cause::SharedState, now)?;
        if !from_open {
            self.backoff_step = self.backoff_step.saturating_add(1);
            self.open_count += 1;
            self.opened_at = Some(now);
        }
        self.current_reset_timeout_ms = until - opened_at;
        Some(change)
    }

    /// Closes an open or half-open circuit as a trial success would: the window, the
    /// consecutive failures and the backoff are cleared, the lifetime statistics kept.
    pub fn adopt_close(&mut self, now: f64) -> Option<Transition> {
        match self.kind() {
            StateKind::Open | StateKind::HalfOpen => self.close(Cause::SharedState, now),
            _ => None,
        }
    }

    /// Closes from any state. A closed circuit stays closed (no new epoch, no event) but starts
    /// afresh: its window, consecutive failures and backoff are cleared. Lifetime statistics
    /// are kept: an operator's reset elsewhere does not erase what this instance measured.
    pub fn adopt_reset(&mut self, now: f64) -> Option<Transition> {
        if self.kind() == StateKind::Closed {
            self.window.clear();
            self.consecutive_failures = 0;
            self.backoff_step = 0;
            self.current_reset_timeout_ms = self.cfg.reset_timeout_ms;
            return None;
        }
        self.close(Cause::SharedState, now)
    }

    pub fn adopt_forced_open(&mut self, now: f64) -> Option<Transition> {
        if self.kind() == StateKind::ForcedOpen {
            return None;
        }
        self.transition(State::ForcedOpen, Cause::SharedState, now)
    }

    pub fn adopt_disabled(&mut self, now: f64) -> Option<Transition> {
        if self.kind() == StateKind::Disabled {
            return None;
        }
        self.transition(State::Disabled, Cause::SharedState, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::breaker::{Admission, BreakerConfig, Settle};

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 2,
            reset_timeout_ms: 1_000.0,
            success_threshold: 1,
            ..BreakerConfig::default()
        }
    }

    fn fail(b: &mut Breaker, now: f64) {
        if let (Admission::Permit { word, trial }, _) = b.acquire(now) {
            b.settle(word, trial, Settle::Failure, 1.0, now);
        }
    }

    #[test]
    fn adopt_open_from_closed_opens_for_the_remote_time_with_cause_shared_state() {
        let mut b = Breaker::new(cfg());
        let t = b.adopt(Adopt::Open(700.0), 10.0).unwrap();
        assert_eq!(
            (t.from, t.to, t.cause),
            (StateKind::Closed, StateKind::Open, Cause::SharedState)
        );
        assert_eq!(b.open_until(), Some(710.0));
        assert_eq!(b.metrics(10.0).open_count, 1);
        assert_eq!(
            b.acquire(500.0).0,
            Admission::Reject {
                retry_after_ms: Some(210.0)
            }
        );
    }

    #[test]
    fn adopt_open_never_shortens_a_local_open_but_extends_it() {
        let mut b = Breaker::new(cfg());
        fail(&mut b, 0.0);
        fail(&mut b, 0.0);
        assert_eq!(b.open_until(), Some(1_000.0));
        assert_eq!(b.adopt(Adopt::Open(500.0), 100.0), None, "shorter: kept");
        assert_eq!(
            b.adopt(Adopt::Open(900.5), 100.0),
            None,
            "the same within 1 ms"
        );
        let word = b.word();
        let t = b.adopt(Adopt::Open(3_000.0), 100.0).unwrap();
        assert_eq!((t.from, t.to), (StateKind::Open, StateKind::Open));
        assert_ne!(b.word(), word, "a new epoch");
        assert_eq!(b.open_until(), Some(3_100.0));
        let m = b.metrics(100.0);
        assert_eq!(m.open_count, 1, "an extension is not another open");
        assert_eq!(m.opened_at, Some(0.0));
        assert_eq!(m.current_reset_timeout_ms, 3_100.0);
    }

    #[test]
    fn adopt_open_advances_the_backoff_and_a_close_clears_it() {
        let mut b = Breaker::new(cfg());
        b.adopt(Adopt::Open(1_000.0), 0.0).unwrap();
        // A trial here that fails re-opens with the second step (2 s), as after a local open.
        let t = {
            let (Admission::Permit { word, trial }, _) = b.acquire(1_000.0) else {
                panic!()
            };
            b.settle(word, trial, Settle::Failure, 1.0, 1_000.0)
                .unwrap()
        };
        assert_eq!(t.cause, Cause::TrialFailed);
        assert_eq!(
            b.open_until(),
            Some(3_000.0),
            "1 s × 2 on the second open in a row"
        );
        let t = b.adopt(Adopt::Close, 1_500.0).unwrap();
        assert_eq!((t.to, t.cause), (StateKind::Closed, Cause::SharedState));
        assert_eq!(b.metrics(1_500.0).current_reset_timeout_ms, 1_000.0);
        assert_eq!(b.metrics(1_500.0).lifetime.counts.failures, 1);
    }

    #[test]
    fn adopt_close_applies_to_open_and_half_open_only() {
        let mut b = Breaker::new(cfg());
        assert_eq!(b.adopt(Adopt::Close, 0.0), None);
        b.force_open(0.0);
        assert_eq!(
            b.adopt(Adopt::Close, 0.0),
            None,
            "an operator state is kept"
        );
        b.reset(0.0);
        b.adopt(Adopt::Open(100.0), 0.0);
        b.acquire(100.0); // half-open now
        assert_eq!(b.kind(), StateKind::HalfOpen);
        let t = b.adopt(Adopt::Close, 101.0).unwrap();
        assert_eq!((t.from, t.to), (StateKind::HalfOpen, StateKind::Closed));
    }

    #[test]
    fn operator_states_ignore_fleet_opens_and_yield_to_operator_messages() {
        let mut b = Breaker::new(cfg());
        b.adopt(Adopt::ForcedOpen, 0.0).unwrap();
        assert_eq!(b.adopt(Adopt::ForcedOpen, 1.0), None);
        assert_eq!(b.adopt(Adopt::Open(500.0), 1.0), None);
        let t = b.adopt(Adopt::Disabled, 2.0).unwrap();
        assert_eq!((t.from, t.to), (StateKind::ForcedOpen, StateKind::Disabled));
        assert_eq!(b.adopt(Adopt::Open(500.0), 3.0), None);
        let t = b.adopt(Adopt::Reset, 4.0).unwrap();
        assert_eq!(
            (t.from, t.to, t.cause),
            (StateKind::Disabled, StateKind::Closed, Cause::SharedState)
        );
    }

    #[test]
    fn adopt_reset_from_closed_clears_the_window_without_a_new_epoch() {
        let mut b = Breaker::new(cfg());
        fail(&mut b, 0.0);
        assert_eq!(b.metrics(0.0).consecutive_failures, 1);
        let word = b.word();
        assert_eq!(b.adopt(Adopt::Reset, 1.0), None);
        assert_eq!(b.word(), word);
        let m = b.metrics(1.0);
        assert_eq!(m.consecutive_failures, 0);
        assert_eq!(m.window.counts.failures, 0);
        assert_eq!(
            m.lifetime.counts.failures, 1,
            "lifetime statistics are kept"
        );
    }

    #[test]
    fn bad_durations_are_ignored() {
        let mut b = Breaker::new(cfg());
        for ms in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_DURATION_MS + 1.0] {
            assert_eq!(b.adopt(Adopt::Open(ms), 0.0), None, "{ms}");
        }
        assert_eq!(b.kind(), StateKind::Closed);
    }
}
