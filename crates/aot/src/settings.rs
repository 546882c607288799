//! Engine settings that decide whether an artifact loads in a given engine.
//!
//! They are the optimization level, memory layout, interruption, fuel and wasm
//! proposals.

#[cfg(feature = "engine")]
use anyhow::{Context, Result};
#[cfg(feature = "engine")]
use kiln_core::hinted;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wasmparser::WasmFeatures;

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
    /// Wasm proposals switched on or off against Wasmtime's defaults, by
    /// name (see [`WASM_FEATURES`]).
    #[serde(default)]
    pub wasm_features: BTreeMap<String, bool>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            opt_level: OptLevel::Speed,
            memory_reservation: None,
            memory_guard_size: None,
            epoch_interruption: false,
            fuel: false,
            wasm_features: BTreeMap::new(),
        }
    }
}

#[cfg(feature = "engine")]
type Switch = fn(&mut wasmtime::Config, bool) -> &mut wasmtime::Config;

/// The wasm proposals `--wasm` can switch, with wasmparser's flag for each
/// and the `wasmtime::Config` method that switches it.
#[cfg(feature = "engine")]
pub const WASM_FEATURES: &[(&str, WasmFeatures, Switch)] = &[
    (
        "bulk-memory",
        WasmFeatures::BULK_MEMORY,
        wasmtime::Config::wasm_bulk_memory,
    ),
    (
        "component-model-async",
        WasmFeatures::CM_ASYNC,
        wasmtime::Config::wasm_component_model_async,
    ),
    (
        "custom-page-sizes",
        WasmFeatures::CUSTOM_PAGE_SIZES,
        wasmtime::Config::wasm_custom_page_sizes,
    ),
    (
        "exceptions",
        WasmFeatures::EXCEPTIONS,
        wasmtime::Config::wasm_exceptions,
    ),
    (
        "extended-const",
        WasmFeatures::EXTENDED_CONST,
        wasmtime::Config::wasm_extended_const,
    ),
    (
        "function-references",
        WasmFeatures::FUNCTION_REFERENCES,
        wasmtime::Config::wasm_function_references,
    ),
    ("gc", WasmFeatures::GC, wasmtime::Config::wasm_gc),
    (
        "memory64",
        WasmFeatures::MEMORY64,
        wasmtime::Config::wasm_memory64,
    ),
    (
        "multi-memory",
        WasmFeatures::MULTI_MEMORY,
        wasmtime::Config::wasm_multi_memory,
    ),
    (
        "multi-value",
        WasmFeatures::MULTI_VALUE,
        wasmtime::Config::wasm_multi_value,
    ),
    (
        "reference-types",
        WasmFeatures::REFERENCE_TYPES,
        wasmtime::Config::wasm_reference_types,
    ),
    (
        "relaxed-simd",
        WasmFeatures::RELAXED_SIMD,
        wasmtime::Config::wasm_relaxed_simd,
    ),
    ("simd", WasmFeatures::SIMD, wasmtime::Config::wasm_simd),
    (
        "stack-switching",
        WasmFeatures::STACK_SWITCHING,
        wasmtime::Config::wasm_stack_switching,
    ),
    (
        "tail-call",
        WasmFeatures::TAIL_CALL,
        wasmtime::Config::wasm_tail_call,
    ),
    (
        "threads",
        WasmFeatures::THREADS,
        wasmtime::Config::wasm_threads,
    ),
    (
        "wide-arithmetic",
        WasmFeatures::WIDE_ARITHMETIC,
        wasmtime::Config::wasm_wide_arithmetic,
    ),
];

/// Whether Wasmtime 48's default engine (its default cargo features) has a
/// proposal on: the wasm 3.0 set plus the component model and its async
/// support.
pub fn default_on(flag: WasmFeatures) -> bool {
    (WasmFeatures::WASM3 | WasmFeatures::COMPONENT_MODEL | WasmFeatures::CM_ASYNC).contains(flag)
}

// The proposals are named by Wasmtime's configuration switches.
#[cfg(feature = "engine")]
impl Settings {
    /// Parses `--wasm` values: comma-separated `NAME`, `NAME=y` or `NAME=n`
    /// (also `yes/no/true/false/on/off`), added to `self.wasm_features`.
    pub fn parse_wasm_features(&mut self, spec: &str) -> Result<()> {
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item.split_once('=').unwrap_or((item, "y"));
            let on = match value.trim() {
                "y" | "yes" | "true" | "on" => true,
                "n" | "no" | "false" | "off" => false,
                other => {
                    return Err(hinted(
                        format!("`{other}` in `--wasm {item}` is not y or n"),
                        "write `--wasm NAME=y` or `--wasm NAME=n`",
                    ));
                }
            };
            let name = name.trim();
            if !WASM_FEATURES.iter().any(|(n, _, _)| *n == name) {
                return Err(hinted(
                    format!("`{name}` is not a wasm proposal kiln can switch"),
                    format!(
                        "use one of: {}",
                        WASM_FEATURES
                            .iter()
                            .map(|(n, _, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            self.wasm_features.insert(name.to_string(), on);
        }
        Ok(())
    }

    /// Applies these settings to a Wasmtime configuration.
    pub(crate) fn apply(&self, config: &mut wasmtime::Config) -> Result<()> {
        config.cranelift_opt_level(match self.opt_level {
            OptLevel::None => wasmtime::OptLevel::None,
            OptLevel::Speed => wasmtime::OptLevel::Speed,
            OptLevel::SpeedAndSize => wasmtime::OptLevel::SpeedAndSize,
        });
        if let Some(r) = self.memory_reservation {
            config.memory_reservation(r);
        }
        if let Some(g) = self.memory_guard_size {
            config.memory_guard_size(g);
        }
        config.epoch_interruption(self.epoch_interruption);
        config.consume_fuel(self.fuel);
        for (name, on) in &self.wasm_features {
            let (_, _, switch) = WASM_FEATURES
                .iter()
                .find(|(n, _, _)| n == name)
                .with_context(|| format!("`{name}` is not a wasm proposal kiln can switch"))?;
            switch(config, *on);
        }
        Ok(())
    }

    /// How these settings differ from the default engine's in ways that
    /// stop an artifact from loading there. Wasm proposals switched off
    /// are fine (the engine accepts code that uses fewer); switched on
    /// where the default engine has them off is not.
    pub fn incompatibilities(&self) -> Vec<String> {
        let default = Settings::default();
        let mut out = Vec::new();
        if self.memory_reservation != default.memory_reservation {
            out.push("memory reservation".to_string());
        }
        if self.memory_guard_size != default.memory_guard_size {
            out.push("memory guard size".to_string());
        }
        if self.epoch_interruption != default.epoch_interruption {
            out.push("epoch interruption".to_string());
        }
        if self.fuel != default.fuel {
            out.push("fuel".to_string());
        }
        for (name, on) in &self.wasm_features {
            let default_is_on = WASM_FEATURES
                .iter()
                .find(|(n, _, _)| n == name)
                .is_some_and(|(_, flag, _)| default_on(*flag));
            if *on && !default_is_on {
                out.push(format!(
                    "wasm proposal `{name}` (off in the default engine)"
                ));
            }
        }
        out
    }
}

#[cfg(all(test, feature = "engine"))]
mod tests {
    use super::*;

    #[test]
    fn parses_wasm_feature_switches() {
        let mut s = Settings::default();
        s.parse_wasm_features("simd=n, wide-arithmetic").unwrap();
        assert_eq!(s.wasm_features.get("simd"), Some(&false));
        assert_eq!(s.wasm_features.get("wide-arithmetic"), Some(&true));
        assert_eq!(
            s.incompatibilities(),
            vec!["wasm proposal `wide-arithmetic` (off in the default engine)".to_string()]
        );
        assert!(s.parse_wasm_features("simd=maybe").is_err());
        let e = s.parse_wasm_features("nope").unwrap_err();
        assert!(e.to_string().contains("`nope`"));
    }

    /// The table's defaults agree with a real default engine: a module
    /// using a proposal validates there exactly when `default_on` says so.
    #[test]
    fn defaults_match_the_engine() {
        let engine = wasmtime::Engine::default();
        let simd = wat::parse_str("(module (func (drop (v128.const i64x2 0 0))))").unwrap();
        assert!(default_on(WasmFeatures::SIMD));
        assert!(wasmtime::Module::validate(&engine, &simd).is_ok());
        let wide = wat::parse_str(
            "(module (func (drop (drop (i64.add128 (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0))))))",
        )
        .unwrap();
        assert!(!default_on(WasmFeatures::WIDE_ARITHMETIC));
        assert!(wasmtime::Module::validate(&engine, &wide).is_err());
    }
}
