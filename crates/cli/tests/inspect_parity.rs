//! `crashscope inspect` next to `sysdig -r`, on what differed: container metadata records are
//! numbered but not printed, an event type nobody records is a filter error, and a time
//! range that misses the capture is an error, not an all-zero table.

mod common;
use common::text;

use std::path::Path;
use std::process::Command;

use crashscope_scap::block::{EventRecord, ThreadInfo};
use crashscope_scap::build::string;
use crashscope_scap::writer::Writer;

const T0: u64 = 1_764_349_200_000_000_000;

/// A capture that starts with a container record, as the flight recorder writes one.
fn capture(dir: &Path) -> std::path::PathBuf {
    let mut w = Writer::new(Vec::new()).unwrap();
    w.processes(&[ThreadInfo {
        tid: 9,
        pid: 9,
        ptid: 1,
        comm: "sh".into(),
        exe: "sh".into(),
        cwd: "/".into(),
        vtid: 1,
        vpid: 1,
        ..ThreadInfo::default()
    }])
    .unwrap();
    let json =
        r#"{"container":{"id":"280d84e23dcb","image":"busybox","name":"c","type":0,"labels":{}}}"#;
    w.event(&EventRecord::build(T0, 9, 324, &[&string(json)]))
        .unwrap();
    // getuid enter and exit.
    w.event(&EventRecord::build(T0 + 1000, 9, 202, &[]))
        .unwrap();
    w.event(&EventRecord::build(
        T0 + 2000,
        9,
        203,
        &[&0u32.to_le_bytes()],
    ))
    .unwrap();
    let bytes = w.finish().unwrap();
    let path = dir.join("meta.scap");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn inspect(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .arg("inspect")
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

#[test]
fn container_records_keep_their_number_but_are_not_printed() {
    let dir = tempfile::tempdir().unwrap();
    let cap = capture(dir.path());
    let cap = cap.to_str().unwrap();
    let out = inspect(&[cap, "--events"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    assert!(!lines.contains("container json="), "{lines}");
    assert!(
        lines.starts_with("2 "),
        "numbering counts the record: {lines}"
    );
    let out = inspect(&[cap, "--events", "--metadata"]);
    let lines = text(&out.stdout);
    assert!(
        lines.starts_with("1 ") && lines.contains("container json="),
        "{lines}"
    );
    // Where sysdig is installed, it agrees.
    if let Ok(s) = Command::new("sysdig").args(["-r", cap]).output() {
        if s.status.success() {
            let theirs: Vec<String> = text(&s.stdout)
                .lines()
                .map(|l| l.split(' ').next().unwrap_or("").to_string())
                .collect();
            let out = inspect(&[cap, "--events"]);
            let ours: Vec<String> = text(&out.stdout)
                .lines()
                .map(|l| l.split(' ').next().unwrap_or("").to_string())
                .collect();
            assert_eq!(ours, theirs);
        }
    }
}

#[test]
fn a_misspelt_event_type_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cap = capture(dir.path());
    let out = inspect(&[cap.to_str().unwrap(), "-f", "evt.type=opne"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown event type \"opne\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_time_range_past_the_capture_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cap = capture(dir.path());
    let cap = cap.to_str().unwrap();
    for view in [vec!["summary"], vec!["--events"]] {
        let mut args = vec![cap, "--from", "1h"];
        args.extend(view.iter().copied());
        let out = inspect(&args);
        assert_eq!(out.status.code(), Some(1), "{view:?}");
        let err = text(&out.stderr);
        assert!(err.contains("outside the capture, which spans"), "{err}");
    }
}
