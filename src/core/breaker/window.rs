//! The rolling window: a ring of time buckets with running totals (subtract on evict), and
//! per-bucket latency histograms summed into one window histogram. Every operation is O(1) in
//! the number of calls; the buckets and histograms are allocated on first use, so an idle
//! breaker costs almost nothing.

use hdrhistogram::{Counter, Histogram};

use super::config::WINDOW_BUCKETS;

/// Latencies are recorded in microseconds from 0 to 1 h (longer ones are clamped), with
/// two significant digits: percentiles are within 1 % of the true value.
pub const LATENCY_HIGH_US: u64 = 3_600_000_000;
const LATENCY_SIGFIG: u8 = 2;

pub fn new_histogram<T: Counter>() -> Option<Box<Histogram<T>>> {
    Histogram::new_with_bounds(1, LATENCY_HIGH_US, LATENCY_SIGFIG)
        .ok()
        .map(Box::new)
}

pub fn ms_to_us(ms: f64) -> u64 {
    if ms.is_nan() || ms <= 0.0 {
        0
    } else {
        ((ms * 1000.0).round() as u64).min(LATENCY_HIGH_US)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Success,
    Failure,
    /// A call that exceeded `callTimeoutMs`: a failure that is also counted as a timeout.
    Timeout,
    Rejected,
}

/// Counters over some period. `failures` includes timeouts.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counts {
    pub successes: u64,
    pub failures: u64,
    pub rejected: u64,
    pub timeouts: u64,
    pub slow: u64,
    pub latency_sum_us: u64,
}

impl Counts {
    pub fn add(&mut self, outcome: Outcome, latency_us: u64, slow: bool) {
        match outcome {
            Outcome::Success => self.successes += 1,
            Outcome::Failure => self.failures += 1,
            Outcome::Timeout => {
                self.failures += 1;
                self.timeouts += 1;
            }
            Outcome::Rejected => {
                self.rejected += 1;
                return;
            }
        }
        self.slow += u64::from(slow);
        self.latency_sum_us += latency_us;
    }

    fn subtract(&mut self, o: &Counts) {
        self.successes = self.successes.saturating_sub(o.successes);
        self.failures = self.failures.saturating_sub(o.failures);
        self.rejected = self.rejected.saturating_sub(o.rejected);
        self.timeouts = self.timeouts.saturating_sub(o.timeouts);
        self.slow = self.slow.saturating_sub(o.slow);
        self.latency_sum_us = self.latency_sum_us.saturating_sub(o.latency_sum_us);
    }

    /// Calls that completed (successes and failures): the denominator of the rates.
    pub fn completed(&self) -> u64 {
        self.successes + self.failures
    }

    pub fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.completed())
    }

    pub fn slow_rate(&self) -> f64 {
        ratio(self.slow, self.completed())
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Latency summary in milliseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
}

pub fn summarize<T: Counter>(h: Option<&Histogram<T>>, counts: &Counts) -> Latency {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Latency::default();
    };
    // One pass over the counts for all three quantiles.
    let mut q = h.value_at_quantiles([0.5, 0.95, 0.99]);
    let us = |v: Option<u64>| v.unwrap_or(0) as f64 / 1000.0;
    let (p50, p95, p99) = (us(q.next()), us(q.next()), us(q.next()));
    let completed = counts.completed();
    Latency {
        p50_ms: p50,
        p95_ms: p95,
        p99_ms: p99,
        mean_ms: if completed == 0 {
            0.0
        } else {
            counts.latency_sum_us as f64 / completed as f64 / 1000.0
        },
        max_ms: h.max() as f64 / 1000.0,
    }
}

#[derive(Debug, Default)]
struct Bucket {
    counts: Counts,
    hist: Option<Box<Histogram<u32>>>,
}

impl Bucket {
    fn clear(&mut self) {
        self.counts = Counts::default();
        if let Some(h) = &mut self.hist {
            h.reset();
        }
    }
}

#[derive(Debug)]
pub struct Window {
    bucket_ms: f64,
    /// Empty until the first record.
    buckets: Vec<Bucket>,
    head: usize,
    /// Start time of the newest bucket, aligned to a multiple of `bucket_ms`.
    head_start: f64,
    totals: Counts,
    hist: Option<Box<Histogram<u32>>>,
}

impl Window {
    pub fn new(window_ms: f64) -> Self {
        Self {
            bucket_ms: window_ms / WINDOW_BUCKETS as f64,
            buckets: Vec::new(),
            head: 0,
            head_start: 0.0,
            totals: Counts::default(),
            hist: None,
        }
    }

    fn align(&self, t: f64) -> f64 {
        (t / self.bucket_ms).floor() * self.bucket_ms
    }

    /// Moves the head to the bucket holding `now`, evicting what falls out of the window.
    pub fn advance(&mut self, now: f64) {
        if self.buckets.is_empty() {
            self.head_start = self.align(now);
            return;
        }
        let aligned = self.align(now);
        if aligned <= self.head_start {
            return; // same bucket, or time went backwards: stay put
        }
        let steps = ((aligned - self.head_start) / self.bucket_ms).round();
        if steps >= WINDOW_BUCKETS as f64 {
            self.clear();
            self.head_start = aligned;
            return;
        }
        for _ in 0..steps as usize {
            self.head = (self.head + 1) % WINDOW_BUCKETS;
            let b = &mut self.buckets[self.head];
            self.totals.subtract(&b.counts);
            if let (Some(total), Some(h)) = (&mut self.hist, &b.hist) {
                if !h.is_empty() && total.subtract(&**h).is_err() {
                    // Cannot happen while totals are the sum of the buckets; recover, not panic.
                    total.reset();
                }
            }
            b.clear();
        }
        self.head_start = aligned;
    }

    /// Records an outcome that happened at time `t` (normally now; batched successes carry
    /// their own end time). Outcomes older than the window are ignored.
    pub fn record(&mut self, t: f64, outcome: Outcome, latency_us: u64, slow: bool) {
        // Fast path: `t` falls in the head bucket (no division).
        if t >= self.head_start && t < self.head_start + self.bucket_ms && !self.buckets.is_empty()
        {
            return self.record_at(self.head, outcome, latency_us, slow);
        }
        if self.buckets.is_empty() {
            self.buckets = (0..WINDOW_BUCKETS).map(|_| Bucket::default()).collect();
            self.head = 0;
            self.head_start = self.align(t);
        }
        self.advance(t);
        let back = if t >= self.head_start {
            0
        } else {
            ((self.head_start - self.align(t)) / self.bucket_ms).round() as usize
        };
        if back >= WINDOW_BUCKETS {
            return;
        }
        let idx = (self.head + WINDOW_BUCKETS - back) % WINDOW_BUCKETS;
        self.record_at(idx, outcome, latency_us, slow);
    }

    fn record_at(&mut self, idx: usize, outcome: Outcome, latency_us: u64, slow: bool) {
        let b = &mut self.buckets[idx];
        b.counts.add(outcome, latency_us, slow);
        self.totals.add(outcome, latency_us, slow);
        if outcome != Outcome::Rejected {
            if b.hist.is_none() {
                b.hist = new_histogram();
            }
            if self.hist.is_none() {
                self.hist = new_histogram();
            }
            if let Some(h) = &mut b.hist {
                h.saturating_record(latency_us);
            }
            if let Some(h) = &mut self.hist {
                h.saturating_record(latency_us);
            }
        }
    }

    pub fn clear(&mut self) {
        for b in &mut self.buckets {
            b.clear();
        }
        self.totals = Counts::default();
        if let Some(h) = &mut self.hist {
            h.reset();
        }
    }

    /// The totals as of `now` (advances the window first).
    pub fn totals(&mut self, now: f64) -> Counts {
        self.advance(now);
        self.totals
    }

    pub fn latency(&self) -> Latency {
        summarize(self.hist.as_deref(), &self.totals)
    }

    pub fn window_ms(&self) -> f64 {
        self.bucket_ms * WINDOW_BUCKETS as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> Window {
        Window::new(10_000.0) // buckets of 1 s
    }

    #[test]
    fn idle_window_allocates_nothing() {
        let mut win = w();
        assert!(win.buckets.is_empty() && win.hist.is_none());
        assert_eq!(win.totals(5_000.0), Counts::default());
        assert!(win.buckets.is_empty());
    }

    #[test]
    fn counts_within_the_window_and_evicts_at_bucket_edges() {
        let mut win = w();
        win.record(0.0, Outcome::Failure, 1000, false); // bucket [0, 1000)
        win.record(999.9, Outcome::Success, 1000, false); // same bucket
        win.record(1000.0, Outcome::Success, 1000, false); // bucket [1000, 2000)
        assert_eq!(win.totals(1000.0).completed(), 3);
        // At 9 999.9 the first bucket is still inside the window.
        assert_eq!(win.totals(9_999.9).completed(), 3);
        // At exactly 10 000 the first bucket [0, 1000) falls out; the second stays.
        let c = win.totals(10_000.0);
        assert_eq!((c.successes, c.failures), (1, 0));
        // At 11 000 the second falls out too.
        assert_eq!(win.totals(11_000.0).completed(), 0);
    }

    #[test]
    fn a_long_gap_clears_everything() {
        let mut win = w();
        for i in 0..100 {
            win.record(i as f64 * 10.0, Outcome::Success, 500, false);
        }
        assert_eq!(win.totals(1_000.0).successes, 100);
        assert_eq!(win.totals(1_000_000.0), Counts::default());
        assert_eq!(win.latency(), Latency::default());
    }

    #[test]
    fn late_records_land_in_their_own_bucket_or_are_dropped() {
        let mut win = w();
        win.record(5_000.0, Outcome::Success, 10, false);
        win.record(4_200.0, Outcome::Failure, 10, false); // one bucket back
        win.record(-6_000.0, Outcome::Failure, 10, false); // older than the window: dropped
        assert_eq!(win.totals(5_000.0).failures, 1);
        // The late failure belongs to bucket [4000, 5000), evicted at 14 000.
        assert_eq!(win.totals(13_999.0).failures, 1);
        assert_eq!(win.totals(14_000.0).failures, 0);
        assert_eq!(win.totals(14_000.0).successes, 1);
    }

    #[test]
    fn percentiles_of_a_known_set_and_eviction_of_latency() {
        let mut win = w();
        // 1..=100 ms at t = 0
        for ms in 1..=100u64 {
            win.record(0.0, Outcome::Success, ms * 1000, false);
        }
        let l = win.latency();
        assert!((l.p50_ms - 50.0).abs() <= 0.5, "{l:?}");
        assert!((l.p95_ms - 95.0).abs() <= 1.0, "{l:?}");
        assert!((l.p99_ms - 99.0).abs() <= 1.0, "{l:?}");
        assert!((l.mean_ms - 50.5).abs() < 1e-9, "{l:?}");
        assert!((l.max_ms - 100.0).abs() <= 1.0, "{l:?}");
        // A later bucket of 1 ms calls; once the first bucket leaves, only they remain.
        for _ in 0..10 {
            win.record(5_000.0, Outcome::Success, 1000, false);
        }
        win.advance(10_000.0);
        let l = win.latency();
        assert!((l.p99_ms - 1.0).abs() <= 0.01, "{l:?}");
        assert!((l.max_ms - 1.0).abs() <= 0.01, "{l:?}");
    }

    #[test]
    fn rejected_and_timeouts_are_counted_apart() {
        let mut win = w();
        win.record(0.0, Outcome::Rejected, 0, false);
        win.record(0.0, Outcome::Timeout, 5_000, true);
        let c = win.totals(0.0);
        assert_eq!(
            (c.rejected, c.failures, c.timeouts, c.slow, c.completed()),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(c.failure_rate(), 1.0);
    }

    #[test]
    fn ms_to_us_clamps() {
        assert_eq!(ms_to_us(-5.0), 0);
        assert_eq!(ms_to_us(f64::NAN), 0);
        assert_eq!(ms_to_us(0.0004), 0);
        assert_eq!(ms_to_us(1.5), 1500);
        assert_eq!(ms_to_us(1e12), LATENCY_HIGH_US);
    }
}
