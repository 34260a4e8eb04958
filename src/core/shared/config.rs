//! `connectShared` options: defaults and validation (one `ERR_INVALID_CONFIG` naming every
//! field). The URL is checked for its scheme here; the binding parses the rest with the client.

use crate::core::error::{ConfigIssue, Result};
use crate::core::options::{Options, Value};

pub const DEFAULT_KEY_PREFIX: &str = "breakwater:";
pub const DEFAULT_QUORUM: u32 = 1;
pub const DEFAULT_COMMAND_TIMEOUT_MS: f64 = 500.0;
/// The most instances a quorum may ask for.
pub const MAX_QUORUM: u32 = 1_000;
/// A command timeout longer than this would leave a stalled Redis undetected for too long.
pub const MAX_COMMAND_TIMEOUT_MS: f64 = 60_000.0;

const CONTEXT: &str = "shared state options";
const KNOWN: &[&str] = &[
    "redisUrl",
    "keyPrefix",
    "instanceId",
    "quorum",
    "commandTimeoutMs",
];
const SCHEMES: &[&str] = &["redis://", "unix://", "redis+unix://"];

#[derive(Debug, Clone, PartialEq)]
pub struct SharedConfig {
    pub redis_url: String,
    pub key_prefix: String,
    pub instance_id: String,
    /// Instances that must have seen failures within the window before an open is shared.
    pub quorum: u32,
    pub command_timeout_ms: f64,
}

impl SharedConfig {
    /// Validates the user's options; `default_instance_id` (the host layer's
    /// `<hostname>-<pid>-<random>`) applies when `instanceId` is not given.
    pub fn resolve(entries: Vec<(String, Value)>, default_instance_id: &str) -> Result<Self> {
        let mut o = Options::new(CONTEXT, entries);
        let redis_url = redis_url_option(&mut o);
        let key_prefix = o.text("keyPrefix", 1, 256, false);
        let instance_id = o.text("instanceId", 1, 128, false);
        let quorum = o.count("quorum", 1, MAX_QUORUM);
        let command_timeout_ms = command_timeout_option(&mut o);
        o.finish(KNOWN)?;
        Ok(Self {
            // `finish` reported a missing URL, so it is present here.
            redis_url: redis_url.unwrap_or_default(),
            key_prefix: key_prefix.unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_string()),
            instance_id: instance_id.unwrap_or_else(|| default_instance_id.to_string()),
            quorum: quorum.unwrap_or(DEFAULT_QUORUM),
            command_timeout_ms: command_timeout_ms.unwrap_or(DEFAULT_COMMAND_TIMEOUT_MS),
        })
    }

    /// How long establishing a connection may take: twice a command, and at least a second.
    pub fn connect_timeout_ms(&self) -> f64 {
        (2.0 * self.command_timeout_ms).max(1_000.0)
    }
}

/// The required `redisUrl` option: a redis:// or unix:// URL. Shared by `connectShared` and the
/// Redis queue's `queue` option.
pub fn redis_url_option(o: &mut Options) -> Option<String> {
    if !o.given("redisUrl") {
        o.issue(
            "redisUrl",
            "undefined".into(),
            "a redis:// or unix:// URL (required)",
        );
    }
    o.text("redisUrl", 1, 4_096, false).and_then(|url| {
        if SCHEMES.iter().any(|s| url.starts_with(s)) {
            Some(url)
        } else {
            o.issue(
                "redisUrl",
                format!("{:?}", redact_url(&url)),
                "a redis:// or unix:// URL (rediss:// needs TLS, which this build leaves out)",
            );
            None
        }
    })
}

/// The optional `commandTimeoutMs` option: greater than 0 and at most `MAX_COMMAND_TIMEOUT_MS`.
pub fn command_timeout_option(o: &mut Options) -> Option<f64> {
    o.duration("commandTimeoutMs", false, false).and_then(|ms| {
        if ms <= MAX_COMMAND_TIMEOUT_MS {
            Some(ms)
        } else {
            o.issue(
                "commandTimeoutMs",
                crate::core::options::fmt_num(ms),
                format!(
                    "a number of milliseconds greater than 0 and at most {MAX_COMMAND_TIMEOUT_MS}"
                ),
            );
            None
        }
    })
}

/// The URL with its password replaced by `***`, for messages and events.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    let redacted = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        None => "***".to_string(),
    };
    format!("{}{}{}", &url[..scheme_end], redacted, &rest[at..])
}

/// An issue about the URL that does not echo its password.
pub fn url_issue(url: &str, expected: impl Into<String>) -> ConfigIssue {
    ConfigIssue::new("redisUrl", format!("{:?}", redact_url(url)), expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::Error;

    fn entries(list: &[(&str, Value)]) -> Vec<(String, Value)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn defaults_fill_every_gap() {
        let c = SharedConfig::resolve(
            entries(&[("redisUrl", Value::Text("redis://127.0.0.1:6379".into()))]),
            "host-1-abc",
        )
        .unwrap();
        assert_eq!(
            c,
            SharedConfig {
                redis_url: "redis://127.0.0.1:6379".into(),
                key_prefix: DEFAULT_KEY_PREFIX.into(),
                instance_id: "host-1-abc".into(),
                quorum: DEFAULT_QUORUM,
                command_timeout_ms: DEFAULT_COMMAND_TIMEOUT_MS,
            }
        );
        assert_eq!(c.connect_timeout_ms(), 1_000.0);
    }

    #[test]
    fn every_bad_field_is_named_in_one_error() {
        let err = SharedConfig::resolve(
            entries(&[
                ("redisUrl", Value::Text("http://x".into())),
                ("keyPrefix", Value::Text(String::new())),
                ("instanceId", Value::Number(3.0)),
                ("quorum", Value::Number(0.0)),
                ("commandTimeoutMs", Value::Number(120_000.0)),
                ("qourum", Value::Number(2.0)),
            ]),
            "d",
        )
        .unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_CONFIG");
        let Error::InvalidConfig { issues, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(issues.len(), 6, "{err}");
        let msg = err.to_string();
        for needle in [
            "Invalid shared state options",
            "redisUrl = \"http://x\"",
            "keyPrefix = \"\"",
            "instanceId = 3",
            "quorum = 0 (expected an integer from 1 to 1000)",
            "commandTimeoutMs = 120000",
            "did you mean \"quorum\"",
        ] {
            assert!(msg.contains(needle), "{needle} in {msg}");
        }
    }

    #[test]
    fn the_url_is_required() {
        let msg = SharedConfig::resolve(Vec::new(), "d")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("redisUrl = undefined"), "{msg}");
    }

    #[test]
    fn passwords_never_appear_in_messages() {
        assert_eq!(
            redact_url("redis://user:s3cret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("redis://:s3cret@host"), "redis://:***@host");
        assert_eq!(redact_url("redis://tok@host"), "redis://***@host");
        assert_eq!(
            redact_url("redis://host:1/0?a=b@c"),
            "redis://host:1/0?a=b@c"
        );
        let msg = SharedConfig::resolve(
            entries(&[("redisUrl", Value::Text("rediss://:pw@h".into()))]),
            "d",
        )
        .unwrap_err()
        .to_string();
        assert!(!msg.contains("pw"), "{msg}");
        assert!(msg.contains("TLS"), "{msg}");
    }
}
