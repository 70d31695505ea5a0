//! Damaged captures: every event before the damage is read, then an error names the byte
//! offset; nothing panics and memory stays bounded. Includes a property test that mutates real
//! captures at random (the stable-toolchain stand-in for a cargo-fuzz smoke run).

use crashscope_scap::reader::{Block, Reader, ScapError};
use crashscope_scap::writer::Writer;
use std::io::Cursor;
use std::path::Path;

fn sample() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/scap/sample.scap"),
    )
    .unwrap()
}

fn read_all(bytes: Vec<u8>) -> (usize, Option<ScapError>) {
    let reader = match Reader::from_read(Cursor::new(bytes)) {
        Ok(r) => r,
        Err(e) => {
            return (
                0,
                Some(ScapError::Io {
                    offset: 0,
                    source: e,
                }),
            )
        }
    };
    let mut events = 0;
    for b in reader {
        match b {
            Ok(Block::Event(_)) => events += 1,
            Ok(_) => {}
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

#[test]
fn truncation_keeps_every_event_before_the_cut() {
    let full = sample();
    let (all, err) = read_all(full.clone());
    assert!(err.is_none());
    let mut last = 0;
    // Blocks are 4-byte aligned: an odd cut always falls inside a block.
    for cut in [101, 5_001, 40_001, 80_001, 120_001, full.len() - 3] {
        let (n, err) = read_all(full[..cut].to_vec());
        let err = err.unwrap_or_else(|| panic!("cut at {cut}: no error"));
        assert!(err.offset().unwrap() <= cut as u64, "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(n >= last && n < all, "cut at {cut}: {n} events");
        last = n;
    }
}

#[test]
fn wrong_magic_and_overrunning_lengths_are_named() {
    let (_, err) = read_all(b"not a capture at all, just text".to_vec());
    let e = err.unwrap().to_string();
    assert!(e.starts_with("at byte 0: not a scap capture"), "{e}");

    let mut bytes = sample();
    // The section header's byte-order magic.
    bytes[8] ^= 0xff;
    let e = read_all(bytes).1.unwrap().to_string();
    assert!(e.contains("wrong byte-order magic"), "{e}");

    let mut bytes = sample();
    // The second block's length (right after the 28-byte section header).
    bytes[32..36].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let e = read_all(bytes).1.unwrap().to_string();
    assert!(e.starts_with("at byte 28: block length"), "{e}");

    let (_, err) = read_all(vec![
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8,
    ]);
    assert!(err.is_some(), "garbage gzip must be an error");
}

#[test]
fn event_whose_parameter_lengths_overrun_is_an_error_after_the_good_ones() {
    let mut w = Writer::new(Vec::new()).unwrap();
    let good = |len_field: u32, lens: &[u16], data: &[u8]| {
        let mut raw = Vec::new();
        raw.extend_from_slice(&1u64.to_le_bytes());
        raw.extend_from_slice(&7i64.to_le_bytes());
        raw.extend_from_slice(&len_field.to_le_bytes());
        raw.extend_from_slice(&5u16.to_le_bytes());
        raw.extend_from_slice(&(lens.len() as u32).to_le_bytes());
        for l in lens {
            raw.extend_from_slice(&l.to_le_bytes());
        }
        raw.extend_from_slice(data);
        crashscope_scap::block::EventRecord {
            cpu: 0,
            flags: 0,
            raw,
        }
    };
    w.event(&good(36, &[8], &0i64.to_le_bytes())).unwrap();
    // Claims an 800-byte parameter in a 36-byte event.
    w.event(&good(36, &[800], &0i64.to_le_bytes())).unwrap();
    let bytes = w.finish().unwrap();
    let (n, err) = read_all(bytes);
    assert_eq!(n, 1);
    let e = err.unwrap().to_string();
    assert!(
        e.contains("parameter lengths add up to 828 bytes but the event has 36"),
        "{e}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
    #[test]
    fn random_damage_never_panics(flips in proptest::collection::vec((0usize..60_000, 0u8..=255), 1..8), cut in 1_000usize..60_000) {
        let mut bytes = sample();
        bytes.truncate(cut);
        for (at, v) in flips {
            if at < bytes.len() {
                bytes[at] = v;
            }
        }
        let _ = read_all(bytes);
    }
}

#[test]
fn a_file_cut_mid_block_is_cut_back_to_its_last_whole_block() {
    let whole = sample();
    let (all, err) = read_all(whole.clone());
    assert!(err.is_none());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.scap");
    // A write that failed mid-block (a full disk) leaves some bytes of the next block.
    for cut_at in [whole.len() - 3, whole.len() * 2 / 3, 40] {
        std::fs::write(&path, &whole[..cut_at]).unwrap();
        let kept = crashscope_scap::writer::cut_to_whole_blocks(&path).unwrap();
        assert!(kept <= cut_at as u64);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, kept);
        if kept == 0 {
            continue; // not even the section header was whole
        }
        let (events, err) = read_all(bytes);
        assert!(err.is_none(), "cut at {cut_at}: {err:?}");
        assert!(events <= all);
    }
    // A whole file is left alone.
    std::fs::write(&path, &whole).unwrap();
    assert_eq!(
        crashscope_scap::writer::cut_to_whole_blocks(&path).unwrap(),
        whole.len() as u64
    );
}

/// Offsets of every block of a capture whose blocks are sound.
fn block_offsets(bytes: &[u8]) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let t = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((at, t));
        at += len;
    }
    out
}

/// Events replayed and the damage seen, as `inspect` and `diagnose` read a capture.
fn replay(bytes: Vec<u8>) -> (u64, u64, Option<String>) {
    let mut r =
        crashscope_scap::replay::Replay::new(Reader::from_read(Cursor::new(bytes)).unwrap());
    let mut n = 0;
    while r.next_event().is_some() {
        n += 1;
    }
    (n, r.damage_count, r.error.map(|e| e.to_string()))
}

#[test]
fn a_corrupted_block_length_costs_that_block_not_the_rest_of_the_file() {
    let whole = sample();
    let (all, damage, err) = replay(whole.clone());
    assert_eq!((damage, err), (0, None));
    let blocks = block_offsets(&whole);
    let (mid, _) = blocks[blocks.len() / 2];
    for wrong in [0x0010_0000u32, 400, 13, 0xffff_fff0] {
        let mut bytes = whole.clone();
        bytes[mid + 4..mid + 8].copy_from_slice(&wrong.to_le_bytes());
        let (n, damage, err) = replay(bytes);
        let err = err.unwrap_or_else(|| panic!("length {wrong}: damage not reported"));
        assert!(err.starts_with(&format!("at byte {mid}")), "{err}");
        assert!(err.contains("reading resumed at byte"), "{err}");
        assert!(damage >= 1);
        // The damaged block (and at most what its wrong length covered) is lost.
        assert!(
            n + 3 >= all && n <= all,
            "length {wrong}: {n} of {all} events"
        );
    }
}

#[test]
fn a_block_whose_type_is_corrupted_is_reported_and_the_rest_is_read() {
    let whole = sample();
    let (all, _, _) = replay(whole.clone());
    let blocks = block_offsets(&whole);
    let (at, _) = blocks[blocks.len() / 3];
    let mut bytes = whole.clone();
    bytes[at..at + 4].copy_from_slice(&0x0bad_0badu32.to_le_bytes());
    let (n, damage, err) = replay(bytes);
    assert_eq!(damage, 1);
    let err = err.expect("an unknown block is reported");
    assert!(err.contains("unknown type 0xbad0bad"), "{err}");
    assert_eq!(n, all - 1);
}

#[test]
fn a_trailer_that_disagrees_with_the_length_is_damage() {
    let whole = sample();
    let (all, _, _) = replay(whole.clone());
    let blocks = block_offsets(&whole);
    let (at, _) = blocks[blocks.len() - 5];
    let len = u32::from_le_bytes(whole[at + 4..at + 8].try_into().unwrap()) as usize;
    let mut bytes = whole.clone();
    bytes[at + len - 4] ^= 0x40;
    let (n, damage, err) = replay(bytes);
    assert!(damage >= 1);
    assert!(err.unwrap().contains("does not repeat the block length"));
    assert_eq!(n, all - 1);
}

#[test]
fn damage_everywhere_is_bounded_in_time_and_never_silent() {
    let mut bytes = sample();
    // Every 97th byte flipped: almost no block survives.
    for i in (40..bytes.len()).step_by(97) {
        bytes[i] ^= 0x5a;
    }
    let started = std::time::Instant::now();
    let (_, damage, err) = replay(bytes);
    assert!(damage > 10 && err.is_some());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// `sample.scap` rewritten by our writer: its events as V2 blocks, the form the recorder
/// writes and the reader's fast path reads.
fn sample_v2() -> Vec<u8> {
    let mut w = Writer::new(Vec::new()).unwrap();
    for b in Reader::from_read(Cursor::new(sample())).unwrap() {
        match b.unwrap() {
            Block::Processes(list) => w.processes(&list).unwrap(),
            Block::Fds { tid, fds } => w.fds(tid, &fds).unwrap(),
            Block::Event(ev) => w.event(&ev).unwrap(),
            _ => {}
        }
    }
    w.finish().unwrap()
}

/// How [`blocks`] reads a capture.
#[derive(Clone, Copy)]
enum How {
    /// `Iterator::next` over a stream.
    General,
    /// `next_into` over a stream (events read in place).
    InPlace,
    /// `next_into` over the file, opened as a capture file is.
    File,
}

/// Every block as the reader gives it when read `how`, with the offset after it.
fn blocks(bytes: &[u8], how: How) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut r = match how {
        How::File => {
            let path = dir.path().join("c.scap");
            std::fs::write(&path, bytes).unwrap();
            match Reader::open(&path) {
                Ok(r) => r,
                Err(e) => return vec![format!("open: {e}")],
            }
        }
        _ => Reader::from_read(Cursor::new(bytes.to_vec())).unwrap(),
    };
    let mut rec = crashscope_scap::block::EventRecord {
        cpu: 0,
        flags: 0,
        raw: Vec::new(),
    };
    let mut out = Vec::new();
    loop {
        let item = if matches!(how, How::General) {
            match r.next() {
                None => break,
                Some(b) => b,
            }
        } else {
            match r.next_into(&mut rec) {
                None => break,
                Some(Ok(crashscope_scap::reader::Next::Event)) => Ok(Block::Event(rec.clone())),
                Some(Ok(crashscope_scap::reader::Next::Block(b))) => Ok(b),
                Some(Err(e)) => Err(e),
            }
        };
        out.push(format!("{item:?} @{}", r.offset()));
    }
    out
}

#[test]
fn events_read_in_place_are_the_blocks_the_general_path_reads() {
    let bytes = sample_v2();
    let general = blocks(&bytes, How::General);
    let events = general.iter().filter(|b| b.starts_with("Ok(Event")).count();
    assert!(events > 100, "{events} events");
    assert_eq!(blocks(&bytes, How::InPlace), general);
    assert_eq!(blocks(&bytes, How::File), general);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]
    /// Damage anywhere reads the same through the fast path and from a file: the same
    /// events, the same errors at the same offsets, the same recovery.
    #[test]
    fn damaged_v2_events_read_in_place_as_the_general_path_reads_them(flips in proptest::collection::vec((0usize..80_000, 0u8..=255), 1..8), cut in 1_000usize..80_000) {
        let mut bytes = sample_v2();
        bytes.truncate(cut);
        for (at, v) in flips {
            if at < bytes.len() {
                bytes[at] = v;
            }
        }
        let general = blocks(&bytes, How::General);
        proptest::prop_assert_eq!(&blocks(&bytes, How::InPlace), &general);
        proptest::prop_assert_eq!(&blocks(&bytes, How::File), &general);
    }
}
