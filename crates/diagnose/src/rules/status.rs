//! Causes the pod status states in so many words: waiting reasons, runtime start errors,
//! `OOMKilled`, `Completed` under `restartPolicy: Always`, evictions, and what the exit code
//! usually means (the weakest tier: it suggests, the capture or the log decides).

use crate::candidate::Candidates;
use crate::case::{first_line, Case};
use crate::evidence::{Evidence, Source, Tier};

/// Classifies a runtime start error message (`StartError`, `RunContainerError`, a `Failed`
/// event) into its exec cause, with a summary naming the program.
pub(super) fn start_error(message: &str) -> Option<(&'static str, String)> {
    let m = message.to_ascii_lowercase();
    let program = quoted_after(message, "exec: ")
        .or_else(|| quoted_after(message, "exec "))
        .unwrap_or_default();
    let named = if program.is_empty() {
        String::from("the command")
    } else {
        format!("\"{program}\"")
    };
    if m.contains("couldn't find key")
        || (m.contains("not found") && (m.contains("configmap") || m.contains("secret")))
        || m.contains("runasnonroot")
    {
        // What a kubelet reports as CreateContainerConfigError, whatever the runtime said.
        Some((
            "create-container-config-error",
            format!(
                "the container's configuration cannot be built: {}",
                first_line(message)
            ),
        ))
    } else if m.contains("executable file not found") {
        Some((
            "exec-not-found",
            format!("{named} is not in the image's $PATH: the container never started"),
        ))
    } else if m.contains("exec format error") {
        Some((
            "exec-format-error",
            format!("{named} is not a program for this machine (exec format error)"),
        ))
    } else if m.contains("permission denied")
        && (m.contains("exec") || m.contains("start container"))
    {
        Some((
            "exec-permission-denied",
            format!("{named} is not executable (permission denied)"),
        ))
    } else if m.contains("no such file or directory")
        && (m.contains("exec") || m.contains("start container"))
    {
        Some((
            "exec-not-found",
            format!("{named} does not exist in the image: the container never started"),
        ))
    } else {
        None
    }
}

/// The text in quotes after `prefix` (`exec: "wge": ...` → `wge`), or the word after it.
fn quoted_after(s: &str, prefix: &str) -> Option<String> {
    let rest = &s[s.find(prefix)? + prefix.len()..];
    let rest = rest.trim_start_matches('\\');
    if let Some(r) = rest.strip_prefix('"') {
        let end = r.find(['"', '\\'])?;
        return Some(r[..end].to_string());
    }
    let end = rest.find([':', ' ']).unwrap_or(rest.len());
    Some(rest[..end].to_string()).filter(|w| !w.is_empty())
}

pub fn propose(case: &Case, out: &mut Candidates) {
    if let Some(w) = &case.waiting {
        let msg = w.message.as_deref().unwrap_or("");
        let ev = Evidence::new(
            Source::Status,
            &w.pointer,
            format!(
                "Waiting: {}{}{}",
                w.reason,
                if msg.is_empty() { "" } else { ": " },
                first_line(msg)
            ),
        );
        match w.reason.as_str() {
            "CreateContainerConfigError" => out.add(
                "create-container-config-error",
                Tier::Status,
                ev,
                format!(
                    "the kubelet cannot create the container: {}",
                    first_line(msg)
                ),
            ),
            "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                let image = case.spec.and_then(|c| c.image.clone()).unwrap_or_default();
                out.add(
                    "image-pull",
                    Tier::Status,
                    ev,
                    format!("the image {image} cannot be pulled ({})", w.reason),
                );
            }
            "PostStartHookError" => out.add(
                "poststart-hook-failed",
                Tier::Status,
                ev,
                "the postStart hook failed, so the kubelet kills the container",
            ),
            "RunContainerError" | "CreateContainerError" | "StartError" => {
                if let Some((id, summary)) = start_error(msg) {
                    out.add(id, Tier::Status, ev, summary);
                }
            }
            _ => {}
        }
    }
    if let Some(e) = &case.ended {
        let ev = case.ended_evidence();
        let ev = ev.unwrap_or_else(|| Evidence::new(Source::Status, &e.pointer, "terminated"));
        match e.reason.as_deref() {
            Some("StartError") | Some("ContainerCannotRun") => {
                if let Some((id, summary)) = start_error(e.message.as_deref().unwrap_or("")) {
                    out.add(id, Tier::Status, ev.clone(), summary);
                }
            }
            Some("OOMKilled") => match case.memory_limit() {
                Some((limit, _)) => {
                    out.add("oom-limit", Tier::Status, ev.clone(), format!("killed by the OOM killer (OOMKilled, exit {}) with a memory limit of {limit}", e.exit_code));
                    out.add("oom-limit", Tier::Context, Evidence::new(Source::Spec, format!("{}.resources.limits.memory", case.spec_pointer), limit.clone()), "");
                }
                None => out.add("oom-node", Tier::Status, ev.clone(), format!("killed by the OOM killer (OOMKilled, exit {}) with no memory limit: the node ran out of memory", e.exit_code)),
            },
            Some("ContainerStatusUnknown") => out.add("restart-not-caused-by-app", Tier::Status, ev.clone(), "the container was lost with its sandbox (ContainerStatusUnknown), not ended by the program"),
            _ => {}
        }
        let policy = case
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into());
        if e.exit_code == 0 && e.signal.is_none() && !case.init && policy == "Always" {
            out.add("exit-zero-under-always", Tier::Status, ev.clone(), "the program exited 0 (Completed), and restartPolicy Always starts it again: it is not a long-running process");
            out.add(
                "exit-zero-under-always",
                Tier::Context,
                Evidence::new(Source::Spec, "spec.restartPolicy", policy),
                "",
            );
        }
        // What the exit code usually means: suggestions the log or capture must confirm.
        let prior: Option<(&'static str, String)> = match e.exit_code {
            126 => Some((
                "exec-permission-denied",
                "exit 126: a shell found the command but could not execute it".into(),
            )),
            127 => Some((
                "exec-not-found",
                "exit 127: a shell or the loader could not find a command or library".into(),
            )),
            134 => Some((
                "abort",
                "exit 134: the program was killed by SIGABRT (an abort)".into(),
            )),
            132 | 135 | 136 | 139 => Some((
                "native-crash",
                format!(
                    "exit {}: the program was killed by {}",
                    e.exit_code,
                    crashscope_inspect::event::signal_name(i64::from(e.exit_code - 128))
                ),
            )),
            2 if case.lifetime().is_some_and(|d| d.as_secs_f64() < 2.0) => Some((
                "bad-arguments",
                "exit 2 within 2 s of start: how programs reject their arguments".into(),
            )),
            _ => None,
        };
        if let Some((id, summary)) = prior {
            out.add(id, Tier::ExitCode, ev, summary);
        }
    }
    let status = case.pod.status.as_ref();
    if status.and_then(|s| s.reason.as_deref()) == Some("Evicted") {
        let msg = status.and_then(|s| s.message.clone()).unwrap_or_default();
        let ev = Evidence::new(Source::Status, "status.reason", format!("Evicted: {msg}"));
        let lower = msg.to_ascii_lowercase();
        if lower.contains("ephemeral") {
            out.add(
                "ephemeral-storage-eviction",
                Tier::Status,
                ev,
                format!("evicted: {}", first_line(&msg)),
            );
        } else if lower.contains("memory") {
            out.add(
                "oom-node",
                Tier::Status,
                ev,
                format!("evicted for node memory pressure: {}", first_line(&msg)),
            );
        } else {
            out.add(
                "evicted",
                Tier::Status,
                ev,
                format!("evicted: {}", first_line(&msg)),
            );
        }
    }
    let unschedulable = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    if let Some(c) = unschedulable {
        out.add(
            "unschedulable",
            Tier::Status,
            Evidence::new(
                Source::Status,
                "status.conditions[PodScheduled]",
                format!(
                    "{}: {}",
                    c.reason.as_deref().unwrap_or("False"),
                    c.message.as_deref().unwrap_or("")
                ),
            ),
            format!(
                "no node can run the pod: {}",
                first_line(c.message.as_deref().unwrap_or("unschedulable"))
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_start_errors_name_the_program() {
        let (id, s) = start_error(r#"failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "wge": executable file not found in $PATH: unknown"#).unwrap();
        assert_eq!(id, "exec-not-found");
        assert!(s.contains("\"wge\""), "{s}");
        let (id, s) = start_error(r#"exec: "/opt/tools/start.sh": permission denied"#).unwrap();
        assert_eq!(id, "exec-permission-denied");
        assert!(s.contains("/opt/tools/start.sh"), "{s}");
        assert_eq!(
            start_error("exec /app: exec format error").map(|x| x.0),
            Some("exec-format-error")
        );
        assert_eq!(start_error("the pod is fine"), None);
    }
}
