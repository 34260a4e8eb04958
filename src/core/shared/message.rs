//! The messages on the fleet's channel, as JSON objects with a `type`:
//!
//! - `{type:'open', name, instance, remainingMs, votes, cause}`: published by the vote script
//!   when a quorum is reached; `remainingMs` is the open key's PTTL (Redis' clock).
//! - `{type:'close', name, instance}`: a trial succeeded.
//! - `{type:'forced', name, instance, state:'forced_open'|'disabled'}`: an operator forced it.
//! - `{type:'reset', name, instance}`: an operator reset it.
//!
//! Decoding is strict: anything else on the channel is refused, never half-applied.

use serde_json::{json, Map, Value};

/// The operator states that are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forced {
    ForcedOpen,
    Disabled,
}

impl Forced {
    pub fn as_str(self) -> &'static str {
        match self {
            Forced::ForcedOpen => "forced_open",
            Forced::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "forced_open" => Some(Forced::ForcedOpen),
            "disabled" => Some(Forced::Disabled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MessageKind {
    Open {
        remaining_ms: f64,
        votes: u32,
        cause: String,
    },
    Close,
    Forced(Forced),
    Reset,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub name: String,
    pub instance: String,
    pub kind: MessageKind,
}

impl Message {
    pub fn encode(&self) -> String {
        let mut v = json!({ "name": self.name, "instance": self.instance });
        let Some(obj) = v.as_object_mut() else {
            return String::new(); // unreachable: `json!({..})` is an object
        };
        match &self.kind {
            MessageKind::Open {
                remaining_ms,
                votes,
                cause,
            } => {
                obj.insert("type".into(), "open".into());
                obj.insert("remainingMs".into(), json!(remaining_ms));
                obj.insert("votes".into(), json!(votes));
                obj.insert("cause".into(), json!(cause));
            }
            MessageKind::Close => {
                obj.insert("type".into(), "close".into());
            }
            MessageKind::Forced(f) => {
                obj.insert("type".into(), "forced".into());
                obj.insert("state".into(), f.as_str().into());
            }
            MessageKind::Reset => {
                obj.insert("type".into(), "reset".into());
            }
        }
        v.to_string()
    }

    pub fn decode(text: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(text).ok()?;
        let obj = v.as_object()?;
        let name = non_empty(obj, "name")?;
        let instance = non_empty(obj, "instance")?;
        let kind = match obj.get("type")?.as_str()? {
            "open" => {
                let remaining_ms = obj.get("remainingMs")?.as_f64()?;
                if !(remaining_ms.is_finite() && remaining_ms > 0.0) {
                    return None; // an expired open (PTTL -2 or -1) carries nothing to adopt
                }
                let votes = u32::try_from(obj.get("votes")?.as_u64()?).ok()?;
                let cause = obj.get("cause").and_then(Value::as_str).unwrap_or("");
                MessageKind::Open {
                    remaining_ms,
                    votes,
                    cause: cause.to_string(),
                }
            }
            "close" => MessageKind::Close,
            "forced" => MessageKind::Forced(Forced::parse(obj.get("state")?.as_str()?)?),
            "reset" => MessageKind::Reset,
            _ => return None,
        };
        Some(Self {
            name,
            instance,
            kind,
        })
    }
}

fn non_empty(obj: &Map<String, Value>, key: &str) -> Option<String> {
    let s = obj.get(key)?.as_str()?;
    (!s.is_empty()).then(|| s.to_string())
}

/// The value stored in the open key: who opened, why, for how long, with how many votes.
pub fn open_value(instance: &str, cause: &str, ms: f64, votes: u32) -> String {
    json!({ "instance": instance, "cause": cause, "ms": ms, "votes": votes }).to_string()
}

/// The votes recorded in an open key's value (0 if unreadable).
pub fn open_value_votes(text: &str) -> u32 {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("votes")?.as_u64())
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: MessageKind) -> Message {
        Message {
            name: "openai_api".into(),
            instance: "gw-1".into(),
            kind,
        }
    }

    #[test]
    fn every_kind_round_trips() {
        for kind in [
            MessageKind::Open {
                remaining_ms: 59_998.0,
                votes: 2,
                cause: "consecutive_failures".into(),
            },
            MessageKind::Close,
            MessageKind::Forced(Forced::ForcedOpen),
            MessageKind::Forced(Forced::Disabled),
            MessageKind::Reset,
        ] {
            let m = msg(kind);
            assert_eq!(Message::decode(&m.encode()), Some(m.clone()), "{m:?}");
        }
    }

    #[test]
    fn decodes_what_the_lua_script_publishes() {
        // cjson.encode output: keys in any order, integers without a fraction.
        let text = r#"{"votes":1,"cause":"failure_rate","remainingMs":1500,"type":"open","instance":"gw-2","name":"a \"quoted\" name"}"#;
        assert_eq!(
            Message::decode(text),
            Some(Message {
                name: "a \"quoted\" name".into(),
                instance: "gw-2".into(),
                kind: MessageKind::Open {
                    remaining_ms: 1_500.0,
                    votes: 1,
                    cause: "failure_rate".into()
                },
            })
        );
    }

    #[test]
    fn refuses_anything_else() {
        for text in [
            "",
            "not json",
            "[]",
            r#"{"type":"open","name":"a","instance":"i","votes":1}"#,
            r#"{"type":"open","name":"a","instance":"i","votes":1,"remainingMs":-2}"#,
            r#"{"type":"open","name":"a","instance":"i","votes":-1,"remainingMs":5}"#,
            r#"{"type":"close","name":"","instance":"i"}"#,
            r#"{"type":"close","name":"a"}"#,
            r#"{"type":"forced","name":"a","instance":"i","state":"closed"}"#,
            r#"{"type":"half_open","name":"a","instance":"i"}"#,
            r#"{"type":7,"name":"a","instance":"i"}"#,
        ] {
            assert_eq!(Message::decode(text), None, "{text}");
        }
    }

    #[test]
    fn open_values_carry_their_votes() {
        let v = open_value("gw-1", "trial_failed", 2_000.0, 3);
        assert_eq!(open_value_votes(&v), 3);
        assert_eq!(open_value_votes("garbage"), 0);
    }
}
