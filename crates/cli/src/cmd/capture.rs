//! `crashscope capture`: system calls of a command, of running processes (and what they
//! start) or of the whole machine, recorded by the eBPF probe into a `.scap` file.

use anyhow::{bail, Context, Result};
use crashscope_model::duration::parse_go;
use crashscope_probe::handoff::Handoff;
use crashscope_probe::probe::{Config, Probe, Target};
use crashscope_probe::spool::Spool;
use crashscope_probe::writer::CaptureWriter;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::args::{CaptureArgs, Global};
use crashscope_probe::cgroup;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM end the capture cleanly (the file is finished, not cut).
fn catch_interrupts() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// A command forked but held before exec until the probe watches it, so that its first
/// system call is recorded. (std's spawn cannot do this: it waits for the exec.)
struct Held {
    pid: libc::pid_t,
    release: Option<std::fs::File>,
    status: Option<i32>,
}

fn spawn_held(argv: &[String]) -> Result<Held> {
    use std::ffi::CString;
    let path_env = std::env::var("PATH").unwrap_or_default();
    let path = crashscope_local::spawn::resolve(&argv[0], &path_env)
        .with_context(|| format!("{}: command not found", argv[0]))?;
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .with_context(|| format!("{}: the path has a NUL byte", argv[0]))?;
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("an argument has a NUL byte")?;
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("cannot create a pipe: {}", std::io::Error::last_os_error());
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    // SAFETY: the child only calls async-signal-safe functions (close, read, execv, _exit)
    // on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::close(write_end);
            let mut b = [0u8; 1];
            libc::read(read_end, b.as_mut_ptr().cast(), 1);
            libc::execv(cpath.as_ptr(), ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: the read end belongs to this process and is closed once.
    unsafe { libc::close(read_end) };
    if pid < 0 {
        bail!("cannot fork: {}", std::io::Error::last_os_error());
    }
    // SAFETY: write_end is an open descriptor owned from here on by the File.
    let release = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(write_end) };
    Ok(Held {
        pid,
        release: Some(release),
        status: None,
    })
}

impl Held {
    /// The wait status once the command has ended.
    fn poll(&mut self) -> Option<i32> {
        if self.status.is_none() {
            let mut st = 0;
            // SAFETY: waitpid on our own child with a valid status pointer.
            if unsafe { libc::waitpid(self.pid, &mut st, libc::WNOHANG) } == self.pid {
                self.status = Some(st);
            }
        }
        self.status
    }

    fn kill(&self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }
}

/// A write failed (a full disk): the file is cut back to its last whole block so that it
/// still reads, and the error says so.
fn cut(path: &std::path::Path, e: std::io::Error, events: u64) -> anyhow::Error {
    match crashscope_scap::writer::cut_to_whole_blocks(path) {
        Ok(kept) => anyhow::anyhow!(
            "writing {}: {e}; the capture is incomplete: cut at its last whole block ({kept} \
             bytes, at most {events} events), it reads up to there",
            path.display()
        ),
        Err(cut_err) => anyhow::anyhow!(
            "writing {}: {e}; and the partial file could not be cut to a readable length: {cut_err}",
            path.display()
        ),
    }
}

fn describe_status(st: i32) -> String {
    if libc::WIFEXITED(st) {
        format!("exit code {}", libc::WEXITSTATUS(st))
    } else if libc::WIFSIGNALED(st) {
        format!("killed by signal {}", libc::WTERMSIG(st))
    } else {
        format!("status {st}")
    }
}

/// A cgroup to record: its v2 id, the processes in it now, and what to call it.
struct Selected {
    id: u64,
    pids: Vec<u32>,
    what: String,
}

fn v2_mount() -> Result<std::path::PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read /proc/self/mountinfo")?;
    cgroup::v2_mount(&mountinfo)
        .context("no cgroup v2 hierarchy is mounted: --cgroup, --container and --pod need one")
}

/// The cgroup at `path` (below the cgroup2 mount, or absolute).
fn select_cgroup(path: &std::path::Path, what: String) -> Result<Selected> {
    let mount = v2_mount()?;
    let dir = if path.starts_with(&mount) {
        path.to_path_buf()
    } else {
        mount.join(path.strip_prefix("/").unwrap_or(path))
    };
    let id = cgroup::dir_id(&dir).with_context(|| {
        format!(
            "{what}: no cgroup {} (below {})",
            dir.display(),
            mount.display()
        )
    })?;
    if !dir.join("cgroup.procs").exists() {
        bail!("{what}: {} is not a cgroup directory", dir.display());
    }
    Ok(Selected {
        id,
        pids: cgroup::pids_below(&dir),
        what,
    })
}

/// What --cgroup, --container or --pod name, if one of them was given.
fn select(g: &Global, a: &CaptureArgs) -> Result<Option<Selected>> {
    if let Some(p) = &a.cgroup {
        return select_cgroup(p, format!("cgroup {}", p.display())).map(Some);
    }
    if let Some(id) = &a.container {
        let id = cgroup::status_id(id).to_ascii_lowercase();
        if id.len() < 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("--container {id:?}: give the container id, or at least its first 12 hex digits");
        }
        let paths = cgroup::find_container(std::path::Path::new("/proc"), &id);
        return match paths.as_slice() {
            [] => bail!("--container {id}: no running container with this id on this machine"),
            [one] => select_cgroup(std::path::Path::new(one), format!("container {id}")).map(Some),
            many => bail!(
                "--container {id}: {} containers match; give more digits ({})",
                many.len(),
                many.join(", ")
            ),
        };
    }
    let Some(name) = &a.pod else { return Ok(None) };
    let (uid, node) = super::runtime()?.block_on(async {
        let client = super::kube_client(g).await?;
        let ns = super::cluster_namespace(&client, a.namespace.as_deref(), false)
            .unwrap_or_else(|| "default".into());
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, &ns);
        let pod = api.get(name).await.map_err(|e| {
            anyhow::anyhow!(crashscope_kube::cluster::api_error(
                &e,
                "get",
                "pods",
                Some(&ns)
            ))
        })?;
        anyhow::Ok((
            pod.metadata.uid.unwrap_or_default(),
            pod.spec.and_then(|s| s.node_name).unwrap_or_default(),
        ))
    })?;
    let mount = v2_mount()?;
    let dir = cgroup::pod_dir(&mount, &uid).with_context(|| {
        format!("pod {name} (uid {uid}) has no cgroup on this machine; it runs on node {node:?}")
    })?;
    select_cgroup(&dir, format!("pod {name}")).map(Some)
}

pub fn run(g: &Global, a: CaptureArgs) -> Result<ExitCode> {
    let by_cgroup = [a.cgroup.is_some(), a.container.is_some(), a.pod.is_some()];
    let chosen = [!a.command.is_empty(), !a.pids.is_empty(), a.all]
        .iter()
        .chain(by_cgroup.iter())
        .filter(|x| **x)
        .count();
    if chosen != 1 {
        bail!(
            "say what to capture, exactly one of: a command after --, --pid PID, --container ID, \
             --pod NAME, --cgroup PATH, or --all"
        );
    }
    let selected = select(g, &a)?;
    let limit = match &a.duration {
        None => None,
        Some(s) => Some(
            parse_go(s)
                .filter(|d| !d.is_zero())
                .with_context(|| format!("--duration {s:?} is not a duration like 10s or 2m"))?,
        ),
    };
    if a.command.is_empty() && limit.is_none() {
        eprintln!("capturing until Ctrl-C");
    }
    for p in &a.pids {
        if !std::path::Path::new(&format!("/proc/{p}")).exists() {
            bail!("--pid {p}: no such process");
        }
    }
    catch_interrupts();
    let mut held = if a.command.is_empty() {
        None
    } else {
        Some(spawn_held(&a.command)?)
    };
    let mut pids = a.pids.clone();
    if let Some(h) = &held {
        pids.push(h.pid as u32);
    }
    let target = if a.all {
        Target::All
    } else if let Some(sel) = &selected {
        pids.extend(&sel.pids);
        Target::Cgroups {
            ids: vec![sel.id],
            pids: pids.clone(),
        }
    } else {
        Target::Pids(pids.clone())
    };
    let probe = Probe::start(&Config {
        target,
        snaplen: a.snaplen,
        ring_bytes: a
            .buffer_size
            .map_or_else(crashscope_probe::probe::default_ring_bytes, |m| {
                (m << 20).next_power_of_two()
            }),
        env: a.env,
        latency: a.latency,
    });
    let probe = match probe {
        Ok(p) => p,
        Err(e) => {
            if let Some(h) = &held {
                h.kill();
            }
            return Err(e.into());
        }
    };
    if let Some(sel) = &selected {
        // Said once the probe is attached: from here on nothing is missed.
        eprintln!(
            "recording {}: {} processes now, and those that start there",
            sel.what,
            sel.pids.len()
        );
    }
    // A capture holds payloads (secrets pass through system calls): the owner's only.
    let file = crashscope_store::private::create_options()
        .open(&a.write)
        .with_context(|| format!("cannot create {}", a.write.display()))?;
    // The disk is written by a thread of its own, 1 MiB at a time: a throttled write must
    // not stop the ring buffer's reader.
    let spool = Spool::new(file).context("cannot start the capture's writing thread")?;
    let mut out = CaptureWriter::new(spool, &pids)
        .with_context(|| format!("writing {}", a.write.display()))?;
    out.set_snaplen(a.snaplen);
    let written = out.written();
    // Converting runs on a thread of its own: the ring's reader only copies records.
    let out = Handoff::new(out).context("cannot start the capture's converting thread")?;
    if let Some(h) = &mut held {
        // A byte on the pipe lets the command exec (the held child has the write end too,
        // so closing alone would not).
        if let Some(mut w) = h.release.take() {
            use std::io::Write as _;
            w.write_all(b"g").context("cannot release the command")?;
        }
    }
    let started = Instant::now();
    let write_error: std::cell::RefCell<Option<std::io::Error>> = Default::default();
    let mut exited: Option<(Instant, i32)> = None;
    // A command under capture writes to the same terminal: no spinner over its output.
    let bar = if held.is_none() {
        live_progress()
    } else {
        None
    };
    let mut shown = Instant::now();
    let out = std::cell::RefCell::new(out);
    probe.run(
        |data| {
            if write_error.borrow().is_none() {
                if let Err(e) = out.borrow_mut().push(data) {
                    *write_error.borrow_mut() = Some(e);
                }
            }
        },
        || {
            if shown.elapsed() >= Duration::from_millis(250) {
                shown = Instant::now();
                // A quiet process's records are converted now and then, not only when a
                // batch fills.
                if let Err(e) = out.borrow_mut().flush() {
                    write_error.borrow_mut().get_or_insert(e);
                }
                if let Some(bar) = &bar {
                    let dropped = probe.counters().map_or(0, |c| c.dropped);
                    let written = written.load(Ordering::Relaxed);
                    bar.set_message(format!("{written} events, {dropped} dropped"));
                }
            }
            if let Some(h) = &mut held {
                if exited.is_none() {
                    if let Some(st) = h.poll() {
                        exited = Some((Instant::now(), st));
                    }
                }
            }
            let tail_done = exited.is_some_and(|(t, _)| t.elapsed() > Duration::from_millis(200));
            let time_up = limit.is_some_and(|l| started.elapsed() >= l);
            !(INTERRUPTED.load(Ordering::SeqCst)
                || tail_done
                || time_up
                || write_error.borrow().is_some())
        },
    )?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let out = match write_error.into_inner() {
        Some(e) => Err(e),
        None => out.into_inner().finish(),
    };
    let out = match out {
        Ok(out) => out,
        Err(e) => return Err(cut(&a.write, e, written.load(Ordering::Relaxed))),
    };
    let counters = probe.counters()?;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let events = out.summary.events;
    let per_cpu = probe.drops_per_cpu().unwrap_or_default();
    let summary = match out
        .finish(counters, &per_cpu, ts)
        .and_then(|(spool, s)| spool.finish().map(|_| s))
    {
        Ok(s) => s,
        Err(e) => return Err(cut(&a.write, e, events)),
    };
    eprintln!(
        "wrote {} events to {} ({} dropped, {} unreadable snapshots; recorder CPU {:.2}s)",
        summary.events,
        a.write.display(),
        counters.dropped,
        counters.unreadable,
        own_cpu_seconds()
    );
    // As strace and time do, end with the recorded command's status, so scripts and CI
    // see its failure (a signal is 128 + its number, as a shell reports it).
    let mut code = ExitCode::SUCCESS;
    if let Some((_, st)) = exited {
        eprintln!("command ended: {}", describe_status(st));
        code = ExitCode::from(command_code(st));
    } else if let Some(h) = &mut held {
        // Stopped by time or Ctrl-C while the command still runs: leave it running, as
        // sysdig does with what it watches.
        eprintln!("command still running as pid {}", h.pid);
    }
    if summary.counters.dropped > 0 {
        let per_cpu = crashscope_scap::notes::Losses {
            dropped_per_cpu: per_cpu,
            ..Default::default()
        }
        .cpus();
        eprintln!(
            "warning: {} records were dropped because the reader fell behind ({per_cpu}); \
             the capture notes it (evt.type=notification); a larger --buffer-size absorbs \
             longer bursts",
            summary.counters.dropped
        );
    }
    Ok(code)
}

/// The exit code a shell gives a command that ended with wait status `st`.
fn command_code(st: i32) -> u8 {
    let code = if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        1
    };
    u8::try_from(code).unwrap_or(1)
}

/// A live count of what is being recorded, on a terminal only (quiet when piped or logged).
fn live_progress() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} recording for {elapsed}: {msg} (Ctrl-C stops)",
    )
    .ok()?;
    let bar = indicatif::ProgressBar::new_spinner().with_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message("0 events");
    Some(bar)
}

/// CPU time this process used (all its threads, not the recorded command): what recording
/// cost, beside what the probe costs the recorded program in its own system calls.
fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes the struct it is given and nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}
