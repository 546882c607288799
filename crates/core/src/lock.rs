//! Exclusive locks on shared state kept on disk, across processes and threads.
//!
//! They guard a layout's `index.json` and the caches, and are re-entrant within
//! a thread.
//!
//! Every read-modify-write of a file that several kiln processes may update
//! at once happens under one of these, so no update is lost: a process
//! holds the lock from reading the file to renaming the new one into place.
//! The lock is an advisory `flock` on a lock file beside the state (std's
//! `File::lock`); the operating system releases it when its holder dies, so
//! a killed kiln never leaves a lock behind. Two threads of one process
//! exclude each other too (each opens the lock file itself, and `flock`
//! locks of separate opens conflict), while a thread that already holds a
//! lock may take it again, so an operation made of smaller locked steps can
//! hold the lock for the whole of it.

use anyhow::{Context, Result};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

thread_local! {
    /// Locks this thread holds: the lock file, how many guards are open, and
    /// the open file that holds the `flock`.
    static HELD: RefCell<HashMap<PathBuf, (usize, Option<File>)>> = RefCell::new(HashMap::new());
}

/// An exclusive lock on a lock file, released when dropped.
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    /// A guard is released on the thread that took it.
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Takes the exclusive lock on the file at `path` (created when missing,
/// with its directory), waiting for other holders.
pub fn lock(path: &Path) -> Result<LockGuard> {
    let path = path.to_path_buf();
    let again = HELD.with(|held| {
        let mut held = held.borrow_mut();
        match held.get_mut(&path) {
            Some((depth, _)) => {
                *depth += 1;
                true
            }
            None => false,
        }
    });
    if !again {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create directory `{}`", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("failed to open the lock file `{}`", path.display()))?;
        file.lock()
            .with_context(|| format!("failed to lock `{}`", path.display()))?;
        HELD.with(|held| held.borrow_mut().insert(path.clone(), (1, Some(file))));
    }
    Ok(LockGuard {
        path,
        _not_send: std::marker::PhantomData,
    })
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some((depth, _)) = held.get_mut(&self.path) {
                *depth -= 1;
                if *depth == 0 {
                    // Closing the file releases the flock.
                    held.remove(&self.path);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn reentrant_within_a_thread_and_exclusive_between_threads() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/.lock");
        let counter = Arc::new(AtomicUsize::new(0));
        let outer = lock(&path)?;
        // The same thread takes it again without waiting.
        let inner = lock(&path)?;
        drop(inner);
        let other = {
            let path = path.clone();
            let counter = counter.clone();
            std::thread::spawn(move || -> Result<()> {
                let _g = lock(&path)?;
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Still held by the outer guard: the other thread waits.
        assert_eq!(counter.load(Ordering::SeqCst), 0);
        drop(outer);
        other.join().expect("the other thread panicked")?;
        assert_eq!(counter.load(Ordering::SeqCst), 1);
        Ok(())
    }

    #[test]
    fn read_modify_write_under_the_lock_loses_nothing() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let state = dir.path().join("count");
        let lock_path = dir.path().join(".lock");
        std::fs::write(&state, "0")?;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (state, lock_path) = (state.clone(), lock_path.clone());
                std::thread::spawn(move || -> Result<()> {
                    for _ in 0..25 {
                        let _g = lock(&lock_path)?;
                        let n: u32 = std::fs::read_to_string(&state)?.parse()?;
                        std::thread::yield_now();
                        crate::fs::write_atomic(&state, (n + 1).to_string().as_bytes())?;
                    }
                    Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a writer panicked")?;
        }
        assert_eq!(std::fs::read_to_string(&state)?, "200");
        Ok(())
    }
}
