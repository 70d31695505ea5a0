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

/// A capture writer that knows one process, `PID`, running `comm args`.
fn one_process(comm: &str, args: &[&str]) -> Writer<Vec<u8>> {
    let mut w = Writer::new(Vec::new()).unwrap();
    w.processes(&[ThreadInfo {
        tid: PID,
        pid: PID,
        ptid: 1,
        comm: comm.into(),
        exe: comm.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: "/".into(),
        vtid: PID,
        vpid: PID,
        ..ThreadInfo::default()
    }])
    .unwrap();
    w
}

/// A command line with a newline in it, as `python3 -c "..."` has, killed by a SIGSEGV.
fn capture() -> Vec<u8> {
    let mut w = one_process("python3", &["-c", "import os\nos.abort()"]);
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

/// A node of the dockershim era: three pods' containers known from old-form metadata records
/// (no labels, the kubelet's docker names), one of them active, one only in a process's
/// cgroup, and one with no process at all.
fn docker_node() -> Vec<u8> {
    const A: &str = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";
    const B: &str = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222";
    let mut w = Writer::new(Vec::new()).unwrap();
    w.processes(&[
        ThreadInfo {
            tid: 100,
            pid: 100,
            ptid: 1,
            comm: "haproxy".into(),
            exe: "haproxy".into(),
            cwd: "/".into(),
            vtid: 1,
            vpid: 1,
            cgroups: vec![format!("cpu=/docker/{A}")],
            ..ThreadInfo::default()
        },
        ThreadInfo {
            tid: 200,
            pid: 200,
            ptid: 1,
            comm: "pause".into(),
            exe: "pause".into(),
            cwd: "/".into(),
            vtid: 1,
            vpid: 1,
            cgroups: vec![format!("cpu=/docker/{B}")],
            ..ThreadInfo::default()
        },
    ])
    .unwrap();
    let mut ts = T0;
    let mut ev = |tid: i64, code: u16, params: &[&[u8]]| {
        ts += 1_000_000;
        w.event(&EventRecord::build(ts, tid, code, params)).unwrap();
    };
    for (id, name, image) in [
        (
            &A[..12],
            "k8s_haproxy.6f8b1a2c_haproxy-ingress-3k2x9_kube-system_0a1b-11_2",
            "haproxy:1.7",
        ),
        (
            &B[..12],
            "k8s_POD.d8dbe16c_web-5d4c7_shop_77aa-22_0",
            "pause:3.0",
        ),
        (
            "cccccccccccc",
            "k8s_api_api-7f9c-x1_shop_88bb-33_1",
            "api:2",
        ),
    ] {
        ev(
            100,
            228,
            &[
                &string(id),
                &0u32.to_le_bytes(),
                &string(name),
                &string(image),
            ],
        );
    }
    ev(100, 202, &[]);
    ev(100, 203, &[&0u32.to_le_bytes()]);
    w.finish().unwrap()
}

fn column(t: &Table, col: &str) -> Vec<String> {
    let i = t.columns.iter().position(|c| *c == col).unwrap();
    t.rows.iter().map(|r| r[i].text()).collect()
}

#[test]
fn every_container_a_capture_knows_is_listed_with_its_pod() {
    let cap = docker_node();
    let t = view(&cap, "containers");
    assert_eq!(
        column(&t, "pod"),
        ["haproxy-ingress-3k2x9", "web-5d4c7", "api-7f9c-x1"]
    );
    assert_eq!(column(&t, "namespace"), ["kube-system", "shop", "shop"]);
    assert_eq!(column(&t, "events"), ["2", "0", "0"]);
    assert_eq!(column(&t, "status"), ["running", "idle", "idle"]);
    assert_eq!(tile(&view(&cap, "summary"), "containers"), "3");
    // The decoded names filter as CRI labels do.
    let reader = Reader::from_read(std::io::Cursor::new(cap.clone())).unwrap();
    let mut replay = Replay::new(reader);
    let mut vs = vec![views::make("procs", &views::Options::default()).unwrap()];
    let scope = Scope {
        filter: Filter::parse("k8s.ns.name=kube-system and k8s.pod.name=haproxy-ingress-3k2x9")
            .unwrap(),
        ..Scope::default()
    };
    let out = scan(&mut replay, &scope, &mut vs, |_| {});
    assert_eq!(out.matched, 2);
}

/// A program that trips over loader noise, retries one missing file until it appears, and
/// dies on another.
fn startup_failures() -> Vec<u8> {
    let mut w = one_process("app", &[]);
    let mut ts = T0;
    let mut ev = |code: u16, params: &[&[u8]]| {
        ts += 1_000_000;
        w.event(&EventRecord::build(ts, PID, code, params)).unwrap();
    };
    let openat = |ev: &mut dyn FnMut(u16, &[&[u8]]), path: &str, res: i64| {
        ev(
            306,
            &[&int::<8>(-100), &string(path), &int::<4>(0), &int::<4>(0)],
        );
        ev(
            307,
            &[
                &int::<8>(res),
                &int::<8>(-100),
                &string(path),
                &int::<4>(0),
                &int::<4>(0),
                &int::<4>(0),
                &int::<8>(0),
            ],
        );
    };
    for _ in 0..5 {
        openat(&mut ev, "/usr/lib/locale/C.utf8/LC_CTYPE", -2);
    }
    for _ in 0..3 {
        openat(&mut ev, "/run/app/ready", -2);
    }
    openat(&mut ev, "/run/app/ready", 3);
    openat(&mut ev, "/etc/app/config.toml", -2);
    ev(8, &[&int::<8>(2), &int::<4>(30)]);
    let line = b"fatal: no /etc/app/config.toml\n";
    ev(
        9,
        &[
            &int::<8>(line.len() as i64),
            line,
            &int::<8>(2),
            &int::<4>(30),
        ],
    );
    ev(
        186,
        &[&int::<8>(256), &int::<8>(1), &[0], &[0], &int::<8>(0)],
    );
    w.finish().unwrap()
}

#[test]
fn errors_put_unrecovered_failures_first_and_noise_aside() {
    let cap = startup_failures();
    let t = view(&cap, "errors");
    assert_eq!(
        column(&t, "target"),
        ["/etc/app/config.toml", "/run/app/ready"]
    );
    assert_eq!(column(&t, "recovered"), ["no", "yes"]);
    assert_eq!(column(&t, "count"), ["1", "3"]);
    // --all shows the locale probes too.
    let reader = Reader::from_read(std::io::Cursor::new(cap)).unwrap();
    let mut replay = Replay::new(reader);
    let opts = views::Options {
        all: true,
        ..views::Options::default()
    };
    let mut vs = vec![views::make("errors", &opts).unwrap()];
    scan(&mut replay, &Scope::default(), &mut vs, |_| {});
    let all = vs.pop().unwrap().finish();
    assert!(column(&all, "target").contains(&"/usr/lib/locale/C.utf8/LC_CTYPE".to_string()));
}

#[test]
fn death_names_the_failure_the_process_never_got_past() {
    let t = view(&startup_failures(), "death");
    let v = t.json();
    let d = &v["rows"][0];
    assert_eq!(d["pid"], PID);
    assert_eq!(d["exit_code"], 1);
    let unrecovered = d["unrecovered"].as_array().unwrap();
    assert_eq!(unrecovered.len(), 1, "{d}");
    assert_eq!(unrecovered[0]["target"], "/etc/app/config.toml");
    assert_eq!(unrecovered[0]["errno"], "ENOENT");
    assert_eq!(d["last_lines"][0], "fatal: no /etc/app/config.toml");
    let mut text = Vec::new();
    t.write_text(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("exit code 1"), "{text}");
    assert!(
        text.contains("openat /etc/app/config.toml = ENOENT"),
        "{text}"
    );
    // A process killed by a signal says by which and from whom.
    let t = view(&capture(), "death");
    let d = &t.json()["rows"][0];
    assert_eq!(d["signal"], "SIGSEGV");
    assert_eq!(d["sender"], format!("{PID} python3"));
}

#[test]
fn a_line_written_a_byte_at_a_time_is_one_line() {
    let mut w = one_process("slow", &[]);
    let mut ts = T0;
    let mut ev = |code: u16, params: &[&[u8]]| {
        ts += 1_000;
        w.event(&EventRecord::build(ts, PID, code, params)).unwrap();
    };
    for b in b"panic: boom\nexit status 2\n" {
        ev(8, &[&int::<8>(2), &int::<4>(1)]);
        ev(9, &[&int::<8>(1), &[*b], &int::<8>(2), &int::<4>(1)]);
    }
    ev(
        186,
        &[&int::<8>(512), &int::<8>(2), &[0], &[0], &int::<8>(0)],
    );
    let t = view(&w.finish().unwrap(), "death");
    let d = &t.json()["rows"][0];
    assert_eq!(
        d["last_lines"],
        serde_json::json!(["panic: boom", "exit status 2"])
    );
}

#[test]
fn logs_join_a_line_written_a_byte_at_a_time() {
    let mut w = one_process("slow", &[]);
    let mut ts = T0;
    let mut ev = |code: u16, params: &[&[u8]]| {
        ts += 1_000;
        w.event(&EventRecord::build(ts, PID, code, params)).unwrap();
    };
    for b in b"panic: boom\r\nexit status 2\n" {
        ev(9, &[&int::<8>(1), &[*b], &int::<8>(2), &int::<4>(1)]);
    }
    let t = view(&w.finish().unwrap(), "logs");
    assert_eq!(column(&t, "line"), ["panic: boom", "exit status 2"]);
    assert_eq!(column(&t, "level"), ["error", "-"]);
}

/// A program writing one endless line a byte at a time (dd to stdout) gives one line, cut
/// and marked, and the rest of its output after it.
#[test]
fn logs_cut_an_endless_line() {
    let mut w = one_process("dd", &[]);
    let mut ts = T0;
    for _ in 0..300_000 {
        ts += 1_000;
        w.event(&EventRecord::build(
            ts,
            PID,
            9,
            &[&int::<8>(1), b"x", &int::<8>(1), &int::<4>(1)],
        ))
        .unwrap();
    }
    w.event(&EventRecord::build(
        ts + 1_000,
        PID,
        9,
        &[&int::<8>(6), b"\ndone\n", &int::<8>(1), &int::<4>(6)],
    ))
    .unwrap();
    let t = view(&w.finish().unwrap(), "logs");
    let lines = column(&t, "line");
    assert_eq!(
        lines.len(),
        2,
        "{:?}",
        lines.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert!(lines[0].starts_with("xxxx") && lines[0].ends_with('…'));
    assert!(lines[0].len() < 70_000, "{}", lines[0].len());
    assert_eq!(lines[1], "done");
}
