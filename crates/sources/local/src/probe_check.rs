//! Container probes as the kubelet runs them: exec (inside the container's namespaces),
//! httpGet and tcpSocket (pods share the host network, so on 127.0.0.1), with
//! initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold and failureThreshold.

use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which probe, for events ("Liveness probe failed: ...").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    pub fn title(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// Timing of a probe with the API server's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(p: &Probe) -> Timing {
        let secs = |v: Option<i32>, d: i32| {
            Duration::from_secs(u64::try_from(v.unwrap_or(d).max(0)).unwrap_or(0))
        };
        Timing {
            initial_delay: secs(p.initial_delay_seconds, 0),
            period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: u32::try_from(p.success_threshold.unwrap_or(1).max(1)).unwrap_or(1),
            failure_threshold: u32::try_from(p.failure_threshold.unwrap_or(3).max(1)).unwrap_or(3),
        }
    }
}

fn port_of(p: &IntOrString) -> Result<u16, String> {
    match p {
        IntOrString::Int(i) => u16::try_from(*i).map_err(|_| format!("invalid port {i}")),
        IntOrString::String(s) => s
            .parse()
            .map_err(|_| format!("named port {s:?} is not supported by the local runtime")),
    }
}

/// Runs the probe once against the container whose init process is `pid`.
/// `Err` carries the kubelet's failure output.
pub async fn check(p: &Probe, pid: i32, timeout: Duration) -> Result<(), String> {
    if let Some(e) = &p.exec {
        let cmd = e.command.clone().unwrap_or_default();
        if cmd.is_empty() {
            return Err("exec probe has no command".into());
        }
        let child = tokio::process::Command::new("nsenter")
            .args([
                "--target",
                &pid.to_string(),
                "--mount",
                "--pid",
                "--uts",
                "--ipc",
                "--",
            ])
            .args(&cmd)
            .kill_on_drop(true)
            .output();
        return match tokio::time::timeout(timeout, child).await {
            Err(_) => Err(format!("command {:?} timed out", cmd.join(" "))),
            Ok(Err(e)) => Err(format!("cannot run the probe: {e}")),
            Ok(Ok(out)) if out.status.success() => Ok(()),
            Ok(Ok(out)) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                Err(text.trim_end().to_string())
            }
        };
    }
    if let Some(h) = &p.http_get {
        let port = port_of(&h.port)?;
        let host = h
            .host
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        let url = format!("http://{host}:{port}{path}");
        let req = async {
            let mut s = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.34\r\n\r\n").as_bytes())
                .await?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await?;
            std::io::Result::Ok(buf)
        };
        return match tokio::time::timeout(timeout, req).await {
            Err(_) => Err(format!("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
            Ok(Err(e)) => Err(format!("Get \"{url}\": dial tcp {host}:{port}: connect: {e}")),
            Ok(Ok(buf)) => {
                let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).into_owned();
                let code: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                if (200..400).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("HTTP probe failed with statuscode: {code}"))
                }
            }
        };
    }
    if let Some(t) = &p.tcp_socket {
        let port = port_of(&t.port)?;
        let host = t
            .host
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        return match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Err(_) => Err(format!("dial tcp {host}:{port}: i/o timeout")),
            Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: connect: {e}")),
            Ok(Ok(_)) => Ok(()),
        };
    }
    Err("probe has no handler (exec, httpGet or tcpSocket)".into())
}

/// Counts consecutive results against the thresholds: the probe's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not enough consecutive results yet to change the state.
    Unchanged,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Counter {
    successes: u32,
    failures: u32,
}

impl Counter {
    pub fn step(&mut self, timing: &Timing, ok: bool) -> Verdict {
        if ok {
            self.failures = 0;
            self.successes += 1;
            if self.successes >= timing.success_threshold {
                return Verdict::Succeeded;
            }
        } else {
            self.successes = 0;
            self.failures += 1;
            if self.failures >= timing.failure_threshold {
                return Verdict::Failed;
            }
        }
        Verdict::Unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_need_consecutive_results() {
        let t = Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 2,
            failure_threshold: 3,
        };
        let mut c = Counter::default();
        assert_eq!(c.step(&t, false), Verdict::Unchanged);
        assert_eq!(c.step(&t, false), Verdict::Unchanged);
        assert_eq!(c.step(&t, true), Verdict::Unchanged);
        assert_eq!(
            c.step(&t, false),
            Verdict::Unchanged,
            "a success resets the failures"
        );
        assert_eq!(c.step(&t, false), Verdict::Unchanged);
        assert_eq!(c.step(&t, false), Verdict::Failed);
        assert_eq!(c.step(&t, true), Verdict::Unchanged);
        assert_eq!(c.step(&t, true), Verdict::Succeeded);
    }

    #[test]
    fn defaults_are_the_api_servers() {
        let t = Timing::of(&Probe::default());
        assert_eq!(
            (
                t.period.as_secs(),
                t.timeout.as_secs(),
                t.success_threshold,
                t.failure_threshold
            ),
            (10, 1, 1, 3)
        );
    }
}
