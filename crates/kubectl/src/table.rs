//! Column alignment exactly as kubectl does it: Go's elastic tabstops (`text/tabwriter`) with
//! kubectl's settings — `get` pads every column to max(6, widest cell + 3), `describe` to
//! widest cell + 2, both per block of consecutive lines that have the column.

use std::io::Write;
use tabwriter::TabWriter;

/// Settings of one kubectl tab writer.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Go's `minwidth`: the least width of a column, padding included.
    pub min_width: usize,
    pub padding: usize,
}

/// `kubectl get`'s printer: minwidth 6, padding 3.
pub const GET: Layout = Layout {
    min_width: 6,
    padding: 3,
};

/// `kubectl describe`'s writer: minwidth 0, padding 2.
pub const DESCRIBE: Layout = Layout {
    min_width: 0,
    padding: 2,
};

/// Aligns tab-separated `text` (cells end with `\t`, lines with `\n`).
pub fn align(text: &str, layout: Layout) -> String {
    // Go computes max(minwidth, cell + padding); the tabwriter crate computes
    // max(minwidth', cell) + padding, so minwidth' = minwidth - padding gives the same widths.
    let mut tw = TabWriter::new(Vec::with_capacity(text.len() * 2))
        .minwidth(layout.min_width.saturating_sub(layout.padding))
        .padding(layout.padding);
    // Writing into a Vec cannot fail.
    let _ = tw.write_all(text.as_bytes());
    let _ = tw.flush();
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// kubectl's cell sanitising: a cell is cut at its first line break (then `...`), and ESC
/// is shown as `^[` so that object data cannot drive the terminal.
pub fn cell(s: &str) -> String {
    let (head, cut) = match s.find(['\n', '\r', '\u{c}']) {
        Some(i) => (&s[..i], true),
        None => (s, false),
    };
    let mut out = head.replace('\u{1b}', "^[").replace('\t', " ");
    if cut {
        out.push_str("...");
    }
    out
}

/// describe's escaping of free text: ESC becomes `^[`, CR the two characters `\r`.
pub fn escape(s: &str) -> String {
    s.replace('\u{1b}', "^[").replace('\r', "\\r")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_layout_pads_to_cell_plus_three_with_minimum_six() {
        let out = align("NAME\tREADY\tSTATUS\nab\t0/1\tRunning\n", GET);
        assert_eq!(out, "NAME   READY   STATUS\nab     0/1     Running\n");
    }

    #[test]
    fn describe_layout_aligns_blocks_separately() {
        let text = "Name:\tx\nNamespace:\tdefault\nIPs:\n  IP:\t10.0.0.1\nStatus:\t\n";
        let out = align(text, DESCRIBE);
        assert_eq!(
            out,
            "Name:       x\nNamespace:  default\nIPs:\n  IP:    10.0.0.1\nStatus:  \n"
        );
    }

    #[test]
    fn cells_never_break_the_table() {
        assert_eq!(cell("a\nb"), "a...");
        assert_eq!(cell("x\u{1b}[31m"), "x^[[31m");
        assert_eq!(escape("a\rb"), "a\\rb");
    }
}
