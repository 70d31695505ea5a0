//! The local runtime: runs Pod manifests on this host with kubelet semantics — the embedded
//! default when there is no cluster, and the test bed for capture and diagnosis.

pub mod capabilities;
pub mod defaults;
pub mod deployments;
pub mod dns;
pub mod events;
pub mod history;
pub mod kubelet;
pub mod logwriter;
pub mod manifest;
pub mod names;
pub mod probe_check;
pub mod rollout;
pub mod runtime;
pub mod spawn;
pub mod volumes;
