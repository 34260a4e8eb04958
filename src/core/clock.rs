//! Time sources. Core functions take `now` as an argument; only the outer objects read a clock.
//! Times are milliseconds as f64, on a monotonic scale anchored to the Unix epoch at first use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Monotonic milliseconds.
    fn now_ms(&self) -> f64;
}

/// Real time: the wall clock read once, then advanced by `Instant`, so it never goes backwards.
/// This matches the JS layer's `performance.timeOrigin + performance.now()` to within a few ms.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

fn anchor() -> &'static (Instant, f64) {
    static ANCHOR: OnceLock<(Instant, f64)> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0);
        (Instant::now(), wall)
    })
}

impl Clock for SystemClock {
    fn now_ms(&self) -> f64 {
        let (start, wall) = anchor();
        wall + start.elapsed().as_secs_f64() * 1000.0
    }
}

/// A clock that moves only when told to. Shared between JS and Rust, so it is lock-free.
#[derive(Debug)]
pub struct ManualClock {
    bits: AtomicU64,
}

impl ManualClock {
    pub fn new(start_ms: f64) -> Self {
        Self {
            bits: AtomicU64::new(start_ms.to_bits()),
        }
    }

    pub fn advance(&self, ms: f64) -> f64 {
        // A CAS loop: two threads advancing at once must both count.
        let mut cur = self.bits.load(Ordering::Acquire);
        loop {
            let next = (f64::from_bits(cur) + ms).to_bits();
            match self
                .bits
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return f64::from_bits(next),
                Err(seen) => cur = seen,
            }
        }
    }

    pub fn set(&self, ms: f64) {
        self.bits.store(ms.to_bits(), Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Acquire))
    }
}

/// The next number in 0..1 of a xorshift64* sequence (`state` must not be 0). Jitter needs
/// spread, not cryptographic quality; every backoff (breakers, queues, reconnects) uses this.
pub fn unit_random(state: &mut u64) -> f64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000.0);
        assert_eq!(c.now_ms(), 1_000.0);
        assert_eq!(c.advance(250.5), 1_250.5);
        assert_eq!(c.now_ms(), 1_250.5);
        c.set(10.0);
        assert_eq!(c.now_ms(), 10.0);
    }

    #[test]
    fn system_clock_is_monotonic_and_near_wall_time() {
        let a = SystemClock.now_ms();
        let b = SystemClock.now_ms();
        assert!(b >= a);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            * 1000.0;
        assert!((wall - a).abs() < 5_000.0, "wall {wall} vs clock {a}");
    }
}
