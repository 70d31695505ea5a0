//! Starting one container as a host process in its own mount, PID, UTS and IPC namespaces:
//! volumes bind-mounted at their mount paths, a fresh /proc, the pod's hostname, stdout and
//! stderr pipes copied into the container's log file (`logwriter`), memory limited through a
//! cgroup.
//!
//! The child is created with a raw `clone` (fork semantics plus new namespaces) so it is PID 1
//! of its namespace and our direct child. Between clone and exec it only makes system calls on
//! data prepared beforehand: the parent is multi-threaded, so the child must not allocate.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::logwriter::LogCopiers;

/// A directory or file to bind-mount into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// Everything needed to start one container instance.
/// Called with the pid of a container process that is set up (namespaces, mounts, user,
/// stdout and stderr) and waits to exec its program (a recorder starts watching it here, so
/// that the program's first system call is recorded and its stdio is the container's own).
#[derive(Clone)]
pub struct CreatedHook(pub std::sync::Arc<dyn Fn(i32) + Send + Sync>);

impl std::fmt::Debug for CreatedHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CreatedHook")
    }
}

#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// Absolute path of the program (already resolved against PATH).
    pub program: PathBuf,
    /// argv, including argv[0].
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub hostname: String,
    pub binds: Vec<Bind>,
    pub read_only_root: bool,
    /// stdout and stderr are appended here, as CRI log records.
    pub log: PathBuf,
    pub memory_limit: Option<u64>,
    /// Name of the cgroup to create for the memory limit.
    pub cgroup: String,
    pub on_created: Option<CreatedHook>,
    /// Who the program runs as (securityContext runAsUser/runAsGroup, supplementalGroups and
    /// fsGroup); root when unset, as an image without USER runs.
    pub user: Option<Identity>,
    /// allowPrivilegeEscalation: false — no setuid binary can raise privileges.
    pub no_new_privs: bool,
    /// The capabilities kept in the bounding set (bit n: capability n).
    pub capabilities: u64,
}

/// A user, its group and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{what}: {source}")]
    Setup {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The container process could not be set up or exec'd; `stage` says where.
    #[error("failed to create containerd task: failed to start container: {stage}: {errno}")]
    Child {
        stage: &'static str,
        errno: std::io::Error,
    },
}

fn setup<T>(what: impl Into<String>, r: std::io::Result<T>) -> Result<T, LaunchError> {
    r.map_err(|source| LaunchError::Setup {
        what: what.into(),
        source,
    })
}

fn cstr(p: &Path) -> Result<CString, LaunchError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| LaunchError::Setup {
        what: format!("path {} contains a NUL byte", p.display()),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

fn cstring(s: &str) -> Result<CString, LaunchError> {
    CString::new(s).map_err(|_| LaunchError::Setup {
        what: format!("{s:?} contains a NUL byte"),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

/// How a container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Exit code as the kubelet reports it: the code, or 128 + signal.
    pub code: i32,
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed it (memory limit reached).
    pub oom_killed: bool,
    /// After an OOM kill: the most memory its cgroup used and its limit, in bytes.
    pub memory: Option<(u64, u64)>,
}

/// What the child writes when it is ready to exec (an error is 4 bytes).
const READY: u8 = b'r';

/// A started container process.
#[derive(Debug)]
pub struct Running {
    pub pid: i32,
    cgroup: Option<PathBuf>,
    /// Taken by the first `wait` that sees the process end.
    copiers: std::sync::Mutex<Option<LogCopiers>>,
}

/// How long an ended container's output may take to reach its log: only a process it left
/// behind holding its stdout open makes the copy wait this long.
const LOG_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

const STAGES: [&str; 14] = [
    "sync",
    "make mounts private",
    "bind mount volume",
    "remount volume read-only",
    "mount /proc",
    "make root read-only",
    "set hostname",
    "chdir to working directory",
    "exec",
    "set groups",
    "set user",
    "set no_new_privs",
    "drop capabilities",
    "sync before exec",
];

/// Which memory cgroup hierarchy this host offers.
fn memory_cgroup_root() -> Option<(PathBuf, bool)> {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.join("memory.limit_in_bytes").exists() {
        return Some((v1.to_path_buf(), true));
    }
    let v2 = Path::new("/sys/fs/cgroup");
    let controllers = std::fs::read_to_string(v2.join("cgroup.controllers")).ok()?;
    controllers
        .split_whitespace()
        .any(|c| c == "memory")
        .then(|| (v2.to_path_buf(), false))
}

fn make_cgroup(name: &str, limit: u64) -> Result<PathBuf, LaunchError> {
    let Some((root, v1)) = memory_cgroup_root() else {
        return Err(LaunchError::Setup {
            what: "memory limit: no memory cgroup controller on this host".into(),
            source: std::io::Error::from(std::io::ErrorKind::Unsupported),
        });
    };
    let parent = root.join("crashscope");
    setup(
        format!("create cgroup {}", parent.display()),
        std::fs::create_dir_all(&parent),
    )?;
    if !v1 {
        // cgroup v2: the memory controller must be enabled for our children.
        let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+memory");
    }
    let dir = parent.join(name);
    if dir.exists() {
        // A leftover from an earlier instance: it is empty once that process is gone.
        let _ = std::fs::remove_dir(&dir);
    }
    setup(
        format!("create cgroup {}", dir.display()),
        std::fs::create_dir_all(&dir),
    )?;
    let (file, value) = if v1 {
        ("memory.limit_in_bytes", limit.to_string())
    } else {
        ("memory.max", limit.to_string())
    };
    setup(
        format!("set {}/{file}", dir.display()),
        std::fs::write(dir.join(file), value),
    )?;
    if v1 {
        // Without swap accounting the limit would push pages to swap instead of OOM-killing.
        let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), limit.to_string());
    }
    Ok(dir)
}

/// The peak usage and the limit of a memory cgroup (v1 or v2), in bytes.
fn peak_and_limit(dir: &Path) -> Option<(u64, u64)> {
    let read = |f: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(f))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let peak = read("memory.peak").or_else(|| read("memory.max_usage_in_bytes"))?;
    let limit = read("memory.max").or_else(|| read("memory.limit_in_bytes"))?;
    Some((peak, limit))
}

fn oom_kills(dir: &Path) -> u64 {
    for file in ["memory.oom_control", "memory.events"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            for line in text.lines() {
                if let Some(n) = line.strip_prefix("oom_kill ") {
                    return n.trim().parse().unwrap_or(0);
                }
            }
        }
    }
    0
}

/// Resolves `cmd` against `PATH` the way a container runtime does: a name with a slash is
/// taken as is, anything else is searched for.
pub fn resolve(cmd: &str, path_env: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
            .unwrap_or(false)
    };
    if cmd.contains('/') {
        let p = PathBuf::from(cmd);
        return is_exec(&p).then_some(p);
    }
    path_env
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(cmd))
        .find(|p| is_exec(p))
}

/// Starts the container. Requires root (namespaces and mounts).
pub fn launch(spec: &LaunchSpec) -> Result<Running, LaunchError> {
    // Prepare every byte the child will need before cloning.
    let program = cstr(&spec.program)?;
    let argv: Vec<CString> = spec
        .argv
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = spec
        .env
        .iter()
        .map(|(k, v)| cstring(&format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    let binds: Vec<(CString, CString, bool)> = spec
        .binds
        .iter()
        .map(|b| Ok((cstr(&b.source)?, cstr(&b.target)?, b.read_only)))
        .collect::<Result<_, LaunchError>>()?;
    for b in &spec.binds {
        // The mount point must exist on the host (as with the kubelet's mount points).
        if !b.target.exists() {
            if b.source.is_dir() {
                setup(
                    format!("create mount point {}", b.target.display()),
                    std::fs::create_dir_all(&b.target),
                )?;
            } else {
                if let Some(parent) = b.target.parent() {
                    setup(
                        format!("create mount point {}", parent.display()),
                        std::fs::create_dir_all(parent),
                    )?;
                }
                setup(
                    format!("create mount point {}", b.target.display()),
                    std::fs::File::create(&b.target),
                )?;
            }
        }
    }
    let cwd = match &spec.working_dir {
        Some(d) => Some(cstr(d)?),
        None => None,
    };
    let hostname = spec.hostname.as_bytes().to_vec();
    let root = c"/".to_owned();
    let proc_ = c"/proc".to_owned();
    let proc_type = c"proc".to_owned();

    let log = setup(
        format!("open log {}", spec.log.display()),
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log),
    )?;
    let devnull = setup("open /dev/null", std::fs::File::open("/dev/null"))?;
    let cgroup = match spec.memory_limit {
        Some(limit) => Some(make_cgroup(&spec.cgroup, limit)?),
        None => None,
    };

    let remove_cgroup = |cg: &Option<PathBuf>| {
        if let Some(d) = cg {
            let _ = std::fs::remove_dir(d);
        }
    };
    // Every pipe is close-on-exec: a container cloned at the same moment by another thread
    // must not keep this one's ends past its exec (the child's dup2 of stdout and stderr
    // clears the flag on the copies it keeps).
    let pipes = (|| -> std::io::Result<[OwnedFd; 8]> {
        let mut fds = Vec::with_capacity(8);
        for _ in 0..4 {
            let mut p = [-1i32; 2];
            // SAFETY: pipe2 on a local array; the fds are owned at once.
            if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            unsafe {
                fds.push(OwnedFd::from_raw_fd(p[0]));
                fds.push(OwnedFd::from_raw_fd(p[1]));
            }
        }
        fds.try_into()
            .map_err(|_| std::io::Error::other("pipe count"))
    })();
    let [go_r, go_w, err_r, err_w, out_r, out_w, stderr_r, stderr_w] = match pipes {
        Ok(p) => p,
        Err(e) => {
            remove_cgroup(&cgroup);
            return setup("create pipes", Err(e));
        }
    };
    use std::os::fd::{AsRawFd, IntoRawFd};
    let go = [go_r.into_raw_fd(), go_w.into_raw_fd()];
    let err = [err_r.into_raw_fd(), err_w.into_raw_fd()];
    let (out_fd, stderr_fd, null_fd) =
        (out_w.as_raw_fd(), stderr_w.as_raw_fd(), devnull.as_raw_fd());
    let flags = libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::SIGCHLD;
    // SAFETY: clone without CLONE_VM behaves like fork; the child below only calls
    // async-signal-safe system calls on memory prepared above, then execs or _exits.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        unsafe {
            let fail = |stage: u8| -> ! {
                let e = *libc::__errno_location();
                let msg = [stage, (e & 0xff) as u8, ((e >> 8) & 0xff) as u8, 0];
                libc::write(err[1], msg.as_ptr().cast(), 4);
                libc::_exit(127);
            };
            // Never outlive the runtime: if crashscope dies, the kernel kills the container.
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            libc::close(go[1]);
            libc::close(err[0]);
            let mut b = [0u8; 1];
            // Wait until the parent has put us in the cgroup.
            if libc::read(go[0], b.as_mut_ptr().cast(), 1) < 0 {
                fail(0);
            }
            if libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                fail(1);
            }
            for (src, dst, ro) in &binds {
                if libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    fail(2);
                }
                if *ro
                    && libc::mount(
                        std::ptr::null(),
                        dst.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        std::ptr::null(),
                    ) != 0
                {
                    fail(3);
                }
            }
            if libc::mount(
                proc_type.as_ptr(),
                proc_.as_ptr(),
                proc_type.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ) != 0
            {
                fail(4);
            }
            if spec.read_only_root
                && (libc::mount(
                    root.as_ptr(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                    || libc::mount(
                        std::ptr::null(),
                        root.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        std::ptr::null(),
                    ) != 0)
            {
                fail(5);
            }
            if libc::sethostname(hostname.as_ptr().cast(), hostname.len()) != 0 {
                fail(6);
            }
            if let Some(d) = &cwd {
                if libc::chdir(d.as_ptr()) != 0 {
                    fail(7);
                }
            }
            if spec.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                fail(11);
            }
            // The bounding set caps what the program can hold after exec; the capabilities
            // this process still has (to switch user below) are untouched by it.
            for cap in 0..64u64 {
                if spec.capabilities & (1 << cap) == 0
                    && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
                {
                    // Past the kernel's last capability: nothing more to drop.
                    if *libc::__errno_location() == libc::EINVAL {
                        break;
                    }
                    fail(12);
                }
            }
            // The user last: mounts and the hostname need root.
            // Raw system calls: glibc's wrappers would wait for the parent's other threads
            // (setxid broadcast), which this cloned child does not have.
            if let Some(u) = &spec.user {
                if libc::syscall(libc::SYS_setgroups, u.groups.len(), u.groups.as_ptr()) != 0 {
                    fail(9);
                }
                if libc::syscall(libc::SYS_setgid, u.gid) != 0
                    || libc::syscall(libc::SYS_setuid, u.uid) != 0
                {
                    fail(10);
                }
            }
            libc::dup2(null_fd, 0);
            libc::dup2(out_fd, 1);
            libc::dup2(stderr_fd, 2);
            libc::write(err[1], [READY].as_ptr().cast(), 1);
            if libc::read(go[0], b.as_mut_ptr().cast(), 1) != 1 {
                fail(13);
            }
            libc::execve(program.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
            fail(8);
        }
    }
    // Parent.
    unsafe {
        libc::close(go[0]);
        libc::close(err[1]);
    }
    // Only the container writes its output: the copiers see the end when it is gone.
    drop((out_w, stderr_w));
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        unsafe {
            libc::close(go[1]);
            libc::close(err[0]);
        }
        remove_cgroup(&cgroup);
        return setup("clone with new namespaces (needs root)", Err(e));
    }
    let pid = pid as i32;
    if let Some(dir) = &cgroup {
        if let Err(e) = std::fs::write(dir.join("cgroup.procs"), pid.to_string()) {
            tracing::warn!("cannot move pid {pid} into {}: {e}", dir.display());
        }
    }
    let mut msg = [0u8; 4];
    let n = unsafe {
        // A byte, not just the close, releases the child: a container forked at the same
        // moment by another thread inherits this write end until it execs, so EOF could wait
        // on that one — and it on ours.
        libc::write(go[1], b"g".as_ptr().cast(), 1);
        let mut n = libc::read(err[0], msg.as_mut_ptr().cast(), 4);
        // One byte: set up and waiting to exec, its stdio final — when a recorder starts
        // watching, it sees the container's own stdout and stderr, and the program's first
        // system call is recorded.
        if n == 1 && msg[0] == READY {
            if let Some(hook) = &spec.on_created {
                (hook.0)(pid);
            }
            libc::write(go[1], b"g".as_ptr().cast(), 1);
            n = libc::read(err[0], msg.as_mut_ptr().cast(), 4);
        }
        libc::close(go[1]);
        libc::close(err[0]);
        n
    };
    if n == 4 {
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        remove_cgroup(&cgroup);
        let errno = i32::from(msg[1]) | (i32::from(msg[2]) << 8);
        return Err(LaunchError::Child {
            stage: STAGES.get(usize::from(msg[0])).copied().unwrap_or("start"),
            errno: std::io::Error::from_raw_os_error(errno),
        });
    }
    let copiers = match LogCopiers::start(&log, out_r, stderr_r) {
        Ok(c) => Some(c),
        Err(e) => {
            // The container runs on; its output is lost, which the log says.
            tracing::warn!(
                "cannot copy the output of pid {pid} to {}: {e}",
                spec.log.display()
            );
            None
        }
    };
    Ok(Running {
        pid,
        cgroup,
        copiers: std::sync::Mutex::new(copiers),
    })
}

impl Running {
    /// Blocks until the process ends.
    pub fn wait(&self) -> Exit {
        let mut status = 0;
        loop {
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                break;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                // Already reaped elsewhere: report it as killed.
                return Exit {
                    code: 137,
                    signal: Some(libc::SIGKILL),
                    oom_killed: false,
                    memory: None,
                };
            }
        }
        // The instance has ended when its last words are in the log: `logs -p` and the
        // diagnosis read it next.
        let copiers = self.copiers.lock().ok().and_then(|mut c| c.take());
        if let Some(c) = copiers {
            c.finish(LOG_DRAIN);
        }
        let oom_killed = self.cgroup.as_deref().is_some_and(|d| oom_kills(d) > 0);
        let memory = self
            .cgroup
            .as_deref()
            .filter(|_| oom_killed)
            .and_then(peak_and_limit);
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            Exit {
                code: 128 + sig,
                signal: Some(sig),
                oom_killed,
                memory,
            }
        } else {
            Exit {
                code: libc::WEXITSTATUS(status),
                signal: None,
                oom_killed,
                memory,
            }
        }
    }

    /// Whether the container's init process still exists (not yet reaped).
    pub fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    /// Sends `signal` to the container's init process.
    pub fn signal(pid: i32, signal: i32) {
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// Removes the cgroup after the process is gone.
    pub fn cleanup(&self) {
        if let Some(d) = &self.cgroup {
            let _ = std::fs::remove_dir(d);
        }
    }
}
