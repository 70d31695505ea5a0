//! The per-CPU rings' records put back in time order. Each CPU writes its own ring, so a
//! thread that moves between CPUs leaves its records in two rings; reading ring after ring
//! would write a process's exit before its last call. The reader stages what each ring
//! holds and hands records on by timestamp, holding back those recent enough that an older
//! record may still be on its way in another ring.

/// Bytes of staging a ring keeps between bursts.
const STAGED_KEPT: usize = 1 << 20;

/// Records staged per ring, each as a length (u32, native order) and its bytes.
#[derive(Debug, Default)]
pub struct Merge {
    rings: Vec<Staged>,
}

#[derive(Debug, Default)]
struct Staged {
    buf: Vec<u8>,
    /// Where the next record not yet handed on starts.
    pos: usize,
}

impl Staged {
    /// The next record's time (a record too short to hold one sorts first, and the
    /// converter reports it).
    fn head(&self) -> Option<(u64, std::ops::Range<usize>)> {
        let len = self.buf.get(self.pos..self.pos + 4)?;
        let n = u32::from_ne_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let start = self.pos + 4;
        let body = self.buf.get(start..start + n)?;
        let ts = body
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_ne_bytes);
        Some((ts, start..start + n))
    }
}

impl Merge {
    pub fn new(rings: usize) -> Merge {
        Merge {
            rings: (0..rings).map(|_| Staged::default()).collect(),
        }
    }

    /// Keeps a record read from ring `ring` (a record of an unknown ring goes to the first).
    pub fn stage(&mut self, ring: usize, record: &[u8]) {
        let idx = if ring < self.rings.len() { ring } else { 0 };
        let Some(s) = self.rings.get_mut(idx) else {
            return;
        };
        // Records are at most 128 KiB (the probe's two snapshots), far below u32.
        s.buf
            .extend_from_slice(&(record.len() as u32).to_ne_bytes());
        s.buf.extend_from_slice(record);
    }

    /// Hands on, oldest first, every staged record whose time is at most `upto` (all of
    /// them when None), keeping the rest for the next call.
    pub fn emit(&mut self, upto: Option<u64>, mut each: impl FnMut(&[u8])) {
        use std::cmp::Reverse;
        // The rings' next records by time: a heap, so that a machine of many CPUs costs a
        // record log(CPUs), not a look at every ring.
        let mut heads: std::collections::BinaryHeap<Reverse<(u64, usize, usize, usize)>> = self
            .rings
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.head().map(|(ts, r)| Reverse((ts, i, r.start, r.end))))
            .collect();
        while let Some(Reverse((ts, i, start, end))) = heads.pop() {
            if upto.is_some_and(|u| ts > u) {
                break;
            }
            let s = &mut self.rings[i];
            each(&s.buf[start..end]);
            s.pos = end;
            if let Some((next, r)) = s.head() {
                heads.push(Reverse((next, i, r.start, r.end)));
            }
        }
        for s in &mut self.rings {
            // What is held back moves to the front only once the handed-on part is the
            // larger: moving it every round would copy each record several times.
            if s.pos == s.buf.len() {
                s.buf.clear();
                s.pos = 0;
            } else if s.pos > s.buf.len() / 2 {
                s.buf.drain(..s.pos);
                s.pos = 0;
            }
            // A burst's peak is not kept for the life of the recorder.
            if s.buf.capacity() > STAGED_KEPT && s.buf.len() < s.buf.capacity() / 4 {
                s.buf.shrink_to(STAGED_KEPT.max(s.buf.len() * 2));
            }
        }
    }

    /// Records staged and not yet handed on.
    pub fn is_empty(&self) -> bool {
        self.rings.iter().all(|s| s.pos >= s.buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: u64, tag: u8) -> Vec<u8> {
        let mut v = ts.to_ne_bytes().to_vec();
        v.push(tag);
        v
    }

    fn tags(m: &mut Merge, upto: Option<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        m.emit(upto, |r| out.push(r[8]));
        out
    }

    #[test]
    fn records_of_two_rings_come_out_in_time_order() {
        let mut m = Merge::new(2);
        for (ring, ts, tag) in [(0, 10, 1), (0, 30, 3), (1, 20, 2), (1, 40, 4), (0, 50, 5)] {
            m.stage(ring, &rec(ts, tag));
        }
        assert_eq!(tags(&mut m, None), [1, 2, 3, 4, 5]);
        assert!(m.is_empty());
    }

    #[test]
    fn recent_records_wait_for_an_older_one_still_on_its_way() {
        let mut m = Merge::new(2);
        m.stage(0, &rec(10, 1));
        m.stage(0, &rec(30, 3));
        assert_eq!(tags(&mut m, Some(20)), [1]);
        assert!(!m.is_empty());
        // The other CPU's record of time 20 arrives a round later, and still comes first.
        m.stage(1, &rec(20, 2));
        m.stage(1, &rec(40, 4));
        assert_eq!(tags(&mut m, Some(35)), [2, 3]);
        assert_eq!(tags(&mut m, None), [4]);
    }

    #[test]
    fn many_rings_interleave_by_time_and_a_burst_leaves_no_peak_behind() {
        let mut m = Merge::new(8);
        for n in 0..800u64 {
            // Ring r holds times r, r + 8, r + 16, ...
            m.stage((n % 8) as usize, &rec(n, (n % 251) as u8));
        }
        let mut times = Vec::new();
        m.emit(None, |r| {
            times.push(u64::from_ne_bytes(r[..8].try_into().unwrap()))
        });
        assert_eq!(times, (0..800).collect::<Vec<_>>());
        let big = vec![0u8; 4 << 20];
        m.stage(0, &big);
        m.emit(None, |_| {});
        assert!(
            m.rings[0].buf.capacity() <= STAGED_KEPT,
            "{}",
            m.rings[0].buf.capacity()
        );
    }

    #[test]
    fn a_record_too_short_for_a_time_is_handed_on_not_lost() {
        let mut m = Merge::new(1);
        m.stage(0, &rec(5, 1));
        m.stage(0, &[7, 7]);
        let mut out = Vec::new();
        m.emit(None, |r| out.push(r.to_vec()));
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], [7, 7]);
        m.stage(9, &rec(1, 9));
        assert_eq!(tags(&mut m, None), [9]);
    }
}
