//! `crashscope ingest -f FILE`: record pods and events from files into the store.

use anyhow::Result;
use crashscope_kube::load::Want;
use crashscope_model::change::Change;
use crashscope_store::{Ingest, SqlStore, Tally};
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
        }
        for ev in loaded.events {
            ingest.record(Change::Event(Box::new(ev))).await?;
        }
        anyhow::Ok(ingest.tally)
    })?;
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
