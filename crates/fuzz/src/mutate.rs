//! Mutations of seed inputs: the moves a byte-level fuzzer makes (flips, interesting
//! integers, inserted, removed and repeated ranges, splices, truncation), driven by a small
//! deterministic generator so that a run is reproduced by its seed.

/// xorshift64*: deterministic, fast, and good enough to choose mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn word(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.word() % n as u64) as usize
        }
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Values that break length and count fields.
pub const INTERESTING_U32: &[u32] = &[
    0,
    1,
    3,
    4,
    7,
    8,
    11,
    12,
    13,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fff0,
    0xffff_ffff,
];

/// Applies 1 to `max_moves` random mutations to `input`; `other` is spliced from.
pub fn bytes(rng: &mut Rng, input: &[u8], other: &[u8], max_moves: usize) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(max_moves.max(1)) {
        let len = b.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.word() as u8;
            }
            2 if len >= 4 => {
                let i = rng.below(len - 3);
                let v = *rng.pick(INTERESTING_U32);
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(64);
                let fill: Vec<u8> = (0..n).map(|_| rng.word() as u8).collect();
                b.splice(i..i, fill);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                b.drain(i..i + n);
            }
            5 if len > 0 => {
                // Repeat a range: nesting and list growth come from this.
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = b[i..i + n].to_vec();
                let times = 1 + rng.below(32);
                for _ in 0..times {
                    b.splice(i..i, chunk.iter().copied());
                }
            }
            6 if !other.is_empty() && len > 0 => {
                let at = rng.below(len);
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(1024));
                b.truncate(at);
                b.extend_from_slice(&other[from..from + n]);
            }
            7 if len > 1 => b.truncate(rng.below(len)),
            _ if len > 0 => {
                let i = rng.below(len);
                b[i] = *rng.pick(b"[]{}\"':,-&*!|>#\n\t 0\\");
            }
            _ => b.push(rng.word() as u8),
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_reproduces_its_mutations() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let seed = b"apiVersion: v1\nkind: Pod\n";
        assert_eq!(bytes(&mut a, seed, b"", 8), bytes(&mut b, seed, b"", 8));
        let mut c = Rng::new(8);
        let differ = (0..20).any(|_| bytes(&mut a, seed, b"", 8) != bytes(&mut c, seed, b"", 8));
        assert!(differ);
    }
}
