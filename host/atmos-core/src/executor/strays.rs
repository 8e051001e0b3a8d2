//! Processes a command leaves behind. Each command runs in its own process group, which
//! atmos stops when the command ends, times out or is interrupted; a process that left the
//! group (`setsid`, a daemon that double-forks) is found by a token every command carries
//! in its environment ([`RUN_ENV`]), which its descendants inherit, and stopped too. (A
//! process that clears its environment *and* leaves the group escapes this; running
//! executors in a cgroup of their own closes that, where the system provides one.)

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The environment variable that marks every process a command starts.
pub const RUN_ENV: &str = "ATMOS_EXECUTOR_RUN";

/// A token no other command of any atmos process on this machine carries.
pub fn token(component: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}.{}.{}.{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        component
    )
}

/// The processes whose environment carries `token` (those this process may read: its
/// user's).
pub fn find(token: &str) -> Vec<i32> {
    let needle = format!("{RUN_ENV}={token}");
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in proc.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
            && let Ok(pid) = i32::try_from(pid)
        {
            out.push(pid);
        }
    }
    out
}

/// Stop every process carrying `token`: SIGTERM, a moment to end, then SIGKILL. Returns how
/// many there were.
pub async fn stop(token: &str) -> usize {
    let found = find(token);
    if found.is_empty() {
        return 0;
    }
    for pid in &found {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline && !find(token).is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pid in find(token) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    found.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_process_that_left_its_group_is_found_by_its_token_and_stopped() {
        let token = token("a");
        let mut child = std::process::Command::new("setsid")
            .args(["sh", "-c", "sleep 60"])
            .env(RUN_ENV, &token)
            .spawn()
            .expect("setsid");
        let started = std::time::Instant::now();
        while find(&token).is_empty() && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!find(&token).is_empty(), "found by its token");
        assert!(
            find(&super::token("b")).is_empty(),
            "another token finds nothing"
        );
        assert!(stop(&token).await >= 1);
        let status = child.wait().expect("reaped");
        assert!(!status.success(), "it was stopped, not left to finish");
        assert!(find(&token).is_empty());
    }
}
