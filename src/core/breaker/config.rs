//! Breaker configuration: the defaults (defined here and nowhere else) and their validation.

use crate::core::error::Result;
use crate::core::options::{Kind, Options, Value};

pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 2;
pub const DEFAULT_RESET_TIMEOUT_MS: f64 = 60_000.0;
pub const DEFAULT_HALF_OPEN_MAX_CALLS: u32 = 3;
pub const DEFAULT_EXPONENTIAL_BACKOFF: bool = true;
pub const DEFAULT_MAX_RESET_TIMEOUT_MS: f64 = 300_000.0;
pub const DEFAULT_BACKOFF_MULTIPLIER: f64 = 2.0;
pub const DEFAULT_JITTER_RATIO: f64 = 0.0;
pub const DEFAULT_ROLLING_WINDOW_MS: f64 = 60_000.0;
pub const DEFAULT_MIN_THROUGHPUT: u32 = 10;
pub const DEFAULT_FAILURE_RATE_THRESHOLD: f64 = 0.5;
pub const DEFAULT_ENABLED: bool = true;
/// The rolling window is split into this many buckets, so each is a tenth of the window.
pub const WINDOW_BUCKETS: usize = 10;
/// The shortest rolling window accepted, so that a bucket is at least 1 ms wide.
pub const MIN_ROLLING_WINDOW_MS: f64 = 10.0;
const MAX_COUNT: u32 = 1_000_000;

/// Options handled by the JS layer, not the core; their kinds are still checked here so that
/// one error reports every problem.
pub const HOST_OPTIONS: &[(&str, Kind)] = &[
    ("fallback", Kind::Function),
    ("isFailure", Kind::Function),
    ("clock", Kind::Object),
    ("registry", Kind::ObjectOrNull),
];

pub const CORE_OPTIONS: &[&str] = &[
    "failureThreshold",
    "successThreshold",
    "resetTimeoutMs",
    "halfOpenMaxCalls",
    "exponentialBackoff",
    "maxResetTimeoutMs",
    "backoffMultiplier",
    "jitterRatio",
    "rollingWindowMs",
    "minThroughput",
    "failureRateThreshold",
    "slowCallDurationMs",
    "slowCallRateThreshold",
    "callTimeoutMs",
    "enabled",
];

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub reset_timeout_ms: f64,
    pub half_open_max_calls: u32,
    pub exponential_backoff: bool,
    pub max_reset_timeout_ms: f64,
    pub backoff_multiplier: f64,
    pub jitter_ratio: f64,
    pub rolling_window_ms: f64,
    pub min_throughput: u32,
    pub failure_rate_threshold: f64,
    /// Rule C: both set, or neither.
    pub slow_call: Option<SlowCall>,
    pub call_timeout_ms: Option<f64>,
    /// `false` starts the breaker `disabled` (pass-through, still measured).
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowCall {
    pub duration_ms: f64,
    pub rate_threshold: f64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
            reset_timeout_ms: DEFAULT_RESET_TIMEOUT_MS,
            half_open_max_calls: DEFAULT_HALF_OPEN_MAX_CALLS,
            exponential_backoff: DEFAULT_EXPONENTIAL_BACKOFF,
            max_reset_timeout_ms: DEFAULT_MAX_RESET_TIMEOUT_MS,
            backoff_multiplier: DEFAULT_BACKOFF_MULTIPLIER,
            jitter_ratio: DEFAULT_JITTER_RATIO,
            rolling_window_ms: DEFAULT_ROLLING_WINDOW_MS,
            min_throughput: DEFAULT_MIN_THROUGHPUT,
            failure_rate_threshold: DEFAULT_FAILURE_RATE_THRESHOLD,
            slow_call: None,
            call_timeout_ms: None,
            enabled: DEFAULT_ENABLED,
        }
    }
}

impl BreakerConfig {
    /// Builds a config from option layers, lowest priority first (environment, then explicit
    /// options). Each layer is validated in full; all problems come back in one error.
    pub fn from_layers(layers: Vec<(&'static str, Vec<(String, Value)>)>) -> Result<Self> {
        let mut cfg = BreakerConfig::default();
        let mut slow_ms = None;
        let mut slow_rate = None;
        let mut max_given = false;
        let mut errors: Vec<crate::core::error::ConfigIssue> = Vec::new();
        for (context, entries) in layers {
            let mut o = Options::new(context, entries);
            if let Some(v) = o.count("failureThreshold", 1, MAX_COUNT) {
                cfg.failure_threshold = v;
            }
            if let Some(v) = o.count("successThreshold", 1, MAX_COUNT) {
                cfg.success_threshold = v;
            }
            if let Some(v) = o.duration("resetTimeoutMs", false, false) {
                cfg.reset_timeout_ms = v;
            }
            if let Some(v) = o.count("halfOpenMaxCalls", 1, MAX_COUNT) {
                cfg.half_open_max_calls = v;
            }
            if let Some(v) = o.boolean("exponentialBackoff") {
                cfg.exponential_backoff = v;
            }
            if let Some(v) = o.duration("maxResetTimeoutMs", false, false) {
                cfg.max_reset_timeout_ms = v;
                max_given = true;
            }
            if let Some(v) = o.range("backoffMultiplier", 1.0, 100.0) {
                cfg.backoff_multiplier = v;
            }
            if let Some(v) = o.fraction("jitterRatio", true, false) {
                cfg.jitter_ratio = v;
            }
            if let Some(v) = o.range(
                "rollingWindowMs",
                MIN_ROLLING_WINDOW_MS,
                crate::core::options::MAX_DURATION_MS,
            ) {
                cfg.rolling_window_ms = v;
            }
            if let Some(v) = o.count("minThroughput", 1, MAX_COUNT) {
                cfg.min_throughput = v;
            }
            if let Some(v) = o.fraction("failureRateThreshold", false, false) {
                cfg.failure_rate_threshold = v;
            }
            if let Some(v) = o.duration("slowCallDurationMs", false, true) {
                slow_ms = Some(v);
            }
            if let Some(v) = o.fraction("slowCallRateThreshold", false, true) {
                slow_rate = Some(v);
            }
            if let Some(v) = o.duration("callTimeoutMs", false, true) {
                cfg.call_timeout_ms = Some(v);
            }
            if let Some(v) = o.boolean("enabled") {
                cfg.enabled = v;
            }
            for (key, kind) in HOST_OPTIONS {
                o.host(key, *kind);
            }
            let known: Vec<&str> = CORE_OPTIONS
                .iter()
                .copied()
                .chain(HOST_OPTIONS.iter().map(|(k, _)| *k))
                .collect();
            if let Err(crate::core::error::Error::InvalidConfig { issues, .. }) = o.finish(&known) {
                errors.extend(issues);
            }
        }
        // Cross-field rules, checked once the layers are merged.
        match (slow_ms, slow_rate) {
            (Some(d), Some(r)) => {
                cfg.slow_call = Some(SlowCall {
                    duration_ms: d,
                    rate_threshold: r,
                })
            }
            (None, None) => {}
            (Some(d), None) => errors.push(crate::core::error::ConfigIssue::new(
                "slowCallRateThreshold",
                "undefined",
                format!(
                    "a number greater than 0 and at most 1, since slowCallDurationMs is set ({d})"
                ),
            )),
            (None, Some(r)) => errors.push(crate::core::error::ConfigIssue::new(
                "slowCallDurationMs",
                "undefined",
                format!("a number of milliseconds, since slowCallRateThreshold is set ({r})"),
            )),
        }
        if cfg.max_reset_timeout_ms < cfg.reset_timeout_ms && !max_given {
            // Only the default cap is below a long reset timeout: the cap follows it.
            cfg.max_reset_timeout_ms = cfg.reset_timeout_ms;
        } else if cfg.max_reset_timeout_ms < cfg.reset_timeout_ms {
            errors.push(crate::core::error::ConfigIssue::new(
                "maxResetTimeoutMs",
                crate::core::options::fmt_num(cfg.max_reset_timeout_ms),
                format!(
                    "a number of milliseconds at least resetTimeoutMs ({})",
                    crate::core::options::fmt_num(cfg.reset_timeout_ms)
                ),
            ));
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(crate::core::error::Error::invalid_config(
                "circuit breaker options",
                errors,
            ))
        }
    }

    /// The config of a new breaker: built-in defaults, then the environment layer (whose
    /// problems name the variables), then the explicit options. One error holds every problem.
    pub fn resolve(
        env: Result<Vec<(String, Value)>>,
        options: Vec<(String, Value)>,
    ) -> Result<Self> {
        let mut issues = Vec::new();
        let env_layer = match env {
            Ok(layer) => layer,
            Err(crate::core::error::Error::InvalidConfig {
                issues: mut found, ..
            }) => {
                issues.append(&mut found);
                Vec::new()
            }
            Err(other) => return Err(other),
        };
        match Self::from_layers(vec![("environment", env_layer), ("options", options)]) {
            Ok(cfg) if issues.is_empty() => Ok(cfg),
            Ok(_) => Err(crate::core::error::Error::invalid_config(
                "circuit breaker options",
                issues,
            )),
            Err(crate::core::error::Error::InvalidConfig {
                issues: mut found, ..
            }) => {
                issues.append(&mut found);
                Err(crate::core::error::Error::invalid_config(
                    "circuit breaker options",
                    issues,
                ))
            }
            Err(other) => Err(other),
        }
    }

    /// The options that differ from `other`, as `(JS field, this value, other value)`.
    pub fn differences(&self, other: &BreakerConfig) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        let mut cmp = |field: &'static str, a: String, b: String| {
            if a != b {
                out.push((field, a, b));
            }
        };
        let num = |x: f64| crate::core::options::fmt_num(x);
        let opt = |x: Option<f64>| x.map_or("off".to_string(), crate::core::options::fmt_num);
        cmp(
            "failureThreshold",
            self.failure_threshold.to_string(),
            other.failure_threshold.to_string(),
        );
        cmp(
            "successThreshold",
            self.success_threshold.to_string(),
            other.success_threshold.to_string(),
        );
        cmp(
            "resetTimeoutMs",
            num(self.reset_timeout_ms),
            num(other.reset_timeout_ms),
        );
        cmp(
            "halfOpenMaxCalls",
            self.half_open_max_calls.to_string(),
            other.half_open_max_calls.to_string(),
        );
        cmp(
            "exponentialBackoff",
            self.exponential_backoff.to_string(),
            other.exponential_backoff.to_string(),
        );
        cmp(
            "maxResetTimeoutMs",
            num(self.max_reset_timeout_ms),
            num(other.max_reset_timeout_ms),
        );
        cmp(
            "backoffMultiplier",
            num(self.backoff_multiplier),
            num(other.backoff_multiplier),
        );
        cmp(
            "jitterRatio",
            num(self.jitter_ratio),
            num(other.jitter_ratio),
        );
        cmp(
            "rollingWindowMs",
            num(self.rolling_window_ms),
            num(other.rolling_window_ms),
        );
        cmp(
            "minThroughput",
            self.min_throughput.to_string(),
            other.min_throughput.to_string(),
        );
        cmp(
            "failureRateThreshold",
            num(self.failure_rate_threshold),
            num(other.failure_rate_threshold),
        );
        cmp(
            "slowCallDurationMs",
            opt(self.slow_call.map(|s| s.duration_ms)),
            opt(other.slow_call.map(|s| s.duration_ms)),
        );
        cmp(
            "slowCallRateThreshold",
            opt(self.slow_call.map(|s| s.rate_threshold)),
            opt(other.slow_call.map(|s| s.rate_threshold)),
        );
        cmp(
            "callTimeoutMs",
            opt(self.call_timeout_ms),
            opt(other.call_timeout_ms),
        );
        cmp(
            "enabled",
            self.enabled.to_string(),
            other.enabled.to_string(),
        );
        out
    }

    pub fn bucket_ms(&self) -> f64 {
        self.rolling_window_ms / WINDOW_BUCKETS as f64
    }

    /// How long an unsettled half-open trial permit may be held before it is reclaimed.
    pub fn trial_reclaim_ms(&self) -> f64 {
        self.call_timeout_ms.unwrap_or(self.reset_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::options::layer;

    #[test]
    fn defaults_match_the_documented_table() {
        let c = BreakerConfig::from_layers(vec![]).unwrap();
        assert_eq!(c, BreakerConfig::default());
        assert_eq!(c.failure_threshold, 5);
        assert_eq!(c.success_threshold, 2);
        assert_eq!(c.reset_timeout_ms, 60_000.0);
        assert_eq!(c.max_reset_timeout_ms, 300_000.0);
        assert_eq!(c.bucket_ms(), 6_000.0);
        assert_eq!(c.trial_reclaim_ms(), 60_000.0);
    }

    #[test]
    fn explicit_layer_wins_over_environment_layer() {
        let c = BreakerConfig::from_layers(vec![
            (
                "environment",
                layer(&[
                    ("failureThreshold", Value::Number(7.0)),
                    ("resetTimeoutMs", Value::Number(1000.0)),
                ]),
            ),
            (
                "options",
                layer(&[("failureThreshold", Value::Number(3.0))]),
            ),
        ])
        .unwrap();
        assert_eq!(c.failure_threshold, 3);
        assert_eq!(c.reset_timeout_ms, 1000.0);
    }

    #[test]
    fn slow_call_needs_both_fields() {
        let e = BreakerConfig::from_layers(vec![(
            "o",
            layer(&[("slowCallDurationMs", Value::Number(100.0))]),
        )])
        .unwrap_err()
        .to_string();
        assert!(e.contains("slowCallRateThreshold = undefined"), "{e}");
        let c = BreakerConfig::from_layers(vec![(
            "o",
            layer(&[
                ("slowCallDurationMs", Value::Number(100.0)),
                ("slowCallRateThreshold", Value::Number(0.5)),
            ]),
        )])
        .unwrap();
        assert_eq!(
            c.slow_call,
            Some(SlowCall {
                duration_ms: 100.0,
                rate_threshold: 0.5
            })
        );
    }

    #[test]
    fn max_reset_timeout_below_reset_timeout_is_rejected() {
        let e = BreakerConfig::from_layers(vec![(
            "o",
            layer(&[
                ("resetTimeoutMs", Value::Number(10_000.0)),
                ("maxResetTimeoutMs", Value::Number(5_000.0)),
            ]),
        )])
        .unwrap_err()
        .to_string();
        assert!(e.contains("maxResetTimeoutMs = 5000 (expected a number of milliseconds at least resetTimeoutMs (10000))"), "{e}");
    }

    #[test]
    fn default_cap_follows_a_long_reset_timeout() {
        let c = BreakerConfig::from_layers(vec![(
            "o",
            layer(&[("resetTimeoutMs", Value::Number(600_000.0))]),
        )])
        .unwrap();
        assert_eq!(c.max_reset_timeout_ms, 600_000.0);
    }

    #[test]
    fn resolve_merges_environment_and_option_problems() {
        let env = crate::core::env::breaker_env(|k| {
            (k == "CB_FAILURE_THRESHOLD").then(|| "x".to_string())
        });
        let e = BreakerConfig::resolve(env, layer(&[("successThreshold", Value::Number(0.0))]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CB_FAILURE_THRESHOLD = \"x\"") && e.contains("successThreshold = 0"),
            "{e}"
        );
        let env = crate::core::env::breaker_env(|k| {
            (k == "CB_FAILURE_THRESHOLD").then(|| "9".to_string())
        });
        assert_eq!(
            BreakerConfig::resolve(env, vec![])
                .unwrap()
                .failure_threshold,
            9
        );
    }

    #[test]
    fn differences_name_the_js_fields() {
        let a = BreakerConfig::default();
        let b = BreakerConfig {
            failure_threshold: 9,
            call_timeout_ms: Some(50.0),
            ..BreakerConfig::default()
        };
        assert_eq!(
            a.differences(&b),
            vec![
                ("failureThreshold", "5".to_string(), "9".to_string()),
                ("callTimeoutMs", "off".to_string(), "50".to_string())
            ]
        );
        assert!(a.differences(&a.clone()).is_empty());
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let err = BreakerConfig::from_layers(vec![(
            "o",
            layer(&[
                ("failureThreshold", Value::Number(-1.0)),
                ("resetTimeoutMs", Value::Text("60s".into())),
                ("failureRateThreshold", Value::Number(0.0)),
                ("exponentialBackoff", Value::Text("yes".into())),
                ("fallback", Value::Text("nope".into())),
                ("failureTreshold", Value::Number(5.0)),
            ]),
        )])
        .unwrap_err();
        let crate::core::error::Error::InvalidConfig { issues, .. } = &err else {
            panic!()
        };
        assert_eq!(issues.len(), 6, "{err}");
    }
}
