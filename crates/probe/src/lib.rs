//! crashscope's eBPF flight recorder: a BPF program on the raw system-call tracepoints
//! records what watched processes do (`probe`) into a ring per CPU, read back in time order
//! (`merge`); its raw records (`record`) become standard
//! scap events (`syscalls`, `convert`), and the writer puts them in a `.scap` file that
//! sysdig, Falco and Stratoshark open (`writer`; a capture converts on a thread of its own,
//! `handoff`); the flight recorder keeps each container's
//! last seconds and writes them when it dies or a capture is asked for (`flight`).

pub mod calls;
pub mod cgroup;
pub mod convert;
pub mod fdtable;
pub mod flight;
pub mod handoff;
pub mod merge;
pub mod param;
pub mod probe;
pub mod record;
pub mod spool;
pub mod syscalls;
pub mod writer;
