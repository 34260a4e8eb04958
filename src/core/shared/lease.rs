//! The fleet-wide trial lease, as seen by one instance. When a shared breaker's open time is
//! up, the instance may go half-open only while it holds the lease (`SET NX PX` in Redis);
//! until then calls are rejected and at most one lease request is in flight. Times are the
//! breaker's clock (`now` of the calls); the lease's own expiry is kept by Redis.

/// The retry hint while a request is in flight: the answer takes one round trip.
pub const PENDING_RETRY_MS: f64 = 10.0;
/// A request with no answer after this long is sent again (the session answers every request,
/// so this only guards against a lost answer).
pub const REQUEST_STALE_MS: f64 = 10_000.0;
/// After a failed request (Redis error), wait this long before the next one.
pub const ERROR_RETRY_MS: f64 = 250.0;
/// A loser asks again this long after the holder's lease should have expired, so that it does
/// not race the expiry by a millisecond.
pub const EXPIRY_MARGIN_MS: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Idle,
    Requested {
        at: f64,
        seq: u64,
    },
    Held {
        until: f64,
    },
    /// Another instance holds it; ask again at `retry_at`.
    Busy {
        retry_at: f64,
    },
}

/// What the gate says to a call that finds the open time up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// This instance holds the lease: go half-open, trial as usual.
    Pass,
    /// Reject the call. With `request`, send a lease request with this sequence number.
    Reject {
        retry_after_ms: f64,
        request: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    state: State,
    next_seq: u64,
}

impl Default for Lease {
    fn default() -> Self {
        Self::new()
    }
}

impl Lease {
    pub fn new() -> Self {
        Self {
            state: State::Idle,
            next_seq: 1,
        }
    }

    fn request(&mut self, now: f64) -> Gate {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.state = State::Requested { at: now, seq };
        Gate::Reject {
            retry_after_ms: PENDING_RETRY_MS,
            request: Some(seq),
        }
    }

    pub fn gate(&mut self, now: f64) -> Gate {
        match self.state {
            State::Idle => self.request(now),
            State::Requested { at, .. } if now - at >= REQUEST_STALE_MS => self.request(now),
            State::Requested { .. } => Gate::Reject {
                retry_after_ms: PENDING_RETRY_MS,
                request: None,
            },
            State::Held { until } if now < until => Gate::Pass,
            State::Held { .. } => self.request(now),
            State::Busy { retry_at } if now >= retry_at => self.request(now),
            State::Busy { retry_at } => Gate::Reject {
                retry_after_ms: retry_at - now,
                request: None,
            },
        }
    }

    /// The request `seq` won a lease of `lease_ms`. False if the answer is stale (the breaker
    /// moved on, or a newer request is out): the caller must release the lease in Redis.
    pub fn granted(&mut self, seq: u64, lease_ms: f64) -> bool {
        match self.state {
            State::Requested { at, seq: s } if s == seq => {
                // Counted from the request: the lease began after it, so this ends first.
                self.state = State::Held {
                    until: at + lease_ms,
                };
                true
            }
            _ => false,
        }
    }

    /// The request `seq` lost: the holder's lease has `pttl_ms` left.
    pub fn refused(&mut self, seq: u64, pttl_ms: f64) {
        if let State::Requested { at, seq: s } = self.state {
            if s == seq {
                self.state = State::Busy {
                    retry_at: at + pttl_ms.max(0.0) + EXPIRY_MARGIN_MS,
                };
            }
        }
    }

    /// The request `seq` failed (Redis error or timeout).
    pub fn failed(&mut self, seq: u64) {
        if let State::Requested { at, seq: s } = self.state {
            if s == seq {
                self.state = State::Busy {
                    retry_at: at + ERROR_RETRY_MS,
                };
            }
        }
    }

    pub fn is_held(&self) -> bool {
        matches!(self.state, State::Held { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(retry_after_ms: f64, request: Option<u64>) -> Gate {
        Gate::Reject {
            retry_after_ms,
            request,
        }
    }

    #[test]
    fn one_request_in_flight_then_the_winner_passes_until_its_lease_ends() {
        let mut l = Lease::new();
        assert_eq!(l.gate(0.0), reject(PENDING_RETRY_MS, Some(1)));
        assert_eq!(
            l.gate(1.0),
            reject(PENDING_RETRY_MS, None),
            "no second request"
        );
        assert_eq!(l.gate(2.0), reject(PENDING_RETRY_MS, None));
        assert!(l.granted(1, 1_000.0));
        assert!(l.is_held());
        assert_eq!(l.gate(3.0), Gate::Pass);
        assert_eq!(l.gate(999.0), Gate::Pass);
        // Counted from the request at 0: expired at 1000, so ask again.
        assert_eq!(l.gate(1_000.0), reject(PENDING_RETRY_MS, Some(2)));
    }

    #[test]
    fn a_loser_waits_for_the_holders_lease_to_expire() {
        let mut l = Lease::new();
        l.gate(100.0);
        l.refused(1, 2_000.0);
        assert!(!l.is_held());
        let retry_at = 100.0 + 2_000.0 + EXPIRY_MARGIN_MS;
        assert_eq!(l.gate(600.0), reject(retry_at - 600.0, None));
        assert_eq!(l.gate(retry_at), reject(PENDING_RETRY_MS, Some(2)));
    }

    #[test]
    fn stale_answers_are_refused_and_errors_back_off() {
        let mut l = Lease::new();
        l.gate(0.0);
        l.failed(1);
        assert_eq!(l.gate(10.0), reject(ERROR_RETRY_MS - 10.0, None));
        assert_eq!(l.gate(ERROR_RETRY_MS), reject(PENDING_RETRY_MS, Some(2)));
        assert!(!l.granted(1, 500.0), "the answer to request 1 is stale");
        l.refused(1, 500.0);
        l.failed(1);
        assert_eq!(
            l.gate(ERROR_RETRY_MS + 1.0),
            reject(PENDING_RETRY_MS, None),
            "still waiting for 2"
        );
        assert!(l.granted(2, 500.0));
        assert!(!l.granted(2, 500.0), "granted once");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Gate(f64),
        Grant(f64),
        Refuse(f64),
        Fail,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0.0..3_000.0f64).prop_map(Op::Gate),
            (1.0..2_000.0f64).prop_map(Op::Grant),
            (0.0..2_000.0f64).prop_map(Op::Refuse),
            Just(Op::Fail),
        ]
    }

    proptest::proptest! {
        /// Against any interleaving of calls and answers: at most one request is in flight
        /// (a new one only after an answer, or after REQUEST_STALE_MS), and a call passes only
        /// under a granted lease that has not run out.
        #[test]
        fn one_request_in_flight_and_passes_only_under_a_live_grant(ops in proptest::collection::vec(op(), 1..80)) {
            let mut l = Lease::new();
            let mut now = 0.0;
            // (seq, sent at) of the request still unanswered, and the live grant's end.
            let mut outstanding: Option<(u64, f64)> = None;
            let mut held_until: Option<f64> = None;
            for op in ops {
                match op {
                    Op::Gate(dt) => {
                        now += dt;
                        match l.gate(now) {
                            Gate::Pass => {
                                let until = held_until.expect("passes only with a grant");
                                proptest::prop_assert!(now < until);
                            }
                            Gate::Reject { retry_after_ms, request } => {
                                proptest::prop_assert!(retry_after_ms >= 0.0);
                                if let Some(seq) = request {
                                    if let Some((_, at)) = outstanding {
                                        proptest::prop_assert!(now - at >= REQUEST_STALE_MS);
                                    }
                                    outstanding = Some((seq, now));
                                    held_until = None;
                                }
                            }
                        }
                    }
                    Op::Grant(ms) => {
                        if let Some((seq, at)) = outstanding.take() {
                            proptest::prop_assert!(l.granted(seq, ms));
                            held_until = Some(at + ms);
                        }
                    }
                    Op::Refuse(pttl) => {
                        if let Some((seq, _)) = outstanding.take() {
                            l.refused(seq, pttl);
                        }
                    }
                    Op::Fail => {
                        if let Some((seq, _)) = outstanding.take() {
                            l.failed(seq);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_request_without_an_answer_is_sent_again() {
        let mut l = Lease::new();
        l.gate(0.0);
        assert_eq!(l.gate(REQUEST_STALE_MS), reject(PENDING_RETRY_MS, Some(2)));
    }
}
