//! What every library error tells the person who hit it: the exit code a script branches on
//! (`exit`), the next step (`hint`), and the located problems behind it (`diagnostics`).
//! Each area's error enum implements [`Actionable`]; a front end maps any of them in one
//! place instead of attaching codes and hints by hand.

use crate::diagnostic::Diagnostic;
use crate::exit::Exit;

/// An error that knows its exit code and how to get past it.
pub trait Actionable: std::error::Error + Send + Sync + 'static {
    /// The exit code of a command that stops on this error.
    fn exit(&self) -> Exit;

    /// What to run or change next, when that is clear.
    fn hint(&self) -> Option<String> {
        None
    }

    /// Located problems in the user's files behind this error.
    fn diagnostics(&self) -> &[Diagnostic] {
        &[]
    }
}

/// Reading or writing a local file failed: the machine's problem, not the user's input.
impl Actionable for std::io::Error {
    fn exit(&self) -> Exit {
        Exit::Failed
    }
}
