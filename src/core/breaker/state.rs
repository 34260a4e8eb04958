//! Breaker states as a data-carrying enum, and the one table of legal transitions.

/// The state names that the API and the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
    ForcedOpen = 3,
    Disabled = 4,
}

impl StateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Closed => "closed",
            StateKind::Open => "open",
            StateKind::HalfOpen => "half_open",
            StateKind::ForcedOpen => "forced_open",
            StateKind::Disabled => "disabled",
        }
    }

    pub fn code(self) -> u32 {
        self as u32
    }

    /// Whether a call is let through without asking for a trial permit.
    pub fn passes_freely(self) -> bool {
        matches!(self, StateKind::Closed | StateKind::Disabled)
    }
}

/// A half-open trial permit in flight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trial {
    pub id: u32,
    pub issued_at: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Closed,
    Open { opened_at: f64, until: f64 },
    HalfOpen { trials: Vec<Trial>, successes: u32 },
    ForcedOpen,
    Disabled,
}

impl State {
    pub fn kind(&self) -> StateKind {
        match self {
            State::Closed => StateKind::Closed,
            State::Open { .. } => StateKind::Open,
            State::HalfOpen { .. } => StateKind::HalfOpen,
            State::ForcedOpen => StateKind::ForcedOpen,
            State::Disabled => StateKind::Disabled,
        }
    }
}

/// Why a transition happened; reported in the `stateChange` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Rule A: `failureThreshold` consecutive failures.
    ConsecutiveFailures,
    /// Rule B: failure rate over the window.
    FailureRate,
    /// Rule C: slow-call rate over the window.
    SlowCallRate,
    /// A half-open trial failed.
    TrialFailed,
    /// The open time elapsed and a call arrived.
    ResetTimeoutElapsed,
    /// `successThreshold` trials succeeded.
    TrialsSucceeded,
    /// `openFor(ms, reason)`.
    OpenFor,
    ForceOpen,
    Disable,
    Reset,
    /// A health check passed while the circuit was open (the health monitor's link).
    HealthCheckPassed,
    /// Adopted from the fleet through the shared state (Redis): another instance opened,
    /// closed, forced or reset this breaker. Such transitions are never published back.
    SharedState,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::ConsecutiveFailures => "consecutive_failures",
            Cause::FailureRate => "failure_rate",
            Cause::SlowCallRate => "slow_call_rate",
            Cause::TrialFailed => "trial_failed",
            Cause::ResetTimeoutElapsed => "reset_timeout_elapsed",
            Cause::TrialsSucceeded => "trials_succeeded",
            Cause::OpenFor => "open_for",
            Cause::ForceOpen => "force_open",
            Cause::Disable => "disable",
            Cause::Reset => "reset",
            Cause::HealthCheckPassed => "health_check_passed",
            Cause::SharedState => "shared_state",
        }
    }
}

/// What changed: returned by the core under its lock, turned into events after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub from: StateKind,
    pub to: StateKind,
    pub cause: Cause,
    pub at: f64,
    /// The state word after the change (epoch and state).
    pub word: u32,
}

/// The table of legal transitions. Automatic causes move along the closed → open →
/// half-open → closed cycle only; manual controls may move from any state to their target, and
/// so may the fleet's shared state (but never into half-open: trials are decided locally).
pub fn is_legal(from: StateKind, to: StateKind, cause: Cause) -> bool {
    use StateKind::*;
    match cause {
        Cause::ConsecutiveFailures | Cause::FailureRate | Cause::SlowCallRate => {
            from == Closed && to == Open
        }
        Cause::TrialFailed => from == HalfOpen && to == Open,
        Cause::ResetTimeoutElapsed | Cause::HealthCheckPassed => from == Open && to == HalfOpen,
        Cause::TrialsSucceeded => from == HalfOpen && to == Closed,
        Cause::OpenFor => to == Open,
        Cause::ForceOpen => to == ForcedOpen,
        Cause::Disable => to == Disabled,
        Cause::Reset => to == Closed,
        Cause::SharedState => matches!(to, Open | Closed | ForcedOpen | Disabled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StateKind::*;

    #[test]
    fn transition_table() {
        let all = [Closed, Open, HalfOpen, ForcedOpen, Disabled];
        // (cause, from, to, legal)
        let table: &[(Cause, StateKind, StateKind, bool)] = &[
            (Cause::ConsecutiveFailures, Closed, Open, true),
            (Cause::ConsecutiveFailures, HalfOpen, Open, false),
            (Cause::ConsecutiveFailures, Disabled, Open, false),
            (Cause::FailureRate, Closed, Open, true),
            (Cause::SlowCallRate, ForcedOpen, Open, false),
            (Cause::TrialFailed, HalfOpen, Open, true),
            (Cause::TrialFailed, Closed, Open, false),
            (Cause::ResetTimeoutElapsed, Open, HalfOpen, true),
            (Cause::ResetTimeoutElapsed, ForcedOpen, HalfOpen, false),
            (Cause::TrialsSucceeded, HalfOpen, Closed, true),
            (Cause::TrialsSucceeded, Open, Closed, false),
            (Cause::HealthCheckPassed, Open, HalfOpen, true),
            (Cause::HealthCheckPassed, Closed, HalfOpen, false),
        ];
        for (cause, from, to, legal) in table {
            assert_eq!(
                is_legal(*from, *to, *cause),
                *legal,
                "{cause:?} {from:?} -> {to:?}"
            );
        }
        for from in all {
            assert!(is_legal(from, Closed, Cause::Reset));
            assert!(is_legal(from, ForcedOpen, Cause::ForceOpen));
            assert!(is_legal(from, Disabled, Cause::Disable));
            assert!(is_legal(from, Open, Cause::OpenFor));
            assert!(!is_legal(from, HalfOpen, Cause::Reset));
            for to in [Open, Closed, ForcedOpen, Disabled] {
                assert!(is_legal(from, to, Cause::SharedState), "{from:?} -> {to:?}");
            }
            assert!(!is_legal(from, HalfOpen, Cause::SharedState));
        }
    }

    #[test]
    fn names_are_the_api_strings() {
        assert_eq!(
            [Closed, Open, HalfOpen, ForcedOpen, Disabled].map(StateKind::as_str),
            ["closed", "open", "half_open", "forced_open", "disabled"]
        );
    }
}
