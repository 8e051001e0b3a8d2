//! Running prepared executors on a tokio runtime, shared by `rollout` and `diff --check-drift`.

use atmos_core::exit::Exit;
use atmos_core::rollout::execute;

use super::Failure;

/// Run the waves on a tokio runtime, turning SIGINT/SIGTERM into a cancellation.
pub fn run_waves(
    prepared: &execute::Prepared,
    parallelism: usize,
    sink: execute::Events,
) -> Result<Vec<atmos_core::rollout::ComponentRun>, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::User {
            exit: Exit::Failed,
            message: format!("cannot start the async runtime: {e}"),
            hint: None,
            diagnostics: Vec::new(),
        })?;
    Ok(runtime.block_on(async {
        let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
        let signals = tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let term_recv = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term_recv => {}
            }
            let _ = cancel_tx.send(true);
        });
        let runs = execute::run(prepared, parallelism, sink, cancel_rx).await;
        signals.abort();
        runs
    }))
}
