//! Scale benchmark of the watch path: a synthetic but realistically shaped cluster stream —
//! N pods in Deployments across namespaces, then M Kubernetes events (new events, and events
//! updated in place with rising counts as the API server aggregates them) interleaved with
//! the pod updates of crash-looping containers — through normalization (`Ingest`) into
//! the SQLite store. Prints events/s, CPU seconds and peak RSS.
//!
//!   cargo bench -p crashscope-kube --bench scale -- [--pods 100000] [--events 1000000]

use std::time::Instant;

use crashscope_kube::watch::Change;
use crashscope_model::Catalog;
use crashscope_store::Ingest;
use crashscope_store::SqlStore;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use serde_json::json;

/// A tiny deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PODS_PER_DEPLOYMENT: u64 = 20;
const NAMESPACES: u64 = 500;

fn names(i: u64) -> (String, String, String) {
    let d = i / PODS_PER_DEPLOYMENT;
    let ns = format!("team-{}", d % NAMESPACES);
    let deploy = format!("svc-{d}");
    let pod = format!("{deploy}-7d4b9c6f5d-{:05x}", i);
    (ns, deploy, pod)
}

fn pod(i: u64, restarts: u32) -> Pod {
    let (ns, deploy, name) = names(i);
    let mut status = json!({
        "phase": "Running", "hostIP": "10.0.0.4", "podIP": format!("10.244.{}.{}", i / 250 % 250, i % 250),
        "startTime": "2026-11-28T08:00:00Z",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-28T08:00:05Z"}],
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": restarts,
            "image": "registry.example/app:1.4.2", "imageID": "registry.example/app@sha256:0d1f",
            "containerID": format!("containerd://{i:064x}"),
            "state": {"running": {"startedAt": "2026-11-28T08:00:04Z"}}}]
    });
    if restarts > 0 {
        let cs = &mut status["containerStatuses"][0];
        cs["ready"] = json!(false);
        cs["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
            "message": "back-off 40s restarting failed container=app"}});
        cs["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error",
            "startedAt": "2026-11-28T09:00:00Z", "finishedAt": "2026-11-28T09:00:01Z"}});
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "uid": format!("{i:08x}-0000-4000-8000-000000000000"),
            "labels": {"app": deploy, "pod-template-hash": "7d4b9c6f5d"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("{deploy}-7d4b9c6f5d"), "uid": "rs", "controller": true}],
            "creationTimestamp": "2026-11-28T08:00:00Z"},
        "spec": {"nodeName": format!("node-{}", i % 200), "containers": [{"name": "app",
            "image": "registry.example/app:1.4.2"}]},
        "status": status
    }))
    .unwrap_or_default()
}

const REASONS: [(&str, &str, &str); 6] = [
    (
        "Scheduled",
        "Normal",
        "Successfully assigned {pod} to node-1",
    ),
    (
        "Pulled",
        "Normal",
        "Container image \"registry.example/app:1.4.2\" already present on machine",
    ),
    ("Created", "Normal", "Created container: app"),
    ("Started", "Normal", "Started container app"),
    (
        "Unhealthy",
        "Warning",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
    ),
    (
        "BackOff",
        "Warning",
        "Back-off restarting failed container app in pod {pod}",
    ),
];

fn event(i: u64, reason: usize, serial: u64, count: u32) -> KubeEvent {
    let (ns, _, pod) = names(i);
    let (r, t, msg) = REASONS[reason];
    serde_json::from_value(json!({
        "metadata": {"name": format!("{pod}.{serial:016x}"), "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod,
            "uid": format!("{i:08x}-0000-4000-8000-000000000000"), "apiVersion": "v1",
            "fieldPath": "spec.containers{app}"},
        "reason": r, "type": t, "message": msg.replace("{pod}", &pod),
        "source": {"component": "kubelet", "host": format!("node-{}", i % 200)},
        "firstTimestamp": "2026-11-28T09:00:00Z",
        "lastTimestamp": format!("2026-11-28T{:02}:{:02}:{:02}Z", 9 + count / 3600 % 10, count / 60 % 60, count % 60),
        "count": count
    }))
    .unwrap_or_default()
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn usage() -> (f64, u64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime) + secs(ru.ru_stime), ru.ru_maxrss as u64)
}

fn main() {
    let pods = arg("--pods", 100_000);
    let events = arg("--events", 1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        let store = SqlStore::open(&dir.path().join("scale.db"))
            .await
            .expect("store");
        let mut rec = Ingest::new(&store, Catalog::builtin());
        let start = Instant::now();
        let (cpu0, _) = usage();
        // The initial list.
        for i in 0..pods {
            rec.record(Change::Pod(Box::new(pod(i, 0)))).await.expect("pod");
        }
        let listed = start.elapsed();
        // Events: 1 in 20 pods crash-loops; its BackOff event is updated in place and its pod
        // restarts every 4th update. Other events are mostly new (one per pod lifecycle step).
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let crashing = (pods / 20).max(1);
        let mut backoff_count = vec![0u32; crashing as usize];
        let mut restarts = vec![0u32; crashing as usize];
        let mut pod_updates = 0u64;
        let mut serial = 0u64;
        for _ in 0..events {
            serial += 1;
            if rng.below(10) < 6 {
                let k = rng.below(crashing) as usize;
                let i = k as u64 * 20;
                backoff_count[k] += 1;
                let reason = if rng.below(4) == 0 { 4 } else { 5 };
                let ev = event(i, reason, k as u64 * 2 + (reason as u64 - 4), backoff_count[k]);
                rec.record(Change::Event(Box::new(ev))).await.expect("event");
                if backoff_count[k].is_multiple_of(4) {
                    restarts[k] += 1;
                    rec.record(Change::Pod(Box::new(pod(i, restarts[k]))))
                        .await
                        .expect("pod");
                    pod_updates += 1;
                }
            } else {
                let i = rng.below(pods);
                let ev = event(i, rng.below(4) as usize, 1 << 40 | serial, 1);
                rec.record(Change::Event(Box::new(ev))).await.expect("event");
            }
        }
        let total = start.elapsed();
        let (cpu1, rss_kb) = usage();
        let ev_secs = (total - listed).as_secs_f64();
        println!("pods listed:        {pods} in {:.1} s ({:.0} pods/s)", listed.as_secs_f64(), pods as f64 / listed.as_secs_f64());
        println!("events recorded:    {events} (+{pod_updates} pod restarts) in {ev_secs:.1} s ({:.0} events/s)", events as f64 / ev_secs);
        println!("wall:               {:.1} s, CPU {:.1} s ({:.2} cores)", total.as_secs_f64(), cpu1 - cpu0, (cpu1 - cpu0) / total.as_secs_f64());
        println!("peak RSS:           {} MB", rss_kb / 1024);
        println!(
            "1M events/hour needs {:.3} of one core at this rate",
            1_000_000.0 / 3600.0 / (events as f64 / (cpu1 - cpu0))
        );
        let size = std::fs::metadata(dir.path().join("scale.db")).map(|m| m.len()).unwrap_or(0);
        println!("store file:         {} MB", size / 1_000_000);
    });
}
