//! Running the `crashscope` binary as a user does, for the integration tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// Runs crashscope with its store in `data_dir`, ages evaluated at `now`, times in UTC.
#[allow(dead_code)] // not every test file runs crashscope this way
pub fn crashscope_at(now: &str, args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .args(args)
        .env("CRASHSCOPE_NOW", now)
        .env("CRASHSCOPE_DATA_DIR", data_dir)
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

/// A TCP port nothing listens on right now.
#[allow(dead_code)]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[allow(dead_code)]
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether this test may load the eBPF probe: root runs it; elsewhere it is skipped with the
/// reason printed, except under CI, which runs as root and must not skip it.
#[allow(dead_code)]
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root (eBPF) and CI must run it as root");
    }
    eprintln!("skipping {test}: the eBPF probe needs root");
    false
}

/// The requests an API replay answered ("path?query").
pub type Seen = Arc<Mutex<Vec<String>>>;

/// Recorded Kubernetes API traffic served over real HTTP by `handler`.
#[allow(dead_code)]
pub struct Replay {
    pub addr: SocketAddr,
    pub seen: Seen,
    pub rt: tokio::runtime::Runtime,
}

#[allow(dead_code)]
pub fn replay<H, T>(handler: H) -> Replay
where
    H: axum::handler::Handler<T, Seen> + Clone + Send + Sync + 'static,
    T: 'static,
{
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .fallback(handler)
        .with_state(seen.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    Replay { addr, seen, rt }
}

/// A kubeconfig pointing at a replay, with kube-system as the context's namespace.
#[allow(dead_code)]
pub fn kubeconfig(dir: &Path, addr: SocketAddr) -> PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: replay\n  cluster: {{server: \"http://{addr}\"}}\n\
             users:\n- name: ops\n  user: {{token: replay-token}}\ncontexts:\n- name: replay\n  \
             context: {{cluster: replay, user: ops, namespace: kube-system}}\ncurrent-context: replay\n"
        ),
    )
    .unwrap();
    p
}

#[allow(dead_code)]
/// Runs `script` in `cgroup` (joined before exec, as a container runtime does).
pub fn run_in(cgroup: &Path, script: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let procs = std::ffi::CString::new(cgroup.join("cgroup.procs").to_str().unwrap()).unwrap();
    let mut cmd = Command::new("/bin/sh");
    // Not the test's stdout: a child left behind by a failed test must not hold it open.
    cmd.args(["-c", script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls (open, write, close) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            let ok = fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
            if fd >= 0 {
                libc::close(fd);
            }
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.spawn().unwrap()
}

/// Kills the child when the test ends, however it ends.
#[allow(dead_code)]
pub struct Guard(pub std::process::Child, pub &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: signalling a child we started.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("{} did not stop on SIGINT; killing it", self.1);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A webhook receiver on its own thread.
#[allow(dead_code)]
pub fn receiver() -> (SocketAddr, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let keep = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
                let keep = keep.clone();
                async move {
                    let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    keep.lock().unwrap().push(v);
                    "ok"
                }
            });
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    (addr, seen)
}
