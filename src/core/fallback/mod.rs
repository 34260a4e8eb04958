//! Fallback: the configuration shared by `FallbackHandler`, `FallbackCache` and
//! `RequestQueue`, and the response cache. The queue lives in `core::queue`.

pub mod cache;
pub mod config;

pub use cache::{Cache, CacheLimits, CacheStats, Hit, SetOutcome};
pub use config::{FallbackConfig, QueueConfig};
