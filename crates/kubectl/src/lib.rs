//! The views an operator already knows — `kubectl get pods` and `kubectl describe pod`,
//! reproduced to the character from Kubernetes objects — and the crash-loop view kubectl
//! does not have (back-off timing, last exits). No I/O: callers hand in objects and a clock.

pub mod crashloop;
pub mod describe;
pub mod get;
pub mod humanize;
pub mod table;
