//! WebAssembly hooks: components of the `atmos:hooks/gate` world (`wit/hooks.wit`), run by
//! wasmtime with no ambient authority — WASI with nothing granted (no files, network,
//! environment or arguments; a fixed clock; no stdio) — and bounded in memory, fuel, stack,
//! wall-clock time (epoch interruption) and input/output size. One engine and linker per
//! run, a pre-instantiated component per hook, a fresh store per evaluation; compiled
//! components are cached on disk by wasmtime (keyed by the component's hash and the engine's
//! compiler settings and version), so a warm run does not recompile.
//!
//! Everything that goes wrong — a missing file, a component for another world, a trap, a
//! timeout, a cap hit, output too large or malformed — is a `deny` naming the hook.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::config::model::HookConfig;
use crate::contracts::{Decision, GateAction, Verdict};

mod bindings {
    wasmtime::component::bindgen!({
        world: "gate",
        path: "../../wit",
    });
}

use bindings::atmos::hooks::types::Outcome;

/// Default caps of one evaluation.
pub const DEFAULT_MEMORY_MB: u64 = 64;
/// Default wall-clock limit.
pub const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// Default fuel (roughly, WebAssembly instructions).
pub const DEFAULT_FUEL: u64 = 1_000_000_000;
/// Largest input document passed to a hook.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// Largest total of findings' text a hook may return.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Largest total of log lines kept per evaluation.
pub const MAX_LOG_BYTES: usize = 64 * 1024;
/// Message of the decision of a hook that found nothing.
pub const NO_FINDINGS: &str = "no findings";
/// Stack available to guest code.
pub const MAX_STACK_BYTES: usize = 512 * 1024;

/// How much of a guest's stderr is kept (a panic message fits many times over).
pub const MAX_STDERR_BYTES: usize = 16 * 1024;

/// The largest hook file loaded (a compiled policy component is a few MB).
pub const MAX_HOOK_BYTES: u64 = 64 << 20;

/// Why a hook cannot run at all (as opposed to running and failing, which is a decision).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The engine, linker or epoch thread could not be set up.
    #[error("the WebAssembly runtime could not start: {0}")]
    Runtime(String),
    /// The `wasm:` file is not there.
    #[error("{path} does not exist")]
    Missing {
        /// As bound.
        path: String,
    },
    /// The `wasm:` path is there but is no regular file of a sane size.
    #[error("{path} {why}")]
    NotAFile {
        /// As bound.
        path: String,
        /// What it is instead.
        why: String,
    },
    /// The file is not a component (a core module, or not WebAssembly).
    #[error("{path} is not a WebAssembly component: {reason}")]
    NotAComponent {
        /// As bound.
        path: String,
        /// wasmtime's reason.
        reason: String,
    },
    /// A component whose imports or exports are not the `atmos:hooks/gate` world's.
    #[error("{path} does not fit the atmos:hooks/gate world: {reason}")]
    WrongWorld {
        /// As bound.
        path: String,
        /// wasmtime's reason.
        reason: String,
    },
}

/// Per-store state: WASI with nothing granted, caps, and the hook's log.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    logs: Vec<String>,
    log_bytes: usize,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::GateImports for HostState {
    fn log(&mut self, message: String) {
        if self.log_bytes + message.len() <= MAX_LOG_BYTES {
            self.log_bytes += message.len();
            self.logs.push(message);
        } else if self.logs.last().is_none_or(|l| l != "(log truncated)") {
            self.logs.push("(log truncated)".into());
        }
    }
}

impl bindings::atmos::hooks::types::Host for HostState {}

/// The fixed wall clock hooks see (the evaluation's `now`), so results do not depend on when
/// exactly the guest reads the clock.
struct FixedClock(Duration);

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

struct FixedMonotonic;

impl wasmtime_wasi::HostMonotonicClock for FixedMonotonic {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A loaded hook: compiled and pre-instantiated, or the reason it cannot run.
struct Loaded {
    config: HookConfig,
    root: PathBuf,
    pre: Result<bindings::GatePre<HostState>, HookError>,
}

/// The hooks of one run.
pub struct HookSet {
    engine: Engine,
    hooks: Vec<Loaded>,
    stop_ticker: Arc<AtomicBool>,
}

impl std::fmt::Debug for HookSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookSet")
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl Drop for HookSet {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Epoch ticks per second: the wall-clock cap's resolution.
const TICKS_PER_SECOND: u64 = 1000;

fn engine(cache_dir: Option<&Path>) -> Result<Engine, HookError> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_STACK_BYTES);
    if let Some(dir) = cache_dir {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        match wasmtime::Cache::new(cache) {
            Ok(c) => {
                config.cache(Some(c));
            }
            Err(_) => {
                // Without a cache every run compiles: slower, still correct.
            }
        }
    }
    Engine::new(&config).map_err(|e| HookError::Runtime(e.to_string()))
}

fn runtime(e: wasmtime::Error) -> HookError {
    HookError::Runtime(e.to_string())
}

impl HookSet {
    /// Compile (or load from the cache) and pre-instantiate `hooks`.
    pub fn load(
        root: &Path,
        hooks: &[HookConfig],
        cache_dir: Option<&Path>,
    ) -> Result<HookSet, HookError> {
        let engine = engine(cache_dir)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(runtime)?;
        bindings::Gate::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(runtime)?;
        let loaded = hooks
            .iter()
            .map(|h| {
                let path = root.join(&h.wasm);
                // Look before reading: a FIFO would block, a device or a 2 GB file would be
                // read whole.
                let meta = std::fs::metadata(&path);
                let pre = if let Err(e) = &meta
                    && e.kind() == std::io::ErrorKind::NotFound
                {
                    Err(HookError::Missing {
                        path: h.wasm.clone(),
                    })
                } else if let Some(why) = match &meta {
                    Err(e) => Some(format!("cannot be read: {e}")),
                    Ok(m) if !m.is_file() => {
                        Some("is not a regular file (a folder, FIFO or device)".to_owned())
                    }
                    Ok(m) if m.len() > MAX_HOOK_BYTES => Some(format!(
                        "is {} MB, over the {} MB a hook may be",
                        m.len() >> 20,
                        MAX_HOOK_BYTES >> 20
                    )),
                    Ok(_) => None,
                } {
                    Err(HookError::NotAFile {
                        path: h.wasm.clone(),
                        why,
                    })
                } else {
                    Component::from_file(&engine, &path)
                        .map_err(|e| HookError::NotAComponent {
                            path: h.wasm.clone(),
                            reason: e.to_string(),
                        })
                        .and_then(|c| {
                            linker
                                .instantiate_pre(&c)
                                .map_err(|e| HookError::WrongWorld {
                                    path: h.wasm.clone(),
                                    reason: e.to_string(),
                                })
                        })
                        .and_then(|pre| {
                            bindings::GatePre::new(pre).map_err(|e| HookError::WrongWorld {
                                path: h.wasm.clone(),
                                reason: e.to_string(),
                            })
                        })
                };
                Loaded {
                    config: h.clone(),
                    root: root.to_path_buf(),
                    pre,
                }
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = stop.clone();
        std::thread::Builder::new()
            .name("atmos-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1000 / TICKS_PER_SECOND));
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| HookError::Runtime(e.to_string()))?;
        Ok(HookSet {
            engine,
            hooks: loaded,
            stop_ticker: stop,
        })
    }

    /// Evaluate every hook that runs on `action` against `input`.
    pub fn evaluate(
        &self,
        action: GateAction,
        input: &serde_json::Value,
        now: Duration,
    ) -> Vec<Decision> {
        let input_text = serde_json::to_string(input).unwrap_or_default();
        let mut out = Vec::new();
        for hook in self.hooks.iter().filter(|h| h.config.runs_on(action)) {
            out.extend(self.evaluate_one(hook, &input_text, now));
        }
        out
    }

    fn evaluate_one(&self, hook: &Loaded, input: &str, now: Duration) -> Vec<Decision> {
        let name = format!("hook:{}", hook.config.name);
        let fail = |kind: &str, message: String| {
            vec![Decision {
                source: name.clone(),
                package: Some(hook.config.wasm.clone()),
                rule: "evaluate".into(),
                result: Verdict::Deny,
                message: format!("{message} (fail closed)"),
                code: None,
                fix: None,
                logs: Vec::new(),
                error: Some(kind.to_owned()),
            }]
        };
        let deny = |message: String| fail("load", message);
        let pre = match &hook.pre {
            Ok(p) => p,
            Err(e) => return deny(format!("hook `{}` cannot run: {e}", hook.config.name)),
        };
        if input.len() > MAX_INPUT_BYTES {
            return fail(
                "input",
                format!(
                    "the input document is {} bytes, over the {MAX_INPUT_BYTES}-byte cap",
                    input.len()
                ),
            );
        }
        let limits = hook.config.limits;
        let memory = limits.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        let timeout = limits.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        let fuel = limits.fuel.unwrap_or(DEFAULT_FUEL);
        let mut wasi = WasiCtxBuilder::new();
        wasi.wall_clock(FixedClock(now))
            .monotonic_clock(FixedMonotonic);
        for dir in &hook.config.read_only_dirs {
            let inside = Path::new(dir).components().all(|c| {
                matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            });
            if !inside {
                return deny(format!(
                    "hook `{}` asks for `{dir}`, which is not a folder inside the project",
                    hook.config.name
                ));
            }
            // The real folder, symlinks resolved: a committed link to `/` is not a folder
            // inside the project.
            let host = hook.root.join(dir);
            let real = host.canonicalize();
            let root = hook.root.canonicalize();
            let contained = match (&real, &root) {
                (Ok(real), Ok(root)) => real.starts_with(root) && real.is_dir(),
                _ => false,
            };
            if !contained {
                return deny(format!(
                    "hook `{}` asks for `{dir}`, which {}",
                    hook.config.name,
                    match real {
                        Ok(r) if !r.is_dir() => "is not a folder".to_owned(),
                        Ok(r) => format!("resolves to {} outside the project", r.display()),
                        Err(e) => format!("cannot be opened: {e}"),
                    }
                ));
            }
            let host = real.unwrap_or(host);
            if let Err(e) = wasi.preopened_dir(&host, dir, FsPerms::ReadOnly) {
                return deny(format!(
                    "hook `{}` cannot be granted `{dir}`: {e}",
                    hook.config.name
                ));
            }
        }
        // The guest's stderr is kept (bounded): a Rust panic prints its message there, and a
        // trap without it says nothing useful. Writing past the bound traps the guest.
        let stderr = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(MAX_STDERR_BYTES);
        wasi.stderr(stderr.clone());
        let wasi = wasi.build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(usize::try_from(memory * 1024 * 1024).unwrap_or(usize::MAX))
                .instances(16)
                .tables(16)
                .memories(4)
                .trap_on_grow_failure(true)
                .build(),
            logs: Vec::new(),
            log_bytes: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        if store.set_fuel(fuel).is_err() {
            return deny("fuel metering is unavailable".into());
        }
        store.set_epoch_deadline((timeout * TICKS_PER_SECOND).div_ceil(1000).max(1));
        let config = serde_json::to_string(&hook.config.config).unwrap_or_else(|_| "null".into());
        let started = Instant::now();
        let result = pre
            .instantiate(&mut store)
            .and_then(|gate| gate.call_evaluate(&mut store, input, &config));
        let elapsed = started.elapsed();
        let logs = std::mem::take(&mut store.data_mut().logs);
        // What the guest wrote, without the Rust runtime's backtrace advice.
        let said = String::from_utf8_lossy(&stderr.contents())
            .lines()
            .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_owned();
        let mut decisions = match result {
            Err(e) => {
                let remaining_fuel = store.get_fuel().unwrap_or(1);
                let text = format!("{e:?}");
                let (kind, why) = if remaining_fuel == 0 {
                    ("fuel", format!("ran out of fuel ({fuel} units)"))
                } else if text.contains("interrupt") || elapsed >= Duration::from_millis(timeout) {
                    (
                        "timeout",
                        format!("exceeded its time limit of {timeout} ms"),
                    )
                } else if text.contains("stack overflow") || text.contains("call stack exhausted") {
                    ("stack", "exhausted its stack".to_owned())
                } else if text.contains("memory")
                    && (text.contains("grow")
                        || text.contains("limit")
                        || text.contains("resource"))
                {
                    ("memory", format!("hit its memory cap of {memory} MiB"))
                } else {
                    ("trap", format!("trapped: {}", e.root_cause()))
                };
                let panic = if said.is_empty() {
                    String::new()
                } else {
                    format!("; it wrote: {said}")
                };
                fail(kind, format!("hook `{}` {why}{panic}", hook.config.name))
            }
            Ok(Err(message)) => fail(
                "error",
                format!("hook `{}` returned an error: {message}", hook.config.name),
            ),
            Ok(Ok(findings)) => {
                let size: usize = findings
                    .iter()
                    .map(|f| f.code.len() + f.message.len())
                    .sum();
                if size > MAX_OUTPUT_BYTES {
                    fail(
                        "output",
                        format!(
                            "hook `{}` returned {size} bytes of findings, over the {MAX_OUTPUT_BYTES}-byte cap",
                            hook.config.name
                        ),
                    )
                } else if findings.is_empty() {
                    vec![Decision {
                        source: name.clone(),
                        package: Some(hook.config.wasm.clone()),
                        rule: "evaluate".into(),
                        result: Verdict::Allow,
                        message: NO_FINDINGS.to_owned(),
                        code: None,
                        fix: None,
                        logs: Vec::new(),
                        error: None,
                    }]
                } else {
                    findings
                        .into_iter()
                        .map(|f| Decision {
                            source: name.clone(),
                            package: Some(hook.config.wasm.clone()),
                            rule: "evaluate".into(),
                            result: match f.outcome {
                                Outcome::Allow => Verdict::Allow,
                                Outcome::Warn => Verdict::Warn,
                                Outcome::Deny => Verdict::Deny,
                            },
                            message: f.message,
                            code: (!f.code.is_empty()).then_some(f.code),
                            fix: None,
                            logs: Vec::new(),
                            error: None,
                        })
                        .collect()
                }
            }
        };
        // The hook's log travels with its first decision: printed with -v, kept in the record.
        if let Some(first) = decisions.first_mut() {
            first.logs = logs;
        }
        decisions
    }

    /// Each hook that cannot run (for `validate`), with the reason.
    pub fn problems(&self) -> Vec<(String, HookError)> {
        self.hooks
            .iter()
            .filter_map(|h| {
                h.pre
                    .as_ref()
                    .err()
                    .map(|e| (h.config.name.clone(), e.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(on: Vec<GateAction>) -> HookConfig {
        HookConfig {
            name: "h".into(),
            wasm: "h.wasm".into(),
            config: serde_json::Value::Null,
            on,
            limits: crate::config::model::Limits::default(),
            read_only_dirs: Vec::new(),
        }
    }

    #[test]
    fn without_on_a_hook_gates_changes_but_not_approvals() {
        let h = hook(Vec::new());
        for action in [
            GateAction::Rollout,
            GateAction::Promote,
            GateAction::Rollback,
        ] {
            assert!(h.runs_on(action), "{action:?}");
        }
        assert!(!h.runs_on(GateAction::Approve));
        let h = hook(vec![GateAction::Approve, GateAction::Promote]);
        assert!(h.runs_on(GateAction::Approve) && h.runs_on(GateAction::Promote));
        assert!(!h.runs_on(GateAction::Rollout) && !h.runs_on(GateAction::Rollback));
    }

    #[test]
    fn a_hook_that_cannot_load_denies_naming_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("h.wasm"), b"not wasm").expect("write");
        let set = HookSet::load(dir.path(), &[hook(Vec::new())], None).expect("engine");
        let problems = set.problems();
        assert_eq!(problems.len(), 1);
        assert!(
            matches!(&problems[0].1, HookError::NotAComponent { path, .. } if path == "h.wasm"),
            "{problems:?}"
        );
        let d = set.evaluate(GateAction::Rollout, &serde_json::json!({}), Duration::ZERO);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].result, Verdict::Deny);
        assert_eq!(d[0].source, "hook:h");
        assert!(
            d[0].message
                .starts_with("hook `h` cannot run: h.wasm is not a WebAssembly component")
        );
        assert!(d[0].message.ends_with("(fail closed)"));
        // Not bound to approvals: nothing runs, nothing is decided.
        assert!(
            set.evaluate(GateAction::Approve, &serde_json::json!({}), Duration::ZERO)
                .is_empty()
        );
    }
}
