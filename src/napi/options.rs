//! Reads a plain JS options object into the core's `(key, Value)` pairs.

use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{Object, Unknown};
use napi::ValueType;

use crate::core::options::Value;

use super::error::from_napi;

pub fn value_of(v: &Unknown) -> napi::Result<Value> {
    let t = v.get_type().map_err(from_napi)?;
    Ok(match t {
        ValueType::Undefined => Value::Undefined,
        ValueType::Null => Value::Null,
        ValueType::Boolean => Value::Bool(unsafe { v.cast::<bool>() }.map_err(from_napi)?),
        ValueType::Number => Value::Number(unsafe { v.cast::<f64>() }.map_err(from_napi)?),
        ValueType::String => Value::Text(unsafe { v.cast::<String>() }.map_err(from_napi)?),
        ValueType::Function => Value::Function,
        ValueType::Object | ValueType::External => Value::Object,
        ValueType::BigInt => Value::Other("bigint"),
        ValueType::Symbol => Value::Other("symbol"),
        _ => Value::Other("value of an unknown type"),
    })
}

/// The own enumerable string keys of `obj` with their values.
pub fn entries(obj: &Object) -> napi::Result<Vec<(String, Value)>> {
    let keys = Object::keys(obj).map_err(from_napi)?;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let v: Unknown = obj.get_named_property(&k).map_err(from_napi)?;
        out.push((k, value_of(&v)?));
    }
    Ok(out)
}

/// A reader of an environment record (`process.env`, or a plain object in tests).
pub fn env_lookup<'a>(env: Option<&'a Object<'a>>) -> impl Fn(&str) -> Option<String> + 'a {
    move |key| {
        let env = env?;
        let v: Unknown = env.get_named_property(key).ok()?;
        match v.get_type().ok()? {
            ValueType::String => unsafe { v.cast::<String>() }.ok(),
            _ => None,
        }
    }
}
