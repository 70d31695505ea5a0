//! `crashscope demo`: the reference story of DESIGN.md on this machine. nginx is deployed
//! before the `flask` Service exists and crash-loops; crashscope shows the pod list, the
//! describe, the `--previous` log line; then the Service and a backend are applied and nginx
//! recovers and serves.

use anyhow::{bail, Context, Result};
use crashscope_local::manifest;
use crashscope_local::runtime::{self, Runtime};
use crashscope_store::{SqlStore, Store};
use k8s_openapi::api::core::v1::Pod;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::args::{DemoArgs, Global};

const NGINX: &str = include_str!("../../../../examples/demo/nginx.yaml");
const FLASK: &str = include_str!("../../../../examples/demo/flask.yaml");

fn step(title: &str) {
    use std::io::IsTerminal as _;
    // Bold on a terminal only: a pipe or a log gets plain text.
    if std::io::stdout().is_terminal() {
        println!("\n\x1b[1m== {title}\x1b[0m");
    } else {
        println!("\n== {title}");
    }
    let _ = std::io::stdout().flush();
}

/// Runs this binary with `args` against the demo's data dir, printing what it prints.
fn show(data_dir: &Path, args: &[&str]) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the crashscope binary")?;
    println!("$ crashscope {}", args.join(" "));
    let _ = std::io::stdout().flush();
    let status = std::process::Command::new(exe)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .status()?;
    if !status.success() {
        println!("(exit status {status})");
    }
    Ok(())
}

async fn nginx_pod(store: &SqlStore) -> Option<Pod> {
    store
        .objects("Pod")
        .await
        .ok()?
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Pod>(v).ok())
        .find(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("nginx-"))
        })
}

async fn wait_for(
    store: &SqlStore,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&Pod) -> bool,
) -> Result<Pod> {
    let start = Instant::now();
    // What the wait is for, on a terminal only: the story pauses for the kubelet's back-off.
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} waiting for {msg} ({elapsed})")
        {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let result = loop {
        if let Some(p) = nginx_pod(store).await.filter(|p| ok(p)) {
            break Ok(p);
        }
        if start.elapsed() > timeout {
            break Err(anyhow::anyhow!(
                "timed out after {timeout:?} waiting for {what}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    result
}

fn first_status(p: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()
        .cloned()
}

fn http_get(port: u16) -> Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

pub fn run(g: &Global, a: DemoArgs) -> Result<ExitCode> {
    let path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    if crashscope_local::spawn::resolve("nginx", path_env).is_none() {
        bail!("nginx is not installed; the demo runs Debian's nginx: apt-get install -y nginx");
    }
    if crashscope_local::spawn::resolve("python3", path_env).is_none() {
        bail!("python3 is not installed; the demo's backend uses it: apt-get install -y python3");
    }
    let base = super::store_path(g)?;
    let data_dir = base
        .parent()
        .map(|p| p.join("demo"))
        .unwrap_or_else(|| "demo".into());
    let _ = std::fs::remove_dir_all(&data_dir);
    let store_path = data_dir.join("crashscope.db");
    let port = a.runtime.port.to_string();
    let nginx_text = NGINX.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let (nginx, e1) = manifest::parse("examples/demo/nginx.yaml", &nginx_text);
    let (flask, e2) = manifest::parse("examples/demo/flask.yaml", FLASK);
    if let Some(e) = e1.iter().chain(e2.iter()).next() {
        bail!("built-in demo manifest: {e}");
    }
    let rt_args = crate::args::Runtime {
        time_scale: a.runtime.time_scale,
        dns: a.runtime.dns,
        no_record: a.runtime.no_record,
    };
    let mut cfg = super::local::config(g, &rt_args)?;
    cfg.data_dir = data_dir.clone();
    cfg.recorder = super::local::recorder(&cfg, &rt_args);
    let scale = a.runtime.time_scale;
    let d = data_dir.display().to_string();
    println!(
        "crashscope demo — nginx deployed before the `flask` Service exists (time scale {scale})."
    );
    println!("Watch from another terminal: crashscope --data-dir {d} get pods");

    super::local::multi_thread()?.block_on(async {
        let store = Arc::new(SqlStore::open(&store_path).await?);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let rt = Runtime::new(cfg, store.clone());
        let runtime = tokio::spawn(rt.run(async {
            let _ = stop_rx.await;
        }));
        let result = async {
            step("1. Deploy nginx (proxy_pass http://flask:5000) — no flask Service yet");
            for l in runtime::apply(&store, nginx).await? {
                println!("{l}");
            }
            let timeout = Duration::from_secs(20) + Duration::from_secs_f64(200.0 * scale);
            wait_for(&store, "nginx to crash-loop", timeout, |p| {
                first_status(p).is_some_and(|s| {
                    s.restart_count >= 3
                        && s.state
                            .and_then(|x| x.waiting)
                            .and_then(|w| w.reason)
                            .as_deref()
                            == Some("CrashLoopBackOff")
                })
            })
            .await?;
            let pod = nginx_pod(&store)
                .await
                .and_then(|p| p.metadata.name)
                .unwrap_or_default();
            let dd = data_dir.clone();
            let pod2 = pod.clone();
            tokio::task::spawn_blocking(move || -> Result<()> {
                step("2. The pod crash-loops");
                show(&dd, &["get", "pods"])?;
                step("3. What kubectl describe shows — and what it cannot");
                show(&dd, &["describe", "pod", &pod2])?;
                step("4. Why: the previous instance's log");
                show(&dd, &["logs", &pod2, "--previous"])?;
                step("4b. Proof: what nginx did before it died (eBPF flight recorder)");
                match newest_capture(&dd.join("captures")) {
                    Some(cap) => {
                        show(&dd, &["captures"])?;
                        let cap = cap.display().to_string();
                        show(&dd, &["inspect", &cap, "procs"])?;
                        show(&dd, &["inspect", &cap, "dns"])?;
                    }
                    None => println!("(no capture: recording is off or the probe could not load)"),
                }
                step("4c. The conclusion: cause, evidence, remedy (diagnosis engine)");
                show(&dd, &["diagnose", &pod2])?;
                Ok(())
            })
            .await??;
            step("5. Create the flask Service and its backend");
            for l in runtime::apply(&store, flask).await? {
                println!("{l}");
            }
            let timeout = Duration::from_secs(20) + Duration::from_secs_f64(400.0 * scale);
            wait_for(&store, "nginx to run", timeout, |p| {
                first_status(p)
                    .is_some_and(|s| s.ready && s.state.and_then(|x| x.running).is_some())
            })
            .await?;
            // nginx is running; give it a moment to bind before the request.
            let mut reply = String::new();
            for _ in 0..20 {
                if let Ok(r) = http_get(a.runtime.port) {
                    reply = r;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let dd = data_dir.clone();
            tokio::task::spawn_blocking(move || -> Result<()> {
                step("6. nginx recovered");
                show(&dd, &["get", "pods"])?;
                Ok(())
            })
            .await??;
            println!("\n$ curl http://127.0.0.1:{port}/");
            match reply.split("\r\n\r\n").nth(1) {
                Some(body)
                    if reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200") =>
                {
                    print!("{body}")
                }
                _ => bail!("nginx did not serve through flask: {reply:?}"),
            }
            anyhow::Ok(())
        }
        .await;
        let _ = stop_tx.send(());
        let _ = runtime.await;
        result
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The most recent capture the flight recorder wrote.
fn newest_capture(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "scap"))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}
