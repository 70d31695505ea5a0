//! Parameter values on their way into scap events, and the buffer the converter encodes a
//! record's events into. The recorder converts millions of records a second on the thread
//! that drains the ring buffer: values borrow the record's bytes, a call's values sit on the
//! stack, and every event is encoded into one buffer reused from record to record, so a
//! converted call costs no allocation.

use crashscope_scap::block::large_payload;
use crashscope_scap::schema;

/// One parameter's value, encoded as scap stores it when the event is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val<'a> {
    /// The low `n` bytes of an integer, little-endian.
    Int(i64, u8),
    /// Bytes as they are (payloads, encoded addresses).
    Bytes(&'a [u8]),
    /// A string; written NUL-terminated.
    Str(&'a str),
    /// Bytes built for this event (tuples, joined lists, notes).
    Owned(Vec<u8>),
}

impl Val<'_> {
    fn len(&self) -> usize {
        match self {
            Val::Int(_, n) => usize::from(*n).min(8),
            Val::Bytes(b) => b.len(),
            Val::Str(s) => s.len() + 1,
            Val::Owned(b) => b.len(),
        }
    }

    /// Appends at most `max` bytes of the value.
    fn put(&self, out: &mut Vec<u8>, max: usize) {
        match self {
            Val::Int(v, n) => out.extend_from_slice(&v.to_le_bytes()[..usize::from(*n).min(8)]),
            Val::Bytes(b) => out.extend_from_slice(&b[..b.len().min(max)]),
            Val::Owned(b) => out.extend_from_slice(&b[..b.len().min(max)]),
            Val::Str(s) => {
                let b = s.as_bytes();
                if b.len() < max {
                    out.extend_from_slice(b);
                    out.push(0);
                } else {
                    out.extend_from_slice(&b[..max]);
                }
            }
        }
    }
}

/// An integer parameter of `N` bytes.
pub fn int<const N: u8>(v: i64) -> Val<'static> {
    Val::Int(v, N)
}

/// A named value: the converter names values by the schema's parameter names.
pub type Named<'a> = (&'static str, Val<'a>);

/// Up to [`Vals::CAP`] named values without a heap allocation, for code that chooses a
/// call's values in one place and encodes them in another.
#[derive(Debug, Clone)]
pub struct Vals<'a> {
    len: usize,
    items: [Named<'a>; Vals::CAP],
}

impl<'a> Vals<'a> {
    /// The most values a call's event gets this way (mmap's entry has six).
    pub const CAP: usize = 8;

    /// Adds a value; a value past [`Vals::CAP`] is a programming error, caught by the tests
    /// that convert every call, and left out rather than panicking in the recorder.
    pub fn push(&mut self, v: Named<'a>) {
        debug_assert!(self.len < Self::CAP, "more than {} values", Self::CAP);
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = v;
            self.len += 1;
        }
    }
}

impl<'a> Vals<'a> {
    pub fn extend_from<const N: usize>(&mut self, a: [Named<'a>; N]) {
        for x in a {
            self.push(x);
        }
    }
}

impl Default for Vals<'_> {
    fn default() -> Self {
        Vals {
            len: 0,
            items: std::array::from_fn(|_| ("", Val::Int(0, 0))),
        }
    }
}

impl<'a, const N: usize> From<[Named<'a>; N]> for Vals<'a> {
    fn from(a: [Named<'a>; N]) -> Self {
        let mut v = Vals::default();
        v.extend_from(a);
        v
    }
}

impl<'a> std::ops::Deref for Vals<'a> {
    type Target = [Named<'a>];
    fn deref(&self) -> &[Named<'a>] {
        &self.items[..self.len]
    }
}

/// The events of one record, encoded one after the other in the layout of an event block's
/// body (V2: 26-byte header, parameter lengths, data) and reused from record to record.
#[derive(Debug, Default)]
pub struct Events {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Events {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each event's bytes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, e)| &self.buf[s..*e])
    }

    /// Adds event `code` of thread `tid` at `ts` (ns since the epoch) with `values` by
    /// parameter name, in the schema's order; what has no value is zeros of the
    /// parameter's fixed size, or empty. An event the schema does not know gets no
    /// parameters.
    pub fn push(&mut self, ts: u64, tid: i64, code: u16, values: &[Named<'_>]) {
        // Zeros for parameters the probe did not see (at most 16 bytes fixed size).
        const ZEROS: Val<'static> = Val::Bytes(&[0; 32]);
        let params = schema::event(code).map_or(&[][..], |e| &e.params[..]);
        // The schema's largest event has 30 parameters.
        let mut slots: [(&Val<'_>, usize); 32] = [(&ZEROS, 0); 32];
        let n = params.len().min(slots.len());
        let large = large_payload(code);
        let max = if large {
            u32::MAX as usize
        } else {
            usize::from(u16::MAX)
        };
        let mut data_len = 0;
        for (i, (slot, p)) in slots.iter_mut().zip(params).enumerate() {
            // Values mostly come in schema order (a measured alternative, a layout learned
            // per call site, was no faster): look where this one should be first.
            let v = match values.get(i) {
                Some((name, v)) if *name == p.name => Some(v),
                _ => values
                    .iter()
                    .find(|(name, _)| *name == p.name)
                    .map(|x| &x.1),
            };
            *slot = match v {
                Some(v) => (v, v.len().min(max)),
                None => (&ZEROS, p.ty.fixed_size().unwrap_or(0).min(32)),
            };
            data_len += slot.1;
        }
        let width = if large { 4 } else { 2 };
        let len = 26 + width * n + data_len;
        let b = &mut self.buf;
        b.reserve(len);
        b.extend_from_slice(&ts.to_le_bytes());
        b.extend_from_slice(&tid.to_le_bytes());
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(&code.to_le_bytes());
        b.extend_from_slice(&(n as u32).to_le_bytes());
        for (_, l) in &slots[..n] {
            if large {
                b.extend_from_slice(&(*l as u32).to_le_bytes());
            } else {
                b.extend_from_slice(&(*l as u16).to_le_bytes());
            }
        }
        for (v, l) in &slots[..n] {
            v.put(b, *l);
        }
        self.ends.push(b.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crashscope_scap::block::EventRecord;
    use crashscope_scap::build::string;

    #[test]
    fn an_event_encodes_as_the_scap_builder_does() {
        // openat's exit (307): fd, dirfd, name, flags, mode, dev, ino.
        let mut ev = Events::default();
        ev.push(
            5,
            7,
            307,
            &[
                ("fd", int::<8>(3)),
                ("name", Val::Str("/etc/hosts")),
                ("dirfd", int::<8>(-100)),
                ("flags", int::<4>(1)),
            ],
        );
        ev.push(6, 7, 3, &[]);
        let zero8 = [0u8; 8];
        let want = EventRecord::build(
            5,
            7,
            307,
            &[
                &3i64.to_le_bytes(),
                &(-100i64).to_le_bytes(),
                &string("/etc/hosts"),
                &1u32.to_le_bytes(),
                &0u32.to_le_bytes(),
                &zero8[..4],
                &zero8,
            ],
        );
        let got: Vec<&[u8]> = ev.iter().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], &want.raw[..]);
        ev.clear();
        assert!(ev.is_empty());
    }

    #[test]
    fn a_string_cut_to_its_length_field_loses_its_terminator_not_the_frame() {
        let long = "x".repeat(70_000);
        let mut ev = Events::default();
        // open's exit (3): fd, name, ...; a short-payload event with 2-byte lengths.
        ev.push(0, 1, 3, &[("name", Val::Str(&long))]);
        let raw = ev.iter().next().unwrap().to_vec();
        let rec = EventRecord {
            cpu: 0,
            flags: 0,
            raw,
        };
        let ps = crashscope_scap::event::params(&rec);
        assert_eq!(ps.len(), rec.nparams() as usize);
        assert_eq!(
            crashscope_scap::event::param(&rec, &ps, "name").map(<[u8]>::len),
            Some(65_535)
        );
    }

    #[test]
    fn vals_hold_what_they_are_given_in_order() {
        let v: Vals = [("fd", int::<8>(1)), ("size", int::<4>(2))].into();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].0, "size");
    }
}
