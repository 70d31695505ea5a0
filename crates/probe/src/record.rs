//! The raw records the BPF program sends through the ring buffer (`struct rec` in
//! `bpf/probe.bpf.c`): one per system call (taken when it returns), process exit, signal
//! or OOM kill, with the raw arguments and up to two snapshots of user memory.

/// Bytes before the snapshots (`HDR_SIZE` on the BPF side).
pub const HEADER: usize = 128;

/// What a record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A system call returned: its number, arguments, return value and snapshots.
    Call,
    /// A thread ended; `args[0]` is the kernel's exit code (wait status encoding), `args[1]`
    /// the system call it was in (exit, exit_group; -1 outside one), `args[2]` that call's
    /// first argument.
    ProcExit,
    /// A signal is being delivered; `args[0]` is the signal number.
    Signal,
    /// The OOM killer chose this process; `args[0]` is the process that ran out of memory.
    Oom,
}

/// One record, borrowed from the ring buffer.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Nanoseconds since boot (CLOCK_BOOTTIME).
    pub boot_ns: u64,
    pub tid: u32,
    pub pid: u32,
    pub ppid: u32,
    pub kind: Kind,
    /// The x86_64 system call number (calls).
    pub nr: u16,
    pub ret: i64,
    pub args: [u64; 6],
    /// Snapshot i, or None when it could not be read.
    pub slots: [Option<&'a [u8]>; 2],
    /// The thread's name; recorded for calls that change who a process is (clone, exec,
    /// prctl) and for process exits, signals and OOM kills; empty on other calls.
    pub comm: &'a str,
    /// The thread's cgroup v2 id (the inode of its cgroup directory); recorded like `comm`,
    /// 0 on other calls.
    pub cgroup: u64,
    /// When a call began (nanoseconds since boot), if the probe hooks entries; else 0.
    pub entered_ns: u64,
}

/// Why a record was refused (a probe/reader version mismatch; never expected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed probe record ({0})")]
pub struct Malformed(pub &'static str);

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

impl<'a> Record<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Record<'a>, Malformed> {
        if b.len() < HEADER {
            return Err(Malformed("shorter than its header"));
        }
        let kind = match u16_at(b, 20) {
            1 => Kind::Call,
            2 => Kind::ProcExit,
            3 => Kind::Signal,
            4 => Kind::Oom,
            _ => return Err(Malformed("unknown kind")),
        };
        let mut args = [0u64; 6];
        for (i, a) in args.iter_mut().enumerate() {
            *a = u64_at(b, 32 + 8 * i);
        }
        let len0 = u32_at(b, 80) as usize;
        let len1 = u32_at(b, 84) as usize;
        let flags = u32_at(b, 88);
        let data = &b[HEADER..];
        if len0 + len1 > data.len() {
            return Err(Malformed("snapshots longer than the record"));
        }
        let slot = |i: u32, from: usize, len: usize| {
            (flags & (1 << i) == 0).then(|| &data[from..from + len])
        };
        let comm = &b[96..112];
        let end = comm.iter().position(|c| *c == 0).unwrap_or(comm.len());
        Ok(Record {
            boot_ns: u64_at(b, 0),
            tid: u32_at(b, 8),
            pid: u32_at(b, 12),
            ppid: u32_at(b, 16),
            kind,
            nr: u16_at(b, 22),
            ret: u64_at(b, 24) as i64,
            args,
            slots: [slot(0, 0, len0), slot(1, len0, len1)],
            comm: std::str::from_utf8(&comm[..end]).unwrap_or(""),
            cgroup: u64_at(b, 112),
            entered_ns: u64_at(b, 120),
        })
    }

    /// Snapshot i as text up to its first NUL (paths, argv[0]).
    pub fn text(&self, i: usize) -> Option<&'a str> {
        let s = self.slots.get(i).copied().flatten()?;
        let end = s.iter().position(|c| *c == 0).unwrap_or(s.len());
        Some(std::str::from_utf8(&s[..end]).unwrap_or(""))
    }
}

/// A record as the BPF program lays it out (thread 42 of process 42, named `cat`, at 1 µs
/// after boot): what tests and the converter's benchmark feed the converter.
pub fn raw(kind: u16, nr: u16, ret: i64, args: [u64; 6], slots: [&[u8]; 2]) -> Vec<u8> {
    let mut b = vec![0u8; HEADER];
    b[0..8].copy_from_slice(&1_000u64.to_le_bytes());
    b[8..12].copy_from_slice(&42u32.to_le_bytes());
    b[12..16].copy_from_slice(&42u32.to_le_bytes());
    b[16..20].copy_from_slice(&1u32.to_le_bytes());
    b[20..22].copy_from_slice(&kind.to_le_bytes());
    b[22..24].copy_from_slice(&nr.to_le_bytes());
    b[24..32].copy_from_slice(&ret.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        b[32 + 8 * i..40 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    b[80..84].copy_from_slice(&(slots[0].len() as u32).to_le_bytes());
    b[84..88].copy_from_slice(&(slots[1].len() as u32).to_le_bytes());
    b[96..99].copy_from_slice(b"cat");
    b.extend_from_slice(slots[0]);
    b.extend_from_slice(slots[1]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_with_its_snapshots() {
        let b = raw(
            1,
            257,
            3,
            [u64::MAX - 99, 0x7fff, 0, 0, 0, 0],
            [b"/etc/hostname\0", b""],
        );
        let r = Record::parse(&b).unwrap();
        assert_eq!((r.kind, r.nr, r.ret, r.comm), (Kind::Call, 257, 3, "cat"));
        assert_eq!(r.args[0] as i64, -100);
        assert_eq!(r.text(0), Some("/etc/hostname"));
        assert_eq!(r.slots[1], Some(&b""[..]));
    }

    #[test]
    fn truncated_or_inconsistent_records_are_refused_not_read() {
        let b = raw(1, 0, 0, [0; 6], [b"abc", b""]);
        assert!(Record::parse(&b[..50]).is_err());
        assert!(Record::parse(&b[..HEADER + 1]).is_err());
        let mut bad = b.clone();
        bad[20] = 9;
        assert!(Record::parse(&bad).is_err());
        // Any bytes at all: never a panic.
        for n in 0..b.len() {
            let _ = Record::parse(&b[..n]);
        }
    }
}
