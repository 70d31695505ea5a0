//! Splitting an event's parameters, and reading their values. Every view and the state ask
//! for the parameters of every event, so the split allocates nothing for the events a capture
//! holds (at most [`INLINE`] parameters, enough for reads, writes and most calls): at 4 M events a second
//! a vector per event was a third of a view's time. `falco_event`'s raw-event parser is the
//! oracle the tests compare the split with.

use std::ops::Deref;

use crate::block::{large_payload, EventRecord};
use crate::schema;

/// Parameters kept without allocating.
pub const INLINE: usize = 8;

/// The parameters of an event, as byte slices in schema order (a slice by `Deref`).
#[derive(Clone)]
pub struct Params<'a> {
    len: usize,
    inline: [&'a [u8]; INLINE],
    /// All of them, when there are more than [`INLINE`] (a driver newer than the schema).
    spill: Vec<&'a [u8]>,
}

impl<'a> Deref for Params<'a> {
    type Target = [&'a [u8]];
    #[inline]
    fn deref(&self) -> &[&'a [u8]] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

impl std::fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Default for Params<'_> {
    fn default() -> Self {
        Params {
            len: 0,
            inline: [&[]; INLINE],
            spill: Vec::new(),
        }
    }
}

impl<'a> Params<'a> {
    #[inline]
    fn push(&mut self, p: &'a [u8]) {
        if self.len < INLINE {
            self.inline[self.len] = p;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(p);
        }
        self.len += 1;
    }
}

/// The parameters of an event: up to the first one that does not fit (a damaged event keeps
/// what is sound). The record is the v2 form the reader gives: a 26-byte header with the
/// parameter count, the lengths (4 bytes for the large-payload events, else 2), the values.
#[inline]
pub fn params(rec: &EventRecord) -> Params<'_> {
    let mut out = Params::default();
    split_into(rec, &mut out);
    out
}

/// [`params`] into `out` (emptied first): a caller splitting every event of a capture keeps
/// the split where it will use it instead of copying it there.
#[inline]
pub fn split_into<'a>(rec: &'a EventRecord, out: &mut Params<'a>) {
    out.len = 0;
    out.spill.clear();
    let raw = rec.raw.as_slice();
    let Some(header) = raw.get(..26) else {
        return;
    };
    let n = u32::from_le_bytes([header[22], header[23], header[24], header[25]]) as usize;
    let width = if large_payload(rec.event_type()) {
        4
    } else {
        2
    };
    let Some(mut at) = n
        .checked_mul(width)
        .and_then(|l| l.checked_add(26))
        .filter(|end| *end <= raw.len())
    else {
        return;
    };
    for i in 0..n {
        let l = &raw[26 + i * width..];
        let len = if width == 2 {
            usize::from(u16::from_le_bytes([l[0], l[1]]))
        } else {
            u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize
        };
        let Some(value) = raw.get(at..at.saturating_add(len)) else {
            break;
        };
        out.push(value);
        at += len;
    }
}

/// Parameter `i` alone, as [`split_into`] would give it, read without splitting the others
/// (a view asks most events for one or two: the result, the fd, the data).
#[inline]
pub fn nth_param(rec: &EventRecord, i: usize) -> Option<&[u8]> {
    let raw = rec.raw.as_slice();
    let header = raw.get(..26)?;
    let n = u32::from_le_bytes([header[22], header[23], header[24], header[25]]) as usize;
    if i >= n {
        return None;
    }
    let width = if large_payload(rec.event_type()) {
        4
    } else {
        2
    };
    let mut at = n.checked_mul(width)?.checked_add(26)?;
    let lens = raw.get(26..at)?;
    let len_of = |k: usize| {
        let l = &lens[k * width..];
        if width == 2 {
            usize::from(u16::from_le_bytes([l[0], l[1]]))
        } else {
            u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize
        }
    };
    for k in 0..i {
        at = at.checked_add(len_of(k))?;
    }
    // Values end in order: when this one fits, every one before it did.
    raw.get(at..at.checked_add(len_of(i))?)
}

/// The value of the parameter named `name` of an event, when present and non-empty.
pub fn param<'a>(rec: &'a EventRecord, ps: &[&'a [u8]], name: &str) -> Option<&'a [u8]> {
    let info = schema::event(rec.event_type())?;
    let i = info.params.iter().position(|p| p.name == name)?;
    ps.get(i).copied().filter(|p| !p.is_empty())
}

#[inline]
pub fn as_i64(p: &[u8]) -> Option<i64> {
    Some(match p.len() {
        1 => i64::from(p[0] as i8),
        2 => i64::from(i16::from_le_bytes([p[0], p[1]])),
        4 => i64::from(i32::from_le_bytes([p[0], p[1], p[2], p[3]])),
        8 => i64::from_le_bytes(p.try_into().ok()?),
        _ => return None,
    })
}

#[inline]
pub fn as_u64(p: &[u8]) -> Option<u64> {
    Some(match p.len() {
        1 => u64::from(p[0]),
        2 => u64::from(u16::from_le_bytes([p[0], p[1]])),
        4 => u64::from(u32::from_le_bytes([p[0], p[1], p[2], p[3]])),
        8 => u64::from_le_bytes(p.try_into().ok()?),
        _ => return None,
    })
}

/// A NUL-terminated string parameter.
pub fn as_str(p: &[u8]) -> String {
    let p = p.split(|c| *c == 0).next().unwrap_or(p);
    String::from_utf8_lossy(p).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use falco_event::events::RawEvent;
    use proptest::prelude::*;

    /// What `falco_event` splits the same record into.
    fn oracle(rec: &EventRecord) -> Vec<&[u8]> {
        let Ok(raw) = RawEvent::from(&rec.raw) else {
            return Vec::new();
        };
        if large_payload(rec.event_type()) {
            raw.params::<u32>()
                .map(|p| p.map_while(Result::ok).collect())
                .unwrap_or_default()
        } else {
            raw.params::<u16>()
                .map(|p| p.map_while(Result::ok).collect())
                .unwrap_or_default()
        }
    }

    fn record(etype: u16, lens: &[u32], data: &[u8], claimed: Option<u32>) -> EventRecord {
        let width = if large_payload(etype) { 4 } else { 2 };
        let mut raw = vec![0u8; 26];
        raw[20..22].copy_from_slice(&etype.to_le_bytes());
        raw[22..26].copy_from_slice(&(lens.len() as u32).to_le_bytes());
        for l in lens {
            raw.extend_from_slice(&l.to_le_bytes()[..width]);
        }
        raw.extend_from_slice(data);
        let total = claimed.unwrap_or(raw.len() as u32);
        raw[16..20].copy_from_slice(&total.to_le_bytes());
        EventRecord {
            cpu: 0,
            flags: 0,
            raw,
        }
    }

    #[test]
    fn more_parameters_than_kept_inline_are_all_given() {
        let lens = vec![1u32; 40];
        let data: Vec<u8> = (0..40).collect();
        let rec = record(3, &lens, &data, None);
        let ps = params(&rec);
        assert_eq!(ps.len(), 40);
        assert_eq!(ps[39], [39]);
        assert_eq!(&ps[..], &oracle(&rec)[..]);
    }

    proptest! {
        /// The split agrees with falco_event's on sound and on damaged records (lengths past
        /// the end, a claimed length shorter than the record, the large-payload types).
        #[test]
        fn the_split_matches_falco_event(
            etype in prop::sample::select(vec![3u16, 4, 322, 324, 402, 293]),
            lens in prop::collection::vec(0u32..40, 0..36),
            extra in 0usize..60,
            short in prop::option::of(0u32..200),
        ) {
            let data = vec![7u8; lens.iter().map(|l| *l as usize).sum::<usize>().saturating_sub(extra)];
            let rec = record(etype, &lens, &data, short);
            prop_assert_eq!(&params(&rec)[..], &oracle(&rec)[..]);
            let whole = oracle(&rec);
            for i in 0..lens.len() + 1 {
                prop_assert_eq!(nth_param(&rec, i), whole.get(i).copied());
            }
        }
    }
}
