//! Captures asked for (an alert's action, an operator): the pod's next failure is written
//! whatever the rate limit says, or — once a container has run the requested time — a copy
//! of its window is; after the give-up time, whatever runs then.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crashscope_model::capture::{CaptureReport, ContainerRef, WrittenCapture};

use super::Inner;

/// Fulfils a request for pod `namespace/pod` (one container, or all); `report` gets one
/// entry per container instance, none when nothing of the pod was recorded.
pub(super) fn snapshot(
    inner: &Arc<Inner>,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    wait: Duration,
    give_up: Duration,
    report: CaptureReport,
) {
    let me = inner.clone();
    let pod_key = (namespace.to_string(), pod.to_string());
    let container = container.map(str::to_string);
    let started = Instant::now();
    if let Ok(mut s) = me.state.lock() {
        *s.requested.entry(pod_key.clone()).or_default() += 1;
    }
    std::thread::spawn(move || {
        let matches = |who: &ContainerRef| {
            who.namespace == pod_key.0
                && who.pod == pod_key.1
                && container.as_ref().is_none_or(|c| c == &who.container)
        };
        let (written, live) = loop {
            std::thread::sleep(Duration::from_millis(100));
            let Ok(s) = me.state.lock() else {
                report(Vec::new());
                return;
            };
            let written: Vec<(ContainerRef, WrittenCapture)> = s
                .written
                .values()
                .filter(|(at, who, _)| *at >= started && matches(who))
                .map(|(_, who, w)| (who.clone(), w.clone()))
                .collect();
            let elapsed = started.elapsed();
            let live: Vec<(u64, ContainerRef)> = s
                .buffers
                .iter()
                .filter(|(_, b)| matches(&b.who))
                .filter(|(_, b)| elapsed >= give_up || b.started.elapsed() >= wait)
                .map(|(k, b)| (*k, b.who.clone()))
                .collect();
            let done = !written.is_empty() || (elapsed >= wait && !live.is_empty());
            if done || elapsed >= give_up {
                let live = if written.is_empty() { live } else { Vec::new() };
                break (written, live);
            }
        };
        if let Ok(mut s) = me.state.lock() {
            if let Some(n) = s.requested.get_mut(&pod_key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    s.requested.remove(&pod_key);
                }
            }
        }
        let mut out: Vec<(ContainerRef, Result<WrittenCapture, String>)> =
            written.into_iter().map(|(who, w)| (who, Ok(w))).collect();
        let seq = u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0);
        for (key, who) in live {
            out.push((who, me.copy(key, seq)));
        }
        report(out);
    });
}
