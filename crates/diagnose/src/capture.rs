//! What a system-call capture proves about a crash, gathered in one streaming pass: how each
//! process ended, the system calls that failed (and whether a later call on the same object
//! succeeded), DNS questions and answers, connects, binds and listens, what was written to
//! stdout/stderr and log files, signals and who sent them, OOM kills, memory use.
//!
//! The rules read these facts; every fact keeps its capture event number so the diagnosis
//! can point at it (`crashscope inspect FILE events` shows the same numbers).

use crashscope_scap::notes;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;

use crashscope_inspect::event::{exit_status, tuple_parts, Ev, IoDir};
use crashscope_inspect::report::Table;
use crashscope_inspect::scan::{scan, Scope, View};
use crashscope_inspect::views::dns::{Dns, Query};
use crashscope_scap::replay::Replay;

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub num: u64,
    pub ts: u64,
    pub code: Option<i64>,
    pub signal: Option<i64>,
}

/// A process of the capture.
#[derive(Debug, Clone, Default)]
pub struct Proc {
    pub pid: i64,
    pub ppid: i64,
    pub comm: String,
    pub exe: String,
    pub args: Vec<String>,
    pub uid: u32,
    /// Its pid inside its pid namespace (1 for a container's first process).
    pub vpid: i64,
    pub container: String,
    pub first_ts: u64,
    pub exit: Option<Exit>,
    /// Largest resident set seen (KiB), from execve/brk/mmap results.
    pub peak_rss_kib: u64,
}

/// A system call that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub num: u64,
    pub ts: u64,
    pub pid: i64,
    pub comm: String,
    pub call: String,
    /// The errno, positive (2 for ENOENT).
    pub errno: i64,
    /// The path, address or fd name the call was about.
    pub target: Option<String>,
    /// scap's open flags (`O_WRONLY` 2, `O_CREAT` 4, ...), for opens.
    pub flags: Option<u64>,
    /// A later call on the same object succeeded (ld.so and config searches probe many paths).
    pub recovered: bool,
    /// An earlier call on the same object succeeded (the object exists).
    pub existed: bool,
    /// How the error was seen when not as the call's own result (a non-blocking connect's
    /// error read with `getsockopt(SO_ERROR)`).
    pub via: Option<String>,
}

/// A connection attempt with its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub num: u64,
    pub ts: u64,
    pub pid: i64,
    pub comm: String,
    /// The server side, `ip:port`.
    pub peer: String,
    /// 0, or the errno (positive) it failed with; 115 (EINPROGRESS) for a non-blocking start.
    pub errno: i64,
}

/// A bind, and whether the socket then listened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub num: u64,
    pub pid: i64,
    pub comm: String,
    pub addr: String,
    pub port: Option<u16>,
    pub errno: i64,
    pub listened: bool,
}

/// A signal sent or delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub num: u64,
    pub ts: u64,
    /// kill/tkill/tgkill (the sender's side), or signaldeliver.
    pub call: String,
    /// Sender pid (0 when unknown: a signal from outside the pid namespace, or the kernel).
    pub sender: i64,
    pub sender_comm: String,
    pub target: i64,
    pub sig: i64,
}

/// A line a process wrote to stdout, stderr or a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub num: u64,
    pub ts: u64,
    pub pid: i64,
    pub fd: String,
    pub text: String,
}

/// A file opened and read successfully (for "read, then a parse error").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub num: u64,
    pub pid: i64,
    pub path: String,
    pub bytes_read: u64,
}

/// A note the recorder wrote into the capture (an OOM kill, losses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub num: u64,
    pub ts: u64,
    pub id: String,
    pub text: String,
}

/// Everything the capture says, for the rules.
#[derive(Debug, Clone, Default)]
pub struct CaptureFacts {
    /// The capture's name, for pointers.
    pub source: String,
    pub events: u64,
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
    /// Damage that ended the read early (facts before it are kept).
    pub damage: Option<String>,
    pub procs: BTreeMap<i64, Proc>,
    pub failures: Vec<Failure>,
    pub dns: Vec<Query>,
    pub connects: Vec<Connect>,
    pub binds: Vec<Bind>,
    pub signals: Vec<Signal>,
    pub output: Vec<Output>,
    pub opened: Vec<Opened>,
    pub notes: Vec<Note>,
    /// Container names the capture's metadata gives, by container id.
    pub containers: BTreeMap<String, String>,
}

/// Caps on what is kept: the end of a capture is what explains a crash.
const KEEP_FAILURES: usize = 20_000;
const KEEP_OUTPUT: usize = 2_000;
const KEEP_OPENED: usize = 5_000;

/// Key under which failures and successes on "the same object" meet: a shared library by its
/// file name (ld.so tries it in several directories), anything else by its full name.
fn object_key(call: &str, target: &str) -> String {
    let base = target.rsplit_once('/').map(|(_, b)| b);
    match base {
        // A shell or execvp tries the program in each $PATH directory.
        Some(base) if call.starts_with("execve") => format!("exec:{base}"),
        Some(base) if base.contains(".so") => format!("so:{base}"),
        _ => target.to_string(),
    }
}

/// The `ip:port` a socket fd name or address names as its server side.
fn server_side(name: &str) -> String {
    match tuple_parts(name) {
        Some((_, _, sip, sport)) => format!("{sip}:{sport}"),
        None => name.to_string(),
    }
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

fn text_of(p: &[u8]) -> String {
    String::from_utf8_lossy(p)
        .trim_end_matches('\0')
        .to_string()
}

/// Reads the recorder's note on a signal's sender.
fn sender_note(text: &str) -> Option<Signal> {
    let rest = text.strip_prefix("signal ")?;
    let (sig, rest) = rest.split_once(" to pid ")?;
    let (target, rest) = rest.split_once(' ')?;
    let (_, rest) = rest.split_once(" from pid ")?;
    let (sender, comm) = rest.split_once(' ')?;
    Some(Signal {
        num: 0,
        ts: 0,
        call: "kill".into(),
        sender: sender.parse().ok()?,
        sender_comm: comm
            .trim_start_matches('(')
            .trim_end_matches(')')
            .to_string(),
        target: target.parse().ok()?,
        sig: sig.parse().ok()?,
    })
}

/// The collecting view.
#[derive(Default)]
struct Collector {
    facts: CaptureFacts,
    failures: VecDeque<Failure>,
    output: VecDeque<Output>,
    /// Last successful call per object key (event number).
    succeeded: HashMap<String, u64>,
    /// Bound address per (pid, fd).
    bound: HashMap<(i64, i64), usize>,
    /// Open file per (pid, fd) → index in `opened`.
    open_files: HashMap<(i64, i64), usize>,
    /// A line being written in pieces (unbuffered stderr writes a byte at a time), per
    /// (pid, fd): the event that began it, its time, the text so far.
    partial: HashMap<(i64, String), (u64, u64, String)>,
    dns: Dns,
}

const PROBE_SYSCALLS: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "stat",
    "lstat",
    "newfstatat",
    "access",
    "faccessat",
    "faccessat2",
    "execve",
    "execveat",
    "readlink",
    "readlinkat",
    "statx",
];

impl Collector {
    fn proc_entry(&mut self, ev: &Ev) -> Option<&mut Proc> {
        let t = ev.thread()?;
        let process = ev.process().unwrap_or(t);
        let container = ev.container_id().to_string();
        let p = self.facts.procs.entry(t.pid).or_insert_with(|| Proc {
            pid: t.pid,
            first_ts: ev.ts(),
            ..Proc::default()
        });
        p.ppid = process.ptid;
        p.comm.clone_from(&process.comm);
        p.uid = process.uid;
        p.vpid = process.vpid;
        if p.exe.is_empty() || ev.name().starts_with("execve") {
            p.exe.clone_from(&process.exe);
            p.args.clone_from(&process.args);
        }
        if p.container.is_empty() {
            p.container = container;
        }
        Some(p)
    }

    fn target(ev: &Ev) -> Option<String> {
        if let Some(p) = ev.path() {
            return Some(p);
        }
        if let Some(peer) = ev.peer() {
            return Some(server_side(&peer));
        }
        ev.fd()
            .map(|f| server_side(&f.name))
            .filter(|n| !n.is_empty())
    }
}

impl Collector {
    fn bind(&mut self, ev: &Ev, pid: i64, comm: &str, addr: String, errno: i64) {
        self.facts.binds.push(Bind {
            num: ev.num,
            pid,
            comm: comm.to_string(),
            port: port_of(&addr),
            addr,
            errno,
            listened: false,
        });
    }

    fn connect(&mut self, ev: &Ev, comm: &str, peer: Option<String>, errno: i64) {
        self.facts.connects.push(Connect {
            num: ev.num,
            ts: ev.ts(),
            pid: ev.pid(),
            comm: comm.to_string(),
            peer: peer.unwrap_or_default(),
            errno,
        });
    }

    /// Keeps a failure; the oldest go first past the cap.
    fn fail(&mut self, f: Failure) {
        self.failures.push_back(f);
        if self.failures.len() > KEEP_FAILURES {
            self.failures.pop_front();
        }
    }

    fn event(&mut self, ev: &Ev) {
        self.facts.events += 1;
        // Most events of a busy capture are plain I/O of a known process: the per-event work
        // stays small (the process's facts change only when it is new or runs a program).
        let name = ev.name();
        let pid = ev.pid();
        let socket = ev.fd().is_some_and(|f| matches!(f.kind, '4' | '6'))
            || matches!(name, "connect" | "sendto" | "sendmsg" | "sendmmsg");
        if socket {
            self.dns.observe(ev);
        }
        let changes = !self.facts.procs.contains_key(&pid)
            || matches!(
                name,
                "execve" | "execveat" | "prctl" | "clone" | "clone3" | "fork" | "vfork"
            );
        if changes {
            if let Some(c) = ev.container() {
                self.facts
                    .containers
                    .entry(c.id.clone())
                    .or_insert_with(|| c.name.clone());
            }
            self.proc_entry(ev);
        }
        if matches!(name, "brk" | "mmap" | "mremap" | "execve" | "execveat") {
            if let (Some(p), Some(rss)) = (
                self.facts.procs.get_mut(&pid),
                ev.num_param("vm_rss").filter(|r| *r > 0),
            ) {
                p.peak_rss_kib = p.peak_rss_kib.max(rss as u64);
            }
        }
        let comm = ev.proc_name();
        match name {
            "procexit" => {
                let t = ev.thread();
                if t.is_some_and(|t| t.tid == t.pid) {
                    let (code, signal) = exit_status(ev);
                    if let Some(p) = self.facts.procs.get_mut(&pid) {
                        p.exit = Some(Exit {
                            num: ev.num,
                            ts: ev.ts(),
                            code,
                            signal,
                        });
                    }
                }
                return;
            }
            "signaldeliver" => {
                self.facts.signals.push(Signal {
                    num: ev.num,
                    ts: ev.ts(),
                    call: name.to_string(),
                    sender: ev.num_param("spid").unwrap_or(0),
                    sender_comm: String::new(),
                    target: ev.num_param("dpid").unwrap_or(pid),
                    sig: ev.num_param("sig").unwrap_or(0),
                });
                return;
            }
            "notification" => {
                let id = ev.param("id").map(text_of).unwrap_or_default();
                let text = ev.param("desc").map(text_of).unwrap_or_default();
                // The recorder names a signal's sender from outside the capture:
                // "signal 15 to pid 42 (app) from pid 7 (kubelet)".
                if id == notes::SIGNAL_SENDER {
                    if let Some(s) = sender_note(&text) {
                        self.facts.signals.push(Signal {
                            num: ev.num,
                            ts: ev.ts(),
                            ..s
                        });
                    }
                }
                self.facts.notes.push(Note {
                    num: ev.num,
                    ts: ev.ts(),
                    id,
                    text,
                });
                return;
            }
            "kill" | "tkill" | "tgkill" if ev.is_enter() => {
                let target = ev
                    .num_param("pid")
                    .or_else(|| ev.num_param("tid"))
                    .unwrap_or(0);
                self.facts.signals.push(Signal {
                    num: ev.num,
                    ts: ev.ts(),
                    call: name.to_string(),
                    sender: pid,
                    sender_comm: comm.to_string(),
                    target,
                    sig: ev.num_param("sig").unwrap_or(0),
                });
                return;
            }
            _ => {}
        }
        if ev.is_enter() {
            return;
        }
        let Some(res) = ev.res() else {
            return;
        };
        // What the call was about, worked out only where a fact keeps it: a busy capture's
        // successful reads and writes need none.
        let wanted = res < 0
            || PROBE_SYSCALLS.contains(&name)
            || matches!(name, "connect" | "bind" | "getsockopt");
        let target = if wanted { Self::target(ev) } else { None };
        // A non-blocking connect's result arrives through getsockopt(SO_ERROR): the connect
        // said EINPROGRESS, this says ECONNREFUSED or ETIMEDOUT.
        if name == "getsockopt" {
            if let Some(err) = ev.pending_error() {
                self.connect(ev, comm, target.clone(), -err);
                self.fail(Failure {
                    num: ev.num,
                    ts: ev.ts(),
                    pid,
                    comm: comm.to_string(),
                    call: "connect".into(),
                    errno: -err,
                    target,
                    flags: None,
                    recovered: false,
                    existed: false,
                    via: Some("getsockopt(SO_ERROR)".into()),
                });
            }
            return;
        }
        if res < 0 {
            let errno = -res;
            if matches!(name, "connect") {
                self.connect(ev, comm, target.clone(), errno);
                if errno == 115 {
                    return;
                }
            }
            if name == "bind" {
                self.bind(ev, pid, comm, target.clone().unwrap_or_default(), errno);
            }
            // EAGAIN (non-blocking I/O), EINPROGRESS and EINTR are how event loops work, not
            // failures; only a fork's EAGAIN says a limit was hit.
            let forks = matches!(name, "clone" | "clone3" | "fork" | "vfork");
            if (errno == 11 && !forks) || errno == 115 || errno == 4 {
                return;
            }
            let existed = target.as_ref().is_some_and(|t| {
                self.succeeded.contains_key(&object_key(name, t))
                    || self.succeeded.contains_key(t.as_str())
            });
            self.fail(Failure {
                existed,
                num: ev.num,
                ts: ev.ts(),
                pid,
                comm: comm.to_string(),
                call: name.to_string(),
                errno,
                target,
                flags: ev.num_param("flags").map(|f| f as u64),
                recovered: false,
                via: None,
            });
            return;
        }
        // Successes: what later failures are judged against, and the facts of their own.
        if let Some(t) = &target {
            if PROBE_SYSCALLS.contains(&name) {
                self.succeeded.insert(object_key(name, t), ev.num);
            }
        }
        match name {
            "connect" => self.connect(ev, comm, target, 0),
            "bind" => {
                if let Some(fd) = ev.num_param("fd") {
                    self.bound.insert((pid, fd), self.facts.binds.len());
                }
                self.bind(ev, pid, comm, target.unwrap_or_default(), 0);
            }
            "listen" => {
                if let Some(fd) = ev.num_param("fd") {
                    if let Some(i) = self.bound.get(&(pid, fd)) {
                        if let Some(b) = self.facts.binds.get_mut(*i) {
                            b.listened = true;
                        }
                    }
                }
            }
            "open" | "openat" | "openat2" => {
                if let Some(path) = target {
                    self.open_files.insert((pid, res), self.facts.opened.len());
                    self.facts.opened.push(Opened {
                        num: ev.num,
                        pid,
                        path,
                        bytes_read: 0,
                    });
                    if self.facts.opened.len() > KEEP_OPENED {
                        self.facts.opened.remove(0);
                        self.open_files.clear();
                    }
                }
            }
            _ => {}
        }
        match ev.io() {
            Some(IoDir::Read) => {
                if let Some(fd) = ev.fd_num() {
                    if let Some(i) = self.open_files.get(&(pid, fd)) {
                        if let Some(o) = self.facts.opened.get_mut(*i) {
                            o.bytes_read += ev.io_bytes();
                        }
                    }
                }
            }
            Some(IoDir::Write) => {
                let fdn = ev.fd_num().unwrap_or(-1);
                let fdname = ev.fd().map(|f| f.name.clone()).unwrap_or_default();
                // What the program meant someone to read: stdout, stderr, log files.
                let is_log = fdn == 1
                    || fdn == 2
                    || fdname.ends_with(".log")
                    || fdname.starts_with("/dev/std")
                    || fdname == "/dev/console";
                if is_log {
                    if let Some(data) = ev.data() {
                        // A runtime's stdout and stderr are pipes (or unknown): say which stream.
                        let fd = match fdn {
                            1 | 2 if fdname.is_empty() || fdname.starts_with("pipe:") => {
                                if fdn == 1 { "stdout" } else { "stderr" }.to_string()
                            }
                            _ if fdname.is_empty() => fdn.to_string(),
                            _ => fdname.clone(),
                        };
                        let key = (pid, fd.clone());
                        let (num, ts, mut line) =
                            self.partial
                                .remove(&key)
                                .unwrap_or((ev.num, ev.ts(), String::new()));
                        let (mut num, mut ts) = (num, ts);
                        line.push_str(&String::from_utf8_lossy(data));
                        while let Some(i) = line.find('\n') {
                            let rest = line.split_off(i + 1);
                            self.push_line(num, ts, pid, &fd, line.trim_end_matches(['\n', '\r']));
                            line = rest;
                            (num, ts) = (ev.num, ev.ts());
                        }
                        // A runaway line without a newline is cut, not kept growing.
                        if line.len() > 4096 {
                            self.push_line(num, ts, pid, &fd, &line);
                        } else if !line.is_empty() {
                            self.partial.insert(key, (num, ts, line));
                        }
                    }
                }
            }
            None => {}
        }
    }

    fn push_line(&mut self, num: u64, ts: u64, pid: i64, fd: &str, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        self.output.push_back(Output {
            num,
            ts,
            pid,
            fd: fd.to_string(),
            text: text.to_string(),
        });
        while self.output.len() > KEEP_OUTPUT {
            self.output.pop_front();
        }
    }

    fn into_facts(mut self) -> CaptureFacts {
        let partial: Vec<_> = self.partial.drain().collect();
        for ((pid, fd), (num, ts, line)) in partial {
            self.push_line(num, ts, pid, &fd, &line);
        }
        self.output.make_contiguous().sort_by_key(|o| o.num);
        let mut failures: Vec<Failure> = self.failures.into();
        for f in &mut failures {
            if let Some(t) = &f.target {
                f.recovered = self
                    .succeeded
                    .get(&object_key(&f.call, t))
                    .is_some_and(|n| *n > f.num);
            }
        }
        self.facts.failures = failures;
        self.facts.output = self.output.into();
        self.facts.dns = self.dns.queries().to_vec();
        self.facts
    }
}

/// Errors reading a capture for a diagnosis.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{0}: not a readable capture: {1}")]
    Open(String, String),
}

/// Scans a capture. Damage after the start keeps the facts read around it (`damage` says where).
pub fn scan_capture<R: Read>(source: &str, replay: &mut Replay<R>) -> CaptureFacts {
    // The scan interface wants boxed views; one box, then its facts are taken back out.
    struct Shared(std::rc::Rc<std::cell::RefCell<Option<Collector>>>);
    impl View for Shared {
        fn event(&mut self, ev: &Ev) {
            if let Some(c) = self.0.borrow_mut().as_mut() {
                c.event(ev);
            }
        }
        fn finish(self: Box<Self>) -> Table {
            Table::new("capture facts", &[])
        }
    }
    let cell = std::rc::Rc::new(std::cell::RefCell::new(Some(Collector::default())));
    let mut views: Vec<Box<dyn View>> = vec![Box::new(Shared(cell.clone()))];
    let outcome = scan(replay, &Scope::default(), &mut views, |_| {});
    drop(views);
    let collector = cell.borrow_mut().take().unwrap_or_default();
    let mut facts = collector.into_facts();
    facts.source = source.to_string();
    facts.first_ts = outcome.first_ts;
    facts.last_ts = outcome.last_ts;
    facts.damage = outcome.error.map(|e| e.to_string());
    facts
}

/// Reads a capture file and scans it.
pub fn read_capture(path: &std::path::Path) -> Result<CaptureFacts, CaptureError> {
    let name = path.display().to_string();
    let reader = crashscope_scap::reader::Reader::open(path)
        .map_err(|e| CaptureError::Open(name.clone(), e.to_string()))?;
    let mut replay = Replay::new(reader);
    let facts = scan_capture(&name, &mut replay);
    if facts.events == 0 {
        if let Some(d) = &facts.damage {
            return Err(CaptureError::Open(name, d.clone()));
        }
    }
    Ok(facts)
}

impl CaptureFacts {
    /// The process whose end ended the container: the container's first process (pid 1 in
    /// its namespace), else the oldest process with no parent in the capture that exited.
    pub fn main_process(&self) -> Option<&Proc> {
        let exited = || self.procs.values().filter(|p| p.exit.is_some());
        exited()
            .filter(|p| p.vpid == 1)
            .min_by_key(|p| p.first_ts)
            .or_else(|| {
                exited()
                    .filter(|p| !self.procs.contains_key(&p.ppid) || p.ppid == p.pid)
                    .min_by_key(|p| p.first_ts)
            })
            .or_else(|| exited().max_by_key(|p| p.exit.as_ref().map(|e| e.ts)))
    }

    /// Processes descending from `root` (itself included).
    pub fn family(&self, root: i64) -> Vec<i64> {
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            let parent = out[i];
            for p in self.procs.values() {
                if p.ppid == parent && p.pid != parent && !out.contains(&p.pid) {
                    out.push(p.pid);
                }
            }
            i += 1;
        }
        out
    }

    /// The pointer to capture event `num`.
    pub fn pointer(&self, num: u64) -> String {
        format!("{} event #{num}", self.source)
    }

    /// Keeps only the facts of the container named `name` (by the capture's container
    /// metadata); a capture without container metadata is taken as that container's whole.
    pub fn keep_container(&mut self, name: &str) {
        let ids: Vec<String> = self
            .containers
            .iter()
            .filter(|(_, n)| n.as_str() == name)
            .map(|(id, _)| id.clone())
            .collect();
        if ids.is_empty() {
            return;
        }
        let pids: Vec<i64> = self
            .procs
            .values()
            .filter(|p| ids.contains(&p.container))
            .map(|p| p.pid)
            .collect();
        self.procs.retain(|pid, _| pids.contains(pid));
        self.failures.retain(|f| pids.contains(&f.pid));
        self.connects.retain(|c| pids.contains(&c.pid));
        self.binds.retain(|b| pids.contains(&b.pid));
        self.output.retain(|o| pids.contains(&o.pid));
        self.opened.retain(|o| pids.contains(&o.pid));
        self.dns.retain(|q| pids.contains(&q.pid));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_recorders_sender_note_is_read() {
        let s =
            super::sender_note("signal 15 to pid 17557 (sleep) from pid 17558 (pkill)").unwrap();
        assert_eq!(
            (s.sig, s.target, s.sender, s.sender_comm.as_str()),
            (15, 17557, 17558, "pkill")
        );
        assert!(super::sender_note("out of memory").is_none());
    }
}
