//! One monitored service: its history, status, uptime accounting, alert cooldowns and the one
//! check it may have in flight. Every method takes `now`; the monitor owns the clock.

use super::config::HealthConfig;
use super::history::{History, Percentiles};
use super::scheduler::Slot;
use super::status::{assess, AlertKind, Alerts, Cooldowns, Level, Status};

/// What one check changed, for the JS layer to turn into events, alerts and breaker actions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckEffect {
    pub status: Status,
    pub previous: Status,
    pub alerts: Alerts,
    pub error_rate_level: Option<Level>,
    pub latency_level: Option<Level>,
}

/// A service's health at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub status: Status,
    pub error_rate: f64,
    /// Percent of the time since registration that the service was not `unhealthy`.
    pub uptime_pct: f64,
    pub latency: Percentiles,
    pub last_check: Option<f64>,
    pub consecutive_failures: u32,
    pub total_checks: u64,
    pub failed_checks: u64,
    pub next_check_at: f64,
    pub registered_at: f64,
    pub in_flight: bool,
}

#[derive(Debug)]
pub struct Service {
    cfg: HealthConfig,
    history: History,
    status: Status,
    consecutive_failures: u32,
    total_checks: u64,
    failed_checks: u64,
    last_check: Option<f64>,
    registered_at: f64,
    /// Unhealthy time before the current unhealthy period, and when that period began.
    unhealthy_ms: f64,
    unhealthy_since: Option<f64>,
    /// Unhealthy since it was last healthy: its next `healthy` is a recovery.
    recovering: bool,
    cooldowns: Cooldowns,
    in_flight: Option<u32>,
    next_token: u32,
    pub(super) slot: Slot,
}

impl Service {
    pub fn new(cfg: HealthConfig, phase_ms: f64, now: f64) -> Self {
        Self {
            history: History::new(
                cfg.history_size,
                cfg.latency_warning_ms,
                cfg.latency_critical_ms,
                cfg.check_timeout_ms,
            ),
            cfg,
            status: Status::Unknown,
            consecutive_failures: 0,
            total_checks: 0,
            failed_checks: 0,
            last_check: None,
            registered_at: now,
            unhealthy_ms: 0.0,
            unhealthy_since: None,
            recovering: false,
            cooldowns: Cooldowns::default(),
            in_flight: None,
            next_token: 1,
            slot: Slot {
                phase_ms,
                next_due: now,
                stamp: 0,
            },
        }
    }

    pub fn config(&self) -> &HealthConfig {
        &self.cfg
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Starts a check: a token to finish it with, or `None` if one is already in flight.
    pub fn begin(&mut self) -> Option<u32> {
        if self.in_flight.is_some() {
            return None;
        }
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1).max(1);
        self.in_flight = Some(token);
        Some(token)
    }

    /// Ends the check that `token` started. A token that is not the one in flight (a late
    /// result after a timeout was recorded) changes nothing.
    pub fn finish(
        &mut self,
        token: u32,
        ok: bool,
        latency_ms: f64,
        now: f64,
    ) -> Option<CheckEffect> {
        if self.in_flight != Some(token) {
            return None;
        }
        self.in_flight = None;
        Some(self.record(ok, latency_ms, now))
    }

    fn record(&mut self, ok: bool, latency_ms: f64, now: f64) -> CheckEffect {
        self.history.push(ok, latency_ms);
        self.total_checks += 1;
        if ok {
            self.consecutive_failures = 0;
        } else {
            self.failed_checks += 1;
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
        self.last_check = Some(now);
        let a = assess(&self.cfg, &self.history, self.consecutive_failures);
        let previous = self.status;
        self.set_status(a.status, now);

        let cooldown = self.cfg.alert_cooldown_ms;
        let mut alerts = Alerts::default();
        let mut fire = |kind: AlertKind, cooldowns: &mut Cooldowns| {
            if cooldowns.try_fire(kind, now, cooldown) {
                alerts.insert(kind);
            }
        };
        // A first check that finds the service healthy is not news.
        if a.status != previous && !(previous == Status::Unknown && a.status == Status::Healthy) {
            fire(AlertKind::StatusChange, &mut self.cooldowns);
        }
        if a.status == Status::Unhealthy {
            self.recovering = true;
        } else if a.status == Status::Healthy && self.recovering {
            self.recovering = false;
            fire(AlertKind::Recovered, &mut self.cooldowns);
        }
        if !ok {
            fire(AlertKind::CheckFailed, &mut self.cooldowns);
        }
        if a.error_rate.is_some() {
            fire(AlertKind::HighErrorRate, &mut self.cooldowns);
        }
        if a.latency.is_some() {
            fire(AlertKind::HighLatency, &mut self.cooldowns);
        }
        CheckEffect {
            status: a.status,
            previous,
            alerts,
            error_rate_level: a.error_rate,
            latency_level: a.latency,
        }
    }

    /// The one place where the status changes, so the unhealthy time is always accounted.
    fn set_status(&mut self, to: Status, now: f64) {
        let from = self.status;
        if from != Status::Unhealthy && to == Status::Unhealthy {
            self.unhealthy_since = Some(now);
        } else if from == Status::Unhealthy && to != Status::Unhealthy {
            if let Some(since) = self.unhealthy_since.take() {
                self.unhealthy_ms += (now - since).max(0.0);
            }
        }
        self.status = to;
    }

    /// Percent of the time since registration that the service was not `unhealthy` (`unknown`
    /// counts as up); 100 at the moment of registration.
    pub fn uptime_pct(&self, now: f64) -> f64 {
        let elapsed = now - self.registered_at;
        if elapsed <= 0.0 {
            return 100.0;
        }
        let down = self.unhealthy_ms + self.unhealthy_since.map_or(0.0, |s| (now - s).max(0.0));
        (100.0 * (elapsed - down) / elapsed).clamp(0.0, 100.0)
    }

    pub fn snapshot(&self, now: f64) -> Snapshot {
        Snapshot {
            status: self.status,
            error_rate: self.history.error_rate(),
            uptime_pct: self.uptime_pct(now),
            latency: self.history.percentiles(),
            last_check: self.last_check,
            consecutive_failures: self.consecutive_failures,
            total_checks: self.total_checks,
            failed_checks: self.failed_checks,
            next_check_at: self.slot.next_due,
            registered_at: self.registered_at,
            in_flight: self.in_flight.is_some(),
        }
    }

    /// Bytes this service holds, on the heap and inline.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.history.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(cfg: HealthConfig) -> Service {
        Service::new(cfg, 0.0, 0.0)
    }

    fn check(s: &mut Service, ok: bool, latency_ms: f64, now: f64) -> CheckEffect {
        let t = s.begin().expect("no check in flight");
        s.finish(t, ok, latency_ms, now).expect("current token")
    }

    fn names(e: &CheckEffect) -> Vec<&'static str> {
        e.alerts.iter().map(AlertKind::as_str).collect()
    }

    #[test]
    fn one_check_at_a_time_and_late_results_change_nothing() {
        let mut s = service(HealthConfig::default());
        let t = s.begin().unwrap();
        assert_eq!(s.begin(), None);
        assert!(s.finish(t, false, 10_000.0, 10.0).is_some());
        // The same token again (a late result) is ignored.
        assert_eq!(s.finish(t, true, 5.0, 11.0), None);
        assert_eq!(s.snapshot(11.0).total_checks, 1);
        let t2 = s.begin().unwrap();
        assert_ne!(t, t2);
    }

    #[test]
    fn uptime_counts_only_unhealthy_time_as_down() {
        let mut s = service(HealthConfig::default());
        assert_eq!(s.uptime_pct(0.0), 100.0);
        check(&mut s, true, 1.0, 100.0);
        for t in [200.0, 300.0, 400.0] {
            check(&mut s, false, 1.0, t);
        }
        // Unhealthy from 200 (the first failure already makes the error rate critical).
        assert_eq!(s.status(), Status::Unhealthy);
        assert_eq!(s.uptime_pct(400.0), 50.0);
        assert_eq!(s.uptime_pct(1_000.0), 20.0);
        // Passing checks dilute the 3 failures: degraded (up again) once the error rate is
        // under 20 %, healthy under 5 %.
        let mut t = 1_000.0;
        let mut up_at = None;
        while s.status() != Status::Healthy {
            t += 100.0;
            check(&mut s, true, 1.0, t);
            if up_at.is_none() && s.status() != Status::Unhealthy {
                up_at = Some(t);
            }
        }
        let down = up_at.unwrap() - 200.0;
        let want = 100.0 * (t + 1_000.0 - down) / (t + 1_000.0);
        assert!((s.uptime_pct(t + 1_000.0) - want).abs() < 1e-9);
    }

    #[test]
    fn alerts_follow_status_and_cooldowns() {
        let cfg = HealthConfig {
            alert_cooldown_ms: 1_000.0,
            history_size: 10,
            ..HealthConfig::default()
        };
        let mut s = service(cfg);
        // First check healthy: no status_change alert.
        let e = check(&mut s, true, 1.0, 0.0);
        assert_eq!((e.previous, e.status), (Status::Unknown, Status::Healthy));
        assert!(names(&e).is_empty());
        // One failure in 2 = 50 %: unhealthy.
        let e = check(&mut s, false, 1.0, 10.0);
        assert_eq!(e.status, Status::Unhealthy);
        assert_eq!(
            names(&e),
            ["status_change", "check_failed", "high_error_rate"]
        );
        assert_eq!(e.error_rate_level, Some(Level::Critical));
        // Within the cooldown: nothing new.
        let e = check(&mut s, false, 1.0, 20.0);
        assert!(names(&e).is_empty(), "{:?}", names(&e));
        // After the cooldown, check_failed and high_error_rate again (no status change).
        let e = check(&mut s, false, 1.0, 1_020.0);
        assert_eq!(names(&e), ["check_failed", "high_error_rate"]);
        // Passing checks push the failures out of the ring of 10. The first one re-fires
        // high_error_rate (its cooldown has passed); 1 failure left is 10 % (degraded:
        // status_change, its cooldown having passed too); none left is healthy
        // (status_change held back by its cooldown, but recovered always fires).
        let effects: Vec<CheckEffect> = (0..10)
            .map(|i| check(&mut s, true, 1.0, 2_100.0 + f64::from(i)))
            .collect();
        assert_eq!(names(&effects[0]), ["high_error_rate"]);
        let e = effects[8];
        assert_eq!(
            (e.previous, e.status),
            (Status::Unhealthy, Status::Degraded)
        );
        assert_eq!(names(&e), ["status_change"]);
        let e = effects[9];
        assert_eq!((e.previous, e.status), (Status::Degraded, Status::Healthy));
        assert_eq!(names(&e), ["recovered"]);
    }

    #[test]
    fn recovered_fires_even_within_the_cooldown() {
        let cfg = HealthConfig {
            alert_cooldown_ms: 1e9,
            history_size: 1,
            ..HealthConfig::default()
        };
        let mut s = service(cfg);
        check(&mut s, true, 1.0, 0.0);
        let e = check(&mut s, false, 1.0, 1.0);
        assert_eq!(
            names(&e),
            ["status_change", "check_failed", "high_error_rate"]
        );
        let e = check(&mut s, true, 1.0, 2.0);
        assert_eq!(names(&e), ["recovered"]);
        let e = check(&mut s, false, 1.0, 3.0);
        assert!(names(&e).is_empty());
        let e = check(&mut s, true, 1.0, 4.0);
        assert_eq!(names(&e), ["recovered"]);
    }

    #[test]
    fn a_full_service_fits_in_16_kb() {
        let mut s = service(HealthConfig::default());
        for i in 0..300 {
            check(&mut s, i % 5 != 0, f64::from(i), f64::from(i));
        }
        assert!(s.memory_bytes() <= 8 * 1024, "{} bytes", s.memory_bytes());
    }
}
