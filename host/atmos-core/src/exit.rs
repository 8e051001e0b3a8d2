//! The exit codes: a public contract that CI scripts branch on.

/// What a command's outcome means to a calling script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Done = 0,
    /// 1: an executor or git operation failed.
    Failed = 1,
    /// 2: bad usage or invalid config.
    Usage = 2,
    /// 3: denied by a gate.
    Denied = 3,
    /// 4: pending (approval missing, lock held).
    Pending = 4,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}
