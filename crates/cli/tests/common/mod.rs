//! Running the `crashscope` binary as a user does, for the integration tests.

use std::path::Path;
use std::process::{Command, Output};

/// Runs crashscope with its store in `data_dir`, ages evaluated at `now`, times in UTC.
#[allow(dead_code)] // not every test file runs crashscope this way
pub fn crashscope_at(now: &str, args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .args(args)
        .env("CRASHSCOPE_NOW", now)
        .env("CRASHSCOPE_DATA_DIR", data_dir)
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
