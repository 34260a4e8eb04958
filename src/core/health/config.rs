//! Health-check configuration: the defaults (the seed's `HealthCheckConfig`, durations in ms,
//! defined here and nowhere else) and their validation.

use crate::core::error::{ConfigIssue, Error, Result};
use crate::core::options::{fmt_num, Kind, Options, Value, MAX_DURATION_MS};

pub const DEFAULT_CHECK_INTERVAL_MS: f64 = 30_000.0;
pub const DEFAULT_CHECK_TIMEOUT_MS: f64 = 10_000.0;
pub const DEFAULT_LATENCY_WARNING_MS: f64 = 1_000.0;
pub const DEFAULT_LATENCY_CRITICAL_MS: f64 = 3_000.0;
pub const DEFAULT_ERROR_RATE_WARNING: f64 = 0.05;
pub const DEFAULT_ERROR_RATE_CRITICAL: f64 = 0.20;
pub const DEFAULT_HISTORY_SIZE: u32 = 100;
pub const DEFAULT_ALERT_COOLDOWN_MS: f64 = 300_000.0;
/// Checks more often than this would be load on the upstream, not monitoring.
pub const MIN_CHECK_INTERVAL_MS: f64 = 100.0;
/// Bounds the ring and keeps each latency-histogram counter within a `u16`.
pub const MAX_HISTORY_SIZE: u32 = 10_000;
/// The last this-many checks all failed: `unhealthy`, whatever the rates say.
pub const UNHEALTHY_CONSECUTIVE_FAILURES: u32 = 3;

const CONTEXT: &str = "health check options";

pub const SERVICE_OPTIONS: &[&str] = &[
    "checkIntervalMs",
    "checkTimeoutMs",
    "latencyWarningMs",
    "latencyCriticalMs",
    "errorRateWarning",
    "errorRateCritical",
    "historySize",
    "alertCooldownMs",
];

/// Per-service options handled by the JS layer; only their kind is checked here.
pub const SERVICE_HOST_OPTIONS: &[(&str, Kind)] = &[("breaker", Kind::Text)];

/// `new HealthMonitor(options)`: every option is host-only.
pub const MONITOR_HOST_OPTIONS: &[(&str, Kind)] =
    &[("clock", Kind::Object), ("registry", Kind::ObjectOrNull)];

#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    pub check_interval_ms: f64,
    pub check_timeout_ms: f64,
    pub latency_warning_ms: f64,
    pub latency_critical_ms: f64,
    pub error_rate_warning: f64,
    pub error_rate_critical: f64,
    pub history_size: u32,
    pub alert_cooldown_ms: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            check_interval_ms: DEFAULT_CHECK_INTERVAL_MS,
            check_timeout_ms: DEFAULT_CHECK_TIMEOUT_MS,
            latency_warning_ms: DEFAULT_LATENCY_WARNING_MS,
            latency_critical_ms: DEFAULT_LATENCY_CRITICAL_MS,
            error_rate_warning: DEFAULT_ERROR_RATE_WARNING,
            error_rate_critical: DEFAULT_ERROR_RATE_CRITICAL,
            history_size: DEFAULT_HISTORY_SIZE,
            alert_cooldown_ms: DEFAULT_ALERT_COOLDOWN_MS,
        }
    }
}

impl HealthConfig {
    /// Builds a config from option layers, lowest priority first (environment, then explicit
    /// options). Every problem of every layer comes back in one error.
    pub fn from_layers(layers: Vec<(&'static str, Vec<(String, Value)>)>) -> Result<Self> {
        let mut cfg = HealthConfig::default();
        let mut issues: Vec<ConfigIssue> = Vec::new();
        for (_, entries) in layers {
            let mut o = Options::new(CONTEXT, entries);
            if let Some(v) = o.range("checkIntervalMs", MIN_CHECK_INTERVAL_MS, MAX_DURATION_MS) {
                cfg.check_interval_ms = v;
            }
            if let Some(v) = o.duration("checkTimeoutMs", false, false) {
                cfg.check_timeout_ms = v;
            }
            if let Some(v) = o.duration("latencyWarningMs", false, false) {
                cfg.latency_warning_ms = v;
            }
            if let Some(v) = o.duration("latencyCriticalMs", false, false) {
                cfg.latency_critical_ms = v;
            }
            if let Some(v) = o.fraction("errorRateWarning", false, false) {
                cfg.error_rate_warning = v;
            }
            if let Some(v) = o.fraction("errorRateCritical", false, false) {
                cfg.error_rate_critical = v;
            }
            if let Some(v) = o.count("historySize", 1, MAX_HISTORY_SIZE) {
                cfg.history_size = v;
            }
            if let Some(v) = o.duration("alertCooldownMs", true, false) {
                cfg.alert_cooldown_ms = v;
            }
            for (key, kind) in SERVICE_HOST_OPTIONS {
                o.host(key, *kind);
            }
            let known: Vec<&str> = SERVICE_OPTIONS
                .iter()
                .copied()
                .chain(SERVICE_HOST_OPTIONS.iter().map(|(k, _)| *k))
                .collect();
            collect(o.finish(&known), &mut issues)?;
        }
        // Cross-field rules, once the layers are merged: a warning that comes after the
        // critical level would make `degraded` unreachable.
        if cfg.latency_warning_ms > cfg.latency_critical_ms {
            issues.push(ConfigIssue::new(
                "latencyWarningMs",
                fmt_num(cfg.latency_warning_ms),
                format!(
                    "a number of milliseconds at most latencyCriticalMs ({})",
                    fmt_num(cfg.latency_critical_ms)
                ),
            ));
        }
        if cfg.error_rate_warning > cfg.error_rate_critical {
            issues.push(ConfigIssue::new(
                "errorRateWarning",
                fmt_num(cfg.error_rate_warning),
                format!(
                    "a number at most errorRateCritical ({})",
                    fmt_num(cfg.error_rate_critical)
                ),
            ));
        }
        if issues.is_empty() {
            Ok(cfg)
        } else {
            Err(Error::invalid_config(CONTEXT, issues))
        }
    }

    /// The config of a new service: built-in defaults, then the environment layer (whose
    /// problems name the variables), then the explicit options. One error holds every problem.
    pub fn resolve(
        env_layer: Result<Vec<(String, Value)>>,
        options: Vec<(String, Value)>,
    ) -> Result<Self> {
        let mut issues = Vec::new();
        let env_layer = match env_layer {
            Ok(layer) => layer,
            Err(e) => {
                collect(Err(e), &mut issues)?;
                Vec::new()
            }
        };
        match Self::from_layers(vec![("environment", env_layer), ("options", options)]) {
            Ok(cfg) if issues.is_empty() => Ok(cfg),
            Ok(_) => Err(Error::invalid_config(CONTEXT, issues)),
            Err(e) => {
                collect(Err(e), &mut issues)?;
                Err(Error::invalid_config(CONTEXT, issues))
            }
        }
    }
}

/// Moves the issues of an `InvalidConfig` into `issues`; any other error is passed on.
fn collect(r: Result<()>, issues: &mut Vec<ConfigIssue>) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(Error::InvalidConfig { issues: found, .. }) => {
            issues.extend(found);
            Ok(())
        }
        Err(other) => Err(other),
    }
}

/// Validates the options of `new HealthMonitor(options)`.
pub fn validate_monitor_options(entries: Vec<(String, Value)>) -> Result<()> {
    let mut o = Options::new("health monitor options", entries);
    for (key, kind) in MONITOR_HOST_OPTIONS {
        o.host(key, *kind);
    }
    let known: Vec<&str> = MONITOR_HOST_OPTIONS.iter().map(|(k, _)| *k).collect();
    o.finish(&known)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::options::layer;

    #[test]
    fn defaults_are_the_seeds_health_check_config_in_ms() {
        let c = HealthConfig::from_layers(vec![]).unwrap();
        assert_eq!(c, HealthConfig::default());
        assert_eq!(c.check_interval_ms, 30_000.0);
        assert_eq!(c.check_timeout_ms, 10_000.0);
        assert_eq!(c.latency_warning_ms, 1_000.0);
        assert_eq!(c.latency_critical_ms, 3_000.0);
        assert_eq!(c.error_rate_warning, 0.05);
        assert_eq!(c.error_rate_critical, 0.20);
        assert_eq!(c.history_size, 100);
        assert_eq!(c.alert_cooldown_ms, 300_000.0);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let err = HealthConfig::from_layers(vec![(
            "options",
            layer(&[
                ("checkIntervalMs", Value::Number(50.0)),
                ("checkTimeoutMs", Value::Number(0.0)),
                ("latencyWarningMs", Value::Text("1s".into())),
                ("errorRateCritical", Value::Number(1.5)),
                ("historySize", Value::Number(0.0)),
                ("alertCooldownMs", Value::Number(-1.0)),
                ("breaker", Value::Number(1.0)),
                ("checkIntervalMS", Value::Number(1000.0)),
            ]),
        )])
        .unwrap_err();
        let Error::InvalidConfig { issues, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(issues.len(), 8, "{err}");
        let m = err.to_string();
        assert!(
            m.contains("checkIntervalMs = 50 (expected a number from 100 to 2147483647)"),
            "{m}"
        );
        assert!(m.contains("checkTimeoutMs = 0"), "{m}");
        assert!(m.contains("latencyWarningMs = \"1s\""), "{m}");
        assert!(
            m.contains("errorRateCritical = 1.5 (expected a number greater than 0 and at most 1)"),
            "{m}"
        );
        assert!(
            m.contains("historySize = 0 (expected an integer from 1 to 10000)"),
            "{m}"
        );
        assert!(m.contains("alertCooldownMs = -1"), "{m}");
        assert!(m.contains("breaker = 1 (expected a string)"), "{m}");
        assert!(m.contains("did you mean \"checkIntervalMs\""), "{m}");
    }

    #[test]
    fn warnings_must_not_exceed_critical_levels() {
        let m = HealthConfig::from_layers(vec![(
            "options",
            layer(&[
                ("latencyWarningMs", Value::Number(5_000.0)),
                ("errorRateWarning", Value::Number(0.5)),
            ]),
        )])
        .unwrap_err()
        .to_string();
        assert!(
            m.contains("latencyWarningMs = 5000 (expected a number of milliseconds at most latencyCriticalMs (3000))"),
            "{m}"
        );
        assert!(
            m.contains(
                "errorRateWarning = 0.5 (expected a number at most errorRateCritical (0.2))"
            ),
            "{m}"
        );
        // Equal levels are allowed: reaching them is then simply critical.
        let c = HealthConfig::from_layers(vec![(
            "options",
            layer(&[
                ("latencyWarningMs", Value::Number(3_000.0)),
                ("errorRateWarning", Value::Number(0.2)),
                ("alertCooldownMs", Value::Number(0.0)),
            ]),
        )])
        .unwrap();
        assert_eq!(c.latency_warning_ms, c.latency_critical_ms);
        assert_eq!(c.alert_cooldown_ms, 0.0);
    }

    #[test]
    fn environment_layer_sets_defaults_and_options_win() {
        let env = Ok(layer(&[("checkIntervalMs", Value::Number(5_000.0))]));
        assert_eq!(
            HealthConfig::resolve(env.clone(), vec![])
                .unwrap()
                .check_interval_ms,
            5_000.0
        );
        let c = HealthConfig::resolve(env, layer(&[("checkIntervalMs", Value::Number(700.0))]))
            .unwrap();
        assert_eq!(c.check_interval_ms, 700.0);
    }

    #[test]
    fn resolve_merges_environment_and_option_problems() {
        let env = crate::core::env::health_env(|k| {
            (k == "HEALTH_CHECK_INTERVAL").then(|| "soon".to_string())
        });
        let m = HealthConfig::resolve(env, layer(&[("historySize", Value::Number(-3.0))]))
            .unwrap_err()
            .to_string();
        assert!(m.contains("HEALTH_CHECK_INTERVAL = \"soon\""), "{m}");
        assert!(m.contains("historySize = -3"), "{m}");
    }

    #[test]
    fn monitor_options_are_host_only_and_typo_checked() {
        assert!(validate_monitor_options(vec![]).is_ok());
        assert!(validate_monitor_options(layer(&[
            ("clock", Value::Object),
            ("registry", Value::Null)
        ]))
        .is_ok());
        let m = validate_monitor_options(layer(&[
            ("clock", Value::Number(1.0)),
            ("regsitry", Value::Object),
        ]))
        .unwrap_err()
        .to_string();
        assert!(m.contains("clock = 1 (expected an object)"), "{m}");
        assert!(m.contains("did you mean \"registry\""), "{m}");
    }
}
