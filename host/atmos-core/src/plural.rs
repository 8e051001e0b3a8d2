//! Counting things in messages: the one place that decides between "1 record" and
//! "2 records", so that every message a person reads agrees.

/// `"s"` unless `n` is 1: `format!("{n} record{}", plural::s(n))`.
pub fn s(n: impl TryInto<usize>) -> &'static str {
    if n.try_into().ok() == Some(1) {
        ""
    } else {
        "s"
    }
}

/// `"1 record"`, `"3 records"`: `n` and the noun, with an `s` unless `n` is 1.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", s(n))
}

/// `n` and `one` or `many` (nouns whose plural is not an added `s`).
pub fn count_as(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `"has"` or `"have"`, agreeing with `n`.
pub fn has_have(n: usize) -> &'static str {
    if n == 1 { "has" } else { "have" }
}

/// `"is"` or `"are"`, agreeing with `n`.
pub fn is_are(n: usize) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_everything_else_plural() {
        assert_eq!(count(1, "record"), "1 record");
        assert_eq!(count(0, "record"), "0 records");
        assert_eq!(count(2, "ref"), "2 refs");
        assert_eq!(count_as(1, "entry", "entries"), "1 entry");
        assert_eq!(count_as(3, "entry", "entries"), "3 entries");
        assert_eq!(is_are(1), "is");
        assert_eq!(is_are(0), "are");
        assert_eq!((s(1u32), s(2u64), s(-1i64)), ("", "s", "s"));
    }
}
