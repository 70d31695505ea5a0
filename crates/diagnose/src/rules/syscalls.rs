//! Causes a failed system call proves. Of all the calls that failed, the ones that count are
//! those of the dying process and its children, before it ended, that no later call on the same
//! object recovered from (ld.so and config searches fail on purpose), and that are not the
//! usual noise (locale, NSS, /proc probes). A failure whose path or address the program also
//! printed is the strongest evidence there is; otherwise the last such failure before the
//! exit is taken.

use crate::candidate::Candidates;
use crate::capture::{CaptureFacts, Failure, Proc};
use crate::case::Case;
use crate::evidence::{Evidence, Source, Tier};

/// The crash as the capture shows it: the dying process, its family, and when it ended.
pub struct Crash<'a> {
    pub facts: &'a CaptureFacts,
    pub main: Option<&'a Proc>,
    pub family: Vec<i64>,
    /// The event number of the main process's end (everything after it is not its doing).
    pub end: u64,
}

impl<'a> Crash<'a> {
    pub fn new(facts: &'a CaptureFacts) -> Crash<'a> {
        let main = facts.main_process();
        let family = match main {
            Some(p) => facts.family(p.pid),
            None => facts.procs.keys().copied().collect(),
        };
        let end = main
            .and_then(|p| p.exit.as_ref())
            .map(|e| e.num)
            .unwrap_or(u64::MAX);
        Crash {
            facts,
            main,
            family,
            end,
        }
    }

    /// Failures of the family before the end, newest first.
    pub fn failures(&self) -> impl Iterator<Item = &'a Failure> + '_ {
        self.facts
            .failures
            .iter()
            .rev()
            .filter(move |f| f.num < self.end && self.family.contains(&f.pid))
    }

    /// Where the program printed `needle` (the log first, then the capture's output).
    pub fn printed(&self, case: &Case, needle: &str) -> Option<Evidence> {
        if needle.len() < 2 {
            return None;
        }
        if let Some(log) = case.log {
            let hit = log
                .lines()
                .iter()
                .enumerate()
                .rev()
                .find(|(_, l)| mentions(l, needle));
            if let Some((i, line)) = hit {
                return Some(Evidence::new(Source::Log, log.pointer(i + 1), line.trim()));
            }
        }
        self.facts
            .output
            .iter()
            .rev()
            .find(|o| mentions(&o.text, needle))
            .map(|o| {
                let text = format!("written to {}: {}", o.fd, o.text.trim());
                Evidence::new(Source::Capture, self.facts.pointer(o.num), text)
            })
    }
}

/// Whether `line` names `needle` as a whole: a path or address not inside a longer one
/// (`/etc/app.conf` is not named by `/srv/etc/app.conf`).
pub fn mentions(line: &str, needle: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '/');
    line.match_indices(needle).any(|(i, m)| {
        let before = line[..i].chars().next_back();
        let after = line[i + m.len()..].chars().next();
        let starts = !needle.starts_with(word) || before.is_none_or(|c| !word(c));
        let ends = !needle.ends_with(|c: char| c.is_alphanumeric())
            || after.is_none_or(|c| !c.is_alphanumeric());
        starts && ends
    })
}

/// Paths whose ENOENT is routine: the loader, locales, NSS, /proc and /sys probes, bytecode
/// caches, timezone lookups.
fn noise(path: &str) -> bool {
    const PREFIXES: &[&str] = &["/proc/", "/sys/", "/dev/"];
    const PARTS: &[&str] = &[
        "locale",
        "gconv",
        "nsswitch",
        "ld.so.",
        "__pycache__",
        ".pyc",
        // CPython's start-up probes beside its executable.
        "pybuilddir.txt",
        "pyvenv.cfg",
        "zoneinfo",
        "/etc/localtime",
        "charset.alias",
        "/etc/gai.conf",
        "/etc/host.conf",
        "site-packages",
        "dist-packages",
        "terminfo",
        "/usr/share/",
        ".mo",
    ];
    // `<string>`, `<frozen importlib._bootstrap>`: an interpreter's names for code that has
    // no file, which it still tries to open for tracebacks.
    let pseudo = path.starts_with('<') && path.ends_with('>');
    pseudo || PREFIXES.iter().any(|p| path.starts_with(p)) || PARTS.iter().any(|p| path.contains(p))
}

fn is_tls_file(path: &str) -> bool {
    [".crt", ".pem", ".key", ".cert", ".p12", ".jks"]
        .iter()
        .any(|x| path.ends_with(x))
}

/// The volume mount a path lies under, if any (longest mount path first).
pub(super) fn mount_of<'c>(case: &'c Case, path: &str) -> Option<(usize, &'c str, &'c str)> {
    let mounts = case.spec?.volume_mounts.as_ref()?;
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            let mp = m.mount_path.trim_end_matches('/');
            path.starts_with(mp) && path[mp.len()..].starts_with('/')
        })
        .max_by_key(|(_, m)| m.mount_path.len())
        .map(|(i, m)| (i, m.mount_path.as_str(), m.name.as_str()))
}

const O_WRONLY: u64 = 2;
const O_CREAT: u64 = 4;

/// What a failure proves, if anything: (cause, summary).
fn classify(case: &Case, crash: &Crash, f: &Failure) -> Option<(&'static str, String)> {
    let target = f.target.as_deref().unwrap_or("");
    let call = f.call.as_str();
    let who = format!("{} (pid {})", f.comm, f.pid);
    let err = crashscope_inspect::event::errno_text(-f.errno);
    let opens = matches!(call, "open" | "openat" | "openat2" | "creat");
    let file_calls = opens
        || matches!(
            call,
            "stat"
                | "lstat"
                | "newfstatat"
                | "statx"
                | "access"
                | "faccessat"
                | "faccessat2"
                | "readlink"
                | "readlinkat"
                | "fstatat"
        );
    let writes_fs = matches!(
        call,
        "mkdir"
            | "mkdirat"
            | "unlink"
            | "unlinkat"
            | "rename"
            | "renameat"
            | "renameat2"
            | "rmdir"
            | "link"
            | "linkat"
            | "symlink"
            | "symlinkat"
            | "chmod"
            | "fchmod"
            | "fchmodat"
            | "truncate"
            | "ftruncate"
            | "utimensat"
            | "mknod"
            | "mknodat"
    );
    Some(match (call, f.errno) {
        ("execve" | "execveat", 2) if f.recovered => return None,
        ("execve" | "execveat", 2) => {
            if f.existed {
                ("exec-interpreter-missing", format!("{who} execve(\"{target}\") failed with ENOENT although the file exists: its interpreter is missing (shebang, CRLF, libc)"))
            } else {
                ("exec-not-found", format!("{who} tried to run \"{target}\", which does not exist (execve → ENOENT)"))
            }
        }
        ("execve" | "execveat", 13) => ("exec-permission-denied", format!("{who} may not execute \"{target}\" (execve → EACCES: no x bit, or a noexec mount)")),
        ("execve" | "execveat", 8) => ("exec-format-error", format!("{who} could not execute \"{target}\": exec format error (ENOEXEC: another architecture, or not a program)")),
        (_, 2) if file_calls && target.contains(".so") => {
            let code = crash.main.and_then(|p| p.exit.as_ref()).and_then(|e| e.code);
            if code != Some(127) && crash.printed(case, target.rsplit('/').next().unwrap_or(target)).is_none() {
                return None;
            }
            ("shared-library-missing", format!("the loader found {} in no library directory ({call} → ENOENT)", target.rsplit('/').next().unwrap_or(target)))
        }
        (_, 2) if opens && !noise(target) => {
            if is_tls_file(target) {
                ("tls-material-invalid", format!("{who} opened {target} → ENOENT: the certificate/key is missing"))
            } else if let Some((_, mp, vol)) = mount_of(case, target) {
                ("config-mount-mismatch", format!("{who} opened {target} → ENOENT: the file is not in volume \"{vol}\" mounted at {mp}"))
            } else {
                ("config-file-missing", format!("{who} opened {target} → ENOENT: the file does not exist"))
            }
        }
        (_, 2) if file_calls && !noise(target) && crash.printed(case, target).is_some() => ("config-file-missing", format!("{who} {call}(\"{target}\") → ENOENT: the file does not exist")),
        (_, 13 | 1) if opens && f.flags.is_some_and(|fl| fl & (O_WRONLY | O_CREAT) != 0) => ("fs-permission-denied", format!("{who} may not write {target} ({call} → {err})")),
        (_, 13) if opens && is_tls_file(target) => ("tls-material-invalid", format!("{who} may not read {target} ({call} → EACCES)")),
        (_, 13) if opens => ("config-file-unreadable", format!("{who} may not read {target} ({call} → EACCES; it runs as uid {})", crash.facts.procs.get(&f.pid).map(|p| p.uid).unwrap_or(0))),
        (_, 13 | 1) if writes_fs => ("fs-permission-denied", format!("{who} may not change {target} ({call} → {err})")),
        (_, 30) => ("read-only-rootfs", format!("{who} {call}(\"{target}\") → EROFS: the file system is read-only")),
        (_, 28) => ("disk-full", format!("{who} {call} on {target} → ENOSPC: no space left on the device")),
        (_, 24 | 23) => ("pids-or-fds-exhausted", format!("{who} {call} → {err}: out of file descriptors")),
        ("clone" | "clone3" | "fork" | "vfork", 11) => ("pids-or-fds-exhausted", format!("{who} {call} → EAGAIN: the process/thread limit is reached")),
        ("chown" | "fchown" | "lchown" | "fchownat" | "setuid" | "setgid" | "setresuid" | "setresgid" | "setreuid" | "setregid" | "setgroups" | "capset" | "setfsuid" | "setfsgid", 1) => ("privilege-drop-denied", format!("{who} {call}{} → EPERM: changing user/ownership is not permitted", if target.is_empty() { String::new() } else { format!("(\"{target}\")") })),
        ("clone3" | "unshare" | "mount" | "keyctl" | "bpf" | "personality" | "ptrace" | "io_uring_setup" | "setns" | "pivot_root" | "umount2" | "perf_event_open" | "add_key" | "request_key", 1 | 38 | 13) => ("seccomp-or-lsm-denied", format!("{who} {call} → {err}: the call is refused by the seccomp profile or an LSM")),
        ("bind", 98) => ("port-in-use", format!("{who} bind({target}) → EADDRINUSE: the port is already taken")),
        ("bind", 13) => ("privileged-port-bind", format!("{who} bind({target}) → EACCES: a port below 1024 needs root or NET_BIND_SERVICE (uid {})", crash.facts.procs.get(&f.pid).map(|p| p.uid).unwrap_or(0))),
        ("connect" | "sendto" | "sendmsg" | "sendmmsg" | "recvfrom" | "recvmsg" | "read" | "write" | "getsockopt", 111 | 110 | 113) if target.ends_with(":53") => ("dns-unavailable", format!("{who} could not reach the DNS server {target} ({call} → {err})")),
        ("connect" | "sendto" | "sendmsg" | "recvfrom" | "recvmsg" | "read" | "write" | "getsockopt", 111) => {
            let loopback = target.starts_with("127.") || target.starts_with("::1") || target.starts_with("[::1]");
            let port = target.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
            let sidecar = port.and_then(|p| case.siblings.iter().find(|(_, ports)| ports.contains(&p)).map(|(n, _)| *n));
            match (loopback, sidecar) {
                (true, Some(s)) => ("sidecar-not-ready", format!("{who} connect({target}) → ECONNREFUSED: container \"{s}\" of the pod serves that port and was not listening yet")),
                _ => ("dependency-refused", format!("{who} connect({target}) → ECONNREFUSED: nothing listens there")),
            }
        }
        ("connect" | "getsockopt", 110 | 113 | 101) => ("dependency-timeout", format!("{who} connect({target}) → {err}: the dependency cannot be reached")),
        ("mmap" | "brk" | "mremap", 12) => ("runtime-heap-exhausted", format!("{who} {call} → ENOMEM: the runtime could not get more memory")),
        _ => return None,
    })
}

/// How programs print an errno (glibc's strerror, Python's `[Errno N]`, Go's lower case).
fn errno_words(errno: i64) -> Option<&'static str> {
    Some(match errno {
        1 => "Operation not permitted",
        2 => "No such file or directory",
        8 => "Exec format error",
        11 => "Resource temporarily unavailable",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        24 => "Too many open files",
        28 => "No space left on device",
        30 => "Read-only file system",
        98 => "Address already in use",
        110 => "Connection timed out",
        111 => "Connection refused",
        113 => "No route to host",
        _ => return None,
    })
}

/// Causes whose log evidence a failing call of cause `id` agrees with: the call's cause is the
/// more specific reading of the same failure (a refused sidecar port is a refused dependency).
fn agrees_with(id: &str) -> &'static [&'static str] {
    match id {
        "sidecar-not-ready" => &["dependency-refused"],
        "config-mount-mismatch" | "tls-material-invalid" => {
            &["config-file-missing", "config-file-unreadable"]
        }
        "exec-interpreter-missing" => &["config-file-missing", "exec-not-found"],
        _ => &[],
    }
}

pub fn propose(case: &Case, crash: &Crash, out: &mut Candidates) {
    // Failures prove a crash's cause only when there was a crash: a process that exited 0,
    // or that the capture does not see ending, failed nothing that mattered.
    let failed = crash
        .main
        .and_then(|p| p.exit.as_ref())
        .is_some_and(|e| e.signal.is_some() || e.code.is_some_and(|c| c != 0));
    if !failed {
        return;
    }
    // The failures that count, newest first.
    let mut counted: Vec<(&Failure, &'static str, String)> = Vec::new();
    for f in crash.failures() {
        if f.recovered && f.call != "connect" {
            continue;
        }
        if let Some((id, summary)) = classify(case, crash, f) {
            counted.push((f, id, summary));
        }
        // A long capture's last failures are what explain its end.
        if counted.len() >= 5000 {
            break;
        }
    }
    // One the program also printed wins; else the last one before the end.
    let named = counted.iter().find_map(|(f, id, s)| {
        let t = f.target.as_deref()?;
        let needle = if f.call == "connect" || f.call == "bind" {
            t.rsplit_once(':').map(|(_, p)| p).unwrap_or(t)
        } else {
            t
        };
        let needle = if needle.len() < 4 && !(f.call == "connect" || f.call == "bind") {
            return None;
        } else {
            needle
        };
        crash
            .printed(case, needle)
            .map(|ev| (f, *id, s.clone(), ev))
    });
    // Else one whose error the program printed in so many words (`[Errno 13] Permission
    // denied`): the program died reporting what this call returned — the failure of the
    // process that printed it, the latest before the words.
    let named = named.or_else(|| {
        counted.iter().find_map(|(f, id, s)| {
            let words = errno_words(f.errno)?;
            let printed_by = crash
                .facts
                .output
                .iter()
                .find(|o| {
                    o.num > f.num
                        && o.text
                            .to_ascii_lowercase()
                            .contains(&words.to_ascii_lowercase())
                })
                .map(|o| o.pid);
            if printed_by.is_some_and(|p| p != f.pid) {
                return None;
            }
            let ev = crash
                .printed(case, words)
                .or_else(|| crash.printed(case, &words.to_ascii_lowercase()))?;
            Some((f, *id, s.clone(), ev))
        })
    });
    let call_text = |f: &Failure, suffix: &str| {
        let err = crashscope_inspect::event::errno_text(-f.errno);
        let target = f.target.as_deref().unwrap_or("");
        let what = match &f.via {
            Some(via) => format!(
                "{} {via} on its {} to {target} = -{} {err}",
                f.comm, f.call, f.errno
            ),
            None => format!("{} {}({target}) = -{} {err}", f.comm, f.call, f.errno),
        };
        Evidence::new(
            Source::Capture,
            crash.facts.pointer(f.num),
            format!("{what}{suffix}"),
        )
    };
    match named {
        Some((f, id, summary, printed)) => {
            out.add(id, Tier::Capture, call_text(f, ""), summary.clone());
            out.subject(id, f.target.clone().unwrap_or_default());
            out.add(id, Tier::Log, printed, summary);
        }
        None => {
            if let Some((f, id, summary)) = counted.first() {
                // The program's own words name the same cause: the call and the message agree.
                let logged = |x: &str| out.get(x).is_some_and(|c| c.tiers().contains(&Tier::Log));
                let tier = if logged(id) || agrees_with(id).iter().any(|x| logged(x)) {
                    Tier::Capture
                } else {
                    Tier::Inferred
                };
                let ev = call_text(f, ", the last unrecovered failure before the exit");
                out.add(id, tier, ev, summary.clone());
                out.subject(id, f.target.clone().unwrap_or_default());
            }
        }
    }
    // A configuration the program opened and read, then called invalid.
    if out.has("config-invalid") {
        for o in crash
            .facts
            .opened
            .iter()
            .rev()
            .filter(|o| o.bytes_read > 0 && crash.family.contains(&o.pid))
        {
            if let Some(printed) = crash.printed(case, &o.path) {
                let summary = format!(
                    "{} was read ({} bytes) and rejected: {}",
                    o.path, o.bytes_read, printed.text
                );
                out.add(
                    "config-invalid",
                    Tier::Capture,
                    Evidence::new(
                        Source::Capture,
                        crash.facts.pointer(o.num),
                        format!("opened {} and read {} bytes", o.path, o.bytes_read),
                    ),
                    summary,
                );
                out.add("config-invalid", Tier::Log, printed, "");
                break;
            }
        }
    }
    if out
        .get("sidecar-not-ready")
        .is_some_and(|c| c.tiers().contains(&Tier::Capture))
    {
        out.rule_out(
            "dependency-refused",
            "the refused port belongs to a container of the same pod that was not listening yet",
        );
    }
    // A failure under a volume mount rules out "the file is missing from the image".
    if out.has("config-mount-mismatch") {
        out.rule_out("config-file-missing", "the missing path lies under a volume mount: the mount, not the image, decides what is there");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_matched_whole() {
        assert!(mentions(
            "open /etc/app.conf: no such file",
            "/etc/app.conf"
        ));
        assert!(!mentions("/srv/etc/app.conf", "/etc/app.conf"));
        assert!(mentions("dial tcp 10.0.0.1:5432: refused", "5432"));
        assert!(!mentions("port 15432", "5432"));
        assert!(mentions(
            "[Errno 13] Permission denied",
            "Permission denied"
        ));
    }

    #[test]
    fn routine_lookups_are_noise() {
        assert!(noise("/usr/lib/locale/C.utf8/LC_CTYPE"));
        assert!(noise("/etc/ld.so.preload"));
        assert!(noise("/proc/self/maps"));
        assert!(noise("<string>") && noise("<frozen importlib._bootstrap>"));
        assert!(!noise("<config>.yaml"));
        assert!(!noise("/etc/app/config.yaml"));
        assert!(is_tls_file("/etc/tls/tls.key"));
    }
}
