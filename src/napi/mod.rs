//! The thin binding layer: conversions between JS values and the core, and error mapping.
//! No breaker logic lives here.

mod breaker;
mod clock;
mod env;
mod error;
mod options;
mod page;
mod shared;
mod table;
