//! A page's time range as its URL carries it: `last=1h` (relative: it moves with now) or
//! `from`/`to` (absolute: RFC 3339, or a `datetime-local` field's value, read as UTC). What
//! the API is asked, the absolute form that freezes a relative range into a link that means
//! the same thing tomorrow, and the presets a page offers.

use jiff::{civil::DateTime, tz::TimeZone, Timestamp};
use serde::Deserialize;

/// The presets (`last` values) and their labels; the empty one is no limit.
pub const PRESETS: [(&str, &str); 6] = [
    ("", "all time"),
    ("15m", "last 15 minutes"),
    ("1h", "last hour"),
    ("6h", "last 6 hours"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
];

/// The range's three fields, as the query string has them (empty: not given).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TimeRange {
    #[serde(default)]
    pub last: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

/// `s` as a time: RFC 3339 (`2026-12-07T10:00:00Z`), or a zoneless `2026-12-07T10:00` or
/// `2026-12-07 10:00:00` as a browser's date-and-time field sends it, taken as UTC (the
/// pages show UTC). None for anything else, a relative `1h` included.
pub fn absolute(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    let civil: DateTime = s.parse().ok()?;
    civil.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// A time as a `datetime-local` field shows it (UTC, to the second).
pub fn field_value(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

impl TimeRange {
    /// Absolute bounds.
    pub fn between(from: Timestamp, to: Timestamp) -> TimeRange {
        TimeRange {
            last: String::new(),
            from: from.to_string(),
            to: to.to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.last.trim().is_empty() && self.from.trim().is_empty() && self.to.trim().is_empty()
    }

    /// The `from` the API takes: a preset when one is chosen (a form sends its absolute
    /// fields too: choosing "last hour" must win over them), else the absolute start
    /// (normalised to RFC 3339), else what `from` says as given (the API also reads `1h`
    /// there, as links made before `last` existed do).
    pub fn api_from(&self) -> Option<String> {
        match (self.from.trim(), self.last.trim()) {
            ("", "") => None,
            (_, last) if !last.is_empty() => Some(last.to_string()),
            (from, _) => Some(absolute(from).map_or_else(|| from.to_string(), |t| t.to_string())),
        }
    }

    /// The `to` the API takes (absolute only, and not under a preset: a preset ends now).
    pub fn api_to(&self) -> Option<String> {
        match self.to.trim() {
            _ if !self.last.trim().is_empty() => None,
            "" => None,
            to => Some(absolute(to).map_or_else(|| to.to_string(), |t| t.to_string())),
        }
    }

    /// The preset chosen, for the page's select: `last`, or a relative `from`.
    pub fn preset(&self) -> &str {
        if !self.last.is_empty() {
            &self.last
        } else if absolute(&self.from).is_none() {
            &self.from
        } else {
            ""
        }
    }

    /// The start as the absolute field shows it (empty when relative, open, or under a
    /// preset).
    pub fn from_field(&self) -> String {
        if !self.last.trim().is_empty() {
            return String::new();
        }
        absolute(&self.from).map(field_value).unwrap_or_default()
    }

    pub fn to_field(&self) -> String {
        if !self.last.trim().is_empty() {
            return String::new();
        }
        absolute(&self.to).map(field_value).unwrap_or_default()
    }

    /// The same range with a relative start made absolute at `now`: a link to it shows the
    /// same events later. None when there is nothing relative to freeze.
    pub fn frozen(&self, now: Timestamp) -> Option<TimeRange> {
        let relative = if !self.last.trim().is_empty() {
            self.last.trim()
        } else if !self.from.trim().is_empty() && absolute(&self.from).is_none() {
            self.from.trim()
        } else {
            return None;
        };
        let span = crashscope_model::duration::parse_go(relative)?;
        let span = jiff::SignedDuration::try_from(span).ok()?;
        let from = now.checked_sub(span).ok()?;
        let to = absolute(&self.to).unwrap_or(now);
        Some(TimeRange::between(from, to))
    }

    /// The fields for a query string, as a page's links carry them.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [("last", &self.last), ("from", &self.from), ("to", &self.to)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_browser_field_is_read_as_utc_and_rfc_3339_as_written() {
        assert_eq!(
            absolute("2026-12-07T10:30"),
            Some(t("2026-12-07T10:30:00Z"))
        );
        assert_eq!(
            absolute("2026-12-07 10:30:05"),
            Some(t("2026-12-07T10:30:05Z"))
        );
        assert_eq!(
            absolute("2026-12-07T10:30:00+01:00"),
            Some(t("2026-12-07T09:30:00Z"))
        );
        assert_eq!(absolute("1h"), None);
        assert_eq!(absolute("yesterdayish"), None);
        assert_eq!(
            field_value(t("2026-12-07T09:30:00Z")),
            "2026-12-07T09:30:00"
        );
    }

    #[test]
    fn the_api_is_asked_the_absolute_range_before_the_relative_one() {
        let last = TimeRange {
            last: "1h".into(),
            ..TimeRange::default()
        };
        assert_eq!(last.api_from().as_deref(), Some("1h"));
        assert_eq!(last.api_to(), None);
        assert_eq!(last.preset(), "1h");
        let absolute_only = TimeRange {
            from: "2026-12-07T10:00".into(),
            to: "2026-12-07T11:00".into(),
            ..TimeRange::default()
        };
        assert_eq!(
            absolute_only.api_from().as_deref(),
            Some("2026-12-07T10:00:00Z")
        );
        assert_eq!(
            absolute_only.api_to().as_deref(),
            Some("2026-12-07T11:00:00Z")
        );
        assert_eq!(absolute_only.from_field(), "2026-12-07T10:00:00");
        assert_eq!(absolute_only.preset(), "");
        // A preset chosen in a form that still holds absolute times: the preset.
        let both = TimeRange {
            last: "1h".into(),
            ..absolute_only.clone()
        };
        assert_eq!(both.api_from().as_deref(), Some("1h"));
        assert_eq!(both.api_to(), None);
        assert_eq!(both.from_field(), "");
        // A relative `from` (links from before `last`) is still a preset.
        let old = TimeRange {
            from: "6h".into(),
            ..TimeRange::default()
        };
        assert_eq!(old.preset(), "6h");
        assert_eq!(old.api_from().as_deref(), Some("6h"));
        // Nonsense goes to the API as given, which names the field in its refusal.
        let bad = TimeRange {
            from: "yesterdayish".into(),
            ..TimeRange::default()
        };
        assert_eq!(bad.api_from().as_deref(), Some("yesterdayish"));
        assert!(TimeRange::default().is_empty() && TimeRange::default().api_from().is_none());
    }

    #[test]
    fn freezing_makes_a_relative_range_absolute_and_leaves_absolute_ones() {
        let now = t("2026-12-07T12:00:00Z");
        let last = TimeRange {
            last: "1h".into(),
            ..TimeRange::default()
        };
        let frozen = last.frozen(now).unwrap();
        assert_eq!(frozen.api_from().as_deref(), Some("2026-12-07T11:00:00Z"));
        assert_eq!(frozen.api_to().as_deref(), Some("2026-12-07T12:00:00Z"));
        assert!(frozen.last.is_empty());
        assert_eq!(frozen.frozen(now), None);
        assert_eq!(TimeRange::default().frozen(now), None);
    }
}
