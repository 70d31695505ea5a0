//! `summary`: the overview tiles of Sysdig Inspect, each a count with the view (and filter)
//! that drills into it.

use crashscope_scap::notes::{self, Losses};
use crashscope_scap::schema::Mark;
use std::collections::HashSet;

use crate::event::{exit_status, Ev, IoDir};
use crate::report::{Cell, Table};
use crate::scan::View;

use super::logs::{log_level, log_target, LogLevel};

/// A set of names counted by the summary, fed one name per event: a process reading a file
/// names it again on every read, so the last name is compared before anything is hashed.
#[derive(Default)]
struct Names {
    set: HashSet<String>,
    last: String,
}

impl Names {
    fn insert(&mut self, name: &str) {
        if self.last != name {
            self.last.clear();
            self.last.push_str(name);
            if !self.set.contains(name) {
                self.set.insert(name.to_string());
            }
        }
    }

    fn len(&self) -> usize {
        self.set.len()
    }
}

#[derive(Default)]
pub struct Summary {
    events: u64,
    pids: HashSet<i64>,
    containers: HashSet<String>,
    last_pid: Option<i64>,
    syscalls: u64,
    errors: u64,
    file_in: u64,
    file_out: u64,
    files_accessed: Names,
    files_modified: Names,
    net_in: u64,
    net_out: u64,
    connections: u64,
    listening: HashSet<String>,
    execs: u64,
    open_errors: u64,
    failed_connects: u64,
    signals: u64,
    segfaults: u64,
    /// Processes a SIGSEGV was delivered to and that have not exited yet.
    segv_delivered: std::collections::HashSet<i64>,
    forks: u64,
    log_errors: u64,
    log_warnings: u64,
    lifecycle: u64,
    exits_failed: u64,
    oom_kills: u64,
    /// Records the recorder dropped (ring buffer full), from its loss notes.
    dropped: u64,
    /// Memory snapshots the recorder could not read.
    unreadable: u64,
}

impl View for Summary {
    fn event(&mut self, ev: &Ev) {
        self.events += 1;
        // Runs of events of one process are the rule: hash a pid or a container id only when
        // it changes (hashing on every event was a tenth of the view's time).
        if ev.tid() > 0 && self.last_pid != Some(ev.pid()) {
            self.last_pid = Some(ev.pid());
            self.pids.insert(ev.pid());
            let cid = ev.container_id();
            if cid != "host" && !self.containers.contains(cid) {
                self.containers.insert(cid.to_string());
            }
        }
        let name = ev.info.name.as_str();
        if ev.name() == "container" {
            self.lifecycle += 1;
        }
        if name == "procexit" {
            match exit_status(ev) {
                (_, Some(11)) => {
                    // The delivery of the SIGSEGV that killed it was counted already.
                    if !self.segv_delivered.remove(&ev.pid()) {
                        self.segfaults += 1;
                    }
                    self.exits_failed += 1;
                }
                (Some(0), None) => {}
                _ => self.exits_failed += 1,
            }
        }
        if name == "notification" {
            let id = ev.param("id").map(|p| {
                String::from_utf8_lossy(p)
                    .trim_end_matches('\0')
                    .to_string()
            });
            match id.as_deref() {
                Some(notes::OOM_KILL) => self.oom_kills += 1,
                Some(notes::LOSSES) => {
                    let desc = ev.param("desc").map(String::from_utf8_lossy);
                    if let Some(l) = desc.and_then(|d| Losses::parse(d.trim_end_matches('\0'))) {
                        self.dropped += l.dropped;
                        self.unreadable += l.unreadable;
                    }
                }
                _ => {}
            }
        }
        if name == "signaldeliver" {
            self.signals += 1;
            if ev.num_param("sig") == Some(11) {
                self.segfaults += 1;
                self.segv_delivered.insert(ev.pid());
            }
        }
        if ev.is_enter() {
            return;
        }
        if ev.info.is(Mark::Syscall) {
            self.syscalls += 1;
        }
        let res = ev.res();
        if ev.failed() {
            self.errors += 1;
        }
        let fd = ev.fd();
        if let (Some(dir), Some(fd)) = (ev.io(), fd) {
            let n = ev.io_bytes();
            match (fd.kind, dir) {
                ('f', IoDir::Read) => {
                    self.file_in += n;
                    self.files_accessed.insert(&fd.name);
                }
                ('f', IoDir::Write) => {
                    self.file_out += n;
                    self.files_modified.insert(&fd.name);
                }
                ('4' | '6', IoDir::Read) => self.net_in += n,
                ('4' | '6', IoDir::Write) => self.net_out += n,
                _ => {}
            }
        }
        if ev.io() == Some(IoDir::Write) && log_target(ev).is_some() {
            for line in String::from_utf8_lossy(ev.data().unwrap_or_default()).lines() {
                match log_level(line) {
                    Some(LogLevel::Error) => self.log_errors += 1,
                    Some(LogLevel::Warning) => self.log_warnings += 1,
                    None => {}
                }
            }
        }
        match name {
            "open" | "openat" | "openat2" | "creat" => match (res, fd) {
                (Some(r), _) if r < 0 => self.open_errors += 1,
                (_, Some(f)) if f.kind == 'f' => {
                    self.files_accessed.insert(&f.name);
                }
                _ => {}
            },
            "connect" => match res {
                Some(0 | -115) => self.connections += 1,
                Some(_) => self.failed_connects += 1,
                None => {}
            },
            "accept" | "accept4" if res.is_some_and(|r| r >= 0) => self.connections += 1,
            "listen" if res == Some(0) => {
                if let Some(f) = fd {
                    self.listening.insert(f.name.clone());
                }
            }
            "execve" | "execveat" if res == Some(0) => self.execs += 1,
            "clone" | "clone3" | "fork" | "vfork" if res.is_some_and(|r| r > 0) => self.forks += 1,
            "kill" | "tkill" | "tgkill" if res == Some(0) => self.signals += 1,
            _ => {}
        }
    }

    fn known(&mut self, state: &crashscope_scap::state::State) {
        // Containers that never acted in the capture still ran on the machine.
        self.containers
            .extend(state.container_ids().into_iter().map(str::to_string));
    }

    fn finish(self: Box<Self>) -> Table {
        let mut t = Table::new("summary", &["tile", "value", "drill down"]);
        let mut row = |tile: &str, v: Cell, drill: &str| {
            t.push(vec![tile.into(), v, drill.into()]);
        };
        row("events", Cell::Count(self.events), "--events");
        row("processes", Cell::Count(self.pids.len() as u64), "procs");
        row(
            "containers",
            Cell::Count(self.containers.len() as u64),
            "containers",
        );
        row(
            "container metadata records",
            Cell::Count(self.lifecycle),
            "containers",
        );
        row("system calls", Cell::Count(self.syscalls), "--events");
        row("failed system calls", Cell::Count(self.errors), "errors");
        row("file bytes in", Cell::Bytes(self.file_in), "files");
        row("file bytes out", Cell::Bytes(self.file_out), "files");
        row(
            "files accessed",
            Cell::Count(self.files_accessed.len() as u64),
            "files",
        );
        row(
            "files modified",
            Cell::Count(self.files_modified.len() as u64),
            "files",
        );
        row(
            "file open errors",
            Cell::Count(self.open_errors),
            "errors -f 'evt.type in (open, openat, openat2, creat)'",
        );
        row("network bytes in", Cell::Bytes(self.net_in), "net");
        row("network bytes out", Cell::Bytes(self.net_out), "net");
        row("connections", Cell::Count(self.connections), "net");
        row(
            "failed connects",
            Cell::Count(self.failed_connects),
            "errors -f 'evt.type=connect'",
        );
        row(
            "listening ports",
            Cell::Count(self.listening.len() as u64),
            "net",
        );
        row("executed commands", Cell::Count(self.execs), "procs");
        row("forks", Cell::Count(self.forks), "procs");
        row(
            "failed process exits",
            Cell::Count(self.exits_failed),
            "procs",
        );
        row(
            "signals",
            Cell::Count(self.signals),
            "--events -f 'evt.type in (signaldeliver, kill, tgkill, tkill)'",
        );
        row("segfaults", Cell::Count(self.segfaults), "procs");
        row(
            "OOM kills",
            Cell::Count(self.oom_kills),
            "--events -f 'evt.type=notification'",
        );
        row(
            "records dropped by the recorder",
            Cell::Count(self.dropped),
            "--events -f 'evt.type=notification'",
        );
        row(
            "memory snapshots unreadable",
            Cell::Count(self.unreadable),
            "--events -f 'evt.type=notification'",
        );
        row(
            "log lines with errors",
            Cell::Count(self.log_errors),
            "logs",
        );
        row(
            "log lines with warnings",
            Cell::Count(self.log_warnings),
            "logs",
        );
        t
    }
}
