//! A capture: the probe's records for a set of processes written as a self-contained
//! `.scap` — machine info, the process list of what is watched at the start (so the
//! capture does not lose process state), then every event, then a notification saying what
//! was lost, if anything.

use std::io::Write;

use crashscope_scap::block::{EventRecord, MachineInfo, ThreadInfo};
use crashscope_scap::build::string;
use crashscope_scap::notes::{self, Losses};
use crashscope_scap::writer::Writer;

use crate::convert::{Converter, Proc, NOTIFICATION};
use crate::param::Events;
use crate::probe::Counters;
use crate::record::Record;

/// Nanoseconds on `clock` now.
pub(crate) fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Epoch nanoseconds at boot: probe times are CLOCK_BOOTTIME.
pub fn boot_epoch_ns() -> u64 {
    (clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME)).max(0) as u64
}

/// A process as /proc shows it now; None when it is gone.
pub fn thread_info(pid: u32) -> Option<ThreadInfo> {
    let dir = format!("/proc/{pid}");
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let first = |name: &str| -> u32 {
        field(name)
            .and_then(|v| v.split_whitespace().next().and_then(|x| x.parse().ok()))
            .unwrap_or(0)
    };
    let cmdline = std::fs::read(format!("{dir}/cmdline")).unwrap_or_default();
    let mut argv = cmdline
        .split(|c| *c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned());
    let exe = argv.next().unwrap_or_default();
    let link = |name: &str| {
        std::fs::read_link(format!("{dir}/{name}"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    Some(ThreadInfo {
        tid: i64::from(pid),
        pid: i64::from(pid),
        ptid: i64::from(first("PPid:")),
        sid: 0,
        vpgid: 0,
        comm: field("Name:").unwrap_or_default(),
        exe,
        exepath: link("exe"),
        args: argv.collect(),
        cwd: crate::convert::cwd_of(pid),
        fdlimit: 1024,
        flags: 0,
        uid: first("Uid:"),
        gid: first("Gid:"),
        vmsize_kb: first("VmSize:"),
        vmrss_kb: first("VmRSS:"),
        vmswap_kb: first("VmSwap:"),
        pfmajor: 0,
        pfminor: 0,
        env: Vec::new(),
        vtid: i64::from(pid),
        vpid: i64::from(pid),
        cgroups: std::fs::read_to_string(format!("{dir}/cgroup"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ':');
                let (_, subsys, path) = (it.next()?, it.next()?, it.next()?);
                Some(format!(
                    "{}={path}",
                    if subsys.is_empty() { "unified" } else { subsys }
                ))
            })
            .collect(),
        root: "/".into(),
        loginuid: u32::MAX,
    })
}

fn machine() -> MachineInfo {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    MachineInfo {
        num_cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_size_bytes: mem_kb * 1024,
        max_pid: 4_194_304,
        hostname,
        boot_ts_epoch: boot_epoch_ns(),
        flags: 0,
    }
}

/// What a finished capture holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    /// Records that were not standard events (malformed; never expected).
    pub malformed: u64,
    pub counters: Counters,
}

/// Writes records as they come.
pub struct CaptureWriter<W: Write> {
    writer: Writer<W>,
    conv: Converter,
    /// The current record's events (reused: no allocation per record).
    events: Events,
    pub summary: Summary,
    /// Events written so far, readable from other threads (progress while converting runs
    /// on a thread of its own).
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<W: Write> CaptureWriter<W> {
    /// Starts the file with the machine and the processes already running in `pids`.
    pub fn new(out: W, pids: &[u32]) -> std::io::Result<Self> {
        let threads: Vec<ThreadInfo> = pids.iter().filter_map(|p| thread_info(*p)).collect();
        let mut fds = crate::fdtable::FdTable::default();
        for p in pids {
            fds.seed(std::path::Path::new("/proc"), *p);
        }
        Self::with_threads(out, threads, &fds, Vec::new())
    }

    /// Starts the file with the machine and the given process list and open descriptors (a
    /// flight recorder's: the processes are gone by the time it writes); `cgroups` go into the clone and
    /// execve events of new processes, so readers place them in the same container.
    pub fn with_threads(
        out: W,
        threads: Vec<ThreadInfo>,
        fds: &crate::fdtable::FdTable,
        cgroups: Vec<String>,
    ) -> std::io::Result<Self> {
        let mut writer = Writer::new(out)?;
        let mi = machine();
        writer.machine_info(&mi)?;
        writer.processes(&threads)?;
        for (pid, list) in fds.lists() {
            writer.fds(pid, &list)?;
        }
        let mut conv = Converter::new(mi.boot_ts_epoch);
        conv.cgroups = cgroups;
        conv.procs = threads
            .iter()
            .map(|t| {
                (
                    t.pid as u32,
                    Proc {
                        exe: t.exe.clone(),
                        args: t.args.clone(),
                        comm: t.comm.clone(),
                        cwd: t.cwd.clone(),
                    },
                )
            })
            .collect();
        Ok(CaptureWriter {
            writer,
            conv,
            events: Events::default(),
            summary: Summary::default(),
            written: Default::default(),
        })
    }

    /// Keeps `n` bytes of payload per call (port 53 keeps more; see `convert::DNS_SNAPLEN`).
    pub fn set_snaplen(&mut self, n: u32) {
        self.conv.snaplen = n as usize;
    }

    /// A metaevent (container metadata, ...) at `boot_ns`.
    pub fn meta_event(&mut self, boot_ns: u64, code: u16, params: &[&[u8]]) -> std::io::Result<()> {
        let ts = self.conv.boot_epoch_ns + boot_ns;
        self.writer.event(&EventRecord::build(ts, 0, code, params))
    }

    /// A notification (sysdig's `evt.type=notification`) by thread `tid`: what the runtime
    /// knew that the system calls do not say.
    pub fn note(&mut self, boot_ns: u64, tid: u32, id: &str, desc: &str) -> std::io::Result<()> {
        let ts = self.conv.boot_epoch_ns + boot_ns;
        let ev = EventRecord::build(
            ts,
            i64::from(tid),
            NOTIFICATION,
            &[&string(id), &string(desc)],
        );
        self.writer.event(&ev)?;
        self.summary.events += 1;
        Ok(())
    }

    /// Events written so far, as a counter other threads can read while this one writes.
    pub fn written(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.written.clone()
    }

    /// One record from the probe.
    pub fn record(&mut self, raw: &[u8]) -> std::io::Result<()> {
        match Record::parse(raw) {
            Ok(r) => {
                self.conv.convert_into(&r, &mut self.events);
                self.writer.events_raw(self.events.iter())?;
                self.summary.events += self.events.len() as u64;
                self.written
                    .store(self.summary.events, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!("{e}");
                self.summary.malformed += 1;
            }
        }
        Ok(())
    }

    /// Ends the file; losses (`dropped_per_cpu`: the probe's drops by CPU) are written as a
    /// notification sysdig shows and `inspect summary` counts.
    pub fn finish(
        mut self,
        counters: Counters,
        dropped_per_cpu: &[u64],
        ts: u64,
    ) -> std::io::Result<(W, Summary)> {
        self.summary.counters = counters;
        let losses = Losses {
            dropped: counters.dropped,
            dropped_per_cpu: dropped_per_cpu.to_vec(),
            unreadable: counters.unreadable,
            malformed: self.summary.malformed,
        };
        if !losses.is_empty() {
            let e = EventRecord::build(
                ts,
                0,
                NOTIFICATION,
                &[&string(notes::LOSSES), &string(&losses.desc())],
            );
            self.writer.event(&e)?;
        }
        let out = self.writer.finish()?;
        Ok((out, self.summary))
    }
}

impl<W: Write> crate::handoff::Records for CaptureWriter<W> {
    fn record(&mut self, raw: &[u8]) -> std::io::Result<()> {
        CaptureWriter::record(self, raw)
    }
}
