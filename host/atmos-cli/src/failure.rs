//! Why a command stopped, mapped to an exit code in one place: every library error knows its
//! exit code, hint and diagnostics (`Actionable`); the few problems only the command line
//! can see (a flag combination, an unsupported `--format`) are [`Usage`] errors.

use std::fmt;

use atmos_core::error::Actionable;
use atmos_core::exit::Exit;

/// Why a command stopped.
#[derive(Debug)]
pub enum Failure {
    /// Stdout was closed (e.g. `| head`): not an error.
    ClosedPipe,
    /// An error to report, with its exit code and hint.
    Error(Box<dyn Actionable>),
}

impl Failure {
    /// Bad usage (exit 2) seen by the command line itself.
    pub fn usage(message: impl Into<String>, hint: Option<String>) -> Failure {
        Failure::Error(Box::new(Usage {
            message: message.into(),
            hint,
        }))
    }

    /// The exit code.
    pub fn exit(&self) -> Exit {
        match self {
            Failure::ClosedPipe => Exit::Done,
            Failure::Error(e) => e.exit(),
        }
    }
}

impl<E: Actionable> From<E> for Failure {
    fn from(e: E) -> Failure {
        let closed = (&e as &dyn std::any::Any)
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
        if closed {
            Failure::ClosedPipe
        } else {
            Failure::Error(Box::new(e))
        }
    }
}

/// A problem with the command line itself.
#[derive(Debug)]
pub struct Usage {
    message: String,
    hint: Option<String>,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Usage {}

impl Actionable for Usage {
    fn exit(&self) -> Exit {
        Exit::Usage
    }

    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}
