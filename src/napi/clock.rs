//! The native half of `ManualClock`: the JS class keeps its timers and mirrors its time here,
//! so Rust components (schedulers) read the same time.

use std::sync::Arc;

use napi_derive::napi;

use crate::core::clock::{Clock, ManualClock};
use crate::core::error::{ConfigIssue, Error};
use crate::core::options::fmt_num;

use super::error::to_js;

#[napi]
pub struct NativeManualClock {
    pub(crate) inner: Arc<ManualClock>,
}

fn check(field: &str, ms: f64) -> napi::Result<f64> {
    if ms.is_finite() {
        Ok(ms)
    } else {
        Err(to_js(Error::InvalidArgument(ConfigIssue::new(
            field,
            fmt_num(ms),
            "a finite number of milliseconds",
        ))))
    }
}

#[napi]
impl NativeManualClock {
    #[napi(constructor)]
    pub fn new(start_ms: f64) -> napi::Result<Self> {
        Ok(Self {
            inner: Arc::new(ManualClock::new(check("startMs", start_ms)?)),
        })
    }

    #[napi]
    pub fn set(&self, ms: f64) -> napi::Result<()> {
        self.inner.set(check("ms", ms)?);
        Ok(())
    }

    #[napi]
    pub fn now(&self) -> f64 {
        self.inner.now_ms()
    }
}
