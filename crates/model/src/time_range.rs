//! The times crashscope accepts from outside: from the Unix epoch to the last instant a
//! signed 64-bit count of nanoseconds reaches (2262-04-11).
//!
//! Every edge (API bodies and parameters, capture uploads, CLI flags) checks a time against
//! this range before it is stored, because everything downstream holds times in forms that
//! cannot represent more: the store keeps milliseconds that must read back into a
//! `Timestamp`, captures keep nanoseconds in 64 bits, and the kubelet's "never started" time
//! is the epoch itself. A time outside the range is refused where it enters, naming the field.

use jiff::Timestamp;

/// The earliest time accepted: the Unix epoch.
pub const EARLIEST: Timestamp = Timestamp::UNIX_EPOCH;

/// The latest time accepted: `i64::MAX` nanoseconds after the epoch (2262-04-11T23:47:16Z).
pub fn latest() -> Timestamp {
    // i64::MAX nanoseconds is well inside jiff's range; the fallback is never taken.
    Timestamp::from_nanosecond(i128::from(i64::MAX)).unwrap_or(Timestamp::MAX)
}

/// A time outside [`EARLIEST`]..=[`latest()`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given} is outside the times crashscope accepts (1970-01-01T00:00:00Z to 2262-04-11T23:47:16Z)")]
pub struct OutOfRange {
    pub given: Timestamp,
}

/// `t` when it is inside the accepted range.
pub fn check(t: Timestamp) -> Result<Timestamp, OutOfRange> {
    if t < EARLIEST || t > latest() {
        Err(OutOfRange { given: t })
    } else {
        Ok(t)
    }
}

/// An RFC 3339 time inside the accepted range, for `#[serde(deserialize_with)]`.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let t = <Timestamp as serde::Deserialize>::deserialize(d)?;
    check(t).map_err(serde::de::Error::custom)
}

/// [`deserialize`] for an optional time.
pub fn deserialize_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Timestamp>, D::Error> {
    let t = <Option<Timestamp> as serde::Deserialize>::deserialize(d)?;
    t.map(check).transpose().map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_and_the_last_nanosecond_are_in_and_beyond_is_out() {
        assert!(check(EARLIEST).is_ok());
        assert!(check(latest()).is_ok());
        let far: Timestamp = "9999-12-30T22:00:00.5Z".parse().unwrap();
        let e = check(far).unwrap_err();
        assert!(e.to_string().contains("9999-12-30"), "{e}");
        assert!(check("1969-12-31T23:59:59Z".parse().unwrap()).is_err());
        assert!(check("2262-04-12T00:00:00Z".parse().unwrap()).is_err());
    }

    #[test]
    fn every_accepted_time_survives_the_stores_milliseconds() {
        for t in [EARLIEST, latest()] {
            let back = Timestamp::from_millisecond(t.as_millisecond()).unwrap();
            assert!(back <= t);
        }
    }

    #[test]
    fn a_field_out_of_range_is_a_serde_error() {
        #[derive(serde::Deserialize, Debug)]
        struct Body {
            #[serde(default, deserialize_with = "deserialize_option")]
            at: Option<Timestamp>,
        }
        let e = serde_json::from_str::<Body>(r#"{"at":"9999-12-30T22:00:00.5Z"}"#).unwrap_err();
        assert!(e.to_string().contains("outside the times"), "{e}");
        let ok: Body = serde_json::from_str(r#"{"at":"2026-12-07T00:00:00Z"}"#).unwrap();
        assert!(ok.at.is_some());
        let none: Body = serde_json::from_str("{}").unwrap();
        assert!(none.at.is_none());
    }
}

/// A point in a capture, as `inspect --from/--to` and the capture API take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapturePoint {
    /// Nanoseconds after the capture's first event (`2s`, `1m30s`).
    After(u64),
    /// Nanoseconds since the epoch (an RFC 3339 time).
    At(u64),
}

/// `2s` (after a capture's first event) or an RFC 3339 time inside the accepted range.
pub fn capture_point(s: &str) -> Result<CapturePoint, String> {
    if let Some(d) = crate::duration::parse_go(s.trim_start_matches('+')) {
        return u64::try_from(d.as_nanos())
            .map(CapturePoint::After)
            .map_err(|_| format!("{s:?} is too long an offset"));
    }
    let t: Timestamp = s.parse().map_err(|_| {
        format!("{s:?}: expected an offset from the first event (2s, 1m30s) or an RFC 3339 time")
    })?;
    let t = check(t).map_err(|e| e.to_string())?;
    // Inside the accepted range a time is a non-negative count of nanoseconds below 2^63.
    Ok(CapturePoint::At(
        u64::try_from(t.as_nanosecond()).unwrap_or(u64::MAX),
    ))
}
