//! Breakwater: circuit breakers whose state and statistics live in Rust.
//! `core` is pure Rust and never sees Node; `napi` is the thin binding layer.
#![deny(clippy::all)]

pub mod core;

#[cfg(feature = "napi")]
mod napi;
