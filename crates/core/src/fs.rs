//! Atomic file output: every file kiln writes goes through here.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so readers see either the old file or the whole new one and
/// a failure never leaves a partial file behind. Missing parent directories
/// are created.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Staged::write(path, bytes)?.commit()
}

/// Whether the file at `path` holds exactly `bytes` (false when it cannot
/// be read). Large files are compared through a mapping, not read.
pub fn holds(path: &Path, bytes: &[u8]) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64)
        && crate::input::Input::read(path).is_ok_and(|b| *b == *bytes)
}

/// [`write_atomic`] unless the file already holds exactly `bytes`: an
/// unchanged output keeps its modification time, and replacing a large file
/// (freeing the old one's blocks) costs more than comparing it.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if holds(path, bytes) {
        return Ok(());
    }
    write_atomic(path, bytes)
}

/// [`write_atomic`] for files holding secrets (credentials, private keys):
/// readable and writable by the owner only, from the first byte on.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    Staged::write_mode(path, bytes, 0o600)?.commit()
}

/// A file written next to its destination but not yet in place: `commit`
/// renames it there, dropping it deletes it. It lets a caller write while it
/// still checks the bytes, and publish only if the check passes.
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    path: std::path::PathBuf,
}

impl Staged {
    /// Writes `bytes` to a temporary file beside `path`.
    pub fn write(path: &Path, bytes: &[u8]) -> Result<Staged> {
        Staged::write_mode(path, bytes, 0o644)
    }

    /// [`Staged::write`] with Unix permission bits `mode` (applied before
    /// any byte is written).
    pub fn write_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<Staged> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create directory `{}`", dir.display()))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".kiln-tmp-")
            .tempfile_in(dir)
            .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))?;
        // The temporary file starts owner-only; `mode` is set before any
        // byte is written, so a secret is never readable by others.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .with_context(|| {
                    format!("failed to set permissions on `{}`", tmp.path().display())
                })?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        // No fsync: the rename already gives readers all or nothing, and like
        // cargo, kiln leaves durability across power loss to the filesystem.
        tmp.write_all(bytes)
            .with_context(|| format!("failed to write `{}`", tmp.path().display()))?;
        Ok(Staged {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Moves the file into place.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        self.tmp
            .persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_without_leftovers() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/out.wasm");
        write_atomic(&path, b"one")?;
        write_atomic(&path, b"two")?;
        assert_eq!(std::fs::read(&path)?, b"two");
        assert!(holds(&path, b"two") && !holds(&path, b"tw") && !holds(&path, b"owt"));
        assert!(!holds(&dir.path().join("missing"), b""));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names, vec![std::ffi::OsString::from("out.wasm")]);
        Ok(())
    }

    #[test]
    fn a_dropped_stage_leaves_nothing() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("out.wasm");
        drop(Staged::write(&path, b"x")?);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }

    #[test]
    fn a_directory_in_the_way_is_an_error_and_leaves_nothing() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("taken");
        std::fs::create_dir(&path)?;
        assert!(write_atomic(&path, b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }
}
