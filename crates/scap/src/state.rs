//! What was true at each event: the thread table (seeded from process-list blocks, updated by
//! clone, execve and procexit) and each process's fd table (seeded from fd-list blocks, updated
//! by open/openat/openat2/creat, socket, connect, accept, pipe, dup and close).

use std::collections::HashMap;

use crate::cgroup::container_id;
use crate::intmap::IntMap;

use crate::block::{EventRecord, FdInfo, FdKind, ThreadInfo};
use crate::event::{as_i64, as_str, param, params};
use crate::schema;

/// One thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Thread {
    pub tid: i64,
    pub pid: i64,
    pub ptid: i64,
    pub comm: String,
    pub exe: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub vpid: i64,
    /// Set through [`State`], which forgets the cached container id when they change.
    pub cgroups: Vec<String>,
    /// The container id of `cgroups`, found on first use: views ask for every event, and
    /// searching the cgroup paths each time was half the time of `inspect summary`.
    #[serde(skip)]
    container: std::sync::OnceLock<String>,
}

impl Thread {
    /// The container the thread runs in (from its cgroups), empty on the host. Computed on
    /// demand: most events never need it.
    pub fn container_id(&self) -> &str {
        self.container.get_or_init(|| container_id(&self.cgroups))
    }
}

/// An open file descriptor: sysdig's type letter and its name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fd {
    /// `f` file, `d` directory, `4`/`6` IPv4/IPv6 socket, `u` unix socket, `p` pipe,
    /// `e` eventfd, `s` signalfd, `l` eventpoll, `i` inotify, `t` timerfd, `n` netlink, `b` bpf.
    pub kind: char,
    pub name: String,
    /// Transport of a socket: `t` TCP, `u` UDP, `r` raw, `i` ICMP (sysdig shows `<4t>`).
    pub l4: Option<char>,
}

impl Fd {
    fn new(kind: char, name: String) -> Fd {
        Fd {
            kind,
            name,
            l4: None,
        }
    }

    /// Appends sysdig's tag to `out`: the type letter, and for IP sockets the transport
    /// letter (no temporary string: every fd parameter shows it).
    pub fn push_type_tag(&self, out: &mut String) {
        out.push(self.kind);
        match self.l4 {
            // An unconnected socket has no tuple yet and sysdig shows just the family.
            Some(l) if (self.kind == '4' || self.kind == '6') && !self.name.is_empty() => {
                out.push(l)
            }
            _ => {}
        }
    }
}

fn l4_letter(code: u8) -> Option<char> {
    match code {
        2 => Some('t'),
        3 => Some('u'),
        4 => Some('i'),
        5 => Some('r'),
        _ => None,
    }
}

fn ip4(b: &[u8]) -> String {
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

fn ip6(b: &[u8]) -> String {
    let a: [u8; 16] = b.try_into().unwrap_or([0; 16]);
    std::net::Ipv6Addr::from(a).to_string()
}

/// sysdig's rendering of a socket tuple parameter, with the fd type letter.
pub fn tuple_name(p: &[u8]) -> Option<(char, String)> {
    match p.first()? {
        2 if p.len() >= 13 => {
            let sport = u16::from_le_bytes([p[5], p[6]]);
            let dport = u16::from_le_bytes([p[11], p[12]]);
            Some((
                '4',
                format!("{}:{sport}->{}:{dport}", ip4(&p[1..5]), ip4(&p[7..11])),
            ))
        }
        10 if p.len() >= 37 => {
            let sport = u16::from_le_bytes([p[17], p[18]]);
            let dport = u16::from_le_bytes([p[35], p[36]]);
            Some((
                '6',
                format!("{}:{sport}->{}:{dport}", ip6(&p[1..17]), ip6(&p[19..35])),
            ))
        }
        1 if p.len() >= 17 => Some(('u', as_str(&p[17..]))),
        _ => None,
    }
}

/// A socket tuple whose unspecified source address is replaced by the destination address.
fn fill_source(t: &[u8]) -> Vec<u8> {
    let mut t = t.to_vec();
    match t.first() {
        Some(2) if t.len() >= 13 && t[1..5] == [0; 4] => {
            let d: [u8; 4] = [t[7], t[8], t[9], t[10]];
            t[1..5].copy_from_slice(&d);
        }
        Some(10) if t.len() >= 37 && t[1..17] == [0; 16] => {
            let d = t[19..35].to_vec();
            t[1..17].copy_from_slice(&d);
        }
        _ => {}
    }
    t
}

/// sysdig's rendering of a socket address parameter.
pub fn addr_name(p: &[u8]) -> Option<String> {
    match p.first()? {
        2 if p.len() >= 7 => Some(format!(
            "{}:{}",
            ip4(&p[1..5]),
            u16::from_le_bytes([p[5], p[6]])
        )),
        10 if p.len() >= 19 => Some(format!(
            "{}:{}",
            ip6(&p[1..17]),
            u16::from_le_bytes([p[17], p[18]])
        )),
        1 => Some(as_str(&p[1..])),
        _ => None,
    }
}

impl Fd {
    fn from_info(f: &FdInfo) -> Fd {
        match &f.kind {
            FdKind::File { name, .. } => Fd::new('f', name.clone()),
            FdKind::Directory { name } => Fd::new('d', name.clone()),
            FdKind::Ipv4 {
                sip,
                dip,
                sport,
                dport,
                l4,
            } => Fd {
                kind: '4',
                name: format!("{}:{sport}->{}:{dport}", ip4(sip), ip4(dip)),
                l4: l4_letter(*l4),
            },
            FdKind::Ipv6 {
                sip,
                dip,
                sport,
                dport,
                l4,
            } => Fd {
                kind: '6',
                name: format!("{}:{sport}->{}:{dport}", ip6(sip), ip6(dip)),
                l4: l4_letter(*l4),
            },
            FdKind::Ipv4Server { ip, port, l4 } => Fd {
                kind: '4',
                name: format!("{}:{port}", ip4(ip)),
                l4: l4_letter(*l4),
            },
            FdKind::Ipv6Server { ip, port, l4 } => Fd {
                kind: '6',
                name: format!("{}:{port}", ip6(ip)),
                l4: l4_letter(*l4),
            },
            FdKind::Unix { name, .. } => Fd::new('u', name.clone()),
            FdKind::Other { code, name } => Fd {
                l4: None,
                kind: match code {
                    7 => 'p',
                    9 => 'e',
                    11 => 's',
                    12 => 'l',
                    13 => 'i',
                    14 => 't',
                    15 => 'n',
                    17 => 'b',
                    _ => 'o',
                },
                name: name.clone(),
            },
        }
    }
}

/// Threads and fds, advanced event by event.
#[derive(Debug, Default)]
pub struct State {
    pub threads: IntMap<Thread>,
    /// fd tables by process id (threads of a process share them).
    pub fds: IntMap<IntMap<Fd>>,
    /// Each thread's last enter event (for exits that lack its parameters), and whether
    /// its exit was already applied.
    enters: IntMap<(EventRecord, bool)>,
    /// Containers by id, from the container metadata events.
    pub containers: HashMap<String, Container>,
}

/// A container as the capture's metadata events describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Container {
    /// A label's value, e.g. the kubelet's `io.kubernetes.pod.name`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Parses libsinsp's container JSON (`{"container": {"id": ..., "name": ...}}`).
    pub fn from_json(json: &str) -> Option<Container> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let c = v.get("container")?;
        let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let labels = c
            .get("labels")
            .and_then(|l| l.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let id = s("id");
        (!id.is_empty()).then(|| Container {
            id,
            name: s("name"),
            image: s("image"),
            labels,
        })
    }
}

impl State {
    /// A new section: everything known so far is replaced.
    pub fn reset(&mut self) {
        *self = State::default();
    }

    pub fn add_threads(&mut self, list: Vec<ThreadInfo>) {
        self.threads.reserve(list.len());
        for t in list {
            self.threads.insert(
                t.tid,
                Thread {
                    tid: t.tid,
                    pid: t.pid,
                    ptid: t.ptid,
                    comm: t.comm,
                    exe: t.exe,
                    args: t.args,
                    cwd: t.cwd,
                    uid: t.uid,
                    gid: t.gid,
                    vpid: t.vpid,
                    cgroups: t.cgroups,
                    container: Default::default(),
                },
            );
        }
    }

    pub fn add_fds(&mut self, tid: i64, list: &[FdInfo]) {
        let pid = self.pid_of(tid);
        let table = self.fds.entry(pid).or_default();
        for f in list {
            table.insert(f.fd, Fd::from_info(f));
        }
    }

    fn pid_of(&self, tid: i64) -> i64 {
        self.threads
            .get(&tid)
            .map(|t| t.pid)
            .filter(|p| *p > 0)
            .unwrap_or(tid)
    }

    pub fn thread(&self, tid: i64) -> Option<&Thread> {
        self.threads.get(&tid)
    }

    pub fn fd(&self, tid: i64, fd: i64) -> Option<&Fd> {
        self.fds.get(&self.pid_of(tid))?.get(&fd)
    }

    /// The enter event matching an exit event of the same thread, if it was the last enter.
    /// The enter event of `exit` while the exit is being applied.
    pub fn enter_of(&self, exit: &EventRecord) -> Option<&EventRecord> {
        self.enters
            .get(&exit.tid())
            .filter(|(e, done)| !done && e.event_type() + 1 == exit.event_type())
            .map(|(e, _)| e)
    }

    /// The enter event that went with `exit`, also after the exit was applied (what an
    /// exit event lacks, e.g. a read's fd, is on its enter).
    pub fn paired_enter(&self, exit: &EventRecord) -> Option<&EventRecord> {
        self.enters
            .get(&exit.tid())
            .filter(|(e, _)| e.raw.len() >= 26 && e.event_type() + 1 == exit.event_type())
            .map(|(e, _)| e)
    }

    /// A parameter of an exit event, falling back to its enter event.
    fn exit_param(&self, rec: &EventRecord, name: &str) -> Option<Vec<u8>> {
        let ps = params(rec);
        if let Some(v) = param(rec, &ps, name) {
            return Some(v.to_vec());
        }
        let enter = self.enter_of(rec)?;
        let eps = params(enter);
        param(enter, &eps, name).map(<[u8]>::to_vec)
    }

    /// Records a container metadata event (new JSON form, or the old id/name/image one).
    fn add_container(&mut self, rec: &EventRecord) {
        let ps = params(rec);
        let c = match param(rec, &ps, "json") {
            Some(j) => Container::from_json(&as_str(j)),
            None => param(rec, &ps, "id").map(|id| Container {
                id: as_str(id),
                name: param(rec, &ps, "name").map(as_str).unwrap_or_default(),
                image: param(rec, &ps, "image").map(as_str).unwrap_or_default(),
                labels: Default::default(),
            }),
        };
        if let Some(c) = c {
            self.containers.insert(c.id.clone(), c);
        }
    }

    /// Updates the state with `rec` (called after the event has been shown, as sysdig does).
    pub fn apply(&mut self, rec: &EventRecord) {
        let code = rec.event_type();
        let tid = rec.tid();
        if schema::event(code).is_some_and(|i| i.name == "container") {
            self.add_container(rec);
            return;
        }
        if schema::is_enter(code) {
            // Tracepoints (switch, page faults, signals) have no exit: they must not take the
            // place of the enter event a syscall's exit will look for.
            let syscall = schema::event(code).is_some_and(|i| i.flags.contains("EC_SYSCALL"));
            if code != 186 && code != 16 && !syscall {
                return;
            }
            if code != 186 && code != 16 {
                // Reuse the thread's buffer: most enters are replaced by the next one.
                let (slot, done) = self.enters.entry(tid).or_insert_with(|| {
                    (
                        EventRecord {
                            cpu: 0,
                            flags: 0,
                            raw: Vec::new(),
                        },
                        false,
                    )
                });
                *done = false;
                slot.cpu = rec.cpu;
                slot.flags = rec.flags;
                slot.raw.clear();
                slot.raw.extend_from_slice(&rec.raw);
            } else {
                // procexit: the thread is gone.
                self.threads.remove(&tid);
                self.enters.remove(&tid);
            }
            return;
        }
        let Some(info) = schema::event(code) else {
            return;
        };
        let name = info.name.as_str();
        let ps = params(rec);
        let res = ps.first().and_then(|p| as_i64(p)).unwrap_or(-1);
        match name {
            "clone" | "fork" | "vfork" | "clone3" => {
                let child = if res == 0 { tid } else { res };
                if child <= 0 {
                    return;
                }
                let get = |n: &str| param(rec, &ps, n);
                // In the child's event the parameters describe the child and ptid names the
                // parent; in the parent's event they describe the parent.
                let parent_tid = if res == 0 {
                    get("ptid").and_then(as_i64).unwrap_or(tid)
                } else {
                    tid
                };
                let parent = self.threads.get(&parent_tid).cloned().unwrap_or_default();
                let thread_flag = schema::flag_table("clone_flags")
                    .iter()
                    .find(|(n, _)| n == "CLONE_THREAD")
                    .map(|(_, v)| *v)
                    .unwrap_or(0);
                let flags = get("flags").and_then(crate::event::as_u64).unwrap_or(0);
                let pid = if res == 0 {
                    get("pid").and_then(as_i64).unwrap_or(child)
                } else if thread_flag != 0 && flags & thread_flag != 0 {
                    parent.pid
                } else {
                    child
                };
                let cgroups = get("cgroups")
                    .map(crate::block::split_nul)
                    .unwrap_or(parent.cgroups.clone());
                let t = Thread {
                    tid: child,
                    pid,
                    ptid: if res == 0 { parent_tid } else { tid },
                    comm: get("comm").map(as_str).unwrap_or(parent.comm.clone()),
                    exe: get("exe").map(as_str).unwrap_or(parent.exe.clone()),
                    args: get("args")
                        .map(crate::block::split_nul)
                        .unwrap_or(parent.args.clone()),
                    cwd: get("cwd").map(as_str).unwrap_or(parent.cwd.clone()),
                    uid: get("uid")
                        .and_then(as_i64)
                        .map(|u| u as u32)
                        .unwrap_or(parent.uid),
                    gid: get("gid")
                        .and_then(as_i64)
                        .map(|u| u as u32)
                        .unwrap_or(parent.gid),
                    vpid: get("vpid").and_then(as_i64).unwrap_or(-1),
                    cgroups,
                    container: Default::default(),
                };
                if res == 0 || !self.threads.contains_key(&child) {
                    self.threads.insert(child, t);
                    // A new process starts with a copy of its parent's fds.
                    let parent_pid = self.pid_of(parent_tid);
                    if pid == child && parent_pid != child {
                        if let Some(f) = self.fds.get(&parent_pid).cloned() {
                            self.fds.entry(child).or_insert(f);
                        }
                    }
                }
            }
            "execve" | "execveat" if res == 0 => {
                let get = |n: &str| param(rec, &ps, n);
                let t = self.threads.entry(tid).or_insert_with(|| Thread {
                    tid,
                    pid: tid,
                    ..Thread::default()
                });
                if let Some(v) = get("comm") {
                    t.comm = as_str(v);
                }
                if let Some(v) = get("exe") {
                    t.exe = as_str(v);
                }
                if let Some(v) = get("args") {
                    t.args = crate::block::split_nul(v);
                }
                if let Some(v) = get("cwd") {
                    t.cwd = as_str(v);
                }
                if let Some(v) = get("cgroups") {
                    t.cgroups = crate::block::split_nul(v);
                    t.container = std::sync::OnceLock::new();
                }
            }
            "open" | "openat" | "openat2" | "creat" | "open_by_handle_at" if res >= 0 => {
                let path = self
                    .exit_param(rec, "name")
                    .or_else(|| self.exit_param(rec, "path"))
                    .map(|p| as_str(&p))
                    .unwrap_or_default();
                let cwd = self
                    .threads
                    .get(&tid)
                    .map(|t| t.cwd.clone())
                    .unwrap_or_default();
                let full = if path.starts_with('/') || cwd.is_empty() {
                    path
                } else {
                    format!("{}/{}", cwd.trim_end_matches('/'), path)
                };
                let pid = self.pid_of(tid);
                self.fds
                    .entry(pid)
                    .or_default()
                    .insert(res, Fd::new('f', full));
            }
            "socket" if res >= 0 => {
                let pid = self.pid_of(tid);
                let domain = self
                    .exit_param(rec, "domain")
                    .and_then(|d| as_i64(&d))
                    .unwrap_or(0);
                let kind = match domain {
                    2 => '4',
                    10 => '6',
                    1 => 'u',
                    16 => 'n',
                    _ => 'o',
                };
                let ty = self
                    .exit_param(rec, "type")
                    .and_then(|d| as_i64(&d))
                    .unwrap_or(0)
                    & 0xf;
                let l4 = match (kind, ty) {
                    ('4' | '6', 1) => Some('t'),
                    ('4' | '6', 2) => Some('u'),
                    ('4' | '6', 3) => Some('r'),
                    _ => None,
                };
                self.fds.entry(pid).or_default().insert(
                    res,
                    Fd {
                        kind,
                        name: String::new(),
                        l4,
                    },
                );
            }
            "connect" | "accept" | "accept4" => {
                let fd = if name == "connect" {
                    self.exit_param(rec, "fd").and_then(|f| as_i64(&f))
                } else if res >= 0 {
                    Some(res)
                } else {
                    None
                };
                // libsinsp names the socket only when the connection is made or under way.
                let connected = res >= 0 || res == -115;
                let tuple = param(rec, &ps, "tuple")
                    .and_then(tuple_name)
                    .filter(|_| connected);
                if let (Some(fd), Some((kind, name))) = (fd, tuple) {
                    let pid = self.pid_of(tid);
                    let table = self.fds.entry(pid).or_default();
                    let l4 = table
                        .get(&fd)
                        .and_then(|f| f.l4)
                        .or(Some('t'))
                        .filter(|_| kind != 'u');
                    table.insert(fd, Fd { kind, name, l4 });
                }
            }
            // libsinsp names an unconnected UDP socket after its first datagram's tuple (an
            // unspecified source address reads as the destination's, as it shows them).
            "sendto" | "sendmsg" if res >= 0 => {
                let fd = self.exit_param(rec, "fd").and_then(|f| as_i64(&f));
                let tuple = self.exit_param(rec, "tuple");
                if let (Some(fd), Some(t)) = (fd, tuple) {
                    let pid = self.pid_of(tid);
                    let named = self
                        .fds
                        .get(&pid)
                        .and_then(|t| t.get(&fd))
                        .map(|f| f.name.is_empty());
                    if named == Some(true) {
                        if let Some((kind, name)) = tuple_name(&fill_source(&t)) {
                            if let Some(f) = self.fds.get_mut(&pid).and_then(|t| t.get_mut(&fd)) {
                                if f.kind == kind {
                                    f.name = name;
                                }
                            }
                        }
                    }
                }
            }
            "bind" if res == 0 => {
                let fd = self.exit_param(rec, "fd").and_then(|f| as_i64(&f));
                let addr = self.exit_param(rec, "addr").and_then(|a| addr_name(&a));
                if let (Some(fd), Some(addr)) = (fd, addr) {
                    let pid = self.pid_of(tid);
                    if let Some(f) = self.fds.entry(pid).or_default().get_mut(&fd) {
                        f.name = addr;
                    }
                }
            }
            "pipe" | "pipe2" if res >= 0 => {
                let pid = self.pid_of(tid);
                for n in ["fd1", "fd2"] {
                    if let Some(fd) = param(rec, &ps, n).and_then(as_i64) {
                        self.fds
                            .entry(pid)
                            .or_default()
                            .insert(fd, Fd::new('p', String::new()));
                    }
                }
            }
            "eventfd" | "eventfd2" | "signalfd" | "signalfd4" | "timerfd_create"
            | "inotify_init" | "inotify_init1" | "epoll_create" | "epoll_create1" | "bpf"
                if res >= 0 =>
            {
                let kind = match name {
                    "eventfd" | "eventfd2" => 'e',
                    "signalfd" | "signalfd4" => 's',
                    "timerfd_create" => 't',
                    "inotify_init" | "inotify_init1" => 'i',
                    "bpf" => 'b',
                    _ => 'l',
                };
                let pid = self.pid_of(tid);
                self.fds
                    .entry(pid)
                    .or_default()
                    .insert(res, Fd::new(kind, String::new()));
            }
            "dup" | "dup2" | "dup3" if res >= 0 => {
                let old = self
                    .exit_param(rec, "oldfd")
                    .or_else(|| self.exit_param(rec, "fd"))
                    .and_then(|f| as_i64(&f));
                let pid = self.pid_of(tid);
                if let Some(f) = old.and_then(|o| self.fds.get(&pid)?.get(&o).cloned()) {
                    self.fds.entry(pid).or_default().insert(res, f);
                }
            }
            "close" if res >= 0 => {
                if let Some(fd) = self.exit_param(rec, "fd").and_then(|f| as_i64(&f)) {
                    let pid = self.pid_of(tid);
                    if let Some(t) = self.fds.get_mut(&pid) {
                        t.remove(&fd);
                    }
                }
            }
            _ => {}
        }
        if let Some((_, done)) = self.enters.get_mut(&tid) {
            *done = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clone_exit(tid: i64, res: i64, pid: i64, ptid: i64) -> EventRecord {
        // CLONE_20_X (223): res, exe, args, tid, pid, ptid, then the rest left out.
        let params: Vec<Vec<u8>> = vec![
            res.to_le_bytes().to_vec(),
            b"sh\0".to_vec(),
            Vec::new(),
            tid.to_le_bytes().to_vec(),
            pid.to_le_bytes().to_vec(),
            ptid.to_le_bytes().to_vec(),
        ];
        let mut raw = Vec::new();
        let len = 26 + 2 * params.len() + params.iter().map(Vec::len).sum::<usize>();
        raw.extend_from_slice(&1u64.to_le_bytes());
        raw.extend_from_slice(&tid.to_le_bytes());
        raw.extend_from_slice(&(len as u32).to_le_bytes());
        raw.extend_from_slice(&223u16.to_le_bytes());
        raw.extend_from_slice(&(params.len() as u32).to_le_bytes());
        for p in &params {
            raw.extend_from_slice(&(p.len() as u16).to_le_bytes());
        }
        for p in &params {
            raw.extend_from_slice(p);
        }
        EventRecord {
            cpu: 0,
            flags: 0,
            raw,
        }
    }

    #[test]
    fn forked_children_inherit_the_fd_table() {
        let mut s = State::default();
        s.add_threads(vec![ThreadInfo {
            tid: 10,
            pid: 10,
            comm: "bash".into(),
            ..ThreadInfo::default()
        }]);
        s.add_fds(
            10,
            &[FdInfo {
                fd: 3,
                ino: 0,
                kind: FdKind::File {
                    name: "/etc/hosts".into(),
                    flags: 0,
                },
            }],
        );
        // The child's side of a fork: tid 11, pid 11, parent 10.
        s.apply(&clone_exit(11, 0, 11, 10));
        assert_eq!(s.thread(11).unwrap().pid, 11);
        assert_eq!(s.thread(11).unwrap().exe, "sh");
        assert_eq!(
            s.thread(11).unwrap().comm,
            "bash",
            "no comm parameter: the parent's name"
        );
        assert_eq!(s.fd(11, 3).unwrap().name, "/etc/hosts");
    }

    #[test]
    fn tuples_render_like_sysdig() {
        let mut t = vec![2u8, 10, 0, 0, 1];
        t.extend(40000u16.to_le_bytes());
        t.extend([8, 8, 8, 8]);
        t.extend(53u16.to_le_bytes());
        assert_eq!(
            tuple_name(&t),
            Some(('4', "10.0.0.1:40000->8.8.8.8:53".to_string()))
        );
        assert_eq!(tuple_name(&[2, 1]), None);
    }
}
