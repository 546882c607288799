//! Points a C command's `cabi_realloc` export past the wrapper wasm-ld puts around it, so the adapter's allocations run no constructors or destructors.
//!
//! wasm-ld wraps every function a command exports in one that calls
//! `__wasm_call_ctors`, the function, then `__wasm_call_dtors`, unless an
//! input calls the constructors itself. Debian's wasi-libc (2022) has a
//! `crt1-command.o` that leaves that to the wrappers, so the exported
//! `cabi_realloc` is wrapped too: the preview1 adapter allocates its state
//! through it on the program's first WASI call, which runs the program's
//! constructors a second time and its destructors and `atexit` handlers in
//! the middle of the program (a C++ program's iostreams are torn down and
//! it traps). Newer wasi-libc calls the constructors from `_start` and
//! wasm-ld wraps nothing; then this rewrite finds no wrapper and changes
//! nothing.
//!
//! The export is repointed at the function the wrapper calls; the wrapper
//! stays in the module, unused. Only the export section changes, and every
//! index stays valid.

use anyhow::{Context, Result};
use wasmparser::{BinaryReader, ExternalKind, FuncType, Operator, Parser, Payload};

const NAME: &str = "cabi_realloc";

/// Returns the module with its `cabi_realloc` export pointing at the
/// function inside wasm-ld's command-export wrapper, or unchanged when the
/// export is not such a wrapper (or there is none).
pub(crate) fn unwrap_cabi_realloc(module: &[u8]) -> Result<Vec<u8>> {
    let mut types: Vec<Option<FuncType>> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut exported = None;
    let mut bodies = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.context("failed to parse the core module")? {
            Payload::TypeSection(r) => {
                for ty in r.into_iter_err_on_gc_types() {
                    types.push(Some(ty?));
                }
            }
            Payload::ImportSection(r) => {
                for import in r.into_imports() {
                    match import?.ty {
                        wasmparser::TypeRef::Func(t) | wasmparser::TypeRef::FuncExact(t) => {
                            func_types.push(t)
                        }
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for t in r {
                    func_types.push(t?);
                }
            }
            Payload::ExportSection(r) => {
                for export in r {
                    let export = export?;
                    if export.name == NAME && export.kind == ExternalKind::Func {
                        exported = Some(export.index);
                    }
                }
            }
            Payload::CodeSectionEntry(body) => bodies.push(body),
            _ => {}
        }
    }
    let Some(wrapper) = exported else {
        return Ok(module.to_vec());
    };
    let imported = func_types.len() - bodies.len();
    let Some(body) = (wrapper as usize)
        .checked_sub(imported)
        .and_then(|i| bodies.get(i))
    else {
        return Ok(module.to_vec());
    };
    let type_of = |f: u32| {
        func_types
            .get(f as usize)
            .and_then(|t| types.get(*t as usize))
            .and_then(Option::as_ref)
    };
    let Some(inner) = wrapped_call(body, |f| {
        type_of(f).is_some_and(|t| t.params().is_empty() && t.results().is_empty())
    })?
    else {
        return Ok(module.to_vec());
    };
    if type_of(inner).is_none() || type_of(inner) != type_of(wrapper) {
        return Ok(module.to_vec());
    }
    repoint_export(module, inner)
}

/// The function a command-export wrapper calls: the body is `call ctors`,
/// the parameters in order, `call inner`, `call dtors` (either outer call
/// may be missing, not both), with no locals; `void_fn` tells whether an
/// outer call's target takes and returns nothing, as both hooks do.
fn wrapped_call(
    body: &wasmparser::FunctionBody<'_>,
    void_fn: impl Fn(u32) -> bool,
) -> Result<Option<u32>> {
    if body.get_locals_reader()?.get_count() != 0 {
        return Ok(None);
    }
    let mut ops = Vec::new();
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        ops.push(reader.read()?);
        if ops.len() > 16 {
            return Ok(None);
        }
    }
    let mut rest = &ops[..];
    let mut hooks = 0;
    if let [Operator::Call { function_index }, tail @ ..] = rest
        && let [Operator::LocalGet { .. }, ..] = tail
        && void_fn(*function_index)
    {
        hooks += 1;
        rest = tail;
    }
    let mut next_param = 0;
    while let [Operator::LocalGet { local_index }, tail @ ..] = rest {
        if *local_index != next_param {
            return Ok(None);
        }
        next_param += 1;
        rest = tail;
    }
    let [
        Operator::Call {
            function_index: inner,
        },
        tail @ ..,
    ] = rest
    else {
        return Ok(None);
    };
    rest = tail;
    if let [Operator::Call { function_index }, tail @ ..] = rest
        && void_fn(*function_index)
    {
        hooks += 1;
        rest = tail;
    }
    Ok((hooks > 0 && next_param == 4 && matches!(rest, [Operator::End])).then_some(*inner))
}

/// The module with the `cabi_realloc` function export's index replaced;
/// every other byte of every other section is copied.
fn repoint_export(module: &[u8], inner: u32) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(module.len() + 4);
    out.extend_from_slice(&module[..8]);
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload?;
        let Some((id, range)) = payload.as_section() else {
            continue;
        };
        let contents = &module[range.clone()];
        let contents = if id == 7 {
            patched_exports(contents, inner)?
        } else {
            contents.to_vec()
        };
        out.push(id);
        out.extend(crate::leb::unsigned(contents.len() as u32));
        out.extend(contents);
    }
    Ok(out)
}

/// The export section's contents with the `cabi_realloc` function
/// export's index set to `inner`.
fn patched_exports(contents: &[u8], inner: u32) -> Result<Vec<u8>> {
    let mut reader = BinaryReader::new(contents, 0);
    let count = reader.read_var_u32()?;
    for _ in 0..count {
        let name = reader.read_string()?;
        let kind = reader.read_u8()?;
        let start = reader.original_position();
        reader.read_var_u32()?;
        let end = reader.original_position();
        if name == NAME && kind == 0x00 {
            let mut out = contents[..start].to_vec();
            out.extend(crate::leb::unsigned(inner));
            out.extend_from_slice(&contents[end..]);
            return Ok(out);
        }
    }
    Ok(contents.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command as wasm-ld links it against Debian's wasi-libc: the
    /// exported `cabi_realloc` is a wrapper around the real one.
    const WRAPPED: &str = r#"(module
      (type $v (func))
      (type $r (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func $ctors (type $v))
      (func $dtors (type $v))
      (func $start (type $v))
      (func $realloc (type $r) (local.get 3))
      (func $start.command_export (type $v) (call $ctors) (call $start) (call $dtors))
      (func $realloc.command_export (type $r)
        (call $ctors) (local.get 0) (local.get 1) (local.get 2) (local.get 3)
        (call $realloc) (call $dtors))
      (export "_start" (func $start.command_export))
      (export "cabi_realloc" (func $realloc.command_export)))"#;

    fn export_index(module: &[u8], name: &str) -> u32 {
        for payload in Parser::new(0).parse_all(module) {
            if let Payload::ExportSection(r) = payload.unwrap() {
                for e in r {
                    let e = e.unwrap();
                    if e.name == name {
                        return e.index;
                    }
                }
            }
        }
        panic!("no export {name}");
    }

    #[test]
    fn the_wrapped_allocator_is_exported_directly() {
        let module = wat::parse_str(WRAPPED).unwrap();
        let out = unwrap_cabi_realloc(&module).unwrap();
        wasmparser::validate(&out).unwrap();
        // Imports come first: $realloc is function 4.
        assert_eq!(export_index(&out, "cabi_realloc"), 4);
        assert_eq!(export_index(&out, "_start"), 5);
        assert_eq!(out.len(), module.len());
    }

    #[test]
    fn anything_but_a_wrapper_is_left_alone() {
        let plain = WRAPPED.replace(
            r#"(export "cabi_realloc" (func $realloc.command_export))"#,
            r#"(export "cabi_realloc" (func $realloc))"#,
        );
        let module = wat::parse_str(&plain).unwrap();
        assert_eq!(unwrap_cabi_realloc(&module).unwrap(), module);
        // Arguments reordered: not the linker's wrapper.
        let reordered = WRAPPED.replace(
            "(local.get 0) (local.get 1) (local.get 2) (local.get 3)",
            "(local.get 1) (local.get 0) (local.get 2) (local.get 3)",
        );
        let module = wat::parse_str(&reordered).unwrap();
        assert_eq!(unwrap_cabi_realloc(&module).unwrap(), module);
        let none = wat::parse_str("(module)").unwrap();
        assert_eq!(unwrap_cabi_realloc(&none).unwrap(), none);
    }
}
