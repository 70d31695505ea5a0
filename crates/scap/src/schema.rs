//! The event table: name, flags and parameters (name, type, print format) of every event type,
//! and the names of syscall codes used by generic events.
//!
//! The table is generated from `falco_event_schema` 0.5.1 (the libs 0.21 event table, schema
//! 3.6.1) into `data/events.tsv`, so that formatting can look parameters up by type code
//! without decoding every event into typed structs. Events newer than that schema (codes 430
//! and up) are shown by number; extra trailing parameters of newer event versions are shown
//! as `paramN`.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    CharBuf,
    ByteBuf,
    Errno,
    SockAddr,
    SockTuple,
    Fd,
    Pid,
    FdList,
    FsPath,
    SyscallId,
    SigType,
    RelTime,
    AbsTime,
    Port,
    L4Proto,
    SockFamily,
    Bool,
    Ipv4Addr,
    Dyn,
    Flags8,
    Flags16,
    Flags32,
    Uid,
    Gid,
    Double,
    SigSet,
    Ipv6Addr,
    IpAddr,
    IpNet,
    Mode,
    FsRelPath,
    EnumFlags8,
    EnumFlags16,
    EnumFlags32,
    Other,
}

impl ParamType {
    /// Bytes of a fixed-size parameter; None for variable-size ones (strings, buffers,
    /// addresses).
    pub fn fixed_size(self) -> Option<usize> {
        use ParamType::*;
        Some(match self {
            Int8 | Uint8 | SigType | Flags8 | EnumFlags8 | Bool | L4Proto | SockFamily => 1,
            Int16 | Uint16 | SyscallId | Flags16 | EnumFlags16 | Port => 2,
            Int32 | Uint32 | Flags32 | EnumFlags32 | Uid | Gid | Mode | Ipv4Addr | SigSet => 4,
            Int64 | Uint64 | Errno | Fd | Pid | RelTime | AbsTime | Double => 8,
            Ipv6Addr => 16,
            _ => return None,
        })
    }

    fn parse(s: &str) -> ParamType {
        use ParamType::*;
        match s {
            "INT8" => Int8,
            "INT16" => Int16,
            "INT32" => Int32,
            "INT64" => Int64,
            "UINT8" => Uint8,
            "UINT16" => Uint16,
            "UINT32" => Uint32,
            "UINT64" => Uint64,
            "CHARBUF" => CharBuf,
            "BYTEBUF" => ByteBuf,
            "ERRNO" => Errno,
            "SOCKADDR" => SockAddr,
            "SOCKTUPLE" => SockTuple,
            "FD" => Fd,
            "PID" => Pid,
            "FDLIST" => FdList,
            "FSPATH" => FsPath,
            "SYSCALLID" => SyscallId,
            "SIGTYPE" => SigType,
            "RELTIME" => RelTime,
            "ABSTIME" => AbsTime,
            "PORT" => Port,
            "L4PROTO" => L4Proto,
            "SOCKFAMILY" => SockFamily,
            "BOOL" => Bool,
            "IPV4ADDR" => Ipv4Addr,
            "DYN" => Dyn,
            "FLAGS8" => Flags8,
            "FLAGS16" => Flags16,
            "FLAGS32" => Flags32,
            "UID" => Uid,
            "GID" => Gid,
            "DOUBLE" => Double,
            "SIGSET" => SigSet,
            "IPV6ADDR" => Ipv6Addr,
            "IPADDR" => IpAddr,
            "IPNET" => IpNet,
            "MODE" => Mode,
            "FSRELPATH" => FsRelPath,
            "ENUMFLAGS8" => EnumFlags8,
            "ENUMFLAGS16" => EnumFlags16,
            "ENUMFLAGS32" => EnumFlags32,
            _ => Other,
        }
    }
}

/// How a numeric parameter is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintFormat {
    Dec,
    Hex,
    Oct,
    Na,
}

#[derive(Debug, Clone)]
pub struct ParamInfo {
    pub name: String,
    pub ty: ParamType,
    pub fmt: PrintFormat,
    /// Name of the flag table that names this parameter's bits (`file_flags`, ...).
    pub flags: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EventInfo {
    pub name: String,
    pub flags: String,
    /// The [`Mark`]s among `flags`, as bits: views test them for every event, where
    /// searching the flags text each time was a sixth of `inspect summary`'s time.
    pub marks: u32,
    /// Internal or unused events are counted but not shown (EC_INTERNAL, EF_UNUSED).
    pub hidden: bool,
    /// An exit event whose first parameter is the call's result.
    pub has_res: bool,
    /// sysdig's `evt.category`: `file`, `net`, `IO_READ`, ... or `other`.
    pub category: &'static str,
    pub params: Vec<ParamInfo>,
    /// Where the parameters named `fd` and `data` are: asked for on nearly every event of
    /// a busy capture, where finding them by name was a tenth of a view's time.
    pub fd_index: Option<usize>,
    pub data_index: Option<usize>,
}

/// The categories and flags of the event table that views ask about per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Mark {
    Syscall = 1,
    IoRead = 1 << 1,
    IoWrite = 1 << 2,
    CreatesFd = 1 << 3,
    UsesFd = 1 << 4,
    DestroysFd = 1 << 5,
    SkipParseReset = 1 << 6,
}

impl Mark {
    const ALL: [(&'static str, Mark); 7] = [
        ("EC_SYSCALL", Mark::Syscall),
        ("EC_IO_READ", Mark::IoRead),
        ("EC_IO_WRITE", Mark::IoWrite),
        ("EF_CREATES_FD", Mark::CreatesFd),
        ("EF_USES_FD", Mark::UsesFd),
        ("EF_DESTROYS_FD", Mark::DestroysFd),
        ("EF_SKIPPARSERESET", Mark::SkipParseReset),
    ];

    fn of(flags: &str) -> u32 {
        flags
            .split('|')
            .filter_map(|f| Mark::ALL.iter().find(|(n, _)| *n == f.trim()))
            .fold(0, |m, (_, k)| m | *k as u32)
    }
}

impl EventInfo {
    /// Whether the event table gives this event the category or flag `m`.
    pub fn is(&self, m: Mark) -> bool {
        self.marks & m as u32 != 0
    }
}

/// sysdig's category name for an event table entry's categories and flags: the first of
/// its categories in sysdig's order.
fn category_of(flags: &str) -> &'static str {
    const CATEGORIES: [(&str, &str); 15] = [
        ("EC_FILE", "file"),
        ("EC_NET", "net"),
        ("EC_IPC", "ipc"),
        ("EC_MEMORY", "memory"),
        ("EC_PROCESS", "process"),
        ("EC_SLEEP", "sleep"),
        ("EC_SYSTEM", "system"),
        ("EC_SIGNAL", "signal"),
        ("EC_USER", "user"),
        ("EC_TIME", "time"),
        ("EC_IO_READ", "IO_READ"),
        ("EC_IO_WRITE", "IO_WRITE"),
        ("EC_IO_OTHER", "IO_OTHER"),
        ("EC_WAIT", "wait"),
        ("EC_SCHEDULER", "scheduler"),
    ];
    CATEGORIES
        .iter()
        .find(|(c, _)| flags.split('|').any(|x| x.trim() == *c))
        .map(|(_, n)| *n)
        .unwrap_or("other")
}

struct Tables {
    events: Vec<Option<EventInfo>>,
    syscalls: Vec<Option<String>>,
    flags: std::collections::HashMap<String, Vec<(String, u64)>>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut events: Vec<Option<EventInfo>> = Vec::new();
        for line in include_str!("../data/events.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
        {
            let f: Vec<&str> = line.split('\t').collect();
            let (Some(code), Some(name)) =
                (f.first().and_then(|c| c.parse::<usize>().ok()), f.get(1))
            else {
                continue;
            };
            let params: Vec<ParamInfo> = f
                .get(4)
                .map(|p| {
                    p.split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            let mut it = s.split(':');
                            let name = it.next().unwrap_or("").to_string();
                            let ty = ParamType::parse(it.next().unwrap_or(""));
                            let fmt = match it.next().unwrap_or("") {
                                "HEX" => PrintFormat::Hex,
                                "OCT" => PrintFormat::Oct,
                                "DEC" => PrintFormat::Dec,
                                _ => PrintFormat::Na,
                            };
                            // A path's extra field is the index of its dirfd parameter, not a flag table.
                            let flags = it
                                .next()
                                .filter(|f| !f.is_empty() && !f.bytes().all(|b| b.is_ascii_digit()))
                                .map(str::to_string);
                            ParamInfo {
                                name,
                                ty,
                                fmt,
                                flags,
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            if events.len() <= code {
                events.resize(code + 1, None);
            }
            let flags = f.get(2).unwrap_or(&"").to_string();
            let marks = Mark::of(&flags);
            // An fd-making call names its result `fd` (open, socket, ...).
            let has_res = code % 2 == 1
                && params.first().is_some_and(|p: &ParamInfo| {
                    p.name == "res" || (p.name == "fd" && marks & Mark::CreatesFd as u32 != 0)
                });
            let index_of = |n: &str| params.iter().position(|p: &ParamInfo| p.name == n);
            let (fd_index, data_index) = (index_of("fd"), index_of("data"));
            events[code] = Some(EventInfo {
                fd_index,
                data_index,
                name: name.to_string(),
                hidden: flags.contains("EC_INTERNAL") || flags.contains("EF_UNUSED"),
                marks,
                has_res,
                category: category_of(&flags),
                flags,
                params,
            });
        }
        let mut syscalls: Vec<Option<String>> = Vec::new();
        for line in include_str!("../data/syscalls.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
        {
            let mut f = line.split('\t');
            if let (Some(Ok(code)), Some(name)) = (f.next().map(str::parse::<usize>), f.next()) {
                if syscalls.len() <= code {
                    syscalls.resize(code + 1, None);
                }
                syscalls[code] = Some(name.to_string());
            }
        }
        let mut flags: std::collections::HashMap<String, Vec<(String, u64)>> = Default::default();
        for line in include_str!("../data/flags.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
        {
            let f: Vec<&str> = line.split('\t').collect();
            if let (Some(t), Some(n), Some(Ok(v))) =
                (f.first(), f.get(1), f.get(2).map(|v| v.parse::<i64>()))
            {
                flags
                    .entry(t.to_string())
                    .or_default()
                    .push((n.to_string(), v as u64));
            }
        }
        Tables {
            events,
            syscalls,
            flags,
        }
    })
}

/// The table entry of event type `code`, if the schema knows it.
#[inline]
pub fn event(code: u16) -> Option<&'static EventInfo> {
    tables().events.get(usize::from(code))?.as_ref()
}

/// Whether events of type `code` are `container` metadata records (JSON or the old form):
/// state, not something a process did; sysdig does not print them.
pub fn is_metadata(code: u16) -> bool {
    event(code).is_some_and(|i| i.name == "container" && i.flags.contains("EC_METAEVENT"))
}

/// How many event codes the table has (codes are below it).
pub fn event_count() -> usize {
    tables().events.len()
}

/// Whether `name` is an event type a capture can hold: an event of the table, or a system
/// call a generic event stands for (sysdig shows those by the call's name).
pub fn is_type_name(name: &str) -> bool {
    let t = tables();
    t.events.iter().flatten().any(|e| e.name == name)
        || t.syscalls.iter().flatten().any(|s| s == name)
}

/// Name of a ppm syscall code (the `id` of generic events).
pub fn syscall_name(code: u64) -> Option<&'static str> {
    tables()
        .syscalls
        .get(usize::try_from(code).ok()?)?
        .as_deref()
}

/// The name of x86_64 system call number `nr` (the `native_id` of generic events).
pub fn native_syscall_name(nr: u16) -> Option<&'static str> {
    static T: OnceLock<Vec<Option<&'static str>>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = vec![None; 512];
        for line in include_str!("../data/x86_64-syscalls.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
        {
            if let Some((n, name)) = line.split_once('\t') {
                if let Some(slot) = n.parse::<usize>().ok().and_then(|n| v.get_mut(n)) {
                    *slot = Some(name);
                }
            }
        }
        v
    })
    .get(usize::from(nr))
    .copied()
    .flatten()
}

/// The ppm syscall code of a system call name (the `id` of generic events).
pub fn syscall_code(name: &str) -> Option<u16> {
    let pos = tables()
        .syscalls
        .iter()
        .position(|s| s.as_deref() == Some(name))?;
    u16::try_from(pos).ok()
}

/// The names of flag table `table`, in table order.
pub fn flag_table(table: &str) -> &'static [(String, u64)] {
    tables().flags.get(table).map(Vec::as_slice).unwrap_or(&[])
}

/// Enter events have even codes, exit events odd ones.
#[inline]
pub fn is_enter(code: u16) -> bool {
    code.is_multiple_of(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_agree_with_the_flags_text() {
        for code in 0..430u16 {
            let Some(e) = event(code) else { continue };
            for (name, m) in Mark::ALL {
                let named = e.flags.split('|').any(|f| f.trim() == name);
                assert_eq!(e.is(m), named, "event {code} {} {name}", e.name);
            }
        }
        // read's exit: a system call that reads from an fd.
        let read = event(7).unwrap();
        assert!(read.is(Mark::Syscall) && read.is(Mark::IoRead) && read.is(Mark::UsesFd));
        assert!(!read.is(Mark::IoWrite));
    }

    #[test]
    fn table_knows_the_common_events() {
        assert_eq!(event(307).unwrap().name, "openat");
        assert_eq!(event(307).unwrap().params[0].ty, ParamType::Fd);
        assert_eq!(event(152).unwrap().name, "switch");
        assert_eq!(syscall_name(218), Some("epoll_pwait"));
        assert!(event(60000).is_none());
        assert!(is_enter(306) && !is_enter(307));
    }
}
