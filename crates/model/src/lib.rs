//! The shared vocabulary of crashscope: events, severity, scope, pod state, owner chains,
//! the kubelet's restart back-off, the catalog of Kubernetes event reasons, what a source saw
//! change, and what recorders and capture requests exchange (with its state machine).
//!
//! Every source (Kubernetes watcher, local runtime, custom events, node agent) produces these
//! values, so everything downstream — store, rules, views, diagnosis — is written and tested once.
//! This crate does no I/O.

pub mod alert;
pub mod backoff;
pub mod capture;
pub mod catalog;
pub mod change;
pub mod documents;
pub mod duration;
pub mod event;
pub mod incident;
pub mod logfile;
pub mod owner;
pub mod pod;
pub mod qos;
pub mod quantity;
pub mod redact;
pub mod restart;
pub mod rollback;
pub mod scope;
pub mod severity;
pub mod time_range;

pub use backoff::{BackoffEstimate, BackoffPolicy, BackoffState};
pub use catalog::{Catalog, CatalogEntry, CatalogError, ObjectClass, Profile};
pub use event::{Event, EventType};
pub use incident::Incident;
pub use owner::{OwnerChain, OwnerLink};
pub use pod::{ContainerKind, ContainerState, ContainerView, PodState};
pub use restart::RestartSample;
pub use scope::{ObjectRef, Scope, ScopeLevel};
pub use severity::Severity;
