//! Fallback configuration (the seed's `FallbackConfig`, durations in ms): the defaults, defined
//! here and nowhere else, and their validation. `FallbackHandler`, `FallbackCache` and
//! `RequestQueue` all accept this one set of options, so each validates all of it.

use crate::core::error::{ConfigIssue, Error, Result};
use crate::core::options::{Kind, Options, Value};

pub const DEFAULT_CACHE_ENABLED: bool = true;
pub const DEFAULT_CACHE_TTL_MS: f64 = 3_600_000.0;
pub const DEFAULT_CACHE_MAX_ENTRIES: u32 = 10_000;
pub const DEFAULT_CACHE_MAX_BYTES: u32 = 64 * 1024 * 1024;
pub const DEFAULT_STALE_IF_ERROR_MS: f64 = 0.0;
pub const DEFAULT_QUEUE_ENABLED: bool = true;
pub const DEFAULT_MAX_QUEUE_SIZE: u32 = 1_000;
pub const DEFAULT_QUEUE_TTL_MS: f64 = 300_000.0;
pub const DEFAULT_AUTO_RETRY_ENABLED: bool = true;
pub const DEFAULT_MAX_RETRY_ATTEMPTS: u32 = 3;
pub const DEFAULT_RETRY_DELAY_MS: f64 = 60_000.0;
pub const DEFAULT_RETRY_BACKOFF_MULTIPLIER: f64 = 2.0;
pub const DEFAULT_RETRY_JITTER_RATIO: f64 = 0.1;
pub const DEFAULT_CONCURRENCY: u32 = 1;
pub const DEFAULT_IDEMPOTENCY_RETENTION_MS: f64 = 86_400_000.0;
pub const DEFAULT_LOG_FALLBACKS: bool = true;

/// Completed idempotency keys remembered at most, whatever `idempotencyRetentionMs` says, so
/// that the memory (and the journal) stay bounded. The oldest is forgotten first.
pub const MAX_REMEMBERED_KEYS: usize = 100_000;

const MAX_ENTRIES: u32 = 100_000_000;
const MAX_QUEUE_SIZE: u32 = 10_000_000;
const MAX_ATTEMPTS: u32 = 1_000;
const MAX_CONCURRENCY: u32 = 10_000;
const MIN_CACHE_BYTES: u32 = 1_024;

/// Options handled by the JS layer; their kinds are still checked here so that one error
/// reports every problem.
pub const HOST_OPTIONS: &[(&str, Kind)] = &[
    ("clock", Kind::Object),
    ("logger", Kind::Object),
    ("registry", Kind::ObjectOrNull),
    // The Redis backend's options (`{ redisUrl, ... }`), validated by `queue::redis`.
    ("queue", Kind::Object),
];

pub const CORE_OPTIONS: &[&str] = &[
    "cacheEnabled",
    "cacheTtlMs",
    "cacheMaxEntries",
    "cacheMaxBytes",
    "staleIfErrorMs",
    "queueEnabled",
    "maxQueueSize",
    "queueTtlMs",
    "autoRetryEnabled",
    "maxRetryAttempts",
    "retryDelayMs",
    "retryBackoffMultiplier",
    "retryJitterRatio",
    "concurrency",
    "idempotencyRetentionMs",
    "logFallbacks",
    "persistPath",
];

#[derive(Debug, Clone, PartialEq)]
pub struct FallbackConfig {
    pub cache_enabled: bool,
    pub cache_ttl_ms: f64,
    pub cache_max_entries: u32,
    pub cache_max_bytes: u32,
    /// How long past its TTL an entry may still answer for a failed call.
    pub stale_if_error_ms: f64,
    pub queue: QueueConfig,
    pub log_fallbacks: bool,
}

/// The part of the configuration that the retry queue uses.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    pub enabled: bool,
    /// Queued and running items at most.
    pub max_queue_size: u32,
    /// An item older than this (since it was enqueued) is dead-lettered.
    pub ttl_ms: f64,
    pub auto_retry: bool,
    /// Attempts the queue makes before it dead-letters an item.
    pub max_attempts: u32,
    /// The wait before attempt n+1 is `retry_delay_ms × multiplier^n` (n attempts made so far).
    pub retry_delay_ms: f64,
    pub backoff_multiplier: f64,
    /// Each wait is shortened by a random share up to this ratio.
    pub jitter_ratio: f64,
    /// Attempts of one service's items that run at once.
    pub concurrency: u32,
    /// How long a completed item's idempotency key is remembered.
    pub idempotency_retention_ms: f64,
    /// The journal file; `None` keeps the queue in memory only.
    pub persist_path: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_QUEUE_ENABLED,
            max_queue_size: DEFAULT_MAX_QUEUE_SIZE,
            ttl_ms: DEFAULT_QUEUE_TTL_MS,
            auto_retry: DEFAULT_AUTO_RETRY_ENABLED,
            max_attempts: DEFAULT_MAX_RETRY_ATTEMPTS,
            retry_delay_ms: DEFAULT_RETRY_DELAY_MS,
            backoff_multiplier: DEFAULT_RETRY_BACKOFF_MULTIPLIER,
            jitter_ratio: DEFAULT_RETRY_JITTER_RATIO,
            concurrency: DEFAULT_CONCURRENCY,
            idempotency_retention_ms: DEFAULT_IDEMPOTENCY_RETENTION_MS,
            persist_path: None,
        }
    }
}

impl Default for FallbackConfig {
    fn default() -> Self {
        Self {
            cache_enabled: DEFAULT_CACHE_ENABLED,
            cache_ttl_ms: DEFAULT_CACHE_TTL_MS,
            cache_max_entries: DEFAULT_CACHE_MAX_ENTRIES,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            stale_if_error_ms: DEFAULT_STALE_IF_ERROR_MS,
            queue: QueueConfig::default(),
            log_fallbacks: DEFAULT_LOG_FALLBACKS,
        }
    }
}

const CONTEXT: &str = "fallback options";

impl FallbackConfig {
    /// Applies one layer of options over `self`, adding every problem to `errors`.
    fn apply(
        &mut self,
        context: &'static str,
        entries: Vec<(String, Value)>,
        errors: &mut Vec<ConfigIssue>,
    ) {
        let mut o = Options::new(context, entries);
        if let Some(v) = o.boolean("cacheEnabled") {
            self.cache_enabled = v;
        }
        if let Some(v) = o.duration("cacheTtlMs", false, false) {
            self.cache_ttl_ms = v;
        }
        if let Some(v) = o.count("cacheMaxEntries", 1, MAX_ENTRIES) {
            self.cache_max_entries = v;
        }
        if let Some(v) = o.count("cacheMaxBytes", MIN_CACHE_BYTES, u32::MAX) {
            self.cache_max_bytes = v;
        }
        if let Some(v) = o.duration("staleIfErrorMs", true, false) {
            self.stale_if_error_ms = v;
        }
        let q = &mut self.queue;
        if let Some(v) = o.boolean("queueEnabled") {
            q.enabled = v;
        }
        if let Some(v) = o.count("maxQueueSize", 1, MAX_QUEUE_SIZE) {
            q.max_queue_size = v;
        }
        if let Some(v) = o.duration("queueTtlMs", false, false) {
            q.ttl_ms = v;
        }
        if let Some(v) = o.boolean("autoRetryEnabled") {
            q.auto_retry = v;
        }
        if let Some(v) = o.count("maxRetryAttempts", 1, MAX_ATTEMPTS) {
            q.max_attempts = v;
        }
        if let Some(v) = o.duration("retryDelayMs", true, false) {
            q.retry_delay_ms = v;
        }
        if let Some(v) = o.range("retryBackoffMultiplier", 1.0, 100.0) {
            q.backoff_multiplier = v;
        }
        if let Some(v) = o.fraction("retryJitterRatio", true, false) {
            q.jitter_ratio = v;
        }
        if let Some(v) = o.count("concurrency", 1, MAX_CONCURRENCY) {
            q.concurrency = v;
        }
        if let Some(v) = o.duration("idempotencyRetentionMs", true, false) {
            q.idempotency_retention_ms = v;
        }
        if let Some(v) = o.boolean("logFallbacks") {
            self.log_fallbacks = v;
        }
        if let Some(v) = o.text("persistPath", 1, 4_096, true) {
            if v.is_empty() || v.contains('\0') {
                o.issue(
                    "persistPath",
                    format!("{v:?}"),
                    "the path of a file (a non-empty string)",
                );
            } else {
                self.queue.persist_path = Some(v);
            }
        }
        for (key, kind) in HOST_OPTIONS {
            o.host(key, *kind);
        }
        let known: Vec<&str> = CORE_OPTIONS
            .iter()
            .copied()
            .chain(HOST_OPTIONS.iter().map(|(k, _)| *k))
            .collect();
        if let Err(Error::InvalidConfig { issues, .. }) = o.finish(&known) {
            errors.extend(issues);
        }
    }

    /// The config from built-in defaults, then the environment layer (whose problems name the
    /// variables), then the explicit options. One `ERR_INVALID_CONFIG` holds every problem.
    pub fn resolve(
        env: Result<Vec<(String, Value)>>,
        options: Vec<(String, Value)>,
    ) -> Result<Self> {
        let mut cfg = FallbackConfig::default();
        let mut errors = Vec::new();
        match env {
            Ok(layer) => cfg.apply("environment", layer, &mut errors),
            Err(Error::InvalidConfig { issues, .. }) => errors.extend(issues),
            Err(other) => return Err(other),
        }
        cfg.apply(CONTEXT, options, &mut errors);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(Error::invalid_config(CONTEXT, errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::env::fallback_env;

    use crate::core::options::layer;

    #[test]
    fn defaults_follow_the_seed() {
        let c = FallbackConfig::resolve(Ok(vec![]), vec![]).unwrap();
        assert_eq!(c, FallbackConfig::default());
        assert!(c.cache_enabled && c.queue.enabled && c.queue.auto_retry && c.log_fallbacks);
        assert_eq!(c.cache_ttl_ms, 3_600_000.0);
        assert_eq!(c.queue.max_queue_size, 1_000);
        assert_eq!(c.queue.ttl_ms, 300_000.0);
        assert_eq!(c.queue.max_attempts, 3);
        assert_eq!(c.queue.retry_delay_ms, 60_000.0);
        assert_eq!(c.queue.backoff_multiplier, 2.0);
        assert_eq!(c.queue.concurrency, 1);
        assert_eq!(c.queue.persist_path, None);
    }

    #[test]
    fn environment_sets_defaults_and_options_win() {
        let env = fallback_env(|k| (k == "FALLBACK_CACHE_ENABLED").then(|| "false".to_string()));
        let c = FallbackConfig::resolve(env.clone(), vec![]).unwrap();
        assert!(!c.cache_enabled);
        let c =
            FallbackConfig::resolve(env, layer(&[("cacheEnabled", Value::Bool(true))])).unwrap();
        assert!(c.cache_enabled);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_field_value_and_range() {
        let env = fallback_env(|k| (k == "FALLBACK_QUEUE_ENABLED").then(|| "perhaps".to_string()));
        let e = FallbackConfig::resolve(
            env,
            layer(&[
                ("maxQueueSize", Value::Number(0.0)),
                ("retryBackoffMultiplier", Value::Number(0.5)),
                ("cacheTtlMs", Value::Text("1h".into())),
                ("persistPath", Value::Text(String::new())),
                ("concurency", Value::Number(2.0)),
                ("clock", Value::Number(1.0)),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.code(), "ERR_INVALID_CONFIG");
        let m = e.to_string();
        for needle in [
            "FALLBACK_QUEUE_ENABLED = \"perhaps\"",
            "maxQueueSize = 0 (expected an integer from 1 to 10000000)",
            "retryBackoffMultiplier = 0.5 (expected a number from 1 to 100)",
            "cacheTtlMs = \"1h\"",
            "persistPath = \"\"",
            "did you mean \"concurrency\"",
            "clock = 1 (expected an object)",
        ] {
            assert!(m.contains(needle), "{needle} in {m}");
        }
    }

    #[test]
    fn zero_delays_are_allowed_where_they_make_sense() {
        let c = FallbackConfig::resolve(
            Ok(vec![]),
            layer(&[
                ("retryDelayMs", Value::Number(0.0)),
                ("staleIfErrorMs", Value::Number(0.0)),
                ("persistPath", Value::Text("/tmp/q.journal".into())),
            ]),
        )
        .unwrap();
        assert_eq!(c.queue.retry_delay_ms, 0.0);
        assert_eq!(c.queue.persist_path.as_deref(), Some("/tmp/q.journal"));
        let m = FallbackConfig::resolve(Ok(vec![]), layer(&[("queueTtlMs", Value::Number(0.0))]))
            .unwrap_err()
            .to_string();
        assert!(m.contains("queueTtlMs = 0"), "{m}");
    }
}
