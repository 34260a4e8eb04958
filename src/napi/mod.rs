//! The thin binding layer: conversions between JS values and the core, and error mapping.
//! No breaker logic lives here.

mod breaker;
mod clock;
mod env;
mod error;
mod fallback;
mod health;
mod options;
mod page;
mod queue;
mod queue_redis;
mod shared;
mod table;
