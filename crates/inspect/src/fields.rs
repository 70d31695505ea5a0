//! The fields filters and views read from an event, named and valued as sysdig names and
//! values them (`proc.name`, `fd.name`, `evt.res`, `k8s.pod.name`, ...).

use std::borrow::Cow;

use crashscope_scap::format::{errno_name, param_text};
use crashscope_scap::schema::Mark;

use crate::event::{errno_text, tuple_parts, Ev, IoDir};

/// The kind of value a field holds, which decides how it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Bool,
    /// Typed by the event (`evt.rawarg.NAME`): compares as a number when the value is one.
    Any,
}

/// A field's value for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Text(Cow<'a, str>),
    Number(i64),
    Bool(bool),
}

impl Val<'_> {
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Val::Text(s) => Cow::Borrowed(s),
            Val::Number(n) => Cow::Owned(n.to_string()),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        }
    }
}

/// A field reference, resolved once when a filter is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Simple(&'static FieldInfo),
    /// `evt.arg.NAME` / `evt.arg[N]`: a parameter as `evt.info` shows it.
    Arg(ArgRef),
    /// `evt.rawarg.NAME`: a parameter's number.
    RawArg(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgRef {
    Name(String),
    Index(usize),
}

/// A field sysdig knows and crashscope supports.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

macro_rules! fields {
    ($($name:literal $kind:ident $help:literal,)*) => {
        /// Every supported field, for `--list-fields`.
        pub const FIELDS: &[FieldInfo] = &[$(FieldInfo { name: $name, kind: Kind::$kind, help: $help },)*];
    };
}

fields! {
    "evt.num" Number "event number, as sysdig numbers events",
    "evt.time" Text "time of day of the event (UTC, nanoseconds)",
    "evt.rawtime" Number "event time in nanoseconds since the epoch",
    "evt.reltime" Number "nanoseconds since the first event of the capture",
    "evt.type" Text "event type: the syscall or tracepoint name, e.g. openat",
    "evt.dir" Text "'>' for enter events, '<' for exit events",
    "evt.cpu" Number "CPU the event happened on",
    "evt.res" Text "result: SUCCESS or the errno name (ENOENT, ...)",
    "evt.rawres" Number "result as a number (negative errno on failure)",
    "evt.failed" Bool "true for events that returned an error",
    "evt.is_io" Bool "true for events that read or write data",
    "evt.is_io_read" Bool "true for events that read data",
    "evt.is_io_write" Bool "true for events that write data",
    "evt.buflen" Number "bytes read or written by an I/O event",
    "evt.info" Text "all parameters, as sysdig prints them",
    "evt.args" Text "same as evt.info",
    "evt.latency" Number "nanoseconds between an exit event and its enter event",
    "evt.category" Text "event category: file, net, process, signal, ...",
    "evt.arg" Text "a parameter as printed: evt.arg.NAME or evt.arg[N]",
    "evt.rawarg" Any "a parameter's raw value: evt.rawarg.NAME",
    "proc.name" Text "process name (comm)",
    "proc.pid" Number "process id",
    "proc.ppid" Number "parent process id",
    "proc.pname" Text "parent process name",
    "proc.exe" Text "first command-line argument (argv[0]) or executable path",
    "proc.exepath" Text "executable path",
    "proc.args" Text "command-line arguments, space-separated",
    "proc.cmdline" Text "process name and arguments",
    "proc.cwd" Text "current working directory",
    "proc.vpid" Number "process id inside its PID namespace",
    "thread.tid" Number "thread id",
    "thread.ismain" Bool "true for a process's main thread",
    "fd.num" Number "fd number",
    "fd.name" Text "fd name: path, socket tuple, ...",
    "fd.type" Text "file, directory, ipv4, ipv6, unix, pipe, event, signalfd, eventpoll, inotify, timerfd, netlink, bpf",
    "fd.typechar" Text "fd type letter as in evt.info (f, 4, 6, u, p, ...)",
    "fd.directory" Text "directory of a file fd",
    "fd.filename" Text "file name of a file fd, without its directory",
    "fd.cip" Text "client IP of a socket",
    "fd.sip" Text "server IP of a socket",
    "fd.cport" Number "client port of a socket",
    "fd.sport" Number "server port of a socket",
    "fd.port" Number "either port of a socket (matches client or server)",
    "fd.l4proto" Text "transport of a socket: tcp, udp, icmp, raw",
    "fd.sockfamily" Text "ip or unix",
    "user.uid" Number "user id",
    "group.gid" Number "group id",
    "container.id" Text "container id (12 hex digits) or host",
    "container.name" Text "container name from the capture's metadata, or host",
    "container.image" Text "container image from the capture's metadata",
    "k8s.pod.name" Text "Kubernetes pod name (from the container's kubelet labels)",
    "k8s.ns.name" Text "Kubernetes namespace",
    "k8s.pod.uid" Text "Kubernetes pod UID",
    "k8s.container.name" Text "container name in the pod spec",
}

/// The field named `name`, or why there is none.
pub fn lookup(name: &str) -> Result<Field, String> {
    if let Some(rest) = name.strip_prefix("evt.arg.") {
        return Ok(Field::Arg(ArgRef::Name(rest.to_string())));
    }
    if let Some(rest) = name.strip_prefix("evt.rawarg.") {
        return Ok(Field::RawArg(rest.to_string()));
    }
    if let Some(idx) = name
        .strip_prefix("evt.arg[")
        .and_then(|r| r.strip_suffix(']'))
    {
        let i = idx
            .parse()
            .map_err(|_| format!("evt.arg[{idx}]: the index must be a number"))?;
        return Ok(Field::Arg(ArgRef::Index(i)));
    }
    match FIELDS.iter().find(|f| f.name == name) {
        Some(f) if f.name == "evt.arg" || f.name == "evt.rawarg" => Err(format!(
            "{name} needs a parameter: {name}.NAME{}",
            if f.name == "evt.arg" {
                " or evt.arg[N]"
            } else {
                ""
            }
        )),
        Some(f) => Ok(Field::Simple(f)),
        None => {
            let close: Vec<&str> = FIELDS
                .iter()
                .map(|f| f.name)
                .filter(|f| f.split('.').next() == name.split('.').next())
                .collect();
            Err(if close.is_empty() {
                format!("unknown field {name:?} (crashscope inspect --list-fields lists them)")
            } else {
                format!(
                    "unknown field {name:?}; fields of this class: {}",
                    close.join(", ")
                )
            })
        }
    }
}

impl Field {
    pub fn kind(&self) -> Kind {
        match self {
            Field::Simple(f) => f.kind,
            Field::Arg(_) => Kind::Text,
            Field::RawArg(_) => Kind::Any,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Field::Simple(f) => f.name.to_string(),
            Field::Arg(ArgRef::Name(n)) => format!("evt.arg.{n}"),
            Field::Arg(ArgRef::Index(i)) => format!("evt.arg[{i}]"),
            Field::RawArg(n) => format!("evt.rawarg.{n}"),
        }
    }

    /// The field's value for `ev`; `None` when the event has no such thing (then every
    /// comparison on it is false, as in sysdig).
    pub fn value<'e>(&self, ev: &'e Ev, first_ts: u64) -> Option<Val<'e>> {
        let name = match self {
            Field::Simple(f) => f.name,
            Field::Arg(a) => return arg_value(ev, a).map(|s| Val::Text(Cow::Owned(s))),
            Field::RawArg(n) => return raw_arg(ev, n),
        };
        let text = |s: &'e str| Some(Val::Text(Cow::Borrowed(s)));
        let owned = |s: String| Some(Val::Text(Cow::Owned(s)));
        let num = |n: i64| Some(Val::Number(n));
        let (class, field) = name.split_once('.').unwrap_or((name, ""));
        match class {
            "evt" => evt_value(ev, field, first_ts),
            "thread" if field == "tid" => num(ev.tid()),
            "proc" | "thread" | "user" | "group" => {
                let Some(t) = ev.thread() else {
                    // A thread the capture never described: sysdig's placeholder, except for
                    // events whose parsing skips the thread lookup (old switch events).
                    return (ev.tid() > 0 && !skips_thread_lookup(ev))
                        .then(|| match name {
                            "proc.name" | "proc.exe" | "proc.cmdline" => text("<NA>"),
                            "proc.pid" => num(ev.tid()),
                            "proc.ppid" => num(-1),
                            "proc.args" | "proc.cwd" | "proc.exepath" => text(""),
                            "thread.ismain" => Some(Val::Bool(true)),
                            "user.uid" | "group.gid" => num(u32::MAX as i64),
                            _ => None,
                        })
                        .flatten();
                };
                match name {
                    "proc.name" => text(&t.comm),
                    "proc.pid" => num(t.pid),
                    "proc.ppid" => ev.process().map(|p| Val::Number(p.ptid)),
                    "proc.pname" => ev
                        .state
                        .thread(t.ptid)
                        .map(|pp| Val::Text(Cow::Borrowed(&pp.comm))),
                    "proc.exe" | "proc.exepath" => text(&t.exe),
                    "proc.args" => owned(t.args.join(" ")),
                    "proc.cmdline" => {
                        let mut s = t.comm.clone();
                        for a in &t.args {
                            s.push(' ');
                            s.push_str(a);
                        }
                        owned(s)
                    }
                    "proc.cwd" => text(&t.cwd),
                    "proc.vpid" => num(t.vpid),
                    "thread.ismain" => Some(Val::Bool(t.tid == t.pid)),
                    "user.uid" => num(i64::from(t.uid)),
                    "group.gid" => num(i64::from(t.gid)),
                    _ => None,
                }
            }
            "fd" => fd_value(ev, field),
            "container" if ev.thread().is_none() => {
                (ev.tid() > 0 && !skips_thread_lookup(ev) && (field == "id" || field == "name"))
                    .then_some(Val::Text(Cow::Borrowed("host")))
            }
            "container" => match field {
                "id" => owned(ev.container_id().to_string()),
                "name" => match ev.container() {
                    Some(c) => text(&c.name),
                    None if ev.container_id() == "host" => text("host"),
                    None => None,
                },
                "image" => ev.container().map(|c| Val::Text(Cow::Borrowed(&c.image))),
                _ => None,
            },
            "k8s" => {
                let label = match field {
                    "pod.name" => "io.kubernetes.pod.name",
                    "ns.name" => "io.kubernetes.pod.namespace",
                    "pod.uid" => "io.kubernetes.pod.uid",
                    _ => "io.kubernetes.container.name",
                };
                ev.container()?
                    .label(label)
                    .map(|v| Val::Text(Cow::Borrowed(v)))
            }
            _ => None,
        }
    }
}

/// Events libsinsp filters without looking their thread up (0.29's switch events).
fn skips_thread_lookup(ev: &Ev) -> bool {
    ev.info.is(Mark::SkipParseReset) || ev.info.name == "switch"
}

fn evt_value<'e>(ev: &'e Ev, field: &str, first_ts: u64) -> Option<Val<'e>> {
    let b = |v: bool| Some(Val::Bool(v));
    let num = |n: i64| Some(Val::Number(n));
    match field {
        "num" => num(ev.num as i64),
        "time" => Some(Val::Text(Cow::Owned(crate::report::time_of_day(
            ev.ts(),
            9,
        )))),
        "rawtime" => num(ev.ts() as i64),
        "reltime" => num(ev.ts().saturating_sub(first_ts) as i64),
        "type" => Some(Val::Text(Cow::Borrowed(ev.name()))),
        "dir" => Some(Val::Text(Cow::Borrowed(if ev.is_enter() {
            ">"
        } else {
            "<"
        }))),
        "cpu" => num(i64::from(ev.rec.cpu)),
        "res" => ev.res().map(|r| Val::Text(Cow::Owned(errno_text(r)))),
        "rawres" => ev.res().map(Val::Number),
        "failed" => b(ev.failed()),
        "is_io" => b(is_io_type(ev, None)),
        "is_io_read" => b(is_io_type(ev, Some(IoDir::Read))),
        "is_io_write" => b(is_io_type(ev, Some(IoDir::Write))),
        "buflen" => {
            let io = ["EC_IO_READ", "EC_IO_WRITE", "EC_IO_OTHER"]
                .iter()
                .any(|c| ev.info.flags.contains(c));
            (io && ev.fd_num().is_some())
                .then(|| ev.res().filter(|r| *r >= 0).map(Val::Number))
                .flatten()
        }
        "info" | "args" => Some(Val::Text(Cow::Owned(crashscope_scap::format::info(
            ev.rec, ev.state,
        )))),
        "latency" => {
            if ev.is_enter() {
                return num(0);
            }
            let enter = ev.state.paired_enter(ev.rec)?;
            num(ev.ts().saturating_sub(enter.ts()) as i64)
        }
        "category" => Some(Val::Text(Cow::Borrowed(category(ev)))),
        _ => None,
    }
}

fn is_io_type(ev: &Ev, dir: Option<IoDir>) -> bool {
    match dir {
        None => ev.info.is(Mark::IoRead) || ev.info.is(Mark::IoWrite),
        Some(IoDir::Read) => ev.info.is(Mark::IoRead),
        Some(IoDir::Write) => ev.info.is(Mark::IoWrite),
    }
}

/// sysdig's event category name.
pub fn category(ev: &Ev) -> &'static str {
    ev.info.category
}

fn arg_value(ev: &Ev, a: &ArgRef) -> Option<String> {
    let i = match a {
        ArgRef::Index(i) => *i,
        ArgRef::Name(n) => ev.info.params.iter().position(|p| &p.name == n)?,
    };
    let t = param_text(ev.rec, i, ev.state)?;
    // A value with a resolved form (`3(<f>/etc/hosts)`, `-2(ENOENT)`, `4097(O_RDONLY|...)`)
    // is compared by that form alone, as sysdig does.
    if let Some((raw, rest)) = t.split_once('(') {
        if raw.parse::<i64>().is_ok() && rest.ends_with(')') {
            return Some(rest[..rest.len() - 1].to_string());
        }
    }
    Some(t)
}

fn raw_arg<'e>(ev: &'e Ev, name: &str) -> Option<Val<'e>> {
    use crashscope_scap::schema::ParamType::*;
    let i = ev.info.params.iter().position(|p| p.name == name)?;
    let p = ev.params().get(i).copied()?;
    match ev.info.params[i].ty {
        CharBuf | FsPath | FsRelPath | ByteBuf => {
            Some(Val::Text(Cow::Owned(crashscope_scap::event::as_str(p))))
        }
        _ => crashscope_scap::event::as_i64(p).map(Val::Number),
    }
}

fn fd_value<'e>(ev: &'e Ev, field: &str) -> Option<Val<'e>> {
    let text = |s: &'e str| Some(Val::Text(Cow::Borrowed(s)));
    let n = ev.fd_num()?;
    if field == "num" {
        return Some(Val::Number(n));
    }
    let Some(fd) = ev.fd() else {
        return missing_fd_value(ev, field);
    };
    let is_ip = fd.kind == '4' || fd.kind == '6';
    let (client, server) = endpoints(fd).unzip();
    let server = server.flatten();
    match field {
        "name" => text(&fd.name),
        "type" => text(match fd.kind {
            'f' => "file",
            'd' => "directory",
            '4' => "ipv4",
            '6' => "ipv6",
            'u' => "unix",
            'p' => "pipe",
            'e' => "event",
            's' => "signalfd",
            'l' => "eventpoll",
            'i' => "inotify",
            't' => "timerfd",
            'n' => "netlink",
            'b' => "bpf",
            _ => "other",
        }),
        "typechar" => Some(Val::Text(Cow::Owned(fd.kind.to_string()))),
        "directory" if fd.kind == 'd' => text(&fd.name),
        "directory" | "filename" if fd.kind == 'f' => {
            let (dir, file) = fd.name.rsplit_once('/')?;
            text(if field == "directory" {
                if dir.is_empty() {
                    "/"
                } else {
                    dir
                }
            } else {
                file
            })
        }
        "cip" => client.flatten().map(|c| Val::Text(Cow::Borrowed(c.0))),
        "cport" => client.flatten().map(|c| Val::Number(i64::from(c.1))),
        "sip" => server.map(|s| Val::Text(Cow::Borrowed(s.0))),
        "sport" | "port" => server.map(|s| Val::Number(i64::from(s.1))),
        // Until a socket is connected or bound to a port its transport is unknown to sysdig.
        "l4proto" => text(
            match (
                is_ip
                    && !fd.name.is_empty()
                    && (fd.name.contains("->") || !fd.name.ends_with(":0")),
                fd.l4,
            ) {
                (true, Some('t')) => "tcp",
                (true, Some('u')) => "udp",
                (true, Some('i')) => "icmp",
                (true, Some('r')) => "raw",
                _ => "<NA>",
            },
        ),
        "sockfamily" => match fd.kind {
            '4' | '6' => text("ip"),
            'u' => text("unix"),
            _ => None,
        },
        _ => None,
    }
}

/// (client, server) ends of an IP socket: a connected socket's tuple, or a bound or
/// listening socket's own address as its server end.
type End<'f> = (&'f str, u16);
pub fn endpoints(fd: &crashscope_scap::state::Fd) -> Option<(Option<End<'_>>, Option<End<'_>>)> {
    if fd.kind != '4' && fd.kind != '6' {
        return None;
    }
    if let Some((cip, cport, sip, sport)) = tuple_parts(&fd.name) {
        return Some((Some((cip, cport)), Some((sip, sport))));
    }
    let (ip, port) = fd.name.rsplit_once(':')?;
    Some((None, Some((ip, port.parse().ok()?))))
}

/// fd fields of an event whose fd is not in the table: before it exists (-1), after a
/// failed open (named by the path argument), or never seen (an empty name).
fn missing_fd_value<'e>(ev: &'e Ev, field: &str) -> Option<Val<'e>> {
    let owned = |s: String| Some(Val::Text(Cow::Owned(s)));
    let guess = || {
        let c = match ev.info.name.as_str() {
            "open" | "openat" | "openat2" | "creat" | "open_by_handle_at" => 'f',
            "socket" | "accept" | "accept4" => '4',
            "pipe" | "pipe2" => 'p',
            "eventfd" | "eventfd2" => 'e',
            "signalfd" | "signalfd4" => 's',
            "timerfd_create" => 't',
            "inotify_init" | "inotify_init1" => 'i',
            _ => 'o',
        };
        owned(c.to_string())
    };
    if ev.creates_fd() {
        if field == "typechar" {
            return guess();
        }
        let path = ev.failed().then(|| ev.path()).flatten()?;
        return match field {
            "name" => owned(path),
            "directory" => owned(match path.rsplit_once('/') {
                Some(("", _)) => "/".into(),
                Some((d, _)) => d.to_string(),
                None => "/".into(),
            }),
            _ => None,
        };
    }
    if ev.is_enter() {
        return (field == "typechar").then(guess).flatten();
    }
    match field {
        "name" => owned(String::new()),
        "directory" => owned("/".into()),
        "typechar" => owned("o".into()),
        _ => None,
    }
}

/// Whether `name` is an errno name sysdig prints for `evt.res`.
pub fn is_errno_name(name: &str) -> bool {
    (1..200).any(|e| errno_name(e) == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_resolves_and_explains() {
        assert!(matches!(lookup("proc.name"), Ok(Field::Simple(f)) if f.kind == Kind::Text));
        assert_eq!(
            lookup("evt.arg.fd"),
            Ok(Field::Arg(ArgRef::Name("fd".into())))
        );
        assert_eq!(lookup("evt.arg[2]"), Ok(Field::Arg(ArgRef::Index(2))));
        let e = lookup("proc.nam").unwrap_err();
        assert!(e.contains("proc.name"), "{e}");
        assert!(lookup("evt.arg").unwrap_err().contains("evt.arg.NAME"));
        assert!(lookup("nosuch").unwrap_err().contains("--list-fields"));
    }
}
