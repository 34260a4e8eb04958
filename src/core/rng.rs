//! The random source for jitter (breaker open times, queue retries, reconnect backoff):
//! xorshift64*, which needs spread, not cryptographic quality.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

/// splitmix64 of a process-wide counter mixed with the time: every `Jitter::new()` differs.
fn fresh_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = COUNTER
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(time ^ (u64::from(std::process::id()) << 32));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Jitter {
    pub fn new() -> Self {
        Self::from_seed(fresh_seed())
    }

    /// A fixed sequence, for tests.
    pub fn from_seed(seed: u64) -> Self {
        Self { state: seed | 1 }
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_in_range_and_spread() {
        let mut j = Jitter::from_seed(42);
        let xs: Vec<f64> = (0..10_000).map(|_| j.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert_ne!(Jitter::new().unit(), Jitter::new().unit());
    }
}
