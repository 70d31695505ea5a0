//! The command line, kubectl-style: `get pods`, `describe pod`, `events`, `-n/-A/-o`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCompleter;
use std::path::PathBuf;

/// Find out why workloads crash-loop, and prove it.
///
/// crashscope shows pods and events exactly as kubectl does, then adds what kubectl cannot
/// tell: where each crash-looping container stands in the kubelet's back-off, and when it
/// will be restarted. Without a cluster it runs Pod manifests on this machine with kubelet
/// semantics. Its eBPF flight recorder writes what a container did at the system-call level
/// when it dies (.scap, as sysdig writes them), and it reads captures the way Sysdig Inspect
/// does.
#[derive(Debug, Parser)]
#[command(name = "crashscope", version, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    crashscope demo                                   # the reference story (root)\n  \
    crashscope run app.yaml --time-scale 0.1          # run manifests locally (root)\n  \
    crashscope get pods; crashscope logs POD --previous\n  \
    crashscope get pods -f pod.yaml                   # kubectl's view of Pod objects in files\n  \
    crashscope describe pod my-pod -f pods.json\n  \
    crashscope events --severity warning\n  \
    crashscope inspect capture.scap --events -f 'proc.name=nginx'")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Directory of the embedded store [default: the user's data directory, e.g.
    /// ~/.local/share/crashscope]
    #[arg(long, global = true, env = "CRASHSCOPE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// YAML file of event catalog entries overriding or extending the built-in catalog
    #[arg(
        long,
        global = true,
        env = "CRASHSCOPE_EVENT_CATALOG",
        value_name = "FILE"
    )]
    pub event_catalog: Option<PathBuf>,

    /// Which event reasons are shown by default: crash (every reason that explains a failed
    /// start, a kill or a crash) or sysdig (Sysdig's own defaults)
    #[arg(
        long,
        global = true,
        env = "CRASHSCOPE_EVENT_PROFILE",
        value_enum,
        default_value_t = EventProfile::Crash
    )]
    pub event_profile: EventProfile,

    /// Kubelet back-off variant used to compute restart times
    #[arg(long, global = true, value_enum, default_value_t = BackoffVariant::Kubelet)]
    pub backoff: BackoffVariant,

    /// Cap of the back-off (the kubelet's maxContainerRestartPeriod), e.g. 60s or 5m
    #[arg(long, global = true, value_name = "DURATION")]
    pub backoff_max: Option<String>,

    /// Path to the kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or the in-cluster
    /// service account]
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (`serve --kube` takes it several times: one cluster
    /// each, recorded under the context's name)
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Vec<String>,

    /// The name `watch` and `serve --kube` record this cluster's pods and events under, so
    /// that several clusters can share one store [default: the --context given, else none]
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster_name: Option<String>,

    /// get, describe, events, logs and rollout read the cluster instead of the local runtime's store
    /// (implied by --kubeconfig and --context)
    #[arg(long, global = true)]
    pub cluster: bool,

    /// Ages and restart times evaluated at this instant (RFC 3339) instead of now: the
    /// environment's CRASHSCOPE_NOW, for reproducible output. Not a flag, so that neither
    /// help nor shell completion offers it.
    #[arg(skip = std::env::var("CRASHSCOPE_NOW").ok().filter(|s| !s.is_empty()))]
    pub now: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackoffVariant {
    /// 10s initial, doubling, 5m cap, reset after 10m of running
    Kubelet,
    /// ReduceDefaultCrashLoopBackOffDecay: 1s initial, 60s cap
    ReducedDecay,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Display pods, like `kubectl get pods`
    Get(GetArgs),
    /// Show details of pods, like `kubectl describe pod`
    Describe(DescribeArgs),
    /// List events, or show the event catalog
    #[command(args_conflicts_with_subcommands = true)]
    Events(EventsArgs),
    /// Record pods and events from files into the store
    Ingest(IngestArgs),
    /// Run Pod manifests on this machine with kubelet semantics (foreground; Ctrl-C stops)
    Run(RunArgs),
    /// Apply manifests to the running local runtime (create or update)
    Apply(ManifestArgs),
    /// Delete the objects of manifests from the running local runtime
    Delete(ManifestArgs),
    /// Print the logs of a container (local runtime, or the cluster's with --cluster)
    Logs(LogsArgs),
    /// Manage a Deployment's rollout (local runtime, or the cluster's with --cluster), like
    /// `kubectl rollout`
    #[command(
        after_help = "Examples:\n  crashscope rollout status deployment/web\n  crashscope rollout history deployment/web\n  crashscope rollout undo deployment/web --to-revision 1"
    )]
    Rollout(RolloutArgs),
    /// A live terminal view of the crash-looping pods: back-off, next restart, cause; Enter
    /// opens a pod's diagnosis, previous log, captures and description
    #[command(
        after_help = "Keys: j/k move, Enter open, / filter, Esc back or clear, ? help, q quit.\n\nExamples:\n  crashscope top\n  crashscope top -A\n  crashscope top --cluster -n shop"
    )]
    Top(TopArgs),
    /// The reference story: nginx started before the `flask` Service existed
    Demo(DemoArgs),
    /// Read a system-call capture (.scap, as sysdig and Falco write them)
    Inspect(InspectArgs),
    /// Watch a cluster's pods and events, record them in the store and print new restarts
    /// and events as they happen (Ctrl-C stops)
    #[command(
        after_help = "Examples:\n  crashscope watch -A\n  crashscope watch -n shop -l app=nginx -o json\n\nPermissions: get/list/watch on pods and events (deploy/rbac.yaml)."
    )]
    Watch(WatchArgs),
    /// Record the system calls of processes into a .scap file (eBPF; needs root)
    Capture(CaptureArgs),
    /// Run the server: HTTP API, alert rules and notifications, over the store, fed by the
    /// local runtime (--local) or the cluster's watchers (--kube)
    Serve(ServeArgs),
    /// Run the node agent: record the system calls of this node's pods (eBPF flight
    /// recorder), write a capture when a container dies and when the server asks, and send
    /// captures to the server (needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE)
    Agent(AgentArgs),
    /// Explain why containers crashed: the root cause, the evidence for it (status, events,
    /// the previous log, the system-call capture of the crash) and a remedy
    Diagnose(DiagnoseArgs),
    /// The change a diagnosis proves, as the exact patch and `kubectl patch` command;
    /// --apply makes it in the local runtime (a Deployment rolls out the fixed template)
    #[command(
        after_help = "Examples:\n  crashscope fix web-7d4b9c-x2x9q\n  crashscope fix web-7d4b9c-x2x9q -n shop --apply"
    )]
    Fix(FixArgs),
    /// List the captures the flight recorder wrote when containers failed
    Captures {
        /// Output format
        #[arg(short = 'o', long, value_enum, default_value_t = ListOutput::Table)]
        output: ListOutput,
    },
    /// Print a shell completion script
    #[command(after_help = "Example:\n  source <(crashscope completion bash)")]
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Resource {
    #[value(alias = "pod", alias = "po")]
    Pods,
    /// Crash loops grouped by workload, container and how the container last ended
    #[value(alias = "incident", alias = "inc")]
    Incidents,
}

/// The event catalog's named defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventProfile {
    Crash,
    Sysdig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetOutput {
    Wide,
    Json,
    Yaml,
    Name,
}

#[derive(Debug, Args)]
pub struct Source {
    /// Files or directories with Pod objects (JSON or YAML; lists, watch streams and recorded
    /// API responses too); repeat or separate with commas; `-` reads standard input.
    /// Without -f, the pods of the cluster (with --cluster, --kubeconfig or --context) or
    /// else of the local runtime (from the store) are shown.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub files: Vec<PathBuf>,

    /// Only objects in this namespace
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,

    /// Objects in all namespaces, with a NAMESPACE column
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[arg(value_enum)]
    pub resource: Resource,
    /// Only the pods with these names
    #[arg(add = ArgValueCompleter::new(crate::complete::pod_names))]
    pub names: Vec<String>,
    #[command(flatten)]
    pub source: Source,
    /// Output format
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<GetOutput>,
    /// Do not print headers (and leave out crashscope's back-off table)
    #[arg(long)]
    pub no_headers: bool,
    /// Incidents: only restarts recorded within this long, e.g. 30m, 2h (store only)
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// After listing, keep printing each pod whose row changes (as kubectl get -w)
    #[arg(short = 'w', long)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[arg(value_enum)]
    pub resource: Resource,
    /// Only the pods with these names (or name prefixes, as kubectl matches them)
    #[arg(add = ArgValueCompleter::new(crate::complete::pod_names))]
    pub names: Vec<String>,
    #[command(flatten)]
    pub source: Source,
    /// Show events (default: on for one pod, off for several, as kubectl)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub show_events: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListOutput {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: Option<EventsCommand>,
    /// Read events from these files or directories instead of the store
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub files: Vec<PathBuf>,
    /// Only events in this namespace
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Events of all namespaces (against a cluster; the store and files show all unless -n)
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Only events about this pod
    #[arg(long)]
    pub pod: Option<String>,
    /// Only events with this reason
    #[arg(long)]
    pub reason: Option<String>,
    /// Only events at least this severe
    #[arg(long, value_parser = parse_severity)]
    pub severity: Option<crashscope_model::Severity>,
    /// Only events last seen within this long, e.g. 30m, 2h
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// At most this many events
    #[arg(long, default_value_t = 500)]
    pub limit: u32,
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = ListOutput::Table)]
    pub output: ListOutput,
    /// Include events the catalog turns off by default
    #[arg(long)]
    pub all: bool,
}

fn parse_severity(s: &str) -> Result<crashscope_model::Severity, String> {
    s.parse()
        .map_err(|e: crashscope_model::severity::UnknownSeverity| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the event catalog: reasons, severity, on by default or not
    Catalog {
        #[arg(short = 'o', long, value_enum, default_value_t = ListOutput::Table)]
        output: ListOutput,
    },
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files or directories with Pod and Event objects (JSON or YAML, lists, watch streams);
    /// repeat or separate with commas
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        required = true,
        value_delimiter = ','
    )]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Runtime {
    /// Multiply every duration (back-off, grace periods, retries) by this factor, e.g. 0.1
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    pub time_scale: f64,
    /// Loopback address of the cluster DNS server (port 53)
    #[arg(long, default_value = "127.0.99.1")]
    pub dns: std::net::Ipv4Addr,
    /// Do not record containers' system calls (by default the eBPF flight recorder keeps the
    /// last 30 s of each container and writes a capture when one fails)
    #[arg(long)]
    pub no_record: bool,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a positive factor such as 0.1")),
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  crashscope serve --local nginx.yaml --webhook http://hooks.example/crash
  crashscope serve --kube --store postgres://crashscope:pw@db/crashscope --token-file tokens
  crashscope serve --local demo/*.yaml --alertmanager http://127.0.0.1:9093 --rules rules.yaml

Without --token-file or CRASHSCOPE_TOKEN a token is generated and kept in DATA_DIR/token.
Without --rules the shipped rules apply (crashscope serve --print-default-rules shows them).")]
pub struct ServeArgs {
    /// Address to serve the API on
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// The store: sqlite:///path/file.db or postgres://user:password@host/db (TLS with
    /// ?sslmode=require, verify-ca or verify-full; &sslrootcert=FILE for a private CA)
    /// [default: sqlite in the data directory]
    #[arg(long, env = "CRASHSCOPE_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Serve HTTPS with this certificate (PEM, with its chain); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// File of bearer tokens, one per line (`TOKEN` or `TOKEN read` for read-only)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Alert rules (YAML) [default: the shipped rules]
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Print the shipped alert rules and exit
    #[arg(long)]
    pub print_default_rules: bool,
    /// How often alert rules are evaluated
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub eval_interval: String,
    /// Close a connection that has not sent a request's headers within this long
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub header_timeout: String,
    /// Connections served at once [default: what the open-file limit allows, at most 10000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// POST alerts as JSON to this URL (repeatable)
    #[arg(long, value_name = "URL")]
    pub webhook: Vec<String>,
    /// File holding the secret that signs webhook bodies (X-Crashscope-Signature)
    #[arg(long, env = "CRASHSCOPE_WEBHOOK_SECRET_FILE", value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Slack incoming-webhook URL (repeatable)
    #[arg(long, value_name = "URL")]
    pub slack: Vec<String>,
    /// Alertmanager base URL, e.g. http://127.0.0.1:9093 (repeatable)
    #[arg(long, value_name = "URL")]
    pub alertmanager: Vec<String>,
    /// Run these manifests on this machine (the local runtime; needs root)
    #[arg(long, value_name = "MANIFEST", num_args = 1..)]
    pub local: Vec<PathBuf>,
    /// Watch the cluster (kubeconfig, --context, or in-cluster) into the store
    #[arg(long)]
    pub kube: bool,
    #[command(flatten)]
    pub runtime: Runtime,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  crashscope agent --node \"$NODE_NAME\" --server https://crashscope.example:8080 --token-file /etc/crashscope/token
  crashscope agent --node worker-1 --keep 20        # keep captures on the node only

In a cluster, deploy/agent-daemonset.yaml runs it on every node (hostPID, the host's
/sys/fs/cgroup, CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_SYS_RESOURCE).")]
pub struct AgentArgs {
    /// The node this agent runs on (its pods are recorded)
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node: String,
    /// The crashscope server to send captures to and take capture requests from
    #[arg(long, env = "CRASHSCOPE_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// File holding the server's bearer token [default: $CRASHSCOPE_TOKEN]
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Captures kept on the node (the oldest beyond this are deleted; sent ones are not kept)
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub keep: usize,
    /// How much before a container's death a capture covers
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub before: String,
    /// How long after a death recording goes on (children, final writes)
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub after: String,
    /// At most one capture per container within this long (0s: every death)
    #[arg(long, default_value = "1m", value_name = "DURATION")]
    pub capture_interval: String,
    /// Most bytes of records kept per container, in MiB
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub max_mib: usize,
    /// Bytes of I/O payload kept per system call (sysdig -s); DNS (port 53) keeps at least 512
    #[arg(short = 's', long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(0..=65535))]
    pub snaplen: u32,
    /// Record the environment of each program started (execve's env, as `sysdig` shows it);
    /// off by default because environments hold secrets
    #[arg(long)]
    pub env: bool,
    /// Also hook system-call entry, so that each call's entry event has its own time and
    /// slow calls show how long they took (evt.latency); every process on the machine then
    /// pays for a second hook
    #[arg(long)]
    pub latency: bool,
    /// Where the host's processes are (the agent's pod sees the host's with hostPID)
    #[arg(long, default_value = "/proc", value_name = "DIR")]
    pub proc: PathBuf,
    /// The host's cgroup v2 hierarchy, where pods' cgroups are [default: the cgroup2 mount
    /// in /proc/self/mountinfo]
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Manifests (Pod, Deployment, Service, ConfigMap, Secret, Namespace)
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub runtime: Runtime,
}

#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub action: RolloutAction,
}

/// What `rollout` does; each takes `deployment/NAME` (or `deploy/NAME`, or a bare name).
/// With --cluster, --kubeconfig or --context, against the cluster's Deployment (undo patches
/// it as kubectl does; that needs the opt-in role of deploy/rollback-rbac.yaml).
#[derive(Debug, Subcommand)]
pub enum RolloutAction {
    /// Wait for the rollout to finish, saying where it is (exit 1 past its progress deadline)
    Status {
        /// The Deployment: deployment/NAME (or deploy/NAME, or NAME)
        deployment: String,
        /// The namespace (default: "default", or the context's with a cluster)
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Keep watching until the rollout ends (--watch=false prints once)
        #[arg(short = 'w', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        watch: bool,
        /// Give up after this long (0: never), e.g. 5m
        #[arg(long, default_value = "0s")]
        timeout: String,
    },
    /// The Deployment's revisions, with their change cause
    History {
        /// The Deployment: deployment/NAME (or deploy/NAME, or NAME)
        deployment: String,
        /// The namespace (default: "default", or the context's with a cluster)
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// Go back to the previous revision, or to --to-revision
    Undo {
        /// The Deployment: deployment/NAME (or deploy/NAME, or NAME)
        deployment: String,
        /// The namespace (default: "default", or the context's with a cluster)
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// The revision to go back to (0: the one before the current)
        #[arg(long, default_value_t = 0)]
        to_revision: u64,
    },
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// Manifests; repeat or separate with commas
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        required = true,
        value_delimiter = ','
    )]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub source: Source,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// The pod
    #[arg(add = ArgValueCompleter::new(crate::complete::pod_names))]
    pub pod: String,
    /// The container (default: the crash-looping one, init containers included, else the
    /// first; which was chosen is said on stderr when there are several)
    #[arg(short = 'c', long, conflicts_with = "all_containers")]
    pub container: Option<String>,
    /// Every container's log, init containers first (local runtime)
    #[arg(long, conflicts_with = "follow")]
    pub all_containers: bool,
    /// The logs of the previous instance of the container
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Keep printing as the log grows
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (-1: all)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub tail: Option<i64>,
    /// Only lines written within this long, e.g. 30s, 5m, 2h, 1d
    #[arg(long, value_name = "DURATION", conflicts_with = "since_time")]
    pub since: Option<String>,
    /// Only lines written at or after this time (RFC 3339, e.g. 2026-12-07T10:00:00Z)
    #[arg(long, value_name = "TIME")]
    pub since_time: Option<String>,
    /// Start each line with the time it was written (RFC 3339, nanoseconds)
    #[arg(long)]
    pub timestamps: bool,
    /// The pod's namespace [default: the context's against a cluster, else default]
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum DiagnoseOutput {
    /// The cause, its summary, the strongest evidence and the first remedy
    #[default]
    Table,
    /// Everything: all evidence, remedies, other causes, rejected look-alikes, inputs
    Wide,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    /// The pod
    #[arg(add = ArgValueCompleter::new(crate::complete::pod_names))]
    pub pod: String,
    /// The pod's namespace
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Only this container
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Make the change (local runtime)
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  crashscope diagnose nginx-7d4b9c5f6-x2x8k              # a pod of the local runtime
  crashscope diagnose deployment/nginx -n shop -o wide     # every crashed pod of a Deployment
  crashscope diagnose -A                                   # every crashed container
  crashscope diagnose my-pod --cluster -n shop             # a pod of the cluster (status, events, logs -p)
  crashscope diagnose -f pod.yaml --logs prev.log --capture crash.scap
  crashscope diagnose --capture crash.scap                 # what a capture alone proves

Causes use the ids of research/crash-causes.md (dns-nxdomain, oom-limit, ...). When no
evidence decides, the cause is `unknown` with what would confirm one.")]
pub struct DiagnoseArgs {
    /// The pod, or deployment/NAME for the crashed pods of a Deployment [default: every pod
    /// with a crashed container]
    #[arg(add = ArgValueCompleter::new(crate::complete::pod_names))]
    pub target: Option<String>,
    #[command(flatten)]
    pub source: Source,
    /// Only this container (init containers too)
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// The crashed instance's log (`kubectl logs --previous` saved to a file)
    #[arg(long, value_name = "FILE")]
    pub logs: Option<PathBuf>,
    /// A system-call capture of the crash (.scap); alone, diagnose says what it proves
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: DiagnoseOutput,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub runtime: DemoRuntime,
}

#[derive(Debug, Args)]
pub struct DemoRuntime {
    /// Multiply every kubelet duration by this factor (the demo's 10 s, 20 s, 40 s back-off
    /// take 1, 2, 4 s at 0.1)
    #[arg(long, default_value_t = 0.1, value_parser = parse_scale)]
    pub time_scale: f64,
    /// Loopback address of the cluster DNS server (port 53)
    #[arg(long, default_value = "127.0.99.1")]
    pub dns: std::net::Ipv4Addr,
    /// Port nginx listens on
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Do not record nginx's system calls with the eBPF flight recorder
    #[arg(long)]
    pub no_record: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Views:
  summary      overview tiles: processes, containers, I/O, connections, errors, signals
  containers   containers seen, with start, death (exit code or signal) and lifetime
  procs        process tree: command lines, start/end, exit code or signal, syscalls, errors
  errors       failed system calls by errno, syscall, process and path or address
  files        files by bytes read and written, opens and failed opens
  io           the bytes read and written on each fd, in order (sysdig's echo_fds)
  net          connections and sockets: tuples, direction, bytes, duration, failures
  dns          DNS queries in port-53 payloads with their answers, or why none came
  logs         lines written to stdout/stderr and log files, errors and warnings marked
  timeline     activity per time bucket by category, with lifecycle marks
  events       one line per event, as `sysdig -r FILE` prints them

Examples:
  crashscope inspect crash.scap                         # summary
  crashscope inspect crash.scap procs -f 'container.name=nginx'
  crashscope inspect crash.scap io -f 'fd.name=/etc/resolv.conf'
  crashscope inspect crash.scap dns -o json
  crashscope inspect crash.scap events -f 'evt.failed=true and proc.name=nginx'
  crashscope inspect --list-fields")]
pub struct InspectArgs {
    /// The capture (.scap, plain or gzip); `-` reads standard input
    #[arg(required_unless_present = "list_fields")]
    pub file: Option<PathBuf>,
    /// What to show (see Views below)
    #[arg(value_enum, default_value_t = InspectView::Summary)]
    pub view: InspectView,
    /// Same as the `events` view: one line per event, as `sysdig -r FILE` prints them
    #[arg(long)]
    pub events: bool,
    /// Only events matching this sysdig filter, e.g.
    /// 'proc.name=nginx and (fd.name contains resolv or fd.sport=53)'
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Option<String>,
    /// Only events at or after this time: an offset from the first event (`2s`, `1m30s`)
    /// or an RFC 3339 time
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only events at or before this time (same forms as --from)
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Output format: a table (sysdig lines for events) or JSON
    #[arg(short = 'o', long, value_enum, default_value_t = InspectOutput::Table)]
    pub output: InspectOutput,
    /// io: payloads as a hex dump
    #[arg(long)]
    pub hex: bool,
    /// timeline: bucket width (`100ms`, `1s`); automatic when unset
    #[arg(long, value_name = "DURATION")]
    pub bucket: Option<String>,
    /// errors, files: only the N largest rows
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// errors: also the start-up noise every program makes (locale and loader probes, nscd,
    /// ENOTTY)
    #[arg(long)]
    pub all: bool,
    /// events: also print the capture's container metadata records, which `sysdig -r` hides
    /// (they keep their event numbers either way)
    #[arg(long)]
    pub metadata: bool,
    /// List the filter fields and exit
    #[arg(long)]
    pub list_fields: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectView {
    Summary,
    Containers,
    Procs,
    Death,
    Errors,
    Files,
    Io,
    Net,
    Dns,
    Logs,
    Timeline,
    Events,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectOutput {
    #[value(alias = "text")]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only this namespace (default: the context's namespace, else all with -A)
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// All namespaces
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only pods matching this label selector, e.g. app=nginx,tier!=db
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Print the feed as one JSON object per line
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<WatchOutput>,
    /// Serve /healthz and /readyz on this address (for liveness and readiness probes)
    #[arg(long, value_name = "ADDR")]
    pub health_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchOutput {
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  crashscope capture -w crash.scap -- ./server --port 8080   # run a command under capture
  crashscope capture -w nginx.scap --pid 4242 --duration 30s # a running process and its children
  crashscope capture -w all.scap --all --duration 5s         # every process on the machine
  crashscope capture -w web.scap --pod web-7d4b9 -n shop --duration 30s   # a pod on this node
  crashscope capture -w c.scap --container 4d1f7c0e6b2a --duration 10s    # one container
  crashscope inspect crash.scap                               # then look at it")]
pub struct CaptureArgs {
    /// Write the capture to this file (sysdig -w)
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: PathBuf,
    /// Record this running process and the processes it starts (repeatable)
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Record every process on the machine (except crashscope itself)
    #[arg(long, conflicts_with = "pids")]
    pub all: bool,
    /// Record a container running on this machine: its id, or its first 12 or more hex
    /// digits (as `kubectl get pod -o jsonpath='{..containerID}'`, `docker ps` show it)
    #[arg(long, value_name = "ID")]
    pub container: Option<String>,
    /// Record a pod of the cluster that runs on this machine (its cgroup; needs a kubeconfig)
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// The namespace of --pod [default: the kubeconfig context's]
    #[arg(short = 'n', long, value_name = "NAMESPACE", requires = "pod")]
    pub namespace: Option<String>,
    /// Record a cgroup v2 (a path below the cgroup2 mount, or absolute): the processes in
    /// it and below it now, and any that start there during the capture
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,
    /// Stop after this long, e.g. 10s, 2m [default: when the command exits, else Ctrl-C]
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Size of the kernel's ring buffer of each CPU in MiB (a power of two; every online CPU
    /// gets one) [default: 16, over 60 ms of one CPU's system calls at full speed; on machines
    /// of more than 16 CPUs less, to stay within 256 MiB in all]; a bigger one absorbs longer
    /// stalls of the reader before records are dropped
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub buffer_size: Option<u32>,
    /// Bytes of I/O payload kept per system call (sysdig -s); DNS (port 53) keeps at least 512
    #[arg(short = 's', long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(0..=65535))]
    pub snaplen: u32,
    /// Record the environment of each program started (execve's env, as `sysdig` shows it);
    /// off by default because environments hold secrets
    #[arg(long)]
    pub env: bool,
    /// Also hook system-call entry, so that each call's entry event has its own time and
    /// slow calls show how long they took (evt.latency); every process on the machine then
    /// pays for a second hook
    #[arg(long)]
    pub latency: bool,
    /// The command to run under capture (after --)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The README's command blocks stay true to the flags: every `crashscope …` command in a
/// ```sh block parses.
#[cfg(test)]
mod readme {
    use clap::Parser;

    /// Words of a shell command, with '…' and "…" quoting; None past a `#` comment.
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut quote: Option<char> = None;
        let mut any = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => cur.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    any = true;
                }
                (None, '#') if cur.is_empty() && !any => break,
                (None, c) if c.is_whitespace() => {
                    if !cur.is_empty() || any {
                        out.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                (None, c) => cur.push(c),
            }
        }
        if !cur.is_empty() || any {
            out.push(cur);
        }
        out
    }

    /// Each `crashscope` command of the README's sh blocks (continuations joined, `;`, `|`
    /// and `&&` split), with its line.
    fn commands(readme: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut in_sh = false;
        let mut pending: Option<(usize, String)> = None;
        for (i, line) in readme.lines().enumerate() {
            if line.starts_with("```") {
                in_sh = line == "```sh";
                continue;
            }
            if !in_sh {
                continue;
            }
            let (n, text) = match pending.take() {
                Some((n, before)) => (n, format!("{before} {}", line.trim())),
                None => (i + 1, line.trim().to_string()),
            };
            if let Some(head) = text.strip_suffix('\\') {
                pending = Some((n, head.to_string()));
                continue;
            }
            for part in text.split([';', '|']).flat_map(|p| p.split("&&")) {
                let part = part.trim().trim_start_matches("sudo ").trim();
                if part.starts_with("crashscope ") {
                    out.push((n, part.to_string()));
                }
            }
        }
        out
    }

    #[test]
    fn every_readme_command_parses() {
        let readme = include_str!("../../../README.md");
        let cmds = commands(readme);
        assert!(cmds.len() > 10, "{cmds:?}");
        for (line, cmd) in cmds {
            let args = words(&cmd);
            if let Err(e) = super::Cli::try_parse_from(&args) {
                panic!("README.md:{line}: {cmd}\n{e}");
            }
        }
    }

    #[test]
    fn shell_words_keep_quotes_and_drop_comments() {
        assert_eq!(
            words("crashscope inspect f -f 'container.name=nginx'   # tree"),
            ["crashscope", "inspect", "f", "-f", "container.name=nginx"]
        );
        assert_eq!(words("a \"b c\" ''"), ["a", "b c", ""]);
    }
}
