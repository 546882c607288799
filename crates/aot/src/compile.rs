//! Compiling a module or component for one target with settings recorded in a descriptor, through a content-addressed cache.

use crate::cpu::Cpu;
use crate::settings::Settings;
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
    /// The CPU selection: `baseline`, `native`, or presets and features.
    pub cpu: Cpu,
    /// The CPU features the code may use (Cranelift's `has_*` names): a
    /// host loads the artifact only if its CPU has every one.
    #[serde(default)]
    pub cpu_features: Vec<String>,
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
        Cpu::Native => {
            if target != host_triple() {
                bail!(
                    "`--cpu native` applies only to the host target `{}`",
                    host_triple()
                );
            }
        }
        Cpu::Baseline | Cpu::Named(_) => {
            config
                .target(target)
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
    let config = engine_config(host_triple(), cpu, settings)?;
    let engine = wasmtime::Engine::new(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(compatibility_hash(&engine))
}

fn cache_key(
    source: &Digest,
    target: &str,
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
    // The cache is keyed by the expanded features, not their spelling:
    // `native` on another CPU, or a preset and its flags, are told apart.
    let cpu_features = cpu.features(target)?;
    let key = cache_key(&source, target, &cpu_features, settings)?;
    if let Some(dir) = cache
        && let Ok(bytes) = std::fs::read(dir.join(format!("{key}.cwasm")))
        && let Ok(json) = std::fs::read(dir.join(format!("{key}.json")))
        && let Ok(descriptor) = serde_json::from_slice::<Descriptor>(&json)
        && descriptor.artifact_digest == Digest::of(&bytes).to_string()
        && descriptor.cpu == *cpu
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
        cpu_features,
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
