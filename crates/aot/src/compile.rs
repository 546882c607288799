//! Compiling a module or component for one target, through a content-addressed cache.
//!
//! The settings it is compiled with are recorded in a descriptor.

use crate::cpu::Cpu;
use crate::descriptor::{Descriptor, WASMTIME_VERSION};
use crate::settings::Settings;
use anyhow::{Context, Result, bail};
use kiln_core::{Digest, Target, WasmKind};
use sha2::Digest as _;
use std::hash::{Hash, Hasher};
use std::path::Path;

/// A compiled artifact and its descriptor.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The `.cwasm` bytes.
    pub bytes: Vec<u8>,
    /// What it was made with.
    pub descriptor: Descriptor,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// The Wasmtime configuration for a target, CPU mode and settings. The
/// target is always set explicitly for `baseline`, which makes Cranelift
/// use that architecture's baseline features instead of probing the build
/// machine's CPU.
pub fn engine_config(target: Target, cpu: &Cpu, settings: &Settings) -> Result<wasmtime::Config> {
    let mut config = wasmtime::Config::new();
    match cpu {
        Cpu::Native => {
            if target != Target::host() {
                bail!(
                    "`--cpu native` applies only to the host target `{}`",
                    Target::host()
                );
            }
        }
        Cpu::Baseline | Cpu::Named(_) => {
            config
                .target(target.as_str())
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("wasmtime cannot compile for `{target}`"))?;
        }
    }
    for name in cpu.cranelift_names(target)? {
        enable_cranelift_setting(&mut config, &name);
    }
    settings.apply(&mut config)?;
    Ok(config)
}

/// Turns on a Cranelift ISA preset or feature flag, by a name
/// [`Cpu::cranelift_names`] has checked against the target's settings.
#[allow(unsafe_code)]
fn enable_cranelift_setting(config: &mut wasmtime::Config, name: &str) {
    // SAFETY: Wasmtime marks raw Cranelift flags unsafe because a wrong one
    // could miscompile code that then runs. These are only the target ISA's
    // CPU feature flags and presets; code using them runs only where
    // Wasmtime's load-time check finds the features on the host CPU.
    unsafe {
        config.cranelift_flag_enable(name);
    }
}

/// Feeds `Hash` output into sha256, for a digest that is the same in every
/// run of the same kiln build.
struct ShaHasher(sha2::Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn compatibility_hash(engine: &wasmtime::Engine) -> String {
    let mut h = ShaHasher(sha2::Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(h.0.finalize())
}

/// The compatibility hash of the engine `Settings` describe for this host
/// with the given CPU mode, for load checks.
pub(crate) fn host_compatibility_hash(cpu: &Cpu, settings: &Settings) -> Result<String> {
    let config = engine_config(Target::host(), cpu, settings)?;
    let engine = wasmtime::Engine::new(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(compatibility_hash(&engine))
}

fn cache_key(
    source: &Digest,
    target: Target,
    cpu_features: &[String],
    settings: &Settings,
) -> Result<String> {
    let text = serde_json::to_string(&(
        source.to_string(),
        WASMTIME_VERSION,
        target,
        cpu_features,
        settings,
    ))?;
    Ok(Digest::of(text.as_bytes()).hex())
}

/// An entry of the compile cache: `<key>.cwasm` and its descriptor
/// `<key>.json` in the cache directory. The cache is shared by every kiln
/// process of the user, so an entry is read and written under the cache's
/// lock (a reader never sees a half-replaced pair), and it is used only if
/// its descriptor says it was made from the same input, for the same
/// target and CPU, by the same Wasmtime with the same settings: anything
/// else under the key is a miss and is replaced.
struct CacheEntry<'a> {
    dir: &'a Path,
    key: String,
}

/// What a compile is asked for: everything its descriptor records but
/// what the compile itself yields (the artifact's digest and size, and the
/// engine's compatibility hash).
struct Request {
    kind: WasmKind,
    source: Digest,
    target: Target,
    cpu: Cpu,
    cpu_features: Vec<String>,
    settings: Settings,
}

impl Request {
    /// The descriptor of `bytes`, compiled as asked by an engine with
    /// `compatibility_hash`.
    fn describe(&self, bytes: &[u8], compatibility_hash: String) -> Descriptor {
        Descriptor {
            format: FORMAT.to_string(),
            kind: self.kind,
            source_digest: self.source,
            artifact_digest: Digest::of(bytes),
            artifact_size: bytes.len() as u64,
            wasmtime_version: WASMTIME_VERSION.to_string(),
            target: self.target,
            cpu: self.cpu.clone(),
            cpu_features: self.cpu_features.clone(),
            settings: self.settings.clone(),
            compatibility_hash,
        }
    }
}

/// The descriptor format kiln writes.
const FORMAT: &str = "kiln-cwasm/1";

impl CacheEntry<'_> {
    fn lock(&self) -> Result<kiln_core::lock::LockGuard> {
        kiln_core::lock::lock(&self.dir.join(kiln_core::fs::LOCK_FILE))
    }

    /// The entry, when it holds what `wanted` asks for.
    fn read(&self, wanted: &Request) -> Option<(Vec<u8>, Descriptor)> {
        let _lock = self.lock().ok()?;
        let json = std::fs::read(self.dir.join(format!("{}.json", self.key))).ok()?;
        let descriptor = Descriptor::parse(&json).ok()?;
        if !descriptor.answers(wanted) {
            return None;
        }
        let path = self.dir.join(format!("{}.cwasm", self.key));
        // Sized before it is read: a wrong size is a miss, not a large read.
        if std::fs::metadata(&path).ok()?.len() != descriptor.artifact_size {
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        (descriptor.artifact_size == bytes.len() as u64
            && descriptor.artifact_digest == Digest::of(&bytes))
        .then_some((bytes, descriptor))
    }

    /// Stores an artifact, unless another process stored a good one for
    /// the same request meanwhile. A cache that cannot be written costs only
    /// time, so failures are ignored.
    fn write(&self, bytes: &[u8], descriptor: &Descriptor, wanted: &Request) {
        let Ok(_lock) = self.lock() else {
            return;
        };
        if self.read(wanted).is_some() {
            return;
        }
        kiln_core::fs::clean_stale(self.dir);
        let Ok(json) = serde_json::to_vec_pretty(descriptor) else {
            return;
        };
        // The descriptor goes last: until it is in place, the old one no
        // longer matches the new artifact's digest, so the entry is a miss.
        if kiln_core::fs::write_atomic(&self.dir.join(format!("{}.cwasm", self.key)), bytes).is_ok()
        {
            let _ =
                kiln_core::fs::write_atomic(&self.dir.join(format!("{}.json", self.key)), &json);
        }
    }
}

impl Descriptor {
    /// Whether an artifact with this descriptor is what `wanted` asks for:
    /// the same format, input, kind, Wasmtime release, target, CPU and
    /// settings.
    fn answers(&self, wanted: &Request) -> bool {
        self.format == FORMAT
            && self.kind == wanted.kind
            && self.source_digest == wanted.source
            && self.wasmtime_version == WASMTIME_VERSION
            && self.target == wanted.target
            && self.cpu == wanted.cpu
            && self.cpu_features == wanted.cpu_features
            && self.settings == wanted.settings
    }
}

/// Compiles `wasm` for `target`, or copies the result of an identical
/// earlier compile from `cache` (a directory) when given.
pub fn compile(
    wasm: &[u8],
    target: Target,
    cpu: &Cpu,
    settings: &Settings,
    cache: Option<&Path>,
) -> Result<Artifact> {
    let kind = WasmKind::sniff(wasm).context("the input is not a wasm module or component")?;
    let source = Digest::of(wasm);
    // The cache is keyed by the expanded features, not their spelling:
    // `native` on another CPU, or a preset and its flags, are told apart.
    let cpu_features = cpu.features(target)?;
    let key = cache_key(&source, target, &cpu_features, settings)?;
    let wanted = Request {
        kind,
        source,
        target,
        cpu: cpu.clone(),
        cpu_features,
        settings: settings.clone(),
    };
    let entry = cache.map(|dir| CacheEntry { dir, key });
    if let Some((bytes, descriptor)) = entry.as_ref().and_then(|e| e.read(&wanted)) {
        return Ok(Artifact {
            bytes,
            descriptor,
            cached: true,
        });
    }
    let config = engine_config(target, cpu, settings)?;
    let engine = wasmtime::Engine::new(&config)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("failed to set up wasmtime for `{target}`"))?;
    let bytes = match kind {
        WasmKind::Component => engine.precompile_component(wasm),
        WasmKind::CoreModule => engine.precompile_module(wasm),
    }
    .map_err(|e| anyhow::anyhow!("{e:?}"))
    .with_context(|| format!("failed to compile for `{target}`"))?;
    let descriptor = wanted.describe(&bytes, compatibility_hash(&engine));
    if let Some(entry) = &entry {
        entry.write(&bytes, &descriptor, &wanted);
    }
    Ok(Artifact {
        bytes,
        descriptor,
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn wasmtime_version_is_the_one_cargo_lock_pins() {
        // Cargo.lock, not Cargo.toml's requirement: the release that is
        // really linked in (`kiln-component` ties its adapter to it too).
        let lock = include_str!("../../../Cargo.lock");
        let entry = "[[package]]\nname = \"wasmtime\"\nversion = \"";
        let versions: Vec<&str> = lock
            .match_indices(entry)
            .filter_map(|(at, _)| lock[at + entry.len()..].split('"').next())
            .collect();
        assert_eq!(versions, [WASMTIME_VERSION], "update WASMTIME_VERSION");
    }

    /// A directory of its own under the system's temporary directory
    /// (this crate has no tempfile), removed when dropped.
    struct TestDir(std::path::PathBuf);

    impl TestDir {
        fn new(name: &str) -> TestDir {
            let dir = std::env::temp_dir().join(format!(
                "kiln-aot-{name}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TestDir(dir)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn entry_files(dir: &Path, wasm: &[u8], target: &str) -> (PathBuf, PathBuf) {
        let target = Target::parse(target).unwrap();
        let features = Cpu::Baseline.features(target).unwrap();
        let key = cache_key(&Digest::of(wasm), target, &features, &Settings::default()).unwrap();
        (
            dir.join(format!("{key}.cwasm")),
            dir.join(format!("{key}.json")),
        )
    }

    /// Puts what the cache holds for (`from`, `from_target`) under the key
    /// of (`to`, `to_target`).
    fn poison(dir: &Path, from: (&[u8], &str), to: (&[u8], &str)) {
        let (cwasm, json) = entry_files(dir, from.0, from.1);
        let (to_cwasm, to_json) = entry_files(dir, to.0, to.1);
        std::fs::copy(cwasm, to_cwasm).unwrap();
        std::fs::copy(json, to_json).unwrap();
    }

    #[test]
    fn a_cache_entry_made_for_another_request_is_a_miss() {
        let dir = TestDir::new("cache");
        let cache = Some(dir.0.as_path());
        let a = wat::parse_str(r#"(module (func (export "a") (result i32) i32.const 1))"#).unwrap();
        let b = wat::parse_str(r#"(module (func (export "b") (result i32) i32.const 2))"#).unwrap();
        let settings = Settings::default();
        let compile = |wasm: &[u8], target: &str| {
            let target = Target::parse(target).unwrap();
            compile(wasm, target, &Cpu::Baseline, &settings, cache).unwrap()
        };
        let first = compile(&a, "pulley64");
        assert!(!first.cached);
        assert!(compile(&a, "pulley64").cached);
        compile(&b, "pulley64");
        compile(&a, "pulley32");

        // Another input's artifact and descriptor under `a`'s key: its
        // digests agree with each other, but it was not made from `a`.
        poison(&dir.0, (&b, "pulley64"), (&a, "pulley64"));
        let again = compile(&a, "pulley64");
        assert!(!again.cached, "another input's artifact was used");
        assert_eq!(again.descriptor.source_digest, Digest::of(&a));
        assert_eq!(again.bytes, first.bytes);
        // The entry was replaced with the right one.
        let hit = compile(&a, "pulley64");
        assert!(hit.cached);
        assert_eq!(hit.bytes, first.bytes);

        // The same input compiled for another target.
        poison(&dir.0, (&a, "pulley32"), (&a, "pulley64"));
        let again = compile(&a, "pulley64");
        assert!(!again.cached, "another target's artifact was used");
        assert_eq!(again.descriptor.target.as_str(), "pulley64");
        assert_eq!(again.bytes, first.bytes);

        // Another Wasmtime's or other settings' descriptor for the same input.
        let edits: [fn(&mut Descriptor); 2] = [
            |d| d.wasmtime_version = "47.0.0".to_string(),
            |d| d.settings.fuel = true,
        ];
        for edit in edits {
            let (_, json) = entry_files(&dir.0, &a, "pulley64");
            let mut d: Descriptor = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
            edit(&mut d);
            std::fs::write(&json, serde_json::to_vec(&d).unwrap()).unwrap();
            let again = compile(&a, "pulley64");
            assert!(
                !again.cached,
                "a descriptor for other engine settings was trusted"
            );
            assert_eq!(again.descriptor.wasmtime_version, WASMTIME_VERSION);
            assert_eq!(again.descriptor.settings, settings);
            assert!(compile(&a, "pulley64").cached);
        }
    }
}
