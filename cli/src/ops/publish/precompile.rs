//! The precompile that runs beside the rest of a publish, one target at a time.
//!
//! The precompile that runs beside the rest of a publish: it starts as soon as
//! the build hands over the component's final bytes, compiles one target at a
//! time and hands each artifact on as it is written.

use super::events::Events;
use super::plan::Plan;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};

/// The component's final bytes and the path it is written to.
pub type Ready = (Vec<u8>, PathBuf);

/// Where the build hands the component's final bytes and path to the
/// precompile; emptied once the build is over, so the precompile never
/// waits for a build that failed.
pub struct Handoff(Mutex<Option<Sender<Ready>>>);

impl Handoff {
    pub fn new(ready: Sender<Ready>) -> Handoff {
        Handoff(Mutex::new(Some(ready)))
    }

    /// Hands the component over, the first time only.
    pub fn give(&self, bytes: &[u8], path: &Path) {
        if let Some(tx) = self.take() {
            let _ = tx.send((bytes.to_vec(), path.to_path_buf()));
        }
    }

    /// Ends the handoff: a precompile still waiting stops waiting.
    pub fn close(&self) {
        drop(self.take());
    }

    fn take(&self) -> Option<Sender<Ready>> {
        self.0.lock().ok().and_then(|mut r| r.take())
    }
}

/// Waits for the component's bytes and precompiles them for each target,
/// handing each artifact on as it is made; nothing when the build failed
/// first or there are no targets.
pub fn when_ready(
    ready: Receiver<Ready>,
    plan: &Plan,
    events: &Events,
    done: Sender<kiln_aot::Artifact>,
    stop: &AtomicBool,
) -> Result<()> {
    let Ok((component, path)) = ready.recv() else {
        return Ok(());
    };
    if plan.targets.is_empty() {
        return Ok(());
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    events.stage("compile", || {
        compile_targets(&component, plan, &dir, &stem, events, &done, stop)
    })
}

fn compile_targets(
    wasm: &[u8],
    plan: &Plan,
    dir: &Path,
    stem: &str,
    events: &Events,
    done: &Sender<kiln_aot::Artifact>,
    stop: &AtomicBool,
) -> Result<()> {
    let cache = kiln_core::cache_dir().map(|d| d.join("aot"));
    let settings = kiln_aot::Settings::default();
    // One target at a time (each compile already spreads its functions over
    // every core), each handed on as soon as it is written, so the first is
    // being uploaded while the next compiles.
    for &target in &plan.targets {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let artifact = kiln_aot::compile(wasm, target, &plan.cpu, &settings, cache.as_deref())
            .with_context(|| format!("failed to precompile for {target}"))?;
        crate::ops::write_precompiled(dir, stem, target, &artifact, events)?;
        if done.send(artifact).is_err() {
            // The pipeline stopped on an error of its own; it reports that.
            break;
        }
    }
    Ok(())
}
