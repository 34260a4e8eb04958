//! The pure Rust core: no napi imports here (CI greps for them).
pub mod breaker;
pub mod clock;
pub mod env;
pub mod error;
pub mod fallback;
pub mod health;
pub mod options;
pub mod queue;
pub mod rng;
pub mod shared;
