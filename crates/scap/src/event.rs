//! Decoding an event's parameters with `falco_event`'s raw-event parser, and merging an exit
//! event with its enter event when the exit lacks parameters the enter carried (older drivers
//! wrote fd, size, ... only on enter).

use falco_event::events::RawEvent;

use crate::block::{large_payload, EventRecord};
use crate::schema;

/// The parameters of an event, as byte slices in schema order.
pub fn params(rec: &EventRecord) -> Vec<&[u8]> {
    let Ok(raw) = RawEvent::from(&rec.raw) else {
        return Vec::new();
    };
    // Parameters up to the first one that does not fit (a damaged event keeps what is sound).
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

/// The value of the parameter named `name` of an event, when present and non-empty.
pub fn param<'a>(rec: &'a EventRecord, ps: &[&'a [u8]], name: &str) -> Option<&'a [u8]> {
    let info = schema::event(rec.event_type())?;
    let i = info.params.iter().position(|p| p.name == name)?;
    ps.get(i).copied().filter(|p| !p.is_empty())
}

pub fn as_i64(p: &[u8]) -> Option<i64> {
    Some(match p.len() {
        1 => i64::from(p[0] as i8),
        2 => i64::from(i16::from_le_bytes([p[0], p[1]])),
        4 => i64::from(i32::from_le_bytes([p[0], p[1], p[2], p[3]])),
        8 => i64::from_le_bytes(p.try_into().ok()?),
        _ => return None,
    })
}

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
