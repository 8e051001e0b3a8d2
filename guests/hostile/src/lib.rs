//! `hostile`: a test guest that misbehaves on purpose, so the tests can show the host denies
//! each kind of misbehaviour within its limit and keeps working. Never bind it for real.
//!
//! Config: `{"mode": "<mode>"}` with mode one of `loop`, `memory`, `recursion`, `trap`,
//! `big-output`, `passwd`, `read` and `write` (of `path`), `ambient` (reports clock, env, args), `allow`.

use serde::Deserialize;

wit_bindgen::generate!({ world: "gate", path: "../../wit" });

use atmos::hooks::types::Outcome;

#[derive(Deserialize)]
struct Config {
    mode: String,
    #[serde(default)]
    path: String,
}

/// Recursion that lives on the WebAssembly stack (no locals spilled to linear memory), so
/// it is the host's `max_wasm_stack` that stops it.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    1 + recurse(depth + 1)
}

fn evaluate(config: &str) -> Result<Vec<Finding>, String> {
    let config: Config = serde_json::from_str(config).map_err(|e| format!("bad config: {e}"))?;
    match config.mode.as_str() {
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "recursion" => {
            let n = recurse(0);
            Err(format!("recursion returned {n}"))
        }
        "panic" => panic!("hostile guest panicked on purpose: {}", config.path),
        "trap" => {
            #[cfg(target_arch = "wasm32")]
            core::arch::wasm32::unreachable();
            #[cfg(not(target_arch = "wasm32"))]
            unreachable!()
        }
        "big-output" => Ok(vec![Finding {
            outcome: Outcome::Allow,
            code: "big".into(),
            message: "x".repeat(8 * 1024 * 1024),
        }]),
        "passwd" => match std::fs::read_to_string("/etc/passwd") {
            Ok(text) => Ok(vec![Finding {
                outcome: Outcome::Allow,
                code: "leaked".into(),
                message: text,
            }]),
            Err(e) => Err(format!("could not open /etc/passwd: {e}")),
        },
        "read" => match std::fs::read_to_string(&config.path) {
            Ok(text) => Ok(vec![Finding {
                outcome: Outcome::Warn,
                code: "read".into(),
                message: text,
            }]),
            Err(e) => Err(format!("could not read {}: {e}", config.path)),
        },
        "write" => match std::fs::write(&config.path, "tampered") {
            Ok(()) => Ok(vec![Finding {
                outcome: Outcome::Allow,
                code: "wrote".into(),
                message: format!("wrote {}", config.path),
            }]),
            Err(e) => Err(format!("could not write {}: {e}", config.path)),
        },
        "ambient" => {
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let t0 = std::time::Instant::now();
            let mut spin: u64 = 0;
            for i in 0..1_000_000u64 {
                spin = std::hint::black_box(spin.wrapping_add(i));
            }
            Ok(vec![Finding {
                outcome: Outcome::Warn,
                code: "ambient".into(),
                message: format!(
                    "clock={clock} monotonic_ns={} env={} args={}",
                    t0.elapsed().as_nanos(),
                    std::env::vars().count(),
                    std::env::args().count()
                ),
            }])
        }
        "allow" => {
            log("hostile guest in allow mode");
            Ok(Vec::new())
        }
        other => Err(format!("unknown mode `{other}`")),
    }
}

struct Hostile;

impl Guest for Hostile {
    fn evaluate(_input: String, config: String) -> Result<Vec<Finding>, String> {
        evaluate(&config)
    }
}

export!(Hostile);
