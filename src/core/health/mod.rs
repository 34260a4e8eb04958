//! The health monitor's core: every service's history, status and alert decisions, and the
//! schedule of checks. The checks themselves are user code and run in JS; this side decides
//! what is due and when, and what each result means. Every method takes `now`.

pub mod config;
pub mod history;
pub mod scheduler;
pub mod service;
pub mod status;

use std::collections::BTreeMap;

pub use config::HealthConfig;
use scheduler::{next_slot, stagger_phase, Scheduler};
pub use service::{CheckEffect, Service, Snapshot};
pub use status::{AlertKind, Alerts, Level, Status};

/// The counts of `getHealthSummary()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub status: Status,
    pub total: u32,
    pub healthy: u32,
    pub degraded: u32,
    pub unhealthy: u32,
    pub unknown: u32,
}

/// The overall status: `unhealthy` if any service is, `degraded` if any is, else `healthy`
/// (with no services, or only `unknown` ones, too).
pub fn overall(statuses: impl IntoIterator<Item = Status>) -> Summary {
    let mut s = Summary {
        status: Status::Healthy,
        total: 0,
        healthy: 0,
        degraded: 0,
        unhealthy: 0,
        unknown: 0,
    };
    for st in statuses {
        s.total += 1;
        match st {
            Status::Healthy => s.healthy += 1,
            Status::Degraded => s.degraded += 1,
            Status::Unhealthy => s.unhealthy += 1,
            Status::Unknown => s.unknown += 1,
        }
    }
    s.status = if s.unhealthy > 0 {
        Status::Unhealthy
    } else if s.degraded > 0 {
        Status::Degraded
    } else {
        Status::Healthy
    };
    s
}

#[derive(Debug, Default)]
pub struct Monitor {
    /// By id; ids are never reused, so a late result can never land on another service.
    services: BTreeMap<u32, Service>,
    next_id: u32,
    /// Registrations so far: the index into the stagger sequence.
    registrations: u64,
    scheduler: Scheduler,
}

impl Monitor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service. Its first check is due `phase` after now (the first service's phase is
    /// 0), then every `checkIntervalMs`.
    pub fn register(&mut self, cfg: HealthConfig, now: f64) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = self.next_id;
        let phase = stagger_phase(self.registrations, cfg.check_interval_ms);
        self.registrations += 1;
        let mut svc = Service::new(cfg, phase, now);
        self.scheduler.schedule(id, &mut svc.slot, now + phase);
        self.services.insert(id, svc);
        id
    }

    /// Removes a service; its heap entries go stale and are dropped when they surface.
    pub fn unregister(&mut self, id: u32) -> bool {
        self.services.remove(&id).is_some()
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    pub fn service(&self, id: u32) -> Option<&Service> {
        self.services.get(&id)
    }

    /// Starts the schedule afresh at `now`: each service's next check is due its phase after
    /// now, so a start after a long pause does not fire every overdue check at once.
    pub fn restart_schedule(&mut self, now: f64) {
        self.scheduler.clear();
        for (id, svc) in self.services.iter_mut() {
            let due = now + svc.slot.phase_ms;
            self.scheduler.schedule(*id, &mut svc.slot, due);
        }
    }

    /// The checks due at `now`, as `(id, token)`, each now in flight and rescheduled to its next
    /// grid slot. A service whose previous check is still in flight skips this slot: checks of
    /// one service never overlap, and a slow service is not checked back to back.
    pub fn take_due(&mut self, now: f64) -> Vec<(u32, u32)> {
        self.scheduler.taken_at(now);
        let mut out = Vec::new();
        while let Some((id, stamp, due)) = self.scheduler.pop_due(now) {
            let Some(svc) = self.services.get_mut(&id) else {
                continue;
            };
            if svc.slot.stamp != stamp {
                continue;
            }
            let next = next_slot(due, svc.config().check_interval_ms, now);
            self.scheduler.schedule(id, &mut svc.slot, next);
            if let Some(token) = svc.begin() {
                out.push((id, token));
            }
        }
        out
    }

    /// When the driver should next call `take_due`, or `None` with no services.
    pub fn next_wake(&mut self) -> Option<f64> {
        let services = &self.services;
        self.scheduler
            .next_wake(|id, stamp| services.get(&id).is_some_and(|s| s.slot.stamp == stamp))
    }

    /// Starts a check outside the schedule: a token, or `None` if the service is unknown or
    /// already has a check in flight.
    pub fn begin(&mut self, id: u32) -> Option<u32> {
        self.services.get_mut(&id)?.begin()
    }

    /// Records the result of the check that `token` started; `None` if it is not current.
    pub fn finish(
        &mut self,
        id: u32,
        token: u32,
        ok: bool,
        latency_ms: f64,
        now: f64,
    ) -> Option<CheckEffect> {
        self.services
            .get_mut(&id)?
            .finish(token, ok, latency_ms, now)
    }

    pub fn snapshot(&self, id: u32, now: f64) -> Option<Snapshot> {
        self.services.get(&id).map(|s| s.snapshot(now))
    }

    /// Every service's snapshot, in registration order.
    pub fn snapshots(&self, now: f64) -> impl Iterator<Item = (u32, Snapshot)> + '_ {
        self.services
            .iter()
            .map(move |(id, s)| (*id, s.snapshot(now)))
    }

    pub fn summary(&self) -> Summary {
        overall(self.services.values().map(Service::status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(interval_ms: f64) -> HealthConfig {
        HealthConfig {
            check_interval_ms: interval_ms,
            ..HealthConfig::default()
        }
    }

    fn ids(due: &[(u32, u32)]) -> Vec<u32> {
        due.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn checks_fall_due_on_a_staggered_grid() {
        let mut m = Monitor::new();
        let a = m.register(cfg(1_000.0), 0.0);
        let b = m.register(cfg(1_000.0), 0.0);
        // a's phase is 0, b's is 618.03...
        assert_eq!(m.next_wake(), Some(0.0));
        let due = m.take_due(0.0);
        assert_eq!(ids(&due), [a]);
        for (id, token) in due {
            m.finish(id, token, true, 1.0, 0.0);
        }
        let wake = m.next_wake().unwrap();
        assert!((wake - 618.034).abs() < 0.001, "{wake}");
        assert_eq!(ids(&m.take_due(wake)), [b]);
        assert_eq!(m.snapshot(a, 0.0).unwrap().next_check_at, 1_000.0);
    }

    #[test]
    fn a_service_in_flight_skips_its_slot() {
        let mut m = Monitor::new();
        let a = m.register(cfg(1_000.0), 0.0);
        let (_, token) = m.take_due(0.0)[0];
        // Still in flight at 1000: skipped, and rescheduled to 2000.
        assert!(m.take_due(1_000.0).is_empty());
        assert_eq!(m.snapshot(a, 1_000.0).unwrap().next_check_at, 2_000.0);
        assert!(m.finish(a, token, true, 1_500.0, 1_500.0).is_some());
        assert!(m.take_due(1_999.0).is_empty());
        assert_eq!(ids(&m.take_due(2_000.0)), [a]);
    }

    #[test]
    fn missed_slots_are_skipped_not_caught_up() {
        let mut m = Monitor::new();
        let a = m.register(cfg(1_000.0), 0.0);
        let (_, t) = m.take_due(0.0)[0];
        m.finish(a, t, true, 1.0, 0.0);
        // Ten intervals later, one check, and the next is on the original grid.
        assert_eq!(ids(&m.take_due(10_500.0)), [a]);
        assert_eq!(m.snapshot(a, 10_500.0).unwrap().next_check_at, 11_000.0);
    }

    #[test]
    fn explicit_checks_do_not_overlap_scheduled_ones() {
        let mut m = Monitor::new();
        let a = m.register(cfg(1_000.0), 0.0);
        let t = m.begin(a).unwrap();
        assert_eq!(m.begin(a), None);
        assert!(m.take_due(0.0).is_empty());
        m.finish(a, t, true, 1.0, 0.0);
        assert!(m.begin(a).is_some());
        assert_eq!(m.begin(999), None);
    }

    #[test]
    fn unregistered_services_leave_the_schedule() {
        let mut m = Monitor::new();
        let a = m.register(cfg(1_000.0), 0.0);
        let b = m.register(cfg(1_000.0), 0.0);
        assert!(m.unregister(a));
        assert!(!m.unregister(a));
        assert_eq!(ids(&m.take_due(700.0)), [b]);
        assert!(m.finish(a, 1, true, 1.0, 700.0).is_none());
        assert!(m.unregister(b));
        assert_eq!(m.next_wake(), None);
        // Ids are not reused.
        assert!(m.register(cfg(1_000.0), 0.0) > b);
    }

    #[test]
    fn restart_schedule_re_anchors_every_service() {
        let mut m = Monitor::new();
        let a = m.register(cfg(1_000.0), 0.0);
        let b = m.register(cfg(1_000.0), 0.0);
        m.restart_schedule(50_000.0);
        assert_eq!(m.snapshot(a, 0.0).unwrap().next_check_at, 50_000.0);
        let nb = m.snapshot(b, 0.0).unwrap().next_check_at;
        assert!((nb - 50_618.034).abs() < 0.001, "{nb}");
        assert_eq!(ids(&m.take_due(50_000.0)), [a]);
    }

    #[test]
    fn a_thousand_services_are_checked_evenly_through_the_interval() {
        let mut m = Monitor::new();
        for _ in 0..1_000 {
            m.register(cfg(1_000.0), 0.0);
        }
        // Drive like the JS layer: wake, take, finish at once.
        let mut now = 0.0;
        let mut wakes = 0;
        let mut per_wake_max = 0;
        let mut checks = 0;
        while now < 10_000.0 {
            let due = m.take_due(now);
            per_wake_max = per_wake_max.max(due.len());
            checks += due.len();
            for (id, token) in due {
                m.finish(id, token, true, 1.0, now);
            }
            wakes += 1;
            now = m.next_wake().unwrap();
        }
        // Every slot in [0, 10 s) ran, except those merged into a wake-up at or after 10 s
        // (at most MIN_TICK_MS worth: 25 of the 1 000 per second).
        assert!((9_975..=10_000).contains(&checks), "{checks} checks");
        // Wake-ups are merged to at most one per MIN_TICK_MS (25 ms: 40 a second), and no
        // wake-up runs more than a few percent of the services.
        assert!(wakes <= 401, "{wakes} wake-ups");
        assert!(per_wake_max <= 40, "{per_wake_max} checks in one wake-up");
    }

    #[test]
    fn summary_status_is_the_worst_known_status() {
        use Status::*;
        assert_eq!(overall([]).status, Healthy);
        assert_eq!(overall([Unknown, Unknown]).status, Healthy);
        assert_eq!(overall([Healthy, Degraded, Unknown]).status, Degraded);
        let s = overall([Healthy, Degraded, Unhealthy, Unknown, Healthy]);
        assert_eq!(
            (
                s.status,
                s.total,
                s.healthy,
                s.degraded,
                s.unhealthy,
                s.unknown
            ),
            (Unhealthy, 5, 2, 1, 1, 1)
        );
    }
}
