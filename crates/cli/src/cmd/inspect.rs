//! `crashscope inspect FILE [VIEW] [-f FILTER] [-o table|json]`: the inspector's views of a
//! capture, or its events as `sysdig -r` prints them. A damaged capture shows what came
//! before the damage, then the error, and exits non-zero.

use anyhow::{anyhow, bail, Context, Result};
use crashscope_inspect::fields::{Kind, FIELDS};
use crashscope_inspect::filter::Filter;
use crashscope_inspect::report::{write_chunk, Cell};
use crashscope_inspect::scan::{scan_streaming, Bound, Scope};
use crashscope_inspect::views;
use crashscope_scap::format::{write_line, Line};
use crashscope_scap::reader::Reader;
use crashscope_scap::replay::Replay;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::args::{InspectArgs, InspectOutput, InspectView};

pub fn run(a: InspectArgs) -> Result<ExitCode> {
    if a.list_fields {
        return list_fields(a.output);
    }
    let Some(file) = a.file.as_deref() else {
        bail!("a capture file is required");
    };
    let scope = Scope {
        filter: match &a.filter {
            Some(f) => Filter::parse(f).map_err(|e| anyhow!("invalid filter {e}"))?,
            None => Filter::default(),
        },
        from: a.from.as_deref().map(bound).transpose().context("--from")?,
        to: a.to.as_deref().map(bound).transpose().context("--to")?,
    };
    let reader = if file.as_os_str() == "-" {
        Reader::from_read(std::io::BufReader::new(std::io::stdin()))
            .map_err(|e| anyhow!("cannot read standard input: {e}"))?
    } else {
        Reader::open(file)?
    };
    let mut replay = Replay::new(reader);
    let progress = progress_bar(file);
    let view = if a.events {
        InspectView::Events
    } else {
        a.view
    };
    let code = if view == InspectView::Events {
        events(&mut replay, &scope, a.output, &progress, file, a.metadata)?
    } else {
        let opts = views::Options {
            hex: a.hex,
            bucket: a
                .bucket
                .as_deref()
                .map(|b| {
                    crashscope_model::duration::parse_go(b)
                        .map(|d| d.as_nanos() as u64)
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            anyhow!("--bucket {b:?}: expected a duration such as 100ms or 1s")
                        })
                })
                .transpose()?,
            top: a.top,
            all: a.all,
        };
        table(&mut replay, &scope, view, &opts, a.output, &progress, file)?
    };
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    Ok(code)
}

fn view_name(v: InspectView) -> &'static str {
    match v {
        InspectView::Summary => "summary",
        InspectView::Containers => "containers",
        InspectView::Procs => "procs",
        InspectView::Death => "death",
        InspectView::Errors => "errors",
        InspectView::Files => "files",
        InspectView::Io => "io",
        InspectView::Net => "net",
        InspectView::Dns => "dns",
        InspectView::Logs => "logs",
        InspectView::Timeline => "timeline",
        InspectView::Events => "events",
    }
}

/// `2s` after the first event, or an RFC 3339 time.
fn bound(s: &str) -> Result<Bound> {
    use crashscope_model::time_range::{capture_point, CapturePoint};
    Ok(match capture_point(s).map_err(|e| anyhow!("{e}"))? {
        CapturePoint::After(ns) => Bound::Relative(ns),
        CapturePoint::At(ns) => Bound::Absolute(ns),
    })
}

fn table<R: Read>(
    replay: &mut Replay<R>,
    scope: &Scope,
    view: InspectView,
    opts: &views::Options,
    output: InspectOutput,
    progress: &Option<ProgressBar>,
    file: &Path,
) -> Result<ExitCode> {
    let name = view_name(view);
    let v = views::make(name, opts).ok_or_else(|| anyhow!("no view named {name}"))?;
    let mut vs = vec![v];
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    // Rows a view has final (the io view's, one per read or write) are printed as the scan
    // goes: memory stays flat however large the capture.
    let mut streamed: std::io::Result<()> = Ok(());
    let mut print = |rows: Vec<Vec<Cell>>| {
        for r in rows {
            if streamed.is_ok() {
                streamed = write_chunk(&mut out, &r);
            }
        }
    };
    let sink: Option<&mut dyn FnMut(Vec<Vec<Cell>>)> = match output {
        InspectOutput::Table => Some(&mut print),
        InspectOutput::Json => None,
    };
    let outcome = scan_streaming(
        replay,
        scope,
        &mut vs,
        |off| {
            if let Some(p) = progress {
                p.set_position(off);
            }
        },
        sink,
    );
    finish_write(streamed)?;
    let mut t = vs.pop().map(|v| v.finish()).unwrap_or_default();
    let ranged = scope.from.is_some() || scope.to.is_some();
    if ranged && outcome.events > 0 && !scope.in_range_any(outcome.first_ts, outcome.last_ts) {
        // An all-zero table would read as "nothing happened"; the range missed the capture.
        out_of_range(file, outcome.first_ts, outcome.last_ts);
        return Ok(ExitCode::FAILURE);
    }
    if outcome.events == 0 && outcome.error.is_none() {
        eprintln!("warning: {}: the capture holds no events", file.display());
    } else if outcome.matched == 0 && !scope.filter.is_empty() {
        eprintln!(
            "warning: no event matches the filter {:?} ({} events read)",
            scope.filter.text(),
            outcome.events
        );
    }
    if let Some(e) = &outcome.error {
        t.notes.push(format!(
            "incomplete: the capture is damaged ({}); shown is what could be read ({} events)",
            damaged_places(outcome.damaged_blocks),
            outcome.events
        ));
        say_damage(file, e, outcome.damaged_blocks);
    }
    let r = match output {
        InspectOutput::Table => t.write_text(&mut out),
        InspectOutput::Json => {
            let mut j = t.json();
            outcome.annotate(&mut j);
            writeln!(out, "{}", serde_json::to_string_pretty(&j)?)
        }
    };
    finish_write(r.and_then(|_| out.flush()))?;
    Ok(if outcome.error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A closed pipe (e.g. `| head`) ends the listing quietly.
fn finish_write(r: std::io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn events<R: Read>(
    replay: &mut Replay<R>,
    scope: &Scope,
    output: InspectOutput,
    progress: &Option<ProgressBar>,
    file: &Path,
    metadata: bool,
) -> Result<ExitCode> {
    // Output is buffered: formatting, not writing, should be the cost per event.
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut n = 0u64;
    // One line's text, reused: formatting, not allocating, is the cost per event.
    let mut text = String::with_capacity(256);
    let mut first_ts = None;
    let mut last_ts = None;
    while let Some(num) = replay.next_event() {
        n += 1;
        if n.is_multiple_of(4096) {
            if let Some(p) = progress {
                p.set_position(replay.offset());
            }
        }
        let Some(rec) = replay.current() else {
            continue;
        };
        let first = *first_ts.get_or_insert(rec.ts());
        last_ts = Some(rec.ts());
        if !metadata && crashscope_scap::schema::is_metadata(rec.event_type()) {
            continue;
        }
        if !scope.selects(num, rec, &replay.state, first) {
            continue;
        }
        let r = match output {
            InspectOutput::Table => {
                text.clear();
                write_line(&mut text, num, rec, &replay.state);
                out.write_all(text.as_bytes())
            }
            InspectOutput::Json => {
                let line = Line::new(num, rec, &replay.state);
                writeln!(out, "{}", serde_json::to_string(&line)?)
            }
        };
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e.into());
        }
    }
    finish_write(out.flush())?;
    if let Some(e) = replay.error.take() {
        say_damage(file, &e, replay.damage_count);
        return Ok(ExitCode::FAILURE);
    }
    let ranged = scope.from.is_some() || scope.to.is_some();
    if ranged && n > 0 && !scope.in_range_any(first_ts, last_ts) {
        out_of_range(file, first_ts, last_ts);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn out_of_range(file: &Path, first: Option<u64>, last: Option<u64>) {
    let clock = |t: Option<u64>| t.map(crashscope_inspect::report::clock).unwrap_or_default();
    eprintln!(
        "error: {}: --from/--to lie outside the capture, which spans {} to {}",
        file.display(),
        clock(first),
        clock(last)
    );
}

fn damaged_places(n: u64) -> String {
    if n == 1 {
        "1 damaged block".into()
    } else {
        format!("{n} damaged blocks")
    }
}

/// The first damage in full and how many more there were: never a silent exit 0.
fn say_damage(file: &Path, first: &crashscope_scap::reader::ScapError, count: u64) {
    eprintln!("error: {}: {first}", file.display());
    if count > 1 {
        eprintln!(
            "error: {}: {} more damaged or unknown blocks after it",
            file.display(),
            count - 1
        );
    }
}

fn list_fields(output: InspectOutput) -> Result<ExitCode> {
    let kind = |k: Kind| match k {
        Kind::Text => "text",
        Kind::Number => "number",
        Kind::Bool => "bool",
        Kind::Any => "any",
    };
    let mut out = std::io::stdout().lock();
    let r = match output {
        InspectOutput::Json => {
            let v: Vec<_> = FIELDS
                .iter()
                .map(|f| serde_json::json!({"name": f.name, "type": kind(f.kind), "description": f.help}))
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)
        }
        InspectOutput::Table => (|| {
            for f in FIELDS {
                writeln!(out, "{:<20} {:<7} {}", f.name, kind(f.kind), f.help)?;
            }
            writeln!(
                out,
                "\nOperators: = == != < <= > >= contains icontains startswith endswith glob iglob regex\n\
                 in (a, b) intersects (a, b) pmatch (/dir, ...) exists; joined by and, or, not, ( )."
            )
        })(),
    };
    finish_write(r)?;
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr while reading a file whose listing goes elsewhere: shown only when
/// stderr is a terminal and stdout is not (a bar would garble lines printed to the terminal).
fn progress_bar(file: &Path) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal()
        || std::io::stdout().is_terminal()
        || file.as_os_str() == "-"
    {
        return None;
    }
    let meta = std::fs::metadata(file).ok()?;
    let gz = std::fs::File::open(file)
        .ok()
        .and_then(|mut f| {
            let mut magic = [0u8; 2];
            std::io::Read::read_exact(&mut f, &mut magic).ok()?;
            Some(magic == [0x1f, 0x8b])
        })
        .unwrap_or(false);
    // Offsets are in the decompressed stream: a gzip file's size is no total for them.
    let bar = if gz {
        ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} read ({bytes_per_sec})").ok()?,
        )
    } else {
        ProgressBar::new(meta.len()).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
                .ok()?,
        )
    };
    Some(bar)
}
