//! The views, by name. Each streams the matching events once and keeps only its result.

use crate::scan::View;

mod containers;
pub mod death;
pub mod dns;
mod errors;
mod files;
pub mod io;
mod logs;
mod net;
mod procs;
mod summary;
mod timeline;

pub use logs::{log_level, LogLevel};

/// Options some views take.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `io`: show payloads as a hex dump.
    pub hex: bool,
    /// `timeline`: bucket width in nanoseconds (automatic when unset).
    pub bucket: Option<u64>,
    /// Keep only this many rows (the largest).
    pub top: Option<usize>,
    /// `errors`: also the start-up noise every program makes (locale, loader, nscd, ENOTTY).
    pub all: bool,
}

/// Every view: name and what it shows.
pub const VIEWS: &[(&str, &str)] = &[
    (
        "summary",
        "overview tiles: processes, containers, I/O, connections, errors, signals, ...",
    ),
    (
        "containers",
        "containers seen, with start, death (exit code or signal) and lifetime",
    ),
    (
        "procs",
        "process tree: command lines, start/end, exit code or signal, syscalls, errors",
    ),
    (
        "death",
        "how each process died: exit or signal and sender, unrecovered failures, last output and calls",
    ),
    (
        "errors",
        "failed system calls by errno, syscall, process and path or address",
    ),
    (
        "files",
        "files by bytes read and written, opens and failed opens",
    ),
    (
        "io",
        "the bytes read and written on each fd, in order (echo_fds)",
    ),
    (
        "net",
        "connections and sockets: tuples, direction, bytes, duration, failures",
    ),
    (
        "dns",
        "DNS queries in port-53 payloads with their answers, or why none came",
    ),
    (
        "logs",
        "lines written to stdout/stderr and log files, errors and warnings marked",
    ),
    (
        "timeline",
        "activity per time bucket by category, with lifecycle marks",
    ),
];

/// The view named `name`.
pub fn make(name: &str, opts: &Options) -> Option<Box<dyn View>> {
    Some(match name {
        "summary" => Box::new(summary::Summary::default()),
        "containers" => Box::new(containers::Containers::default()),
        "procs" => Box::new(procs::Procs::default()),
        "death" => Box::new(death::Deaths::default()),
        "errors" => Box::new(errors::Errors::new(opts.top, opts.all)),
        "files" => Box::new(files::Files::new(opts.top)),
        "io" => Box::new(io::Io::new(opts.hex)),
        "net" => Box::new(net::Net::default()),
        "dns" => Box::new(dns::Dns::default()),
        "logs" => Box::new(logs::Logs::default()),
        "timeline" => Box::new(timeline::Timeline::new(opts.bucket)),
        _ => return None,
    })
}

/// Keeps the first `top` rows when a limit is set.
fn truncate<T>(rows: &mut Vec<T>, top: Option<usize>) {
    if let Some(n) = top {
        rows.truncate(n);
    }
}
