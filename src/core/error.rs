//! The one error type of the core, with stable codes that the binding copies into `err.code`.

use std::fmt;

/// One problem with one configuration field: the JS field (or environment variable) name,
/// the value as the user gave it, and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigIssue {
    pub field: String,
    pub value: String,
    pub expected: String,
}

impl ConfigIssue {
    pub fn new(
        field: impl Into<String>,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            value: value.into(),
            expected: expected.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {} (expected {})",
            self.field, self.value, self.expected
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Every problem found in one configuration, reported together.
    InvalidConfig {
        context: String,
        issues: Vec<ConfigIssue>,
    },
    /// A bad argument to a method (not a constructor option).
    InvalidArgument(ConfigIssue),
    DuplicateBreaker {
        name: String,
    },
    UnknownBreaker {
        name: String,
    },
    /// The shared state (Redis) refused an operation: already connected, unreachable, ...
    SharedState(String),
    /// A bug in Breakwater itself (an illegal transition was requested). Never a panic.
    Internal(String),
    /// The retry queue holds `max` items already; nothing queued was dropped.
    QueueFull {
        max: u32,
    },
    /// `queueEnabled` is false.
    QueueDisabled,
    /// The queue was closed.
    QueueClosed,
    /// The Redis queue backend cannot reach Redis (or it did not answer in time): the item was
    /// not acknowledged, so the caller still owns it.
    QueueUnavailable(String),
    /// A value that cannot be stored as JSON (`what` names it, `reason` says why).
    NotSerializable {
        what: String,
        reason: String,
    },
    /// A journal that cannot be read back: the file, the byte offset and what is wrong.
    CorruptJournal {
        path: String,
        offset: u64,
        detail: String,
    },
    /// Reading, writing or syncing a journal failed.
    JournalIo {
        path: String,
        detail: String,
    },
    /// Another queue (in this process or another) has the journal open.
    JournalLocked {
        path: String,
    },
}

impl Error {
    /// The stable code that JS sees as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidConfig { .. } => "ERR_INVALID_CONFIG",
            Error::InvalidArgument(_) => "ERR_INVALID_ARGUMENT",
            Error::DuplicateBreaker { .. } => "ERR_DUPLICATE_BREAKER",
            Error::UnknownBreaker { .. } => "ERR_UNKNOWN_BREAKER",
            Error::SharedState(_) => "ERR_SHARED_STATE",
            Error::Internal(_) => "ERR_INTERNAL",
            Error::QueueFull { .. } => "ERR_QUEUE_FULL",
            Error::QueueDisabled => "ERR_QUEUE_DISABLED",
            Error::QueueClosed => "ERR_QUEUE_CLOSED",
            Error::QueueUnavailable(_) => "ERR_QUEUE_UNAVAILABLE",
            Error::NotSerializable { .. } => "ERR_NOT_SERIALIZABLE",
            Error::CorruptJournal { .. } => "ERR_CORRUPT_JOURNAL",
            Error::JournalIo { .. } => "ERR_JOURNAL_IO",
            Error::JournalLocked { .. } => "ERR_JOURNAL_LOCKED",
        }
    }

    pub fn invalid_config(context: impl Into<String>, issues: Vec<ConfigIssue>) -> Self {
        Error::InvalidConfig {
            context: context.into(),
            issues,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig { context, issues } => {
                write!(f, "Invalid {context}: ")?;
                for (i, issue) in issues.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{issue}")?;
                }
                Ok(())
            }
            Error::InvalidArgument(issue) => write!(f, "Invalid argument: {issue}"),
            Error::DuplicateBreaker { name } => {
                write!(
                    f,
                    "A circuit breaker named {name:?} already exists in this registry"
                )
            }
            Error::UnknownBreaker { name } => write!(f, "No circuit breaker named {name:?}"),
            Error::SharedState(msg) => write!(f, "Shared state: {msg}"),
            Error::Internal(msg) => write!(f, "Internal error in breakwater: {msg}"),
            Error::QueueFull { max } => write!(
                f,
                "The retry queue is full: maxQueueSize ({max}) items are waiting; this item was not queued and nothing queued was dropped"
            ),
            Error::QueueDisabled => {
                f.write_str("The retry queue is disabled (queueEnabled is false)")
            }
            Error::QueueClosed => f.write_str("The retry queue is closed"),
            Error::QueueUnavailable(msg) => write!(
                f,
                "The Redis retry queue is unavailable ({msg}); the item was not queued"
            ),
            Error::NotSerializable { what, reason } => {
                write!(f, "{what} cannot be stored as JSON: {reason}")
            }
            Error::CorruptJournal {
                path,
                offset,
                detail,
            } => write!(
                f,
                "The queue journal {path:?} is corrupt at byte {offset}: {detail}. Move the file aside to start with an empty queue, or restore it from a backup"
            ),
            Error::JournalIo { path, detail } => {
                write!(f, "The queue journal {path:?} could not be used: {detail}")
            }
            Error::JournalLocked { path } => write!(
                f,
                "The queue journal {path:?} is in use by another RequestQueue (in this process or another); close that one first"
            ),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_config_names_every_field() {
        let e = Error::invalid_config(
            "circuit breaker options",
            vec![
                ConfigIssue::new("failureThreshold", "0", "an integer from 1 to 1000000"),
                ConfigIssue::new("failureRateThreshold", "1.5", "a number from 0 to 1"),
            ],
        );
        assert_eq!(e.code(), "ERR_INVALID_CONFIG");
        let msg = e.to_string();
        assert!(msg.contains("failureThreshold = 0 (expected an integer from 1 to 1000000)"));
        assert!(msg.contains("failureRateThreshold = 1.5"));
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            Error::DuplicateBreaker { name: "a".into() }.code(),
            "ERR_DUPLICATE_BREAKER"
        );
        assert_eq!(
            Error::UnknownBreaker { name: "a".into() }.code(),
            "ERR_UNKNOWN_BREAKER"
        );
        assert_eq!(Error::Internal("x".into()).code(), "ERR_INTERNAL");
        assert_eq!(Error::QueueFull { max: 1 }.code(), "ERR_QUEUE_FULL");
        assert_eq!(Error::QueueDisabled.code(), "ERR_QUEUE_DISABLED");
        assert_eq!(Error::QueueClosed.code(), "ERR_QUEUE_CLOSED");
        assert_eq!(
            Error::QueueUnavailable("x".into()).code(),
            "ERR_QUEUE_UNAVAILABLE"
        );
        let e = Error::NotSerializable {
            what: "payload".into(),
            reason: "a function".into(),
        };
        assert_eq!(e.code(), "ERR_NOT_SERIALIZABLE");
        assert_eq!(
            e.to_string(),
            "payload cannot be stored as JSON: a function"
        );
        let e = Error::CorruptJournal {
            path: "/tmp/q.journal".into(),
            offset: 16,
            detail: "bad checksum".into(),
        };
        assert_eq!(e.code(), "ERR_CORRUPT_JOURNAL");
        assert!(e
            .to_string()
            .contains("\"/tmp/q.journal\" is corrupt at byte 16"));
        assert_eq!(
            Error::JournalIo {
                path: "p".into(),
                detail: "d".into()
            }
            .code(),
            "ERR_JOURNAL_IO"
        );
        assert_eq!(
            Error::JournalLocked { path: "p".into() }.code(),
            "ERR_JOURNAL_LOCKED"
        );
        assert_eq!(Error::SharedState("x".into()).code(), "ERR_SHARED_STATE");
    }
}
