//! The README's command blocks, run as a reader would run them (needs root and nginx; on CI
//! their absence fails the test, elsewhere it is skipped with the reason): the quick start
//! (`run` the nginx story, `get pods`, `logs … --previous`, `apply` the Service), every
//! `inspect` command of the capture walk-through on the capture of nginx's crash, and the
//! capture block (`capture -w`, `sysdig -r`, `inspect … procs`). Commands are taken from the
//! README itself, so a documented command that stops working fails here. The serve block
//! (an HTTP server and curl) is walked by `serve.rs`; the cluster blocks need a cluster.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The sh blocks of the README: (line of the block, its lines).
fn sh_blocks() -> Vec<(usize, Vec<String>)> {
    let readme = include_str!("../../../README.md");
    let mut out = Vec::new();
    let mut cur: Option<(usize, Vec<String>)> = None;
    for (i, line) in readme.lines().enumerate() {
        if line.starts_with("```") {
            match cur.take() {
                Some(b) => out.push(b),
                None if line == "```sh" => cur = Some((i + 1, Vec::new())),
                None => {}
            }
            continue;
        }
        if let Some((_, lines)) = cur.as_mut() {
            lines.push(line.to_string());
        }
    }
    out
}

/// The block whose first command starts with `start`.
fn block(start: &str) -> (usize, Vec<String>) {
    sh_blocks()
        .into_iter()
        .find(|(_, lines)| lines.first().is_some_and(|l| l.starts_with(start)))
        .unwrap_or_else(|| panic!("README has no sh block starting with {start:?}"))
}

struct Reader {
    /// Where the reader runs the commands (examples/ linked in).
    cwd: PathBuf,
    data: PathBuf,
    bin: PathBuf,
}

impl Reader {
    fn sh(&self, line: &str) -> std::process::Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(line.trim_start_matches("sudo "))
            .current_dir(&self.cwd)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("CRASHSCOPE_DATA_DIR", &self.data)
            .env("TZ", "UTC");
        c
    }

    /// Runs one README line; its stdout, after checking it succeeded.
    fn run(&self, at: usize, line: &str) -> String {
        self.run_expecting(at, line, 0)
    }

    /// Runs one README line that should exit with `code`; its stdout.
    fn run_expecting(&self, at: usize, line: &str, code: i32) -> String {
        let out = self.sh(line).output().unwrap();
        let stdout = common::text(&out.stdout);
        assert!(
            out.status.code() == Some(code),
            "README.md:{at}: {line}\nstdout:\n{stdout}\nstderr:\n{}",
            common::text(&out.stderr)
        );
        stdout
    }

    fn until(&self, what: &str, line: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let out = self.sh(line).output().unwrap();
            let s = common::text(&out.stdout);
            if out.status.success() && ok(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "never saw {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn ready() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tools = ["/usr/sbin/nginx", "/usr/bin/sysdig"]
        .iter()
        .all(|p| Path::new(p).exists());
    if root && tools {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the README walk needs root, nginx and sysdig, and CI must provide them"
    );
    eprintln!("skipping the README walk: needs root, nginx and sysdig");
    false
}

/// A command line of a block without its comment, for matching.
fn command(line: &str) -> &str {
    line.split("  #").next().unwrap_or(line).trim()
}

#[test]
fn the_readme_commands_do_what_it_says() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("work");
    std::fs::create_dir_all(&cwd).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::os::unix::fs::symlink(repo.join("examples"), cwd.join("examples")).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_crashscope"))
        .parent()
        .unwrap()
        .to_path_buf();
    let r = Reader {
        cwd,
        data: dir.path().join("data"),
        bin,
    };

    // The quick start: terminal 1 runs the story, terminal 2 looks.
    let (at, lines) = block("crashscope run ");
    // exec: Ctrl-C (SIGINT at the end) must reach the runtime, not only the shell.
    let run_line = format!("exec {}", command(&lines[0]));
    let run_line = run_line.as_str();
    let _runtime = common::Guard(
        r.sh(run_line)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        "crashscope run",
    );
    let look = command(&lines[1]);
    let (get, logs) = look.split_once(';').expect("get pods; logs --previous");
    let pods = r.until("nginx crash-looping", get, |s| {
        s.lines()
            .any(|l| l.starts_with("nginx-") && l.contains("CrashLoopBackOff"))
    });
    let pod = pods
        .lines()
        .find(|l| l.starts_with("nginx-"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let logs = logs.trim().replace("nginx-…", &pod);
    let previous = r.run(at + 1, &logs);
    assert!(
        previous.contains("host not found in upstream \"flask\""),
        "{previous}"
    );
    r.run(at + 2, command(&lines[2]));
    r.until("nginx running after the Service appeared", get, |s| {
        s.lines()
            .any(|l| l.starts_with("nginx-") && l.contains("1/1") && l.contains("Running"))
    });

    // The capture walk-through, on the capture the flight recorder wrote at nginx's crash.
    let captures = r.data.join("captures");
    let crash = std::fs::read_dir(&captures)
        .unwrap_or_else(|e| panic!("{}: {e}", captures.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().contains("nginx") && n.to_string_lossy().ends_with(".scap")
            })
        })
        .expect("a capture of nginx's crash");
    std::fs::copy(&crash, r.cwd.join("crash.scap")).unwrap();
    let (at, lines) = block("crashscope inspect crash.scap");
    let mut seen = std::collections::BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let cmd = command(line);
        if cmd.is_empty() || cmd.starts_with('#') {
            continue;
        }
        seen.insert(cmd.to_string(), r.run(at + 1 + i, cmd));
    }
    let out = |view: &str| {
        seen.iter()
            .find(|(c, _)| c.split_whitespace().nth(3) == Some(view))
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| panic!("README lost its `inspect crash.scap {view}` line"))
    };
    assert!(
        out("logs").contains("host not found in upstream \"flask\""),
        "{}",
        out("logs")
    );
    assert!(out("dns").contains("flask"), "{}", out("dns"));
    assert!(out("containers").contains("nginx"), "{}", out("containers"));
    assert!(out("death").contains("nginx"), "{}", out("death"));

    // The capture block: record a command, read it with sysdig and with crashscope.
    let (at, lines) = block("sudo crashscope capture");
    for (i, line) in lines.iter().enumerate() {
        let cmd = command(line);
        // `capture -- CMD` exits with the command's code, as the README says.
        let code = if cmd.contains("crashscope capture") {
            3
        } else {
            0
        };
        let stdout = r.run_expecting(at + 1 + i, cmd, code);
        if cmd.starts_with("sysdig") {
            assert!(stdout.contains("procexit"), "{stdout}");
        }
        if cmd.contains("inspect crash.scap procs") {
            assert!(stdout.contains("cat"), "{stdout}");
            assert!(stdout.contains('3'), "exit code 3 missing: {stdout}");
        }
    }
}
