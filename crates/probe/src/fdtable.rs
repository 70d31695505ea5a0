//! The files, sockets and directories recorded processes hold open, as of a point in the
//! recording. A flight-recorder capture starts with this table (fd-list blocks) so that a
//! read or write early in its window names its file or peer even though the open happened
//! before the window: "filtered captures lose process state" is a known complaint about
//! sysdig's; ours keep it. The table follows the records that leave the window (opens,
//! sockets, connects, accepts, dups, closes, forks, exits) and starts, for processes that
//! ran before recording began, from `/proc/PID/fd`.
//!
//! Why a second fd table beside the replay state's (`crashscope_scap::state`): this one runs
//! in the recorder's hot path on raw probe records as they leave the window — before any is
//! converted to a scap event, which happens only when a capture is written — and holds only
//! what an fd-list block needs (no names built, no thread table). Converting every evicted
//! record to feed the replay state would cost the conversion the window exists to defer.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crashscope_scap::block::{FdInfo, FdKind};

use crate::calls::{DUP, DUP2, DUP3};
use crate::record::{Kind, Record};
use crate::syscalls as sc;

const EINPROGRESS: i64 = -115;
/// libscap's layer-4 codes.
const L4_TCP: u8 = 2;
const L4_UDP: u8 = 3;

/// One process's descriptors: fd → what it is (sockets without a peer yet keep their type).
#[derive(Debug, Clone, Default, PartialEq)]
struct Fds(BTreeMap<i64, Entry>);

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Known(FdKind),
    /// socket(2) returned it; connect or accept will say to whom. `udp` from its type.
    Socket {
        udp: bool,
    },
}

/// Every recorded process's descriptors, by process id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FdTable {
    procs: HashMap<u32, Fds>,
}

fn peer(sockaddr: Option<&[u8]>) -> Option<SocketAddr> {
    let b = sockaddr?;
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match family {
        2 => {
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::from(ip), port))
        }
        10 => {
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::from(ip), port))
        }
        _ => None,
    }
}

/// A connection as scap lists it: (source, destination); the local end is unknown.
fn connection(local: Option<SocketAddr>, remote: SocketAddr, outbound: bool, udp: bool) -> FdKind {
    let l4 = if udp { L4_UDP } else { L4_TCP };
    let unspecified = |ipv6: bool| -> SocketAddr {
        if ipv6 {
            SocketAddr::new(IpAddr::from([0u8; 16]), 0)
        } else {
            SocketAddr::new(IpAddr::from([0u8; 4]), 0)
        }
    };
    let local = local.unwrap_or_else(|| unspecified(remote.is_ipv6()));
    let (s, d) = if outbound {
        (local, remote)
    } else {
        (remote, local)
    };
    match (s.ip(), d.ip()) {
        (IpAddr::V4(sip), IpAddr::V4(dip)) => FdKind::Ipv4 {
            sip: sip.octets(),
            dip: dip.octets(),
            sport: s.port(),
            dport: d.port(),
            l4,
        },
        (sip, dip) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                IpAddr::V6(a) => a.octets(),
            };
            FdKind::Ipv6 {
                sip: v6(sip),
                dip: v6(dip),
                sport: s.port(),
                dport: d.port(),
                l4,
            }
        }
    }
}

impl FdTable {
    /// Moves the table past one record.
    pub fn apply(&mut self, r: &Record) {
        match r.kind {
            Kind::ProcExit if r.tid == r.pid => {
                self.procs.remove(&r.pid);
            }
            Kind::Call => self.exit(r),
            _ => {}
        }
    }

    fn exit(&mut self, r: &Record) {
        let fd_arg = |i: usize| i64::from(r.args[i] as i32);
        let path = |i: usize| r.text(i).unwrap_or("").to_string();
        let file = |name: String| Entry::Known(FdKind::File { name, flags: 0 });
        match r.nr {
            // A new process starts with its parent's descriptors (threads share the table,
            // which is keyed by process).
            sc::CLONE | sc::FORK | sc::VFORK | sc::CLONE3
                if r.ret == 0 && r.tid == r.pid && !self.procs.contains_key(&r.pid) =>
            {
                if let Some(parent) = self.procs.get(&r.ppid).cloned() {
                    self.procs.insert(r.pid, parent);
                }
            }
            _ if r.ret < 0 && !(r.nr == sc::CONNECT && r.ret == EINPROGRESS) => {}
            // The probe puts the path in the first snapshot for all four.
            sc::OPEN | sc::CREAT | sc::OPENAT | sc::OPENAT2 => {
                self.set(r.pid, r.ret, file(path(0)))
            }
            sc::SOCKET => {
                // SOCK_DGRAM, with SOCK_NONBLOCK/SOCK_CLOEXEC or'ed in.
                let udp = r.args[1] & 0xf == 2;
                self.set(r.pid, r.ret, Entry::Socket { udp });
            }
            sc::CONNECT => {
                let Some(remote) = peer(r.slots[0]) else {
                    return;
                };
                let udp = matches!(
                    self.get(r.pid, fd_arg(0)),
                    Some(Entry::Socket { udp: true })
                ) || matches!(
                    self.get(r.pid, fd_arg(0)),
                    Some(Entry::Known(FdKind::Ipv4 { l4: L4_UDP, .. }))
                );
                self.set(
                    r.pid,
                    fd_arg(0),
                    Entry::Known(connection(None, remote, true, udp)),
                );
            }
            sc::ACCEPT | sc::ACCEPT4 => {
                if let Some(remote) = peer(r.slots[0]) {
                    self.set(
                        r.pid,
                        r.ret,
                        Entry::Known(connection(None, remote, false, false)),
                    );
                }
            }
            DUP | DUP2 | DUP3 => {
                if let Some(e) = self.get(r.pid, fd_arg(0)).cloned() {
                    self.set(r.pid, r.ret, e);
                }
            }
            sc::CLOSE => {
                if let Some(f) = self.procs.get_mut(&r.pid) {
                    f.0.remove(&fd_arg(0));
                }
            }
            _ => {}
        }
    }

    fn get(&self, pid: u32, fd: i64) -> Option<&Entry> {
        self.procs.get(&pid)?.0.get(&fd)
    }

    fn set(&mut self, pid: u32, fd: i64, e: Entry) {
        self.procs.entry(pid).or_default().0.insert(fd, e);
    }

    /// Starts a process that ran before recording from what `/proc/PID/fd` shows now:
    /// files and directories by path, TCP and UDP sockets with both ends.
    pub fn seed(&mut self, proc: &Path, pid: u32) {
        let dir = proc.join(pid.to_string());
        let Ok(entries) = std::fs::read_dir(dir.join("fd")) else {
            return;
        };
        let sockets = sockets(&dir.join("net"));
        let mut fds = Fds::default();
        for e in entries.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
                continue;
            };
            let Ok(target) = std::fs::read_link(e.path()) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            let entry = if let Some(ino) = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            {
                match sockets.get(&ino) {
                    Some(k) => Entry::Known(k.clone()),
                    None => continue,
                }
            } else if target.starts_with('/') {
                let is_dir = std::fs::metadata(&target).is_ok_and(|m| m.is_dir());
                Entry::Known(if is_dir {
                    FdKind::Directory { name: target }
                } else {
                    FdKind::File {
                        name: target,
                        flags: 0,
                    }
                })
            } else {
                continue;
            };
            fds.0.insert(fd, entry);
        }
        self.procs.insert(pid, fds);
    }

    /// The fd lists to write, by process; sockets still without a peer are left out.
    pub fn lists(&self) -> Vec<(i64, Vec<FdInfo>)> {
        let mut out: Vec<(i64, Vec<FdInfo>)> = self
            .procs
            .iter()
            .map(|(pid, fds)| {
                let list = fds
                    .0
                    .iter()
                    .filter_map(|(fd, e)| match e {
                        Entry::Known(kind) => Some(FdInfo {
                            fd: *fd,
                            ino: 0,
                            kind: kind.clone(),
                        }),
                        Entry::Socket { .. } => None,
                    })
                    .collect::<Vec<_>>();
                (i64::from(*pid), list)
            })
            .filter(|(_, l)| !l.is_empty())
            .collect();
        out.sort_by_key(|(pid, _)| *pid);
        out
    }
}

/// TCP and UDP sockets of a network namespace by inode, from `/proc/PID/net/{tcp,udp}{,6}`.
fn sockets(net: &Path) -> HashMap<u64, FdKind> {
    let mut out = HashMap::new();
    for (file, udp) in [
        ("tcp", false),
        ("udp", true),
        ("tcp6", false),
        ("udp6", true),
    ] {
        let Ok(text) = std::fs::read_to_string(net.join(file)) else {
            continue;
        };
        for line in text.lines().skip(1) {
            if let Some((ino, kind)) = socket_line(line, udp) {
                out.insert(ino, kind);
            }
        }
    }
    out
}

/// `sl local_address rem_address st ... inode` with addresses as hex `IP:PORT` (the IP in
/// host byte order, 32-bit words).
fn socket_line(line: &str, udp: bool) -> Option<(u64, FdKind)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let addr = |s: &str| -> Option<SocketAddr> {
        let (ip, port) = s.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let words: Vec<u32> = (0..ip.len() / 8)
            .map(|i| u32::from_str_radix(ip.get(8 * i..8 * i + 8)?, 16).ok())
            .collect::<Option<_>>()?;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let ip = match bytes.len() {
            4 => IpAddr::from(<[u8; 4]>::try_from(bytes.as_slice()).ok()?),
            16 => IpAddr::from(<[u8; 16]>::try_from(bytes.as_slice()).ok()?),
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    };
    let local = addr(f.get(1)?)?;
    let remote = addr(f.get(2)?)?;
    let ino: u64 = f.get(9)?.parse().ok()?;
    let l4 = if udp { L4_UDP } else { L4_TCP };
    let kind = if remote.port() == 0 {
        match local.ip() {
            IpAddr::V4(ip) => FdKind::Ipv4Server {
                ip: ip.octets(),
                port: local.port(),
                l4,
            },
            IpAddr::V6(ip) => FdKind::Ipv6Server {
                ip: ip.octets(),
                port: local.port(),
                l4,
            },
        }
    } else {
        connection(Some(local), remote, true, udp)
    };
    Some((ino, kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::raw;

    fn exit(pid: u32, nr: u16, ret: i64, args: [u64; 6], slot: &[u8]) -> Vec<u8> {
        let mut b = raw(1, nr, ret, args, [slot, b""]);
        b[8..12].copy_from_slice(&pid.to_le_bytes());
        b[12..16].copy_from_slice(&pid.to_le_bytes());
        b
    }

    fn apply(t: &mut FdTable, b: &[u8]) {
        t.apply(&Record::parse(b).unwrap());
    }

    #[test]
    fn opens_sockets_dups_forks_and_closes_move_the_table() {
        let mut t = FdTable::default();
        apply(
            &mut t,
            &exit(
                10,
                sc::OPENAT,
                3,
                [u64::MAX - 99, 0, 0, 0, 0, 0],
                b"/etc/nginx/nginx.conf\0",
            ),
        );
        apply(&mut t, &exit(10, sc::SOCKET, 4, [2, 2, 0, 0, 0, 0], b""));
        let dns: &[u8] = &[2, 0, 0, 53, 127, 0, 99, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        apply(&mut t, &exit(10, sc::CONNECT, 0, [4, 0, 16, 0, 0, 0], dns));
        apply(&mut t, &exit(10, DUP2, 0, [3, 0, 0, 0, 0, 0], b""));
        // A failed open changes nothing.
        apply(&mut t, &exit(10, sc::OPENAT, -2, [0; 6], b"/nope\0"));
        let lists = t.lists();
        let fds: Vec<(i64, &FdKind)> = lists[0].1.iter().map(|f| (f.fd, &f.kind)).collect();
        assert_eq!(fds.len(), 3, "{fds:?}");
        assert!(
            matches!(fds[0], (0, FdKind::File { name, .. }) if name == "/etc/nginx/nginx.conf")
        );
        assert!(matches!(
            fds[2],
            (
                4,
                FdKind::Ipv4 {
                    dip: [127, 0, 99, 1],
                    dport: 53,
                    l4: L4_UDP,
                    ..
                }
            )
        ));
        // A child starts with its parent's table; the parent's close is its own.
        let mut child = exit(11, sc::CLONE, 0, [0; 6], b"");
        child[16..20].copy_from_slice(&10u32.to_le_bytes());
        apply(&mut t, &child);
        apply(&mut t, &exit(10, sc::CLOSE, 0, [3, 0, 0, 0, 0, 0], b""));
        let lists = t.lists();
        assert_eq!(lists[0].1.len(), 2);
        assert_eq!(lists[1].1.len(), 3);
        // Exit forgets the process.
        let mut gone = exit(11, 0, 0, [0; 6], b"");
        gone[20] = 2;
        apply(&mut t, &gone);
        assert_eq!(t.lists().len(), 1);
    }

    #[test]
    fn proc_net_lines_become_connections_and_listeners() {
        // 127.0.0.1:8080 listening; 10.0.0.5:51234 -> 10.0.0.9:5432 established.
        let listen = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1";
        let (ino, k) = socket_line(listen, false).unwrap();
        assert_eq!(ino, 4242);
        assert_eq!(
            k,
            FdKind::Ipv4Server {
                ip: [127, 0, 0, 1],
                port: 8080,
                l4: L4_TCP
            }
        );
        let est = "   1: 0500000A:C822 0900000A:1538 01 00000000:00000000 00:00000000 00000000     0        0 77 1";
        let (_, k) = socket_line(est, false).unwrap();
        assert_eq!(
            k,
            FdKind::Ipv4 {
                sip: [10, 0, 0, 5],
                dip: [10, 0, 0, 9],
                sport: 51234,
                dport: 5432,
                l4: L4_TCP
            }
        );
        for junk in [
            "",
            "sl local",
            "0: zz:1 00:00 0A a b c d e f",
            "0: 0100007F:FFFFF 0:0 0 0 0 0 0 0 x",
        ] {
            assert!(socket_line(junk, true).is_none(), "{junk}");
        }
    }

    #[test]
    fn a_running_process_is_seeded_from_proc() {
        let mut t = FdTable::default();
        let me = std::process::id();
        let f = std::fs::File::open("/etc/hostname").unwrap();
        t.seed(Path::new("/proc"), me);
        let lists = t.lists();
        assert!(
            lists[0]
                .1
                .iter()
                .any(|i| matches!(&i.kind, FdKind::File { name, .. } if name == "/etc/hostname")),
            "{lists:?}"
        );
        drop(f);
    }
}
