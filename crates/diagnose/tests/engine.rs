//! The engine on real pods (the fixtures of `shared/fixtures/k8s`, status only), on pods
//! built the way the kubelet reports each cause, and on captures written with the scap writer
//! the way the flight recorder writes them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crashscope_diagnose::capture::scan_capture;
use crashscope_diagnose::{diagnose, CaptureFacts, Diagnosis, Inputs, LogText, Source, World};
use crashscope_model::{Catalog, Event};
use crashscope_scap::block::{EventRecord, ThreadInfo};
use crashscope_scap::build::{int, sockaddr, socktuple, string};
use crashscope_scap::reader::Reader;
use crashscope_scap::replay::Replay;
use crashscope_scap::writer::Writer;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/k8s")
}

fn fixture(name: &str) -> Pod {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    if name.ends_with(".json") {
        serde_json::from_str(&text).unwrap()
    } else {
        serde_yaml_ng::from_str(&text).unwrap()
    }
}

fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

struct Given {
    pod: Pod,
    events: Vec<Event>,
    logs: BTreeMap<String, LogText>,
    captures: BTreeMap<String, CaptureFacts>,
    world: World,
}

impl Given {
    fn new(pod: Pod) -> Given {
        Given {
            pod,
            events: Vec::new(),
            logs: BTreeMap::new(),
            captures: BTreeMap::new(),
            world: World::default(),
        }
    }

    fn log(mut self, container: &str, text: &str) -> Given {
        self.logs
            .insert(container.into(), LogText::new("previous.log", text));
        self
    }

    fn capture(mut self, container: &str, bytes: Vec<u8>) -> Given {
        let reader = Reader::from_read(std::io::Cursor::new(bytes)).unwrap();
        let mut replay = Replay::new(reader);
        self.captures
            .insert(container.into(), scan_capture("crash.scap", &mut replay));
        self
    }

    fn event(mut self, v: serde_json::Value) -> Given {
        let kube: k8s_openapi::api::core::v1::Event = serde_json::from_value(v).unwrap();
        self.events
            .push(Event::from_kube(&kube, &Catalog::builtin()).unwrap());
        self
    }

    fn run(&self) -> Vec<Diagnosis> {
        diagnose(
            &Inputs {
                pod: &self.pod,
                events: &self.events,
                logs: &self.logs,
                captures: &self.captures,
                world: &self.world,
                now: now(),
            },
            None,
        )
    }

    fn top(&self) -> Diagnosis {
        let d = self.run();
        assert_eq!(d.len(), 1, "{d:#?}");
        d.into_iter().next().unwrap()
    }
}

fn top_id(d: &Diagnosis) -> &str {
    &d.causes[0].id
}

/// A pod of one container `app` that crashed with `terminated` as its last state.
fn crashed(spec: serde_json::Value, terminated: serde_json::Value) -> Pod {
    let mut container = serde_json::json!({"name": "app", "image": "example/app:1"});
    if let (Some(c), Some(extra)) = (container.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app-1", "namespace": "team", "uid": "u1"},
        "spec": {"containers": [container], "restartPolicy": "Always", "nodeName": "node-1"},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "app", "image": "example/app:1", "imageID": "", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
            "lastState": {"terminated": terminated}
        }]}
    }))
    .unwrap()
}

fn term(reason: &str, code: i32, message: &str) -> serde_json::Value {
    serde_json::json!({
        "reason": reason, "exitCode": code, "message": message,
        "startedAt": "2025-12-31T23:59:00Z", "finishedAt": "2025-12-31T23:59:01Z"
    })
}

fn pod_event(reason: &str, message: &str, at: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": format!("app-1.{reason}"), "namespace": "team", "uid": format!("uid-{reason}")},
        "involvedObject": {"kind": "Pod", "name": "app-1", "namespace": "team", "fieldPath": "spec.containers{app}"},
        "reason": reason, "message": message, "type": "Warning", "count": 3,
        "firstTimestamp": at, "lastTimestamp": at, "source": {"component": "kubelet"}
    })
}

// ---------------------------------------------------------------- real pods, status only

#[test]
fn real_prometheus_pod_missing_its_config_file() {
    let d = Given::new(fixture(
        "insights-operator__openshift-monitoring_prometheus-k8s-0.json",
    ))
    .run();
    let d = d
        .iter()
        .find(|d| d.container == "prometheus")
        .expect("prometheus diagnosed");
    assert_eq!(top_id(d), "config-file-missing", "{d:#?}");
    let c = &d.causes[0];
    assert!(
        c.summary
            .contains("/etc/prometheus/config_out/prometheus.env.yaml"),
        "{}",
        c.summary
    );
    assert!(c
        .evidence
        .iter()
        .any(|e| e.source == Source::Status && e.pointer.contains("lastState.terminated")));
}

#[test]
fn real_packageserver_pod_refused_by_the_api() {
    let d = Given::new(fixture("insights-operator__openshift-operator-lifecycle-manager_packageserver-6d96bf85f8-kqfkr.json")).run();
    assert!(!d.is_empty());
    let d = &d[0];
    assert_eq!(top_id(d), "dependency-refused", "{d:#?}");
    assert!(
        d.causes[0].summary.contains("172.30.0.1:443"),
        "{}",
        d.causes[0].summary
    );
}

#[test]
fn exit_codes_alone_are_not_a_diagnosis() {
    for f in [
        "insights-operator__di-288312_auditlog-retention-28566720-t22qj.json",
        "gitops-engine__pod-crashloop.yaml",
    ] {
        let d = Given::new(fixture(f)).run();
        assert!(!d.is_empty(), "{f}");
        let top = &d[0].causes[0];
        assert_eq!(top.id, "unknown", "{f}: {d:#?}");
        assert!(
            top.confirm.iter().any(|c| c.contains("--previous")),
            "{f}: {:?}",
            top.confirm
        );
        assert!(
            top.confirm.iter().any(|c| c.contains("capture")),
            "{f}: {:?}",
            top.confirm
        );
    }
}

#[test]
fn real_image_pull_back_off_and_a_healthy_pod() {
    let d = Given::new(fixture("gitops-engine__pod-imagepullbackoff.yaml")).top();
    assert_eq!(top_id(&d), "image-pull");
    assert!(
        Given::new(fixture("gitops-engine__pod-running-not-ready.yaml"))
            .run()
            .is_empty()
    );
}

// ---------------------------------------------------------------- status and events

#[test]
fn start_errors_name_the_missing_command() {
    let pod = crashed(serde_json::json!({"command": ["wge"]}), term("StartError", 128, "failed to create containerd task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"wge\": executable file not found in $PATH: unknown"));
    let d = Given::new(pod).top();
    assert_eq!(top_id(&d), "exec-not-found");
    assert!(d.causes[0].summary.contains("\"wge\""));
    assert!(d.causes[0].confidence >= 0.8);
}

#[test]
fn oom_kills_against_the_limit_or_the_node() {
    let limited = crashed(
        serde_json::json!({"resources": {"limits": {"memory": "64Mi"}}}),
        term("OOMKilled", 137, ""),
    );
    let d = Given::new(limited).top();
    assert_eq!(top_id(&d), "oom-limit");
    assert!(d.causes[0].summary.contains("64Mi"));
    let unlimited = crashed(serde_json::json!({}), term("OOMKilled", 137, ""));
    assert_eq!(top_id(&Given::new(unlimited).top()), "oom-node");
}

#[test]
fn a_program_that_finishes_under_restart_always() {
    let d = Given::new(crashed(serde_json::json!({}), term("Completed", 0, ""))).top();
    assert_eq!(top_id(&d), "exit-zero-under-always");
}

#[test]
fn missing_config_map_is_a_look_alike() {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "app-1", "namespace": "team"},
        "spec": {"containers": [{"name": "app", "image": "x"}]},
        "status": {"phase": "Pending", "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "configmap \"settings\" not found"}}}]}
    })).unwrap();
    let d = Given::new(pod).top();
    assert_eq!(top_id(&d), "create-container-config-error");
    assert!(d.causes[0]
        .summary
        .contains("configmap \"settings\" not found"));
}

#[test]
fn liveness_kills_are_told_apart_by_what_the_program_listened_on() {
    let spec = serde_json::json!({
        "ports": [{"containerPort": 8080}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8081}, "periodSeconds": 5}
    });
    let given = || {
        Given::new(crashed(spec.clone(), term("Error", 137, "")))
            .event(pod_event("Unhealthy", "Liveness probe failed: Get \"http://10.0.0.7:8081/healthz\": dial tcp 10.0.0.7:8081: connect: connection refused", "2025-12-31T23:59:00Z"))
            .event(pod_event("Killing", "Container app failed liveness probe, will be restarted", "2025-12-31T23:59:00Z"))
    };
    // Events and spec only: the probe port is not a declared port.
    let d = given().top();
    assert_eq!(top_id(&d), "liveness-probe-misconfigured", "{d:#?}");
    assert!(d.causes[0].summary.contains(":8081"));
    // The capture proves it: a listen on 8080, then SIGTERM from outside.
    let mut cap = Cap::new();
    cap.bind_listen("0.0.0.0:8080");
    cap.signal_from_outside(15);
    cap.exit_signal(15);
    let d = given().capture("app", cap.finish()).top();
    assert_eq!(top_id(&d), "liveness-probe-misconfigured");
    let c = &d.causes[0];
    assert!(c.summary.contains("listens on :8080"), "{}", c.summary);
    assert!(c.evidence.iter().any(|e| e.source == Source::Capture));
    // The change it proves comes first, as a patch of the pod's spec.
    assert_eq!(
        c.remedies[0].patch,
        Some(serde_json::json!([{"op": "replace",
            "path": "/containers/0/livenessProbe/httpGet/port", "value": 8080}]))
    );
    // Without the capture there is no port to put there: no patch.
    assert!(given().top().causes[0]
        .remedies
        .iter()
        .all(|r| r.patch.is_none()));
    assert!(c
        .rejected
        .iter()
        .any(|r| r.id == "liveness-kills-slow-start"));
    // No listen at all before the kill: still starting.
    let mut cap = Cap::new();
    cap.open("/data/cache.db", 3);
    cap.signal_from_outside(15);
    cap.exit_signal(15);
    let d = given().capture("app", cap.finish()).top();
    assert_eq!(top_id(&d), "liveness-kills-slow-start", "{d:#?}");
    // The fix: a startup probe with the liveness probe's check, allowing three times the
    // second the run lasted (at least three periods of 5 s).
    assert_eq!(
        d.causes[0].remedies[0].patch,
        Some(
            serde_json::json!([{"op": "add", "path": "/containers/0/startupProbe",
            "value": {"httpGet": {"path": "/healthz", "port": 8081}, "periodSeconds": 5,
                      "failureThreshold": 3}}])
        )
    );
    assert!(
        d.causes[0].remedies[0].text.contains("allows 15s"),
        "{}",
        d.causes[0].remedies[0].text
    );
}

#[test]
fn a_script_in_a_config_map_without_its_x_bit_gets_the_volumes_mode() {
    let given = |volume: serde_json::Value| {
        let spec = serde_json::json!({
            "command": ["/scripts/start.sh"],
            "volumeMounts": [{"name": "scripts", "mountPath": "/scripts"}]
        });
        let mut pod = crashed(spec, term("Error", 126, ""));
        pod.spec.as_mut().unwrap().volumes = Some(vec![serde_json::from_value(volume).unwrap()]);
        Given::new(pod)
            .log("app", "/bin/sh: 1: /scripts/start.sh: Permission denied\n")
            .top()
    };
    let d = given(serde_json::json!({"name": "scripts", "configMap": {"name": "start"}}));
    assert_eq!(top_id(&d), "exec-permission-denied", "{d:#?}");
    assert_eq!(
        d.causes[0].remedies[0].patch,
        Some(
            serde_json::json!([{"op": "add", "path": "/volumes/0/configMap/defaultMode", "value": 0o755}])
        )
    );
    // A Secret's explicit 0600 becomes 0711.
    let d = given(
        serde_json::json!({"name": "scripts", "secret": {"secretName": "s", "defaultMode": 0o600}}),
    );
    assert_eq!(
        d.causes[0].remedies[0].patch,
        Some(
            serde_json::json!([{"op": "replace", "path": "/volumes/0/secret/defaultMode", "value": 0o711}])
        )
    );
    // Already executable (a noexec mount, then), or another kind of volume: no mode to give.
    for v in [
        serde_json::json!({"name": "scripts", "configMap": {"name": "start", "defaultMode": 0o755}}),
        serde_json::json!({"name": "scripts", "emptyDir": {}}),
    ] {
        let d = given(v);
        assert_eq!(top_id(&d), "exec-permission-denied");
        assert!(
            d.causes[0].remedies.iter().all(|r| r.patch.is_none()),
            "{d:#?}"
        );
    }
}

#[test]
fn a_startup_probe_on_a_port_nothing_listens_on_gets_the_listening_port() {
    let spec = serde_json::json!({
        "startupProbe": {"tcpSocket": {"port": 9091}, "periodSeconds": 2, "failureThreshold": 3}
    });
    let given = || {
        Given::new(crashed(spec.clone(), term("Error", 137, "")))
            .event(pod_event(
                "Unhealthy",
                "Startup probe failed: dial tcp 10.0.0.7:9091: connect: connection refused",
                "2025-12-31T23:59:00Z",
            ))
            .event(pod_event(
                "Killing",
                "Container app failed startup probe, will be restarted",
                "2025-12-31T23:59:00Z",
            ))
    };
    let mut cap = Cap::new();
    cap.bind_listen("0.0.0.0:9090");
    cap.signal_from_outside(15);
    cap.exit_signal(15);
    let d = given().capture("app", cap.finish()).top();
    assert_eq!(top_id(&d), "startup-probe-failed", "{d:#?}");
    assert_eq!(
        d.causes[0].remedies[0].patch,
        Some(serde_json::json!([{"op": "replace",
            "path": "/containers/0/startupProbe/tcpSocket/port", "value": 9090}]))
    );
    assert!(given().top().causes[0]
        .remedies
        .iter()
        .all(|r| r.patch.is_none()));
}

#[test]
fn a_change_before_the_first_crash_is_named() {
    let custom = Event {
        source: "jenkins".into(),
        reason: "Deploy".into(),
        message: "app 1.4.2".into(),
        ..Event::from_kube(
            &serde_json::from_value(pod_event("Deploy", "x", "2025-12-31T23:58:20Z")).unwrap(),
            &Catalog::builtin(),
        )
        .unwrap()
    };
    let mut g = Given::new(crashed(serde_json::json!({}), term("Error", 1, "")))
        .log(
            "app",
            "starting\nopen /etc/app/config.yaml: no such file or directory\n",
        )
        .event(pod_event(
            "BackOff",
            "Back-off restarting failed container app",
            "2025-12-31T23:59:00Z",
        ));
    g.events.push(custom);
    let d = g.top();
    assert_eq!(top_id(&d), "config-file-missing");
    let c = &d.causes[0];
    assert!(
        c.summary.contains("40 s after Deploy by jenkins"),
        "{}",
        c.summary
    );
    assert!(c
        .evidence
        .iter()
        .any(|e| e.source == Source::Change && e.text.contains("1.4.2")));
    assert!(c
        .evidence
        .iter()
        .any(|e| e.source == Source::Log && e.pointer == "previous.log line 2"));
}

#[test]
fn log_lines_decide_among_exit_127_causes() {
    let d = Given::new(crashed(serde_json::json!({}), term("Error", 127, "")))
        .log("app", "./server: error while loading shared libraries: libssl.so.3: cannot open shared object file: No such file or directory\n")
        .top();
    assert_eq!(top_id(&d), "shared-library-missing");
    assert!(d.causes[0].summary.contains("libssl.so.3"));
    assert!(
        d.causes[0]
            .rejected
            .iter()
            .any(|r| r.id == "exec-not-found"),
        "{:?}",
        d.causes[0].rejected
    );
}

#[test]
fn an_init_container_is_diagnosed_as_its_inner_cause() {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "app-1", "namespace": "team"},
        "spec": {"initContainers": [{"name": "wait", "image": "busybox"}], "containers": [{"name": "app", "image": "x"}]},
        "status": {"phase": "Pending",
          "initContainerStatuses": [{"name": "wait", "image": "busybox", "imageID": "", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}],
          "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "PodInitializing"}}}]}
    })).unwrap();
    let d = Given::new(pod)
        .log(
            "wait",
            "nslookup: can't resolve 'db': Name does not resolve\n",
        )
        .top();
    assert!(d.init);
    assert_eq!(d.container, "wait");
    assert_eq!(top_id(&d), "dns-nxdomain");
}

// ---------------------------------------------------------------- captures

const PID: i64 = 4242;

/// A capture of one container process (pid 1 in its namespace), written as the recorder does.
struct Cap {
    w: Writer<Vec<u8>>,
    ts: u64,
    next_fd: i64,
}

impl Cap {
    fn new() -> Cap {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.processes(&[ThreadInfo {
            tid: PID,
            pid: PID,
            ptid: 4200,
            comm: "app".into(),
            exe: "/app".into(),
            vpid: 1,
            vtid: 1,
            ..ThreadInfo::default()
        }])
        .unwrap();
        Cap {
            w,
            ts: 1_767_225_540_000_000_000,
            next_fd: 3,
        }
    }

    fn ev(&mut self, code: u16, params: &[&[u8]]) {
        self.ts += 1_000_000;
        self.w
            .event(&EventRecord::build(self.ts, PID, code, params))
            .unwrap();
    }

    fn open(&mut self, path: &str, res: i64) {
        self.ev(
            306,
            &[&int::<8>(-100), &string(path), &int::<4>(1), &int::<4>(0)],
        );
        self.ev(
            307,
            &[
                &int::<8>(res),
                &int::<8>(-100),
                &string(path),
                &int::<4>(1),
                &int::<4>(0),
                &int::<4>(0),
                &int::<8>(0),
            ],
        );
    }

    fn stderr(&mut self, line: &str) {
        let text = format!("{line}\n");
        self.ev(8, &[&int::<8>(2), &int::<4>(text.len() as i64)]);
        self.ev(
            9,
            &[
                &int::<8>(text.len() as i64),
                text.as_bytes(),
                &int::<8>(2),
                &int::<4>(text.len() as i64),
            ],
        );
    }

    fn socket(&mut self) -> i64 {
        let fd = self.next_fd;
        self.next_fd += 1;
        self.ev(18, &[&int::<4>(2), &int::<4>(2), &int::<4>(0)]);
        self.ev(
            19,
            &[&int::<8>(fd), &int::<4>(2), &int::<4>(2), &int::<4>(0)],
        );
        fd
    }

    fn dns(&mut self, name: &str, rcode: ResponseCode) {
        let fd = self.socket();
        let me: SocketAddr = "10.244.0.5:40000".parse().unwrap();
        let server: SocketAddr = "10.96.0.10:53".parse().unwrap();
        self.ev(22, &[&int::<8>(fd), &sockaddr(server)]);
        self.ev(23, &[&int::<8>(0), &socktuple(me, server), &int::<8>(fd)]);
        let mut q = Message::new();
        q.set_id(7)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        let bytes = q.to_vec().unwrap();
        self.ev(30, &[&int::<8>(fd), &int::<4>(bytes.len() as i64), &[]]);
        self.ev(31, &[&int::<8>(bytes.len() as i64), &bytes]);
        let mut r = q.clone();
        r.set_message_type(MessageType::Response)
            .set_response_code(rcode);
        let bytes = r.to_vec().unwrap();
        self.ev(34, &[&int::<8>(fd), &int::<4>(512)]);
        self.ev(
            35,
            &[
                &int::<8>(bytes.len() as i64),
                &bytes,
                &socktuple(server, me),
            ],
        );
    }

    fn connect(&mut self, to: &str, res: i64) {
        let fd = self.socket();
        let server: SocketAddr = to.parse().unwrap();
        self.ev(22, &[&int::<8>(fd), &sockaddr(server)]);
        self.ev(23, &[&int::<8>(res), &[], &int::<8>(fd)]);
    }

    fn bind_listen(&mut self, addr: &str) {
        let fd = self.socket();
        let a: SocketAddr = addr.parse().unwrap();
        self.ev(20, &[&int::<8>(fd)]);
        self.ev(21, &[&int::<8>(0), &sockaddr(a), &int::<8>(fd)]);
        self.ev(24, &[&int::<8>(fd), &int::<4>(511)]);
        self.ev(25, &[&int::<8>(0), &int::<8>(fd), &int::<4>(511)]);
    }

    fn abort_self(&mut self) {
        self.ev(132, &[&int::<8>(PID), &int::<8>(PID), &int::<1>(6)]);
        self.ev(133, &[&int::<8>(0)]);
    }

    fn signal_from_outside(&mut self, sig: i64) {
        self.ev(232, &[&int::<8>(0), &int::<8>(PID), &int::<1>(sig)]);
    }

    fn exit_code(&mut self, code: i64) {
        self.ev(
            186,
            &[
                &int::<8>(code << 8),
                &int::<8>(code),
                &[0],
                &[0],
                &int::<8>(0),
            ],
        );
    }

    fn exit_signal(&mut self, sig: i64) {
        self.ev(
            186,
            &[
                &int::<8>(sig),
                &int::<8>(0),
                &int::<1>(sig),
                &[0],
                &int::<8>(0),
            ],
        );
    }

    fn finish(self) -> Vec<u8> {
        self.w.finish().unwrap()
    }
}

#[test]
fn the_reference_story_from_its_capture() {
    let mut cap = Cap::new();
    cap.open("/etc/resolv.conf", 3);
    cap.dns("flask.shop.svc.cluster.local.", ResponseCode::NXDomain);
    cap.dns("flask.svc.cluster.local.", ResponseCode::NXDomain);
    cap.dns("flask.", ResponseCode::NXDomain);
    cap.stderr("2025/12/31 23:59:00 [emerg] 1#1: host not found in upstream \"flask\" in /etc/nginx/conf.d/default.conf:3");
    cap.exit_code(1);
    // No log at all: the capture alone must carry the conclusion.
    let d = Given::new(crashed(serde_json::json!({}), term("Error", 1, "")))
        .capture("app", cap.finish())
        .top();
    assert_eq!(top_id(&d), "dns-nxdomain", "{d:#?}");
    let c = &d.causes[0];
    assert!(c.summary.contains("\"flask\""), "{}", c.summary);
    assert_eq!(c.evidence[0].source, Source::Capture);
    assert!(
        c.evidence[0].pointer.starts_with("crash.scap event #"),
        "{}",
        c.evidence[0].pointer
    );
    assert!(
        c.evidence[0].text.contains("NXDOMAIN")
            || c.evidence[0].text.contains("Non-Existent Domain"),
        "{}",
        c.evidence[0].text
    );
    assert!(c.rejected.iter().any(|r| r.id == "dns-unavailable"));
    assert!(c.confidence >= 0.9, "{}", c.confidence);
    assert!(c.remedies.iter().any(|r| r.text.contains("resolver")));
}

#[test]
fn an_abort_in_pid_1_is_not_a_segfault() {
    let mut cap = Cap::new();
    cap.abort_self();
    cap.exit_signal(11);
    let d = Given::new(crashed(serde_json::json!({}), term("Error", 139, "")))
        .capture("app", cap.finish())
        .top();
    assert_eq!(top_id(&d), "abort", "{d:#?}");
    assert!(d.causes[0].rejected.iter().any(|r| r.id == "native-crash"));
    // Without the capture, 139 is only a prior: no claim.
    let d = Given::new(crashed(serde_json::json!({}), term("Error", 139, ""))).top();
    assert_eq!(top_id(&d), "unknown");
}

#[test]
fn a_refused_dependency_and_a_missing_file_under_a_mount() {
    let mut cap = Cap::new();
    cap.connect("10.96.12.3:5432", -111);
    cap.stderr("psycopg2.OperationalError: connection to server at \"10.96.12.3\", port 5432 failed: Connection refused");
    cap.exit_code(1);
    let d = Given::new(crashed(serde_json::json!({}), term("Error", 1, "")))
        .capture("app", cap.finish())
        .top();
    assert_eq!(top_id(&d), "dependency-refused", "{d:#?}");
    assert!(
        d.causes[0].summary.contains("10.96.12.3:5432"),
        "{}",
        d.causes[0].summary
    );

    let spec = serde_json::json!({"volumeMounts": [{"name": "config", "mountPath": "/etc/app"}]});
    let mut cap = Cap::new();
    cap.open("/usr/lib/locale/C.utf8/LC_CTYPE", -2);
    cap.open("/etc/app/app.toml", -2);
    cap.stderr("error: cannot read /etc/app/app.toml");
    cap.exit_code(1);
    let d = Given::new(crashed(spec, term("Error", 1, "")))
        .capture("app", cap.finish())
        .top();
    assert_eq!(top_id(&d), "config-mount-mismatch", "{d:#?}");
    assert!(
        d.causes[0].summary.contains("volume \"config\""),
        "{}",
        d.causes[0].summary
    );
}

#[test]
fn a_refused_dependency_that_crash_loops_itself_is_named_upstream() {
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db", "namespace": "team"},
        "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 5432}], "selector": {"app": "db"}}
    }))
    .unwrap();
    let db: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db-0", "namespace": "team", "labels": {"app": "db"}},
        "status": {"containerStatuses": [{"name": "postgres", "image": "pg", "imageID": "", "ready": false, "restartCount": 7,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
    })).unwrap();
    let mut g = Given::new(crashed(serde_json::json!({}), term("Error", 1, ""))).log(
        "app",
        "dial tcp 10.96.0.20:5432: connect: connection refused\n",
    );
    g.world = World {
        services: Some(vec![svc]),
        pods: vec![db],
    };
    let d = g.top();
    assert_eq!(top_id(&d), "dependency-refused");
    let c = &d.causes[0];
    assert!(
        c.summary.contains("db-0") && c.summary.contains("crashscope diagnose db-0 -n team"),
        "{}",
        c.summary
    );
    assert!(c
        .evidence
        .iter()
        .any(|e| e.pointer == "pod team/db-0 container postgres"));
}

#[test]
fn a_name_that_is_a_service_elsewhere_or_nowhere() {
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "payments", "namespace": "billing"}, "spec": {"ports": [{"port": 80}]}
    }))
    .unwrap();
    let given = |services| {
        let mut g = Given::new(crashed(serde_json::json!({}), term("Error", 1, ""))).log(
            "app",
            "panic: dial tcp: lookup payments on 10.96.0.10:53: no such host\n",
        );
        g.world = World {
            services,
            pods: vec![],
        };
        g.top()
    };
    let d = given(Some(vec![svc]));
    assert_eq!(top_id(&d), "dns-nxdomain", "{d:#?}");
    assert!(
        d.causes[0].summary.contains("exists in namespace billing"),
        "{}",
        d.causes[0].summary
    );
    assert!(d.causes[0].remedies[0]
        .text
        .contains("payments.billing.svc.cluster.local"));
    let d = given(Some(vec![]));
    assert!(
        d.causes[0]
            .summary
            .contains("no Service named \"payments\" exists"),
        "{}",
        d.causes[0].summary
    );
    // Nowhere, while a workload of the namespace wears the name and declares its port: the
    // Service to create, whole.
    assert!(d.causes[0].remedies.iter().all(|r| r.manifest.is_none()));
    let backend: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "payments-5f6d7-x", "namespace": "team",
            "labels": {"app": "payments", "pod-template-hash": "5f6d7"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "payments-5f6d7", "uid": "r", "controller": true}]},
        "spec": {"containers": [{"name": "api", "image": "p", "ports": [{"containerPort": 8080}]}]}
    }))
    .unwrap();
    let mut g = Given::new(crashed(serde_json::json!({}), term("Error", 1, ""))).log(
        "app",
        "panic: dial tcp: lookup payments on 10.96.0.10:53: no such host\n",
    );
    g.world = World {
        services: Some(vec![]),
        pods: vec![backend],
    };
    let d = g.top();
    let create = &d.causes[0].remedies[0];
    assert_eq!(
        create.manifest,
        Some(serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "payments", "namespace": "team"},
            "spec": {"selector": {"app": "payments"},
                     "ports": [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}]}}))
    );
    assert!(
        create.text.starts_with("create the Service team/payments"),
        "{}",
        create.text
    );
    // Unknown Services: nothing is concluded from their absence.
    let d = given(None);
    assert!(
        !d.causes[0].summary.contains("Service"),
        "{}",
        d.causes[0].summary
    );
}

#[test]
fn an_oom_kill_after_a_lowered_limit_gets_the_limit_the_previous_revision_runs_with() {
    let owned = |mut pod: Pod, hash: &str| {
        pod.metadata.labels = Some(
            [
                ("app".into(), "web".into()),
                ("pod-template-hash".into(), hash.into()),
            ]
            .into(),
        );
        pod.metadata.owner_references = Some(vec![serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("web-{hash}"),
            "uid": hash, "controller": true}))
        .unwrap()]);
        pod
    };
    let limits = |m: &str| serde_json::json!({"resources": {"limits": {"memory": m}}});
    let crashed_pod = owned(crashed(limits("256Mi"), term("OOMKilled", 137, "")), "h2");
    let mut healthy = owned(crashed(limits("512Mi"), term("Completed", 0, "")), "h1");
    healthy.metadata.name = Some("app-old".into());
    // Running and ready, as the old revision's pods are during the rollout.
    let st = &mut healthy
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()[0];
    st.ready = true;
    st.state = Some(
        serde_json::from_value(
            serde_json::json!({"running": {"startedAt": "2025-12-31T20:00:00Z"}}),
        )
        .unwrap(),
    );
    // One of its siblings waits in back-off for another reason: it proves nothing.
    let mut waiting = owned(crashed(limits("2Gi"), term("Error", 1, "")), "h1");
    waiting.metadata.name = Some("app-old-2".into());
    // A pod of yet another revision that was OOM-killed at its larger limit proves nothing.
    let mut killed = owned(crashed(limits("1Gi"), term("OOMKilled", 137, "")), "h0");
    killed.metadata.name = Some("app-older".into());
    let mut g = Given::new(crashed_pod.clone());
    g.world = World {
        services: None,
        pods: vec![crashed_pod, healthy.clone(), killed, waiting],
    };
    let d = g.top();
    assert_eq!(top_id(&d), "oom-limit", "{d:#?}");
    let fix = &d.causes[0].remedies[0];
    assert_eq!(
        fix.patch,
        Some(
            serde_json::json!([{"op": "replace", "path": "/containers/0/resources/limits/memory", "value": "512Mi"}])
        )
    );
    assert!(
        fix.text.contains("app-old") && fix.text.contains("256Mi"),
        "{}",
        fix.text
    );
    // Without another revision to learn from, no number is made up.
    let alone = Given::new(owned(
        crashed(limits("256Mi"), term("OOMKilled", 137, "")),
        "h2",
    ))
    .top();
    assert!(alone.causes[0].remedies.iter().all(|r| r.patch.is_none()));
}
