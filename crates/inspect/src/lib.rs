//! The inspector: Sysdig-Inspect views of a capture (summary, containers, processes,
//! errors, files, I/O, network, DNS, logs, timeline), each a table for people and JSON for
//! tools, over the events that match a sysdig filter.

pub mod event;
pub mod fields;
pub mod filter;
pub mod index;
pub mod report;
pub mod scan;
pub mod views;
