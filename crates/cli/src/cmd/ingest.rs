//! `crashscope ingest -f FILE`: record pods and events from files into the store.

use anyhow::Result;
use crashscope_kube::load::Want;
use crashscope_model::change::Change;
use crashscope_store::{Ingest, SqlStore, Tally};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::process::ExitCode;

use crate::args::{Global, IngestArgs};
use crate::inputs;

pub fn run(g: &Global, a: IngestArgs) -> Result<ExitCode> {
    let catalog = super::catalog(g)?;
    let now = inputs::now(g.now.as_deref())?;
    let path = super::store_path(g)?;
    let loaded = inputs::load(
        &a.files,
        Want {
            pods: true,
            events: true,
        },
    );
    let had_errors = inputs::report(&loaded.errors);
    let (pods, events) = (loaded.pods.len(), loaded.events.len());
    let bar = progress_bar((pods + events) as u64);
    let Tally {
        states,
        samples,
        events_new: new,
        events_updated: updated,
        events_skipped: skipped,
        ..
    } = super::runtime()?.block_on(async {
        let store = SqlStore::open(&path).await?;
        let mut ingest = Ingest::new(&store, catalog).at(now);
        for pod in loaded.pods {
            ingest.record(Change::Pod(Box::new(pod))).await?;
            if let Some(b) = &bar {
                b.inc(1);
            }
        }
        for ev in loaded.events {
            ingest.record(Change::Event(Box::new(ev))).await?;
            if let Some(b) = &bar {
                b.inc(1);
            }
        }
        anyhow::Ok(ingest.tally)
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    println!(
        "{}: {} pods ({states} new states, {samples} restart samples), {} events ({new} new, {updated} updated{})",
        path.display(),
        pods,
        events,
        if skipped > 0 {
            format!(", {skipped} without a timestamp skipped")
        } else {
            String::new()
        }
    );
    Ok(super::status(had_errors))
}

/// A bar on stderr for a bulk ingest (thousands of objects), on a terminal only: piped or
/// redirected, the output is the summary line alone.
fn progress_bar(total: u64) -> Option<ProgressBar> {
    if total < 1_000 || !std::io::stderr().is_terminal() {
        return None;
    }
    let style =
        ProgressStyle::with_template("{bar:40} {pos}/{len} objects ({per_sec}, {eta})").ok()?;
    Some(ProgressBar::new(total).with_style(style))
}
