//! The one place where core errors become JS errors. napi-rs sets `err.code` from its own
//! status, so the stable code travels as a `CODE: ` prefix of the message, and the JS layer's
//! `lib/errors.js` turns it back into `err.code` (the only other place that knows this format).

use crate::core::error::Error;

pub fn to_js(e: Error) -> napi::Error {
    napi::Error::new(napi::Status::InvalidArg, format!("{}: {}", e.code(), e))
}

/// A failure of napi itself (a wrong JS type reaching a typed parameter, say).
pub fn from_napi(e: napi::Error) -> napi::Error {
    napi::Error::new(
        napi::Status::InvalidArg,
        format!("ERR_INVALID_ARGUMENT: {}", e.reason),
    )
}
