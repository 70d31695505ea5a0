//! The recorder's user-space cost per record: probe records → scap events → a capture file
//! (counted, not stored: the file system's cost is apart), on the thread that drains the ring buffer. Two mixes: dd's one-byte reads
//! and writes (the throughput benchmark's load, `bench/recorder-throughput.sh`), and a
//! service's mix (opens, stats, socket calls, futex, mmap, 256-byte payloads). Prints records
//! and events per second of one core; the best of five runs.
//!
//!     cargo bench -p crashscope-probe --bench convert [-- RECORDS]

use std::time::Instant;

use crashscope_probe::record::raw;
use crashscope_probe::writer::CaptureWriter;

fn dd_mix() -> Vec<Vec<u8>> {
    vec![
        raw(1, 0, 1, [0, 0x1000, 1, 0, 0, 0], [b"\0", b""]),
        raw(1, 1, 1, [1, 0x1000, 1, 0, 0, 0], [b"\0", b""]),
    ]
}

fn service_mix() -> Vec<Vec<u8>> {
    let payload = [b'x'; 256];
    let sin = [2u8, 0, 0x1f, 0x90, 10, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0];
    vec![
        raw(
            1,
            257,
            3,
            [(-100i64) as u64, 0, 0, 0, 0, 0],
            [b"/etc/app/config.yaml\0", b""],
        ),
        raw(1, 0, 256, [3, 0, 4096, 0, 0, 0], [&payload, b""]),
        raw(1, 3, 0, [3, 0, 0, 0, 0, 0], [b"", b""]),
        raw(1, 4, -2, [0; 6], [b"/var/run/app.sock\0", b""]),
        raw(1, 42, -111, [5, 0, 16, 0, 0, 0], [&sin, b""]),
        raw(1, 44, 256, [5, 0, 256, 0, 0, 16], [&payload, &sin]),
        raw(1, 45, 256, [5, 0, 4096, 0, 0, 0], [&payload, b""]),
        raw(1, 202, 0, [0x7f00, 128, 0, 0, 0, 0], [b"", b""]),
        raw(
            1,
            9,
            0x7f00_0000,
            [0, 4096, 3, 0x22, u64::MAX, 0],
            [b"", b""],
        ),
        raw(1, 1, 256, [2, 0, 256, 0, 0, 0], [&payload, b""]),
    ]
}

/// Counts what is written: the file system's cost is not the converter's.
#[derive(Default)]
struct Counted(usize);

impl std::io::Write for Counted {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += std::hint::black_box(b).len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run(name: &str, mix: &[Vec<u8>], records: usize) {
    let mut best = f64::MAX;
    let mut events = 0;
    let mut bytes = 0;
    for _ in 0..5 {
        let mut w = CaptureWriter::with_threads(
            Counted::default(),
            Vec::new(),
            &Default::default(),
            Vec::new(),
        )
        .expect("an in-memory capture");
        let t = Instant::now();
        for r in mix.iter().cycle().take(records) {
            w.record(r).expect("an in-memory write");
        }
        let secs = t.elapsed().as_secs_f64();
        events = w.summary.events;
        let (out, _) = w
            .finish(Default::default(), &[], 0)
            .expect("an in-memory write");
        bytes = out.0;
        best = best.min(secs);
    }
    println!(
        "{name:<14} {records:>10} records {events:>10} events {:>7.1} MB  {:>6.1} ns/record  {:>6.2} M events/s",
        bytes as f64 / 1e6,
        best * 1e9 / records as f64,
        events as f64 / best / 1e6
    );
}

fn main() {
    let records = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    run("dd bs=1", &dd_mix(), records);
    run("service mix", &service_mix(), records);
}
