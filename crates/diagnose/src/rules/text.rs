//! Causes a program says in its own words: the error lines of the previous instance's log,
//! and the same lines seen written in the capture. The patterns are the wording real programs
//! print (Go, glibc, Python, the JVM, Node, nginx, shells, runc, database clients); `$1`
//! in a summary is the specific the line names (a path, a host, a flag).

use regex::Regex;
use std::sync::LazyLock;

use crate::candidate::Candidates;
use crate::case::Case;
use crate::evidence::{Evidence, Source, Tier};

struct Pattern {
    id: &'static str,
    re: Regex,
    summary: &'static str,
}

const TABLE: &[(&str, &str, &str)] = &[
    // A: start and exec
    ("exec-not-found", r#"exec: "?([^"\s]+?)"?: executable file not found"#, "the command \"$1\" is not in the image's $PATH"),
    ("exec-not-found", r"^(?:/bin/|/usr/bin/)?(?:ba|da)?sh: (?:\d+: )?(?:line \d+: )?([^:\s]+): (?:command )?not found", "the shell could not find the command \"$1\""),
    ("exec-permission-denied", r"^(?:/bin/|/usr/bin/)?(?:ba|da)?sh: (?:\d+: )?(?:line \d+: )?([^:\s]+): Permission denied", "the shell could not execute \"$1\" (permission denied)"),
    ("exec-permission-denied", r#"exec(?:ve)?:? "?(/[^"\s:]+)"?: permission denied"#, "\"$1\" is not executable (permission denied)"),
    ("exec-format-error", r#"(?i)exec(?: user process caused)?:? "?([^"\s:]*)"?:? exec format error"#, "\"$1\" is not a program for this machine (exec format error)"),
    ("exec-interpreter-missing", r"bad interpreter: (.+)", "the script's interpreter does not exist: $1"),
    ("exec-interpreter-missing", r"^exec (/?\S+): no such file or directory", "exec $1 says \"no such file or directory\" though the runtime found the file: its interpreter (shebang, CRLF, libc) is missing"),
    ("shared-library-missing", r"error while loading shared libraries: ([^:]+): cannot open shared object file", "the shared library $1 is missing from the image"),
    ("bad-arguments", r"flag provided but not defined: (\S+)", "the program does not know the flag $1"),
    ("bad-arguments", r"unrecognized arguments?: (.+)", "the program rejects the arguments $1"),
    ("bad-arguments", r"(?i)(?:unknown|unrecognized|invalid) (?:option|flag|command[- ]line (?:option|argument))[:\s]+['`]?(-{1,2}[\w-]+)", "the program does not know the option $1"),
    // B: configuration
    ("config-file-missing", r"open (/[^\s:]+): no such file or directory", "$1 does not exist"),
    ("config-file-missing", r"No such file or directory: '([^']+)'", "$1 does not exist"),
    ("config-file-missing", r"FileNotFoundException: (\S+)", "$1 does not exist"),
    ("config-file-missing", r"ENOENT: no such file or directory, \w+ '([^']+)'", "$1 does not exist"),
    ("config-file-missing", r#"open\(\) "([^"]+)" failed \(2: No such file or directory\)"#, "$1 does not exist"),
    ("config-file-missing", r#"(?i)(?:config(?:uration)? file|cannot open|can't open|could not open|unable to open|failed to open)[^/]*"?(/[^\s"':]+)"?.*no such file"#, "$1 does not exist"),
    ("config-file-unreadable", r"open (/[^\s:]+): permission denied", "$1 is not readable by the program's user"),
    ("config-file-unreadable", r"PermissionError: \[Errno 13\] Permission denied: '([^']+)'", "$1 is not readable by the program's user"),
    ("config-file-unreadable", r#"open\(\) "([^"]+)" failed \(13: Permission denied\)"#, "$1 is not readable by the program's user"),
    ("config-file-unreadable", r"EACCES: permission denied, open '([^']+)'", "$1 is not readable by the program's user"),
    ("config-invalid", r"yaml: (?:line \d+: )?(.+)", "the configuration is not valid YAML: $1"),
    ("config-invalid", r"json: cannot unmarshal (.+)", "the configuration does not fit: json: cannot unmarshal $1"),
    ("config-invalid", r#"unknown directive "([^"]+)""#, "the configuration has an unknown directive \"$1\""),
    ("config-invalid", r"(?i)(?:error (?:loading|parsing|reading) config(?:uration)?|invalid configuration|failed to (?:parse|load) config(?:uration)?)[: ]*(.*)", "the configuration is invalid: $1"),
    ("config-invalid", r"Failed to bind properties under '([^']+)'", "the configuration property $1 is invalid"),
    ("config-invalid", r#"(?:unexpected end of file|unexpected "[^"]*"|directive is not allowed here|invalid number of arguments in "[^"]*" directive)(?:.* in (\S+))?"#, "the configuration has a syntax error ($1)"),
    ("env-var-missing-or-invalid", r"KeyError: '([A-Za-z_][A-Za-z0-9_]*)'", "the environment variable $1 is not set"),
    ("env-var-missing-or-invalid", r"\b([A-Z][A-Z0-9_]{2,}) (?:must be set|is not set|is required|not set|is missing|is empty)", "the environment variable $1 is not set"),
    ("env-var-missing-or-invalid", r#"(?i)(?:missing|required|undefined) (?:required )?env(?:ironment)?(?: variable)?:? ['"]?([A-Z][A-Z0-9_]+)"#, "the environment variable $1 is not set"),
    ("env-var-missing-or-invalid", r#"(?i)env(?:ironment)? variable ['"]?([A-Z][A-Z0-9_]+)['"]? (?:is )?(?:not set|missing|required|must be set|undefined)"#, "the environment variable $1 is not set"),
    ("env-var-missing-or-invalid", r"([A-Za-z_][A-Za-z0-9_]*): unbound variable", "the environment variable $1 is not set (the script uses set -u)"),
    ("env-var-missing-or-invalid", r"Could not resolve placeholder '([^']+)'", "the placeholder $1 has no value (a missing environment variable)"),
    ("tls-material-invalid", r#"cannot load certificate(?: key)? "([^"]+)""#, "the certificate or key $1 cannot be loaded"),
    ("tls-material-invalid", r"tls: private key does not match public key", "the TLS key does not match its certificate"),
    ("tls-material-invalid", r#"private key file "([^"]+)" has group or world access"#, "the key $1 is readable by others, which the program refuses"),
    // C: permissions
    ("fs-permission-denied", r#"mkdir\(\) "([^"]+)" failed \(13: Permission denied\)"#, "the program may not create $1"),
    ("fs-permission-denied", r#"could not (?:change permissions of|create) directory "([^"]+)""#, "the program may not set up $1"),
    ("fs-permission-denied", r"mkdir (/\S+): permission denied", "the program may not create $1"),
    ("fs-permission-denied", r"(?i)(?:cannot|can't|could not) (?:create|write|open)[^/]*['`]?(/[^'`:\s]+)['`]?: Permission denied", "the program may not write $1"),
    ("read-only-rootfs", r"\(30: Read-only file system\)|\[Errno 30\] Read-only file system|: read-only file system|EROFS", "the program writes to a read-only file system"),
    ("privileged-port-bind", r"bind\(\) to (\S+) failed \(13: Permission denied\)", "the program may not bind $1 (a port below 1024 as non-root)"),
    ("privileged-port-bind", r"listen tcp (\S+): bind: permission denied", "the program may not bind $1 (a port below 1024 as non-root)"),
    ("privileged-port-bind", r"listen EACCES: permission denied (\S+)", "the program may not bind $1 (a port below 1024 as non-root)"),
    ("privilege-drop-denied", r#"failed switching to "([^"]+)": operation not permitted"#, "switching to user $1 is not permitted"),
    ("privilege-drop-denied", r"chown: changing ownership of '([^']+)': Operation not permitted", "changing the owner of $1 is not permitted"),
    ("privilege-drop-denied", r"(?i)set(?:uid|gid|groups|resuid|resgid)[^:]*: operation not permitted", "changing user or groups is not permitted"),
    ("seccomp-or-lsm-denied", r"(?i)(?:can't start new thread|pthread_create failed|can't spawn a new \w+ thread|thread failed to start).*(?:not permitted|EPERM)", "creating a thread is refused (seccomp profile)"),
    // D: network
    ("port-in-use", r"bind\(\) to (\S+) failed \(98: Address already in use\)", "$1 is already in use"),
    ("port-in-use", r"listen tcp (\S+): bind: address already in use", "$1 is already in use"),
    ("port-in-use", r"EADDRINUSE: address already in use (\S+)", "$1 is already in use"),
    ("port-in-use", r"Port (\d+) was already in use", "port $1 is already in use"),
    ("port-in-use", r"\[Errno 98\] (?:Address already in use|error while attempting to bind on address (\S+))", "the address is already in use $1"),
    ("dns-nxdomain", r#"host not found in upstream "([^"]+)""#, "the upstream name \"$1\" does not resolve"),
    ("dns-nxdomain", r"lookup ([^\s:]+)(?: on \S+)?: no such host", "the name \"$1\" does not resolve"),
    ("dns-nxdomain", r#"could not translate host name "([^"]+)""#, "the name \"$1\" does not resolve"),
    ("dns-nxdomain", r"getaddrinfo ENOTFOUND (\S+)", "the name \"$1\" does not resolve"),
    ("dns-nxdomain", r"UnknownHostException: ([^\s:]+)", "the name \"$1\" does not resolve"),
    ("dns-nxdomain", r"Could not resolve host: (\S+)", "the name \"$1\" does not resolve"),
    ("dns-nxdomain", r"(Name or service not known|Name does not resolve|nodename nor servname provided|No address associated with hostname)", "a name does not resolve ($1)"),
    ("dns-unavailable", r"(Temporary failure in name resolution)", "DNS does not answer ($1)"),
    ("dns-unavailable", r"(?:getaddrinfo )?EAI_AGAIN (\S+)", "DNS does not answer for \"$1\""),
    ("dns-unavailable", r"lookup (\S+) on \S+: (?:read udp .*i/o timeout|server misbehaving)", "DNS does not answer for \"$1\""),
    ("dependency-refused", r"dial tcp (\S+): connect: connection refused", "$1 refused the connection"),
    ("dependency-refused", r"connect ECONNREFUSED (\S+)", "$1 refused the connection"),
    ("dependency-refused", r"Failed to connect to (\S+) port (\d+).*(?:Connection refused|Couldn't connect)", "$1:$2 refused the connection"),
    ("dependency-refused", r#"(?i)connection (?:to server at )?(?:to )?"?([\w.\-]+(?::\d+)?)"?.*(?:refused|failed: Connection refused)"#, "$1 refused the connection"),
    ("dependency-refused", r"(ConnectionRefusedError|java\.net\.ConnectException: Connection refused|\[Errno 111\] Connection refused)", "a dependency refused the connection ($1)"),
    ("dependency-timeout", r"dial tcp (\S+): i/o timeout", "connecting to $1 timed out"),
    ("dependency-timeout", r"(?i)(?:connect(?:ion)? timed out|connect ETIMEDOUT (\S+)|SocketTimeoutException: connect timed out)", "connecting to a dependency timed out $1"),
    ("dependency-auth-failed", r#"password authentication failed for user "([^"]+)""#, "the database rejected the password of user $1"),
    ("dependency-auth-failed", r"Access denied for user '([^']+)'", "the database rejected user $1"),
    ("dependency-auth-failed", r"(NOAUTH Authentication required|WRONGPASS[^\n]*|(?i:authentication failed)[^\n]*)", "a dependency rejected the credentials ($1)"),
    ("tls-handshake-failed", r"(x509: certificate (?:has expired|signed by unknown authority|is not valid|is valid for)[^\n]*)", "the peer's certificate is not trusted: $1"),
    ("tls-handshake-failed", r"(PKIX path building failed|CERTIFICATE_VERIFY_FAILED|certificate verify failed|CERT_HAS_EXPIRED|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)", "the peer's certificate is not trusted ($1)"),
    // E: resources
    ("runtime-heap-exhausted", r"(java\.lang\.OutOfMemoryError[^\n]*|JavaScript heap out of memory|fatal error: runtime: out of memory|^MemoryError)", "the runtime ran out of heap: $1"),
    ("disk-full", r#"(?:could not (?:write|extend|resize)[^"]*"([^"]+)")?.*No space left on device"#, "no space left on the device ($1)"),
    ("pids-or-fds-exhausted", r"(?i)(too many open files|EMFILE)", "the program ran out of file descriptors ($1)"),
    ("pids-or-fds-exhausted", r"(fork: (?:retry: )?Resource temporarily unavailable|unable to create (?:new )?native thread|can't start new thread|pthread_create failed: Resource temporarily unavailable)", "the program may not start more processes or threads ($1)"),
    // G: application
    ("go-panic", r"^panic: (.+)", "the Go program panicked: $1"),
    ("go-panic", r"^fatal error: (all goroutines are asleep - deadlock!|concurrent map (?:writes|read and map write))", "the Go runtime stopped the program: $1"),
    ("unhandled-exception", r"^(Traceback \(most recent call last\))", "an unhandled Python exception ended the program"),
    ("unhandled-exception", r#"^Exception in thread "([^"]+)""#, "an unhandled Java exception ended thread $1"),
    ("unhandled-exception", r"thread '([^']+)' panicked at (.+)", "the Rust program panicked in thread $1 at $2"),
    ("unhandled-exception", r"(UnhandledPromiseRejection|^\s*throw err;|^Uncaught \w+)", "an unhandled JavaScript error ended the program ($1)"),
    ("native-crash", r"(Segmentation fault|Fatal Python error: Segmentation fault|Illegal instruction|Bus error|Floating point exception)", "the program crashed: $1"),
    ("abort", r"(terminate called after throwing[^\n]*|double free or corruption[^\n]*|malloc\(\): [^\n]*|Assertion [^\n]* failed|^Aborted|A fatal error has been detected by the Java Runtime Environment)", "the program aborted: $1"),
    ("startup-migration-failed", r"(Migrations have failed validation|Detected failed migration[^\n]*|Waiting for changelog lock|PendingMigrationError|Can't locate revision identified by[^\n]*|relation \S+ already exists)", "a database migration failed at start-up: $1"),
    ("state-or-datadir-invalid", r#"(database files are incompatible with server|directory "[^"]+" exists but is not empty|lock file "[^"]+" already exists|could not locate a valid checkpoint record)"#, "the data directory does not fit the program: $1"),
    ("peer-or-quorum-wait-exhausted", r"(InconsistentClusterIdException[^\n]*|member \S+ not found in member list|(?i:lost quorum|no quorum)[^\n]*)", "the store could not join its peers: $1"),
];

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    TABLE
        .iter()
        .filter_map(|(id, re, summary)| {
            // The table is ours; a pattern that does not compile is skipped, and the test
            // below fails on it.
            Regex::new(&format!("(?m){re}"))
                .ok()
                .map(|re| Pattern { id, re, summary })
        })
        .collect()
});

/// Matches one line against every pattern: (cause, summary, subject) for each that fits; the
/// subject is what the line names (its first group).
pub(super) fn classify(line: &str) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for p in PATTERNS.iter() {
        if let Some(caps) = p.re.captures(line) {
            let mut s = String::new();
            caps.expand(p.summary, &mut s);
            let subject = caps
                .get(1)
                .map(|m| m.as_str().to_string())
                .unwrap_or_default();
            out.push((p.id, s.replace(" ()", "").trim().to_string(), subject));
        }
    }
    out
}

/// Adds what `lines` (newest last, each with the evidence citing it) say; per cause the
/// newest line counts.
fn read_lines<'a>(
    out: &mut Candidates,
    lines: impl DoubleEndedIterator<Item = (Evidence, &'a str)>,
) {
    let mut seen = std::collections::HashSet::new();
    for (ev, line) in lines.rev().take(400) {
        for (id, summary, subject) in classify(line) {
            if seen.insert(id) {
                out.add(id, Tier::Log, ev.clone(), summary);
                out.subject(id, subject);
            }
        }
    }
}

pub fn propose(case: &Case, out: &mut Candidates) {
    if let Some(log) = case.log {
        read_lines(
            out,
            log.lines().iter().enumerate().map(|(i, l)| {
                (
                    Evidence::new(Source::Log, log.pointer(i + 1), l.trim()),
                    l.as_str(),
                )
            }),
        );
    }
    // The termination message: what the program wrote to /dev/termination-log, or the tail
    // of its log (terminationMessagePolicy: FallbackToLogsOnError).
    if let Some(e) = &case.ended {
        if let Some(msg) = &e.message {
            read_lines(
                out,
                msg.lines()
                    .collect::<Vec<_>>()
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let at = format!("{}.message line {}", e.pointer, i + 1);
                        (Evidence::new(Source::Status, at, l.trim()), l)
                    }),
            );
        }
    }
    // The same words seen written in the capture (stderr, log files): proof that the dying
    // program printed them, even when the log was lost.
    if let Some(facts) = case.capture {
        read_lines(
            out,
            facts.output.iter().map(|o| {
                let who = facts
                    .procs
                    .get(&o.pid)
                    .map(|p| p.comm.as_str())
                    .unwrap_or("?");
                let text = format!("{who} wrote to {}: {}", o.fd, o.text.trim());
                (
                    Evidence::new(Source::Capture, facts.pointer(o.num), text),
                    o.text.as_str(),
                )
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(PATTERNS.len(), TABLE.len());
    }

    fn top(line: &str) -> Vec<&'static str> {
        classify(line).into_iter().map(|x| x.0).collect()
    }

    #[test]
    fn real_wordings_are_recognised() {
        let cases: &[(&str, &str)] = &[
            ("2025/11/28 17:00:00 [emerg] 1#1: host not found in upstream \"flask\" in /etc/nginx/conf.d/default.conf:3", "dns-nxdomain"),
            ("dial tcp 10.96.12.3:5432: connect: connection refused", "dependency-refused"),
            ("./app: error while loading shared libraries: libssl.so.3: cannot open shared object file: No such file or directory", "shared-library-missing"),
            ("flag provided but not defined: -foo", "bad-arguments"),
            ("open /etc/app/config.yaml: no such file or directory", "config-file-missing"),
            ("FileNotFoundError: [Errno 2] No such file or directory: '/config/settings.yaml'", "config-file-missing"),
            ("PermissionError: [Errno 13] Permission denied: '/etc/app/tls.key'", "config-file-unreadable"),
            ("nginx: [emerg] bind() to 0.0.0.0:80 failed (13: Permission denied)", "privileged-port-bind"),
            ("nginx: [emerg] bind() to 0.0.0.0:8080 failed (98: Address already in use)", "port-in-use"),
            ("KeyError: 'DATABASE_URL'", "env-var-missing-or-invalid"),
            ("panic: runtime error: invalid memory address or nil pointer dereference", "go-panic"),
            ("FATAL:  password authentication failed for user \"app\"", "dependency-auth-failed"),
            ("x509: certificate signed by unknown authority", "tls-handshake-failed"),
            ("sh: 1: wge: not found", "exec-not-found"),
            ("exec /usr/local/bin/app: exec format error", "exec-format-error"),
            ("PANIC:  could not write to file \"pg_wal/xlogtemp.1\": No space left on device", "disk-full"),
            ("java.lang.OutOfMemoryError: Java heap space", "runtime-heap-exhausted"),
            ("socket.gaierror: [Errno -3] Temporary failure in name resolution", "dns-unavailable"),
        ];
        for (line, id) in cases {
            assert!(
                top(line).contains(id),
                "{line:?} → {:?}, want {id}",
                top(line)
            );
        }
        assert!(top("GET /healthz 200").is_empty());
        assert!(!top("host not found in upstream \"flask\"").contains(&"config-invalid"));
    }
}
