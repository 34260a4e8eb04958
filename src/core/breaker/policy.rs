//! When a closed circuit opens: rules A (consecutive failures), B (failure rate) and
//! C (slow-call rate), kept apart from the state machine.

use super::config::BreakerConfig;
use super::state::Cause;
use super::window::Counts;

pub fn should_open(
    cfg: &BreakerConfig,
    consecutive_failures: u32,
    window: &Counts,
) -> Option<Cause> {
    if consecutive_failures >= cfg.failure_threshold {
        return Some(Cause::ConsecutiveFailures);
    }
    let volume = window.completed();
    if volume < u64::from(cfg.min_throughput) {
        return None;
    }
    if window.failure_rate() >= cfg.failure_rate_threshold {
        return Some(Cause::FailureRate);
    }
    match cfg.slow_call {
        Some(s) if window.slow_rate() >= s.rate_threshold => Some(Cause::SlowCallRate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::SlowCall;
    use super::*;

    fn counts(successes: u64, failures: u64, slow: u64) -> Counts {
        Counts {
            successes,
            failures,
            slow,
            ..Counts::default()
        }
    }

    #[test]
    fn rules_at_their_boundaries() {
        // 5 in a row; 50 % of at least 10; 80 % slow
        let cfg = BreakerConfig {
            slow_call: Some(SlowCall {
                duration_ms: 100.0,
                rate_threshold: 0.8,
            }),
            ..BreakerConfig::default()
        };
        let cases: &[(u32, Counts, Option<Cause>)] = &[
            (4, counts(0, 4, 0), None),
            (5, counts(0, 5, 0), Some(Cause::ConsecutiveFailures)),
            (1, counts(5, 4, 0), None), // 9 calls: below min throughput
            (1, counts(5, 5, 0), Some(Cause::FailureRate)), // exactly 50 % of 10
            (1, counts(6, 4, 0), None), // 40 %
            (0, counts(10, 0, 8), Some(Cause::SlowCallRate)), // exactly 80 % slow
            (0, counts(10, 0, 7), None),
            (0, counts(5, 0, 5), None), // slow, but below volume
        ];
        for (consecutive, c, expected) in cases {
            assert_eq!(
                should_open(&cfg, *consecutive, c),
                *expected,
                "{consecutive} {c:?}"
            );
        }
    }
}
