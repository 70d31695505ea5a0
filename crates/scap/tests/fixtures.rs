//! Every real capture in ../shared/fixtures/scap reads to the end.

use crashscope_scap::reader::{Block, Reader};
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/scap")
        .join(name)
}

fn count(name: &str) -> (usize, usize, usize) {
    let (mut events, mut procs, mut fdl) = (0, 0, 0);
    for b in Reader::open(&fixture(name)).unwrap() {
        match b.unwrap_or_else(|e| panic!("{name}: {e}")) {
            Block::Event(_) => events += 1,
            Block::Processes(p) => procs += p.len(),
            Block::Fds { .. } => fdl += 1,
            _ => {}
        }
    }
    (events, procs, fdl)
}

#[test]
fn fixtures_read_completely() {
    // Event-block counts from SOURCES.txt.
    assert_eq!(count("curl_google.scap").0, 1536);
    assert_eq!(count("curl_google_comments.scap").0, 1536);
    assert_eq!(count("single_ipv6_conn.scap").0, 1728);
    assert_eq!(count("test_ipv6_client.scap").0, 326);
    assert_eq!(count("sample.scap").0, 572);
    for f in [
        "curl_google.scap",
        "sample.scap",
        "single_ipv6_conn.scap",
        "test_ipv6_client.scap",
    ] {
        let (_, procs, fdl) = count(f);
        assert!(procs > 0 && fdl > 0, "{f}: {procs} threads, {fdl} fd lists");
    }
}

/// The line written straight from the record (what printing a capture uses) is the line of
/// the event's fields, for every event of every fixture.
#[test]
fn lines_written_directly_are_the_lines_of_the_fields() {
    use crashscope_scap::format::{write_line, Line};
    use crashscope_scap::replay::Replay;
    for f in [
        "curl_google.scap",
        "curl_google_comments.scap",
        "sample.scap",
        "single_ipv6_conn.scap",
        "test_ipv6_client.scap",
    ] {
        let mut r = Replay::new(Reader::open(&fixture(f)).unwrap());
        let mut n = 0;
        while let Some(num) = r.next_event() {
            let rec = r.current().unwrap();
            let mut direct = String::new();
            write_line(&mut direct, num, rec, &r.state);
            assert_eq!(
                direct,
                Line::new(num, rec, &r.state).text() + "\n",
                "{f} #{num}"
            );
            n += 1;
        }
        assert!(n > 20, "{f}: {n}");
    }
}

/// A call newer than the oldest readers' table is written as a generic event with no ppm
/// id, named by the enter's native number: its exit takes the same name, not "syscall".
#[test]
fn a_generic_exit_is_named_as_its_enter() {
    use crashscope_scap::block::{EventRecord, ThreadInfo};
    let mut w = crashscope_scap::writer::Writer::new(Vec::new()).unwrap();
    w.processes(&[ThreadInfo {
        tid: 7,
        pid: 7,
        comm: "sh".into(),
        ..ThreadInfo::default()
    }])
    .unwrap();
    // rseq is x86_64 call 334.
    w.event(&EventRecord::build(
        1,
        7,
        0,
        &[&0u16.to_le_bytes(), &334u16.to_le_bytes()],
    ))
    .unwrap();
    w.event(&EventRecord::build(2, 7, 1, &[&0u16.to_le_bytes()]))
        .unwrap();
    let bytes = w.finish().unwrap();
    let mut r = crashscope_scap::replay::Replay::new(
        Reader::from_read(std::io::Cursor::new(bytes)).unwrap(),
    );
    let mut names = Vec::new();
    while let Some((line, _)) = r.next_line() {
        names.push((line.dir, line.type_));
    }
    assert_eq!(
        names,
        [(">", "rseq".to_string()), ("<", "rseq".to_string())]
    );
}
