//! Query parameters shared by the API's listings: times (RFC 3339 or a duration back from
//! now, like Prometheus and kubectl's `--since`), durations, severities, limits.

use std::time::Duration;

use crashscope_model::duration::parse_go;
use crashscope_model::time_range;
use crashscope_model::Severity;
use jiff::Timestamp;

use crate::error::ApiError;

/// `2026-11-28T10:00:00Z`, a Unix time in seconds, or `1h` (that long before `now`).
pub fn time(field: &str, value: &str, now: Timestamp) -> Result<Timestamp, ApiError> {
    let bounded = |t: Timestamp| {
        time_range::check(t).map_err(|e| ApiError::bad_request(field, e.to_string()))
    };
    if let Ok(t) = value.parse::<Timestamp>() {
        return bounded(t);
    }
    if let Ok(secs) = value.parse::<f64>() {
        // Seconds past what a Timestamp holds are out of range, not a duration.
        return match Timestamp::from_millisecond((secs * 1000.0) as i64) {
            Ok(t) if secs.is_finite() => bounded(t),
            _ => Err(ApiError::bad_request(
                field,
                format!("{value:?} is not a Unix time crashscope accepts"),
            )),
        };
    }
    let d = duration(field, value)?;
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_sub(d).ok())
        .filter(|t| *t >= time_range::EARLIEST)
        .ok_or_else(|| ApiError::bad_request(field, format!("{value:?} reaches too far back")))
}

/// A Go-style duration: `30s`, `4m`, `1h30m`.
pub fn duration(field: &str, value: &str) -> Result<Duration, ApiError> {
    parse_go(value).ok_or_else(|| {
        ApiError::bad_request(
            field,
            format!(
                "{value:?} is not a time or duration (use RFC 3339, Unix seconds, or 30s, 4m, 1h)"
            ),
        )
    })
}

pub fn severity(field: &str, value: &str) -> Result<Severity, ApiError> {
    value
        .parse()
        .map_err(|e: crashscope_model::severity::UnknownSeverity| {
            ApiError::bad_request(field, e.to_string())
        })
}

/// A page size: 1 to `max`, `default` when absent.
pub fn limit(value: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match value {
        None => Ok(default),
        Some(0) => Err(ApiError::bad_request("limit", "limit must be at least 1")),
        Some(n) if n > max => Err(ApiError::bad_request(
            "limit",
            format!("limit must be at most {max}"),
        )),
        Some(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_absolute_unix_or_relative() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        assert_eq!(
            time("from", "2026-11-28T10:00:00Z", now)
                .unwrap()
                .to_string(),
            "2026-11-28T10:00:00Z"
        );
        assert_eq!(
            time("from", "1h", now).unwrap().to_string(),
            "2026-11-28T11:00:00Z"
        );
        assert_eq!(
            time("from", "1764324000", now).unwrap().as_second(),
            1764324000
        );
        let e = time("from", "yesterday", now).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("from"));
        for far in ["9999-12-30T22:00:00.5Z", "1e300", "-5", "100000000000000"] {
            let e = time("to", far, now).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("to"), "{far}");
        }
    }
}
