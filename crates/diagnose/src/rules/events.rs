//! Causes Kubernetes events state: probe failures and the kills they lead to, hook failures,
//! sandbox changes, failed mounts and scheduling, node OOM, and `Failed` start errors.
//! Probe kills are told apart with the capture when there is one: what the program listened
//! on against what the probe checks.

use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::candidate::Candidates;
use crate::case::{first_line, Case};
use crate::evidence::{Evidence, Source, Tier};

/// The port a probe checks (resolving a named port against the container's ports).
fn probe_port(case: &Case, p: &Probe) -> Option<u16> {
    let port = p
        .http_get
        .as_ref()
        .map(|h| &h.port)
        .or_else(|| p.tcp_socket.as_ref().map(|t| &t.port))
        .or_else(|| p.grpc.as_ref().map(|_| &IntOrString::Int(0)))?;
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok().filter(|n| *n > 0),
        IntOrString::String(name) => case
            .spec?
            .ports
            .as_ref()?
            .iter()
            .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            .and_then(|cp| u16::try_from(cp.container_port).ok()),
    }
}

fn probe_text(p: &Probe, port: Option<u16>) -> String {
    if let Some(h) = &p.http_get {
        format!(
            "http-get {}:{}{}",
            h.scheme.as_deref().unwrap_or("HTTP").to_lowercase(),
            port.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            h.path.as_deref().unwrap_or("/")
        )
    } else if p.tcp_socket.is_some() {
        format!(
            "tcp-socket :{}",
            port.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
        )
    } else if let Some(e) = &p.exec {
        format!("exec [{}]", e.command.clone().unwrap_or_default().join(" "))
    } else {
        "probe".into()
    }
}

/// The JSON patch that sets the port of probe `field` (`livenessProbe`, ...) of the case's
/// container to `to`, on the pod's spec; None for a probe with no port (exec).
fn port_patch(case: &Case, field: &str, probe: &Probe, to: u16) -> Option<serde_json::Value> {
    let how = if probe.http_get.is_some() {
        "httpGet"
    } else if probe.tcp_socket.is_some() {
        "tcpSocket"
    } else if probe.grpc.is_some() {
        "grpc"
    } else {
        return None;
    };
    Some(serde_json::json!([{
        "op": "replace",
        "path": format!("{}/{field}/{how}/port", case.spec_path()?),
        "value": to,
    }]))
}

/// The ports the capture saw the program listen on (bound and listening, or bound).
fn listening(case: &Case) -> Option<Vec<u16>> {
    let facts = case.capture?;
    let mut ports: Vec<u16> = facts
        .binds
        .iter()
        .filter(|b| b.errno == 0 && b.listened)
        .filter_map(|b| b.port)
        .filter(|p| *p != 0)
        .collect();
    ports.sort();
    ports.dedup();
    Some(ports)
}

fn probes(case: &Case, kind: &str, out: &mut Candidates) {
    let killing = case
        .events_with(&["Killing"])
        .into_iter()
        .find(|e| e.message.contains(&format!("failed {kind} probe")));
    // Of the probe's failures, the most telling: an HTTP status (the program answered), then a
    // timeout, then the rest (refused, which also happens while the program still starts).
    let failures: Vec<_> = case
        .events_with(&["Unhealthy"])
        .into_iter()
        .filter(|e| {
            e.message
                .to_ascii_lowercase()
                .starts_with(&format!("{kind} probe failed"))
        })
        .collect();
    let rank = |e: &&crashscope_model::Event| {
        let m = e.message.to_ascii_lowercase();
        if m.contains("statuscode: ") {
            0
        } else if m.contains("deadline exceeded")
            || m.contains("timeout")
            || m.contains("timed out")
        {
            1
        } else {
            2
        }
    };
    let unhealthy = failures.iter().min_by_key(|e| rank(e)).copied();
    if killing.is_none() && unhealthy.is_none() {
        return;
    }
    let probe = case.spec.and_then(|c| {
        if kind == "liveness" {
            c.liveness_probe.as_ref()
        } else {
            c.startup_probe.as_ref()
        }
    });
    let field = format!("{}.{kind}Probe", case.spec_pointer);
    let port = probe.and_then(|p| probe_port(case, p));
    let what = probe
        .map(|p| probe_text(p, port))
        .unwrap_or_else(|| format!("the {kind} probe"));
    let add = |out: &mut Candidates, id: &'static str, summary: String| {
        for e in killing.iter().chain(unhealthy.iter()) {
            out.add(id, Tier::Event, Case::event_evidence(e), summary.clone());
        }
        if let Some(p) = probe {
            out.add(
                id,
                Tier::Context,
                Evidence::new(Source::Spec, &field, probe_text(p, port)),
                "",
            );
        }
    };
    if kind == "startup" {
        add(
            out,
            "startup-probe-failed",
            format!(
                "the startup probe ({what}) never succeeded, so the kubelet restarts the container"
            ),
        );
        // The program listened, on another port: that port is the fix.
        let listened = listening(case).unwrap_or_default();
        if let (Some(p), Some(to)) = (probe, listened.first()) {
            if port.is_some_and(|at| !listened.contains(&at)) {
                if let Some(op) = port_patch(case, "startupProbe", p, *to) {
                    out.fix(
                        "startup-probe-failed",
                        format!(
                            "point the startup probe at :{to}, the port the program listens on"
                        ),
                        op,
                    );
                }
            }
        }
        return;
    }
    let msg = unhealthy
        .map(|e| e.message.to_ascii_lowercase())
        .unwrap_or_default();
    if msg.contains("deadline exceeded") || msg.contains("timeout") || msg.contains("timed out") {
        add(out, "probe-timeout-under-load", format!("the liveness probe ({what}) timed out (timeoutSeconds {}), so the kubelet killed the container", probe.and_then(|p| p.timeout_seconds).unwrap_or(1)));
        return;
    }
    if let Some(code) = msg
        .split("statuscode: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|c| c.parse::<u16>().ok())
    {
        if code >= 500 {
            add(out, "liveness-checks-dependency", format!("the liveness endpoint ({what}) answers {code}: it fails on something beyond the process, and each failure restarts the container"));
        } else {
            add(out, "liveness-probe-misconfigured", format!("the liveness probe ({what}) gets HTTP {code}: the program serves, but not that path"));
        }
        return;
    }
    // Refused (or exec failures): wrong port, or the program is not up yet. The capture
    // tells them apart: a listen on another port, or no listen at all.
    match listening(case) {
        Some(ports) if !ports.is_empty() && port.is_some_and(|p| !ports.contains(&p)) => {
            let listen = ports
                .iter()
                .map(|p| format!(":{p}"))
                .collect::<Vec<_>>()
                .join(", ");
            let summary = format!("the liveness probe checks :{} but the program listens on {listen}: the kubelet kills a healthy container", port.unwrap_or(0));
            add(out, "liveness-probe-misconfigured", summary.clone());
            if let Some((op, to)) = probe
                .zip(ports.first())
                .and_then(|(p, to)| Some((port_patch(case, "livenessProbe", p, *to)?, to)))
            {
                out.fix(
                    "liveness-probe-misconfigured",
                    format!("point the liveness probe at :{to}, the port the program listens on"),
                    op,
                );
            }
            if let (Some(facts), Some(b)) = (
                case.capture,
                case.capture
                    .and_then(|f| f.binds.iter().find(|b| b.listened && b.errno == 0)),
            ) {
                out.add(
                    "liveness-probe-misconfigured",
                    Tier::Capture,
                    Evidence::new(
                        Source::Capture,
                        facts.pointer(b.num),
                        format!("{} bound {} and listened", b.comm, b.addr),
                    ),
                    summary,
                );
            }
            out.rule_out(
                "liveness-kills-slow-start",
                format!("the program was listening (on {listen}) before it was killed"),
            );
        }
        Some(ports)
            if ports.is_empty() && case.capture.is_some_and(|f| f.main_process().is_some()) =>
        {
            let summary = format!("the program never listened before the liveness probe ({what}) gave up: it is killed while still starting");
            add(out, "liveness-kills-slow-start", summary.clone());
            if let Some(facts) = case.capture {
                if let Some(p) = facts.main_process() {
                    if let Some(x) = &p.exit {
                        out.add(
                            "liveness-kills-slow-start",
                            Tier::Capture,
                            Evidence::new(
                                Source::Capture,
                                facts.pointer(x.num),
                                format!("{} (pid {}) ended without any listen", p.comm, p.pid),
                            ),
                            summary,
                        );
                    }
                }
            }
        }
        _ => {
            let declared = case.ports();
            if let Some(p) = port.filter(|p| !declared.is_empty() && !declared.contains(p)) {
                let ports = declared
                    .iter()
                    .map(|p| format!(":{p}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                add(out, "liveness-probe-misconfigured", format!("the liveness probe checks :{p}, a port the container does not declare (it declares {ports})"));
            } else {
                let why = first_line(unhealthy.map(|e| e.message.as_str()).unwrap_or("failed"));
                add(out, "liveness-probe-misconfigured", format!("the liveness probe ({what}) fails ({why}), so the kubelet kills the container"));
                add(
                    out,
                    "liveness-kills-slow-start",
                    format!("the liveness probe ({what}) may kill the program before it is up"),
                );
            }
        }
    }
}

pub fn propose(case: &Case, out: &mut Candidates) {
    probes(case, "liveness", out);
    probes(case, "startup", out);
    for e in case.events_with(&["FailedPostStartHook"]) {
        out.add(
            "poststart-hook-failed",
            Tier::Event,
            Case::event_evidence(e),
            format!("the postStart hook failed: {}", first_line(&e.message)),
        );
    }
    if let Some(e) = case.events_with(&["SandboxChanged"]).first() {
        out.add("restart-not-caused-by-app", Tier::Event, Case::event_evidence(e), "the pod's sandbox was recreated (node reboot or runtime/CNI restart): every container restarted");
    }
    for e in case
        .events_with(&["FailedMount", "FailedAttachVolume"])
        .into_iter()
        .take(1)
    {
        out.add(
            "mount-failed",
            Tier::Event,
            Case::event_evidence(e),
            format!("a volume cannot be mounted: {}", first_line(&e.message)),
        );
    }
    for e in case.events_with(&["FailedScheduling"]).into_iter().take(1) {
        out.add(
            "unschedulable",
            Tier::Event,
            Case::event_evidence(e),
            format!("no node can run the pod: {}", first_line(&e.message)),
        );
    }
    for e in case.events_with(&["SystemOOM"]).into_iter().take(1) {
        out.add(
            "oom-node",
            Tier::Event,
            Case::event_evidence(e),
            format!("the node ran out of memory: {}", first_line(&e.message)),
        );
    }
    for e in case.events_with(&["OOMKilling"]).into_iter().take(1) {
        let id = if e.message.contains("Memory cgroup") {
            "oom-limit"
        } else {
            "oom-node"
        };
        out.add(
            id,
            Tier::Event,
            Case::event_evidence(e),
            first_line(&e.message).to_string(),
        );
    }
    for e in case.events_with(&["Failed"]) {
        if let Some((id, summary)) = super::status::start_error(&e.message) {
            out.add(id, Tier::Event, Case::event_evidence(e), summary);
        } else if e.message.contains("CreateContainerConfigError")
            || e.message.contains("not found")
                && (e.message.contains("configmap") || e.message.contains("secret"))
            || e.message.contains("runAsNonRoot")
        {
            out.add(
                "create-container-config-error",
                Tier::Event,
                Case::event_evidence(e),
                format!(
                    "the kubelet cannot create the container: {}",
                    first_line(&e.message)
                ),
            );
        } else if e.message.contains("ErrImagePull")
            || e.message.contains("pull") && e.message.contains("image")
        {
            out.add(
                "image-pull",
                Tier::Event,
                Case::event_evidence(e),
                format!("the image cannot be pulled: {}", first_line(&e.message)),
            );
        }
    }
}
