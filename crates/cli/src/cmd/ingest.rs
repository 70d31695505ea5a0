//! `crashscope ingest -f FILE`: record pods and events from files into the store.

use anyhow::Result;
use crashscope_kube::load::Want;
use crashscope_model::{Event, PodState};
use crashscope_store::{SqlStore, Store, Upsert};
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
    let (mut states, mut samples, mut new, mut updated, mut skipped) = (0, 0, 0, 0, 0);
    super::runtime()?.block_on(async {
        let store = SqlStore::open(&path).await?;
        for pod in &loaded.pods {
            let change = store.record_pod(now, &PodState::from_pod(pod)).await?;
            states += usize::from(change.stored);
            samples += change.restarts.len();
        }
        for ev in &loaded.events {
            match Event::from_kube(ev, &catalog) {
                None => skipped += 1,
                Some(e) => match store.upsert_event(&e).await? {
                    Upsert::Inserted { .. } => new += 1,
                    Upsert::Updated { .. } => updated += 1,
                    Upsert::Unchanged { .. } => {}
                },
            }
        }
        anyhow::Ok(())
    })?;
    println!(
        "{}: {} pods ({states} new states, {samples} restart samples), {} events ({new} new, {updated} updated{})",
        path.display(),
        loaded.pods.len(),
        loaded.events.len(),
        if skipped > 0 {
            format!(", {skipped} without a timestamp skipped")
        } else {
            String::new()
        }
    );
    Ok(super::status(had_errors))
}
