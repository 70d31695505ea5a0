//! The diagnosis engine: why a container crash-loops, with evidence a user can check and a
//! remedy — or an honest "unknown" saying what would decide it.
//!
//! Pure logic, no I/O. Inputs are model values (the Pod object, events, custom events), the
//! previous instance's log text, and the facts a scan of a `.scap` capture found
//! ([`capture::CaptureFacts`]). The pipeline is the one `research/crash-causes.md` lays out:
//! *facts* with provenance → *candidates* proposed by rules keyed on status, events, log text
//! and system calls → a *score* by evidence tier (capture proof > status > events > logs >
//! exit-code prior) → an *explanation* per crashed container instance ([`Diagnosis`]).
//!
//! Rules reason from evidence only: errno values, signals, exit codes, status reasons, event
//! reasons, the wording real programs print. None keys on a pod, namespace or image name.

pub mod candidate;
pub mod capture;
pub mod case;
pub mod cause;
pub mod diagnosis;
pub mod engine;
pub mod evidence;
pub mod logs;
mod rules;
pub mod world;

pub use capture::CaptureFacts;
pub use diagnosis::{CauseReport, Diagnosis, Rejected, Remedy};
pub use engine::{diagnose, Inputs};
pub use evidence::{Evidence, Source, Tier};
pub use logs::LogText;
pub use world::World;
