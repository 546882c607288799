//! Embedding a WIT world into a core module whose toolchain cannot do it itself (Go).
//!
//! The module is first checked to be able to implement the world.

use anyhow::{Context, Result, bail};
use wit_parser::{Resolve, Type, WorldId, WorldItem};

/// Checks that every function the world imports or exports uses only types
/// that pass through core wasm unchanged (integers, floats, bools, chars)
/// and returns at most one value. Toolchains without a canonical ABI
/// generator (Go's `//go:wasmexport`) can implement only such worlds; any
/// other world would produce a component that traps or fails to link.
pub fn check_scalar_world(resolve: &Resolve, world: WorldId) -> Result<()> {
    let w = &resolve.worlds[world];
    let mut problems = Vec::new();
    for (direction, items) in [("imports", &w.imports), ("exports", &w.exports)] {
        for (key, item) in items {
            let name = resolve.name_world_key(key);
            let funcs: Vec<&wit_parser::Function> = match item {
                WorldItem::Function(f) => vec![f],
                WorldItem::Interface { id, .. } => {
                    let iface = &resolve.interfaces[*id];
                    if !iface.types.is_empty() && direction == "exports" {
                        problems.push(format!("{direction} `{name}` declares types"));
                    }
                    iface.functions.values().collect()
                }
                WorldItem::Type { .. } => {
                    problems.push(format!("{direction} type `{name}`"));
                    continue;
                }
            };
            for f in funcs {
                let bad: Vec<String> = f
                    .params
                    .iter()
                    .map(|p| (p.name.as_str(), &p.ty))
                    .chain(f.result.as_ref().map(|t| ("result", t)))
                    .filter(|(_, ty)| !is_scalar(ty))
                    .map(|(n, _)| format!("`{n}`"))
                    .collect();
                if !bad.is_empty() {
                    problems.push(format!(
                        "`{}` in {direction} `{name}` uses non-scalar types for {}",
                        f.name,
                        bad.join(", ")
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "this world needs types the toolchain cannot pass through core wasm (only integers, floats, bools and chars can): {}",
            problems.join("; ")
        );
    }
    Ok(())
}

fn is_scalar(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Bool
            | Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::S8
            | Type::S16
            | Type::S32
            | Type::S64
            | Type::F32
            | Type::F64
            | Type::Char
    )
}

/// Embeds `world` into the core module's `component-type` section so that
/// componentizing exports and imports what the world declares.
pub fn embed_world(module: &[u8], resolve: &Resolve, world: WorldId) -> Result<Vec<u8>> {
    let mut out = module.to_vec();
    wit_component::embed_component_metadata(
        &mut out,
        resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .context("failed to embed the WIT world into the core module")?;
    Ok(out)
}
