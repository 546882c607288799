//! Atomic file output: every file kiln writes goes through here.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How every temporary file kiln creates beside its destination is named.
/// Only [`clean_stale`] ever removes such a file that kiln did not just make.
pub const TEMP_PREFIX: &str = ".kiln-tmp-";

/// How `kiln new` names the directory it assembles a project in.
pub const NEW_PREFIX: &str = ".kiln-new-";

/// The file inside a temporary directory (or beside shared state) whose
/// lock says a live kiln process is using it.
pub const LOCK_FILE: &str = ".kiln-lock";

/// How old an unlocked temporary file must be before [`clean_stale`] takes
/// it: between creating a file and locking it, a live writer holds no lock,
/// and a minute is far longer than that gap.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// How many symlinks [`destination`] follows before it calls the chain a
/// loop (Linux's limit).
const MAX_LINKS: usize = 40;

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so readers see either the old file or the whole new one and
/// a failure never leaves a partial file behind. Missing parent directories
/// are created. The file gets the permissions the umask leaves of `0o666`,
/// as any new file would. When `path` is a symlink, the file it points to
/// is replaced and the link stays.
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
    path: PathBuf,
}

impl Staged {
    /// Writes `bytes` to a temporary file beside `path` (beside the file
    /// it points to when `path` is a symlink), with the permissions the
    /// umask leaves of `0o666`.
    pub fn write(path: &Path, bytes: &[u8]) -> Result<Staged> {
        Staged::create(path, bytes, None)
    }

    /// [`Staged::write`] with exactly the Unix permission bits `mode`,
    /// whatever the umask (applied before any byte is written).
    pub fn write_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<Staged> {
        Staged::create(path, bytes, Some(mode))
    }

    fn create(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<Staged> {
        let path = destination(path)?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create directory `{}`", dir.display()))?;
        let mut tmp = create_temp(dir, mode)?;
        // An explicit mode is set exactly before any byte is written, so a
        // secret is never readable by others; the umask may only have
        // narrowed it further.
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .with_context(|| {
                    format!("failed to set permissions on `{}`", tmp.path().display())
                })?;
        }
        // No fsync: the rename already gives readers all or nothing, and like
        // cargo, kiln leaves durability across power loss to the filesystem.
        tmp.write_all(bytes)
            .with_context(|| format!("failed to write `{}`", tmp.path().display()))?;
        Ok(Staged { tmp, path })
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

/// Creates a temporary file (`.kiln-tmp-*`) in `dir` for a file that will
/// be renamed into place there, with the permissions the umask leaves of
/// `0o666`. It is locked for as long as it is open, so [`clean_stale`] in
/// another process never takes it; dropping it deletes it.
pub fn temp_file_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    create_temp(dir, None)
}

fn create_temp(dir: &Path, mode: Option<u32>) -> Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    // Created with the mode itself rather than changed afterwards: the
    // kernel applies the umask to `0o666` just as for any new file, which
    // is the only portable way to honour it without reading it (reading
    // the umask means setting it, which races with other threads).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode.unwrap_or(0o666)));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))?;
    tmp.as_file()
        .lock()
        .with_context(|| format!("failed to lock `{}`", tmp.path().display()))?;
    Ok(tmp)
}

/// Where a write to `path` lands: `path` itself, or, when it is a symlink
/// (a `~/.docker/config.json` a dotfiles tool manages), the file the chain
/// of links ends at, so the file is replaced and the link stays. A dangling
/// link is followed to the missing file, which must be in a directory that
/// exists.
fn destination(path: &Path) -> Result<PathBuf> {
    let is_link = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link(path) {
        return Ok(path.to_path_buf());
    }
    if let Ok(target) = std::fs::canonicalize(path) {
        return Ok(target);
    }
    let mut link = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let target = std::fs::read_link(&link)
            .with_context(|| format!("failed to read the symlink `{}`", link.display()))?;
        // A relative target is relative to the link's directory; joining an
        // absolute one replaces the base.
        let target = match link.parent() {
            Some(dir) => dir.join(target),
            None => target,
        };
        if is_link(&target) {
            link = target;
            continue;
        }
        let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
            bail!(
                "`{}` is a symlink to `{}`, which is not a file name",
                path.display(),
                target.display()
            );
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let dir = std::fs::canonicalize(dir).with_context(|| {
            format!(
                "`{}` is a symlink to `{}`, whose directory does not exist",
                path.display(),
                target.display()
            )
        })?;
        return Ok(dir.join(name));
    }
    bail!("`{}` is a symlink in a loop", path.display())
}

/// Removes what killed kiln processes left in `dir`: temporary files and
/// directories (`.kiln-tmp-*`, and `kiln new`'s `.kiln-new-*`) that no live
/// process holds a lock on (a directory's lock is on its `.kiln-lock`) and
/// that were last modified over a minute ago, so a file another process has
/// just created and not locked yet is never taken. Best effort: anything
/// that cannot be checked or removed is left alone. Returns how many entries
/// were removed.
pub fn clean_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if (name.starts_with(TEMP_PREFIX) || name.starts_with(NEW_PREFIX))
            && remove_if_stale(&entry.path())
        {
            removed += 1;
        }
    }
    removed
}

/// Removes one temporary file or directory if it is unlocked and old.
fn remove_if_stale(path: &Path) -> bool {
    // Symlinks are never followed: only what kiln itself made is removed.
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let old = |m: &std::fs::Metadata| {
        m.modified()
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER)
    };
    if !old(&meta) {
        return false;
    }
    let lock_path = if meta.is_file() {
        path.to_path_buf()
    } else if meta.is_dir() {
        path.join(LOCK_FILE)
    } else {
        return false;
    };
    // The lock is taken, and kept while removing, so a writer cannot be
    // holding it in the meantime. A directory without a lock file is one
    // whose writer died before it could make one.
    let _held = match std::fs::symlink_metadata(&lock_path) {
        Ok(m) if m.is_file() => {
            let Ok(file) = std::fs::File::open(&lock_path) else {
                return false;
            };
            if file.try_lock().is_err() {
                return false;
            }
            Some(file)
        }
        Err(e) if meta.is_dir() && e.kind() == std::io::ErrorKind::NotFound => None,
        _ => return false,
    };
    if meta.is_dir() {
        std::fs::remove_dir_all(path).is_ok()
    } else {
        std::fs::remove_file(path).is_ok()
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

    /// Runs [`umask_child`] in a copy of this test binary under `umask`,
    /// writing into `dir`: the umask is process-wide, so setting it here
    /// would change the files every other test running in parallel makes.
    #[cfg(unix)]
    fn in_child_with_umask(umask: &str, dir: &Path) -> Result<()> {
        let exe = std::env::current_exe()?;
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(exe)
            .args(["--exact", "fs::tests::umask_child", "--ignored"])
            .env("KILN_TEST_UMASK_DIR", dir)
            .output()?;
        assert!(
            out.status.success(),
            "the child under umask {umask} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    #[test]
    #[ignore = "run by `files_follow_the_umask_and_secrets_stay_private` under its umasks"]
    fn umask_child() -> Result<()> {
        let Some(dir) = std::env::var_os("KILN_TEST_UMASK_DIR") else {
            return Ok(());
        };
        let dir = PathBuf::from(dir);
        write_atomic(&dir.join("plain"), b"x")?;
        write_private(&dir.join("secret"), b"x")?;
        // A file that exists is replaced with the umask's mode too.
        std::fs::write(dir.join("old"), b"old")?;
        write_atomic(&dir.join("old"), b"new")?;
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn files_follow_the_umask_and_secrets_stay_private() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: PathBuf| -> Result<u32> { Ok(std::fs::metadata(p)?.permissions().mode() & 0o777) };
        for (umask, plain) in [("077", 0o600), ("022", 0o644), ("002", 0o664)] {
            let dir = tempfile::tempdir()?;
            in_child_with_umask(umask, dir.path())?;
            assert_eq!(mode(dir.path().join("plain"))?, plain, "umask {umask}");
            assert_eq!(mode(dir.path().join("old"))?, plain, "umask {umask}");
            assert_eq!(mode(dir.path().join("secret"))?, 0o600, "umask {umask}");
        }
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_stays_and_its_target_is_replaced() -> Result<()> {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir()?;
        let dotfiles = dir.path().join("dotfiles");
        std::fs::create_dir(&dotfiles)?;
        std::fs::write(dotfiles.join("config.json"), b"old")?;
        let home = dir.path().join("home");
        std::fs::create_dir(&home)?;
        // A relative link, and a link to that link.
        let link = home.join("config.json");
        symlink("../dotfiles/config.json", &link)?;
        let chained = home.join("chained.json");
        symlink(&link, &chained)?;

        write_atomic(&link, b"new")?;
        assert!(std::fs::symlink_metadata(&link)?.file_type().is_symlink());
        assert_eq!(
            std::fs::read_link(&link)?,
            Path::new("../dotfiles/config.json")
        );
        assert_eq!(std::fs::read(dotfiles.join("config.json"))?, b"new");
        write_private(&chained, b"newer")?;
        assert!(
            std::fs::symlink_metadata(&chained)?
                .file_type()
                .is_symlink()
        );
        assert!(std::fs::symlink_metadata(&link)?.file_type().is_symlink());
        assert_eq!(std::fs::read(dotfiles.join("config.json"))?, b"newer");

        // A dangling link makes its target, in the directory it names.
        let dangling = home.join("dangling.json");
        symlink("../dotfiles/missing.json", &dangling)?;
        write_atomic(&dangling, b"made")?;
        assert!(
            std::fs::symlink_metadata(&dangling)?
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(dotfiles.join("missing.json"))?, b"made");
        // ...but no directory is made where a link points.
        let nowhere = home.join("nowhere.json");
        symlink("../absent/x.json", &nowhere)?;
        let err = write_atomic(&nowhere, b"x").unwrap_err();
        assert!(
            format!("{err:#}").contains("whose directory does not exist"),
            "{err:#}"
        );
        assert!(!dir.path().join("absent").exists());
        // No temporary files are left beside either.
        for d in [&dotfiles, &home] {
            for e in std::fs::read_dir(d)? {
                let name = e?.file_name();
                assert!(!name.to_string_lossy().starts_with(TEMP_PREFIX), "{name:?}");
            }
        }
        Ok(())
    }

    /// Makes `path` look last modified `secs` seconds ago.
    fn age(path: &Path, secs: u64) -> Result<()> {
        let when = SystemTime::now() - Duration::from_secs(secs);
        if path.is_dir() {
            std::fs::File::open(path)?.set_modified(when)?;
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)?
                .set_modified(when)?;
        }
        Ok(())
    }

    #[test]
    fn clean_stale_takes_only_old_unlocked_temporaries() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        // Left by a killed writer: unlocked and old.
        let stale = d.join(".kiln-tmp-stale");
        std::fs::write(&stale, b"x")?;
        age(&stale, 120)?;
        // A live writer's: locked, however old.
        let live = temp_file_in(d)?;
        std::fs::write(live.path(), b"x")?;
        age(live.path(), 120)?;
        // Just made by another process that has not locked it yet.
        let fresh = d.join(".kiln-tmp-fresh");
        std::fs::write(&fresh, b"x")?;
        // Not kiln's.
        let other = d.join("tmp-other");
        std::fs::write(&other, b"x")?;
        age(&other, 120)?;
        // `kiln new` directories: a dead one, with and without its lock
        // file, and a live one.
        let dead = d.join(".kiln-new-dead");
        std::fs::create_dir_all(dead.join("src"))?;
        std::fs::write(dead.join(LOCK_FILE), b"")?;
        age(&dead, 120)?;
        let unlocked = d.join(".kiln-new-nolock");
        std::fs::create_dir(&unlocked)?;
        age(&unlocked, 120)?;
        let busy = d.join(".kiln-new-busy");
        std::fs::create_dir(&busy)?;
        let lock = std::fs::File::create(busy.join(LOCK_FILE))?;
        lock.lock()?;
        age(&busy, 120)?;

        assert_eq!(clean_stale(d), 3);
        assert!(!stale.exists() && !dead.exists() && !unlocked.exists());
        assert!(live.path().exists() && fresh.exists() && other.exists() && busy.exists());
        // Once its writer is gone, the live one goes too.
        let path = live.path().to_path_buf();
        let (file, kept) = live.keep()?;
        drop(file);
        assert_eq!(kept, path);
        // A child another test of this process is starting holds a copy of
        // every descriptor between its fork and its exec, and with it the
        // lock: give that a moment to pass.
        let mut removed = 0;
        for _ in 0..100 {
            removed = clean_stale(d);
            if removed == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(removed, 1);
        assert!(!path.exists());
        assert_eq!(clean_stale(&d.join("missing")), 0);
        Ok(())
    }
}
