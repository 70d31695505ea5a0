//! The Kubernetes source of crashscope: reading Pod and Event objects (files today, the API
//! watch later) and the views an operator already knows — `kubectl get pods` and
//! `kubectl describe pod`, reproduced to the character — plus what kubectl cannot tell.

pub mod crashloop;
pub mod describe;
pub mod get;
pub mod humanize;
pub mod load;
pub mod table;
pub mod watch;
