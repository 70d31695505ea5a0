//! crashscope's fuzzer: mutated inputs for every reader of outside data — the capture
//! reader, the filter language, the manifest loader, the HTTP API — with the findings that
//! matter counted: panics, inputs that take too long, damage read as a complete capture,
//! server errors and unanswered requests. cargo-fuzz needs a nightly toolchain; this runs on
//! stable, from `cargo test` (a bounded run) and from `make fuzz` (as long as you like).

pub mod api;
pub mod filter;
pub mod manifest;
pub mod mutate;
pub mod scap;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a run found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub target: &'static str,
    pub inputs: u64,
    /// Inputs that made the code under test panic.
    pub panics: u64,
    /// Inputs that took longer than the target's bound.
    pub slow: u64,
    /// Captures with damaged framing that read as complete (scap only).
    pub silent_damage: u64,
    /// Captures whose damage was reported (scap only): the reader noticed.
    pub reported_damage: u64,
    /// 5xx answers and dropped connections (api only).
    pub server_errors: u64,
    /// Error answers that were not JSON (api only).
    pub non_json_errors: u64,
    /// Inputs refused with an error naming the problem (not findings: the expected outcome
    /// for most mutants).
    pub refused: u64,
    /// Where the inputs behind findings were saved.
    pub saved: Vec<PathBuf>,
}

impl Report {
    pub fn new(target: &'static str) -> Report {
        Report {
            target,
            ..Report::default()
        }
    }

    /// Findings: anything that is a defect.
    pub fn findings(&self) -> u64 {
        self.panics + self.slow + self.silent_damage + self.server_errors + self.non_json_errors
    }
}

/// How a target is run.
#[derive(Debug, Clone)]
pub struct Run {
    pub iterations: u64,
    pub seed: u64,
    /// Stop early after this long.
    pub budget: Option<Duration>,
    /// Where inputs behind findings are written.
    pub out: PathBuf,
}

impl Run {
    pub fn over(&self, started: Instant, done: u64) -> bool {
        done >= self.iterations || self.budget.is_some_and(|b| started.elapsed() > b)
    }

    /// One item per input to try, until the count or the time budget runs out.
    pub fn rounds(&self) -> impl Iterator<Item = u64> + '_ {
        let started = Instant::now();
        (0..).take_while(move |&i| !self.over(started, i))
    }
}

/// Runs `f` on one input, counting a panic or a slow run, and saving the input if so.
pub fn exercise<T>(
    report: &mut Report,
    run: &Run,
    input: &[u8],
    bound: Duration,
    f: impl FnOnce() -> T,
) -> Option<T> {
    report.inputs += 1;
    let started = Instant::now();
    IN_TARGET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    IN_TARGET.with(|q| q.set(false));
    let slow = started.elapsed() > bound;
    match result {
        Ok(v) => {
            if slow {
                report.slow += 1;
                save(report, run, "slow", input);
            }
            Some(v)
        }
        Err(_) => {
            report.panics += 1;
            save(report, run, "panic", input);
            None
        }
    }
}

/// Keeps an input behind a finding (the first 20 of each target).
pub fn save(report: &mut Report, run: &Run, kind: &str, input: &[u8]) {
    if report.saved.len() >= 20 {
        return;
    }
    let dir = run.out.join(report.target);
    let path = dir.join(format!("{kind}-{}-{}", run.seed, report.inputs));
    if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&path, input).is_ok() {
        report.saved.push(path);
    }
}

thread_local! {
    /// Set while an input runs: its panics are findings, counted, not printed.
    static IN_TARGET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Panics inside the code under test are findings, counted; their default message would
/// flood the output. Panics elsewhere (a failed assertion) print as usual.
pub fn quiet_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_TARGET.with(|q| q.get()) {
            default(info)
        }
    }));
}

/// The repository's shared fixtures and scenarios: the seeds.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

pub fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

/// Every file directly in `dir` (sorted), read whole.
pub fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e != "txt"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}
