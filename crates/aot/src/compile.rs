//! Compiling a module or component for one target with settings recorded in a descriptor, through a content-addressed cache.

use anyhow::{Context, Result, bail};
use kiln_core::{Digest, WasmKind, hinted};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::hash::{Hash, Hasher};
use std::path::Path;

/// The Wasmtime release kiln compiles with; artifacts load only in it.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Targets kiln compiles for: the Linux architectures Cranelift supports
/// and Wasmtime's portable Pulley bytecode.
pub const TARGETS: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "riscv64gc-unknown-linux-gnu",
    "s390x-unknown-linux-gnu",
    "pulley64",
    "pulley32",
];

/// The triple of the machine kiln runs on.
pub fn host_triple() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "x86_64-unknown-linux-gnu"
    } else if cfg!(target_arch = "aarch64") {
        "aarch64-unknown-linux-gnu"
    } else if cfg!(target_arch = "riscv64") {
        "riscv64gc-unknown-linux-gnu"
    } else if cfg!(target_arch = "s390x") {
        "s390x-unknown-linux-gnu"
    } else {
        "pulley64"
    }
}

/// Which CPU features the code may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cpu {
    /// The target's baseline: loads on every CPU of that architecture.
    Baseline,
    /// Whatever the build machine's CPU has (host target only).
    Native,
}

/// Cranelift's optimization level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptLevel {
    /// No optimizations.
    None,
    /// Optimize for speed (Wasmtime's default).
    Speed,
    /// Optimize for speed and size.
    SpeedAndSize,
}

/// Engine settings that decide whether an artifact loads in a given engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Cranelift's optimization level.
    pub opt_level: OptLevel,
    /// Bytes of virtual memory reserved per linear memory; `None` is
    /// Wasmtime's default for the target.
    pub memory_reservation: Option<u64>,
    /// Bytes of guard region after each linear memory; `None` is the default.
    pub memory_guard_size: Option<u64>,
    /// Epoch-based interruption compiled in.
    pub epoch_interruption: bool,
    /// Fuel metering compiled in.
    pub fuel: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            opt_level: OptLevel::Speed,
            memory_reservation: None,
            memory_guard_size: None,
            epoch_interruption: false,
            fuel: false,
        }
    }
}

/// What an artifact was made from and with; written beside it as
/// `<artifact>.json` (docs/aot.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// `kiln-cwasm/1`.
    pub format: String,
    /// Component or core module.
    pub kind: WasmKind,
    /// sha256 of the wasm it was compiled from.
    pub source_digest: String,
    /// sha256 of the artifact.
    pub artifact_digest: String,
    /// Size of the artifact in bytes.
    pub artifact_size: u64,
    /// The Wasmtime release that made it.
    pub wasmtime_version: String,
    /// The target triple.
    pub target: String,
    /// The CPU feature mode.
    pub cpu: Cpu,
    /// Engine settings.
    pub settings: Settings,
    /// sha256 of Wasmtime's precompile compatibility hash for the engine
    /// that made it: an engine with the same value loads it.
    pub compatibility_hash: String,
}

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
pub fn engine_config(target: &str, cpu: &Cpu, settings: &Settings) -> Result<wasmtime::Config> {
    if !TARGETS.contains(&target) {
        return Err(hinted(
            format!("`{target}` is not a target kiln compiles for"),
            format!("use one of: {}, or `all`", TARGETS.join(", ")),
        ));
    }
    let mut config = wasmtime::Config::new();
    match cpu {
        Cpu::Baseline => {
            config
                .target(target)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("wasmtime cannot compile for `{target}`"))?;
        }
        Cpu::Native => {
            if target != host_triple() {
                bail!(
                    "`--cpu native` applies only to the host target `{}`",
                    host_triple()
                );
            }
        }
    }
    config.cranelift_opt_level(match settings.opt_level {
        OptLevel::None => wasmtime::OptLevel::None,
        OptLevel::Speed => wasmtime::OptLevel::Speed,
        OptLevel::SpeedAndSize => wasmtime::OptLevel::SpeedAndSize,
    });
    if let Some(r) = settings.memory_reservation {
        config.memory_reservation(r);
    }
    if let Some(g) = settings.memory_guard_size {
        config.memory_guard_size(g);
    }
    config.epoch_interruption(settings.epoch_interruption);
    config.consume_fuel(settings.fuel);
    Ok(config)
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
    let config = engine_config(host_triple(), cpu, settings)?;
    let engine = wasmtime::Engine::new(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(compatibility_hash(&engine))
}

fn cache_key(source: &Digest, target: &str, cpu: &Cpu, settings: &Settings) -> Result<String> {
    let text =
        serde_json::to_string(&(source.to_string(), WASMTIME_VERSION, target, cpu, settings))?;
    Ok(Digest::of(text.as_bytes()).hex())
}

/// Compiles `wasm` for `target`, or copies the result of an identical
/// earlier compile from `cache` (a directory) when given.
pub fn compile(
    wasm: &[u8],
    target: &str,
    cpu: &Cpu,
    settings: &Settings,
    cache: Option<&Path>,
) -> Result<Artifact> {
    let kind = WasmKind::sniff(wasm).context("the input is not a wasm module or component")?;
    let source = Digest::of(wasm);
    let key = cache_key(&source, target, cpu, settings)?;
    if let Some(dir) = cache
        && let Ok(bytes) = std::fs::read(dir.join(format!("{key}.cwasm")))
        && let Ok(json) = std::fs::read(dir.join(format!("{key}.json")))
        && let Ok(descriptor) = serde_json::from_slice::<Descriptor>(&json)
        && descriptor.artifact_digest == Digest::of(&bytes).to_string()
    {
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
    let descriptor = Descriptor {
        format: "kiln-cwasm/1".to_string(),
        kind,
        source_digest: source.to_string(),
        artifact_digest: Digest::of(&bytes).to_string(),
        artifact_size: bytes.len() as u64,
        wasmtime_version: WASMTIME_VERSION.to_string(),
        target: target.to_string(),
        cpu: cpu.clone(),
        settings: settings.clone(),
        compatibility_hash: compatibility_hash(&engine),
    };
    if let Some(dir) = cache {
        // A cache that cannot be written costs only time.
        let _ = kiln_core::fs::write_atomic(&dir.join(format!("{key}.cwasm")), &bytes);
        if let Ok(json) = serde_json::to_vec_pretty(&descriptor) {
            let _ = kiln_core::fs::write_atomic(&dir.join(format!("{key}.json")), &json);
        }
    }
    Ok(Artifact {
        bytes,
        descriptor,
        cached: false,
    })
}
