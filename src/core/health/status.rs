//! The status rules over a service's history, and the alert types with their cooldowns.

use super::config::{HealthConfig, UNHEALTHY_CONSECUTIVE_FAILURES};
use super::history::History;

/// What the API and the JSON report. The order is by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Unknown = 0,
    Healthy = 1,
    Degraded = 2,
    Unhealthy = 3,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Unhealthy => "unhealthy",
        }
    }

    pub fn code(self) -> u32 {
        self as u32
    }
}

/// How far a measure has gone: `None` below the warning level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warning,
    Critical,
}

/// The status and the reasons for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    pub status: Status,
    pub error_rate: Option<Level>,
    pub latency: Option<Level>,
    /// The last `UNHEALTHY_CONSECUTIVE_FAILURES` checks all failed.
    pub failing: bool,
}

/// The status rules, over the checks in the history:
/// - `unknown` before the first check;
/// - `unhealthy` when the error rate reaches `errorRateCritical`, or the p95 latency reaches
///   `latencyCriticalMs`, or the last 3 checks all failed;
/// - `degraded` when the error rate reaches `errorRateWarning` or the p95 latency reaches
///   `latencyWarningMs`;
/// - otherwise `healthy`.
pub fn assess(cfg: &HealthConfig, history: &History, consecutive_failures: u32) -> Assessment {
    if history.is_empty() {
        return Assessment {
            status: Status::Unknown,
            error_rate: None,
            latency: None,
            failing: false,
        };
    }
    let rate = history.error_rate();
    let error_rate = if rate >= cfg.error_rate_critical {
        Some(Level::Critical)
    } else if rate >= cfg.error_rate_warning {
        Some(Level::Warning)
    } else {
        None
    };
    let latency = if history.p95_reaches_critical() {
        Some(Level::Critical)
    } else if history.p95_reaches_warning() {
        Some(Level::Warning)
    } else {
        None
    };
    let failing = consecutive_failures >= UNHEALTHY_CONSECUTIVE_FAILURES;
    let status = match error_rate.max(latency) {
        _ if failing => Status::Unhealthy,
        Some(Level::Critical) => Status::Unhealthy,
        Some(Level::Warning) => Status::Degraded,
        None => Status::Healthy,
    };
    Assessment {
        status,
        error_rate,
        latency,
        failing,
    }
}

/// The alert types, in the order in which one check's alerts are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    StatusChange = 0,
    Recovered = 1,
    CheckFailed = 2,
    HighErrorRate = 3,
    HighLatency = 4,
}

impl AlertKind {
    pub const ALL: [AlertKind; 5] = [
        AlertKind::StatusChange,
        AlertKind::Recovered,
        AlertKind::CheckFailed,
        AlertKind::HighErrorRate,
        AlertKind::HighLatency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::StatusChange => "status_change",
            AlertKind::Recovered => "recovered",
            AlertKind::CheckFailed => "check_failed",
            AlertKind::HighErrorRate => "high_error_rate",
            AlertKind::HighLatency => "high_latency",
        }
    }

    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of alert kinds, as bits.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Alerts(pub u32);

impl Alerts {
    pub fn contains(self, kind: AlertKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn insert(&mut self, kind: AlertKind) {
        self.0 |= kind.bit();
    }

    pub fn iter(self) -> impl Iterator<Item = AlertKind> {
        AlertKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

/// When each alert type last fired for one service.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cooldowns {
    last: [Option<f64>; 5],
}

impl Cooldowns {
    /// Fires `kind` unless it fired less than `cooldown_ms` ago. `recovered` is never held back.
    pub fn try_fire(&mut self, kind: AlertKind, now: f64, cooldown_ms: f64) -> bool {
        let slot = &mut self.last[kind as usize];
        let cooled = match *slot {
            None => true,
            Some(at) => now - at >= cooldown_ms,
        };
        if cooled || kind == AlertKind::Recovered {
            *slot = Some(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HealthConfig {
        HealthConfig::default()
    }

    /// `ok` checks of 10 ms then `bad` failed checks of 10 ms, then `slow` checks of `slow_ms`.
    fn history(ok: u32, bad: u32, slow: u32, slow_ms: f64) -> History {
        let c = cfg();
        let mut h = History::new(
            c.history_size,
            c.latency_warning_ms,
            c.latency_critical_ms,
            c.check_timeout_ms,
        );
        for _ in 0..ok {
            h.push(true, 10.0);
        }
        for _ in 0..bad {
            h.push(false, 10.0);
        }
        for _ in 0..slow {
            h.push(true, slow_ms);
        }
        h
    }

    #[test]
    fn status_rules_at_their_boundaries() {
        let c = cfg();
        // (ok, failed, slow, slow ms, consecutive failures) -> status
        let table: &[(u32, u32, u32, f64, u32, Status)] = &[
            (0, 0, 0, 0.0, 0, Status::Unknown),
            (100, 0, 0, 0.0, 0, Status::Healthy),
            // error rate: 4 % healthy, 5 % degraded, 19 % degraded, 20 % unhealthy
            (96, 4, 0, 0.0, 0, Status::Healthy),
            (95, 5, 0, 0.0, 0, Status::Degraded),
            (81, 19, 0, 0.0, 0, Status::Degraded),
            (80, 20, 0, 0.0, 0, Status::Unhealthy),
            // p95 latency: 5 of 100 slow is under the p95, 6 reach it
            (95, 0, 5, 5_000.0, 0, Status::Healthy),
            (94, 0, 6, 999.999, 0, Status::Healthy),
            (94, 0, 6, 1_000.0, 0, Status::Degraded),
            (94, 0, 6, 2_999.999, 0, Status::Degraded),
            (94, 0, 6, 3_000.0, 0, Status::Unhealthy),
            // consecutive failures: 2 is not enough by itself, 3 is
            (98, 2, 0, 0.0, 2, Status::Healthy),
            (97, 3, 0, 0.0, 3, Status::Unhealthy),
        ];
        for &(ok, bad, slow, ms, consecutive, want) in table {
            let h = history(ok, bad, slow, ms);
            let got = assess(&c, &h, consecutive).status;
            assert_eq!(
                got, want,
                "ok={ok} bad={bad} slow={slow}@{ms} consecutive={consecutive}"
            );
        }
    }

    #[test]
    fn assessment_names_its_reasons() {
        let a = assess(&cfg(), &history(80, 20, 0, 0.0), 0);
        assert_eq!(a.error_rate, Some(Level::Critical));
        assert_eq!(a.latency, None);
        let a = assess(&cfg(), &history(94, 0, 6, 1_500.0), 0);
        assert_eq!(
            (a.status, a.latency),
            (Status::Degraded, Some(Level::Warning))
        );
        let a = assess(&cfg(), &history(97, 3, 0, 0.0), 3);
        assert!(a.failing);
        assert_eq!(a.error_rate, None);
    }

    #[test]
    fn cooldown_is_per_type_and_recovered_always_fires() {
        let mut c = Cooldowns::default();
        assert!(c.try_fire(AlertKind::CheckFailed, 0.0, 1_000.0));
        assert!(!c.try_fire(AlertKind::CheckFailed, 999.0, 1_000.0));
        assert!(c.try_fire(AlertKind::HighLatency, 999.0, 1_000.0));
        assert!(c.try_fire(AlertKind::CheckFailed, 1_000.0, 1_000.0));
        assert!(c.try_fire(AlertKind::Recovered, 1_000.0, 1_000.0));
        assert!(c.try_fire(AlertKind::Recovered, 1_001.0, 1_000.0));
        assert!(c.try_fire(AlertKind::StatusChange, 5.0, 0.0));
        assert!(c.try_fire(AlertKind::StatusChange, 5.0, 0.0));
    }

    #[test]
    fn alert_sets_iterate_in_delivery_order() {
        let mut a = Alerts::default();
        a.insert(AlertKind::HighLatency);
        a.insert(AlertKind::StatusChange);
        a.insert(AlertKind::CheckFailed);
        let names: Vec<_> = a.iter().map(AlertKind::as_str).collect();
        assert_eq!(names, ["status_change", "check_failed", "high_latency"]);
    }
}
