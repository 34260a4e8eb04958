//! One service's recent checks: a ring of the last `historySize` outcomes with running counts
//! (failures, and checks at or over each latency threshold) kept in step on push and evict,
//! and a latency histogram for the reported percentiles.
//!
//! The status rules use the exact counts, so they hold at their boundaries to the microsecond.
//! The reported percentiles come from an HDR histogram (within 1 %). hdrhistogram cannot remove
//! one value, so once the ring is full the histogram is rebuilt from the ring on each check:
//! a clear of its counters plus `historySize` records, about a microsecond at the default size.
//! The histogram's range ends at the check timeout (a slower check has failed by then), which
//! keeps it at about 4.6 KB for the default 10 s instead of 6.7 KB for an hour.

use hdrhistogram::Histogram;

use crate::core::breaker::window::ms_to_us;

const LATENCY_SIGFIG: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    latency_us: u32,
    ok: bool,
}

/// Reported percentiles, in ms; zero with no checks.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug)]
pub struct History {
    /// Grows to `capacity`, then wraps at `head`.
    ring: Vec<Sample>,
    capacity: usize,
    head: usize,
    failures: u32,
    /// Thresholds in µs, and how many samples in the ring are at or over each.
    warning_us: u64,
    critical_us: u64,
    at_warning: u32,
    at_critical: u32,
    /// Allocated at the first check; records clamp at `hist_high_us`.
    hist: Option<Box<Histogram<u16>>>,
    hist_high_us: u64,
    percentiles: Percentiles,
}

/// Latencies are stored as whole microseconds; `ms_to_us` clamps at one hour.
fn to_us(ms: f64) -> u32 {
    u32::try_from(ms_to_us(ms)).unwrap_or(u32::MAX)
}

/// The 1-based rank of the nearest-rank p95 among `n` samples: `ceil(0.95 n)`.
fn p95_rank(n: u32) -> u32 {
    (95 * n).div_ceil(100)
}

impl History {
    /// `highest_ms` bounds the histogram (the check timeout); the ring and the status rules
    /// keep exact latencies up to an hour.
    pub fn new(
        capacity: u32,
        latency_warning_ms: f64,
        latency_critical_ms: f64,
        highest_ms: f64,
    ) -> Self {
        Self {
            ring: Vec::new(),
            capacity: capacity.max(1) as usize,
            head: 0,
            failures: 0,
            warning_us: ms_to_us(latency_warning_ms),
            critical_us: ms_to_us(latency_critical_ms),
            at_warning: 0,
            at_critical: 0,
            hist: None,
            // hdrhistogram needs a range of at least 2 units.
            hist_high_us: ms_to_us(highest_ms).max(2),
            percentiles: Percentiles::default(),
        }
    }

    pub fn len(&self) -> u32 {
        self.ring.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Failed checks over checks in the ring; 0 with none.
    pub fn error_rate(&self) -> f64 {
        if self.ring.is_empty() {
            0.0
        } else {
            f64::from(self.failures) / self.ring.len() as f64
        }
    }

    pub fn percentiles(&self) -> Percentiles {
        self.percentiles
    }

    /// Whether the p95 latency (nearest rank, exact) reaches `latencyWarningMs`.
    pub fn p95_reaches_warning(&self) -> bool {
        self.p95_reaches(self.at_warning)
    }

    /// Whether the p95 latency (nearest rank, exact) reaches `latencyCriticalMs`.
    pub fn p95_reaches_critical(&self) -> bool {
        self.p95_reaches(self.at_critical)
    }

    /// The p95 sample is at or over a threshold exactly when fewer than `rank` samples are
    /// under it, that is when at least `n - rank + 1` samples are at or over it.
    fn p95_reaches(&self, at_or_over: u32) -> bool {
        let n = self.len();
        n > 0 && at_or_over > n - p95_rank(n)
    }

    fn count(&mut self, s: Sample, add: bool) {
        let step = |c: &mut u32| {
            if add {
                *c += 1
            } else {
                *c = c.saturating_sub(1)
            }
        };
        if !s.ok {
            step(&mut self.failures);
        }
        let us = u64::from(s.latency_us);
        if us >= self.warning_us {
            step(&mut self.at_warning);
        }
        if us >= self.critical_us {
            step(&mut self.at_critical);
        }
    }

    /// Records one check, evicting the oldest when the ring is full.
    pub fn push(&mut self, ok: bool, latency_ms: f64) {
        let s = Sample {
            latency_us: to_us(latency_ms),
            ok,
        };
        let evicted = if self.ring.len() < self.capacity {
            self.ring.push(s);
            None
        } else {
            let old = std::mem::replace(&mut self.ring[self.head], s);
            self.head = (self.head + 1) % self.capacity;
            Some(old)
        };
        if let Some(old) = evicted {
            self.count(old, false);
        }
        self.count(s, true);
        if self.hist.is_none() {
            self.hist = Histogram::new_with_bounds(1, self.hist_high_us, LATENCY_SIGFIG)
                .ok()
                .map(Box::new);
        }
        let high = self.hist_high_us;
        let Some(h) = self.hist.as_deref_mut() else {
            return;
        };
        if evicted.is_some() {
            h.reset();
            for x in &self.ring {
                h.saturating_record(u64::from(x.latency_us).min(high));
            }
        } else {
            h.saturating_record(u64::from(s.latency_us).min(high));
        }
        let mut q = h.value_at_quantiles([0.5, 0.95, 0.99]);
        let ms = |v: Option<u64>| v.unwrap_or(0) as f64 / 1000.0;
        self.percentiles = Percentiles {
            p50_ms: ms(q.next()),
            p95_ms: ms(q.next()),
            p99_ms: ms(q.next()),
        };
    }

    /// Bytes this history holds on the heap (for the memory budget and its test).
    pub fn heap_bytes(&self) -> usize {
        let hist = self.hist.as_deref().map_or(0, |h| {
            std::mem::size_of::<Histogram<u16>>() + h.distinct_values() * std::mem::size_of::<u16>()
        });
        self.ring.capacity() * std::mem::size_of::<Sample>() + hist
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 0.01
    }

    #[test]
    fn percentiles_of_a_known_set_are_within_one_percent() {
        let mut h = History::new(100, 1_000.0, 3_000.0, 10_000.0);
        // 1..=100 ms, shuffled so that order does not matter.
        for i in 0..100u32 {
            h.push(true, f64::from((i * 37) % 100 + 1));
        }
        let p = h.percentiles();
        assert!(close(p.p50_ms, 50.0), "{p:?}");
        assert!(close(p.p95_ms, 95.0), "{p:?}");
        assert!(close(p.p99_ms, 99.0), "{p:?}");
    }

    #[test]
    fn the_ring_forgets_the_oldest_checks() {
        let mut h = History::new(4, 100.0, 200.0, 10_000.0);
        for _ in 0..4 {
            h.push(false, 500.0);
        }
        assert_eq!((h.len(), h.failures()), (4, 4));
        assert!(h.p95_reaches_critical());
        for _ in 0..3 {
            h.push(true, 1.0);
        }
        assert_eq!((h.len(), h.failures()), (4, 1));
        assert_eq!(h.error_rate(), 0.25);
        // One slow sample of four is the p95 (rank 4): still critical.
        assert!(h.p95_reaches_critical());
        h.push(true, 1.0);
        assert_eq!(h.failures(), 0);
        assert!(!h.p95_reaches_warning());
        // The histogram was rebuilt from the ring: the old 500 ms samples are gone.
        assert!(close(h.percentiles().p99_ms, 1.0), "{:?}", h.percentiles());
    }

    #[test]
    fn p95_rule_is_exact_at_the_boundary() {
        // 100 samples: the p95 is the 95th smallest, so 6 samples at the threshold reach it
        // and 5 do not.
        let mut h = History::new(100, 1_000.0, 3_000.0, 10_000.0);
        for _ in 0..95 {
            h.push(true, 10.0);
        }
        for _ in 0..4 {
            h.push(true, 1_000.0);
        }
        h.push(true, 999.999);
        assert!(!h.p95_reaches_warning());
        h.push(true, 1_000.0); // evicts a 10 ms sample: 5 at the threshold, 1 just under
        assert!(!h.p95_reaches_warning());
        h.push(true, 1_000.0);
        assert!(h.p95_reaches_warning());
        assert!(!h.p95_reaches_critical());
    }

    #[test]
    fn p95_rank_matches_nearest_rank() {
        assert_eq!(p95_rank(1), 1);
        assert_eq!(p95_rank(20), 19);
        assert_eq!(p95_rank(21), 20);
        assert_eq!(p95_rank(100), 95);
        assert_eq!(p95_rank(10_000), 9_500);
    }

    proptest::proptest! {
        /// The ring's running counts and exact p95 rule against a model that keeps the last
        /// `cap` samples and sorts them; the reported percentiles within 1 % of the model's,
        /// clamped at the histogram's top (4 s here; the rules still see 5 s samples exactly).
        #[test]
        fn matches_a_sorting_model(
            cap in 1u32..40,
            samples in proptest::collection::vec((proptest::bool::ANY, 0u32..5_000_000), 0..150),
        ) {
            let mut h = History::new(cap, 1_000.0, 3_000.0, 4_000.0);
            let mut model: std::collections::VecDeque<(bool, u32)> = Default::default();
            for (ok, us) in samples {
                h.push(ok, f64::from(us) / 1000.0);
                model.push_back((ok, us));
                if model.len() > cap as usize {
                    model.pop_front();
                }
                let n = model.len();
                let failures = model.iter().filter(|(ok, _)| !ok).count();
                proptest::prop_assert_eq!(h.failures() as usize, failures);
                proptest::prop_assert_eq!(h.error_rate(), failures as f64 / n as f64);
                let mut sorted: Vec<u32> = model.iter().map(|(_, us)| *us).collect();
                sorted.sort_unstable();
                let at = |q: f64| f64::from(sorted[((q * n as f64).ceil() as usize).max(1) - 1]) / 1000.0;
                let p95 = at(0.95);
                proptest::prop_assert_eq!(h.p95_reaches_warning(), p95 >= 1_000.0);
                proptest::prop_assert_eq!(h.p95_reaches_critical(), p95 >= 3_000.0);
                let p = h.percentiles();
                for (got, want) in [(p.p50_ms, at(0.5)), (p.p95_ms, p95), (p.p99_ms, at(0.99))] {
                    let want = want.min(4_000.0);
                    proptest::prop_assert!((got - want).abs() <= want * 0.01 + 0.001, "{} vs {}", got, want);
                }
            }
        }
    }

    #[test]
    fn a_full_history_fits_the_memory_budget() {
        let mut h = History::new(100, 1_000.0, 3_000.0, 10_000.0);
        for i in 0..250 {
            h.push(i % 7 != 0, f64::from(i));
        }
        assert!(h.heap_bytes() < 6 * 1024, "{} bytes", h.heap_bytes());
    }
}
