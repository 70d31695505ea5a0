//! The blocks of a capture and their parsing: section header, machine info, process lists
//! (V1–V9), fd lists (V1/V2), user/group lists, interface lists and event blocks (V1, V2,
//! V2_LARGE, with and without flags). Layouts follow libscap's `scap_savefile.h`; every field
//! is read with bounds checks, so damaged input is an error, never a panic.

use serde::Serialize;

pub const SHB: u32 = 0x0A0D_0D0A;
pub const MI: u32 = 0x201;
pub const MI_INT: u32 = 0x8002_ABCD;
pub const PL_V1: u32 = 0x202;
pub const PL_V1_INT: u32 = 0x8000_ABCD;
pub const PL_V2: u32 = 0x207;
pub const PL_V2_INT: u32 = 0x8013_ABCD;
pub const PL_V3: u32 = 0x209;
pub const PL_V3_INT: u32 = 0x8014_ABCD;
pub const PL_V4: u32 = 0x210;
pub const PL_V5: u32 = 0x211;
pub const PL_V6: u32 = 0x212;
pub const PL_V7: u32 = 0x213;
pub const PL_V8: u32 = 0x214;
pub const PL_V9: u32 = 0x215;
pub const FDL: u32 = 0x203;
pub const FDL_INT: u32 = 0x8001_ABCD;
pub const FDL_V2: u32 = 0x218;
pub const EV: u32 = 0x204;
pub const EV_INT: u32 = 0x8010_ABCD;
pub const EVF: u32 = 0x208;
pub const EV_V2: u32 = 0x216;
pub const EVF_V2: u32 = 0x217;
pub const EV_V2_LARGE: u32 = 0x221;
pub const EVF_V2_LARGE: u32 = 0x222;
pub const IL: u32 = 0x205;
pub const IL_INT: u32 = 0x8011_ABCD;
pub const IL_V2: u32 = 0x219;
pub const UL: u32 = 0x206;
pub const UL_INT: u32 = 0x8012_ABCD;
pub const UL_V2: u32 = 0x220;

pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Event types whose parameter lengths are u32 (EF_LARGE_PAYLOAD).
pub fn large_payload(event_type: u16) -> bool {
    matches!(event_type, 322 | 324 | 402)
}

/// A bounds-checked little-endian cursor over a block body.
pub struct Cursor<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

/// What went wrong inside a block body, relative to its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub at: usize,
    pub what: String,
}

type R<T> = Result<T, BodyError>;

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
    fn err<T>(&self, what: impl Into<String>) -> R<T> {
        Err(BodyError {
            at: self.pos,
            what: what.into(),
        })
    }
    pub fn bytes(&mut self, n: usize, what: &str) -> R<&'a [u8]> {
        if self.remaining() < n {
            return self.err(format!(
                "{what}: needs {n} bytes, {} left",
                self.remaining()
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self, what: &str) -> R<u8> {
        Ok(self.bytes(1, what)?[0])
    }
    pub fn u16(&mut self, what: &str) -> R<u16> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self, what: &str) -> R<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self, what: &str) -> R<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub fn i64(&mut self, what: &str) -> R<i64> {
        Ok(self.u64(what)? as i64)
    }
    /// A u16-length-prefixed string (no NUL stored).
    pub fn str16(&mut self, what: &str) -> R<String> {
        let n = usize::from(self.u16(what)?);
        let b = self.bytes(n, what)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        Ok(match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        })
    }
    /// A u16-length-prefixed blob of NUL-separated items.
    pub fn list16(&mut self, what: &str) -> R<Vec<String>> {
        let n = usize::from(self.u16(what)?);
        let b = self.bytes(n, what)?;
        Ok(split_nul(b))
    }
}

/// Splits a NUL-separated blob into its items.
pub fn split_nul(b: &[u8]) -> Vec<String> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|c| *c == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Section header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionHeader {
    pub major: u16,
    pub minor: u16,
}

pub fn section_header(body: &[u8]) -> R<SectionHeader> {
    let mut c = Cursor::new(body);
    let magic = c.u32("byte-order magic")?;
    if magic != BYTE_ORDER_MAGIC {
        return Err(BodyError {
            at: 0,
            what: format!("wrong byte-order magic {magic:#010x} (expected 0x1a2b3c4d; big-endian captures are not supported)"),
        });
    }
    let major = c.u16("major version")?;
    let minor = c.u16("minor version")?;
    if major != 1 {
        return Err(BodyError {
            at: 4,
            what: format!("unsupported section version {major}.{minor}"),
        });
    }
    // section_length (u64) and any pcapng options follow; nothing in them is needed.
    Ok(SectionHeader { major, minor })
}

/// Machine info.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MachineInfo {
    pub num_cpus: u32,
    pub memory_size_bytes: u64,
    pub max_pid: u64,
    pub hostname: String,
    pub boot_ts_epoch: u64,
    pub flags: u64,
}

pub fn machine_info(body: &[u8]) -> R<MachineInfo> {
    let mut c = Cursor::new(body);
    let num_cpus = c.u32("num_cpus")?;
    let memory_size_bytes = c.u64("memory_size_bytes")?;
    let max_pid = c.u64("max_pid")?;
    let host = c.bytes(128, "hostname")?;
    let end = host.iter().position(|b| *b == 0).unwrap_or(host.len());
    let hostname = String::from_utf8_lossy(&host[..end]).into_owned();
    let boot_ts_epoch = if c.remaining() >= 8 {
        c.u64("boot_ts")?
    } else {
        0
    };
    let flags = if c.remaining() >= 8 {
        c.u64("flags")?
    } else {
        0
    };
    Ok(MachineInfo {
        num_cpus,
        memory_size_bytes,
        max_pid,
        hostname,
        boot_ts_epoch,
        flags,
    })
}

/// One thread of a process-list block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ThreadInfo {
    pub tid: i64,
    pub pid: i64,
    pub ptid: i64,
    pub sid: i64,
    pub vpgid: i64,
    pub comm: String,
    pub exe: String,
    pub exepath: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub fdlimit: u64,
    pub flags: u32,
    pub uid: u32,
    pub gid: u32,
    pub vmsize_kb: u32,
    pub vmrss_kb: u32,
    pub vmswap_kb: u32,
    pub pfmajor: u64,
    pub pfminor: u64,
    /// The environment as stored: NUL-separated `K=V` items (split with [`split_nul`] when
    /// needed — most readers never look at it, and it is the largest field).
    pub env: Vec<u8>,
    pub vtid: i64,
    pub vpid: i64,
    pub cgroups: Vec<String>,
    pub root: String,
    pub loginuid: u32,
}

/// Process-list version of a block type (1–9).
pub fn pl_version(block_type: u32) -> Option<u8> {
    Some(match block_type {
        PL_V1 | PL_V1_INT => 1,
        PL_V2 | PL_V2_INT => 2,
        PL_V3 | PL_V3_INT => 3,
        PL_V4 => 4,
        PL_V5 => 5,
        PL_V6 => 6,
        PL_V7 => 7,
        PL_V8 => 8,
        PL_V9 => 9,
        _ => return None,
    })
}

pub fn process_list(body: &[u8], version: u8) -> R<Vec<ThreadInfo>> {
    let mut c = Cursor::new(body);
    let mut out = Vec::new();
    while c.remaining() >= 4 {
        let start = c.pos;
        let entry_len = if version >= 9 {
            let n = c.u32("entry length")? as usize;
            if n < 4 || n > c.data.len() - start {
                return Err(BodyError {
                    at: start,
                    what: format!("process entry length {n} overruns the block"),
                });
            }
            Some(n)
        } else {
            None
        };
        let mut t = ThreadInfo {
            sid: -1,
            vpgid: -1,
            vtid: -1,
            vpid: -1,
            loginuid: u32::MAX,
            ..ThreadInfo::default()
        };
        t.tid = c.i64("tid")?;
        t.pid = c.i64("pid")?;
        t.ptid = c.i64("ptid")?;
        if version >= 6 {
            t.sid = c.i64("sid")?;
        }
        if version >= 8 {
            t.vpgid = c.i64("vpgid")?;
        }
        t.comm = c.str16("comm")?;
        t.exe = c.str16("exe")?;
        if version >= 7 {
            t.exepath = c.str16("exepath")?;
        }
        t.args = c.list16("args")?;
        t.cwd = c.str16("cwd")?;
        t.fdlimit = c.u64("fdlimit")?;
        t.flags = c.u32("flags")?;
        t.uid = c.u32("uid")?;
        t.gid = c.u32("gid")?;
        if version >= 2 {
            t.vmsize_kb = c.u32("vmsize")?;
            t.vmrss_kb = c.u32("vmrss")?;
            t.vmswap_kb = c.u32("vmswap")?;
            t.pfmajor = c.u64("pfmajor")?;
            t.pfminor = c.u64("pfminor")?;
        }
        if version >= 3 {
            let n = usize::from(c.u16("env")?);
            t.env = c.bytes(n, "env")?.to_vec();
        }
        if version >= 4 {
            t.vtid = c.i64("vtid")?;
            t.vpid = c.i64("vpid")?;
            t.cgroups = c.list16("cgroups")?;
        }
        if version >= 5 {
            t.root = c.str16("root")?;
        }
        if let Some(n) = entry_len {
            let end = start + n;
            let left = end.saturating_sub(c.pos);
            // The tail (pidns_init_start_ts, tty, loginuid, ...) is optional; files older than
            // libs 0.10 lack the first two.
            if left > 29 {
                c.u64("pidns_init_start_ts")?;
                c.u32("tty")?;
            }
            if end.saturating_sub(c.pos) >= 4 {
                t.loginuid = c.u32("loginuid")?;
            }
            if c.pos > end {
                return Err(BodyError {
                    at: start,
                    what: "process entry fields overrun its length".into(),
                });
            }
            c.pos = end;
        }
        out.push(t);
    }
    Ok(out)
}

/// The kind of a file descriptor (libscap's scap_fd_type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FdKind {
    File {
        name: String,
        flags: u32,
    },
    Directory {
        name: String,
    },
    Ipv4 {
        sip: [u8; 4],
        dip: [u8; 4],
        sport: u16,
        dport: u16,
        l4: u8,
    },
    Ipv6 {
        sip: [u8; 16],
        dip: [u8; 16],
        sport: u16,
        dport: u16,
        l4: u8,
    },
    Ipv4Server {
        ip: [u8; 4],
        port: u16,
        l4: u8,
    },
    Ipv6Server {
        ip: [u8; 16],
        port: u16,
        l4: u8,
    },
    Unix {
        source: u64,
        dest: u64,
        name: String,
    },
    /// FIFO, event, signalfd, eventpoll, inotify, timerfd, netlink, bpf, ... by their type code.
    Other {
        code: u8,
        name: String,
    },
}

/// One fd of an fd-list block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdInfo {
    pub fd: i64,
    pub ino: u64,
    pub kind: FdKind,
}

fn arr<const N: usize>(c: &mut Cursor<'_>, what: &str) -> R<[u8; N]> {
    let b = c.bytes(N, what)?;
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    Ok(a)
}

/// Parses an fd-list block: the thread id and its fds.
pub fn fd_list(body: &[u8], v2: bool) -> R<(i64, Vec<FdInfo>)> {
    let mut c = Cursor::new(body);
    let tid = c.i64("tid")?;
    let mut out = Vec::new();
    while c.remaining() >= 4 {
        let start = c.pos;
        let entry_len = if v2 {
            let n = c.u32("fd entry length")? as usize;
            if n < 4 || n > c.data.len() - start {
                return Err(BodyError {
                    at: start,
                    what: format!("fd entry length {n} overruns the block"),
                });
            }
            Some(n)
        } else {
            None
        };
        let fd = c.i64("fd")?;
        let ino = c.u64("ino")?;
        let code = c.u8("fd type")?;
        let kind = match code {
            3 => FdKind::Ipv4 {
                sip: arr(&mut c, "sip")?,
                dip: arr(&mut c, "dip")?,
                sport: c.u16("sport")?,
                dport: c.u16("dport")?,
                l4: c.u8("l4proto")?,
            },
            4 => FdKind::Ipv6 {
                sip: arr(&mut c, "sip")?,
                dip: arr(&mut c, "dip")?,
                sport: c.u16("sport")?,
                dport: c.u16("dport")?,
                l4: c.u8("l4proto")?,
            },
            5 => FdKind::Ipv4Server {
                ip: arr(&mut c, "ip")?,
                port: c.u16("port")?,
                l4: c.u8("l4proto")?,
            },
            6 => FdKind::Ipv6Server {
                ip: arr(&mut c, "ip")?,
                port: c.u16("port")?,
                l4: c.u8("l4proto")?,
            },
            8 => FdKind::Unix {
                source: c.u64("source")?,
                dest: c.u64("dest")?,
                name: c.str16("name")?,
            },
            16 => {
                let flags = c.u32("open flags")?;
                let name = c.str16("name")?;
                if let Some(n) = entry_len {
                    if start + n >= c.pos + 4 {
                        c.u32("dev")?;
                    }
                }
                FdKind::File { name, flags }
            }
            1 => FdKind::File {
                name: c.str16("name")?,
                flags: 0,
            },
            2 => FdKind::Directory {
                name: c.str16("name")?,
            },
            7 | 9..=15 | 17..=21 => FdKind::Other {
                code,
                name: c.str16("name")?,
            },
            _ => {
                if entry_len.is_none() {
                    return Err(BodyError {
                        at: start,
                        what: format!(
                            "fd type {code} is unknown and the v1 fd list cannot be resynchronised"
                        ),
                    });
                }
                FdKind::Other {
                    code,
                    name: format!("unknown-type:[{code}]"),
                }
            }
        };
        if let Some(n) = entry_len {
            if c.pos > start + n {
                return Err(BodyError {
                    at: start,
                    what: "fd entry fields overrun its length".into(),
                });
            }
            c.pos = start + n;
        }
        out.push(FdInfo { fd, ino, kind });
    }
    Ok((tid, out))
}

/// A user or group of the user-list block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum UserEntry {
    User {
        uid: u32,
        gid: u32,
        name: String,
        home: String,
        shell: String,
    },
    Group {
        gid: u32,
        name: String,
    },
}

pub fn user_list(body: &[u8], v2: bool) -> R<Vec<UserEntry>> {
    let mut c = Cursor::new(body);
    let mut out = Vec::new();
    while c.remaining() >= 4 {
        let start = c.pos;
        let entry_len = if v2 {
            Some(c.u32("user entry length")? as usize)
        } else {
            None
        };
        let kind = c.u8("entry type")?;
        let e = if kind == 0 {
            UserEntry::User {
                uid: c.u32("uid")?,
                gid: c.u32("gid")?,
                name: c.str16("name")?,
                home: c.str16("homedir")?,
                shell: c.str16("shell")?,
            }
        } else {
            UserEntry::Group {
                gid: c.u32("gid")?,
                name: c.str16("name")?,
            }
        };
        if let Some(n) = entry_len {
            if n < 4 || start + n > c.data.len() || c.pos > start + n {
                return Err(BodyError {
                    at: start,
                    what: format!("user entry length {n} does not match its fields"),
                });
            }
            c.pos = start + n;
        }
        out.push(e);
    }
    Ok(out)
}

/// A network interface address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub name: String,
    /// 4 or 16 bytes.
    pub addr: Vec<u8>,
}

pub fn interface_list(body: &[u8], v2: bool) -> R<Vec<Interface>> {
    let mut c = Cursor::new(body);
    let mut out = Vec::new();
    while c.remaining() >= 4 {
        let entry_len = if v2 {
            Some(c.u32("interface entry length")? as usize)
        } else {
            None
        };
        let start = c.pos;
        let ty = c.u16("interface type")?;
        let namelen = usize::from(c.u16("name length")?);
        let (alen, speed) = match ty {
            1 => (4, true),
            2 => (16, true),
            3 => (4, false),
            4 => (16, false),
            other => {
                return Err(BodyError {
                    at: start,
                    what: format!("unknown interface entry type {other}"),
                })
            }
        };
        let addr = c.bytes(alen, "address")?.to_vec();
        c.bytes(alen * 2, "netmask and broadcast")?;
        if speed {
            c.u64("link speed")?;
        }
        let name = String::from_utf8_lossy(c.bytes(namelen, "interface name")?).into_owned();
        if let Some(n) = entry_len {
            if start + n > c.data.len() || c.pos > start + n {
                return Err(BodyError {
                    at: start,
                    what: format!("interface entry length {n} does not match its fields"),
                });
            }
            c.pos = start + n;
        }
        out.push(Interface { name, addr });
    }
    Ok(out)
}

/// One event as found in an event block, normalised to the V2 layout (26-byte header with
/// nparams, then the length array, then the data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EventRecord {
    pub cpu: u16,
    pub flags: u32,
    pub raw: Vec<u8>,
}

impl EventRecord {
    #[inline]
    fn field<const N: usize>(&self, at: usize) -> [u8; N] {
        // Records from the reader always hold a full header; a hand-built short one reads as 0.
        self.raw
            .get(at..at + N)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; N])
    }
    #[inline]
    pub fn ts(&self) -> u64 {
        u64::from_le_bytes(self.field(0))
    }
    #[inline]
    pub fn tid(&self) -> i64 {
        i64::from_le_bytes(self.field(8))
    }
    #[inline]
    pub fn event_type(&self) -> u16 {
        u16::from_le_bytes(self.field(20))
    }
    #[inline]
    pub fn nparams(&self) -> u32 {
        u32::from_le_bytes(self.field(22))
    }
}

/// Parses an event block body. `v2`: the header carries nparams; `with_flags`: EVF blocks.
pub fn event(body: &[u8], v2: bool, with_flags: bool) -> R<EventRecord> {
    event_into(body, v2, with_flags, Vec::new())
}

/// [`event`] into a buffer to reuse (its contents are replaced).
pub fn event_into(body: &[u8], v2: bool, with_flags: bool, mut raw: Vec<u8>) -> R<EventRecord> {
    raw.clear();
    let mut c = Cursor::new(body);
    let cpu = c.u16("cpu id")?;
    let flags = if with_flags { c.u32("event flags")? } else { 0 };
    let start = c.pos;
    let hdr_len = if v2 { 26 } else { 22 };
    if c.remaining() < hdr_len {
        return c.err(format!(
            "event header needs {hdr_len} bytes, {} left",
            c.remaining()
        ));
    }
    let h = &body[start..];
    let len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize;
    let etype = u16::from_le_bytes([h[20], h[21]]);
    if len < hdr_len || len > h.len() {
        return Err(BodyError {
            at: start + 16,
            what: format!(
                "event length {len} does not fit the block ({} bytes)",
                h.len()
            ),
        });
    }
    let lw = if large_payload(etype) { 4 } else { 2 };
    let raw = if v2 {
        let n = u32::from_le_bytes([h[22], h[23], h[24], h[25]]) as usize;
        check_params(&h[..len], 26, n, lw).map_err(|what| BodyError {
            at: start + 22,
            what,
        })?;
        raw.extend_from_slice(&h[..len]);
        raw
    } else {
        // V1: no nparams. Find the count whose lengths add up to the event length.
        let ev = &h[..len];
        // Count down from the schema's parameter count, as libscap does.
        let max = ((len - 22) / 2).min(
            crate::schema::event(etype)
                .map(|e| e.params.len())
                .unwrap_or(64),
        );
        let n = (0..=max)
            .rev()
            .find(|n| check_params_v1(ev, *n))
            .ok_or(BodyError {
                at: start,
                what: "old-format event whose parameter lengths do not add up".into(),
            })?;
        raw.reserve(len + 4);
        raw.extend_from_slice(&ev[..16]);
        raw.extend_from_slice(&((len + 4) as u32).to_le_bytes());
        raw.extend_from_slice(&ev[20..22]);
        raw.extend_from_slice(&(n as u32).to_le_bytes());
        raw.extend_from_slice(&ev[22..]);
        raw
    };
    Ok(EventRecord { cpu, flags, raw })
}

fn check_params(ev: &[u8], hdr: usize, n: usize, lw: usize) -> Result<(), String> {
    match params_end(ev, hdr, n, lw) {
        None => Err(format!(
            "{n} parameters do not fit the event ({} bytes)",
            ev.len()
        )),
        Some(total) if total > ev.len() => Err(format!(
            "parameter lengths add up to {total} bytes but the event has {}",
            ev.len()
        )),
        Some(_) => Ok(()),
    }
}

/// Whether the `n` parameter lengths (`lw` bytes each, after a `hdr`-byte header) and the
/// values they measure fit the event `ev`.
#[inline]
pub(crate) fn params_fit(ev: &[u8], hdr: usize, n: usize, lw: usize) -> bool {
    params_end(ev, hdr, n, lw).is_some_and(|end| end <= ev.len())
}

/// Where the values of the `n` parameters end, or None when their lengths do not fit.
#[inline]
fn params_end(ev: &[u8], hdr: usize, n: usize, lw: usize) -> Option<usize> {
    let lens_end = n
        .checked_mul(lw)
        .and_then(|x| x.checked_add(hdr))
        .filter(|e| *e <= ev.len())?;
    let lens = &ev[hdr..lens_end];
    let values: usize = if lw == 2 {
        lens.chunks_exact(2)
            .map(|l| usize::from(u16::from_le_bytes([l[0], l[1]])))
            .sum()
    } else {
        lens.chunks_exact(4)
            .map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .sum()
    };
    Some(lens_end + values)
}

fn check_params_v1(ev: &[u8], n: usize) -> bool {
    let end = 22 + 2 * n;
    if end > ev.len() {
        return false;
    }
    let sum: usize = (0..n)
        .map(|i| usize::from(u16::from_le_bytes([ev[22 + 2 * i], ev[23 + 2 * i]])))
        .sum();
    end + sum == ev.len()
}
