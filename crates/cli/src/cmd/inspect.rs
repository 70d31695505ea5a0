//! `crashscope inspect FILE --events [-f FILTER] [-o json]`: a capture's events as `sysdig -r`
//! prints them. A damaged capture prints every event before the damage, then the error, and
//! exits non-zero.

use anyhow::{anyhow, Result};
use crashscope_scap::capture::Replay;
use crashscope_scap::filter::Filter;
use crashscope_scap::reader::Reader;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use crate::args::{InspectArgs, InspectOutput};

pub fn run(a: InspectArgs) -> Result<ExitCode> {
    let filter = match &a.filter {
        Some(f) => Filter::parse(f).map_err(|e| anyhow!("invalid filter: {e}"))?,
        None => Filter::default(),
    };
    let reader = if a.file.as_os_str() == "-" {
        Reader::from_read(std::io::BufReader::new(std::io::stdin()))
            .map_err(|e| anyhow!("cannot read standard input: {e}"))?
    } else {
        Reader::open(&a.file)?
    };
    let mut replay = Replay::new(reader);
    let progress = progress_bar(&a.file);
    // Output is buffered: formatting, not writing, should be the cost per event.
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut n = 0u64;
    while let Some((line, _)) = replay.next_line() {
        n += 1;
        if n.is_multiple_of(4096) {
            if let Some(p) = &progress {
                p.set_position(replay.offset());
            }
        }
        if !filter.matches(&line) {
            continue;
        }
        let r = match a.output {
            InspectOutput::Text => line.write_text(&mut out),
            InspectOutput::Json => writeln!(out, "{}", serde_json::to_string(&line)?),
        };
        if let Err(e) = r {
            // A closed pipe (e.g. `| head`) ends the listing quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e.into());
        }
    }
    let _ = out.flush();
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    if let Some(e) = replay.error {
        eprintln!("error: {}: {e}", a.file.display());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr while reading a file whose listing goes elsewhere: shown only when
/// stderr is a terminal and stdout is not (a bar would garble lines printed to the terminal).
fn progress_bar(file: &std::path::Path) -> Option<ProgressBar> {
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
