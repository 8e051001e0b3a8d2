//! Where each YAML node sits in its file, so that errors found on the parsed value (schema
//! violations, semantic checks) can point at `file:line:column` instead of a JSON pointer.
//!
//! serde gives us values without positions; this module walks the same text once more with
//! `yaml-rust2`'s event parser and records, for every JSON pointer, the position of the node
//! and of its mapping key. The same walk detects duplicate keys, which serde would silently
//! collapse into the last one.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

pub use crate::diagnostic::Span;

/// Position of one node: the key that introduced it (for mapping values) and the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePos {
    /// Position of the mapping key, when the node is a mapping value.
    pub key: Option<Span>,
    /// Position of the value.
    pub value: Span,
}

/// A key that appears twice in the same mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// JSON pointer of the mapping that holds the key.
    pub parent: String,
    /// The repeated key.
    pub key: String,
    /// Where it appears first.
    pub first: Span,
    /// Where it appears again.
    pub again: Span,
}

/// JSON pointer → position for every node of a YAML document.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    nodes: HashMap<String, NodePos>,
    /// Keys repeated within one mapping, in file order.
    pub duplicates: Vec<DuplicateKey>,
    /// Every tag written in the file (`!env`, `!!str`), as the parser resolved its handle
    /// (`!` + `env`, `tag:yaml.org,2002:` + `str`), with where it is.
    pub tags: Vec<(String, String, Span)>,
}

impl SourceMap {
    /// Index `text`. Returns `None` when the text is not YAML that the event parser accepts;
    /// callers then fall back to the positions serde reports.
    pub fn build(text: &str) -> Option<SourceMap> {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        parser.load(&mut builder, false).ok()?;
        Some(SourceMap {
            nodes: builder.nodes,
            duplicates: builder.duplicates,
            tags: builder.tags,
        })
    }

    /// The position of the node at `pointer` (`""` is the document root).
    pub fn get(&self, pointer: &str) -> Option<NodePos> {
        self.nodes.get(pointer).copied()
    }

    /// The best position for `pointer`: the node itself, or the nearest ancestor that exists.
    pub fn nearest(&self, pointer: &str) -> Option<NodePos> {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.get(p) {
                return Some(pos);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }
}

/// Escape one JSON pointer segment (RFC 6901).
pub fn escape_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Join JSON pointer segments into a pointer.
pub fn pointer<S: AsRef<str>>(segments: &[S]) -> String {
    segments
        .iter()
        .map(|s| format!("/{}", escape_segment(s.as_ref())))
        .collect()
}

/// Split a JSON pointer into unescaped segments.
pub fn split_pointer(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

enum Frame {
    Mapping {
        path: String,
        seen: HashMap<String, Span>,
        pending_key: Option<(String, Span)>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    nodes: HashMap<String, NodePos>,
    duplicates: Vec<DuplicateKey>,
    tags: Vec<(String, String, Span)>,
    stack: Vec<Frame>,
    /// Set while the key of a mapping is itself a collection (complex keys): ignore inside it.
    complex_key_depth: usize,
}

fn span(mark: Marker) -> Span {
    Span {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

impl Builder {
    /// Where the next value goes: its pointer and the key that introduced it.
    fn next_value_slot(&mut self) -> (String, Option<Span>) {
        match self.stack.last_mut() {
            None => (String::new(), None),
            Some(Frame::Sequence { path, next }) => {
                let p = format!("{path}/{next}");
                *next += 1;
                (p, None)
            }
            Some(Frame::Mapping {
                path, pending_key, ..
            }) => match pending_key.take() {
                Some((key, key_span)) => {
                    (format!("{path}/{}", escape_segment(&key)), Some(key_span))
                }
                None => (format!("{path}/?"), None),
            },
        }
    }

    /// True when the next scalar is a mapping key rather than a value.
    fn expecting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Mapping {
                pending_key: None,
                ..
            })
        )
    }

    fn record_key(&mut self, key: String, at: Span) {
        if let Some(Frame::Mapping {
            path,
            seen,
            pending_key,
        }) = self.stack.last_mut()
        {
            if let Some(first) = seen.get(&key) {
                self.duplicates.push(DuplicateKey {
                    parent: path.clone(),
                    key: key.clone(),
                    first: *first,
                    again: at,
                });
            } else {
                seen.insert(key.clone(), at);
            }
            *pending_key = Some((key, at));
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = span(mark);
        if let Event::Scalar(_, _, _, Some(tag))
        | Event::MappingStart(_, Some(tag))
        | Event::SequenceStart(_, Some(tag)) = &ev
        {
            self.tags.push((tag.handle.clone(), tag.suffix.clone(), at));
        }
        if self.complex_key_depth > 0 {
            match ev {
                Event::MappingStart(..) | Event::SequenceStart(..) => self.complex_key_depth += 1,
                Event::MappingEnd | Event::SequenceEnd => {
                    self.complex_key_depth -= 1;
                    if self.complex_key_depth == 0 {
                        self.record_key("?".to_owned(), at);
                    }
                }
                _ => {}
            }
            return;
        }
        match ev {
            Event::Scalar(value, ..) if self.expecting_key() => self.record_key(value, at),
            Event::Scalar(..) | Event::Alias(_) => {
                let (path, key) = self.next_value_slot();
                self.nodes.insert(path, NodePos { key, value: at });
            }
            Event::MappingStart(..) | Event::SequenceStart(..) if self.expecting_key() => {
                self.complex_key_depth = 1;
            }
            Event::MappingStart(..) => {
                let (path, key) = self.next_value_slot();
                self.nodes.insert(path.clone(), NodePos { key, value: at });
                self.stack.push(Frame::Mapping {
                    path,
                    seen: HashMap::new(),
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let (path, key) = self.next_value_slot();
                self.nodes.insert(path.clone(), NodePos { key, value: at });
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
deployment:
  name: demo
  targets:
    dev: {}
    prod:
      promotion:
        from: dev
  list:
    - a
    - b: 1
";

    #[test]
    fn positions_of_keys_and_values() {
        let map = SourceMap::build(DOC).expect("valid yaml");
        let name = map.get("/deployment/name").expect("name");
        assert_eq!(name.key, Some(Span { line: 2, column: 3 }));
        assert_eq!(name.value, Span { line: 2, column: 9 });
        let from = map
            .get("/deployment/targets/prod/promotion/from")
            .expect("from");
        assert_eq!(
            from.value,
            Span {
                line: 7,
                column: 15
            }
        );
        assert_eq!(map.get("/deployment/list/1/b").expect("b").value.line, 10);
        assert_eq!(map.get("/deployment/list/0").expect("a").value.column, 7);
    }

    #[test]
    fn nearest_falls_back_to_ancestors() {
        let map = SourceMap::build(DOC).expect("valid yaml");
        let pos = map
            .nearest("/deployment/targets/prod/missing/deeper")
            .expect("ancestor");
        assert_eq!(pos.key, Some(Span { line: 5, column: 5 }));
    }

    #[test]
    fn duplicate_keys_are_reported_with_both_positions() {
        let map = SourceMap::build("a: 1\nb:\n  c: 1\n  c: 2\n").expect("valid yaml");
        assert_eq!(map.duplicates.len(), 1);
        let dup = &map.duplicates[0];
        assert_eq!((dup.parent.as_str(), dup.key.as_str()), ("/b", "c"));
        assert_eq!(dup.first, Span { line: 3, column: 3 });
        assert_eq!(dup.again, Span { line: 4, column: 3 });
    }

    #[test]
    fn pointer_segments_are_escaped_and_split() {
        let p = pointer(&["components", "ecs/api", "a~b"]);
        assert_eq!(p, "/components/ecs~1api/a~0b");
        assert_eq!(split_pointer(&p), vec!["components", "ecs/api", "a~b"]);
    }
}
