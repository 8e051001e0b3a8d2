//! The hidden `atmos __gates evaluate|test`: the isolated policy evaluator, one JSON request
//! on stdin and one answer on stdout, so that a policy that crashes the evaluator denies
//! instead of killing the command that asked.

use atmos_core::exit::Exit;

use crate::failure::Failure;

/// The hidden `__gates evaluate|test` child: one JSON request on stdin, one answer on stdout.
pub fn serve(mode: &str) -> Result<Exit, Failure> {
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let served = match mode {
        "evaluate" => atmos_core::gates::isolation::serve_evaluate(&mut stdin, &mut stdout),
        _ => atmos_core::gates::isolation::serve_tests(&mut stdin, &mut stdout),
    };
    served?;
    Ok(Exit::Done)
}
