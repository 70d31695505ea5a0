//! Pages of a capture's events read through its index are the events a full replay shows,
//! with the names only the state before them knows (a file opened before the checkpoint).

use std::path::Path;

use crashscope_inspect::filter::Filter;
use crashscope_inspect::index::{index_path, page, Index};
use crashscope_inspect::scan::{Bound, Scope};
use crashscope_scap::block::{EventRecord, ThreadInfo};
use crashscope_scap::build::int;
use crashscope_scap::reader::Reader;
use crashscope_scap::replay::Replay;
use crashscope_scap::writer::Writer;

const T0: u64 = 1_764_349_200_000_000_000;

/// A capture being written, one event after another 1 µs apart.
struct Capture {
    w: Writer<Vec<u8>>,
    ts: u64,
}

impl Capture {
    fn ev(&mut self, tid: i64, code: u16, params: &[&[u8]]) {
        self.ts += 1_000;
        self.w
            .event(&EventRecord::build(self.ts, tid, code, params))
            .unwrap();
    }

    fn open(&mut self, tid: i64, fd: i64, name: &str) {
        let mut path = name.as_bytes().to_vec();
        path.push(0);
        let zero = int::<4>(0);
        self.ev(tid, 306, &[&int::<8>(-100), &path, &zero, &zero]);
        self.ev(
            tid,
            307,
            &[
                &int::<8>(fd),
                &int::<8>(-100),
                &path,
                &zero,
                &zero,
                &zero,
                &int::<8>(0),
            ],
        );
    }
}

/// Two processes; each opens its own file, then reads it many times; one closes its file
/// half-way and opens another on the same fd number.
fn write_capture(path: &Path) {
    let mut w = Writer::new(Vec::new()).unwrap();
    w.processes(&[100, 200].map(|pid| ThreadInfo {
        tid: pid,
        pid,
        ptid: 1,
        comm: format!("app{pid}"),
        exe: "/bin/app".into(),
        cwd: "/".into(),
        vtid: pid,
        vpid: pid,
        ..ThreadInfo::default()
    }))
    .unwrap();
    let mut c = Capture { w, ts: T0 };
    c.open(100, 3, "/etc/one.conf");
    c.open(200, 3, "/etc/two.conf");
    for i in 0..3_000 {
        let tid = if i % 2 == 0 { 100 } else { 200 };
        if i == 1_501 {
            c.ev(200, 4, &[&int::<8>(3)]);
            c.ev(200, 5, &[&int::<8>(0)]);
            c.open(200, 3, "/etc/three.conf");
        }
        c.ev(tid, 6, &[&int::<8>(3), &int::<4>(4)]);
        c.ev(tid, 7, &[&int::<8>(4), b"data", &int::<8>(3), &int::<4>(4)]);
    }
    std::fs::write(path, c.w.finish().unwrap()).unwrap();
}

/// Every visible event as JSON, from a replay of the whole file.
fn all_lines(path: &Path) -> Vec<serde_json::Value> {
    let mut r = Replay::new(Reader::open(path).unwrap());
    let mut out = Vec::new();
    while let Some((line, _)) = r.next_line() {
        out.push(serde_json::to_value(line).unwrap());
    }
    out
}

fn json(p: &crashscope_inspect::index::Page) -> Vec<serde_json::Value> {
    p.items
        .iter()
        .map(|l| serde_json::to_value(l).unwrap())
        .collect()
}

#[test]
fn pages_through_checkpoints_are_the_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.scap");
    write_capture(&path);
    let all = all_lines(&path);
    let index = Index::build_every(&path, 500).unwrap();
    assert_eq!(index.events as usize, all.len());
    assert!(index.checkpoints.len() >= 10, "{}", index.checkpoints.len());
    let scope = Scope::default();
    for after in [
        0u64,
        1,
        499,
        500,
        501,
        3_003,
        4_999,
        5_990,
        all.len() as u64 - 3,
    ] {
        let p = page(&path, &index, &scope, after, 7, true).unwrap();
        let want: Vec<_> = all.iter().skip(after as usize).take(7).cloned().collect();
        assert_eq!(json(&p), want, "page after {after}");
        let more = after as usize + 7 < all.len();
        assert_eq!(p.next_after.is_some(), more, "after {after}");
        if let Some(n) = p.next_after {
            assert_eq!(n, after + 7);
        }
    }
    // The state at a checkpoint names the fd: a read late in the file shows the file the
    // process opened before the checkpoint, and the one reopened after the close.
    let last = page(&path, &index, &scope, all.len() as u64 - 4, 4, true).unwrap();
    let infos: Vec<String> = json(&last).iter().map(|l| l["info"].to_string()).collect();
    assert!(
        infos.iter().any(|i| i.contains("/etc/one.conf")),
        "{infos:?}"
    );
    assert!(
        infos.iter().any(|i| i.contains("/etc/three.conf")),
        "{infos:?}"
    );
}

#[test]
fn a_page_by_time_and_filter_starts_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.scap");
    write_capture(&path);
    let all = all_lines(&path);
    let index = Index::build_every(&path, 500).unwrap();
    let from = T0 + 4_000_000;
    let scope = Scope {
        filter: Filter::parse("proc.name=app200 and evt.dir=<").unwrap(),
        from: Some(Bound::Absolute(from)),
        to: None,
    };
    let p = page(&path, &index, &scope, 0, 5, true).unwrap();
    let want: Vec<_> = all
        .iter()
        .filter(|l| {
            l["ts"].as_u64().unwrap() >= from && l["proc_name"] == "app200" && l["dir"] == "<"
        })
        .take(5)
        .cloned()
        .collect();
    assert_eq!(want.len(), 5);
    assert_eq!(json(&p), want);
}

#[test]
fn the_index_is_cached_and_rebuilt_when_the_capture_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.scap");
    write_capture(&path);
    let first = Index::load_or_build(&path).unwrap();
    let cache = index_path(&path);
    assert!(cache.exists());
    let written = std::fs::metadata(&cache).unwrap().modified().unwrap();
    let again = Index::load_or_build(&path).unwrap();
    assert_eq!(again.events, first.events);
    assert_eq!(
        std::fs::metadata(&cache).unwrap().modified().unwrap(),
        written
    );
    // A different capture under the same name: the old index is not used.
    let mut w = Writer::new(Vec::new()).unwrap();
    w.event(&EventRecord::build(T0, 1, 6, &[&int::<8>(0), &int::<4>(1)]))
        .unwrap();
    std::fs::write(&path, w.finish().unwrap()).unwrap();
    assert_eq!(Index::load_or_build(&path).unwrap().events, 1);
}
