//! `.scap` captures (the libscap savefile format that sysdig, Falco, Sysdig Inspect and
//! Stratoshark read): a streaming block reader, event decoding, process/fd state and a writer.

pub mod block;
pub mod build;
pub mod cgroup;
pub mod event;
pub mod format;
pub mod intmap;
pub mod notes;
pub mod reader;
pub mod replay;
pub mod schema;
pub mod state;
pub mod writer;
