//! Bugs found by comparing the views with sysdig on captures they were not written for:
//! one SIGSEGV is one segfault, a multi-line command keeps the table on its rows, and a
//! sendmmsg's bytes are its bytes, not its count of messages.

use std::net::SocketAddr;

use crashscope_inspect::filter::Filter;
use crashscope_inspect::report::{Cell, Table};
use crashscope_inspect::scan::{scan, Scope};
use crashscope_inspect::views;
use crashscope_scap::block::{EventRecord, ThreadInfo};
use crashscope_scap::build::{int, socktuple, string};
use crashscope_scap::reader::Reader;
use crashscope_scap::replay::Replay;
use crashscope_scap::writer::Writer;

const T0: u64 = 1_764_349_200_000_000_000;
const PID: i64 = 777;

fn capture() -> Vec<u8> {
    let mut w = Writer::new(Vec::new()).unwrap();
    w.processes(&[ThreadInfo {
        tid: PID,
        pid: PID,
        ptid: 1,
        comm: "python3".into(),
        exe: "python3".into(),
        // A command line with a newline in it, as `python3 -c "..."` has.
        args: vec!["-c".into(), "import os\nos.abort()".into()],
        cwd: "/".into(),
        vtid: PID,
        vpid: PID,
        ..ThreadInfo::default()
    }])
    .unwrap();
    let mut ts = T0;
    let mut ev = |code: u16, params: &[&[u8]]| {
        ts += 1_000_000;
        w.event(&EventRecord::build(ts, PID, code, params)).unwrap();
    };
    // socket() = 4, then a sendmmsg of two messages whose first is 40 bytes.
    ev(18, &[&int::<4>(2), &int::<4>(2), &int::<4>(0)]);
    ev(
        19,
        &[&int::<8>(4), &int::<4>(2), &int::<4>(2), &int::<4>(0)],
    );
    let me: SocketAddr = "10.0.0.5:40000".parse().unwrap();
    let dns: SocketAddr = "10.0.0.10:53".parse().unwrap();
    ev(50, &[]);
    ev(
        51,
        &[
            &int::<8>(2),
            &int::<8>(4),
            &int::<4>(40),
            &[7u8; 40],
            &socktuple(me, dns),
        ],
    );
    ev(232, &[&int::<8>(PID), &int::<8>(PID), &[11]]);
    ev(
        186,
        &[&int::<8>(11), &int::<8>(0), &[11], &[0], &int::<8>(0)],
    );
    let _ = string("");
    w.finish().unwrap()
}

fn view(bytes: &[u8], name: &str) -> Table {
    let reader = Reader::from_read(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut replay = Replay::new(reader);
    let mut vs = vec![views::make(name, &views::Options::default()).unwrap()];
    let scope = Scope {
        filter: Filter::parse("").unwrap(),
        ..Scope::default()
    };
    let out = scan(&mut replay, &scope, &mut vs, |_| {});
    assert!(out.error.is_none(), "{:?}", out.error);
    vs.pop().unwrap().finish()
}

fn tile(t: &Table, name: &str) -> String {
    let r = t
        .rows
        .iter()
        .position(|r| r[0] == Cell::from(name))
        .unwrap_or_else(|| panic!("no tile {name}"));
    let i = t.columns.iter().position(|c| *c == "value").unwrap();
    t.rows[r][i].text()
}

#[test]
fn one_sigsegv_is_one_segfault() {
    let s = view(&capture(), "summary");
    assert_eq!(tile(&s, "segfaults"), "1");
}

#[test]
fn a_multi_line_command_stays_on_its_row() {
    let t = view(&capture(), "procs");
    let mut out = Vec::new();
    t.write_text(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    // The header and one row for the one process: the newline is shown escaped.
    assert_eq!(
        text.lines().count(),
        1 + t.rows.len() + t.notes.len(),
        "{text}"
    );
    assert!(text.contains("import os\\nos.abort()"), "{text}");
}

#[test]
fn sendmmsg_moves_bytes_not_messages() {
    let t = view(&capture(), "net");
    let mut out = Vec::new();
    t.write_text(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let row = text.lines().nth(1).unwrap_or_default();
    let cols: Vec<&str> = row.split_whitespace().collect();
    // PROTO CONNECTION DIRECTION PROCESS PID FD BYTES-IN BYTES-OUT ...
    assert_eq!(cols.get(7), Some(&"40B"), "{text}");
}
