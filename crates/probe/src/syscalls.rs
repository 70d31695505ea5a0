//! What the probe records for each x86_64 system call: which user memory the kernel side
//! snapshots (the rule table it is given), and which standard scap event each entry and exit
//! becomes, with which parameters (falcosecurity schema 3.6.1, the table crates/scap reads).
//! System calls without a dedicated event become generic `syscall` events with their id.

/// How the kernel side takes a snapshot (`enum how` in probe.bpf.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum How {
    None = 0,
    Str = 1,
    BufRet = 2,
    BufLen = 3,
    AddrLen = 4,
    AddrPlen = 5,
    IovRet = 6,
    MsgRet = 7,
    MsgName = 8,
    MmArgs = 9,
    MmsgIov = 10,
    ExecName = 11,
}

impl How {
    /// Reads I/O payload (bounded by the snapshot length).
    pub fn is_payload(self) -> bool {
        matches!(
            self,
            How::BufRet | How::BufLen | How::IovRet | How::MsgRet | How::MmsgIov
        )
    }
}

/// One snapshot: how, from which argument, with which length argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snap(pub How, pub u8, pub u8);

const NO: Snap = Snap(How::None, 0, 0);

/// The snapshots of one call, taken when it returns (the probe has no entry hook: the
/// arguments are still in the saved registers, and the user memory they point at is still
/// there, except after a successful exec, which the execve rules read from the new
/// program's stack instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub slots: [Snap; 2],
    /// A socket call: its payload may be read up to the DNS snapshot length, which the
    /// converter keeps for port 53 only.
    pub socket: bool,
    /// Changes who the process is (clone, exec, prctl): the record carries the thread's
    /// name and cgroup, which other calls leave out to stay cheap.
    pub process: bool,
}

impl Rule {
    /// Takes no snapshot at all (the kernel side needs no table entry).
    pub fn is_empty(self) -> bool {
        !self.process && self.slots.iter().all(|s| s.0 == How::None)
    }

    /// The bytes of `struct rule` in probe.bpf.c.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        for (i, s) in self.slots.iter().enumerate() {
            b[4 * i] = s.0 as u8;
            b[4 * i + 1] = s.1;
            b[4 * i + 2] = s.2;
            b[4 * i + 3] = u8::from(self.socket && s.0.is_payload());
        }
        b[8..].copy_from_slice(&u32::from(self.process).to_ne_bytes());
        b
    }
}

// x86_64 system call numbers.
pub const READ: u16 = 0;
pub const WRITE: u16 = 1;
pub const OPEN: u16 = 2;
pub const CLOSE: u16 = 3;
pub const STAT: u16 = 4;
pub const LSTAT: u16 = 6;
pub const PREAD64: u16 = 17;
pub const PWRITE64: u16 = 18;
pub const READV: u16 = 19;
pub const WRITEV: u16 = 20;
pub const ACCESS: u16 = 21;
pub const SOCKET: u16 = 41;
pub const CONNECT: u16 = 42;
pub const ACCEPT: u16 = 43;
pub const SENDTO: u16 = 44;
pub const RECVFROM: u16 = 45;
pub const SENDMSG: u16 = 46;
pub const RECVMSG: u16 = 47;
pub const SHUTDOWN: u16 = 48;
pub const BIND: u16 = 49;
pub const LISTEN: u16 = 50;
pub const GETSOCKOPT: u16 = 55;
pub const CLONE: u16 = 56;
pub const FORK: u16 = 57;
pub const VFORK: u16 = 58;
pub const EXECVE: u16 = 59;
pub const EXIT: u16 = 60;
pub const KILL: u16 = 62;
pub const PRCTL: u16 = 157;
pub const RENAME: u16 = 82;
pub const MKDIR: u16 = 83;
pub const CREAT: u16 = 85;
pub const UNLINK: u16 = 87;
pub const EXIT_GROUP: u16 = 231;
pub const TGKILL: u16 = 234;
pub const SENDMMSG: u16 = 307;
pub const OPENAT: u16 = 257;
pub const MKDIRAT: u16 = 258;
pub const UNLINKAT: u16 = 263;
pub const ACCEPT4: u16 = 288;
pub const RENAMEAT2: u16 = 316;
pub const EXECVEAT: u16 = 322;
pub const CLONE3: u16 = 435;
pub const OPENAT2: u16 = 437;

/// Creates a process or thread (the new one returns 0 from it).
pub fn is_clone(nr: u16) -> bool {
    matches!(nr, CLONE | FORK | VFORK | CLONE3)
}

/// The snapshot rule of system call `nr`. Where an entry event needs a snapshot too, it
/// reads it from the same slot (sendto's and sendmsg's destination are slot 1, execve's
/// file name is slot 1).
pub fn rule(nr: u16) -> Rule {
    use How::*;
    let slots = match nr {
        READ | PREAD64 | WRITE | PWRITE64 => [Snap(BufRet, 1, 0), NO],
        OPEN | CREAT | STAT | LSTAT | ACCESS | UNLINK | MKDIR => [Snap(Str, 0, 0), NO],
        OPENAT | UNLINKAT | MKDIRAT => [Snap(Str, 1, 0), NO],
        OPENAT2 => [Snap(Str, 1, 0), Snap(BufLen, 2, 3)],
        READV | WRITEV => [Snap(IovRet, 1, 2), NO],
        CONNECT | BIND => [Snap(AddrLen, 1, 2), NO],
        SENDTO => [Snap(BufRet, 1, 0), Snap(AddrLen, 4, 5)],
        RECVFROM => [Snap(BufRet, 1, 0), Snap(AddrPlen, 4, 5)],
        SENDMSG | RECVMSG => [Snap(MsgRet, 1, 0), Snap(MsgName, 1, 0)],
        // glibc's resolver sends its A and AAAA queries with one sendmmsg.
        SENDMMSG => [Snap(MmsgIov, 1, 0), Snap(MsgName, 1, 0)],
        ACCEPT | ACCEPT4 => [Snap(AddrPlen, 1, 2), NO],
        // The option's value, *optlen bytes: SO_ERROR is how a non-blocking connect's result
        // (ECONNREFUSED, ETIMEDOUT) reaches the program.
        GETSOCKOPT => [Snap(AddrPlen, 3, 4), NO],
        EXECVE => [Snap(MmArgs, 0, 0), Snap(ExecName, 0, 0)],
        EXECVEAT => [Snap(MmArgs, 0, 0), Snap(ExecName, 1, 0)],
        RENAME => [Snap(Str, 0, 0), Snap(Str, 1, 0)],
        RENAMEAT2 => [Snap(Str, 1, 0), Snap(Str, 3, 0)],
        // struct clone_args starts with the flags word.
        CLONE3 => [Snap(BufLen, 0, 1), NO],
        _ => crate::calls::paths(nr).map_or([NO, NO], |args| {
            args.map(|a| a.map_or(NO, |i| Snap(Str, i, 0)))
        }),
    };
    let socket = matches!(nr, SENDTO | RECVFROM | SENDMSG | RECVMSG | SENDMMSG);
    let process = is_clone(nr) || matches!(nr, EXECVE | EXECVEAT | PRCTL);
    Rule {
        slots,
        socket,
        process,
    }
}

/// The scap event codes of system call `nr`: (enter, exit); None for the generic pair.
pub fn codes(nr: u16) -> Option<(u16, u16)> {
    Some(match nr {
        OPEN => (2, 3),
        CLOSE => (4, 5),
        READ => (6, 7),
        WRITE => (8, 9),
        SOCKET => (18, 19),
        BIND => (20, 21),
        CONNECT => (22, 23),
        LISTEN => (24, 25),
        GETSOCKOPT => (46, 47),
        SENDTO => (30, 31),
        RECVFROM => (34, 35),
        SHUTDOWN => (36, 37),
        SENDMSG => (48, 49),
        SENDMMSG => (50, 51),
        RECVMSG => (52, 53),
        CREAT => (58, 59),
        STAT => (66, 67),
        LSTAT => (68, 69),
        PREAD64 => (112, 113),
        PWRITE64 => (114, 115),
        READV => (116, 117),
        WRITEV => (118, 119),
        KILL => (128, 129),
        TGKILL => (132, 133),
        RENAME => (174, 175),
        CLONE => (222, 223),
        FORK => (224, 225),
        VFORK => (226, 227),
        ACCEPT => (246, 247),
        ACCESS => (264, 265),
        MKDIR => (276, 277),
        EXECVE => (292, 293),
        UNLINK => (300, 301),
        UNLINKAT => (302, 303),
        MKDIRAT => (304, 305),
        OPENAT => (306, 307),
        RENAMEAT2 => (318, 319),
        OPENAT2 => (326, 327),
        EXECVEAT => (330, 331),
        CLONE3 => (334, 335),
        ACCEPT4 => (388, 389),
        _ => return crate::calls::codes(nr),
    })
}

/// The x86_64 name of system call `nr`.
pub fn name(nr: u16) -> Option<&'static str> {
    crashscope_scap::schema::native_syscall_name(nr)
}

/// The `id` of a generic event for system call `nr`: its ppm code — but 0 (unknown) for
/// codes from 329 on, which sysdig 0.29 (Debian 12's) indexes past its table and crashes
/// on. The enter event's `native_id` still names the call.
pub fn generic_id(nr: u16) -> u16 {
    const OLDEST_READERS_TABLE: u16 = 329;
    // Every generic event asks: look each number up by name once, not per event.
    static IDS: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    let ids = IDS.get_or_init(|| {
        (0..512u16)
            .map(|nr| {
                name(nr)
                    .and_then(crashscope_scap::schema::syscall_code)
                    .filter(|c| *c < OLDEST_READERS_TABLE)
                    .unwrap_or(0)
            })
            .collect()
    });
    ids.get(usize::from(nr)).copied().unwrap_or(0)
}

/// Linux clone(2) flags in scap's encoding (PPM_CL_*).
pub fn clone_flags(linux: u64) -> u32 {
    const MAP: [(u64, u32); 16] = [
        (0x400, 1),            // CLONE_FILES
        (0x200, 2),            // CLONE_FS
        (0x8000000, 8),        // CLONE_NEWIPC
        (0x40000000, 16),      // CLONE_NEWNET
        (0x20000, 32),         // CLONE_NEWNS
        (0x20000000, 64),      // CLONE_NEWPID
        (0x4000000, 128),      // CLONE_NEWUTS
        (0x8000, 256),         // CLONE_PARENT
        (0x100000, 512),       // CLONE_PARENT_SETTID
        (0x800, 2048),         // CLONE_SIGHAND
        (0x40000, 4096),       // CLONE_SYSVSEM
        (0x10000, 8192),       // CLONE_THREAD
        (0x100, 32768),        // CLONE_VM
        (0x10000000, 1 << 20), // CLONE_NEWUSER
        (0x4000, 1 << 27),     // CLONE_VFORK
        (0x2000000, 1 << 28),  // CLONE_NEWCGROUP
    ];
    MAP.iter()
        .filter(|(l, _)| linux & l != 0)
        .fold(0, |f, (_, p)| f | p)
}

/// Linux open(2) flags in scap's encoding (PPM_O_*), which numbers them differently.
pub fn open_flags(linux: u64) -> u32 {
    let mut f = match linux & 3 {
        0 => 1, // O_RDONLY
        1 => 2, // O_WRONLY
        _ => 3, // O_RDWR
    };
    const MAP: [(u64, u32); 12] = [
        (0o100, 4),         // O_CREAT
        (0o2000, 8),        // O_APPEND
        (0o10000, 16),      // O_DSYNC
        (0o200, 32),        // O_EXCL
        (0o4000, 64),       // O_NONBLOCK
        (0o4010000, 128),   // O_SYNC
        (0o1000, 256),      // O_TRUNC
        (0o40000, 512),     // O_DIRECT
        (0o200000, 1024),   // O_DIRECTORY
        (0o100000, 2048),   // O_LARGEFILE
        (0o2000000, 4096),  // O_CLOEXEC
        (0o20200000, 8192), // O_TMPFILE
    ];
    for (l, p) in MAP {
        if linux & l == l {
            f |= p;
        }
    }
    f
}

/// The mode argument as scap records it: only meaningful when a file may be created.
pub fn open_mode(linux_flags: u64, mode: u64) -> u32 {
    if linux_flags & (0o100 | 0o20200000) != 0 {
        (mode & 0o7777) as u32
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_use_scaps_numbering() {
        // O_RDONLY|O_CLOEXEC, as every dynamic loader opens libraries.
        assert_eq!(open_flags(0o2000000), 1 | 4096);
        // O_WRONLY|O_CREAT|O_TRUNC, as a shell's `>` redirection.
        assert_eq!(open_flags(0o1 | 0o100 | 0o1000), 2 | 4 | 256);
        assert_eq!(open_mode(0o100, 0o100644), 0o644);
        assert_eq!(open_mode(0, 0o644), 0);
    }

    #[test]
    fn syscall_names_come_from_the_table_and_map_to_generic_ids() {
        assert_eq!(name(READ), Some("read"));
        assert_eq!(name(CLONE3), Some("clone3"));
        assert_eq!(name(462), Some("mseal"));
        assert_eq!(name(511), None);
        // Every named system call without its own event has a generic id sysdig knows.
        let known = (0..512u16)
            .filter_map(name)
            .filter(|n| crashscope_scap::schema::syscall_code(n).is_some())
            .count();
        assert!(known > 300, "{known}");
    }

    #[test]
    fn every_dedicated_event_exists_in_the_schema() {
        for nr in 0..512u16 {
            if let Some((e, x)) = codes(nr) {
                assert!(
                    crashscope_scap::schema::event(e).is_some(),
                    "{nr} enter {e}"
                );
                assert!(crashscope_scap::schema::event(x).is_some(), "{nr} exit {x}");
            }
        }
    }
}
