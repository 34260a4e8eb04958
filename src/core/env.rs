//! Defaults from the environment (the seed's variables). Each parser returns an option layer
//! keyed by the JS option name; a bad value is reported under the variable's own name.

use super::error::{ConfigIssue, Error, Result};
use super::options::{fmt_num, Value, MAX_DURATION_MS};

fn parse_bool(var: &str, raw: &str, issues: &mut Vec<ConfigIssue>) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => {
            issues.push(ConfigIssue::new(
                var,
                format!("{raw:?}"),
                "true or false (or 1/0, yes/no, on/off)",
            ));
            None
        }
    }
}

fn parse_number(
    var: &str,
    raw: &str,
    issues: &mut Vec<ConfigIssue>,
    ok: impl Fn(f64) -> bool,
    expected: &str,
) -> Option<f64> {
    match raw.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && ok(n) => Some(n),
        _ => {
            issues.push(ConfigIssue::new(var, format!("{raw:?}"), expected));
            None
        }
    }
}

/// Reads `HEALTH_CHECK_INTERVAL` (seconds) as the default `checkIntervalMs` of health checks.
pub fn health_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<(String, Value)>> {
    use super::health::config::MIN_CHECK_INTERVAL_MS;
    let Some(raw) = lookup("HEALTH_CHECK_INTERVAL").filter(|v| !v.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let (min_s, max_s) = (MIN_CHECK_INTERVAL_MS / 1000.0, MAX_DURATION_MS / 1000.0);
    let mut issues = Vec::new();
    let expected = format!(
        "a number of seconds from {} to {}",
        fmt_num(min_s),
        fmt_num(max_s)
    );
    match parse_number(
        "HEALTH_CHECK_INTERVAL",
        &raw,
        &mut issues,
        |n| (min_s..=max_s).contains(&n),
        &expected,
    ) {
        Some(n) => Ok(vec![(
            "checkIntervalMs".to_string(),
            Value::Number(n * 1000.0),
        )]),
        None => Err(Error::invalid_config("environment", issues)),
    }
}

/// Reads `HEALTH_CHECK_ENABLED`: whether `HealthMonitor.start()` runs (default true).
pub fn health_enabled(lookup: impl Fn(&str) -> Option<String>) -> Result<bool> {
    let Some(raw) = lookup("HEALTH_CHECK_ENABLED").filter(|v| !v.trim().is_empty()) else {
        return Ok(true);
    };
    let mut issues = Vec::new();
    parse_bool("HEALTH_CHECK_ENABLED", &raw, &mut issues)
        .ok_or_else(|| Error::invalid_config("environment", issues))
}

/// Reads `CB_FAILURE_THRESHOLD`, `CB_TIMEOUT_SECONDS`, `CB_EXPONENTIAL_BACKOFF` and
/// `CIRCUIT_BREAKER_ENABLED`. Unset or empty variables are skipped.
pub fn breaker_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<(String, Value)>> {
    let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
    let mut out = Vec::new();
    let mut issues = Vec::new();
    if let Some(raw) = get("CB_FAILURE_THRESHOLD") {
        if let Some(n) = parse_number(
            "CB_FAILURE_THRESHOLD",
            &raw,
            &mut issues,
            |n| n.fract() == 0.0 && (1.0..=1e6).contains(&n),
            "an integer from 1 to 1000000",
        ) {
            out.push(("failureThreshold".to_string(), Value::Number(n)));
        }
    }
    if let Some(raw) = get("CB_TIMEOUT_SECONDS") {
        let max_s = MAX_DURATION_MS / 1000.0;
        if let Some(n) = parse_number(
            "CB_TIMEOUT_SECONDS",
            &raw,
            &mut issues,
            |n| n > 0.0 && n <= max_s,
            &format!(
                "a number of seconds greater than 0 and at most {}",
                fmt_num(max_s)
            ),
        ) {
            out.push(("resetTimeoutMs".to_string(), Value::Number(n * 1000.0)));
        }
    }
    if let Some(raw) = get("CB_EXPONENTIAL_BACKOFF") {
        if let Some(b) = parse_bool("CB_EXPONENTIAL_BACKOFF", &raw, &mut issues) {
            out.push(("exponentialBackoff".to_string(), Value::Bool(b)));
        }
    }
    if let Some(raw) = get("CIRCUIT_BREAKER_ENABLED") {
        if let Some(b) = parse_bool("CIRCUIT_BREAKER_ENABLED", &raw, &mut issues) {
            out.push(("enabled".to_string(), Value::Bool(b)));
        }
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(Error::invalid_config("environment", issues))
    }
}

/// Reads `FALLBACK_CACHE_ENABLED` and `FALLBACK_QUEUE_ENABLED`, the defaults of `cacheEnabled`
/// and `queueEnabled`. Unset or empty variables are skipped.
pub fn fallback_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<(String, Value)>> {
    let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
    let mut out = Vec::new();
    let mut issues = Vec::new();
    for (var, key) in [
        ("FALLBACK_CACHE_ENABLED", "cacheEnabled"),
        ("FALLBACK_QUEUE_ENABLED", "queueEnabled"),
    ] {
        if let Some(raw) = get(var) {
            if let Some(b) = parse_bool(var, &raw, &mut issues) {
                out.push((key.to_string(), Value::Bool(b)));
            }
        }
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(Error::invalid_config("environment", issues))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn health_variables_set_the_interval_and_the_switch() {
        assert_eq!(
            health_env(env(&[("HEALTH_CHECK_INTERVAL", "2.5")])).unwrap(),
            vec![("checkIntervalMs".to_string(), Value::Number(2500.0))]
        );
        assert!(health_env(env(&[("HEALTH_CHECK_INTERVAL", " ")]))
            .unwrap()
            .is_empty());
        assert!(health_enabled(env(&[])).unwrap());
        assert!(!health_enabled(env(&[("HEALTH_CHECK_ENABLED", "false")])).unwrap());
        assert!(health_enabled(env(&[("HEALTH_CHECK_ENABLED", "ON")])).unwrap());
    }

    #[test]
    fn bad_health_variables_name_the_variable() {
        let m = health_env(env(&[("HEALTH_CHECK_INTERVAL", "0.01")])).unwrap_err();
        assert_eq!(m.code(), "ERR_INVALID_CONFIG");
        assert!(
            m.to_string().contains("HEALTH_CHECK_INTERVAL = \"0.01\" (expected a number of seconds from 0.1 to 2147483.647)"),
            "{m}"
        );
        let m = health_enabled(env(&[("HEALTH_CHECK_ENABLED", "sometimes")])).unwrap_err();
        assert!(
            m.to_string()
                .contains("HEALTH_CHECK_ENABLED = \"sometimes\""),
            "{m}"
        );
    }

    #[test]
    fn reads_the_four_variables() {
        let layer = breaker_env(env(&[
            ("CB_FAILURE_THRESHOLD", "8"),
            ("CB_TIMEOUT_SECONDS", "1.5"),
            ("CB_EXPONENTIAL_BACKOFF", "false"),
            ("CIRCUIT_BREAKER_ENABLED", "FALSE"),
        ]))
        .unwrap();
        assert_eq!(
            layer,
            vec![
                ("failureThreshold".to_string(), Value::Number(8.0)),
                ("resetTimeoutMs".to_string(), Value::Number(1500.0)),
                ("exponentialBackoff".to_string(), Value::Bool(false)),
                ("enabled".to_string(), Value::Bool(false)),
            ]
        );
    }

    #[test]
    fn empty_and_unset_are_skipped() {
        assert!(breaker_env(env(&[("CB_FAILURE_THRESHOLD", "  ")]))
            .unwrap()
            .is_empty());
        assert!(breaker_env(env(&[])).unwrap().is_empty());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = breaker_env(env(&[
            ("CB_FAILURE_THRESHOLD", "five"),
            ("CB_TIMEOUT_SECONDS", "-1"),
            ("CIRCUIT_BREAKER_ENABLED", "maybe"),
        ]))
        .unwrap_err();
        assert_eq!(e.code(), "ERR_INVALID_CONFIG");
        let m = e.to_string();
        assert!(
            m.contains("CB_FAILURE_THRESHOLD = \"five\" (expected an integer from 1 to 1000000)"),
            "{m}"
        );
        assert!(m.contains("CB_TIMEOUT_SECONDS = \"-1\""), "{m}");
        assert!(m.contains("CIRCUIT_BREAKER_ENABLED = \"maybe\""), "{m}");
    }

    #[test]
    fn fallback_variables_set_the_enabled_defaults() {
        let layer = fallback_env(env(&[
            ("FALLBACK_CACHE_ENABLED", "false"),
            ("FALLBACK_QUEUE_ENABLED", "1"),
        ]))
        .unwrap();
        assert_eq!(
            layer,
            vec![
                ("cacheEnabled".to_string(), Value::Bool(false)),
                ("queueEnabled".to_string(), Value::Bool(true)),
            ]
        );
        assert!(fallback_env(env(&[("FALLBACK_CACHE_ENABLED", "")]))
            .unwrap()
            .is_empty());
        let m = fallback_env(env(&[("FALLBACK_QUEUE_ENABLED", "sometimes")]))
            .unwrap_err()
            .to_string();
        assert!(m.contains("FALLBACK_QUEUE_ENABLED = \"sometimes\""), "{m}");
    }
}
