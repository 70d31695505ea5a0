//! The capture reader: random damage must never panic or hang, and damaged framing (a
//! block's type, its leading or its trailing length) must always be reported — a capture
//! that lost blocks is never shown as complete.

use std::io::Cursor;
use std::time::Duration;

use crashscope_scap::reader::Reader;
use crashscope_scap::replay::Replay;

use crate::mutate::{self, Rng};
use crate::{exercise, fixtures, seeds, Report, Run};

/// Longest a mutant of a fixture may take to read (they are under 1 MB).
const BOUND: Duration = Duration::from_secs(2);

/// Visible events read and damaged blocks reported.
fn read(bytes: &[u8]) -> (u64, u64) {
    let Ok(reader) = Reader::from_read(Cursor::new(bytes.to_vec())) else {
        return (0, 1);
    };
    let mut r = Replay::new(reader);
    let mut n = 0;
    while r.next_event().is_some() {
        n += 1;
    }
    let damage = r.damage_count + u64::from(r.error.is_some() && r.damage_count == 0);
    (n, damage)
}

/// Offsets of the blocks of a sound capture.
fn blocks(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        if len < 12 || at + len as usize > bytes.len() {
            break;
        }
        out.push(at);
        at += len as usize;
    }
    out
}

pub fn run(run: &Run) -> Report {
    let mut report = Report::new("scap");
    let corpus = seeds(&fixtures().join("scap"));
    if corpus.is_empty() {
        return report;
    }
    let mut rng = Rng::new(run.seed);
    for _ in run.rounds() {
        let seed = rng.pick(&corpus).clone();
        let offsets = blocks(&seed);
        if rng.chance(3) && !offsets.is_empty() {
            // Framing damage: the reader must say so.
            let at = *rng.pick(&offsets);
            let len = u32::from_le_bytes([seed[at + 4], seed[at + 5], seed[at + 6], seed[at + 7]]);
            let mut m = seed.clone();
            let (field, value) = match rng.below(3) {
                0 => (at, 0xDEAD_0000 | (rng.word() as u32 & 0xffff)),
                1 => (at + 4, wrong(&mut rng, len)),
                _ => (at + len as usize - 4, wrong(&mut rng, len)),
            };
            m[field..field + 4].copy_from_slice(&value.to_le_bytes());
            if let Some((_, damage)) = exercise(&mut report, run, &m, BOUND, || read(&m)) {
                if damage == 0 {
                    report.silent_damage += 1;
                    crate::save(&mut report, run, "silent", &m);
                } else {
                    report.reported_damage += 1;
                }
            }
        } else {
            let other = rng.pick(&corpus).clone();
            let m = mutate::bytes(&mut rng, &seed, &other, 8);
            if let Some((_, damage)) = exercise(&mut report, run, &m, BOUND, || read(&m)) {
                if damage > 0 {
                    report.reported_damage += 1;
                }
            }
        }
    }
    report
}

/// A length other than `len`.
fn wrong(rng: &mut Rng, len: u32) -> u32 {
    let v = match rng.below(3) {
        0 => *rng.pick(mutate::INTERESTING_U32),
        1 => len.wrapping_add(4 * (1 + rng.below(64) as u32)),
        _ => len.wrapping_sub(4 * (1 + rng.below(4) as u32)),
    };
    if v == len {
        len ^ 0x100
    } else {
        v
    }
}
