//! sysdig's default event line — `%evt.num %evt.outputtime %evt.cpu %proc.name (%thread.tid)
//! %evt.dir %evt.type %evt.info` — and a JSON form of the same fields.
//!
//! `evt.info` renders each parameter as `name=value` the way sysdig does for the common types:
//! fds with their type and name from the state (`fd=3(<f>/etc/hosts)`), errors with their
//! errno name (`res=-2(ENOENT)`), thread ids with the thread's name (`next=2987(sysdig)`),
//! buffers with non-printable bytes as dots, socket tuples as `a:p->b:q`. Flag values are
//! printed as numbers (sysdig adds the flag names).

use serde::Serialize;
use std::fmt::Write;

use crate::block::EventRecord;
use crate::event::{as_i64, as_str, as_u64, params};
use crate::schema::{self, ParamType, PrintFormat};
use crate::state::{addr_name, tuple_name, State};

/// The conventional name of a signal number.
pub fn signal_name(sig: i64) -> Option<&'static str> {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(sig)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .filter(|n| !n.is_empty())
}

/// Name of an errno value.
pub fn errno_name(e: i64) -> Option<&'static str> {
    const NAMES: [&str; 41] = [
        "",
        "EPERM",
        "ENOENT",
        "ESRCH",
        "EINTR",
        "EIO",
        "ENXIO",
        "E2BIG",
        "ENOEXEC",
        "EBADF",
        "ECHILD",
        "EAGAIN",
        "ENOMEM",
        "EACCES",
        "EFAULT",
        "ENOTBLK",
        "EBUSY",
        "EEXIST",
        "EXDEV",
        "ENODEV",
        "ENOTDIR",
        "EISDIR",
        "EINVAL",
        "ENFILE",
        "EMFILE",
        "ENOTTY",
        "ETXTBSY",
        "EFBIG",
        "ENOSPC",
        "ESPIPE",
        "EROFS",
        "EMLINK",
        "EPIPE",
        "EDOM",
        "ERANGE",
        "EDEADLK",
        "ENAMETOOLONG",
        "ENOLCK",
        "ENOSYS",
        "ENOTEMPTY",
        "ELOOP",
    ];
    let e = usize::try_from(e).ok()?;
    if let Some(n) = NAMES.get(e).filter(|n| !n.is_empty()) {
        return Some(n);
    }
    Some(match e {
        61 => "ENODATA",
        62 => "ETIME",
        88 => "ENOTSOCK",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        100 => "ENETDOWN",
        101 => "ENETUNREACH",
        103 => "ECONNABORTED",
        104 => "ECONNRESET",
        106 => "EISCONN",
        107 => "ENOTCONN",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        115 => "EINPROGRESS",
        _ => return None,
    })
}

fn printable(b: &[u8], max: usize) -> String {
    b.iter()
        .take(max)
        .map(|c| {
            if (0x20..0x7f).contains(c) {
                *c as char
            } else {
                '.'
            }
        })
        .collect()
}

/// [`type_name_with`], with the state the event is shown with: a generic exit whose call
/// has no ppm id (newer than the oldest readers' table) is named, as its enter is, by the
/// enter's native number — not "syscall" after a "> rseq".
#[inline]
pub fn type_name_in(rec: &EventRecord, p: &[&[u8]], state: &State) -> Option<&'static str> {
    let name = type_name_with(rec, p)?;
    if rec.event_type() != 1 || p.first().and_then(|p| as_u64(p)).is_some_and(|id| id != 0) {
        return Some(name);
    }
    let named = state.paired_enter(rec).and_then(|enter| {
        let ps = params(enter);
        type_name_with(enter, &ps).filter(|n| *n != name)
    });
    Some(named.unwrap_or(name))
}

/// The type name shown for an event: the syscall's name for generic events.
pub fn type_name(rec: &EventRecord) -> String {
    let code = rec.event_type();
    match type_name_with(rec, &params(rec)) {
        Some(n) => n.to_string(),
        None => format!("event{code}"),
    }
}

/// [`type_name`] from parameters already split, without allocating; `None` for event types
/// the schema does not know.
#[inline]
pub fn type_name_with(rec: &EventRecord, p: &[&[u8]]) -> Option<&'static str> {
    let code = rec.event_type();
    let info = schema::event(code)?;
    if code > 1 {
        return Some(info.name.as_str());
    }
    let id = p.first().and_then(|p| as_u64(p)).filter(|id| *id != 0);
    // Unknown id: the native number (enter events) still names the call.
    let native = || {
        p.get(1)
            .and_then(|p| as_u64(p))
            .and_then(|n| u16::try_from(n).ok())
            .and_then(schema::native_syscall_name)
    };
    Some(
        id.and_then(schema::syscall_name)
            .or_else(native)
            .unwrap_or(info.name.as_str()),
    )
}

/// sysdig's `evt.info` for `rec` given the state before it.
pub fn info(rec: &EventRecord, state: &State) -> String {
    let mut out = String::with_capacity(128);
    info_into(&mut out, rec, state);
    out
}

/// [`info`] appended to `out`.
pub fn info_into(out: &mut String, rec: &EventRecord, state: &State) {
    let code = rec.event_type();
    if code <= 1 {
        return;
    }
    let infos = schema::event(code)
        .map(|i| i.params.as_slice())
        .unwrap_or(&[]);
    for (i, p) in params(rec).iter().enumerate() {
        match infos.get(i) {
            Some(pi) => out.push_str(&pi.name),
            None => {
                let _ = write!(out, "param{i}");
            }
        }
        out.push('=');
        param_into(out, rec, infos.get(i), p, state);
        out.push(' ');
    }
}

/// One parameter as `evt.info` shows it (sysdig's `evt.arg.NAME`).
pub fn param_text(rec: &EventRecord, i: usize, state: &State) -> Option<String> {
    let ps = params(rec);
    let p = ps.get(i)?;
    let infos = schema::event(rec.event_type())?;
    let mut out = String::new();
    param_into(&mut out, rec, infos.params.get(i), p, state);
    Some(out)
}

fn param_into(
    out: &mut String,
    rec: &EventRecord,
    info: Option<&schema::ParamInfo>,
    p: &[u8],
    state: &State,
) {
    let (ty, fmt, flags) = match info {
        Some(pi) => (pi.ty, pi.fmt, pi.flags.as_deref()),
        None => (ParamType::ByteBuf, PrintFormat::Na, None),
    };
    match flags {
        Some(table) if ty == ParamType::Dyn => dyn_into(out, p, table, rec.tid(), state),
        Some(table) if !p.is_empty() => out.push_str(&flag_value(as_u64(p).unwrap_or(0), table)),
        _ => value_into(out, p, ty, fmt, rec.tid(), state),
    }
}

/// A dynamic parameter: a type byte, then the value of that type. For getsockopt and
/// setsockopt (`sockopt_dynamic_param`): 1 an errno (SO_ERROR's pending error, negative),
/// 2 a u32, 3 a u64, 4 a time in nanoseconds, 0 raw bytes — as libsinsp prints them.
fn dyn_into(out: &mut String, p: &[u8], table: &str, tid: i64, state: &State) {
    use ParamType::*;
    let Some((&kind, v)) = p.split_first() else {
        out.push_str("<NA>");
        return;
    };
    let ty = match (table, kind) {
        ("sockopt_dynamic_param", 1) => Errno,
        ("sockopt_dynamic_param", 2) => Uint32,
        ("sockopt_dynamic_param", 3) => Uint64,
        ("sockopt_dynamic_param", 4) => RelTime,
        _ => ByteBuf,
    };
    value_into(out, v, ty, PrintFormat::Dec, tid, state);
}

/// libsinsp's rendering of a flags value: the number, then the names of its bits; a value
/// that equals one entry exactly is that entry alone.
fn flag_value(val: u64, table: &str) -> String {
    let flags = schema::flag_table(table);
    if let Some((n, _)) = flags.iter().find(|(_, v)| *v == val) {
        return format!("{val}({n})");
    }
    let mut rest = val;
    let mut names: Vec<&str> = Vec::new();
    for (n, v) in flags {
        if (*v == 0 && val == 0) || (*v != 0 && rest != 0 && rest & v == *v) {
            names.push(n);
            rest &= !v;
        }
    }
    if names.is_empty() {
        val.to_string()
    } else {
        format!("{val}({})", names.join("|"))
    }
}

/// Appends the rendering of one parameter to `out` (numbers without a temporary string).
fn value_into(
    out: &mut String,
    p: &[u8],
    ty: ParamType,
    fmt: PrintFormat,
    tid: i64,
    state: &State,
) {
    use ParamType::*;
    if ty == RelTime && p.len() == 8 {
        // Nanoseconds, then the same in seconds: `interval=0(0s)`.
        let v = as_u64(p).unwrap_or(0);
        let secs = format!("{:.9}", v as f64 / 1e9);
        let secs = secs.trim_end_matches('0').trim_end_matches('.');
        let _ = write!(out, "{v}({secs}s)");
        return;
    }
    let mut digits = itoa::Buffer::new();
    // The two commonest parameters, written without temporary strings: an fd with its
    // name (`3(<f>/etc/hosts)`; negative ones, errors and AT_FDCWD, are `value`'s) and a
    // non-negative result.
    if ty == Fd && !p.is_empty() {
        let fd = as_i64(p).unwrap_or(0);
        if fd >= 0 {
            out.push_str(digits.format(fd));
            if let Some(f) = state.fd(tid, fd) {
                out.push_str("(<");
                f.push_type_tag(out);
                out.push('>');
                out.push_str(&f.name);
                out.push(')');
            }
            return;
        }
    }
    if ty == Errno && fmt != PrintFormat::Hex {
        if let Some(v) = as_i64(p).filter(|v| *v >= 0) {
            out.push_str(digits.format(v));
            return;
        }
    }
    if ty == SigType && fmt != PrintFormat::Hex {
        // As sysdig prints a signal: `17(SIGCHLD)`; 0 (none) bare.
        if let Some(v) = as_u64(p) {
            out.push_str(digits.format(v));
            if let Some(name) = i64::try_from(v).ok().and_then(signal_name) {
                out.push('(');
                out.push_str(name);
                out.push(')');
            }
            return;
        }
    }
    let simple_int = matches!(ty, Int8 | Int16 | Int32 | Int64 | RelTime);
    let simple_uint = matches!(
        ty,
        Uint8 | Uint16 | Uint32 | Uint64 | Uid | Gid | Port | L4Proto | SockFamily | Bool
    ) && fmt != PrintFormat::Hex
        && fmt != PrintFormat::Oct;
    if !p.is_empty() && simple_int {
        if let Some(v) = as_i64(p) {
            out.push_str(digits.format(v));
            return;
        }
    }
    if !p.is_empty() && simple_uint {
        if let Some(v) = as_u64(p) {
            out.push_str(digits.format(v));
            return;
        }
    }
    if !p.is_empty() && matches!(ty, CharBuf | FsPath | FsRelPath) {
        let s = p.split(|c| *c == 0).next().unwrap_or(p);
        match std::str::from_utf8(s) {
            Ok(s) => out.push_str(s),
            Err(_) => out.push_str(&String::from_utf8_lossy(s)),
        }
        return;
    }
    if !p.is_empty() && ty == ByteBuf {
        let (n, dots) = if p.len() > 80 {
            (77, true)
        } else {
            (p.len(), false)
        };
        out.extend(p[..n].iter().map(|c| {
            if (0x20..0x7f).contains(c) {
                *c as char
            } else {
                '.'
            }
        }));
        if dots {
            out.push_str("...");
        }
        return;
    }
    out.push_str(&value(p, ty, fmt, tid, state));
}

fn value(p: &[u8], ty: ParamType, fmt: PrintFormat, tid: i64, state: &State) -> String {
    use ParamType::*;
    if p.is_empty() {
        return match ty {
            ByteBuf | CharBuf | FsPath | FsRelPath | FdList => String::new(),
            SockTuple | SockAddr => "NULL".into(),
            _ => "<NA>".into(),
        };
    }
    match ty {
        Fd => {
            // Open fds (>= 0) are written by value_into.
            match as_i64(p).unwrap_or(0) {
                -100 => "-100(AT_FDCWD)".into(),
                fd => errno(fd),
            }
        }
        Errno => match as_i64(p).unwrap_or(0) {
            v if v >= 0 && fmt == PrintFormat::Hex => format!("{v:X}"),
            v => errno(v),
        },
        Pid => {
            let v = as_i64(p).unwrap_or(0);
            match state.thread(v).filter(|_| v > 0) {
                Some(t) => format!("{v}({})", t.comm),
                None => v.to_string(),
            }
        }
        CharBuf | FsPath | FsRelPath => as_str(p),
        ByteBuf if p.len() > 80 => format!("{}...", printable(p, 77)),
        ByteBuf => printable(p, 80),
        SockTuple if p.first() == Some(&1) && p.len() >= 17 => {
            let src = u64::from_le_bytes(p[1..9].try_into().unwrap_or([0; 8]));
            let dst = u64::from_le_bytes(p[9..17].try_into().unwrap_or([0; 8]));
            format!("{src:x}->{dst:x} {}", as_str(&p[17..]))
        }
        SockTuple => tuple_name(p).map(|(_, n)| n).unwrap_or_default(),
        FdList => {
            let n = p
                .get(..2)
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
                .unwrap_or(0);
            (0..n)
                .filter_map(|i| {
                    let e = p.get(2 + i * 10..12 + i * 10)?;
                    let fd = i64::from_le_bytes(e[..8].try_into().ok()?);
                    // sysdig: fd, then the fd's type letter and the poll flags in hex.
                    let kind = state
                        .fd(tid, fd)
                        .map(|f| f.kind.to_string())
                        .unwrap_or_default();
                    Some(format!("{fd}:{kind}{:x}", u16::from_le_bytes([e[8], e[9]])))
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
        SockAddr => addr_name(p).unwrap_or_default(),
        Int8 | Int16 | Int32 | Int64 | RelTime => {
            as_i64(p).map(|v| v.to_string()).unwrap_or_default()
        }
        _ => match as_u64(p) {
            Some(v) => match fmt {
                PrintFormat::Hex => format!("{v:X}"),
                PrintFormat::Oct if v == 0 => "0".into(),
                PrintFormat::Oct => format!("0{v:o}"),
                _ => v.to_string(),
            },
            None => printable(p, 80),
        },
    }
}

fn errno(v: i64) -> String {
    if v < 0 {
        match v.checked_neg().and_then(errno_name) {
            Some(n) => format!("{v}({n})"),
            None => v.to_string(),
        }
    } else {
        v.to_string()
    }
}

/// Everything of sysdig's default line before `evt.info`: `%evt.num %evt.outputtime %evt.cpu
/// %proc.name (%thread.tid) %evt.dir %evt.type `, with integers written by itoa: core::fmt's
/// padding machinery was a fifth of the time of printing a capture.
#[allow(clippy::too_many_arguments)]
fn write_head(
    w: &mut String,
    num: u64,
    ts: u64,
    cpu: u16,
    proc_name: &str,
    tid: i64,
    dir: &str,
    type_: &str,
) {
    fn padded(w: &mut String, v: u64, width: usize) {
        let mut b = itoa::Buffer::new();
        let s = b.format(v);
        w.extend(std::iter::repeat_n('0', width.saturating_sub(s.len())));
        w.push_str(s);
    }
    let mut b = itoa::Buffer::new();
    let secs = ts / 1_000_000_000;
    let day = secs % 86_400;
    w.push_str(b.format(num));
    w.push(' ');
    padded(w, day / 3600, 2);
    w.push(':');
    padded(w, (day / 60) % 60, 2);
    w.push(':');
    padded(w, day % 60, 2);
    w.push('.');
    padded(w, ts % 1_000_000_000, 9);
    w.push(' ');
    w.push_str(b.format(cpu));
    w.push(' ');
    w.push_str(proc_name);
    w.push_str(" (");
    w.push_str(b.format(tid));
    w.push_str(") ");
    w.push_str(dir);
    w.push(' ');
    w.push_str(type_);
    w.push(' ');
}

/// sysdig's default line for event `num` and a newline, appended to `w`: what
/// `Line::new(num, rec, state).write_text` writes, without building the [`Line`] (printing a
/// capture does this for every event).
pub fn write_line(w: &mut String, num: u64, rec: &EventRecord, state: &State) {
    let tid = rec.tid();
    let proc_name = state
        .thread(tid)
        .filter(|_| tid > 0)
        .map_or("<NA>", |t| t.comm.as_str());
    let code = rec.event_type();
    let dir = if schema::is_enter(code) { ">" } else { "<" };
    let ps = params(rec);
    let generic;
    let type_ = match type_name_in(rec, &ps, state) {
        Some(n) => n,
        None => {
            generic = format!("event{code}");
            &generic
        }
    };
    write_head(w, num, rec.ts(), rec.cpu, proc_name, tid, dir, type_);
    info_into(w, rec, state);
    w.push('\n');
}

/// One event's fields, for JSON output.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub num: u64,
    pub ts: u64,
    pub cpu: u16,
    pub proc_name: String,
    pub tid: i64,
    pub dir: &'static str,
    #[serde(rename = "type")]
    pub type_: String,
    pub info: String,
}

impl Line {
    pub fn new(num: u64, rec: &EventRecord, state: &State) -> Line {
        let tid = rec.tid();
        Line {
            num,
            ts: rec.ts(),
            cpu: rec.cpu,
            proc_name: state
                .thread(tid)
                .filter(|_| tid > 0)
                .map(|t| t.comm.clone())
                .unwrap_or_else(|| "<NA>".into()),
            tid,
            dir: if schema::is_enter(rec.event_type()) {
                ">"
            } else {
                "<"
            },
            type_: match type_name_in(rec, &params(rec), state) {
                Some(n) => n.to_string(),
                None => format!("event{}", rec.event_type()),
            },
            info: info(rec, state),
        }
    }

    /// Writes sysdig's default line and a newline straight to `w`.
    pub fn write_text(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        // Formatting into a String and writing the line once is cheaper than formatting
        // through io::Write, which goes through an adapter per piece (a line is ~12 pieces
        // and a capture has millions of lines).
        thread_local! {
            static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            self.format_into(line);
            w.write_all(line.as_bytes())
        })
    }

    fn format_into(&self, w: &mut String) {
        write_head(
            w,
            self.num,
            self.ts,
            self.cpu,
            &self.proc_name,
            self.tid,
            self.dir,
            &self.type_,
        );
        w.push_str(&self.info);
        w.push('\n');
    }

    /// sysdig's default line.
    pub fn text(&self) -> String {
        let mut v = Vec::with_capacity(128 + self.info.len());
        // Writing into a Vec cannot fail.
        let _ = self.write_text(&mut v);
        v.pop();
        String::from_utf8_lossy(&v).into_owned()
    }
}
