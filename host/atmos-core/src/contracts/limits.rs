//! How big each thing atmos keeps in git may be. The server guard refuses anything larger,
//! and every reader checks the size before it reads (from the object's header), so a hostile
//! push cannot make a guard or a reader hold gigabytes. A public contract
//! (docs/git-layout.md#limits).

/// A history record: the whole tag object (headers, message, signature).
pub const RECORD_MAX: usize = 64 * 1024;

/// One line of an approvals or builds note.
pub const NOTE_LINE_MAX: usize = 16 * 1024;

/// An approvals or builds note (every line of one commit's note).
pub const NOTE_MAX: usize = 1024 * 1024;

/// An executor log kept as a note (256 KiB of output, with its truncation marker).
pub const LOG_NOTE_MAX: usize = 512 * 1024;

/// An SBOM note.
pub const SBOM_NOTE_MAX: usize = 16 * 1024 * 1024;

/// A lease blob (`refs/atmos/locks/<d>/<t>`).
pub const LEASE_MAX: usize = 4 * 1024;

/// One month file of an archive ledger.
pub const LEDGER_FILE_MAX: usize = 64 * 1024 * 1024;

/// The most a note of `kind` (`approvals`, `builds`, `logs`, `sbom`) may hold.
pub fn note_max(kind: &str) -> usize {
    match kind {
        "logs" => LOG_NOTE_MAX,
        "sbom" => SBOM_NOTE_MAX,
        _ => NOTE_MAX,
    }
}

/// Why `text` is not a note of JSON lines atmos reads, if it is not: UTF-8 with no NUL and no
/// control character but the newline, each line at most [`NOTE_LINE_MAX`] bytes. A line cut
/// short by a NUL (as a C string would read it) can never hide the lines after it.
pub fn json_lines_problem(bytes: &[u8]) -> Option<String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some("is not UTF-8".into());
    };
    for (n, line) in text.split('\n').enumerate() {
        if line.len() > NOTE_LINE_MAX {
            return Some(format!(
                "line {} holds {} bytes; a line is at most {NOTE_LINE_MAX}",
                n + 1,
                line.len()
            ));
        }
        if let Some(c) = line.chars().find(|c| c.is_control()) {
            return Some(format!(
                "line {} holds the control character {}",
                n + 1,
                c.escape_unicode()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_lines_are_utf8_printable_and_bounded() {
        assert_eq!(json_lines_problem(b"{\"a\":1}\n{\"b\":2}\n"), None);
        assert!(
            json_lines_problem(b"{\"a\":1}\n\0\n{\"r\":1}\n")
                .is_some_and(|p| p.contains("line 2") && p.contains("\\u{0}"))
        );
        assert!(json_lines_problem(b"caf\xe9").is_some_and(|p| p.contains("UTF-8")));
        let long = "x".repeat(NOTE_LINE_MAX + 1);
        assert!(json_lines_problem(long.as_bytes()).is_some_and(|p| p.contains("line 1")));
        assert!(json_lines_problem(b"a\r\nb").is_some());
    }
}
