//! How the dying process ended, as the capture shows it: the exit code or fatal signal, who
//! sent the signal (itself, another process of the container, or someone outside it), an OOM
//! kill the recorder noted, memory used against the limit. This is where an abort that PID 1
//! turned into a SIGSEGV is told from a real segfault, and an OOM kill from a probe kill.

use crashscope_inspect::event::signal_name;
use crashscope_scap::notes;

use crate::candidate::Candidates;
use crate::case::Case;
use crate::evidence::{Evidence, Source, Tier};

use super::syscalls::Crash;

/// The causes in which the kubelet kills the container because a probe failed.
const PROBE_KILLS: [&str; 5] = [
    "liveness-probe-misconfigured",
    "liveness-kills-slow-start",
    "probe-timeout-under-load",
    "startup-probe-failed",
    "liveness-checks-dependency",
];

pub fn propose(case: &Case, crash: &Crash, out: &mut Candidates) {
    let facts = crash.facts;
    // An OOM kill the recorder noted, for any process of the container.
    if let Some(n) = facts.notes.iter().find(|n| n.id == notes::OOM_KILL) {
        let peak = crash
            .family
            .iter()
            .filter_map(|p| facts.procs.get(p))
            .map(|p| p.peak_rss_kib)
            .max()
            .unwrap_or(0);
        let ev = Evidence::new(Source::Capture, facts.pointer(n.num), n.text.clone());
        match case.memory_limit() {
            Some((limit, bytes)) => {
                let used = if peak > 0 { format!(" (resident memory reached {} MiB)", peak / 1024) } else { String::new() };
                let summary = format!("the kernel's OOM killer killed the container at its memory limit of {limit}{used}");
                // Far below the limit, the node ran out, not the container.
                if peak > 0 && (peak * 1024) < bytes / 2 {
                    out.add("oom-node", Tier::Capture, ev, format!("killed by the OOM killer while using {} MiB, far below its limit of {limit}: the node ran out of memory", peak / 1024));
                    out.rule_out("oom-limit", format!("resident memory peaked at {} MiB, under half the limit {limit}", peak / 1024));
                } else {
                    // The runtime's cgroup accounting, when it noted it: usage against limit.
                    let accounted = facts.notes.iter().find(|n| n.id == notes::OOM_MEMORY);
                    out.add("oom-limit", Tier::Capture, ev, summary.clone());
                    if let Some(m) = accounted {
                        let ev = Evidence::new(Source::Capture, facts.pointer(m.num), m.text.clone());
                        out.add("oom-limit", Tier::Capture, ev, summary);
                    }
                }
            }
            None => out.add("oom-node", Tier::Capture, ev, "killed by the OOM killer; the container has no memory limit, so the node ran out of memory"),
        }
    }
    let Some(main) = crash.main else {
        return;
    };
    let Some(exit) = &main.exit else {
        return;
    };
    let exit_ev = |what: String| Evidence::new(Source::Capture, facts.pointer(exit.num), what);
    // Signals aimed at the main process before its end.
    // A process in the container names its targets by their pid in its namespace (PID 1 is
    // the main process, the container's init), which the capture records as written; captures
    // without namespace pids still show `pid=1` for it.
    let vpids: Vec<i64> = crash
        .family
        .iter()
        .filter_map(|p| facts.procs.get(p))
        .filter(|p| p.vpid > 0)
        .map(|p| p.vpid)
        .collect();
    let aimed: Vec<_> = facts
        .signals
        .iter()
        .filter(|s| s.num <= exit.num)
        .filter(|s| {
            s.target == main.pid
                || crash.family.contains(&s.target)
                || (crash.family.contains(&s.sender)
                    && s.call != "signaldeliver"
                    && (vpids.contains(&s.target)
                        || (s.target == 1 && !facts.procs.contains_key(&1))))
        })
        .collect();
    let self_abort = aimed
        .iter()
        .find(|s| s.sig == 6 && s.call != "signaldeliver" && crash.family.contains(&s.sender));
    match exit.signal {
        Some(sig) => {
            let name = signal_name(sig);
            if let Some(a) = self_abort {
                let summary = format!(
                    "{} (pid {}) aborted itself: {}(SIGABRT) to its own process{}",
                    main.comm,
                    main.pid,
                    a.call,
                    if sig != 6 {
                        format!(", then died of {name} (PID 1 does not take its own SIGABRT)")
                    } else {
                        String::new()
                    }
                );
                out.add(
                    "abort",
                    Tier::Capture,
                    Evidence::new(
                        Source::Capture,
                        facts.pointer(a.num),
                        format!(
                            "{} (pid {}) {}(pid {}, SIGABRT)",
                            a.sender_comm, a.sender, a.call, a.target
                        ),
                    ),
                    summary.clone(),
                );
                out.add(
                    "abort",
                    Tier::Capture,
                    exit_ev(format!("{} (pid {}) ended by {name}", main.comm, main.pid)),
                    summary,
                );
                if sig != 6 {
                    out.rule_out("native-crash", format!("the {name} followed the process's own SIGABRT: an abort, not a memory fault"));
                }
            } else if matches!(sig, 4 | 7 | 8 | 11) {
                out.add(
                    "native-crash",
                    Tier::Capture,
                    exit_ev(format!("{} (pid {}) killed by {name}", main.comm, main.pid)),
                    format!("{} (pid {}) crashed on {name}", main.comm, main.pid),
                );
            } else if sig == 6 {
                out.add(
                    "abort",
                    Tier::Capture,
                    exit_ev(format!(
                        "{} (pid {}) killed by SIGABRT",
                        main.comm, main.pid
                    )),
                    format!("{} (pid {}) aborted (SIGABRT)", main.comm, main.pid),
                );
            } else if matches!(sig, 9 | 15) {
                let sender = aimed.iter().rev().find(|s| s.sig == sig);
                let from = match sender {
                    Some(s) if s.sender > 0 && s.call != "signaldeliver" => {
                        format!("from pid {} ({})", s.sender, s.sender_comm)
                    }
                    Some(s) if s.sender > 0 => format!("from pid {}", s.sender),
                    _ => "from outside the container (the kubelet, the runtime or the kernel)"
                        .to_string(),
                };
                let ev = exit_ev(format!(
                    "{} (pid {}) killed by {name} {from}",
                    main.comm, main.pid
                ));
                // Who killed it decides among the kill causes; record the fact for them.
                for id in PROBE_KILLS.iter().chain(&["oom-limit", "oom-node"]) {
                    if out.has(id) {
                        out.add(id, Tier::Context, ev.clone(), "");
                    }
                }
                // The runtime's own word on the kill, when it noted one in the capture.
                for n in facts.notes.iter().filter(|n| n.id == notes::KUBELET_KILL) {
                    let ev = Evidence::new(Source::Capture, facts.pointer(n.num), n.text.clone());
                    for id in PROBE_KILLS {
                        if out.has(id) {
                            out.add(id, Tier::Context, ev.clone(), "");
                        }
                    }
                }
                if sig == 15 || !facts.notes.iter().any(|n| n.id == notes::OOM_KILL) {
                    out.rule_out("oom-limit", format!("the process got {name} {from}; the OOM killer sends no SIGTERM and the capture notes no OOM kill"));
                }
            }
        }
        None => {
            let code = exit.code.unwrap_or(0);
            // Exit 0 is a cause only where the status shows it restarted under Always.
            if code == 0 && !case.init && out.has("exit-zero-under-always") {
                let signalled = aimed.iter().any(|s| matches!(s.sig, 15 | 2 | 3));
                if signalled {
                    out.rule_out("exit-zero-under-always", "the program exited 0 after a termination signal: it was stopped, it did not finish");
                } else {
                    let daemon = facts.procs.values().any(|p| {
                        p.ppid == main.pid && p.exit.as_ref().is_none_or(|e| e.num > exit.num)
                    });
                    let summary = if daemon {
                        format!("{} (pid {}) exited 0 with no signal while its child kept running: the entrypoint daemonizes, and the container ends with it", main.comm, main.pid)
                    } else {
                        format!(
                            "{} (pid {}) exited 0 with no signal: the program finished",
                            main.comm, main.pid
                        )
                    };
                    out.add(
                        "exit-zero-under-always",
                        Tier::Capture,
                        exit_ev(format!(
                            "{} (pid {}) exit code 0, no signal",
                            main.comm, main.pid
                        )),
                        summary,
                    );
                }
            }
        }
    }
}
