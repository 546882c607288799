//! Fuzz targets for the wasm readers: inspect, validate, audit facts, WIT text.

use arbitrary::{Arbitrary, Unstructured};
use kiln_core::Invalid;
use std::sync::LazyLock;
use wasmparser::{Parser, Payload, Validator, WasmFeatures};

/// Arbitrary bytes through every reader `kiln inspect`, `validate` and
/// `audit` use. Oracles: kiln's validator (bodies in parallel) gives the
/// same verdict as wasmparser's sequential one and never reports its own
/// internal error; a binary it accepts is one `inspect`, `surface` and
/// `read_facts` can read.
pub fn wasm(data: &[u8]) {
    check_readers(data);
}

/// A core module wasm-smith generates from the bytes, with a random set of
/// proposals and the WASI preview1 functions available to import, through
/// the readers as [`wasm`]. Oracles as there, and: every core import the
/// module declares is in the audit facts, and each `wasi_snapshot_preview1`
/// one is either judged as WASI 0.2 interfaces or reported as unknown.
pub fn wasm_smith(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(mut config) = wasm_smith::Config::arbitrary(&mut u) else {
        return;
    };
    config.available_imports = Some(PREVIEW1_IMPORTS.clone());
    config.max_funcs = config.max_funcs.min(64);
    config.max_instructions = config.max_instructions.min(512);
    let Ok(module) = wasm_smith::Module::new(config, &mut u) else {
        return;
    };
    let bytes = module.to_bytes();
    let Some(Readings { facts, .. }) = check_readers(&bytes) else {
        return;
    };
    let mut declared = Vec::new();
    for payload in Parser::new(0).parse_all(&bytes) {
        if let Ok(Payload::ImportSection(reader)) = payload {
            for import in reader.into_imports() {
                let import = import.unwrap();
                declared.push(format!("{}::{}", import.module, import.name));
            }
        }
    }
    for name in &declared {
        assert!(
            facts.core_imports.contains(name),
            "core import `{name}` missing from the audit facts {:?}",
            facts.core_imports
        );
        if let Some(function) = name.strip_prefix("wasi_snapshot_preview1::") {
            // A function the adapter implements without any WASI 0.2
            // interface (`sched_yield`, `proc_raise`) derives nothing.
            let needs_nothing =
                kiln_inspect::audit::preview1::interfaces("wasi_snapshot_preview1", function)
                    .is_some_and(<[_]>::is_empty);
            let derived = facts.derived_from.values().any(|from| from.contains(name));
            assert!(
                needs_nothing || derived || facts.host_specific.contains(name),
                "preview1 import `{name}` neither judged nor reported: {facts:?}"
            );
        }
    }
}

/// A WIT package wit-smith generates from the bytes, each of its worlds
/// made into a component the way `kiln build` makes one (a core module
/// with the world embedded, through wit-component's encoder). Oracles: the
/// readers agree with wasmparser on whether it is valid (a world may use
/// component-model features kiln does not enable); a valid one has a world
/// `inspect` reads, audit facts naming what its sections import and
/// export, and WIT text that parses again.
pub fn component(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(config) = wit_smith::Config::arbitrary(&mut u) else {
        return;
    };
    let Ok(package) = wit_smith::smith(&config, &mut u) else {
        return;
    };
    let Ok(wit_component::DecodedWasm::WitPackage(resolve, _)) = wit_component::decode(&package)
    else {
        panic!("wit-smith's package does not decode");
    };
    for (world, _) in resolve.worlds.iter() {
        let mut module =
            wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
        )
        .unwrap();
        let Ok(bytes) = wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|e| e.validate(true).encode())
        else {
            // Worlds wit-component cannot encode (wit-smith explores more
            // than components can hold) are not kiln's to read.
            continue;
        };
        // Worlds using component-model features wasmparser does not enable
        // by default (async, streams, `implements`) are refused by kiln as
        // by wasmparser; the readers must agree on that and read the rest.
        let Some(Readings {
            report,
            facts,
            surface,
            wit,
        }) = check_readers(&bytes)
        else {
            continue;
        };
        assert!(
            report.world_error.is_none(),
            "inspect could not read the world: {:?}",
            report.world_error
        );
        let surface = surface.unwrap();
        assert_eq!(
            facts.imports, surface.imports,
            "facts and surface disagree on imports"
        );
        assert_eq!(
            facts.exports, surface.exports,
            "facts and surface disagree on exports"
        );
        let text = wit.unwrap();
        let mut reparsed = wit_parser::Resolve {
            all_features: true,
            ..Default::default()
        };
        if let Err(e) = reparsed.push_str("fuzz.wit", &text) {
            panic!("kiln's WIT text does not parse again: {e:#}\n{text}");
        }
    }
}

/// What the readers made of a binary kiln's validator accepted; the
/// section reader and WIT text may still refuse one (a core module has no
/// WIT text).
struct Readings {
    report: kiln_inspect::Report,
    facts: kiln_inspect::audit::AuditFacts,
    surface: anyhow::Result<kiln_inspect::Surface>,
    wit: anyhow::Result<String>,
}

/// Runs every wasm reader over `bytes` and checks they agree; returns what
/// they read when the bytes are a valid binary.
fn check_readers(bytes: &[u8]) -> Option<Readings> {
    let kiln = kiln_component::validate(bytes);
    let sequential = Validator::new_with_features(WasmFeatures::default())
        .validate_all(bytes)
        .map(|_| ());
    if let Err(Invalid { message, .. }) = &kiln {
        assert!(
            !message.contains("internal error"),
            "kiln's validator failed itself: {message}"
        );
    }
    assert_eq!(
        kiln.is_ok(),
        sequential.is_ok(),
        "kiln's validator says {kiln:?}, wasmparser's says {sequential:?}"
    );
    let inspected = kiln_inspect::inspect(bytes);
    let facts = kiln_inspect::audit::read_facts("fuzz.wasm", bytes);
    let surface = kiln_inspect::surface(bytes);
    let wit = kiln_inspect::wit_text(bytes);
    if kiln.is_err() {
        return None;
    }
    let report = inspected.unwrap_or_else(|e| panic!("inspect refuses a valid binary: {e:#}"));
    let facts = facts.unwrap_or_else(|e| panic!("audit refuses a valid binary: {e:#}"));
    // What `kiln build` and `push` do to a binary they are handed:
    // embed package metadata, and the result must still be valid.
    let meta = kiln_core::PackageMetadata {
        name: Some("fuzz".to_string()),
        version: Some("1.0.0".to_string()),
        ..Default::default()
    };
    if let Ok((embedded, _)) = kiln_component::embed_metadata(bytes, &meta, None)
        && let Err(e) = kiln_component::validate(&embedded)
    {
        panic!("embedding metadata made a valid binary invalid: {e}");
    }
    Some(Readings {
        report,
        facts,
        surface,
        wit,
    })
}

/// A module of preview1 functions for wasm-smith to import from, with
/// their real signatures, so generated modules look like wasip1 programs.
/// Parsed once, not on every input.
static PREVIEW1_IMPORTS: LazyLock<Vec<u8>> = LazyLock::new(|| {
    wat::parse_str(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_read" (func (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_close" (func (param i32) (result i32)))
          (import "wasi_snapshot_preview1" "args_get" (func (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "environ_get" (func (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
          (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
          (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "path_open"
            (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
          (import "wasi_snapshot_preview1" "no_such_function" (func (param i32) (result i32)))
          (import "env" "host_thing" (func (param i32)))
        )"#,
    )
    .unwrap()
});
