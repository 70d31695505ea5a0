//! `io`: the bytes read and written on each matching fd, in order — what sysdig's
//! `echo_fds` and `spy_file` print. `io -f 'fd.name=/etc/resolv.conf'` shows the file's
//! contents as the process read them. Payloads are the capture's snapshots, which may be
//! shorter than what was moved (marked).

use std::fmt::Write;

use crate::event::{Ev, IoDir};
use crate::report::{bytes, Cell, Table};
use crate::scan::View;

pub struct Io {
    hex: bool,
    rows: Vec<Vec<Cell>>,
}

impl Io {
    pub fn new(hex: bool) -> Io {
        Io {
            hex,
            rows: Vec::new(),
        }
    }
}

/// Printable bytes as they are, others as dots (sysdig's default).
pub fn printable(data: &[u8]) -> String {
    data.iter()
        .map(|c| match c {
            b'\n' | b'\t' => *c as char,
            0x20..0x7f => *c as char,
            _ => '.',
        })
        .collect()
}

/// `hexdump -C`-style lines.
pub fn hex_dump(data: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if j == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        out.extend(chunk.iter().map(|c| {
            if (0x20..0x7f).contains(c) {
                *c as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

impl View for Io {
    fn event(&mut self, ev: &Ev) {
        let Some(dir) = ev.io() else {
            return;
        };
        let data = ev.data().unwrap_or_default();
        let moved = ev.io_bytes();
        let name = ev.fd().map(|f| f.name.clone()).unwrap_or_default();
        let verb = match dir {
            IoDir::Read => "read",
            IoDir::Write => "write",
        };
        let size = if (data.len() as u64) < moved {
            format!("{} (showing {})", bytes(moved), bytes(data.len() as u64))
        } else {
            bytes(moved)
        };
        let payload = if self.hex {
            hex_dump(data)
        } else {
            printable(data)
        };
        self.rows.push(vec![
            Cell::Time(ev.ts()),
            ev.proc_name().into(),
            Cell::Int(ev.pid()),
            Cell::Word(verb),
            size.into(),
            ev.fd_num().map(Cell::Int).unwrap_or(Cell::Empty),
            if name.is_empty() {
                Cell::Empty
            } else {
                name.into()
            },
            payload.into(),
        ]);
    }

    fn drain(&mut self) -> Vec<Vec<Cell>> {
        std::mem::take(&mut self.rows)
    }

    fn finish(self: Box<Self>) -> Table {
        let mut t = Table::new(
            "io",
            &[
                "time",
                "process",
                "pid",
                "direction",
                "bytes",
                "fd",
                "name",
                "data",
            ],
        );
        t.chunks = true;
        t.rows = self.rows;
        t
    }
}

/// One read or write with its bytes, for a conversation viewer (the web UI's I/O streams):
/// what a row of [`Io`] shows, unformatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// Nanoseconds since the epoch.
    pub ts: u64,
    pub process: String,
    pub pid: i64,
    pub fd: Option<i64>,
    pub name: String,
    pub write: bool,
    /// Bytes moved; `data` may hold fewer (the capture's snapshot length).
    pub moved: u64,
    pub data: Vec<u8>,
}

/// What [`Turns`] collected, shared with its caller (a view's table cannot carry bytes).
#[derive(Debug, Default)]
pub struct Collected {
    pub turns: Vec<Turn>,
    /// Turns seen after the byte budget was spent (counted, their bytes not kept).
    pub left_out: u64,
}

/// What a kept turn costs beside its bytes (its strings and fields), for the budget.
const TURN_OVERHEAD: usize = 128;

/// Collects the matching reads and writes with their bytes, the first of them up to `budget`
/// bytes in all: the memory a viewer holds stays bounded whatever the capture's size.
pub struct Turns {
    out: std::rc::Rc<std::cell::RefCell<Collected>>,
    budget: usize,
    kept: usize,
}

impl Turns {
    pub fn new(budget: usize) -> (Turns, std::rc::Rc<std::cell::RefCell<Collected>>) {
        let out = std::rc::Rc::new(std::cell::RefCell::new(Collected::default()));
        let view = Turns {
            out: out.clone(),
            budget,
            kept: 0,
        };
        (view, out)
    }
}

impl View for Turns {
    fn event(&mut self, ev: &Ev) {
        let Some(dir) = ev.io() else {
            return;
        };
        let data = ev.data().unwrap_or_default();
        let mut out = self.out.borrow_mut();
        // Each turn costs its bytes and its bookkeeping; once the budget is spent every later
        // turn is counted out, so what is kept has no holes.
        let cost = data.len() + TURN_OVERHEAD;
        if out.left_out > 0 || self.kept + cost > self.budget {
            out.left_out += 1;
            return;
        }
        self.kept += cost;
        out.turns.push(Turn {
            ts: ev.ts(),
            process: ev.proc_name().to_string(),
            pid: ev.pid(),
            fd: ev.fd_num(),
            name: ev.fd().map(|f| f.name.clone()).unwrap_or_default(),
            write: matches!(dir, IoDir::Write),
            moved: ev.io_bytes(),
            data: data.to_vec(),
        });
    }

    fn finish(self: Box<Self>) -> Table {
        Table::new("turns", &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_dump_looks_like_hexdump_c() {
        assert_eq!(
            hex_dump(b"nameserver 10.0.0.10\n"),
            "00000000  6e 61 6d 65 73 65 72 76  65 72 20 31 30 2e 30 2e  |nameserver 10.0.|\n\
             00000010  30 2e 31 30 0a                                    |0.10.|\n"
        );
    }
}
