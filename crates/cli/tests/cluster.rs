//! `get`, `describe`, `logs`, `events` and `watch` against a cluster, as a user runs them
//! with a kubeconfig. No Kubernetes API server can run here: the test serves recorded API
//! traffic over real HTTP (the kube-system pod list recorded from a kind v1.34 cluster,
//! shared/fixtures/k8s/api-replays-v1-34) with the coredns pod scripted into a crash loop,
//! shaped like the recorded objects. Everything else — kube's client, the kubeconfig, the
//! binary — is the real thing.

mod common;
use common::text;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

const NOW: &str = "2026-06-15T04:30:00Z";
const POD: &str = "coredns-66bc5c9577-2g8hl";

fn replays() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/k8s/api-replays-v1-34")
}

fn recorded_body(file: &str) -> Value {
    let all: Value =
        serde_json::from_str(&std::fs::read_to_string(replays().join(file)).unwrap()).unwrap();
    serde_json::from_str(all[0]["response_body"].as_str().unwrap()).unwrap()
}

/// The recorded pod list with coredns after `restarts` crashes (Error, exit 1, backing off).
fn pod_list(restarts: u32, rv: &str) -> Value {
    let mut list = recorded_body("pod-list.json");
    list["metadata"]["resourceVersion"] = json!(rv);
    for item in list["items"].as_array_mut().unwrap() {
        if item["metadata"]["name"] == POD {
            item["metadata"]["resourceVersion"] = json!(rv);
            let cs = &mut item["status"]["containerStatuses"][0];
            cs["restartCount"] = json!(restarts);
            cs["ready"] = json!(false);
            cs["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                "message": "back-off 20s restarting failed container=coredns"}});
            cs["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error",
                "startedAt": "2026-06-15T04:28:00Z", "finishedAt": "2026-06-15T04:28:01Z"}});
        }
    }
    list
}

fn coredns(list: &Value) -> Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == POD)
        .unwrap()
        .clone()
}

fn backoff_event() -> Value {
    let uid = coredns(&pod_list(2, "1"))["metadata"]["uid"].clone();
    json!({"kind": "EventList", "apiVersion": "v1", "metadata": {"resourceVersion": "900"},
        "items": [{
        "metadata": {"name": format!("{POD}.18a2b3c4d5e6f708"), "namespace": "kube-system",
                     "uid": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "resourceVersion": "890"},
        "involvedObject": {"kind": "Pod", "namespace": "kube-system", "name": POD, "uid": uid,
                           "apiVersion": "v1", "fieldPath": "spec.containers{coredns}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container coredns in pod coredns-66bc5c9577-2g8hl_kube-system",
        "source": {"component": "kubelet", "host": "v1.34-control-plane"},
        "firstTimestamp": "2026-06-15T04:28:02Z", "lastTimestamp": "2026-06-15T04:29:00Z",
        "count": 4, "type": "Warning"}]})
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

use common::Seen;

/// Answers like the API server for the requests these commands make.
async fn api(State(seen): State<Seen>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    seen.lock().unwrap().push(format!("{path}?{query}"));
    let q: HashMap<String, String> = url_pairs(&query);
    let watch = q.get("watch").is_some_and(|v| v == "true");
    match path.as_str() {
        "/api/v1/namespaces/kube-system/pods" | "/api/v1/pods" if !watch => {
            axum::Json(pod_list(2, "600")).into_response()
        }
        // The watch: one more crash, then the stream stays open (the test stops the process).
        "/api/v1/namespaces/kube-system/pods" | "/api/v1/pods" => {
            let mut pod = coredns(&pod_list(3, "601"));
            pod["kind"] = json!("Pod");
            pod["apiVersion"] = json!("v1");
            let line = format!("{}\n", json!({"type": "MODIFIED", "object": pod}));
            let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(line) })
                .chain(futures::stream::pending());
            axum::body::Body::from_stream(stream).into_response()
        }
        "/api/v1/namespaces/kube-system/events" | "/api/v1/events" if !watch => {
            axum::Json(backoff_event()).into_response()
        }
        "/api/v1/namespaces/forbidden/events" => status(
            403,
            "Forbidden",
            "events is forbidden: User \"system:serviceaccount:default:crashscope\" cannot list resource \"events\" in API group \"\" in the namespace \"forbidden\"",
        ),
        p if p == format!("/api/v1/namespaces/kube-system/pods/{POD}/log") => {
            if q.get("previous").is_some_and(|v| v == "true") {
                "[INFO] plugin/reload: Running configuration SHA512 = 1b226df7\n\
                 [FATAL] plugin/loop: Loop (127.0.0.1:39989 -> :53) detected for zone \".\"\n"
                    .into_response()
            } else {
                "".into_response()
            }
        }
        p if p.ends_with("/log") => status(404, "NotFound", "pods \"nosuch\" not found"),
        // Watches of everything else: nothing happens.
        _ if watch => axum::body::Body::from_stream(futures::stream::pending::<
            Result<String, std::io::Error>,
        >())
        .into_response(),
        _ => status(404, "NotFound", "the server could not find the requested resource"),
    }
}

fn url_pairs(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%2C", ",").replace("%3D", "=")))
        .collect()
}

use futures::StreamExt;

fn start() -> common::Replay {
    common::replay(api)
}

fn crashscope(args: &[&str], dir: &Path) -> Output {
    common::crashscope_at(NOW, args, dir)
}

#[test]
fn get_pods_from_the_cluster_prints_what_the_same_list_prints_from_a_file() {
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    let kc = common::kubeconfig(dir.path(), server.addr);
    let from_cluster = crashscope(
        &["get", "pods", "--kubeconfig", kc.to_str().unwrap()],
        dir.path(),
    );
    assert!(
        from_cluster.status.success(),
        "{}",
        text(&from_cluster.stderr)
    );
    let file = dir.path().join("list.json");
    std::fs::write(&file, pod_list(2, "600").to_string()).unwrap();
    let from_file = crashscope(
        &[
            "get",
            "pods",
            "-f",
            file.to_str().unwrap(),
            "-n",
            "kube-system",
        ],
        dir.path(),
    );
    let stdout = text(&from_cluster.stdout);
    assert_eq!(stdout, text(&from_file.stdout));
    // The context's namespace was listed, and the back-off of the crash loop is shown.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(POD) && l.contains("0/1     CrashLoopBackOff   2 (119s ago)")),
        "{stdout}"
    );
    assert!(stdout.contains("Crash-looping containers"), "{stdout}");
    let seen = server.seen.lock().unwrap().clone();
    assert!(
        seen[0].starts_with("/api/v1/namespaces/kube-system/pods?"),
        "{seen:?}"
    );
}

#[test]
fn describe_reads_the_pods_events_with_a_field_selector_and_logs_previous_shows_the_crash() {
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    let kc = common::kubeconfig(dir.path(), server.addr);
    let kc = kc.to_str().unwrap();
    let out = crashscope(&["describe", "pod", POD, "--kubeconfig", kc], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Last State:     Terminated"), "{stdout}");
    assert!(
        stdout.contains("Warning  BackOff  60s (x4 over 118s)  kubelet"),
        "{stdout}"
    );
    let seen = server.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|r| r.starts_with("/api/v1/namespaces/kube-system/events?")
                && r.contains("involvedObject.name%3Dcoredns-66bc5c9577-2g8hl")),
        "{seen:?}"
    );

    let out = crashscope(&["logs", POD, "-p", "--kubeconfig", kc], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("[FATAL] plugin/loop: Loop"),
        "{}",
        text(&out.stdout)
    );
    let out = crashscope(&["logs", "nosuch", "--kubeconfig", kc], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("pods \"nosuch\" not found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn events_from_the_cluster_and_a_403_that_names_the_permission() {
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    let kc = common::kubeconfig(dir.path(), server.addr);
    let kc = kc.to_str().unwrap();
    let out = crashscope(&["events", "--kubeconfig", kc, "-o", "json"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let evs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(evs[0]["reason"], "BackOff");
    assert_eq!(evs[0]["count"], 4);
    assert_eq!(evs[0]["scope"]["container"], "coredns");
    let out = crashscope(
        &["events", "--kubeconfig", kc, "-n", "forbidden"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("forbidden: crashscope may not list events in namespace forbidden")
            && err.contains("deploy/rbac.yaml"),
        "{err}"
    );
}

#[test]
fn watch_records_the_restart_prints_it_and_turns_ready() {
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    let kc = common::kubeconfig(dir.path(), server.addr);
    let health = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .args(["watch", "-o", "json", "--kubeconfig", kc.to_str().unwrap()])
        .args(["--health-listen", &health.to_string()])
        .env("CRASHSCOPE_DATA_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut feed = Vec::new();
    while !feed.iter().any(|l: &Value| l["kind"] == "restart") {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => feed.push(serde_json::from_str(&l).unwrap()),
            Err(e) => {
                let _ = child.kill();
                panic!("no restart in the feed ({e}): {feed:?}");
            }
        }
    }
    let ready = readyz(health);
    let _ = child.kill();
    let _ = child.wait();
    let restart = feed.iter().find(|l| l["kind"] == "restart").unwrap();
    assert_eq!(restart["pod"], POD);
    assert_eq!(restart["restart_count"], 3);
    assert_eq!(restart["last_exit_code"], 1);
    assert_eq!(restart["workload_name"], "coredns");
    assert!(feed
        .iter()
        .any(|l| l["kind"] == "event" && l["reason"] == "BackOff"));
    let (code, body) = ready;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"pods\":{\"state\":\"live\"}"), "{body}");

    // What the watch recorded is one incident: 2 restarts seen at the first list, 1 live.
    let out = crashscope(&["get", "incidents", "-o", "json"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inc.as_array().unwrap().len(), 1, "{inc}");
    assert_eq!(inc[0]["workload_kind"], "Deployment");
    assert_eq!(inc[0]["workload_name"], "coredns");
    assert_eq!(inc[0]["reason"], "Error");
    assert_eq!(inc[0]["restarts"], 3);
    assert_eq!(inc[0]["pods"], json!([POD]));
}

#[test]
fn incidents_of_the_cluster_group_the_crashing_pods_of_a_workload() {
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    let kc = common::kubeconfig(dir.path(), server.addr);
    let out = crashscope(
        &["get", "incidents", "--kubeconfig", kc.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "NAMESPACE     WORKLOAD             CONTAINER   REASON   EXIT   PODS   RESTARTS   LAST       SINCE   CAUSE\n\
         kube-system   deployment/coredns   coredns     Error    1      1      2          119s ago   119s    unknown\n"
    );
    // describe shows the same incident in full.
    let out = crashscope(
        &[
            "describe",
            "incidents",
            "--kubeconfig",
            kc.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    for line in [
        "Namespace:   kube-system\n",
        "Workload:    deployment/coredns\n",
        "Container:   coredns\n",
        "Exit Codes:  1\n",
        "Restarts:    2\n",
        "Cause:       unknown\n",
    ] {
        assert!(t.contains(line), "{line:?} in:\n{t}");
    }
    assert!(t.contains("Pods:        coredns-"), "{t}");
}

/// GET /readyz until it answers 200 (the lists may still be in flight), at most 10 s.
fn readyz(addr: SocketAddr) -> (u16, String) {
    use std::io::{Read, Write};
    let mut last = (0, String::new());
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            let code = resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
            last = (code, resp);
            if code == 200 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

/// `serve --kube` on `kc` (and `args`), a rule firing on any restart, notifying `hook`; the
/// API's address.
fn serve_kube(
    dir: &Path,
    kc: &Path,
    hook: SocketAddr,
    args: &[&str],
) -> (std::process::Child, SocketAddr) {
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n- name: Restarted\n  metric: {name: kubernetes.pod.restart.count, window: 10m, threshold: 1}\n",
    )
    .unwrap();
    std::fs::write(dir.join("tokens"), format!("{SERVE_TOKEN}\n")).unwrap();
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .args(["serve", "--kube", "--kubeconfig", kc.to_str().unwrap()])
        .args(args)
        .args(["--listen", &api.to_string(), "--eval-interval", "200ms"])
        .arg("--rules")
        .arg(&rules)
        .arg("--token-file")
        .arg(dir.join("tokens"))
        .args(["--webhook", &format!("http://{hook}/")])
        .env("CRASHSCOPE_DATA_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, api)
}

const SERVE_TOKEN: &str = "replay-test-token-0123456789";

/// `crashscope serve --kube`: the watchers feed the store, the restart rule sees the restart
/// the watch delivers, and the webhook is told — one alert for the Deployment.
#[test]
fn serve_kube_alerts_on_a_watched_restart() {
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    let kc = common::kubeconfig(dir.path(), server.addr);
    let (hook, hook_seen) = common::receiver();
    let (mut child, _) = serve_kube(dir.path(), &kc, hook, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let firing = loop {
        if let Some(v) = hook_seen
            .lock()
            .unwrap()
            .iter()
            .find(|v| v["status"] == "firing")
        {
            break v.clone();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "no alert; API requests seen: {:?}",
                server.seen.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        firing["alert"]["group"], "kube-system/deployment/coredns",
        "{firing}"
    );
    assert_eq!(firing["alert"]["pods"], json!([POD]), "{firing}");
    assert_eq!(
        firing["alert"]["value"], 1.0,
        "the restarts before the watch began are history: {firing}"
    );
}

/// `kubectl crashscope get pods`: kubectl runs `kubectl-crashscope` from PATH with the
/// arguments after the plugin's name and the environment (KUBECONFIG) it has; the plugin reads
/// the cluster as kubectl's own commands do, and its help says how it is called.
#[test]
fn as_a_kubectl_plugin_it_reads_the_cluster_of_the_kubeconfig() {
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    let kc = common::kubeconfig(dir.path(), server.addr);
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_crashscope"),
        bin.join("kubectl-crashscope"),
    )
    .unwrap();
    let plugin = |args: &[&str]| {
        Command::new(bin.join("kubectl-crashscope"))
            .args(args)
            .env("KUBECONFIG", &kc)
            .env("CRASHSCOPE_NOW", NOW)
            .env("CRASHSCOPE_DATA_DIR", dir.path())
            .env("TZ", "UTC")
            .output()
            .unwrap()
    };
    let out = plugin(&["get", "pods", "-n", "kube-system"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let direct = crashscope(
        &[
            "get",
            "pods",
            "-n",
            "kube-system",
            "--kubeconfig",
            kc.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(text(&out.stdout), text(&direct.stdout));
    assert!(text(&out.stdout).contains(POD));
    let help = plugin(&["get", "--help"]);
    assert!(
        text(&help.stdout).contains("Usage: kubectl crashscope get"),
        "{}",
        text(&help.stdout)
    );
}

/// `serve --kube --context east --context west`: one server fed by two clusters (the same
/// recorded API traffic served twice — the same pod, even the same uid, in both). Every
/// record carries its cluster; incidents and alerts never merge across them; the API
/// filters by cluster.
#[test]
fn one_server_watches_two_clusters_and_keeps_them_apart() {
    let (east, west) = (start(), start());
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n\
             - {{name: east, cluster: {{server: \"http://{}\"}}}}\n\
             - {{name: west, cluster: {{server: \"http://{}\"}}}}\n\
             users:\n- {{name: ops, user: {{token: replay-token}}}}\n\
             contexts:\n\
             - {{name: east, context: {{cluster: east, user: ops, namespace: kube-system}}}}\n\
             - {{name: west, context: {{cluster: west, user: ops, namespace: kube-system}}}}\n\
             current-context: east\n",
            east.addr, west.addr
        ),
    )
    .unwrap();
    let (hook, hook_seen) = common::receiver();
    let (mut child, api) = serve_kube(
        dir.path(),
        &kc,
        hook,
        &["--context", "east", "--context", "west"],
    );
    let get = |path: &str| -> Value {
        east.rt.block_on(async {
            reqwest::Client::new()
                .get(format!("http://{api}{path}"))
                .bearer_auth(SERVE_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let groups: Vec<String> = loop {
        let mut g: Vec<String> = hook_seen
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["status"] == "firing")
            .map(|v| v["alert"]["group"].as_str().unwrap_or("").to_string())
            .collect();
        g.sort();
        if g.len() >= 2 {
            break g;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("two alerts expected, got {g:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        groups,
        [
            "east:kube-system/deployment/coredns",
            "west:kube-system/deployment/coredns"
        ]
    );
    // An incident per cluster, each told apart; the filter selects one.
    let all = get("/api/v1/incidents");
    let mut clusters: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["cluster"].as_str().unwrap_or("-"))
        .collect();
    clusters.sort();
    assert_eq!(clusters, ["east", "west"], "{all}");
    let west_only = get("/api/v1/incidents?cluster=west");
    assert_eq!(
        west_only["items"].as_array().unwrap().len(),
        1,
        "{west_only}"
    );
    let events = get("/api/v1/events?cluster=east&limit=1000");
    let items = events["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{events}");
    assert!(
        items.iter().all(|e| e["scope"]["cluster"] == "east"),
        "{events}"
    );
    let backoffs = |c: &str| {
        get(&format!("/api/v1/events?cluster={c}&reason=BackOff"))["items"]
            .as_array()
            .map_or(0, Vec::len)
    };
    // The same BackOff event of both clusters is two events, one in each.
    assert_eq!((backoffs("east"), backoffs("west")), (1, 1));
    let _ = child.kill();
    let _ = child.wait();
    // The CLI reads the store: a CLUSTER column leads when several are in it.
    let out = crashscope(&["get", "incidents"], dir.path());
    let t = text(&out.stdout);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("CLUSTER   NAMESPACE"), "{t}");
    assert!(
        lines[1].starts_with("east ") && lines[2].starts_with("west "),
        "{t}"
    );
}
