//! From raw probe records to standard scap events: each system call the probe saw return
//! becomes the entry and exit events sysdig and Falco expect, with the parameters of the
//! schema in order (what the probe did not see is an empty or zero parameter of the right
//! size). The probe has no entry hook, so an entry event carries its call's return time.
//! A small process table keeps what clone and execve events must repeat (executable,
//! arguments, command name).

use std::collections::HashMap;

/// scap's NOTIFICATION_E: what the schema has no event for (an OOM kill, a signal's
/// sender, the runtime's word on a kill).
pub const NOTIFICATION: u16 = 280;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crashscope_scap::block::EventRecord;
use crashscope_scap::build::{sockaddr, socktuple};
use crashscope_scap::notes;

use crate::calls;
use crate::param::{int, Events, Named, Val, Vals};
use crate::record::{Kind, Record};
use crate::syscalls::{self as sc, clone_flags, codes, open_flags, open_mode};

/// What clone and execve events repeat about a process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proc {
    pub exe: String,
    pub args: Vec<String>,
    pub comm: String,
    pub cwd: String,
}

/// Turns records into events; keeps the process table.
#[derive(Debug, Default)]
pub struct Converter {
    /// Epoch nanoseconds at boot: record times are since boot.
    pub boot_epoch_ns: u64,
    pub procs: HashMap<u32, Proc>,
    /// Cgroups written into clone and execve events (`subsys=/path`), e.g. the container's.
    pub cgroups: Vec<String>,
    /// Bytes of payload kept per call (0: all the probe read). The probe reads up to
    /// [`DNS_SNAPLEN`] of socket calls; beyond `snaplen` that is kept for port 53 only.
    pub snaplen: usize,
    /// The peer port of connected sockets, by (process, fd).
    peers: HashMap<(u32, i64), u16>,
}

/// Payload kept of DNS traffic (port 53) whatever the snapshot length, as sysdig does:
/// a resolver's question and answer explain a "host not found".
pub const DNS_SNAPLEN: usize = 512;

fn port(sockaddr: Option<&[u8]>) -> Option<u16> {
    match user_addr(sockaddr?)? {
        Addr::Inet(a) => Some(a.port()),
        Addr::Unix(_) => None,
    }
}

/// Adds event `code` of thread `tid` with `values` by parameter name.
fn event(out: &mut Events, ts: u64, tid: u32, code: u16, values: &[Named<'_>]) {
    out.push(ts, i64::from(tid), code, values);
}

/// A string parameter.
fn string(s: &str) -> Val<'_> {
    Val::Str(s)
}

/// A path snapshot of the record, or an empty parameter when the probe could not read it.
fn path<'a>(r: &Record<'a>, i: usize) -> Val<'a> {
    r.text(i).map_or(Val::Bytes(&[]), Val::Str)
}

/// A user `struct sockaddr` in scap's SOCKADDR encoding.
pub fn addr(user: &[u8]) -> Option<Vec<u8>> {
    Some(match user_addr(user)? {
        Addr::Inet(a) => sockaddr(a),
        Addr::Unix(path) => {
            let mut v = vec![1u8];
            v.extend_from_slice(path.as_bytes());
            v.push(0);
            v
        }
    })
}

enum Addr {
    Inet(SocketAddr),
    Unix(String),
}

fn user_addr(b: &[u8]) -> Option<Addr> {
    let family = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
    let port = || Some(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
    match family {
        2 => {
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(Addr::Inet(SocketAddr::new(
                Ipv4Addr::from(ip).into(),
                port()?,
            )))
        }
        10 => {
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some(Addr::Inet(SocketAddr::new(
                Ipv6Addr::from(ip).into(),
                port()?,
            )))
        }
        1 => {
            let p = b.get(2..)?;
            let end = p.iter().position(|c| *c == 0).unwrap_or(p.len());
            Some(Addr::Unix(String::from_utf8_lossy(&p[..end]).into_owned()))
        }
        _ => None,
    }
}

/// A tuple with the peer `remote` and an unknown local end (the probe reads addresses from
/// the call's arguments, not from the kernel's socket).
fn tuple(remote: &[u8], outbound: bool) -> Vec<u8> {
    match user_addr(remote) {
        Some(Addr::Inet(r)) => {
            let unspecified: IpAddr = match r.ip() {
                IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
                IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
            };
            let local = SocketAddr::new(unspecified, 0);
            if outbound {
                socktuple(local, r)
            } else {
                socktuple(r, local)
            }
        }
        Some(Addr::Unix(path)) => {
            let mut v = vec![1u8];
            v.extend_from_slice(&[0; 16]);
            v.extend_from_slice(path.as_bytes());
            v.push(0);
            v
        }
        None => Vec::new(),
    }
}

/// A program's argv as the probe reads it from the new process's memory: NUL-separated.
pub fn argv(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|c| *c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The argv and environment a successful exec's record carries: both in its first
/// snapshot, argv's length in `args[5]` (the environment is there only when recorded).
pub fn exec_strings(r: &Record) -> (Vec<String>, Vec<String>) {
    let all = r.slots[0].unwrap_or(&[]);
    let split = usize::try_from(r.args[5])
        .unwrap_or(usize::MAX)
        .min(all.len());
    (argv(&all[..split]), argv(&all[split..]))
}

/// An encoded value, or an empty parameter when there was nothing to encode.
fn owned(v: Option<Vec<u8>>) -> Val<'static> {
    v.map_or(Val::Bytes(&[]), Val::Owned)
}

fn nul_joined(items: &[String]) -> Vec<u8> {
    let mut v = Vec::new();
    for a in items {
        v.extend_from_slice(a.as_bytes());
        v.push(0);
    }
    v
}

/// A process's working directory as scap writes it (with a trailing slash).
pub fn cwd_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/cwd"))
        .map(|p| format!("{}/", p.display()).replace("//", "/"))
        .unwrap_or_default()
}

impl Converter {
    pub fn new(boot_epoch_ns: u64) -> Self {
        Converter {
            boot_epoch_ns,
            ..Converter::default()
        }
    }

    /// The events of one record (none for records the schema has no place for), collected;
    /// the recorder uses [`Converter::convert_into`], which allocates nothing.
    pub fn convert(&mut self, r: &Record) -> Vec<EventRecord> {
        let mut out = Events::default();
        self.convert_into(r, &mut out);
        out.iter()
            .map(|raw| EventRecord {
                cpu: 0,
                flags: 0,
                raw: raw.to_vec(),
            })
            .collect()
    }

    /// Replaces `out`'s events with those of one record.
    pub fn convert_into(&mut self, r: &Record, out: &mut Events) {
        out.clear();
        let ts = self.boot_epoch_ns + r.boot_ns;
        match r.kind {
            Kind::ProcExit => {
                let code = r.args[0] as i64;
                // exit and exit_group never return: their entry is all there is of them.
                let in_call = r.args[1] as i64;
                if in_call == i64::from(sc::EXIT) || in_call == i64::from(sc::EXIT_GROUP) {
                    let call = Record {
                        kind: Kind::Call,
                        nr: in_call as u16,
                        args: [r.args[2], 0, 0, 0, 0, 0],
                        slots: [None, None],
                        ..*r
                    };
                    Self::generic(out, ts, &call, true);
                }
                event(
                    out,
                    ts,
                    r.tid,
                    186,
                    &[
                        ("status", int::<8>(code)),
                        ("ret", int::<8>((code >> 8) & 0xff)),
                        ("sig", int::<1>(code & 0x7f)),
                        ("core", int::<1>(i64::from(code & 0x80 != 0))),
                    ],
                );
                if r.tid == r.pid {
                    self.procs.remove(&r.pid);
                }
            }
            Kind::Signal => {
                let sender = r.args[1] as i64;
                event(
                    out,
                    ts,
                    r.tid,
                    232,
                    &[
                        ("spid", int::<8>(sender)),
                        ("dpid", int::<8>(i64::from(r.tid))),
                        ("sig", int::<1>(r.args[0] as i64)),
                    ],
                );
                // A sender from outside the recorded processes (the kubelet, a runtime, an
                // operator's kill) is named in a note, since the capture has no record of it.
                if sender > 0
                    && sender != i64::from(r.pid)
                    && !self.procs.contains_key(&(sender as u32))
                {
                    let mut name = [0u8; 16];
                    name[..8].copy_from_slice(&r.args[2].to_ne_bytes());
                    name[8..].copy_from_slice(&r.args[3].to_ne_bytes());
                    let end = name.iter().position(|b| *b == 0).unwrap_or(16);
                    let comm = String::from_utf8_lossy(&name[..end]);
                    let desc = format!(
                        "signal {} to pid {} ({}) from pid {sender} ({comm})",
                        r.args[4], r.pid, r.comm
                    );
                    event(
                        out,
                        ts,
                        r.tid,
                        NOTIFICATION,
                        &[
                            ("id", string(notes::SIGNAL_SENDER)),
                            ("desc", string(&desc)),
                        ],
                    );
                }
            }
            // The scap schema has no OOM event; sysdig shows notifications (`evt.type=notification`).
            Kind::Oom => {
                let desc = format!(
                    "out of memory: the kernel's OOM killer chose process {} ({}); process {} needed the memory",
                    r.pid, r.comm, r.args[0]
                );
                event(
                    out,
                    ts,
                    r.tid,
                    NOTIFICATION,
                    &[("id", string(notes::OOM_KILL)), ("desc", string(&desc))],
                );
            }
            // A new thread's side of clone starts in the child: it has no entry.
            Kind::Call if r.ret == 0 && sc::is_clone(r.nr) => self.exit(out, ts, r),
            Kind::Call => {
                // Without the entry hook the entry is written at the return time.
                let began = match r.entered_ns {
                    0 => ts,
                    b => (self.boot_epoch_ns + b).min(ts),
                };
                self.enter(out, began, r);
                self.exit(out, ts, r);
            }
        }
    }

    fn generic(out: &mut Events, ts: u64, r: &Record, enter: bool) {
        let id = int::<2>(i64::from(sc::generic_id(r.nr)));
        if enter {
            let native = int::<2>(i64::from(r.nr));
            event(out, ts, r.tid, 0, &[("id", id), ("native_id", native)]);
        } else {
            event(out, ts, r.tid, 1, &[("id", id)]);
        }
    }

    fn enter(&self, out: &mut Events, ts: u64, r: &Record) {
        let Some((code, _)) = codes(r.nr) else {
            return Self::generic(out, ts, r, true);
        };
        let a = &r.args;
        let fd = |i: usize| int::<8>(i64::from(a[i] as i32));
        let u32_ = |i: usize| int::<4>(a[i] as u32 as i64);
        let path = |i: usize| path(r, i);
        let values: Vals = match r.nr {
            sc::READ | sc::WRITE => [("fd", fd(0)), ("size", u32_(2))].into(),
            sc::PREAD64 | sc::PWRITE64 => [
                ("fd", fd(0)),
                ("size", u32_(2)),
                ("pos", int::<8>(a[3] as i64)),
            ]
            .into(),
            sc::OPEN => [
                ("name", path(0)),
                ("flags", int::<4>(open_flags(a[1]).into())),
                ("mode", int::<4>(open_mode(a[1], a[2]).into())),
            ]
            .into(),
            sc::CREAT => [("name", path(0)), ("mode", u32_(1))].into(),
            sc::OPENAT => [
                ("dirfd", fd(0)),
                ("name", path(0)),
                ("flags", int::<4>(open_flags(a[2]).into())),
                ("mode", int::<4>(open_mode(a[2], a[3]).into())),
            ]
            .into(),
            sc::OPENAT2 => Self::openat2(r, false),
            sc::CLOSE | sc::BIND | sc::RECVMSG | sc::READV | sc::WRITEV => [("fd", fd(0))].into(),
            sc::SOCKET => [("domain", u32_(0)), ("type", u32_(1)), ("proto", u32_(2))].into(),
            sc::CONNECT => [("fd", fd(0)), ("addr", owned(r.slots[0].and_then(addr)))].into(),
            sc::LISTEN => [("fd", fd(0)), ("backlog", u32_(1))].into(),
            sc::SENDTO => [
                ("fd", fd(0)),
                ("size", u32_(2)),
                ("tuple", owned(r.slots[1].map(|s| tuple(s, true)))),
            ]
            .into(),
            sc::SENDMSG => [
                ("fd", fd(0)),
                ("tuple", owned(r.slots[1].map(|s| tuple(s, true)))),
            ]
            .into(),
            sc::RECVFROM => [("fd", fd(0)), ("size", u32_(2))].into(),
            sc::SHUTDOWN => [("fd", fd(0)), ("how", int::<1>(a[1] as i64))].into(),
            sc::KILL => [
                ("pid", int::<8>(a[0] as i32 as i64)),
                ("sig", int::<1>(a[1] as i64)),
            ]
            .into(),
            sc::TGKILL => [
                ("pid", int::<8>(a[0] as i32 as i64)),
                ("tid", int::<8>(a[1] as i32 as i64)),
                ("sig", int::<1>(a[2] as i64)),
            ]
            .into(),
            sc::ACCEPT4 => [("flags", u32_(3))].into(),
            sc::GETSOCKOPT => Vals::default(),
            sc::MKDIR | sc::ACCESS => [("mode", u32_(1))].into(),
            sc::EXECVE => [("filename", path(1))].into(),
            sc::EXECVEAT => [("dirfd", fd(0)), ("pathname", path(1)), ("flags", u32_(4))].into(),
            _ => calls::enter(r),
        };
        event(out, ts, r.tid, code, &values);
    }

    fn openat2<'a>(r: &Record<'a>, exit: bool) -> Vals<'a> {
        // struct open_how { u64 flags; u64 mode; u64 resolve; }
        let how = r.slots[1].unwrap_or(&[]);
        let word = |i: usize| {
            how.get(8 * i..8 * i + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0)
        };
        let mut v = Vals::default();
        if exit {
            v.push(("fd", int::<8>(r.ret)));
        }
        v.push(("dirfd", int::<8>(i64::from(r.args[0] as i32))));
        v.push(("name", path(r, 0)));
        v.push(("flags", int::<4>(open_flags(word(0)).into())));
        v.push(("mode", int::<4>(open_mode(word(0), word(1)).into())));
        v.push(("resolve", int::<4>(word(2) as u32 as i64)));
        v
    }

    /// How much of a call's payload to keep: `snaplen`, or [`DNS_SNAPLEN`] when a socket
    /// call talks to port 53. Keeps the connected sockets' peers up to date.
    fn payload_limit(&mut self, r: &Record) -> usize {
        let key = |i: usize| (r.pid, i64::from(r.args[i] as i32));
        match r.nr {
            // Connected (or connecting: EINPROGRESS) sockets remember their peer's port.
            sc::CONNECT if r.ret == 0 || r.ret == -115 => {
                if let Some(p) = port(r.slots[0]) {
                    self.peers.insert(key(0), p);
                }
            }
            sc::CLOSE => {
                self.peers.remove(&key(0));
            }
            _ => {}
        }
        if self.snaplen == 0 {
            return usize::MAX;
        }
        let named = match r.nr {
            sc::SENDTO | sc::SENDMSG | sc::RECVFROM | sc::RECVMSG | sc::SENDMMSG => {
                port(r.slots[1])
            }
            _ => return self.snaplen,
        };
        let peer = named.or_else(|| self.peers.get(&key(0)).copied());
        if peer == Some(53) {
            self.snaplen.max(DNS_SNAPLEN)
        } else {
            self.snaplen
        }
    }

    fn exit(&mut self, out: &mut Events, ts: u64, r: &Record) {
        let Some((_, code)) = codes(r.nr) else {
            return Self::generic(out, ts, r, false);
        };
        let a = &r.args;
        let keep = self.payload_limit(r);
        let res = || int::<8>(r.ret);
        let fd = |i: usize| int::<8>(i64::from(a[i] as i32));
        let u32_ = |i: usize| int::<4>(a[i] as u32 as i64);
        let path = |i: usize| path(r, i);
        let bytes = |i: usize| {
            let d = r.slots[i].unwrap_or(&[]);
            &d[..d.len().min(keep)]
        };
        let data = |i: usize| Val::Bytes(bytes(i));
        let values: Vals = match r.nr {
            sc::READ | sc::WRITE => [
                ("res", res()),
                ("data", data(0)),
                ("fd", fd(0)),
                ("size", u32_(2)),
            ]
            .into(),
            sc::PREAD64 | sc::PWRITE64 => [
                ("res", res()),
                ("data", data(0)),
                ("fd", fd(0)),
                ("size", u32_(2)),
                ("pos", int::<8>(a[3] as i64)),
            ]
            .into(),
            sc::OPEN => [
                ("fd", res()),
                ("name", path(0)),
                ("flags", int::<4>(open_flags(a[1]).into())),
                ("mode", int::<4>(open_mode(a[1], a[2]).into())),
            ]
            .into(),
            sc::CREAT => [("fd", res()), ("name", path(0)), ("mode", u32_(1))].into(),
            sc::OPENAT => [
                ("fd", res()),
                ("dirfd", fd(0)),
                ("name", path(0)),
                ("flags", int::<4>(open_flags(a[2]).into())),
                ("mode", int::<4>(open_mode(a[2], a[3]).into())),
            ]
            .into(),
            sc::OPENAT2 => Self::openat2(r, true),
            sc::SOCKET => [
                ("fd", res()),
                ("domain", u32_(0)),
                ("type", u32_(1)),
                ("proto", u32_(2)),
            ]
            .into(),
            sc::BIND => [
                ("res", res()),
                ("addr", owned(r.slots[0].and_then(addr))),
                ("fd", fd(0)),
            ]
            .into(),
            sc::CONNECT => [
                ("res", res()),
                ("tuple", owned(r.slots[0].map(|s| tuple(s, true)))),
                ("fd", fd(0)),
            ]
            .into(),
            sc::LISTEN => [("res", res()), ("fd", fd(0)), ("backlog", u32_(1))].into(),
            sc::GETSOCKOPT => {
                let (level, name, val) = sockopt(a[1], a[2], r.slots[0].unwrap_or(&[]));
                [
                    ("res", res()),
                    ("fd", fd(0)),
                    ("level", int::<1>(level)),
                    ("optname", int::<1>(name)),
                    ("val", Val::Owned(val)),
                    ("optlen", int::<4>(r.slots[0].map_or(0, |v| v.len() as i64))),
                ]
                .into()
            }
            sc::ACCEPT | sc::ACCEPT4 => [
                ("fd", res()),
                ("tuple", owned(r.slots[0].map(|s| tuple(s, false)))),
            ]
            .into(),
            sc::SENDTO | sc::SENDMSG | sc::WRITEV => [("res", res()), ("data", data(0))].into(),
            sc::SENDMMSG => [
                ("res", res()),
                ("fd", fd(0)),
                ("size", int::<4>(bytes(0).len() as i64)),
                ("data", data(0)),
                ("tuple", owned(r.slots[1].map(|s| tuple(s, true)))),
            ]
            .into(),
            sc::RECVFROM => [
                ("res", res()),
                ("data", data(0)),
                ("tuple", owned(r.slots[1].map(|s| tuple(s, false)))),
            ]
            .into(),
            sc::RECVMSG => [
                ("res", res()),
                ("size", int::<4>(r.ret.max(0))),
                ("data", data(0)),
                ("tuple", owned(r.slots[1].map(|s| tuple(s, false)))),
            ]
            .into(),
            sc::READV => [
                ("res", res()),
                ("size", int::<4>(r.ret.max(0))),
                ("data", data(0)),
            ]
            .into(),
            sc::STAT | sc::LSTAT | sc::UNLINK | sc::MKDIR => {
                [("res", res()), ("path", path(0))].into()
            }
            sc::ACCESS => [("res", res()), ("name", path(0))].into(),
            sc::UNLINKAT => [
                ("res", res()),
                ("dirfd", fd(0)),
                ("name", path(0)),
                ("flags", u32_(2)),
            ]
            .into(),
            sc::MKDIRAT => [
                ("res", res()),
                ("dirfd", fd(0)),
                ("path", path(0)),
                ("mode", u32_(2)),
            ]
            .into(),
            sc::RENAME => [("res", res()), ("oldpath", path(0)), ("newpath", path(1))].into(),
            sc::RENAMEAT2 => [
                ("res", res()),
                ("olddirfd", fd(0)),
                ("oldpath", path(0)),
                ("newdirfd", fd(2)),
                ("newpath", path(1)),
                ("flags", u32_(4)),
            ]
            .into(),
            sc::CLONE | sc::FORK | sc::VFORK | sc::CLONE3 => {
                return self.clone_exit(out, ts, r, code)
            }
            sc::EXECVE | sc::EXECVEAT => return self.exec_exit(out, ts, r, code),
            _ => calls::exit(r),
        };
        event(out, ts, r.tid, code, &values);
    }

    fn proc_values<'a>(&'a self, r: &Record<'a>, p: &'a Proc) -> Vec<Named<'a>> {
        vec![
            ("exe", string(&p.exe)),
            ("args", Val::Owned(nul_joined(&p.args))),
            ("tid", int::<8>(i64::from(r.tid))),
            ("pid", int::<8>(i64::from(r.pid))),
            ("ptid", int::<8>(i64::from(r.ppid))),
            ("cwd", string(&p.cwd)),
            ("comm", string(r.comm)),
            ("cgroups", Val::Owned(nul_joined(&self.cgroups))),
            ("vtid", int::<8>(i64::from(r.tid))),
            ("vpid", int::<8>(i64::from(r.pid))),
        ]
    }

    fn clone_exit(&mut self, out: &mut Events, ts: u64, r: &Record, code: u16) {
        let flags = match r.nr {
            sc::CLONE => clone_flags(r.args[0]),
            // clone3's flags are the first word of struct clone_args.
            sc::CLONE3 => r.slots[0]
                .and_then(|s| s.get(..8))
                .and_then(|b| b.try_into().ok())
                .map(|b| clone_flags(u64::from_le_bytes(b)))
                .unwrap_or(0),
            sc::VFORK => clone_flags(0x4000 | 0x100),
            _ => 0,
        };
        let thread = flags & 8192 != 0;
        let parent = self.procs.get(&r.pid).cloned().unwrap_or_else(|| Proc {
            comm: r.comm.to_string(),
            cwd: cwd_of(r.pid),
            ..Proc::default()
        });
        if r.ret > 0 && !thread {
            // In the parent: the child starts as a copy (its own exit may come first).
            self.procs
                .entry(r.ret as u32)
                .or_insert_with(|| parent.clone());
        }
        if r.ret == 0 && !self.procs.contains_key(&r.pid) {
            let from = self.procs.get(&r.ppid).cloned().unwrap_or(parent.clone());
            self.procs.insert(r.pid, from);
        }
        let p = self.procs.get(&r.pid).cloned().unwrap_or(parent);
        let mut values = self.proc_values(r, &p);
        values.push(("res", int::<8>(r.ret)));
        values.push(("flags", int::<4>(flags.into())));
        event(out, ts, r.tid, code, &values);
    }

    fn exec_exit(&mut self, out: &mut Events, ts: u64, r: &Record, code: u16) {
        let filename = r.text(1).unwrap_or("").to_string();
        let mut env = Vec::new();
        if r.ret == 0 {
            let (argv, environment) = exec_strings(r);
            env = environment;
            let p = Proc {
                exe: argv.first().cloned().unwrap_or_else(|| filename.clone()),
                args: argv.iter().skip(1).cloned().collect(),
                comm: r.comm.to_string(),
                cwd: self
                    .procs
                    .get(&r.pid)
                    .map(|p| p.cwd.clone())
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| cwd_of(r.pid)),
            };
            self.procs.insert(r.pid, p);
        }
        let p = self.procs.get(&r.pid).cloned().unwrap_or_else(|| Proc {
            exe: filename,
            comm: r.comm.to_string(),
            ..Proc::default()
        });
        let mut values = self.proc_values(r, &p);
        values.push(("res", int::<8>(r.ret)));
        values.push(("env", Val::Owned(nul_joined(&env))));
        event(out, ts, r.tid, code, &values);
    }
}

/// A getsockopt's level, option and value in scap's encoding (`sockopt_levels`,
/// `sockopt_options`, and the dynamic `val`: a type byte, then the value). SO_ERROR's value is
/// the pending error as a negative errno, as libscap writes it, so sysdig shows
/// `val=-111(ECONNREFUSED)`; other options keep their bytes.
fn sockopt(level: u64, name: u64, value: &[u8]) -> (i64, i64, Vec<u8>) {
    const SOL_SOCKET: u64 = 1;
    const SOL_TCP: u64 = 6;
    const SO_ERROR: u64 = 4;
    let ppm_level = match level {
        SOL_SOCKET => 1,
        SOL_TCP => 2,
        _ => 0,
    };
    if level == SOL_SOCKET && name == SO_ERROR {
        let err = value
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_le_bytes)
            .unwrap_or(0);
        let mut v = vec![1u8];
        v.extend_from_slice(&(-i64::from(err)).to_le_bytes());
        return (ppm_level, 4, v);
    }
    let mut v = vec![0u8];
    v.extend_from_slice(value);
    (ppm_level, 0, v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn so_error_is_a_negative_errno_and_other_options_keep_their_bytes() {
        let (level, name, val) = super::sockopt(1, 4, &111i32.to_le_bytes());
        assert_eq!((level, name), (1, 4));
        assert_eq!(val[0], 1);
        assert_eq!(i64::from_le_bytes(val[1..9].try_into().unwrap()), -111);
        let (level, name, val) = super::sockopt(6, 1, &[1, 0, 0, 0]);
        assert_eq!((level, name, val), (2, 0, vec![0, 1, 0, 0, 0]));
    }

    use super::*;
    use crate::record::raw;

    /// The exit event of a call record (after its entry), or the one event of others.
    fn one(c: &mut Converter, b: &[u8]) -> EventRecord {
        let mut v = c.convert(&Record::parse(b).unwrap());
        v.pop().unwrap()
    }

    fn both(c: &mut Converter, b: &[u8]) -> (EventRecord, EventRecord) {
        let mut v = c.convert(&Record::parse(b).unwrap());
        assert_eq!(v.len(), 2);
        let exit = v.pop().unwrap();
        (v.pop().unwrap(), exit)
    }

    fn params(e: &EventRecord) -> Vec<Vec<u8>> {
        crashscope_scap::event::params(e)
            .iter()
            .map(|p| p.to_vec())
            .collect()
    }

    #[test]
    fn openat_exit_carries_fd_path_and_scap_flags() {
        let mut c = Converter::new(1_700_000_000_000_000_000);
        let e = one(
            &mut c,
            &raw(
                1,
                sc::OPENAT,
                3,
                [(-100i64) as u64, 0, 0o2000000, 0, 0, 0],
                [b"/etc/hostname\0", b""],
            ),
        );
        assert_eq!(e.event_type(), 307);
        assert_eq!(e.ts(), 1_700_000_000_000_001_000);
        let p = params(&e);
        assert_eq!(p.len(), 7);
        assert_eq!(p[0], 3i64.to_le_bytes());
        assert_eq!(p[1], (-100i64).to_le_bytes());
        assert_eq!(p[2], b"/etc/hostname\0");
        assert_eq!(p[3], (1u32 | 4096).to_le_bytes());
        // dev and ino were not seen: zeros of the right size.
        assert_eq!((p[5].len(), p[6].len()), (4, 8));
    }

    #[test]
    fn dns_payloads_keep_512_bytes_and_others_the_snapshot_length() {
        let mut c = Converter::new(0);
        c.snaplen = 256;
        let dns: &[u8] = &[2, 0, 0, 53, 127, 0, 99, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let web: &[u8] = &[2, 0, 0, 80, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let payload = [7u8; 400];
        let data_len = |c: &mut Converter, rec: Vec<u8>| {
            let e = c.convert(&Record::parse(&rec).unwrap()).pop().unwrap();
            let ps = crashscope_scap::event::params(&e);
            crashscope_scap::event::param(&e, &ps, "data")
                .unwrap()
                .len()
        };
        // sendto naming its destination.
        for (to, kept) in [(dns, 400), (web, 256)] {
            let call = raw(1, sc::SENDTO, 400, [5, 0, 400, 0, 0, 16], [&payload, to]);
            assert_eq!(data_len(&mut c, call), kept);
        }
        // recv on a socket connected to port 53 (nginx's resolver), until it is closed.
        c.convert(
            &Record::parse(&raw(1, sc::CONNECT, 0, [6, 0, 16, 0, 0, 0], [dns, b""])).unwrap(),
        );
        let recv = raw(1, sc::RECVFROM, 400, [6, 0, 4096, 0, 0, 0], [&payload, b""]);
        assert_eq!(data_len(&mut c, recv.clone()), 400);
        c.convert(&Record::parse(&raw(1, sc::CLOSE, 0, [6, 0, 0, 0, 0, 0], [b"", b""])).unwrap());
        assert_eq!(data_len(&mut c, recv), 256);
    }

    #[test]
    fn a_connect_to_port_53_becomes_a_tuple_and_unknown_calls_generic_events() {
        let mut c = Converter::new(0);
        let sin = [2u8, 0, 0, 53, 10, 96, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        let e = one(
            &mut c,
            &raw(1, sc::CONNECT, -111, [5, 0, 16, 0, 0, 0], [&sin, b""]),
        );
        let p = params(&e);
        assert_eq!(e.event_type(), 23);
        assert_eq!(p[0], (-111i64).to_le_bytes());
        assert_eq!(
            crashscope_scap::state::tuple_name(&p[1]).unwrap().1,
            "0.0.0.0:0->10.96.0.10:53"
        );
        // nanosleep (35) has no event of its own.
        let (g, _) = both(&mut c, &raw(1, 35, 0, [0; 6], [b"", b""]));
        assert_eq!(g.event_type(), 0);
        assert_eq!(crashscope_scap::format::type_name(&g), "nanosleep");
        // rseq (334) is past sysdig 0.29's table: id 0, named by its native number.
        let (g, _) = both(&mut c, &raw(1, 334, 0, [0; 6], [b"", b""]));
        assert_eq!(params(&g)[0], [0, 0]);
        assert_eq!(crashscope_scap::format::type_name(&g), "rseq");
    }

    #[test]
    fn exec_then_exit_status_and_signal() {
        let mut c = Converter::new(0);
        let (enter, e) = both(
            &mut c,
            &raw(
                1,
                sc::EXECVE,
                0,
                // argv is 18 bytes of the snapshot; the environment (recorded) follows.
                [0, 0, 0, 0, 0, 18],
                [b"cat\0/etc/hostname\0FOO=bar\0", b"/bin/cat\0"],
            ),
        );
        assert_eq!(enter.event_type(), 292);
        assert_eq!(params(&enter)[0], b"/bin/cat\0");
        assert_eq!(e.event_type(), 293);
        let p = params(&e);
        assert_eq!(p.len(), 30);
        assert_eq!(p[1], b"cat\0");
        assert_eq!(p[2], b"/etc/hostname\0");
        let ps = crashscope_scap::event::params(&e);
        assert_eq!(
            crashscope_scap::event::param(&e, &ps, "env"),
            Some(&b"FOO=bar\0"[..])
        );
        // exit_group(3) never returns: its entry comes from the exit record, then procexit
        // with wait status 3 << 8.
        let v = c
            .convert(&Record::parse(&raw(2, 0, 0, [3 << 8, 231, 3, 0, 0, 0], [b"", b""])).unwrap());
        assert_eq!(v.len(), 2);
        assert_eq!(crashscope_scap::format::type_name(&v[0]), "exit_group");
        let x = &v[1];
        let p = params(x);
        assert_eq!(x.event_type(), 186);
        assert_eq!(p[1], 3i64.to_le_bytes());
        assert_eq!(p[2], [0]);
        // SIGSEGV outside a system call: status 11, no entry.
        let v = c.convert(
            &Record::parse(&raw(2, 0, 0, [11, u64::MAX, 0, 0, 0, 0], [b"", b""])).unwrap(),
        );
        assert_eq!(v.len(), 1);
        assert_eq!(params(&v[0])[2], [11]);
    }

    #[test]
    fn an_entry_has_the_time_the_call_began_when_the_probe_saw_it() {
        let mut c = Converter::new(1_000_000);
        let mut b = raw(1, 35, 0, [0; 6], [b"", b""]);
        let (enter, exit) = both(&mut c, &b);
        assert_eq!(enter.ts(), exit.ts());
        // boot_ns is 1000 in raw(); the call began at 400.
        b[120..128].copy_from_slice(&400u64.to_le_bytes());
        let (enter, exit) = both(&mut c, &b);
        assert_eq!((enter.ts(), exit.ts()), (1_000_400, 1_001_000));
    }

    #[test]
    fn a_failed_exec_names_its_file_and_a_new_thread_has_no_entry() {
        let mut c = Converter::new(0);
        let (enter, exit) = both(&mut c, &raw(1, sc::EXECVE, -2, [0; 6], [b"", b"/nope\0"]));
        assert_eq!(params(&enter)[0], b"/nope\0");
        assert_eq!(params(&exit)[0], (-2i64).to_le_bytes());
        // The parent's side of clone is a pair; the child's only the exit.
        let parent = c.convert(&Record::parse(&raw(1, sc::CLONE, 43, [0; 6], [b"", b""])).unwrap());
        assert_eq!(parent.len(), 2);
        let child = c.convert(&Record::parse(&raw(1, sc::CLONE, 0, [0; 6], [b"", b""])).unwrap());
        assert_eq!(child.len(), 1);
        assert_eq!(child[0].event_type(), 223);
    }
}
