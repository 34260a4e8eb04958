//! `configFromEnv(env)`: the breaker defaults that the environment sets, as a JS options object.

use napi::bindgen_prelude::Object;
use napi_derive::napi;

use crate::core::env::breaker_env;
use crate::core::options::Value;

use super::error::to_js;
use super::options::env_lookup;

#[napi(object)]
pub struct EnvBreakerOptions {
    pub failure_threshold: Option<u32>,
    pub reset_timeout_ms: Option<f64>,
    pub exponential_backoff: Option<bool>,
    pub enabled: Option<bool>,
}

#[napi(js_name = "configFromEnv")]
pub fn config_from_env(env: Option<Object>) -> napi::Result<EnvBreakerOptions> {
    let layer = breaker_env(env_lookup(env.as_ref())).map_err(to_js)?;
    let mut out = EnvBreakerOptions {
        failure_threshold: None,
        reset_timeout_ms: None,
        exponential_backoff: None,
        enabled: None,
    };
    for (k, v) in layer {
        match (k.as_str(), v) {
            ("failureThreshold", Value::Number(n)) => out.failure_threshold = Some(n as u32),
            ("resetTimeoutMs", Value::Number(n)) => out.reset_timeout_ms = Some(n),
            ("exponentialBackoff", Value::Bool(b)) => out.exponential_backoff = Some(b),
            ("enabled", Value::Bool(b)) => out.enabled = Some(b),
            _ => {}
        }
    }
    Ok(out)
}
