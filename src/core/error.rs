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
        assert_eq!(Error::SharedState("x".into()).code(), "ERR_SHARED_STATE");
    }
}
