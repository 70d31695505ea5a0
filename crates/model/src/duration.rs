//! Go-style duration strings ("40s", "2m40s", "5m0s", "1h0m0s") as the kubelet writes them in
//! back-off messages, parsed and formatted so our messages read exactly like the kubelet's.

use std::time::Duration;

/// Formats a duration the way Go's `time.Duration.String()` does for whole-second and
/// millisecond values: `0s`, `500ms`, `10s`, `2m40s`, `5m0s`, `1h0m0s`.
pub fn format_go(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d < Duration::from_secs(1) {
        let ms = d.as_secs_f64() * 1000.0;
        return format!("{}ms", trim_float(ms));
    }
    let total = d.as_secs();
    let frac = d.subsec_nanos();
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{}s", trim_float(s as f64 + f64::from(frac) / 1e9))
    };
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Parses a Go duration string such as `1m20s` or `300ms`, and days (`2d`, as kubectl's
/// `--since` and Prometheus take them). Returns `None` for anything else.
pub fn parse_go(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "d" => 86400.0,
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let cases = [
            (0, "0s"),
            (10, "10s"),
            (40, "40s"),
            (80, "1m20s"),
            (160, "2m40s"),
            (300, "5m0s"),
            (3600, "1h0m0s"),
            (3725, "1h2m5s"),
        ];
        for (secs, want) in cases {
            assert_eq!(format_go(Duration::from_secs(secs)), want);
            assert_eq!(parse_go(want), Some(Duration::from_secs(secs)));
        }
        assert_eq!(parse_go("2d"), Some(Duration::from_secs(2 * 86400)));
        assert_eq!(parse_go("1d12h"), Some(Duration::from_secs(36 * 3600)));
        assert_eq!(format_go(Duration::from_millis(500)), "500ms");
        assert_eq!(format_go(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "s", "10x", "abc", "1.2.3s", "-5s"] {
            assert_eq!(parse_go(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse_go(&s);
        }

        #[test]
        fn round_trips_whole_seconds(secs in 0u64..1_000_000) {
            let d = Duration::from_secs(secs);
            proptest::prop_assert_eq!(parse_go(&format_go(d)), Some(d));
        }
    }
}
