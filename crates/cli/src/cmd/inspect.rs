//! `crashscope inspect FILE --events [-f FILTER] [-o json]`: a capture's events as `sysdig -r`
//! prints them. A damaged capture prints every event before the damage, then the error, and
//! exits non-zero.

use anyhow::{anyhow, Result};
use crashscope_scap::capture::Replay;
use crashscope_scap::filter::Filter;
use crashscope_scap::reader::Reader;
use std::io::{BufWriter, Write};
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
    // Output is buffered: formatting, not writing, should be the cost per event.
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    while let Some((line, _)) = replay.next_line() {
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
    if let Some(e) = replay.error {
        eprintln!("error: {}: {e}", a.file.display());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
