//! Durations and times the way kubectl prints them: `HumanDuration` ("5m12s", "47h", "2d3h",
//! "<invalid>"), ages since a timestamp, and describe's RFC 1123 timestamps.

use jiff::{tz::TimeZone, SignedDuration, Timestamp};

/// apimachinery's `HumanDuration`: two units while the bigger one is small, one unit after.
pub fn human_duration(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 192 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let days = hours / 24;
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let dy = days % 365;
        return if dy == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{dy}d")
        };
    }
    format!("{years}y")
}

/// kubectl's `translateTimestampSince`: the age of `t` at `now`, `<unknown>` when unset.
pub fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".into(),
    }
}

/// kubectl describe's time format (Go's RFC1123Z) in time zone `tz`, as kubectl shows times
/// in the local zone: `Sun, 02 Dec 2018 09:19:36 +0000`.
pub fn rfc1123z(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(secs: i64) -> String {
        human_duration(SignedDuration::from_secs(secs))
    }

    #[test]
    fn boundaries_match_apimachinery() {
        let hour = 3600;
        let day = 24 * hour;
        let cases = [
            (-5, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (121, "2m1s"),
            (599, "9m59s"),
            (600, "10m"),
            (10_799, "179m"),
            (10_800, "3h"),
            (28_799, "7h59m"),
            (8 * hour, "8h"),
            (48 * hour - 60, "47h"),
            (48 * hour, "2d"),
            (191 * hour, "7d23h"),
            (192 * hour, "8d"),
            (730 * day - hour, "729d"),
            (730 * day, "2y"),
            (731 * day, "2y1d"),
            (2919 * day, "7y364d"),
            (2920 * day, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(h(secs), want, "{secs}s");
        }
    }

    #[test]
    fn describe_time_format() {
        let t: Timestamp = "2018-12-02T09:19:36Z".parse().unwrap();
        assert_eq!(
            rfc1123z(t, &TimeZone::UTC),
            "Sun, 02 Dec 2018 09:19:36 +0000"
        );
        let paris = TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(rfc1123z(t, &paris), "Sun, 02 Dec 2018 10:19:36 +0100");
        assert_eq!(since(None, t), "<unknown>");
    }
}
