//! Plain aligned tables, as the commands print them.

/// How many terminal columns `text` takes: a wide character (CJK, most emoji) takes two, a
/// combining mark none — so columns line up whatever the names are written in.
pub fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// A table: a header and rows of cells.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row. Cells hold data from records anyone may have written: control characters
    /// (a newline that fakes a line, a terminal escape) are shown, not obeyed.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows
            .push(cells.into_iter().map(|c| visible(&c.into())).collect());
    }

    /// True when no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Render with columns padded to their widest cell, separated by at least 4 spaces.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                line.push_str(cell);
                if i + 1 < columns {
                    let pad = widths[i] - width(cell) + 4;
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = Table::new(["Name", "Targets"]);
        t.row(["payment-service", "dev, prod"]);
        t.row(["x", ""]);
        assert_eq!(
            t.render(),
            "Name               Targets\npayment-service    dev, prod\nx\n"
        );
        // Wide characters take two columns: the next column still lines up.
        let mut t = Table::new(["Name", "Status"]);
        t.row(["支付", "ok"]);
        t.row(["abcd", "ok"]);
        assert_eq!(t.render(), "Name    Status\n支付    ok\nabcd    ok\n");
    }
}

/// `text` with control characters shown as escapes (`\n`, `\e`, `\u{7}`): safe to print
/// whatever a record holds.
pub fn visible(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            '\u{1b}' => "\\e".to_owned(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Text of several lines made inert for a terminal and for CI log parsers: control
/// characters other than the line breaks are shown (as [`visible`] does), and a line that
/// would start with `::` (a GitHub Actions workflow command, after the runner trims leading
/// blanks) is marked with `> `, so that a value quoted in an error or a gate's message cannot
/// issue one.
pub fn inert(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            let line = visible(line);
            if line.trim_start().starts_with("::") {
                format!("> {line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod visible_tests {
    #[test]
    fn inert_text_keeps_its_lines_and_issues_no_workflow_command() {
        assert_eq!(super::inert("a\nb"), "a\nb");
        assert_eq!(
            super::inert("no target `x\n  ::add-mask::s`\r::error::y"),
            "no target `x\n>   ::add-mask::s`\\r::error::y"
        );
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(super::visible("plain"), "plain");
        assert_eq!(
            super::visible("a\nFAKE: Approved by: ceo\u{1b}[2J\u{7}"),
            "a\\nFAKE: Approved by: ceo\\e[2J\\u{7}"
        );
    }
}
