//! Validation of user options, shared by every configurable class. The binding turns a JS
//! object into `(key, Value)` pairs; everything else (types, ranges, unknown keys) happens
//! here, once, and every problem is collected into one `ERR_INVALID_CONFIG`.

use super::error::{ConfigIssue, Error, Result};

/// A JS value as far as validation needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Function,
    Object,
    /// Another JS type, by name (`bigint`, `symbol`, ...).
    Other(&'static str),
}

impl Value {
    /// How the value is shown in an error message.
    pub fn describe(&self) -> String {
        match self {
            Value::Undefined => "undefined".into(),
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => fmt_num(*n),
            Value::Text(s) => format!("{s:?}"),
            Value::Function => "a function".into(),
            Value::Object => "an object".into(),
            Value::Other(t) => format!("a {t}"),
        }
    }
}

pub fn fmt_num(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        // Integers print without a trailing ".0", as JS prints them.
        format!("{n}")
    }
}

/// The kinds a host-only option (a callback, a clock) may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Function,
    Object,
    ObjectOrNull,
    Text,
}

/// The largest duration we accept: about 24.8 days, the range of a JS timer.
pub const MAX_DURATION_MS: f64 = 2_147_483_647.0;

pub struct Options {
    context: &'static str,
    entries: Vec<(String, Value, bool)>,
    issues: Vec<ConfigIssue>,
}

impl Options {
    pub fn new(context: &'static str, entries: Vec<(String, Value)>) -> Self {
        Self {
            context,
            entries: entries.into_iter().map(|(k, v)| (k, v, false)).collect(),
            issues: Vec::new(),
        }
    }

    /// The value of `key`, marked as known. `undefined` counts as absent.
    fn take(&mut self, key: &str) -> Option<Value> {
        let e = self.entries.iter_mut().find(|(k, _, _)| k == key)?;
        e.2 = true;
        match &e.1 {
            Value::Undefined => None,
            v => Some(v.clone()),
        }
    }

    pub fn issue(&mut self, field: &str, value: String, expected: impl Into<String>) {
        self.issues.push(ConfigIssue::new(field, value, expected));
    }

    fn number(&mut self, key: &str, nullable: bool, expected: &str) -> Option<f64> {
        match self.take(key)? {
            Value::Number(n) => Some(n),
            Value::Null if nullable => None,
            other => {
                self.issue(key, other.describe(), expected);
                None
            }
        }
    }

    /// A whole count within `min..=max`.
    pub fn count(&mut self, key: &str, min: u32, max: u32) -> Option<u32> {
        let expected = format!("an integer from {min} to {max}");
        let n = self.number(key, false, &expected)?;
        if n.fract() == 0.0 && n >= f64::from(min) && n <= f64::from(max) {
            Some(n as u32)
        } else {
            self.issue(key, fmt_num(n), expected);
            None
        }
    }

    /// A duration in ms, `> 0` (or `>= 0` when `allow_zero`) and at most `MAX_DURATION_MS`.
    pub fn duration(&mut self, key: &str, allow_zero: bool, nullable: bool) -> Option<f64> {
        let expected = if allow_zero {
            format!("a number of milliseconds from 0 to {MAX_DURATION_MS}")
        } else {
            format!("a number of milliseconds greater than 0 and at most {MAX_DURATION_MS}")
        };
        let n = self.number(key, nullable, &expected)?;
        let low_ok = if allow_zero { n >= 0.0 } else { n > 0.0 };
        if low_ok && n <= MAX_DURATION_MS {
            Some(n)
        } else {
            self.issue(key, fmt_num(n), expected);
            None
        }
    }

    /// A fraction in `0..=1`, or `(0, 1]` unless `allow_zero`.
    pub fn fraction(&mut self, key: &str, allow_zero: bool, nullable: bool) -> Option<f64> {
        let expected = if allow_zero {
            "a number from 0 to 1".to_string()
        } else {
            "a number greater than 0 and at most 1".to_string()
        };
        let n = self.number(key, nullable, &expected)?;
        let low_ok = if allow_zero { n >= 0.0 } else { n > 0.0 };
        if low_ok && n <= 1.0 {
            Some(n)
        } else {
            self.issue(key, fmt_num(n), expected);
            None
        }
    }

    /// A finite number within `min..=max`.
    pub fn range(&mut self, key: &str, min: f64, max: f64) -> Option<f64> {
        let expected = format!("a number from {} to {}", fmt_num(min), fmt_num(max));
        let n = self.number(key, false, &expected)?;
        if n >= min && n <= max {
            Some(n)
        } else {
            self.issue(key, fmt_num(n), expected);
            None
        }
    }

    /// A string of `min_chars..=max_chars` characters; `null` counts as absent when `nullable`.
    pub fn text(
        &mut self,
        key: &str,
        min_chars: usize,
        max_chars: usize,
        nullable: bool,
    ) -> Option<String> {
        let expected = if min_chars == 0 {
            format!("a string of at most {max_chars} characters")
        } else {
            format!("a string of {min_chars} to {max_chars} characters")
        };
        match self.take(key)? {
            Value::Null if nullable => None,
            Value::Text(s) => {
                let n = s.chars().count();
                if n >= min_chars && n <= max_chars {
                    Some(s)
                } else {
                    self.issue(key, Value::Text(s).describe(), expected);
                    None
                }
            }
            other => {
                self.issue(key, other.describe(), expected);
                None
            }
        }
    }

    /// Whether `key` is given (and not `undefined`), without marking it as known.
    pub fn given(&self, key: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, v, _)| k == key && *v != Value::Undefined)
    }

    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.take(key)? {
            Value::Bool(b) => Some(b),
            other => {
                self.issue(key, other.describe(), "true or false");
                None
            }
        }
    }

    /// A host-only option: only its kind is checked here.
    pub fn host(&mut self, key: &str, kind: Kind) {
        let Some(v) = self.take(key) else { return };
        let ok = matches!(
            (kind, &v),
            (Kind::Function, Value::Function)
                | (Kind::Object, Value::Object)
                | (Kind::ObjectOrNull, Value::Object | Value::Null)
                | (Kind::Text, Value::Text(_))
        );
        if !ok {
            let expected = match kind {
                Kind::Function => "a function",
                Kind::Object => "an object",
                Kind::ObjectOrNull => "an object or null",
                Kind::Text => "a string",
            };
            self.issue(key, v.describe(), expected);
        }
    }

    /// Unknown keys become issues; then all issues, if any, become one error.
    pub fn finish(mut self, known: &[&str]) -> Result<()> {
        let unknown: Vec<(String, String)> = self
            .entries
            .iter()
            .filter(|(_, _, seen)| !seen)
            .map(|(k, v, _)| (k.clone(), v.describe()))
            .collect();
        for (k, v) in unknown {
            let hint = closest(&k, known)
                .map(|s| format!("a known option (did you mean {s:?}?)"))
                .unwrap_or_else(|| format!("one of the known options: {}", known.join(", ")));
            self.issues
                .push(ConfigIssue::new(format!("unknown option {k:?}"), v, hint));
        }
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid_config(self.context, self.issues))
        }
    }
}

/// The known option nearest to a typo, by edit distance (at most 3 edits).
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (levenshtein(&key.to_lowercase(), &k.to_lowercase()), *k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Option entries from literals, for tests of the configs built on this module.
#[cfg(test)]
pub(crate) fn layer(entries: &[(&str, Value)]) -> Vec<(String, Value)> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(entries: &[(&str, Value)]) -> Options {
        Options::new(
            "test options",
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn collects_every_problem_into_one_error() {
        let mut o = opts(&[
            ("a", Value::Number(0.0)),
            ("b", Value::Text("5".into())),
            ("c", Value::Number(1.5)),
            ("failureTreshold", Value::Number(3.0)),
        ]);
        assert_eq!(o.count("a", 1, 10), None);
        assert_eq!(o.count("b", 1, 10), None);
        assert_eq!(o.fraction("c", true, false), None);
        let err = o.finish(&["a", "b", "c", "failureThreshold"]).unwrap_err();
        let Error::InvalidConfig { issues, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(issues.len(), 4);
        let msg = err.to_string();
        assert!(
            msg.contains("a = 0 (expected an integer from 1 to 10)"),
            "{msg}"
        );
        assert!(msg.contains("b = \"5\""), "{msg}");
        assert!(
            msg.contains("c = 1.5 (expected a number from 0 to 1)"),
            "{msg}"
        );
        assert!(msg.contains("did you mean \"failureThreshold\""), "{msg}");
    }

    #[test]
    fn undefined_is_absent_and_null_only_where_nullable() {
        let mut o = opts(&[
            ("x", Value::Undefined),
            ("y", Value::Null),
            ("z", Value::Null),
        ]);
        assert_eq!(o.duration("x", false, false), None);
        assert_eq!(o.duration("y", false, true), None);
        assert_eq!(o.duration("z", false, false), None);
        let msg = o.finish(&["x", "y", "z"]).unwrap_err().to_string();
        assert!(msg.contains("z = null"), "{msg}");
        assert!(!msg.contains("y = null"), "{msg}");
    }

    #[test]
    fn rejects_non_finite_and_fractional_counts() {
        let mut o = opts(&[
            ("n", Value::Number(f64::NAN)),
            ("i", Value::Number(f64::INFINITY)),
            ("f", Value::Number(2.5)),
        ]);
        assert_eq!(o.duration("n", false, false), None);
        assert_eq!(o.duration("i", false, false), None);
        assert_eq!(o.count("f", 1, 10), None);
        let msg = o.finish(&["n", "i", "f"]).unwrap_err().to_string();
        assert!(msg.contains("n = NaN") && msg.contains("i = Infinity") && msg.contains("f = 2.5"));
    }

    #[test]
    fn host_kinds_are_checked() {
        let mut o = opts(&[("fallback", Value::Number(1.0)), ("registry", Value::Null)]);
        o.host("fallback", Kind::Function);
        o.host("registry", Kind::ObjectOrNull);
        let msg = o.finish(&["fallback", "registry"]).unwrap_err().to_string();
        assert!(msg.contains("fallback = 1 (expected a function)"), "{msg}");
        assert!(!msg.contains("registry"), "{msg}");
    }

    #[test]
    fn text_accepts_strings_and_null_only_where_nullable() {
        let mut o = opts(&[
            ("a", Value::Text("x".into())),
            ("b", Value::Null),
            ("c", Value::Number(1.0)),
            ("d", Value::Null),
        ]);
        assert_eq!(o.text("a", 0, 100, false), Some("x".to_string()));
        assert_eq!(o.text("b", 0, 100, true), None);
        assert_eq!(o.text("c", 0, 100, true), None);
        assert_eq!(o.text("d", 0, 100, false), None);
        let msg = o.finish(&["a", "b", "c", "d"]).unwrap_err().to_string();
        assert!(
            msg.contains("c = 1 (expected a string of at most 100 characters)"),
            "{msg}"
        );
        assert!(
            msg.contains("d = null (expected a string of at most 100 characters)"),
            "{msg}"
        );
        assert!(!msg.contains("b = null"), "{msg}");
    }
}
