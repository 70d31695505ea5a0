//! How each event moves the state: clone, execve and procexit change the thread table;
//! open/openat/openat2/creat, socket, connect, accept, pipe, dup and close change the fd
//! tables; container metadata events add containers.

use super::fds::{addr_name, fill_source, tuple_name, Fd};
use super::threads::Thread;
use super::State;
use crate::block::EventRecord;
use crate::event::{as_i64, as_str, param, params};
use crate::schema;

impl State {
    /// Updates the state with `rec` (called after the event has been shown, as sysdig does).
    pub fn apply(&mut self, rec: &EventRecord) {
        let code = rec.event_type();
        let tid = rec.tid();
        let Some(info) = schema::event(code) else {
            return;
        };
        if info.name == "container" {
            self.add_container(rec);
            return;
        }
        if schema::is_enter(code) {
            // Tracepoints (switch, page faults, signals) have no exit: they must not take the
            // place of the enter event a syscall's exit will look for.
            let syscall = info.is(schema::Mark::Syscall);
            if code != 186 && code != 16 && !syscall {
                return;
            }
            if code == CONNECT_E {
                self.connect_enter(rec, tid);
            }
            if code != 186 && code != 16 {
                self.enters.set(rec);
            } else {
                // procexit: the thread is gone.
                self.generation += 1;
                self.threads.remove(&tid);
                self.enters.remove(tid);
            }
            return;
        }
        let change = change_of_code(code);
        if change == Change::None {
            // Most events of a busy capture (reads, writes) change nothing here.
            self.enters.close(tid);
            return;
        }
        let ps = params(rec);
        let res = ps.first().and_then(|p| as_i64(p)).unwrap_or(-1);
        match change {
            Change::Clone => {
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
                    self.generation += 1;
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
            Change::Exec if res == 0 => {
                let get = |n: &str| param(rec, &ps, n);
                self.generation += 1;
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
            Change::Open if res >= 0 => {
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
                // As libsinsp: a directory opened with O_DIRECTORY is `<d>`, named without
                // its trailing slash.
                let dir = self
                    .exit_param(rec, "flags")
                    .and_then(|f| crate::event::as_u64(&f))
                    .is_some_and(|f| f & o_directory() != 0);
                let fd = if dir {
                    let name = full.trim_end_matches('/');
                    Fd::new('d', if name.is_empty() { "/" } else { name }.to_string())
                } else {
                    Fd::new('f', full)
                };
                let pid = self.pid_of(tid);
                self.fds.entry(pid).or_default().insert(res, fd);
            }
            Change::Socket if res >= 0 => {
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
            Change::Connect | Change::Accept => {
                let fd = if change == Change::Connect {
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
            Change::Send if res >= 0 => {
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
            Change::Bind if res == 0 => {
                let fd = self.exit_param(rec, "fd").and_then(|f| as_i64(&f));
                let addr = self.exit_param(rec, "addr").and_then(|a| addr_name(&a));
                if let (Some(fd), Some(addr)) = (fd, addr) {
                    let pid = self.pid_of(tid);
                    if let Some(f) = self.fds.entry(pid).or_default().get_mut(&fd) {
                        f.name = addr;
                    }
                }
            }
            Change::Pipe if res >= 0 => {
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
            Change::MakesFd(kind) if res >= 0 => {
                let pid = self.pid_of(tid);
                self.fds
                    .entry(pid)
                    .or_default()
                    .insert(res, Fd::new(kind, String::new()));
            }
            Change::Dup if res >= 0 => {
                let old = self
                    .exit_param(rec, "oldfd")
                    .or_else(|| self.exit_param(rec, "fd"))
                    .and_then(|f| as_i64(&f));
                let pid = self.pid_of(tid);
                if let Some(f) = old.and_then(|o| self.fds.get(&pid)?.get(&o).cloned()) {
                    self.fds.entry(pid).or_default().insert(res, f);
                }
            }
            Change::Close if res >= 0 => {
                if let Some(fd) = self.exit_param(rec, "fd").and_then(|f| as_i64(&f)) {
                    let pid = self.pid_of(tid);
                    if let Some(t) = self.fds.get_mut(&pid) {
                        t.remove(&fd);
                    }
                }
            }
            _ => {}
        }
        self.enters.close(tid);
    }
}

/// How an exit event changes the threads and fds (decided once per event type, not per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    None,
    Clone,
    Exec,
    Open,
    Socket,
    Connect,
    Accept,
    Send,
    Bind,
    Pipe,
    /// A call making an fd of this kind (`e` eventfd, `s` signalfd, ...).
    MakesFd(char),
    Dup,
    Close,
}

fn change_of(name: &str) -> Change {
    match name {
        "clone" | "fork" | "vfork" | "clone3" => Change::Clone,
        "execve" | "execveat" => Change::Exec,
        "open" | "openat" | "openat2" | "creat" | "open_by_handle_at" => Change::Open,
        "socket" => Change::Socket,
        "connect" => Change::Connect,
        "accept" | "accept4" => Change::Accept,
        "sendto" | "sendmsg" => Change::Send,
        "bind" => Change::Bind,
        "pipe" | "pipe2" => Change::Pipe,
        "eventfd" | "eventfd2" => Change::MakesFd('e'),
        "signalfd" | "signalfd4" => Change::MakesFd('s'),
        "timerfd_create" => Change::MakesFd('t'),
        "inotify_init" | "inotify_init1" => Change::MakesFd('i'),
        "bpf" => Change::MakesFd('b'),
        "epoll_create" | "epoll_create1" => Change::MakesFd('l'),
        "dup" | "dup2" | "dup3" => Change::Dup,
        "close" => Change::Close,
        _ => Change::None,
    }
}

/// connect's enter event.
const CONNECT_E: u16 = 22;

/// The scap flag bit of O_DIRECTORY (looked up once in the flag table).
fn o_directory() -> u64 {
    static BIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BIT.get_or_init(|| {
        schema::flag_table("file_flags")
            .iter()
            .find(|(n, _)| n == "O_DIRECTORY")
            .map_or(0, |(_, v)| *v)
    })
}

impl State {
    /// A unix socket takes the path it connects to as its name when the call begins, as
    /// libsinsp names it: a failed connect (no server at the path) still shows where it
    /// tried, on the call and on what follows.
    fn connect_enter(&mut self, rec: &EventRecord, tid: i64) {
        let ps = params(rec);
        let (Some(fd), Some(addr)) = (
            param(rec, &ps, "fd").and_then(as_i64),
            param(rec, &ps, "addr"),
        ) else {
            return;
        };
        if addr.first() != Some(&1) {
            return;
        }
        let Some(path) = addr_name(addr).filter(|p| !p.is_empty()) else {
            return;
        };
        let pid = self.pid_of(tid);
        if let Some(f) = self.fds.get_mut(&pid).and_then(|t| t.get_mut(&fd)) {
            if f.kind == 'u' {
                f.name = path;
            }
        }
    }
}

fn change_of_code(code: u16) -> Change {
    static BY_CODE: std::sync::OnceLock<Vec<Change>> = std::sync::OnceLock::new();
    let table = BY_CODE.get_or_init(|| {
        (0..schema::event_count())
            .map(|c| {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                schema::event(c)
                    .filter(|_| !schema::is_enter(c))
                    .map_or(Change::None, |i| change_of(&i.name))
            })
            .collect()
    });
    table
        .get(usize::from(code))
        .copied()
        .unwrap_or(Change::None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{FdInfo, FdKind, ThreadInfo};

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
}
