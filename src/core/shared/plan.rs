//! Decisions of the shared state: what a local transition publishes, whether a remote open is
//! adopted (the quorum), what a resync adopts, and how long to wait before reconnecting.

use super::message::Forced;
use crate::core::breaker::{Adopt, Cause, StateKind, Transition};

/// What one local transition tells the fleet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Publish {
    /// This instance opened from its own observations: vote, and open the fleet for `open_ms`
    /// once the quorum is reached. `window_ms` bounds how old the other votes may be.
    Vote {
        open_ms: f64,
        window_ms: f64,
        cause: Cause,
    },
    /// A trial succeeded here: the fleet closes.
    Close,
    /// An operator forced it here. `only_if_missing` (a resync re-publishing a state Redis
    /// lost) never overwrites a key that is there, so a reset made meanwhile wins.
    Forced {
        state: Forced,
        only_if_missing: bool,
    },
    Reset,
}

/// The publication of a transition, or `None` for transitions that stay local: the lazy move to
/// half-open (trials are per instance, gated by the lease) and everything adopted from the fleet
/// (cause `shared_state`, so nothing echoes). `open_until` is the breaker's after the change.
pub fn publication(t: &Transition, open_until: Option<f64>, window_ms: f64) -> Option<Publish> {
    match t.cause {
        Cause::ConsecutiveFailures
        | Cause::FailureRate
        | Cause::SlowCallRate
        | Cause::TrialFailed
        | Cause::OpenFor => {
            let open_ms = open_until? - t.at;
            (open_ms > 0.0).then_some(Publish::Vote {
                open_ms,
                window_ms,
                cause: t.cause,
            })
        }
        Cause::TrialsSucceeded => Some(Publish::Close),
        Cause::ForceOpen => Some(Publish::Forced {
            state: Forced::ForcedOpen,
            only_if_missing: false,
        }),
        Cause::Disable => Some(Publish::Forced {
            state: Forced::Disabled,
            only_if_missing: false,
        }),
        Cause::Reset => Some(Publish::Reset),
        Cause::ResetTimeoutElapsed | Cause::HealthCheckPassed | Cause::SharedState => None,
    }
}

/// Whether a transition ends this instance's claim on the trial lease: anything but the move
/// into half-open that the lease was taken for.
pub fn ends_lease(t: &Transition) -> bool {
    t.to != StateKind::HalfOpen
}

/// Whether a remote open with `votes` instances behind it is adopted under `quorum`.
pub fn quorum_reached(votes: u32, quorum: u32) -> bool {
    votes >= quorum
}

/// The open key as read on a resync.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoteOpen {
    /// PTTL of the open key, on Redis' clock.
    pub remaining_ms: f64,
    pub votes: u32,
}

/// The forced key as read on a resync.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RemoteForced {
    /// No key: never forced, or Redis lost it (a restart without persistence).
    Missing,
    /// The tombstone an operator's reset leaves.
    None,
    Set(Forced),
}

impl RemoteForced {
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            None => RemoteForced::Missing,
            Some(s) => Forced::parse(s).map_or(RemoteForced::None, RemoteForced::Set),
        }
    }
}

/// One breaker's state in Redis, read on (re)connect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Remote {
    pub forced: RemoteForced,
    pub open: Option<RemoteOpen>,
}

/// What a resync does for one breaker, given its local state now.
#[derive(Debug, Clone, PartialEq)]
pub struct Resync {
    pub adopt: Vec<Adopt>,
    /// The local operator state is not in Redis (lost by a restart): publish it again.
    pub republish: Option<Forced>,
}

/// Resync rules: an operator state in Redis wins; the reset tombstone undoes a local operator
/// state; a local operator state Redis has lost is published again (an operator's force must
/// not vanish with a Redis restart); then a fleet open with enough votes is adopted.
pub fn resync(local: StateKind, remote: &Remote, quorum: u32) -> Resync {
    let local_forced = match local {
        StateKind::ForcedOpen => Some(Forced::ForcedOpen),
        StateKind::Disabled => Some(Forced::Disabled),
        _ => None,
    };
    let mut out = Resync {
        adopt: Vec::new(),
        republish: None,
    };
    match (remote.forced, local_forced) {
        (RemoteForced::Set(f), _) => {
            out.adopt.push(match f {
                Forced::ForcedOpen => Adopt::ForcedOpen,
                Forced::Disabled => Adopt::Disabled,
            });
            return out;
        }
        (RemoteForced::None, Some(_)) => out.adopt.push(Adopt::Reset),
        (RemoteForced::Missing, Some(f)) => {
            out.republish = Some(f);
            return out;
        }
        (_, None) => {}
    }
    if let Some(open) = remote.open {
        if open.remaining_ms > 0.0 && quorum_reached(open.votes, quorum) {
            out.adopt.push(Adopt::Open(open.remaining_ms));
        }
    }
    out
}

/// Reconnect backoff: 50 ms doubling to 2 s, each delay drawn in its upper half (`unit` in
/// 0..1), so a fleet that lost Redis together does not reconnect in lockstep.
pub fn reconnect_delay_ms(attempt: u32, unit: f64) -> f64 {
    const BASE_MS: f64 = 50.0;
    const MAX_MS: f64 = 2_000.0;
    let ceiling = (BASE_MS * 2f64.powi(attempt.min(16) as i32)).min(MAX_MS);
    ceiling * (0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use StateKind::*;

    fn t(from: StateKind, to: StateKind, cause: Cause, at: f64) -> Transition {
        Transition {
            from,
            to,
            cause,
            at,
            word: 0,
        }
    }

    #[test]
    fn local_opens_vote_and_everything_adopted_stays_local() {
        let cases: &[(Transition, Option<f64>, Option<Publish>)] = &[
            (
                t(Closed, Open, Cause::ConsecutiveFailures, 100.0),
                Some(1_100.0),
                Some(Publish::Vote {
                    open_ms: 1_000.0,
                    window_ms: 60_000.0,
                    cause: Cause::ConsecutiveFailures,
                }),
            ),
            (
                t(HalfOpen, Open, Cause::TrialFailed, 0.0),
                Some(2_000.0),
                Some(Publish::Vote {
                    open_ms: 2_000.0,
                    window_ms: 60_000.0,
                    cause: Cause::TrialFailed,
                }),
            ),
            (
                t(Closed, Open, Cause::OpenFor, 0.0),
                Some(30.0),
                Some(Publish::Vote {
                    open_ms: 30.0,
                    window_ms: 60_000.0,
                    cause: Cause::OpenFor,
                }),
            ),
            (
                t(HalfOpen, Closed, Cause::TrialsSucceeded, 0.0),
                None,
                Some(Publish::Close),
            ),
            (
                t(Closed, ForcedOpen, Cause::ForceOpen, 0.0),
                None,
                Some(Publish::Forced {
                    state: Forced::ForcedOpen,
                    only_if_missing: false,
                }),
            ),
            (
                t(Open, Disabled, Cause::Disable, 0.0),
                None,
                Some(Publish::Forced {
                    state: Forced::Disabled,
                    only_if_missing: false,
                }),
            ),
            (
                t(Open, Closed, Cause::Reset, 0.0),
                None,
                Some(Publish::Reset),
            ),
            (
                t(Open, HalfOpen, Cause::ResetTimeoutElapsed, 0.0),
                None,
                None,
            ),
            (t(Open, HalfOpen, Cause::HealthCheckPassed, 0.0), None, None),
            (t(Closed, Open, Cause::SharedState, 0.0), Some(50.0), None),
            (t(Open, Closed, Cause::SharedState, 0.0), None, None),
            (t(Closed, ForcedOpen, Cause::SharedState, 0.0), None, None),
        ];
        for (tr, until, want) in cases {
            assert_eq!(publication(tr, *until, 60_000.0), *want, "{tr:?}");
        }
    }

    #[test]
    fn only_the_move_into_half_open_keeps_the_lease() {
        assert!(!ends_lease(&t(
            Open,
            HalfOpen,
            Cause::ResetTimeoutElapsed,
            0.0
        )));
        assert!(ends_lease(&t(
            HalfOpen,
            Closed,
            Cause::TrialsSucceeded,
            0.0
        )));
        assert!(ends_lease(&t(HalfOpen, Open, Cause::TrialFailed, 0.0)));
        assert!(ends_lease(&t(Open, Open, Cause::SharedState, 0.0)));
    }

    #[test]
    fn quorum_arithmetic() {
        assert!(quorum_reached(1, 1));
        assert!(!quorum_reached(1, 2));
        assert!(quorum_reached(2, 2));
        assert!(quorum_reached(5, 2));
    }

    fn remote(forced: RemoteForced, open: Option<(f64, u32)>) -> Remote {
        Remote {
            forced,
            open: open.map(|(remaining_ms, votes)| RemoteOpen {
                remaining_ms,
                votes,
            }),
        }
    }

    #[test]
    fn resync_table() {
        use RemoteForced as R;
        let fo = Forced::ForcedOpen;
        // (local state, Redis, quorum, adopted, re-published)
        type Case = (StateKind, Remote, u32, Vec<Adopt>, Option<Forced>);
        let cases: &[Case] = &[
            // An operator state in Redis wins over everything.
            (
                Closed,
                remote(R::Set(fo), Some((500.0, 3))),
                1,
                vec![Adopt::ForcedOpen],
                None,
            ),
            (
                Disabled,
                remote(R::Set(fo), None),
                1,
                vec![Adopt::ForcedOpen],
                None,
            ),
            (
                Open,
                remote(R::Set(Forced::Disabled), None),
                1,
                vec![Adopt::Disabled],
                None,
            ),
            // The reset tombstone undoes a local operator state, then a fleet open applies.
            (
                ForcedOpen,
                remote(R::None, None),
                1,
                vec![Adopt::Reset],
                None,
            ),
            (
                Disabled,
                remote(R::None, Some((700.0, 1))),
                1,
                vec![Adopt::Reset, Adopt::Open(700.0)],
                None,
            ),
            // Redis lost the operator state: publish it again, adopt nothing.
            (
                ForcedOpen,
                remote(R::Missing, Some((700.0, 1))),
                1,
                vec![],
                Some(fo),
            ),
            // A fleet open is adopted when its votes reach this instance's quorum.
            (
                Closed,
                remote(R::Missing, Some((900.0, 1))),
                1,
                vec![Adopt::Open(900.0)],
                None,
            ),
            (
                HalfOpen,
                remote(R::None, Some((900.0, 2))),
                2,
                vec![Adopt::Open(900.0)],
                None,
            ),
            (
                Closed,
                remote(R::Missing, Some((900.0, 1))),
                2,
                vec![],
                None,
            ),
            (Closed, remote(R::Missing, Some((0.0, 5))), 1, vec![], None),
            (Open, remote(R::Missing, None), 1, vec![], None),
        ];
        for (local, r, quorum, adopt, republish) in cases {
            let got = resync(*local, r, *quorum);
            assert_eq!(
                (&got.adopt, got.republish),
                (adopt, *republish),
                "{local:?} {r:?} q{quorum}"
            );
        }
    }

    #[test]
    fn remote_forced_values() {
        assert_eq!(RemoteForced::parse(None), RemoteForced::Missing);
        assert_eq!(RemoteForced::parse(Some("none")), RemoteForced::None);
        assert_eq!(
            RemoteForced::parse(Some("disabled")),
            RemoteForced::Set(Forced::Disabled)
        );
    }

    #[test]
    fn reconnect_backoff_doubles_to_a_cap_with_jitter_in_the_upper_half() {
        assert_eq!(reconnect_delay_ms(0, 1.0), 50.0);
        assert_eq!(reconnect_delay_ms(0, 0.0), 25.0);
        assert_eq!(reconnect_delay_ms(3, 1.0), 400.0);
        assert_eq!(reconnect_delay_ms(10, 1.0), 2_000.0);
        assert_eq!(reconnect_delay_ms(u32::MAX, 0.0), 1_000.0);
        assert_eq!(reconnect_delay_ms(1, 7.0), 100.0, "unit is clamped");
    }
}
