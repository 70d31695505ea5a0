//! `procs`: the process tree of a capture — command line, start and end, exit code or the
//! signal that killed it, run time (sysdig's `proc_exec_time`), syscalls and errors.

use crashscope_scap::schema::Mark;
use std::collections::{BTreeMap, HashMap};

use crate::event::{exit_status, signal_name, Ev};
use crate::report::{Cell, Table};
use crate::scan::View;

#[derive(Default)]
struct Proc {
    ppid: i64,
    name: String,
    cmdline: String,
    container: String,
    first: u64,
    /// When it was created (fork) or started its program (execve), if the capture saw it.
    start: Option<u64>,
    end: Option<u64>,
    code: Option<i64>,
    sig: Option<i64>,
    syscalls: u64,
    errors: u64,
    /// The state's generation when name and parent were last copied.
    copied: Option<u64>,
}

#[derive(Default)]
pub struct Procs {
    procs: BTreeMap<i64, Proc>,
    /// The process of the last event: most events are a process's like the one before.
    last: Option<(i64, Proc)>,
}

impl Procs {
    /// The process `pid`'s record, kept at hand (the one held before goes to the map).
    fn take(&mut self, pid: i64, first: u64) -> &mut Proc {
        if self.last.as_ref().is_some_and(|(p, _)| *p != pid) {
            if let Some((old, kept)) = self.last.take() {
                self.procs.insert(old, kept);
            }
        }
        let procs = &mut self.procs;
        let (_, p) = self.last.get_or_insert_with(|| {
            let p = procs.remove(&pid).unwrap_or_else(|| Proc {
                first,
                ..Proc::default()
            });
            (pid, p)
        });
        p
    }
}

impl View for Procs {
    fn event(&mut self, ev: &Ev) {
        let Some(t) = ev.thread() else {
            return;
        };
        let pid = t.pid;
        let p = self.take(pid, ev.ts());
        // The process is looked up only when something of it is copied: name and parent
        // change only with the thread table, the command line only with execve.
        let process = || ev.process().unwrap_or(t);
        let generation = ev.state.generation();
        if p.copied != Some(generation) {
            p.copied = Some(generation);
            let process = process();
            p.ppid = process.ptid;
            p.name.clone_from(&process.comm);
        }
        if p.cmdline.is_empty() || ev.info.name.starts_with("execve") {
            let process = process();
            let mut c = process.exe.clone();
            for a in process.args.iter() {
                c.push(' ');
                c.push_str(a);
            }
            p.cmdline = c;
        }
        if p.container.is_empty() {
            p.container = ev.container_id().to_string();
        }
        let name = ev.info.name.as_str();
        if !ev.is_enter() && ev.info.is(Mark::Syscall) {
            p.syscalls += 1;
            if ev.failed() {
                p.errors += 1;
            }
        }
        match name {
            "execve" | "execveat" if ev.res() == Some(0) => p.start = Some(ev.ts()),
            "clone" | "clone3" | "fork" | "vfork" if ev.res() == Some(0) && t.tid == t.pid => {
                p.start.get_or_insert(ev.ts());
            }
            "procexit" if t.tid == t.pid => {
                p.end = Some(ev.ts());
                let (code, sig) = exit_status(ev);
                p.code = code;
                p.sig = sig;
            }
            _ => {}
        }
    }

    fn finish(mut self: Box<Self>) -> Table {
        if let Some((pid, p)) = self.last.take() {
            self.procs.insert(pid, p);
        }
        let mut t = Table::new(
            "procs",
            &[
                "pid",
                "ppid",
                "process",
                "command",
                "container",
                "start",
                "end",
                "run time",
                "exit",
                "syscalls",
                "errors",
                "depth",
            ],
        );
        let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut roots = Vec::new();
        for (pid, p) in &self.procs {
            if p.ppid != *pid && self.procs.contains_key(&p.ppid) {
                children.entry(p.ppid).or_default().push(*pid);
            } else {
                roots.push(*pid);
            }
        }
        // Depth-first, children after their parent; a visited set guards against pid cycles
        // in damaged captures.
        let mut stack: Vec<(i64, usize)> = roots.into_iter().rev().map(|r| (r, 0)).collect();
        let mut seen = std::collections::HashSet::new();
        while let Some((pid, depth)) = stack.pop() {
            if !seen.insert(pid) {
                continue;
            }
            let Some(p) = self.procs.get(&pid) else {
                continue;
            };
            let exit = match (p.end, p.code, p.sig) {
                (Some(_), _, Some(sig)) => Cell::Text(signal_name(sig)),
                (Some(_), Some(code), _) => Cell::Int(code),
                _ => Cell::Empty,
            };
            let start = p.start.unwrap_or(p.first);
            t.push(vec![
                Cell::Int(pid),
                Cell::Int(p.ppid),
                format!("{}{}", "  ".repeat(depth), p.name).into(),
                p.cmdline.clone().into(),
                p.container.clone().into(),
                p.start.map(Cell::Time).unwrap_or(Cell::Empty),
                p.end.map(Cell::Time).unwrap_or(Cell::Empty),
                p.end
                    .map(|e| Cell::Duration(e.saturating_sub(start)))
                    .unwrap_or(Cell::Empty),
                exit,
                Cell::Count(p.syscalls),
                Cell::Count(p.errors),
                Cell::Count(depth as u64),
            ]);
            if let Some(kids) = children.get(&pid) {
                for k in kids.iter().rev() {
                    stack.push((*k, depth + 1));
                }
            }
        }
        t
    }
}
