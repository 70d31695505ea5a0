//! `death`: how each process that exited in the capture died — its exit code or signal and
//! who sent the signal, its last system calls, the failures it never recovered from (a
//! failed call on a path or address not followed by a success on the same one), its last
//! log lines, and the call it was blocked in. Containers' main processes come first.
//!
//! [`Deaths`] is also a library call: [`Deaths::deaths`] gives the same as values (JSON with
//! serde), for tools and for the diagnosis.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crashscope_scap::intmap::IntMap;

use serde::Serialize;

use crate::event::{errno_text, exit_status, signal_name, Ev, IoDir};
use crate::report::{clock, Table};
use crate::scan::View;
use crate::views::errors::{is_noise, target};
use crate::views::logs::log_target;

/// System calls kept per process.
pub const LAST_CALLS: usize = 12;
/// Log lines kept per process.
pub const LAST_LINES: usize = 6;
/// Longest line kept (its end).
const MAX_LINE: usize = 4096;

/// Cuts `s` to its last `max` bytes or so (at a character boundary).
fn keep_tail(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let cut = s.len() - max;
    let cut = (cut..s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    s.drain(..cut);
}

/// A failure the process met and did not get past.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unrecovered {
    pub syscall: String,
    pub target: String,
    pub errno: String,
    pub count: u64,
    /// Event number of the last occurrence.
    pub last_event: u64,
}

/// How one process died.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Death {
    pub pid: i64,
    pub command: String,
    pub container_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The container's main process (pid 1 of its namespace).
    pub main: bool,
    pub at: u64,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    /// Who sent the fatal signal: `pid comm`, or `kernel` for a fault.
    pub sender: Option<String>,
    pub last_calls: Vec<String>,
    pub unrecovered: Vec<Unrecovered>,
    pub last_lines: Vec<String>,
    /// The call it was inside when it ended (entered, never returned).
    pub waiting_on: Option<String>,
    pub event: u64,
}

/// A system call as the view keeps it: shown as text only if its process dies (a busy
/// process makes millions of calls; formatting each cost more than reading it).
#[derive(Default)]
struct Call {
    /// Empty for "none": a thread's call that returned.
    name: &'static str,
    target: String,
    res: Option<i64>,
}

impl Call {
    /// Sets the call in place, reusing the target's allocation.
    fn set(&mut self, name: &'static str, target: &str, res: Option<i64>) {
        self.name = name;
        // A busy process repeats its calls: the slot often holds this target already.
        if self.target != target {
            self.target.clear();
            self.target.push_str(target);
        }
        self.res = res;
    }

    /// As the view shows it: `openat /etc/app.conf = ENOENT`.
    fn text(&self) -> String {
        let mut out = self.name.to_string();
        if !self.target.is_empty() {
            out.push(' ');
            out.push_str(&self.target);
        }
        match self.res {
            Some(r) if r < 0 => {
                out.push_str(" = ");
                out.push_str(&errno_text(r));
            }
            Some(r) => {
                out.push_str(" = ");
                out.push_str(&r.to_string());
            }
            None => {}
        }
        out
    }
}

#[derive(Default)]
struct Proc {
    calls: VecDeque<Call>,
    /// Failures by target, in first-seen order; removed when a call on the target succeeds.
    failures: BTreeMap<(u64, String), Unrecovered>,
    by_target: HashMap<String, u64>,
    lines: VecDeque<String>,
    partial: String,
    /// Per thread: the call entered and not yet returned (nameless once it returned; kept
    /// for the next call's allocation).
    inside: IntMap<Call>,
    /// The last signal delivered to it and its sender.
    signal: Option<(i64, String)>,
}

#[derive(Default)]
pub struct Deaths {
    procs: IntMap<Proc>,
    deaths: Vec<Death>,
    order: u64,
}

impl View for Deaths {
    fn event(&mut self, ev: &Ev) {
        let Some(thread) = ev.thread() else {
            return;
        };
        let pid = thread.pid;
        let p = self.procs.entry(pid).or_default();
        let name = ev.name();
        if name == "signaldeliver" {
            if let (Some(sig), Some(spid)) = (ev.num_param("sig"), ev.num_param("spid")) {
                if ev
                    .num_param("dpid")
                    .is_none_or(|d| d == pid || d == thread.tid)
                {
                    let sender = if spid == 0 {
                        "kernel".to_string()
                    } else {
                        let comm = ev
                            .state
                            .threads
                            .get(&spid)
                            .map(|t| t.comm.clone())
                            .unwrap_or_default();
                        format!("{spid} {comm}").trim_end().to_string()
                    };
                    p.signal = Some((sig, sender));
                }
            }
            return;
        }
        if name == "procexit" {
            if thread.tid == pid {
                self.died(ev, pid);
            }
            return;
        }
        if ev.is_enter() {
            if matches!(name, "exit" | "exit_group") {
                return;
            }
            let t = target(ev);
            p.inside.entry(thread.tid).or_default().set(name, &t, None);
            return;
        }
        if let Some(call) = p.inside.get_mut(&thread.tid) {
            call.name = "";
        }
        if !ev.info.is(crashscope_scap::schema::Mark::Syscall) {
            return;
        }
        let t = target(ev);
        let mut call = if p.calls.len() >= LAST_CALLS {
            p.calls.pop_front().unwrap_or_default()
        } else {
            Call::default()
        };
        call.set(name, &t, ev.res());
        p.calls.push_back(call);
        let failed = ev.res().filter(|r| *r < 0).or_else(|| ev.pending_error());
        if !t.is_empty() {
            match failed {
                Some(err) => {
                    let key = match p.by_target.get(t.as_ref()) {
                        Some(&order) => (order, t.to_string()),
                        None => {
                            self.order += 1;
                            p.by_target.insert(t.to_string(), self.order);
                            (self.order, t.to_string())
                        }
                    };
                    let f = p.failures.entry(key).or_insert_with(|| Unrecovered {
                        syscall: name.to_string(),
                        target: t.to_string(),
                        errno: errno_text(err),
                        count: 0,
                        last_event: 0,
                    });
                    f.count += 1;
                    f.last_event = ev.num;
                    f.syscall = name.to_string();
                    f.errno = errno_text(err);
                }
                // Nothing to recover from (the usual case) costs no lookup.
                None if !p.by_target.is_empty() => {
                    if let Some(order) = p.by_target.remove(t.as_ref()) {
                        p.failures.remove(&(order, t.into_owned()));
                    }
                }
                None => {}
            }
        }
        if ev.io() == Some(IoDir::Write) && log_target(ev).is_some() {
            let data = ev.data().unwrap_or_default();
            // Only the new bytes are searched: a program writing a byte at a time must not
            // make each write rescan everything before it.
            let mut rest = data;
            while let Some(i) = rest.iter().position(|b| *b == b'\n') {
                p.partial.push_str(&String::from_utf8_lossy(&rest[..i]));
                keep_tail(&mut p.partial, MAX_LINE);
                let line = std::mem::take(&mut p.partial).trim_end().to_string();
                if !line.is_empty() {
                    p.lines.push_back(line);
                    if p.lines.len() > LAST_LINES {
                        p.lines.pop_front();
                    }
                }
                rest = &rest[i + 1..];
            }
            p.partial.push_str(&String::from_utf8_lossy(rest));
            // A line that never ends keeps its tail (what was written last); cut in halves so
            // that a byte-at-a-time writer costs a pass over each byte, not over the line.
            if p.partial.len() > 2 * MAX_LINE {
                keep_tail(&mut p.partial, MAX_LINE);
            }
        }
    }

    fn finish(self: Box<Self>) -> Table {
        let mut t = Table::new("death", &["process", "details"]);
        t.chunks = true;
        let deaths = self.deaths();
        for d in &deaths {
            let exit = match (&d.signal, d.exit_code) {
                (Some(s), _) => format!("killed by {s}"),
                (None, Some(c)) => format!("exit code {c}"),
                _ => "exited".into(),
            };
            let mut text = format!("exit:        {exit} at {}", clock(d.at));
            if let Some(s) = &d.sender {
                text.push_str(&format!(", signal from {s}"));
            }
            text.push('\n');
            if let Some(w) = &d.waiting_on {
                text.push_str(&format!("inside:      {w}\n"));
            }
            if !d.unrecovered.is_empty() {
                text.push_str("unrecovered:\n");
                for u in &d.unrecovered {
                    text.push_str(&format!(
                        "  {} {} = {} (x{}, last event {})\n",
                        u.syscall, u.target, u.errno, u.count, u.last_event
                    ));
                }
            }
            if !d.last_lines.is_empty() {
                text.push_str("last output:\n");
                for l in &d.last_lines {
                    text.push_str(&format!("  {l}\n"));
                }
            }
            if !d.last_calls.is_empty() {
                text.push_str("last system calls:\n");
                for c in &d.last_calls {
                    text.push_str(&format!("  {c}\n"));
                }
            }
            let mut head = format!("pid {} {}", d.pid, d.command);
            if d.container_id != "host" {
                head.push_str(&format!(
                    " — {}container {}",
                    if d.main { "main process of " } else { "in " },
                    d.container_id
                ));
                if let Some(p) = &d.pod {
                    head.push_str(&format!(" (pod {p})"));
                }
            }
            head.push_str(&format!(": {exit}"));
            t.push(vec![head.into(), text.into()]);
        }
        t.values = serde_json::to_value(&deaths).ok();
        if t.rows.is_empty() {
            t.notes.push("no process exited in the capture".into());
        }
        t
    }
}

impl Deaths {
    fn died(&mut self, ev: &Ev, pid: i64) {
        let Some(p) = self.procs.remove(&pid) else {
            return;
        };
        let (code, sig) = exit_status(ev);
        let process = ev.process();
        let command = process
            .map(|t| {
                let mut c = t.comm.clone();
                for a in &t.args {
                    c.push(' ');
                    c.push_str(a);
                }
                c
            })
            .unwrap_or_default();
        let container = ev.container();
        let pod = container.and_then(|c| {
            Some(format!(
                "{}/{}",
                c.label("io.kubernetes.pod.namespace")?,
                c.label("io.kubernetes.pod.name")?
            ))
        });
        let sender = match (sig, &p.signal) {
            (Some(s), Some((delivered, from))) if *delivered == s => Some(from.clone()),
            _ => None,
        };
        let mut unrecovered: Vec<Unrecovered> = p
            .failures
            .into_values()
            .filter(|u| !is_noise(&u.target, &u.errno))
            .collect();
        // The latest failures are the likeliest cause: last first.
        unrecovered.reverse();
        self.deaths.push(Death {
            pid,
            command,
            container_id: ev.container_id().to_string(),
            pod,
            main: process.is_some_and(|t| {
                // The first process of its container: pid 1 of the namespace, or (when the
                // recorder did not give namespace pids) the one whose parent is outside.
                let parent = ev.state.threads.get(&t.ptid);
                t.vpid == 1
                    || (!t.container_id().is_empty()
                        && parent.is_none_or(|pp| pp.container_id() != t.container_id()))
            }),
            at: ev.ts(),
            exit_code: code,
            signal: sig.map(signal_name),
            sender,
            last_calls: p.calls.iter().map(Call::text).collect(),
            unrecovered,
            last_lines: p.lines.into_iter().collect(),
            waiting_on: p
                .inside
                .get(&pid)
                .filter(|w| !w.name.is_empty())
                .or_else(|| p.inside.values().find(|w| !w.name.is_empty()))
                .map(Call::text),
            event: ev.num,
        });
    }

    /// Every death, containers' main processes first, then in the order they happened.
    pub fn deaths(&self) -> Vec<Death> {
        let mut out = self.deaths.clone();
        out.sort_by_key(|d| (!d.main, d.at));
        out
    }
}
