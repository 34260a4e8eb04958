//! Key and channel names under the configured prefix. Every key of a breaker starts with
//! `{prefix}{name}:`, so a fleet's keys can be listed (and cleaned) by prefix.

/// The Redis keys of one breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// JSON `{instance, cause, ms, votes}`, with `PX` = the open time: its PTTL is the time the
    /// fleet stays open, on Redis' clock.
    pub open: String,
    /// `forced_open`, `disabled`, or `none` after a reset (a tombstone, so that a missing key
    /// means "Redis lost it" rather than "an operator reset it"). No TTL.
    pub forced: String,
    /// The fleet-wide trial lease: the holder's instance id, `SET NX PX`.
    pub lease: String,
    /// Sorted set of instance ids scored by Redis `TIME` in ms: who saw failures lately.
    pub failing: String,
}

impl Keys {
    pub fn new(prefix: &str, name: &str) -> Self {
        let base = format!("{prefix}{name}");
        Self {
            open: format!("{base}:open"),
            forced: format!("{base}:forced"),
            lease: format!("{base}:lease"),
            failing: format!("{base}:failing"),
        }
    }
}

/// The one pub/sub channel of a fleet.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sit_under_the_prefix_and_the_name() {
        let k = Keys::new("breakwater:", "openai_api");
        assert_eq!(k.open, "breakwater:openai_api:open");
        assert_eq!(k.forced, "breakwater:openai_api:forced");
        assert_eq!(k.lease, "breakwater:openai_api:lease");
        assert_eq!(k.failing, "breakwater:openai_api:failing");
        assert_eq!(channel("breakwater:"), "breakwater:events");
        assert_eq!(Keys::new("", "a").open, "a:open");
    }
}
