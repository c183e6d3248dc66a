//! Why a request was refused.

use crate::target::Unreachable;
use m1studio_shared::Diagnostic;

/// Why a request was refused; each maps to one HTTP status and one CLI message.
#[derive(Debug)]
pub enum Problem {
    /// The design is wrong: every diagnostic, nothing created.
    Invalid(Vec<Diagnostic>),
    /// The request itself is malformed.
    BadRequest(String),
    /// A request refused by M1's rules: every reason, each naming its field; `now` when the
    /// cluster's present state is the reason (it may pass later).
    Refused {
        /// Whether it is the cluster's state now.
        now: bool,
        /// Every reason.
        diagnostics: Vec<Diagnostic>,
    },
    /// No such deployment.
    NotFound(String),
    /// The cluster name is taken, or the deployment is busy.
    Conflict(String),
    /// The Docker engine cannot be reached.
    Unavailable(String),
    /// Anything else.
    Internal(anyhow::Error),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Invalid(diagnostics) => {
                write!(f, "the design has problems; nothing was created")?;
                for d in diagnostics.iter().filter(|d| d.is_error()) {
                    write!(f, "\n  {d}")?;
                }
                Ok(())
            }
            Problem::Refused { diagnostics, .. } => {
                let reasons: Vec<String> = diagnostics
                    .iter()
                    .map(|d| format!("{}: {}", d.path, d.message))
                    .collect();
                f.write_str(&reasons.join("\n"))
            }
            Problem::BadRequest(m)
            | Problem::NotFound(m)
            | Problem::Conflict(m)
            | Problem::Unavailable(m) => f.write_str(m),
            Problem::Internal(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Problem {
        Problem::Internal(e)
    }
}

impl From<Unreachable> for Problem {
    fn from(unreachable: Unreachable) -> Problem {
        match unreachable {
            Unreachable::Engine(e) => Problem::Unavailable(format!("{e:#}")),
            Unreachable::Design(diagnostics) => Problem::Invalid(diagnostics),
        }
    }
}
