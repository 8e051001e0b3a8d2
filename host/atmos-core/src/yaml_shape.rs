//! Limits on the shape of a YAML document (deployment files, atmos.yaml, policy data, history
//! records), checked on the event stream before anything builds a
//! value from it: aliases may not expand it past a size (a "billion laughs" file of 1 MB
//! expands to gigabytes), and nesting may not go deeper than any deployment needs (100,000
//! nested `[` would cost every later pass time and memory proportional to depth × size).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};

use crate::diagnostic::Span;

/// The most a file may expand to through aliases: 16 MiB, or 8 times its own size.
pub fn max_expanded(text_len: usize) -> usize {
    (16 << 20).max(text_len.saturating_mul(8))
}

/// The most nodes (scalars, mappings, sequences) a file may expand to, aliases included: each
/// costs a few hundred bytes once parsed, whatever its text.
pub const MAX_NODES: usize = 250_000;

/// The deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;

/// Why a file's shape is refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
    /// Where.
    pub at: Span,
}

/// Walk the events of `text` and refuse a file that expands or nests too far. Syntax errors
/// are left to the real parser, which reports them with more context.
pub fn check(text: &str) -> Result<(), ShapeError> {
    let limit = max_expanded(text.len());
    let mut parser = Parser::new_from_str(text);
    // Size and node count of each anchored node, and of the anchored collections still open.
    let mut sizes: HashMap<usize, (usize, usize)> = HashMap::new();
    let mut open: Vec<(usize, (usize, usize))> = Vec::new();
    let mut nodes = 0usize;
    let mut depth = 0usize;
    let mut total = 0usize;
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            // The scanner's own limit on flow nesting (`[[[…`): the same refusal.
            Err(e) if e.info().contains("recursion limit") => {
                return Err(ShapeError {
                    message: format!("nested deeper than {MAX_DEPTH} levels"),
                    hint: "a deployment file needs a few levels; flatten this structure".into(),
                    at: Span {
                        line: e.marker().line(),
                        column: e.marker().col() + 1,
                    },
                });
            }
            // Syntax errors are reported by the real parser, with more context.
            Err(_) => return Ok(()),
        };
        let at = Span {
            line: mark.line(),
            column: mark.col() + 1,
        };
        let (add, count) = match &event {
            Event::StreamEnd => return Ok(()),
            Event::Scalar(value, _, anchor, _) => {
                let n = (value.len() + 1, 1);
                if *anchor > 0 {
                    sizes.insert(*anchor, n);
                }
                n
            }
            Event::Alias(id) => sizes.get(id).copied().unwrap_or((1, 1)),
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ShapeError {
                        message: format!("nested deeper than {MAX_DEPTH} levels"),
                        hint: "a deployment file needs a few levels; flatten this structure".into(),
                        at,
                    });
                }
                open.push((*anchor, (0, 0)));
                (1, 1)
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.saturating_sub(1);
                if let Some((anchor, (size, count))) = open.pop() {
                    if anchor > 0 {
                        sizes.insert(anchor, (size + 1, count + 1));
                    }
                    if let Some(parent) = open.last_mut() {
                        parent.1.0 = parent.1.0.saturating_add(size);
                        parent.1.1 = parent.1.1.saturating_add(count);
                    }
                }
                (0, 0)
            }
            _ => (0, 0),
        };
        if let Some(current) = open.last_mut() {
            current.1.0 = current.1.0.saturating_add(add);
            current.1.1 = current.1.1.saturating_add(count);
        }
        total = total.saturating_add(add);
        nodes = nodes.saturating_add(count);
        if nodes > MAX_NODES {
            return Err(ShapeError {
                message: format!("this file holds more than {MAX_NODES} values (aliases expanded)"),
                hint: "configuration files hold a few thousand values; split the data, or use fewer and smaller anchors".into(),
                at,
            });
        }
        if total > limit {
            return Err(ShapeError {
                message: format!(
                    "aliases expand this file past {} MiB",
                    limit >> 20
                ),
                hint: "each alias (*name) copies what its anchor (&name) holds; use fewer, or smaller anchors".into(),
                at,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_anchors_pass_and_bombs_are_refused() {
        check("a: &x {b: 1}\nc: *x\nd: [*x, *x]\n").expect("fine");
        let mut bomb = String::from("a: &x \"");
        bomb.push_str(&"y".repeat(1 << 20));
        bomb.push_str("\"\nb: [");
        bomb.push_str(&vec!["*x"; 10_000].join(", "));
        bomb.push_str("]\n");
        let e = check(&bomb).expect_err("bomb");
        assert!(e.message.contains("aliases expand"), "{e:?}");
        // Nested laughs: each level doubles.
        let mut nested = String::from("l0: &l0 [\"ha\", \"ha\"]\n");
        for i in 1..40 {
            nested.push_str(&format!("l{i}: &l{i} [*l{}, *l{}]\n", i - 1, i - 1));
        }
        assert!(check(&nested).is_err());
        // Many small values, by aliases or written out, cost memory too.
        let ones = vec!["1"; 1000].join(",");
        let aliases = vec!["*a"; 1000].join(",");
        let laughs = format!("a: &a [{ones}]\nb: &b [{aliases}]\nc: [*b]\n");
        let e = check(&laughs).expect_err("nodes");
        assert!(e.message.contains("more than 250000 values"), "{e:?}");
        let plain = format!("l: [{}]\n", vec!["1"; 300_000].join(","));
        assert!(check(&plain).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        let deep = "[".repeat(100_000);
        let e = check(&deep).expect_err("deep");
        assert!(e.message.contains("nested deeper"), "{e:?}");
        assert_eq!(e.at.line, 1);
        check(&format!("{}1{}", "[".repeat(30), "]".repeat(30))).expect("30 levels is fine");
    }
}
