//! Evidence on disk is for its owner only: captures hold payloads (secrets pass through
//! system calls) and the database every event, so the data directory is 0700 and its files
//! 0600 — whatever the umask, for the server, the local runtime and the node agent alike.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Mode of a directory holding evidence.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a file holding evidence.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its parents) if needed and makes it private.
pub fn dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
}

/// Makes an existing file private (a file made by a library that does not take a mode).
pub fn file(path: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(FILE_MODE))
}

/// Options that create a file private from its first byte.
pub fn create_options() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true).mode(FILE_MODE);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_files_are_the_owners_only() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        dir(&d).unwrap();
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let f = d.join("x");
        std::fs::write(&f, b"x").unwrap();
        file(&f).unwrap();
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let g = d.join("y");
        create_options().open(&g).unwrap();
        assert_eq!(
            std::fs::metadata(&g).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
