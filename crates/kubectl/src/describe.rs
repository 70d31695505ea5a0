//! `kubectl describe pod`, line for line: the same sections, labels, order, indentation and
//! alignment as kubectl 1.36 (port names, field-path prefixed event messages,
//! `#success/#failure` probe attributes), followed by crashscope's own back-off section.

use jiff::{tz::TimeZone, Timestamp};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStatus, EnvVar, Event as KubeEvent, Pod, Probe,
    ResourceRequirements, Volume,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::humanize::{rfc1123z, since};
use crate::table::{align, escape, DESCRIBE};
use crashscope_model::qos::qos_class;

/// Everything describe needs besides the pod.
pub struct DescribeContext<'a> {
    /// Events about this pod (others are ignored).
    pub events: &'a [KubeEvent],
    /// Whether to print the Events section at all (kubectl hides it for several objects).
    pub show_events: bool,
    pub now: Timestamp,
    /// Time zone for absolute times; kubectl uses the local one.
    pub tz: TimeZone,
}

/// Text before alignment: lines of tab-terminated cells, indented two spaces per level.
#[derive(Default)]
struct Out(String);

impl Out {
    /// Writes `s` at `level`; `s` may be part of a line, like kubectl's PrefixWriter.
    fn w(&mut self, level: usize, s: &str) {
        for _ in 0..level {
            self.0.push_str("  ");
        }
        self.0.push_str(&escape(s));
    }
    fn line(&mut self, level: usize, s: &str) {
        self.w(level, s);
        self.0.push('\n');
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn tf(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// The kubectl describe text for `pod`.
pub fn describe_pod(pod: &Pod, ctx: &DescribeContext<'_>) -> String {
    let mut o = Out::default();
    let meta = &pod.metadata;
    let default_spec = Default::default();
    let spec = pod.spec.as_ref().unwrap_or(&default_spec);
    let default_status = Default::default();
    let status = pod.status.as_ref().unwrap_or(&default_status);

    o.line(0, &format!("Name:\t{}", meta.name.as_deref().unwrap_or("")));
    o.line(
        0,
        &format!("Namespace:\t{}", meta.namespace.as_deref().unwrap_or("")),
    );
    if let Some(p) = spec.priority {
        o.line(0, &format!("Priority:\t{p}"));
    }
    if let Some(p) = non_empty(spec.priority_class_name.as_deref()) {
        o.line(0, &format!("Priority Class Name:\t{p}"));
    }
    if let Some(r) = non_empty(spec.runtime_class_name.as_deref()) {
        o.line(0, &format!("Runtime Class Name:\t{r}"));
    }
    if let Some(sa) = non_empty(spec.service_account_name.as_deref()) {
        o.line(0, &format!("Service Account:\t{sa}"));
    }
    match non_empty(spec.node_name.as_deref()) {
        None => o.line(0, "Node:\t<none>"),
        Some(n) => o.line(
            0,
            &format!("Node:\t{n}/{}", status.host_ip.as_deref().unwrap_or("")),
        ),
    }
    if let Some(t) = &status.start_time {
        o.line(0, &format!("Start Time:\t{}", rfc1123z(t.0, &ctx.tz)));
    }
    labels(&mut o, "Labels", meta.labels.as_ref());
    annotations(&mut o, meta.annotations.as_ref());
    let phase = status.phase.as_deref().unwrap_or("");
    match &meta.deletion_timestamp {
        Some(del) if phase != "Failed" && phase != "Succeeded" => {
            o.line(
                0,
                &format!(
                    "Status:\tTerminating (lasts {})",
                    since(Some(del.0), ctx.now)
                ),
            );
            o.line(
                0,
                &format!(
                    "Termination Grace Period:\t{}s",
                    meta.deletion_grace_period_seconds.unwrap_or(0)
                ),
            );
        }
        _ => o.line(0, &format!("Status:\t{phase}")),
    }
    if let Some(r) = non_empty(status.reason.as_deref()) {
        o.line(0, &format!("Reason:\t{r}"));
    }
    if let Some(m) = non_empty(status.message.as_deref()) {
        o.line(0, &format!("Message:\t{m}"));
    }
    if let Some(sp) = spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
    {
        o.line(0, &format!("SeccompProfile:\t{}", sp.type_));
        if sp.type_ == "Localhost" {
            o.line(
                0,
                &format!(
                    "LocalhostProfile:\t{}",
                    sp.localhost_profile.as_deref().unwrap_or("")
                ),
            );
        }
    }
    o.line(
        0,
        &format!("IP:\t{}", status.pod_ip.as_deref().unwrap_or("")),
    );
    match status.pod_ips.as_deref() {
        None | Some([]) => o.line(0, "IPs:\t<none>"),
        Some(ips) => {
            o.line(0, "IPs:");
            for ip in ips {
                o.line(1, &format!("IP:\t{}", ip.ip));
            }
        }
    }
    if let Some(c) = crashscope_model::owner::controller_of(meta) {
        o.line(0, &format!("Controlled By:\t{}/{}", c.kind, c.name));
    }
    if let Some(n) = non_empty(status.nominated_node_name.as_deref()) {
        o.line(0, &format!("NominatedNodeName:\t{n}"));
    }
    if let Some(r) = &spec.resources {
        o.line(0, "Resources:");
        resources(&mut o, r, 1);
    }
    let init = spec.init_containers.as_deref().unwrap_or_default();
    if !init.is_empty() {
        containers(
            &mut o,
            "Init Containers",
            init,
            status.init_container_statuses.as_deref(),
            pod,
            &ctx.tz,
        );
    }
    containers(
        &mut o,
        "Containers",
        &spec.containers,
        status.container_statuses.as_deref(),
        pod,
        &ctx.tz,
    );
    let conditions = status.conditions.as_deref().unwrap_or_default();
    if let Some(gates) = spec.readiness_gates.as_deref().filter(|g| !g.is_empty()) {
        o.line(0, "Readiness Gates:");
        o.line(0, "  Type\tStatus");
        for g in gates {
            let st = conditions
                .iter()
                .find(|c| c.type_ == g.condition_type)
                .map(|c| c.status.as_str())
                .unwrap_or("<none>");
            o.line(1, &format!("{} \t{st} ", g.condition_type));
        }
    }
    if !conditions.is_empty() {
        o.line(0, "Conditions:");
        o.line(0, "  Type\tStatus");
        for c in conditions {
            o.line(1, &format!("{} \t{} ", c.type_, c.status));
        }
    }
    volumes(&mut o, spec.volumes.as_deref().unwrap_or_default());
    o.line(0, &format!("QoS Class:\t{}", qos_class(pod)));
    labels(&mut o, "Node-Selectors", spec.node_selector.as_ref());
    tolerations(&mut o, spec);
    topology(&mut o, spec);
    if ctx.show_events {
        events(&mut o, pod, ctx);
    }
    align(&o.0, DESCRIBE)
}

fn labels(o: &mut Out, title: &str, map: Option<&BTreeMap<String, String>>) {
    o.w(0, &format!("{title}:\t"));
    let Some(map) = map.filter(|m| !m.is_empty()) else {
        o.0.push_str("<none>\n");
        return;
    };
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            o.w(0, "\t");
        }
        o.w(0, &format!("{k}={v}\n"));
    }
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn annotations(o: &mut Out, map: Option<&BTreeMap<String, String>>) {
    o.w(0, "Annotations:\t");
    let keys: Vec<(&String, &String)> = map
        .map(|m| m.iter().filter(|(k, _)| *k != LAST_APPLIED).collect())
        .unwrap_or_default();
    if keys.is_empty() {
        o.0.push_str("<none>\n");
        return;
    }
    for (i, (k, v)) in keys.into_iter().enumerate() {
        if i > 0 {
            o.w(0, "\t");
        }
        let v = v.strip_suffix('\n').unwrap_or(v);
        if v.len() + k.len() + 2 > 140 || v.contains('\n') {
            o.w(0, &format!("{k}:\n"));
            for line in v.split('\n') {
                o.w(0, &format!("\t  {}\n", shorten(line, 138)));
            }
        } else {
            o.w(0, &format!("{k}: {v}\n"));
        }
    }
}

/// Cuts `s` to at most `max` bytes (on a character boundary) and marks the cut with `...`.
fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn containers(
    o: &mut Out,
    label: &str,
    specs: &[Container],
    statuses: Option<&[ContainerStatus]>,
    pod: &Pod,
    tz: &TimeZone,
) {
    if specs.is_empty() {
        o.line(0, &format!("{label}: <none>"));
        return;
    }
    o.line(0, &format!("{label}:"));
    let statuses = statuses.unwrap_or_default();
    for c in specs {
        let st = statuses.iter().rev().find(|s| s.name == c.name);
        o.line(1, &format!("{}:", c.name));
        if let Some(st) = st {
            o.line(
                2,
                &format!(
                    "Container ID:\t{}",
                    st.container_id.as_deref().unwrap_or("")
                ),
            );
        }
        o.line(2, &format!("Image:\t{}", c.image.as_deref().unwrap_or("")));
        if let Some(st) = st {
            o.line(2, &format!("Image ID:\t{}", st.image_id));
        }
        ports(o, c);
        if let Some(sp) = c
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
        {
            o.line(2, &format!("SeccompProfile:\t{}", sp.type_));
            if sp.type_ == "Localhost" {
                o.line(
                    3,
                    &format!(
                        "LocalhostProfile:\t{}",
                        sp.localhost_profile.as_deref().unwrap_or("")
                    ),
                );
            }
        }
        for (title, items) in [("Command", &c.command), ("Args", &c.args)] {
            if let Some(items) = items.as_deref().filter(|i| !i.is_empty()) {
                o.line(2, &format!("{title}:"));
                for item in items {
                    for piece in item.split('\n') {
                        o.line(3, piece);
                    }
                }
            }
        }
        if let Some(st) = st {
            state(o, "State", st.state.as_ref(), tz);
            if st
                .last_state
                .as_ref()
                .is_some_and(|s| s.terminated.is_some())
            {
                state(o, "Last State", st.last_state.as_ref(), tz);
            }
            o.line(2, &format!("Ready:\t{}", tf(st.ready)));
            o.line(2, &format!("Restart Count:\t{}", st.restart_count));
        }
        if let Some(r) = &c.resources {
            resources(o, r, 2);
        }
        for (title, probe) in [
            ("Liveness", &c.liveness_probe),
            ("Readiness", &c.readiness_probe),
            ("Startup", &c.startup_probe),
        ] {
            if let Some(p) = probe {
                o.line(2, &format!("{title}:\t{}", probe_text(p)));
            }
        }
        env_from(o, c);
        env(o, c, pod);
        mounts(o, c);
    }
}

fn ports(o: &mut Out, c: &Container) {
    let ports = c.ports.as_deref().unwrap_or_default();
    let fmt = |host: bool| {
        ports
            .iter()
            .map(|p| {
                let n = if host {
                    p.host_port.unwrap_or(0)
                } else {
                    p.container_port
                };
                let proto = p.protocol.as_deref().unwrap_or("TCP");
                match non_empty(p.name.as_deref()) {
                    Some(name) => format!("{n}/{proto} ({name})"),
                    None => format!("{n}/{proto}"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (single, plural, host) in [("Port", "Ports", false), ("Host Port", "Host Ports", true)] {
        let joined = fmt(host);
        if joined.contains(',') {
            o.line(2, &format!("{plural}:\t{joined}"));
        } else if joined.is_empty() {
            o.line(2, &format!("{single}:\t<none>"));
        } else {
            o.line(2, &format!("{single}:\t{joined}"));
        }
    }
}

fn state(o: &mut Out, label: &str, s: Option<&ContainerState>, tz: &TimeZone) {
    let time = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| match t {
        Some(t) => rfc1123z(t.0, tz),
        None => "Mon, 01 Jan 0001 00:00:00 +0000".to_string(),
    };
    let s = s.cloned().unwrap_or_default();
    if let Some(r) = &s.running {
        o.line(2, &format!("{label}:\tRunning"));
        o.line(3, &format!("Started:\t{}", time(r.started_at.as_ref())));
    } else if let Some(w) = &s.waiting {
        o.line(2, &format!("{label}:\tWaiting"));
        if let Some(r) = non_empty(w.reason.as_deref()) {
            o.line(3, &format!("Reason:\t{r}"));
        }
    } else if let Some(t) = &s.terminated {
        o.line(2, &format!("{label}:\tTerminated"));
        if let Some(r) = non_empty(t.reason.as_deref()) {
            o.line(3, &format!("Reason:\t{r}"));
        }
        if let Some(m) = non_empty(t.message.as_deref()) {
            o.line(3, &format!("Message:\t{m}"));
        }
        o.line(3, &format!("Exit Code:\t{}", t.exit_code));
        if let Some(sig) = t.signal.filter(|s| *s > 0) {
            o.line(3, &format!("Signal:\t{sig}"));
        }
        o.line(3, &format!("Started:\t{}", time(t.started_at.as_ref())));
        o.line(3, &format!("Finished:\t{}", time(t.finished_at.as_ref())));
    } else {
        o.line(2, &format!("{label}:\tWaiting"));
    }
}

fn resources(o: &mut Out, r: &ResourceRequirements, base: usize) {
    for (title, map) in [("Limits", &r.limits), ("Requests", &r.requests)] {
        if let Some(map) = map.as_ref().filter(|m| !m.is_empty()) {
            o.line(base, &format!("{title}:"));
            for (name, q) in map {
                o.line(base + 1, &format!("{name}:\t{}", q.0));
            }
        }
    }
}

fn port_text(p: &IntOrString) -> String {
    match p {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

fn probe_text(p: &Probe) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        p.initial_delay_seconds.unwrap_or(0),
        p.timeout_seconds.unwrap_or(0),
        p.period_seconds.unwrap_or(0),
        p.success_threshold.unwrap_or(0),
        p.failure_threshold.unwrap_or(0)
    );
    if let Some(e) = &p.exec {
        let cmd = e.command.as_deref().unwrap_or_default().join(" ");
        return format!("exec [{cmd}] {attrs}");
    }
    if let Some(h) = &p.http_get {
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        let host = h.host.as_deref().unwrap_or("");
        let port = port_text(&h.port);
        let hostport = if port.is_empty() {
            host.to_string()
        } else if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut path = h.path.clone().unwrap_or_default();
        if !path.is_empty() && !path.starts_with('/') {
            path.insert(0, '/');
        }
        let path = path
            .replace('%', "%25")
            .replace(' ', "%20")
            .replace('?', "%3F");
        return format!("http-get {scheme}://{hostport}{path} {attrs}");
    }
    if let Some(t) = &p.tcp_socket {
        return format!(
            "tcp-socket {}:{} {attrs}",
            t.host.as_deref().unwrap_or(""),
            port_text(&t.port)
        );
    }
    if let Some(g) = &p.grpc {
        return format!(
            "grpc <pod>:{} {} {attrs}",
            g.port,
            g.service.as_deref().unwrap_or("")
        );
    }
    format!("unknown {attrs}")
}

fn env_from(o: &mut Out, c: &Container) {
    let Some(sources) = c.env_from.as_deref().filter(|s| !s.is_empty()) else {
        return;
    };
    o.line(2, "Environment Variables from:");
    for s in sources {
        let (name, kind, optional) = if let Some(cm) = &s.config_map_ref {
            (cm.name.as_str(), "ConfigMap", cm.optional.unwrap_or(false))
        } else if let Some(sec) = &s.secret_ref {
            (sec.name.as_str(), "Secret", sec.optional.unwrap_or(false))
        } else {
            ("", "", false)
        };
        match non_empty(s.prefix.as_deref()) {
            None => o.line(3, &format!("{name}\t{kind}\tOptional: {optional}")),
            Some(p) => o.line(
                3,
                &format!("{name}\t{kind} with prefix '{p}'\tOptional: {optional}"),
            ),
        }
    }
}

fn env(o: &mut Out, c: &Container, pod: &Pod) {
    let vars = c.env.as_deref().unwrap_or_default();
    if vars.is_empty() {
        o.line(2, "Environment:\t<none>");
        return;
    }
    o.line(2, "Environment:");
    for e in vars {
        env_var(o, e, pod);
    }
}

fn env_var(o: &mut Out, e: &EnvVar, pod: &Pod) {
    let Some(from) = &e.value_from else {
        let value = e.value.as_deref().unwrap_or("");
        for (i, piece) in value.split('\n').enumerate() {
            if i == 0 {
                o.line(3, &format!("{}:\t{piece}", e.name));
            } else {
                o.line(3, &format!("\t{piece}"));
            }
        }
        return;
    };
    if let Some(f) = &from.field_ref {
        // kubectl resolves only the two field paths its scheme converts; others print empty.
        let value = match f.field_path.as_str() {
            "metadata.name" => pod.metadata.name.as_deref().unwrap_or(""),
            "metadata.namespace" => pod.metadata.namespace.as_deref().unwrap_or(""),
            _ => "",
        };
        let api = f.api_version.as_deref().unwrap_or("v1");
        o.line(3, &format!("{}:\t{value} ({api}:{})", e.name, f.field_path));
    } else if let Some(r) = &from.resource_field_ref {
        o.line(3, &format!("{}:\t ({})", e.name, r.resource));
    } else if let Some(s) = &from.secret_key_ref {
        o.line(
            3,
            &format!(
                "{}:\t<set to the key '{}' in secret '{}'>\tOptional: {}",
                e.name,
                s.key,
                s.name,
                s.optional.unwrap_or(false)
            ),
        );
    } else if let Some(c) = &from.config_map_key_ref {
        o.line(
            3,
            &format!(
                "{}:\t<set to the key '{}' of config map '{}'>\tOptional: {}",
                e.name,
                c.key,
                c.name,
                c.optional.unwrap_or(false)
            ),
        );
    }
}

fn mounts(o: &mut Out, c: &Container) {
    let mut mounts: Vec<_> = c.volume_mounts.clone().unwrap_or_default();
    let none = if mounts.is_empty() { "\t<none>" } else { "" };
    o.line(2, &format!("Mounts:{none}"));
    mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
    for m in &mounts {
        let mut flags = vec![if m.read_only == Some(true) {
            "ro"
        } else {
            "rw"
        }
        .to_string()];
        if let Some(sp) = non_empty(m.sub_path.as_deref()) {
            flags.push(format!("path={sp:?}"));
        }
        o.line(
            3,
            &format!("{} from {} ({})", m.mount_path, m.name, flags.join(",")),
        );
    }
    let mut devices = c.volume_devices.clone().unwrap_or_default();
    if !devices.is_empty() {
        o.line(2, &format!("Devices:{none}"));
        devices.sort_by(|a, b| a.device_path.cmp(&b.device_path));
        for d in &devices {
            o.line(3, &format!("{} from {}", d.device_path, d.name));
        }
    }
}

fn volumes(o: &mut Out, vols: &[Volume]) {
    if vols.is_empty() {
        o.line(0, "Volumes:\t<none>");
        return;
    }
    o.line(0, "Volumes:");
    for v in vols {
        o.line(1, &format!("{}:", v.name));
        let mut kv = |k: &str, val: &str| o.line(2, &format!("{k}:\t{val}"));
        if let Some(h) = &v.host_path {
            kv("Type", "HostPath (bare host directory volume)");
            kv("Path", &h.path);
            kv("HostPathType", h.type_.as_deref().unwrap_or("<none>"));
        } else if let Some(e) = &v.empty_dir {
            kv(
                "Type",
                "EmptyDir (a temporary directory that shares a pod's lifetime)",
            );
            kv("Medium", e.medium.as_deref().unwrap_or(""));
            let limit = e
                .size_limit
                .as_ref()
                .map(|q| q.0.as_str())
                .filter(|q| !q.is_empty() && *q != "0")
                .unwrap_or("<unset>");
            kv("SizeLimit", limit);
        } else if let Some(s) = &v.secret {
            kv("Type", "Secret (a volume populated by a Secret)");
            kv("SecretName", s.secret_name.as_deref().unwrap_or(""));
            kv("Optional", &s.optional.unwrap_or(false).to_string());
        } else if let Some(c) = &v.config_map {
            kv("Type", "ConfigMap (a volume populated by a ConfigMap)");
            kv("Name", &c.name);
            kv("Optional", &c.optional.unwrap_or(false).to_string());
        } else if let Some(n) = &v.nfs {
            kv(
                "Type",
                "NFS (an NFS mount that lasts the lifetime of a pod)",
            );
            kv("Server", &n.server);
            kv("Path", &n.path);
            kv("ReadOnly", &n.read_only.unwrap_or(false).to_string());
        } else if let Some(p) = &v.persistent_volume_claim {
            kv(
                "Type",
                "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)",
            );
            kv("ClaimName", &p.claim_name);
            kv("ReadOnly", &p.read_only.unwrap_or(false).to_string());
        } else if v.ephemeral.is_some() {
            kv("Type", "EphemeralVolume (an inline specification for a volume that gets created and deleted with the pod)");
        } else if let Some(d) = &v.downward_api {
            kv(
                "Type",
                "DownwardAPI (a volume populated by information about the pod)",
            );
            o.line(2, "Items:");
            for item in d.items.as_deref().unwrap_or_default() {
                if let Some(f) = &item.field_ref {
                    o.line(3, &format!("{} -> {}", f.field_path, item.path));
                } else if let Some(r) = &item.resource_field_ref {
                    o.line(3, &format!("{} -> {}", r.resource, item.path));
                }
            }
        } else if let Some(p) = &v.projected {
            kv(
                "Type",
                "Projected (a volume that contains injected data from multiple sources)",
            );
            for s in p.sources.as_deref().unwrap_or_default() {
                if let Some(sec) = &s.secret {
                    kv("SecretName", &sec.name);
                    kv("Optional", &sec.optional.unwrap_or(false).to_string());
                } else if s.downward_api.is_some() {
                    kv("DownwardAPI", "true");
                } else if let Some(cm) = &s.config_map {
                    kv("ConfigMapName", &cm.name);
                    kv("Optional", &cm.optional.unwrap_or(false).to_string());
                } else if let Some(t) = &s.service_account_token {
                    kv(
                        "TokenExpirationSeconds",
                        &t.expiration_seconds.unwrap_or(3600).to_string(),
                    );
                }
            }
        } else if let Some(c) = &v.csi {
            kv(
                "Type",
                "CSI (a Container Storage Interface (CSI) volume source)",
            );
            kv("Driver", &c.driver);
            kv("FSType", c.fs_type.as_deref().unwrap_or(""));
            kv("ReadOnly", &c.read_only.unwrap_or(false).to_string());
            csi_attributes(o, c.volume_attributes.as_ref());
        } else if let Some(i) = &v.image {
            kv("Type", "Image (a container image or OCI artifact)");
            kv("Reference", i.reference.as_deref().unwrap_or(""));
            kv("PullPolicy", i.pull_policy.as_deref().unwrap_or(""));
        } else {
            o.line(1, "<unknown>");
        }
    }
}

/// CSI attributes keep kubectl's odd indentation: each write re-applies the level prefix.
fn csi_attributes(o: &mut Out, attrs: Option<&BTreeMap<String, String>>) {
    o.w(2, "VolumeAttributes:\t");
    let Some(attrs) = attrs.filter(|a| !a.is_empty()) else {
        o.0.push_str("<none>\n");
        return;
    };
    for (i, (k, v)) in attrs.iter().enumerate() {
        let entry = shorten(&format!("{k}={v}"), 140);
        if i > 0 {
            o.w(2, "");
            o.w(2, "\t");
        }
        o.w(2, &format!("{entry}\n"));
    }
}

fn tolerations(o: &mut Out, spec: &k8s_openapi::api::core::v1::PodSpec) {
    o.w(0, "Tolerations:\t");
    let mut tols = spec.tolerations.clone().unwrap_or_default();
    if tols.is_empty() {
        o.0.push_str("<none>\n");
        return;
    }
    tols.sort_by(|a, b| a.key.cmp(&b.key));
    for (i, t) in tols.iter().enumerate() {
        if i > 0 {
            o.w(0, "\t");
        }
        let key = t.key.as_deref().unwrap_or("");
        let mut s = key.to_string();
        let value = t.value.as_deref().unwrap_or("");
        if !value.is_empty() {
            let _ = write!(s, "={value}");
        }
        let effect = t.effect.as_deref().unwrap_or("");
        if !effect.is_empty() {
            let _ = write!(s, ":{effect}");
        }
        if t.operator.as_deref() == Some("Exists") && value.is_empty() {
            s.push_str(if key.is_empty() && effect.is_empty() {
                "op=Exists"
            } else {
                " op=Exists"
            });
        }
        if let Some(secs) = t.toleration_seconds {
            let _ = write!(s, " for {secs}s");
        }
        o.w(0, &format!("{s}\n"));
    }
}

fn topology(o: &mut Out, spec: &k8s_openapi::api::core::v1::PodSpec) {
    let mut tsc = spec.topology_spread_constraints.clone().unwrap_or_default();
    if tsc.is_empty() {
        return;
    }
    tsc.sort_by(|a, b| a.topology_key.cmp(&b.topology_key));
    o.w(0, "Topology Spread Constraints:\t");
    for (i, c) in tsc.iter().enumerate() {
        if i > 0 {
            o.w(0, "\t");
        }
        let mut s = format!(
            "{}:{} when max skew {} is exceeded",
            c.topology_key, c.when_unsatisfiable, c.max_skew
        );
        if let Some(sel) = &c.label_selector {
            let _ = write!(s, " for selector {}", selector_text(sel));
        }
        o.w(0, &format!("{s}\n"));
    }
}

fn selector_text(sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({vals})", e.key),
            "NotIn" => format!("{} notin ({vals})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            op => format!("{} {op} ({vals})", e.key),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// Events about `pod`: same namespace and name, and same UID when both sides have one.
pub fn events_for<'a>(pod: &Pod, events: &'a [KubeEvent]) -> Vec<&'a KubeEvent> {
    let m = &pod.metadata;
    events
        .iter()
        .filter(|e| {
            let io = &e.involved_object;
            io.name == m.name
                && io.namespace.as_deref().unwrap_or("default")
                    == m.namespace.as_deref().unwrap_or("default")
                && match (&io.uid, &m.uid) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
                && io
                    .kind
                    .as_deref()
                    .is_none_or(|k| k.is_empty() || k == "Pod")
        })
        .collect()
}

fn events(o: &mut Out, pod: &Pod, ctx: &DescribeContext<'_>) {
    let mut evs = events_for(pod, ctx.events);
    if evs.is_empty() {
        o.line(0, "Events:\t<none>");
        return;
    }
    evs.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
    o.line(0, "Events:");
    o.line(1, "Type\tReason\tAge\tFrom\tMessage");
    o.line(1, "----\t------\t----\t----\t-------");
    for e in evs {
        let first = match &e.event_time {
            Some(t) => since(Some(t.0), ctx.now),
            None => since(e.first_timestamp.as_ref().map(|t| t.0), ctx.now),
        };
        let age = if let Some(series) = &e.series {
            format!(
                "{} (x{} over {first})",
                since(series.last_observed_time.as_ref().map(|t| t.0), ctx.now),
                series.count.unwrap_or(0)
            )
        } else if e.count.unwrap_or(0) > 1 {
            format!(
                "{} (x{} over {first})",
                since(e.last_timestamp.as_ref().map(|t| t.0), ctx.now),
                e.count.unwrap_or(0)
            )
        } else {
            first
        };
        let from = e
            .source
            .as_ref()
            .and_then(|s| non_empty(s.component.as_deref()))
            .or(non_empty(e.reporting_component.as_deref()))
            .unwrap_or("");
        let mut msg = e.message.as_deref().unwrap_or("").trim().to_string();
        if let Some(fp) = non_empty(e.involved_object.field_path.as_deref()) {
            msg = format!("{fp}: {msg}");
        }
        o.line(
            1,
            &format!(
                "{}\t{}\t{age}\t{from}\t{msg}",
                e.type_.as_deref().unwrap_or(""),
                e.reason.as_deref().unwrap_or("")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_table_counts_repeats_and_prefixes_field_paths() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "nginx-1", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
        }))
        .unwrap();
        let ev = |reason: &str, count: i32, first: &str, last: &str, msg: &str| -> KubeEvent {
            serde_json::from_value(json!({
                "metadata": {"name": reason, "namespace": "default"},
                "involvedObject": {"kind": "Pod", "name": "nginx-1", "namespace": "default",
                    "uid": "u1", "fieldPath": "spec.containers{nginx}"},
                "reason": reason, "message": msg, "count": count,
                "type": if reason == "BackOff" { "Warning" } else { "Normal" },
                "firstTimestamp": first, "lastTimestamp": last,
                "source": {"component": "kubelet", "host": "node-1"}
            }))
            .unwrap()
        };
        let other: KubeEvent = serde_json::from_value(json!({
            "metadata": {"name": "x"}, "involvedObject": {"kind": "Pod", "name": "other", "namespace": "default"},
            "reason": "Pulled", "message": "not ours"
        }))
        .unwrap();
        let events = vec![
            ev(
                "BackOff",
                3,
                "2026-11-28T15:58:00Z",
                "2026-11-28T15:59:30Z",
                "Back-off restarting failed container nginx",
            ),
            ev(
                "Pulled",
                1,
                "2026-11-28T15:57:00Z",
                "2026-11-28T15:57:00Z",
                " Container image \"nginx\" already present ",
            ),
            other,
        ];
        let ctx = DescribeContext {
            events: &events,
            show_events: true,
            now: "2026-11-28T16:00:00Z".parse().unwrap(),
            tz: TimeZone::UTC,
        };
        let text = describe_pod(&pod, &ctx);
        let tail: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("Events:"))
            .collect();
        assert_eq!(
            tail,
            [
                "Events:",
                "  Type     Reason   Age               From     Message",
                "  ----     ------   ----              ----     -------",
                "  Normal   Pulled   3m                kubelet  spec.containers{nginx}: Container image \"nginx\" already present",
                "  Warning  BackOff  30s (x3 over 2m)  kubelet  spec.containers{nginx}: Back-off restarting failed container nginx",
            ]
        );
        // Without status, the container section still prints and nothing panics.
        assert!(
            text.contains("  nginx:\n    Image:        nginx\n"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("QoS Class:") && l.ends_with("BestEffort")),
            "{text}"
        );
    }
}
