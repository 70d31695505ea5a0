//! Loading the BPF program, choosing what it watches, and reading its ring buffer: the
//! kernel side of a capture. Needs root (or CAP_BPF and CAP_PERFMON).

use std::mem::MaybeUninit;
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel as _, Skel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags, MapHandle, MapType, OpenObject, RingBufferBuilder};

use crate::merge::Merge;
use crate::syscalls;

mod bpf {
    #![allow(
        clippy::all,
        clippy::pedantic,
        unused,
        non_camel_case_types,
        non_snake_case
    )]
    include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
}
use bpf::*;

/// Why the probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "cannot load the eBPF probe: {0} (it needs root, or CAP_BPF and CAP_PERFMON, and a \
         kernel with BTF at /sys/kernel/btf/vmlinux)"
    )]
    Load(#[source] libbpf_rs::Error),
    #[error("eBPF probe: {0}")]
    Run(#[from] libbpf_rs::Error),
    #[error("cannot start the probe's reader thread: {0}")]
    Thread(String),
    #[error("process id {0} is above the kernel's pid_max")]
    Pid(u32),
}

/// Which processes to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// These processes and every process they start.
    Pids(Vec<u32>),
    /// These processes, and every process that executes a program inside these cgroups or
    /// below them (v2 ids: the inode of the cgroup's directory in the cgroup2 mount) — a
    /// pod's cgroup covers each new container of the pod — and every process those start.
    Cgroups { ids: Vec<u64>, pids: Vec<u32> },
    /// Every process on the machine except the recorder.
    All,
}

/// Knobs of the probe.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    /// Bytes of I/O payload kept per call (sysdig's -s).
    pub snaplen: u32,
    /// Size of each CPU's ring buffer in bytes (a power of two, at least a page).
    pub ring_bytes: u32,
    /// Record the environment of programs executed (off by default: environments hold
    /// secrets).
    pub env: bool,
    /// Hook system-call entry too, so that each call carries the time it began (off by
    /// default: every process on the machine pays for a second hook).
    pub latency: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            target: Target::All,
            snaplen: 256,
            ring_bytes: default_ring_bytes(),
            env: false,
            latency: false,
        }
    }
}

/// Records lost or damaged, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records written to the ring buffer.
    pub records: u64,
    /// Records dropped because the ring buffer was full (the reader fell behind).
    pub dropped: u64,
    /// Memory snapshots that could not be read (paged-out user memory).
    pub unreadable: u64,
}

/// A loaded, attached probe.
pub struct Probe {
    skel: ProbeSkel<'static>,
    watched: PidSet,
    /// The ring buffers, one per CPU online at start.
    rings: Vec<MapHandle>,
}

/// The probe's bitmap of watched processes (`tgids` in probe.bpf.c), mapped into this
/// process: setting a bit is one atomic OR, as the kernel side's fork hook does it, so
/// neither side overwrites the other's bits in a shared word.
struct PidSet {
    words: *const AtomicU64,
    len: usize,
    bytes: usize,
}

// SAFETY: the mapping is only accessed through atomics and lives as long as the PidSet.
unsafe impl Send for PidSet {}
unsafe impl Sync for PidSet {}

impl PidSet {
    fn map(fd: BorrowedFd<'_>, len: usize) -> std::io::Result<PidSet> {
        let bytes = (len * 8).div_ceil(4096) * 4096;
        // SAFETY: a shared mapping of an mmapable BPF array of `len` u64 words; the kernel
        // keeps the map alive while it is mapped.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(PidSet {
            words: ptr as *const AtomicU64,
            len,
            bytes,
        })
    }

    fn add(&self, pid: u32) -> bool {
        let word = (pid >> 6) as usize;
        if word >= self.len {
            return false;
        }
        // SAFETY: word < len, inside the mapping; AtomicU64 has u64's layout.
        let w = unsafe { &*self.words.add(word) };
        w.fetch_or(1 << (pid & 63), Ordering::SeqCst);
        true
    }
}

impl Drop for PidSet {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; nothing refers to it any more.
        unsafe { libc::munmap(self.words as *mut libc::c_void, self.bytes) };
    }
}

/// How long a record may take from its timestamp to its ring (the probe's program runs
/// for microseconds; a preempted one may take longer and is then written a little out of
/// order, as sysdig's per-CPU buffers are). Records younger than this wait a round.
const IN_FLIGHT_NS: u64 = 1_000_000;

/// The reading thread's nice value.
const READER_NICE: libc::c_int = -10;

/// Now on the clock the probe stamps records with (`bpf_ktime_get_boot_ns`).
fn boot_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec on the stack; CLOCK_BOOTTIME always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Each CPU's ring by default: 16 MiB (over 60 ms of one CPU's calls at full speed, six of
/// the reader's polls) on machines of up to 16 CPUs; on bigger ones, where each CPU's share of
/// the calls is smaller, the power of two that keeps them within 256 MiB in all, but at least
/// 2 MiB a CPU (so past 128 CPUs the total grows again).
pub fn default_ring_bytes() -> u32 {
    // The rings are one per online CPU, whatever share of them this process may run on.
    let possible = libbpf_rs::num_possible_cpus().map_or(1, |n| n as u32);
    ring_bytes_for(online_cpus(possible).len())
}

fn ring_bytes_for(cpus: usize) -> u32 {
    let share = (256usize << 20) / cpus.max(1);
    let pow2 = if share.is_power_of_two() {
        share
    } else {
        share.next_power_of_two() / 2
    };
    pow2.clamp(2 << 20, 16 << 20) as u32
}

/// The CPUs online now (`/sys/devices/system/cpu/online`: "0-3,6"), below `possible`;
/// every possible CPU when the list cannot be read.
fn online_cpus(possible: u32) -> Vec<u32> {
    let all = || (0..possible.max(1)).collect();
    match std::fs::read_to_string("/sys/devices/system/cpu/online") {
        Ok(s) => {
            let cpus = parse_cpu_list(&s, possible);
            if cpus.is_empty() {
                all()
            } else {
                cpus
            }
        }
        Err(_) => all(),
    }
}

fn parse_cpu_list(s: &str, possible: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) else {
            continue;
        };
        out.extend(a..=b.min(possible.saturating_sub(1)));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The most process ids the kernel hands out (the bitmap's size).
fn pid_max() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 22)
}

impl Probe {
    pub fn start(cfg: &Config) -> Result<Probe, ProbeError> {
        // The skeleton borrows its object storage for as long as it lives; a recorder loads
        // one probe per process, so the storage is leaked on purpose.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let builder = ProbeSkelBuilder::default();
        let mut open = builder.open(storage).map_err(ProbeError::Load)?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = std::process::id();
            ro.trace_all = u32::from(cfg.target == Target::All);
            ro.watch_cgroups = u32::from(matches!(cfg.target, Target::Cgroups { .. }));
            ro.snaplen = cfg.snaplen.min(65535);
            ro.snaplen_net = ro.snaplen.max(crate::convert::DNS_SNAPLEN as u32);
            // Wake the reader when a megabyte is queued, or a quarter of a smaller ring.
            ro.wake_bytes = u64::from(cfg.ring_bytes / 4).min(1 << 20);
            ro.record_env = u32::from(cfg.env);
            ro.latency = u32::from(cfg.latency);
        }
        open.progs.sys_enter.set_autoload(cfg.latency);
        let cpus = libbpf_rs::num_possible_cpus().map_err(ProbeError::Load)? as u32;
        let online = online_cpus(cpus);
        let ring_bytes = cfg.ring_bytes.next_power_of_two().max(4096);
        let rings = online
            .iter()
            .map(|cpu| {
                MapHandle::create(
                    MapType::RingBuf,
                    Some(format!("cs_ring{cpu}")),
                    0,
                    0,
                    ring_bytes,
                    &libbpf_rs::libbpf_sys::bpf_map_create_opts {
                        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
                        ..Default::default()
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(ProbeError::Load)?;
        let Some(first) = rings.first() else {
            return Err(ProbeError::Load(libbpf_rs::Error::from(
                std::io::Error::other("no CPU is online"),
            )));
        };
        open.maps
            .rings
            .set_inner_map_fd(first.as_fd())
            .map_err(ProbeError::Load)?;
        open.maps
            .rings
            .set_max_entries(cpus.max(1))
            .map_err(ProbeError::Load)?;
        open.maps
            .scratch
            .set_max_entries(cpus.max(1))
            .map_err(ProbeError::Load)?;
        let words = pid_max().div_ceil(64).max(1);
        open.maps
            .tgids
            .set_max_entries(words)
            .map_err(ProbeError::Load)?;
        let skel = open.load().map_err(ProbeError::Load)?;
        for cpu in 0..cpus.max(1) {
            // A CPU brought online later shares the first ring rather than losing records.
            let ring = online
                .iter()
                .position(|c| *c == cpu)
                .and_then(|i| rings.get(i))
                .unwrap_or(first);
            let fd = ring.as_fd().as_raw_fd() as u32;
            skel.maps
                .rings
                .update(&cpu.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)?;
        }
        let watched = PidSet::map(skel.maps.tgids.as_fd(), words as usize)
            .map_err(|e| ProbeError::Load(libbpf_rs::Error::from(e)))?;
        for nr in 0..512u16 {
            let r = syscalls::rule(nr);
            if !r.is_empty() {
                skel.maps.rules.update(
                    &u32::from(nr).to_ne_bytes(),
                    &r.to_bytes(),
                    MapFlags::ANY,
                )?;
            }
        }
        let mut probe = Probe {
            skel,
            watched,
            rings,
        };
        match &cfg.target {
            Target::Pids(pids) => {
                for p in pids {
                    probe.watch(*p)?;
                }
            }
            Target::Cgroups { ids, pids } => {
                for p in pids {
                    probe.watch(*p)?;
                }
                for id in ids {
                    probe.watch_cgroup(*id)?;
                }
            }
            Target::All => {}
        }
        probe.skel.attach().map_err(ProbeError::Load)?;
        Ok(probe)
    }

    /// Adds a process (and, from now on, its children) to what is recorded.
    pub fn watch(&self, pid: u32) -> Result<(), ProbeError> {
        if self.watched.add(pid) {
            Ok(())
        } else {
            Err(ProbeError::Pid(pid))
        }
    }

    /// Adds a cgroup: processes that exec in it or below are recorded from then on, with
    /// their children. Only a probe started with [`Target::Cgroups`] looks.
    pub fn watch_cgroup(&self, id: u64) -> Result<(), ProbeError> {
        self.skel
            .maps
            .cgroups
            .update(&id.to_ne_bytes(), &[1u8], MapFlags::ANY)?;
        Ok(())
    }

    /// Stops looking at a cgroup (its container is gone; ids are not reused while the
    /// directory exists, but a map entry is not free).
    pub fn unwatch_cgroup(&self, id: u64) {
        let _ = self.skel.maps.cgroups.delete(&id.to_ne_bytes());
    }

    /// Reads records until `keep_going` says stop, polling every 10 ms (the kernel wakes the
    /// reader only when a megabyte is queued). `each` gets every record's bytes, in time
    /// order across the CPUs' rings.
    pub fn run(
        &self,
        mut each: impl FnMut(&[u8]),
        mut keep_going: impl FnMut() -> bool,
    ) -> Result<(), ProbeError> {
        // The reader competes for CPU with the programs it records, which make the records: at
        // the same priority, two busy programs on two CPUs starved it long enough to overflow
        // the rings now and then. It needs a fraction of a core, so ahead of them it takes
        // little from them (root may raise it; elsewhere it stays as it was).
        // SAFETY: gettid and setpriority on this thread have no preconditions.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, READER_NICE);
        }
        let merge = std::cell::RefCell::new(Merge::new(self.rings.len()));
        let mut rb = RingBufferBuilder::new();
        for (i, ring) in self.rings.iter().enumerate() {
            let merge = &merge;
            rb.add(ring, move |data: &[u8]| {
                merge.borrow_mut().stage(i, data);
                0
            })?;
        }
        let rb = rb.build()?;
        let mut read = || -> Result<(), ProbeError> {
            while keep_going() {
                // Every record stamped before this moment is in its ring by the time the
                // rings are drained, but for a program still between its clock read and its
                // commit.
                let upto = boot_ns().saturating_sub(IN_FLIGHT_NS);
                // A signal (Ctrl-C ending a capture) interrupts the wait: a round like any.
                let polled = rb.poll_raw(Duration::from_millis(10));
                if polled < 0 && polled != -libc::EINTR {
                    return Err(ProbeError::Run(libbpf_rs::Error::from_raw_os_error(
                        -polled,
                    )));
                }
                rb.consume()?;
                merge.borrow_mut().emit(Some(upto), &mut each);
            }
            rb.consume()?;
            Ok(())
        };
        let r = read();
        // What was staged is handed on even when reading failed.
        merge.borrow_mut().emit(None, &mut each);
        r
    }

    /// Records dropped on each CPU (ring full), for telling which CPU's bursts overran.
    pub fn drops_per_cpu(&self) -> Result<Vec<u64>, ProbeError> {
        let per_cpu = self
            .skel
            .maps
            .counters
            .lookup_percpu(&1u32.to_ne_bytes(), MapFlags::ANY)?
            .unwrap_or_default();
        Ok(per_cpu
            .iter()
            .map(|v| {
                v.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_ne_bytes)
            })
            .collect())
    }

    pub fn counters(&self) -> Result<Counters, ProbeError> {
        let sum = |i: u32| -> Result<u64, ProbeError> {
            let per_cpu = self
                .skel
                .maps
                .counters
                .lookup_percpu(&i.to_ne_bytes(), MapFlags::ANY)?
                .unwrap_or_default();
            Ok(per_cpu
                .iter()
                .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                .map(u64::from_ne_bytes)
                .sum())
        };
        Ok(Counters {
            records: sum(0)?,
            dropped: sum(1)?,
            unreadable: sum(2)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_are_16_mib_a_cpu_on_small_nodes_and_256_mib_in_all_on_big_ones() {
        assert_eq!(ring_bytes_for(2), 16 << 20);
        assert_eq!(ring_bytes_for(16), 16 << 20);
        assert_eq!(ring_bytes_for(64), 4 << 20);
        assert_eq!(ring_bytes_for(96), 2 << 20);
        assert_eq!(ring_bytes_for(512), 2 << 20);
        assert_eq!(ring_bytes_for(0), 16 << 20);
    }

    #[test]
    fn cpu_lists_read_as_the_kernel_writes_them() {
        assert_eq!(parse_cpu_list("0-1\n", 2), [0, 1]);
        assert_eq!(parse_cpu_list("0,2-3,6", 8), [0, 2, 3, 6]);
        // Past the possible CPUs, or garbage: left out.
        assert_eq!(parse_cpu_list("0-7", 2), [0, 1]);
        assert_eq!(parse_cpu_list("x,1", 4), [1]);
        assert!(parse_cpu_list("", 4).is_empty());
    }
}
