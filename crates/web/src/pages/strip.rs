//! The events-over-time strip above the feed: the newest matching events (the sample the
//! counts are made from) in equal time buckets, drawn server-side as bars — how many, and how
//! many of them warnings or worse — each with its time span and counts as text, and the span
//! it covers, so a bar (or a brushed stretch of bars) narrows the feed to its time.

use crashscope_model::Severity;
use jiff::Timestamp;

/// Bars in the strip.
pub const BUCKETS: usize = 48;
pub const HEIGHT: f64 = 36.0;
/// One bar's width (SVG units).
pub const WIDTH: f64 = 10.0;

/// One bar.
pub struct Bar {
    pub x: f64,
    /// Top of the bar and of its warnings part, and their heights (SVG units).
    pub y: f64,
    pub h: f64,
    pub warn_y: f64,
    pub warn_h: f64,
    /// `10:05–10:20: 12 events, 3 warnings or worse`.
    pub title: String,
    /// The time the bar covers.
    pub from: Timestamp,
    pub to: Timestamp,
    /// The feed over the bar's time (set by the page).
    pub link: String,
}

/// The strip: its bars, its width, and what it shows in words.
pub struct Strip {
    pub bars: Vec<Bar>,
    pub width: f64,
    pub height: f64,
    pub summary: String,
    pub from: String,
    pub to: String,
    /// The strip's span in Unix milliseconds, for the brush to turn pixels into times.
    pub start_ms: i64,
    pub end_ms: i64,
}

/// How a time of the strip is written: to the second when the strip spans under an hour.
fn time_format(span_ms: i128) -> &'static str {
    if span_ms < 3_600_000 {
        "%H:%M:%S"
    } else {
        "%m-%d %H:%M"
    }
}

/// The start of bucket `i` of `width_ms` from `start`.
fn at(start: Timestamp, width_ms: i128, i: usize) -> Timestamp {
    let ms = i64::try_from(width_ms * i as i128).unwrap_or(i64::MAX);
    start + jiff::SignedDuration::from_millis(ms)
}

/// The bars of `counts` (per bucket: all, and how many of them stand out — warnings,
/// errors), bucket `i` starting at `at(i)`, the tallest filling the strip, each titled by
/// `title(bucket, all, standing out)`.
pub fn bars(
    counts: &[(usize, usize)],
    at: impl Fn(usize) -> Timestamp,
    title: impl Fn(usize, usize, usize) -> String,
) -> Vec<Bar> {
    let most = counts.iter().map(|c| c.0).max().unwrap_or(0).max(1);
    counts
        .iter()
        .enumerate()
        .map(|(i, (n, w))| {
            let h = HEIGHT * *n as f64 / most as f64;
            let warn_h = HEIGHT * *w as f64 / most as f64;
            Bar {
                x: i as f64 * WIDTH,
                y: HEIGHT - h,
                h,
                warn_y: HEIGHT - warn_h,
                warn_h,
                title: title(i, *n, *w),
                from: at(i),
                to: at(i + 1),
                link: String::new(),
            }
        })
        .collect()
}

/// The strip of `times` (newest first, as the store reads them) from `start` (the oldest
/// event's time when None) to `end` (stretched to the newest event); None when there is
/// nothing to draw.
pub fn strip(
    times: &[(Timestamp, Severity)],
    start: Option<Timestamp>,
    end: Timestamp,
) -> Option<Strip> {
    let first = times.iter().map(|(t, _)| *t).min()?;
    let oldest = start.map_or(first, |s| s.min(first));
    let end = end.max(times.iter().map(|(t, _)| *t).max()?);
    let span = end.duration_since(oldest).as_millis().max(BUCKETS as i128);
    let width_ms = (span / BUCKETS as i128).max(1);
    let format = time_format(span);
    let hm = |t: Timestamp| t.strftime(format).to_string();
    let bucket = |i: usize| at(oldest, width_ms, i);
    let mut counts = [(0usize, 0usize); BUCKETS];
    for (t, sev) in times {
        let i = (t.duration_since(oldest).as_millis() / width_ms) as usize;
        let slot = &mut counts[i.min(BUCKETS - 1)];
        slot.0 += 1;
        if *sev >= Severity::Warning {
            slot.1 += 1;
        }
    }
    let bars = bars(&counts, bucket, |i, n, w| {
        format!(
            "{}–{}: {n} events, {w} warnings or worse",
            hm(bucket(i)),
            hm(bucket(i + 1))
        )
    });
    let (busiest, (n, _)) = counts
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| c.0)
        .unwrap_or((0, &(0, 0)));
    Some(Strip {
        bars,
        width: WIDTH * BUCKETS as f64,
        height: HEIGHT,
        summary: format!(
            "Events over time: {} events from {} to {}; the most, {n}, from {} to {}",
            times.len(),
            hm(oldest),
            hm(end),
            hm(bucket(busiest)),
            hm(bucket(busiest + 1))
        ),
        from: hm(oldest),
        to: hm(end),
        start_ms: oldest.as_millisecond(),
        end_ms: bucket(BUCKETS).as_millisecond(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn events_fall_in_their_buckets_and_the_tallest_fills_the_strip() {
        let times = [
            (t(4799), Severity::Error),
            (t(4790), Severity::Info),
            (t(0), Severity::Warning),
        ];
        let s = strip(&times, None, t(4800)).unwrap();
        assert_eq!(s.bars.len(), BUCKETS);
        // 4800 s in 48 buckets of 100 s: two events in the last, one in the first.
        assert!(
            s.bars[47].title.ends_with("2 events, 1 warnings or worse"),
            "{}",
            s.bars[47].title
        );
        assert!(s.bars[0].title.ends_with("1 events, 1 warnings or worse"));
        assert!(s.bars[1].title.ends_with("0 events, 0 warnings or worse"));
        assert_eq!(s.bars[47].h, HEIGHT);
        assert_eq!(s.bars[0].h, HEIGHT / 2.0);
        assert_eq!(s.bars[1].h, 0.0);
        assert!(
            s.summary.starts_with("Events over time: 3 events from"),
            "{}",
            s.summary
        );
        assert_eq!((s.bars[1].from, s.bars[1].to), (t(100), t(200)));
        assert!(strip(&[], None, t(0)).is_none());
        // A range's start widens the strip to it: the events fall in the later half.
        let ranged = strip(&times, Some(t(-4800)), t(4800)).unwrap();
        assert_eq!(ranged.bars[0].from, t(-4800));
        assert_eq!(ranged.bars[23].h, 0.0);
        assert!(ranged.bars[24].h > 0.0);
        // One event at the very moment: a strip still, the event in its bucket.
        let one = strip(&[(t(5), Severity::Info)], None, t(5)).unwrap();
        assert_eq!(one.bars.iter().filter(|b| b.h > 0.0).count(), 1);
    }
}
