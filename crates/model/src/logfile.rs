//! Where a container instance's log lives under a data directory: the local runtime writes
//! it there, and `logs`, `diagnose` and the server read it back — one contract, here.

use std::path::{Path, PathBuf};

/// Log file of instance `restart` of container `name` of pod `ns/pod` (uid `uid`).
pub fn log_path(
    data_dir: &Path,
    ns: &str,
    pod: &str,
    uid: &str,
    name: &str,
    restart: i32,
) -> PathBuf {
    data_dir
        .join("logs")
        .join(format!("{ns}_{pod}_{uid}"))
        .join(name)
        .join(format!("{restart}.log"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_file_per_instance() {
        let p = super::log_path(std::path::Path::new("/d"), "ns", "p", "u", "c", 3);
        assert_eq!(p, std::path::Path::new("/d/logs/ns_p_u/c/3.log"));
    }
}
