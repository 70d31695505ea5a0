//! The Kubernetes source of crashscope: reading Pod and Event objects from files or from a
//! cluster (one-shot reads and watchers), recording them into the store, and the views an
//! operator already knows — `kubectl get pods` and `kubectl describe pod`, reproduced to the
//! character — plus what kubectl cannot tell.

pub mod client;
pub mod cluster;
pub mod crashloop;
pub mod describe;
pub mod get;
pub mod health;
pub mod humanize;
pub mod load;
pub mod table;
pub mod watch;
