//! Sharing breaker state across gateway instances through Redis: the pure parts. Key names,
//! message encoding, the Lua scripts as text, quorum and lease decisions, what a local
//! transition publishes and what a resync adopts. The Redis IO lives in `src/napi/shared/`.

pub mod config;
pub mod keys;
pub mod lease;
pub mod message;
pub mod plan;
pub mod scripts;

pub use config::SharedConfig;
pub use keys::Keys;
pub use lease::{Gate, Lease};
pub use message::{Forced, Message, MessageKind};
pub use plan::{Publish, Remote, RemoteForced, RemoteOpen};
