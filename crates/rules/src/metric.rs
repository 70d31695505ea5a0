//! The restart metrics, computed from restart samples: `kubernetes.pod.restart.count` (restarts
//! within a window) and `kubernetes.pod.restart.rate` (the same per second), per container,
//! pod, workload or namespace, at one instant or as a time series.

use std::collections::BTreeMap;
use std::time::Duration;

use crashscope_model::restart::{rises, FirstSighting};
use crashscope_model::RestartSample;
use jiff::Timestamp;
use serde::Serialize;

use crate::group::GroupKey;
use crate::rule::{GroupBy, MetricName};

/// One restart: the sample that showed it and how many restarts it added.
#[derive(Debug, Clone, Copy)]
pub struct Restart<'a> {
    pub sample: &'a RestartSample,
    pub added: u32,
}

/// The restarts samples show, oldest first. A rise of the count over the container's previous
/// sample is that many restarts. A container seen for the first time brings one restart when
/// its last termination finished after `baseline` (it just restarted) and none otherwise — so
/// a pod that restarted 50 times last week does not look like 50 restarts now.
pub fn restarts(samples: &[RestartSample], baseline: Timestamp) -> Vec<Restart<'_>> {
    rises(samples, FirstSighting::RecentSince(baseline))
        .into_iter()
        .map(|(sample, added)| Restart { sample, added })
        .collect()
}

/// The value of `name` over the window ending at `at`, per key at level `by`, for the given
/// restarts (any time; only those observed in `(at - window, at]` count). Keys with no restart
/// in the window are absent.
pub fn values(
    restarts: &[Restart<'_>],
    name: MetricName,
    by: GroupBy,
    window: Duration,
    at: Timestamp,
) -> BTreeMap<GroupKey, f64> {
    // A window reaching before any representable time counts everything up to `at`.
    let from = at.checked_sub(window).unwrap_or(Timestamp::MIN);
    let mut counts: BTreeMap<GroupKey, u32> = BTreeMap::new();
    for r in restarts {
        let t = r.sample.observed_at;
        if t > from && t <= at {
            *counts.entry(GroupKey::of_sample(r.sample, by)).or_default() += r.added;
        }
    }
    counts
        .into_iter()
        .map(|(k, c)| (k, scale(name, c, window)))
        .collect()
}

fn scale(name: MetricName, count: u32, window: Duration) -> f64 {
    match name {
        MetricName::RestartCount => f64::from(count),
        MetricName::RestartRate => f64::from(count) / window.as_secs_f64().max(1e-9),
    }
}

/// One time series of a metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub metric: &'static str,
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)` pairs, one per step, as Prometheus' range queries return.
    pub points: Vec<(i64, f64)>,
}

/// The metric evaluated every `step` from `from` to `to` (inclusive), each point over the
/// window ending there; series for keys that had restarts, zeros where they had none.
pub fn series(
    restarts: &[Restart<'_>],
    name: MetricName,
    by: GroupBy,
    window: Duration,
    from: Timestamp,
    to: Timestamp,
    step: Duration,
) -> Vec<Series> {
    let mut table: BTreeMap<GroupKey, Vec<(i64, f64)>> = BTreeMap::new();
    let step = step.max(Duration::from_millis(1));
    let mut at = from;
    let mut n = 0usize;
    while at <= to {
        for (k, v) in values(restarts, name, by, window, at) {
            let pts = table.entry(k).or_insert_with(|| zeros(from, step, n));
            pts.push((at.as_second(), v));
        }
        n += 1;
        for pts in table.values_mut() {
            if pts.len() < n {
                pts.push((at.as_second(), 0.0));
            }
        }
        // A step past the last representable time ends the series instead of panicking.
        match at.checked_add(step) {
            Ok(next) => at = next,
            Err(_) => break,
        }
    }
    table
        .into_iter()
        .map(|(k, points)| Series {
            metric: name.as_str(),
            labels: k.labels(),
            points,
        })
        .collect()
}

fn zeros(from: Timestamp, step: Duration, n: usize) -> Vec<(i64, f64)> {
    (0..n)
        .map_while(|i| {
            let offset = step.checked_mul(u32::try_from(i).ok()?)?;
            Some((from.checked_add(offset).ok()?.as_second(), 0.0))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crashscope_model::ContainerKind;

    pub(crate) fn sample(pod: &str, at: i64, count: u32, finished: Option<i64>) -> RestartSample {
        RestartSample {
            cluster: None,
            namespace: "default".into(),
            pod: pod.into(),
            pod_uid: Some(format!("uid-{pod}")),
            container: "nginx".into(),
            container_kind: ContainerKind::App,
            workload_kind: Some("Deployment".into()),
            workload_name: Some("nginx".into()),
            observed_at: Timestamp::from_second(at).unwrap(),
            restart_count: count,
            last_reason: Some("Error".into()),
            last_exit_code: Some(1),
            last_finished_at: finished.map(|f| Timestamp::from_second(f).unwrap()),
        }
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn rises_count_and_an_old_history_does_not() {
        let samples = vec![
            sample("a", 1000, 50, Some(100)), // first seen: 50 restarts long ago
            sample("b", 1000, 0, None),       // first seen, never restarted
            sample("b", 1010, 1, Some(1009)),
            sample("b", 1030, 2, Some(1029)),
            sample("b", 1070, 4, Some(1069)), // the watch missed one: +2
            sample("c", 1075, 3, Some(1074)), // first seen just after a restart: +1
        ];
        let r = restarts(&samples, t(900));
        let added: Vec<(&str, u32)> = r.iter().map(|r| (r.sample.pod.as_str(), r.added)).collect();
        assert_eq!(added, [("b", 1), ("b", 1), ("b", 2), ("c", 1)]);
        let per_pod = values(
            &r,
            MetricName::RestartCount,
            GroupBy::Pod,
            Duration::from_secs(240),
            t(1080),
        );
        let b = per_pod
            .iter()
            .find(|(k, _)| k.pod.as_deref() == Some("b"))
            .unwrap();
        assert_eq!(*b.1, 4.0);
        let per_workload = values(
            &r,
            MetricName::RestartCount,
            GroupBy::Workload,
            Duration::from_secs(240),
            t(1080),
        );
        assert_eq!(per_workload.values().copied().collect::<Vec<_>>(), [5.0]);
        // 60 s later only what happened after t=1080-240+60 counts.
        let late = values(
            &r,
            MetricName::RestartRate,
            GroupBy::Pod,
            Duration::from_secs(60),
            t(1080),
        );
        let b = late
            .iter()
            .find(|(k, _)| k.pod.as_deref() == Some("b"))
            .unwrap();
        assert!((b.1 - 3.0 / 60.0).abs() < 1e-9, "{}", b.1);
    }

    #[test]
    fn a_series_has_a_point_per_step_with_zeros_where_nothing_happened() {
        let samples = vec![
            sample("b", 1000, 0, None),
            sample("b", 1030, 1, Some(1029)),
            sample("b", 1090, 2, Some(1089)),
        ];
        let r = restarts(&samples, t(0));
        let s = series(
            &r,
            MetricName::RestartCount,
            GroupBy::Pod,
            Duration::from_secs(60),
            t(1000),
            t(1180),
            Duration::from_secs(60),
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].labels.get("pod").map(String::as_str), Some("b"));
        assert_eq!(
            s[0].points,
            [(1000, 0.0), (1060, 1.0), (1120, 1.0), (1180, 0.0)]
        );
    }
}
