//! The rules that propose causes for a case, one module per kind of evidence: the status
//! (`status`), Kubernetes events (`events`), what the program printed (`text`), failed system
//! calls (`syscalls`), DNS in the capture (`dns`), how the process died (`death`), and changes
//! before the first crash (`change`), joins with the cluster (`cascade`), and the concrete
//! changes all of that proves (`fixes`). Each adds candidates with tiered evidence; the engine
//! scores them.

mod cascade;
mod change;
mod death;
mod dns;
mod events;
mod fixes;
mod status;
mod syscalls;
mod text;

use crate::candidate::Candidates;
use crate::case::Case;

/// Runs every rule on `case`.
pub fn propose(case: &Case) -> Candidates {
    let mut out = Candidates::default();
    status::propose(case, &mut out);
    events::propose(case, &mut out);
    text::propose(case, &mut out);
    if let Some(facts) = case.capture {
        let crash = syscalls::Crash::new(facts);
        syscalls::propose(case, &crash, &mut out);
        dns::propose(case, &crash, &mut out);
        death::propose(case, &crash, &mut out);
    }
    change::propose(case, &mut out);
    cascade::propose(case, &mut out);
    fixes::propose(case, &mut out);
    out
}
