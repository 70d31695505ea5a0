//! Reading the files named on the command line into objects, reporting what could not be read.

use anyhow::Result;
use crashscope_kube::load::{LoadError, Loaded, Want};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The files named, with directories replaced by their `.json`, `.yaml` and `.yml` files
/// (sorted, not recursive), as `kubectl -f DIR` reads them.
fn expand(files: &[impl AsRef<Path>], errors: &mut Vec<LoadError>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for f in files {
        let f = f.as_ref();
        if !f.is_dir() {
            out.push(f.to_path_buf());
            continue;
        }
        match std::fs::read_dir(f) {
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.is_file()
                            && p.extension()
                                .is_some_and(|x| x == "json" || x == "yaml" || x == "yml")
                    })
                    .collect();
                found.sort();
                out.extend(found);
            }
            Err(e) => errors.push(LoadError {
                file: f.display().to_string(),
                object: None,
                problem: format!("cannot read directory: {e}"),
            }),
        }
    }
    out
}

/// Reads every file; unreadable files and objects are collected as errors, not fatal.
pub fn load(files: &[impl AsRef<Path>], want: Want) -> Loaded {
    let mut loaded = Loaded::default();
    for f in expand(files, &mut loaded.errors) {
        let f = f.as_path();
        let name = f.display().to_string();
        let text = if name == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map(|_| s)
        } else {
            std::fs::read(f).and_then(|bytes| {
                String::from_utf8(bytes).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "not UTF-8 text (invalid byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ),
                    )
                })
            })
        };
        match text {
            Ok(t) => loaded.add_text(&name, &t, want),
            Err(e) => loaded.errors.push(LoadError {
                file: name,
                object: None,
                problem: format!("cannot read: {e}"),
            }),
        }
    }
    loaded
}

/// Prints load errors to stderr; returns whether there were any.
pub fn report(errors: &[LoadError]) -> bool {
    for e in errors {
        eprintln!("error: {e}");
    }
    !errors.is_empty()
}

/// The instant views are computed at: `CRASHSCOPE_NOW`, or the clock.
pub fn now(flag: Option<&str>) -> Result<jiff::Timestamp> {
    match flag {
        Some(s) => s
            .parse()
            .map_err(|e| anyhow::anyhow!("CRASHSCOPE_NOW {s:?} is not an RFC 3339 time: {e}"))
            .and_then(|t| {
                crashscope_model::time_range::check(t)
                    .map_err(|e| anyhow::anyhow!("CRASHSCOPE_NOW: {e}"))
            }),
        None => Ok(jiff::Timestamp::now()),
    }
}
