//! `NativeCache`: the response cache behind the JS `FallbackCache`, and the resolution of the
//! fallback options shared with `NativeQueue`.

use std::ptr;

use napi::bindgen_prelude::{Float64ArraySlice, FromNapiValue, Object, TypeName};
use napi::{sys, Env, JsString, ValueType};
use napi_derive::napi;

use crate::core::env::fallback_env;
use crate::core::fallback::{Cache, CacheLimits, FallbackConfig};

use super::error::to_js;
use super::options::{entries, env_lookup};

/// Validates the user's options (host-only keys included) over the environment defaults;
/// one `ERR_INVALID_CONFIG` names every problem.
pub fn resolve(options: Option<&Object>, env: Option<&Object>) -> napi::Result<FallbackConfig> {
    let opts = match options {
        Some(o) => entries(o)?,
        None => Vec::new(),
    };
    FallbackConfig::resolve(fallback_env(env_lookup(env)), opts).map_err(to_js)
}

/// Every fallback option after defaults and the environment, for the JS layer.
#[napi(object)]
pub struct ResolvedFallbackOptions {
    pub cache_enabled: bool,
    pub cache_ttl_ms: f64,
    pub cache_max_entries: u32,
    pub cache_max_bytes: u32,
    pub stale_if_error_ms: f64,
    pub queue_enabled: bool,
    pub max_queue_size: u32,
    pub queue_ttl_ms: f64,
    pub auto_retry_enabled: bool,
    pub max_retry_attempts: u32,
    pub retry_delay_ms: f64,
    pub retry_backoff_multiplier: f64,
    pub retry_jitter_ratio: f64,
    pub concurrency: u32,
    pub idempotency_retention_ms: f64,
    pub log_fallbacks: bool,
    pub persist_path: Option<String>,
}

pub fn resolved(c: &FallbackConfig) -> ResolvedFallbackOptions {
    let q = &c.queue;
    ResolvedFallbackOptions {
        cache_enabled: c.cache_enabled,
        cache_ttl_ms: c.cache_ttl_ms,
        cache_max_entries: c.cache_max_entries,
        cache_max_bytes: c.cache_max_bytes,
        stale_if_error_ms: c.stale_if_error_ms,
        queue_enabled: q.enabled,
        max_queue_size: q.max_queue_size,
        queue_ttl_ms: q.ttl_ms,
        auto_retry_enabled: q.auto_retry,
        max_retry_attempts: q.max_attempts,
        retry_delay_ms: q.retry_delay_ms,
        retry_backoff_multiplier: q.backoff_multiplier,
        retry_jitter_ratio: q.jitter_ratio,
        concurrency: q.concurrency,
        idempotency_retention_ms: q.idempotency_retention_ms,
        log_fallbacks: c.log_fallbacks,
        persist_path: q.persist_path.clone(),
    }
}

/// A JS string read as UTF-8 in one pass, with one byte kept free in front for a tag.
/// (napi-rs's `String` measures the string first, then copies it: two passes over 1 KB.)
pub struct TagText(Vec<u8>);

impl TypeName for TagText {
    fn type_name() -> &'static str {
        "string"
    }
    fn value_type() -> ValueType {
        ValueType::String
    }
}

fn expect_string(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(
            napi::Status::InvalidArg,
            "ERR_INVALID_ARGUMENT: Invalid argument: value (expected a string)".to_string(),
        ))
    }
}

impl FromNapiValue for TagText {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        // The UTF-16 length is O(1) in V8. ASCII (most JSON) is one byte a unit, so a buffer of
        // that size plus room for one more character usually holds it all in one pass; if the
        // text is longer in UTF-8, measure it and read it again.
        let mut units = 0usize;
        expect_string(unsafe {
            sys::napi_get_value_string_utf16(env, v, ptr::null_mut(), 0, &mut units)
        })?;
        let mut room = units + 5;
        loop {
            // One byte in front for the tag, and one at the end for napi's terminating NUL.
            let mut buf: Vec<u8> = Vec::with_capacity(1 + room + 1);
            let mut written = 0usize;
            // Safety: napi writes at most `room` bytes and a NUL after the tag byte; the length
            // is then set to what it reports having written.
            expect_string(unsafe {
                sys::napi_get_value_string_utf8(
                    env,
                    v,
                    buf.as_mut_ptr().add(1).cast(),
                    room + 1,
                    &mut written,
                )
            })?;
            // Fewer than `room - 4` bytes written: the next character (4 bytes at most) would
            // have fit, so there was none.
            if written + 4 < room {
                unsafe { buf.set_len(1 + written) };
                return Ok(TagText(buf));
            }
            let mut exact = 0usize;
            expect_string(unsafe {
                sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut exact)
            })?;
            if exact + 5 <= room {
                // Cannot happen (V8 reported more room than it used); never loop forever.
                return Err(napi::Error::new(
                    napi::Status::GenericFailure,
                    "ERR_INTERNAL: Internal error in breakwater: a string could not be read"
                        .to_string(),
                ));
            }
            room = exact + 5;
        }
    }
}

impl TagText {
    /// The text with its tag character in front, or without one for tag 0.
    fn tagged(mut self, tag: u32) -> Option<String> {
        if tag == 0 {
            self.0.remove(0);
        } else if let Some(b) = self.0.first_mut() {
            *b = u8::try_from(tag).ok().filter(u8::is_ascii)?;
        }
        String::from_utf8(self.0).ok()
    }
}

/// A JS string of `text`: ASCII (most JSON) is created as Latin-1, a plain copy.
fn js_text<'env>(env: &'env Env, text: &str) -> napi::Result<JsString<'env>> {
    if text.is_ascii() {
        env.create_string_latin1(text.as_bytes())
    } else {
        env.create_string(text)
    }
}

#[napi]
pub struct NativeCache {
    cache: Cache,
    cfg: FallbackConfig,
}

/// The order in which `stats()` writes its numbers. The JS layer checks it at load.
const STATS_FIELDS: &[&str] = &[
    "entries",
    "bytes",
    "hits",
    "staleHits",
    "misses",
    "sets",
    "evictions",
    "expirations",
    "rejected",
];

#[napi(js_name = "cacheStatsFields")]
pub fn cache_stats_fields() -> Vec<&'static str> {
    STATS_FIELDS.to_vec()
}

#[napi]
impl NativeCache {
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<Object>, env: Option<Object>) -> napi::Result<Self> {
        let cfg = resolve(options.as_ref(), env.as_ref())?;
        let cache = Cache::new(CacheLimits {
            max_entries: cfg.cache_max_entries,
            max_bytes: u64::from(cfg.cache_max_bytes),
            stale_if_error_ms: cfg.stale_if_error_ms,
        });
        Ok(Self { cache, cfg })
    }

    #[napi]
    pub fn options(&self) -> ResolvedFallbackOptions {
        resolved(&self.cfg)
    }

    /// The fresh value, or null. Values are stored as set: the JS layer's encoding.
    #[napi(catch_unwind, ts_return_type = "string | null")]
    pub fn get<'env>(
        &mut self,
        env: &'env Env,
        service: String,
        key: String,
        now: f64,
    ) -> napi::Result<Option<JsString<'env>>> {
        match self.cache.get(&service, &key, now, false) {
            Some(h) => js_text(env, h.value).map(Some),
            None => Ok(None),
        }
    }

    /// Like `get`, but a stale value (within `staleIfErrorMs`) answers too; writes
    /// `[stale (0 or 1), ageMs, expiresAt]` into `out`.
    #[napi(catch_unwind, ts_return_type = "string | null")]
    pub fn lookup<'env>(
        &mut self,
        env: &'env Env,
        service: String,
        key: String,
        now: f64,
        mut out: Float64ArraySlice,
    ) -> napi::Result<Option<JsString<'env>>> {
        let Some(hit) = self.cache.get(&service, &key, now, true) else {
            return Ok(None);
        };
        // Safety: the JS thread that owns `out` is blocked in this call.
        let slots = unsafe { out.as_mut() };
        for (slot, v) in
            slots
                .iter_mut()
                .zip([f64::from(u8::from(hit.stale)), hit.age_ms, hit.expires_at])
        {
            *slot = v;
        }
        js_text(env, hit.value).map(Some)
    }

    /// Stores `text` for `ttlMs`, behind the character `tag` unless it is 0 (the JS layer's
    /// encoding: JSON as it is, a raw string behind a tag); false when it is larger than the
    /// whole byte budget.
    #[napi(
        catch_unwind,
        ts_args_type = "service: string, key: string, text: string, tag: number, ttlMs: number, now: number"
    )]
    pub fn set(
        &mut self,
        service: String,
        key: String,
        text: TagText,
        tag: u32,
        ttl_ms: f64,
        now: f64,
    ) -> napi::Result<bool> {
        let Some(value) = text.tagged(tag) else {
            return Err(to_js(crate::core::error::Error::Internal(format!(
                "cache tag {tag} is not an ASCII character"
            ))));
        };
        Ok(self.cache.set(&service, &key, value, ttl_ms, now).stored)
    }

    #[napi]
    pub fn remove(&mut self, service: String, key: String) -> bool {
        self.cache.remove(&service, &key)
    }

    #[napi]
    pub fn remove_service(&mut self, service: String) -> u32 {
        self.cache.remove_service(&service)
    }

    #[napi]
    pub fn clear(&mut self) -> u32 {
        self.cache.clear()
    }

    /// Writes the counters into `out` in `STATS_FIELDS` order.
    #[napi(catch_unwind)]
    pub fn stats(&self, mut out: Float64ArraySlice) {
        let s = self.cache.stats();
        let vals = [
            self.cache.len() as f64,
            self.cache.bytes() as f64,
            s.hits as f64,
            s.stale_hits as f64,
            s.misses as f64,
            s.sets as f64,
            s.evictions as f64,
            s.expirations as f64,
            s.rejected as f64,
        ];
        // Safety: the JS thread that owns `out` is blocked in this call.
        for (slot, v) in unsafe { out.as_mut() }.iter_mut().zip(vals) {
            *slot = v;
        }
    }
}
