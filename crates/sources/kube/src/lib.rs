//! The Kubernetes source of crashscope: reading Pod and Event objects from files or from a
//! cluster (one-shot reads and watchers) and the watchers' health. It emits model values
//! ([`crashscope_model::change::Change`]); the store's ingest writer records them and the
//! kubectl crate prints them.

pub mod client;
pub mod cluster;
pub mod health;
pub mod load;
pub mod rollout;
pub mod watch;
