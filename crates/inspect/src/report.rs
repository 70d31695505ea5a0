//! What a view produces: a table whose cells know their meaning (a byte count, a time, a
//! duration), so people get `1.2KB` and `00:01:02.345` while tools get raw numbers in JSON.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

/// One cell of a view's table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A fixed word, e.g. a direction (no string built for each row).
    Word(&'static str),
    Int(i64),
    Count(u64),
    Bytes(u64),
    /// Nanoseconds since the epoch.
    Time(u64),
    /// Nanoseconds.
    Duration(u64),
    /// A horizontal bar of `n` of `max` for plots.
    Bar(u64, u64),
    Empty,
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

/// A cell on one line: a command line or a path may hold newlines and tabs, which would
/// break the table; they are shown escaped, as `\n`.
fn one_line(s: String) -> String {
    if !s.chars().any(char::is_control) {
        return s;
    }
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

impl Cell {
    /// [`Cell::text`] written to `w`, without building the string when the cell holds it
    /// or a number.
    pub fn write_text(&self, w: &mut impl Write) -> io::Result<()> {
        match self {
            Cell::Text(s) => w.write_all(s.as_bytes()),
            Cell::Word(s) => w.write_all(s.as_bytes()),
            Cell::Int(n) => w.write_all(itoa::Buffer::new().format(*n).as_bytes()),
            Cell::Count(n) => w.write_all(itoa::Buffer::new().format(*n).as_bytes()),
            Cell::Empty => w.write_all(b"-"),
            Cell::Time(t) => write_time_of_day(w, *t, 3),
            other => w.write_all(other.text().as_bytes()),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Word(s) => (*s).to_string(),
            Cell::Int(n) => n.to_string(),
            Cell::Count(n) => n.to_string(),
            Cell::Bytes(n) => bytes(*n),
            Cell::Time(t) => clock(*t),
            Cell::Duration(d) => duration(*d),
            Cell::Bar(n, max) => bar(*n, *max, 20),
            Cell::Empty => "-".into(),
        }
    }

    pub fn json(&self) -> Value {
        match self {
            Cell::Text(s) => json!(s),
            Cell::Word(s) => json!(s),
            Cell::Int(n) => json!(n),
            Cell::Count(n) | Cell::Bytes(n) | Cell::Duration(n) | Cell::Bar(n, _) => json!(n),
            Cell::Time(t) => json!(rfc3339(*t)),
            Cell::Empty => Value::Null,
        }
    }
}

/// A view's result.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub view: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
    /// Lines printed under the table (totals, hints).
    pub notes: Vec<String>,
    /// Printed as chunks rather than columns: each row's cells but the last on a header
    /// line, then the last cell (a payload) as it is.
    pub chunks: bool,
    /// Rows as structured values for JSON, when the view has more to say than cells hold.
    pub values: Option<Value>,
}

impl Table {
    pub fn new(view: &'static str, columns: &[&'static str]) -> Table {
        Table {
            view,
            columns: columns.to_vec(),
            ..Table::default()
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    /// Aligned columns, kubectl style: upper-case headers, three spaces between columns,
    /// the last column unpadded.
    pub fn write_text(&self, w: &mut impl Write) -> io::Result<()> {
        if self.chunks {
            return self.write_chunks(w);
        }
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| one_line(c.text())).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for r in &cells {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let line = |w: &mut dyn Write, vals: &[String]| -> io::Result<()> {
            let mut s = String::new();
            for (i, v) in vals.iter().enumerate() {
                if i + 1 < vals.len() {
                    let pad = widths.get(i).copied().unwrap_or(0);
                    s.push_str(&format!("{v:<pad$}   "));
                } else {
                    s.push_str(v);
                }
            }
            writeln!(w, "{}", s.trim_end())
        };
        let headers: Vec<String> = self.columns.iter().map(|c| c.to_uppercase()).collect();
        line(w, &headers)?;
        for r in &cells {
            line(w, r)?;
        }
        for n in &self.notes {
            writeln!(w, "{n}")?;
        }
        Ok(())
    }

    fn write_chunks(&self, w: &mut impl Write) -> io::Result<()> {
        for r in &self.rows {
            write_chunk(w, r)?;
        }
        for n in &self.notes {
            writeln!(w, "{n}")?;
        }
        Ok(())
    }

    /// `{"view": ..., "rows": [{column: value, ...}], "notes": [...]}` with snake_case keys.
    pub fn json(&self) -> Value {
        let keys: Vec<String> = self
            .columns
            .iter()
            .map(|c| c.to_lowercase().replace([' ', '/', '-'], "_"))
            .collect();
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                for (k, c) in keys.iter().zip(r) {
                    m.insert(k.clone(), c.json());
                }
                Value::Object(m)
            })
            .collect();
        let rows = self.values.clone().unwrap_or(Value::Array(rows));
        json!({ "view": self.view, "rows": rows, "notes": self.notes })
    }
}

/// sysdig's byte formatting: `512B`, `1.50KB`, `2.00MB`.
/// One row of a chunked table: a `------` header of every cell but the last, then the last
/// cell's text as it is.
pub fn write_chunk(w: &mut impl Write, r: &[Cell]) -> io::Result<()> {
    let (data, head) = r.split_last().unwrap_or((&Cell::Empty, &[]));
    // Written cell by cell: the io view prints a chunk for every read and write of a
    // capture, and a string for each cell cost more than the rest of its work.
    w.write_all(b"------ ")?;
    for (i, c) in head.iter().enumerate() {
        if i > 0 {
            w.write_all(b" ")?;
        }
        c.write_text(w)?;
    }
    w.write_all(b"\n")?;
    let ends_line = match data {
        Cell::Text(s) => {
            w.write_all(s.as_bytes())?;
            s.ends_with('\n')
        }
        other => {
            other.write_text(w)?;
            false
        }
    };
    if !ends_line {
        w.write_all(b"\n")?;
    }
    Ok(())
}

pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, f64); 4] = [
        ("TB", 1_099_511_627_776.0),
        ("GB", 1_073_741_824.0),
        ("MB", 1_048_576.0),
        ("KB", 1024.0),
    ];
    for (u, size) in UNITS {
        if n as f64 >= size {
            return format!("{:.2}{u}", n as f64 / size);
        }
    }
    format!("{n}B")
}

/// Time of day with milliseconds (UTC).
pub fn clock(ts: u64) -> String {
    time_of_day(ts, 3)
}

/// `HH:MM:SS.fff` of a timestamp (UTC) with `digits` (1–9) of the second's fraction;
/// sysdig's `evt.time` has 9.
pub fn time_of_day(ts: u64, digits: u32) -> String {
    let mut out = Vec::with_capacity(18);
    let _ = write_time_of_day(&mut out, ts, digits);
    String::from_utf8_lossy(&out).into_owned()
}

/// [`time_of_day`] written to `w` (digit by digit: the io view prints one per read and
/// write, and the formatter's padding cost more than the rest of the line).
fn write_time_of_day(w: &mut impl Write, ts: u64, digits: u32) -> io::Result<()> {
    let digits = digits.clamp(1, 9) as usize;
    let day = (ts / 1_000_000_000) % 86_400;
    let mut buf = *b"00:00:00.000000000";
    for (at, v) in [(0, day / 3600), (3, (day / 60) % 60), (6, day % 60)] {
        buf[at] = b'0' + (v / 10) as u8;
        buf[at + 1] = b'0' + (v % 10) as u8;
    }
    let mut frac = ts % 1_000_000_000;
    for i in (9..18).rev() {
        buf[i] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    w.write_all(&buf[..9 + digits])
}

pub fn rfc3339(ts: u64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ts))
        .ok()
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A short human duration: `850us`, `12.3ms`, `4.56s`, `3m12s`.
pub fn duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{}us", ns / 1_000),
        1_000_000..1_000_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        1_000_000_000..60_000_000_000 => format!("{:.2}s", ns as f64 / 1e9),
        _ => {
            let s = ns / 1_000_000_000;
            if s < 3600 {
                format!("{}m{}s", s / 60, s % 60)
            } else {
                format!("{}h{}m", s / 3600, (s / 60) % 60)
            }
        }
    }
}

/// A bar of block characters, `width` wide at `max`, with eighths for precision.
pub fn bar(n: u64, max: u64, width: usize) -> String {
    if max == 0 || n == 0 {
        return String::new();
    }
    let eighths = ((n as f64 / max as f64) * (width * 8) as f64)
        .round()
        .max(1.0) as usize;
    let mut s = "█".repeat(eighths / 8);
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PARTS[eighths % 8]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_sysdig_and_people_expect() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(1536), "1.50KB");
        assert_eq!(bytes(3 * 1_048_576), "3.00MB");
        assert_eq!(duration(850), "850ns");
        assert_eq!(duration(12_345_678), "12.3ms");
        assert_eq!(duration(192_000_000_000), "3m12s");
        assert_eq!(clock(3_723_456_000_000), "01:02:03.456");
        assert_eq!(time_of_day(3_600_000_000_123, 9), "01:00:00.000000123");
        // A day's last instant, a fraction cut (not rounded), and out-of-range digits.
        assert_eq!(time_of_day(86_399_999_999_999, 3), "23:59:59.999");
        assert_eq!(time_of_day(1_700_000_000_987_654_321, 1), "22:13:20.9");
        assert_eq!(time_of_day(5, 0), "00:00:00.0");
        assert_eq!(time_of_day(5, 12), "00:00:00.000000005");
        // A chunk's header is its cells' texts.
        let mut out = Vec::new();
        write_chunk(
            &mut out,
            &[
                Cell::Time(3_723_456_000_000),
                Cell::Int(-3),
                Cell::Count(42),
                Cell::Empty,
                Cell::Bytes(1536),
                "data".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "------ 01:02:03.456 -3 42 - 1.50KB\ndata\n"
        );
        assert_eq!(bar(10, 10, 2), "██");
        assert_eq!(bar(1, 16, 2), "▏");
        assert_eq!(bar(0, 16, 2), "");
    }

    #[test]
    fn tables_align_and_serialise() {
        let mut t = Table::new("files", &["file", "bytes in"]);
        t.push(vec!["/etc/hosts".into(), Cell::Bytes(2048)]);
        t.push(vec!["/x".into(), Cell::Empty]);
        let mut out = Vec::new();
        t.write_text(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "FILE         BYTES IN\n/etc/hosts   2.00KB\n/x           -\n"
        );
        assert_eq!(
            t.json()["rows"][0],
            json!({"file": "/etc/hosts", "bytes_in": 2048})
        );
    }
}
