//! Gives a Go core module a `cabi_realloc` that allocates from an arena reserved in Go's data.
//!
//! The WASI adapter then never grows memory under Go's runtime.
//!
//! wit-component lets the adapter allocate its state and stack through the
//! main module's `cabi_realloc` when there is one, and through `memory.grow`
//! otherwise. Go's runtime assumes every page above its heap start is its
//! own, so pages the adapter grows get overwritten later; and calling into
//! Go from the adapter (a `//go:wasmexport` allocator) re-enters Go in the
//! middle of a system call, which Go does not support. So kiln adds a small
//! bump allocator written directly in wasm, over a byte array the Go side
//! reserves (see `adapter_arena.go`).
//!
//! The rewrite appends one type, one function, one global and one export to
//! the module's existing sections; every existing index stays valid, so the
//! rest of the module is copied byte for byte.

use anyhow::{Context, Result, bail};
use wasmparser::{BinaryReader, Parser, Payload};

/// The marker at the start of the reserved array.
pub const MARKER: &[u8] = b"KILN-ADAPTER-ARENA-4c9e1f7a2b6d0";
/// The size of the reserved array in `adapter_arena.go`.
pub const ARENA_SIZE: u32 = 262_144;

/// Adds the allocator. Returns the module unchanged when it already exports
/// `cabi_realloc` or does not contain the arena.
pub fn add_cabi_realloc(module: &[u8]) -> Result<Vec<u8>> {
    let mut imported_funcs = 0u32;
    let mut defined_funcs = 0u32;
    let mut type_count = 0u32;
    let mut global_count = 0u32;
    let mut imported_globals = 0u32;
    let mut arena = None;
    for payload in Parser::new(0).parse_all(module) {
        match payload.context("failed to parse the Go module")? {
            Payload::TypeSection(r) => type_count = r.count(),
            Payload::ImportSection(r) => {
                for import in r.into_imports() {
                    match import?.ty {
                        wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_) => {
                            imported_funcs += 1
                        }
                        wasmparser::TypeRef::Global(_) => imported_globals += 1,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => defined_funcs = r.count(),
            Payload::GlobalSection(r) => global_count = r.count(),
            Payload::ExportSection(r) => {
                for export in r {
                    if export?.name == "cabi_realloc" {
                        return Ok(module.to_vec());
                    }
                }
            }
            Payload::DataSection(r) => {
                for data in r {
                    let data = data?;
                    if let wasmparser::DataKind::Active { offset_expr, .. } = &data.kind
                        && let Some(pos) = find(data.data, MARKER)
                    {
                        if arena.is_some() || find(&data.data[pos + 1..], MARKER).is_some() {
                            bail!(
                                "the adapter arena marker appears more than once in the Go module"
                            );
                        }
                        let base = const_i32(offset_expr)?;
                        arena = Some(
                            u32::try_from(pos)
                                .ok()
                                .and_then(|p| base.checked_add(p))
                                .context("the adapter arena lies outside 32-bit memory")?,
                        );
                    }
                }
            }
            _ => {}
        }
    }
    let Some(arena) = arena else {
        return Ok(module.to_vec());
    };
    // Allocations start past the marker, and never reach past the array.
    let (Some(start), Some(end)) = (arena.checked_add(64), arena.checked_add(ARENA_SIZE)) else {
        bail!("the adapter arena lies outside 32-bit memory");
    };
    let func_index = imported_funcs + defined_funcs;
    let global_index = imported_globals + global_count;

    let mut out = Vec::with_capacity(module.len() + 128);
    out.extend_from_slice(&module[..8]);
    let mut added = [false; 5];
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload?;
        let Some((id, range)) = payload.as_section() else {
            continue;
        };
        let contents = &module[range.clone()];
        let (slot, extra) = match id {
            1 => (0, func_type()),
            3 => (1, crate::leb::unsigned(type_count)),
            6 => (2, global(start)),
            7 => (3, export(func_index)),
            10 => (4, body(global_index, end)),
            _ => {
                // Copy the section as it is: id, size, contents.
                out.push(id);
                out.extend(crate::leb::unsigned(contents.len() as u32));
                out.extend_from_slice(contents);
                continue;
            }
        };
        added[slot] = true;
        let appended = append_entry(contents, &extra)?;
        out.push(id);
        out.extend(crate::leb::unsigned(appended.len() as u32));
        out.extend(appended);
    }
    if added.contains(&false) {
        bail!("the Go module lacks a section kiln needs to add the adapter allocator to");
    }
    Ok(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn const_i32(expr: &wasmparser::ConstExpr<'_>) -> Result<u32> {
    let mut reader = expr.get_operators_reader();
    match reader.read()? {
        wasmparser::Operator::I32Const { value } => Ok(value as u32),
        other => bail!("unexpected data segment offset {other:?}"),
    }
}

/// A section's contents with one more entry: the count goes up by one and
/// the entry is appended after the existing ones.
fn append_entry(contents: &[u8], entry: &[u8]) -> Result<Vec<u8>> {
    let mut reader = BinaryReader::new(contents, 0);
    let count = reader.read_var_u32()?;
    let rest = &contents[reader.original_position()..];
    let mut out = crate::leb::unsigned(count + 1);
    out.extend_from_slice(rest);
    out.extend_from_slice(entry);
    Ok(out)
}

const I32: u8 = 0x7f;

/// `(func (param i32 i32 i32 i32) (result i32))`
fn func_type() -> Vec<u8> {
    vec![0x60, 4, I32, I32, I32, I32, 1, I32]
}

/// `(global (mut i32) (i32.const start))`: the next free byte.
fn global(start: u32) -> Vec<u8> {
    let mut g = vec![I32, 0x01, 0x41];
    g.extend(crate::leb::signed(start as i32));
    g.push(0x0b);
    g
}

fn export(func_index: u32) -> Vec<u8> {
    let name = b"cabi_realloc";
    let mut e = crate::leb::unsigned(name.len() as u32);
    e.extend_from_slice(name);
    e.push(0x00);
    e.extend(crate::leb::unsigned(func_index));
    e
}

/// `cabi_realloc(old_ptr, old_size, align, new_size) -> ptr`: a bump
/// allocator over [next, end); it copies the old bytes on growth and traps
/// when the arena is exhausted.
fn body(next: u32, end: u32) -> Vec<u8> {
    const LOCAL_GET: u8 = 0x20;
    const LOCAL_SET: u8 = 0x21;
    const GLOBAL_GET: u8 = 0x23;
    const GLOBAL_SET: u8 = 0x24;
    const I32_CONST: u8 = 0x41;
    const IF: u8 = 0x04;
    const END: u8 = 0x0b;
    const EMPTY: u8 = 0x40;
    let g = crate::leb::unsigned(next);
    let mut code = vec![1, 1, I32]; // one local: ptr (index 4)
    // if new_size == 0 { return align }
    code.extend([LOCAL_GET, 3, 0x45, IF, EMPTY, LOCAL_GET, 2, 0x0f, END]);
    // if align == 0 { align = 1 }
    code.extend([
        LOCAL_GET, 2, 0x45, IF, EMPTY, I32_CONST, 1, LOCAL_SET, 2, END,
    ]);
    // ptr = (next + align - 1) & -align
    code.push(GLOBAL_GET);
    code.extend(&g);
    code.extend([
        LOCAL_GET, 2, 0x6a, I32_CONST, 1, 0x6b, I32_CONST, 0, LOCAL_GET, 2, 0x6b, 0x71, LOCAL_SET,
        4,
    ]);
    // if ptr + new_size > end (or wraps) { unreachable }
    code.extend([LOCAL_GET, 4, LOCAL_GET, 3, 0x6a, I32_CONST]);
    code.extend(crate::leb::signed(end as i32));
    code.extend([
        0x4b, LOCAL_GET, 4, LOCAL_GET, 4, LOCAL_GET, 3, 0x6a, 0x4b, 0x72, IF, EMPTY, 0x00, END,
    ]);
    // next = ptr + new_size
    code.extend([LOCAL_GET, 4, LOCAL_GET, 3, 0x6a, GLOBAL_SET]);
    code.extend(&g);
    // if old_ptr { memory.copy(ptr, old_ptr, min(old_size, new_size)) }
    code.extend([LOCAL_GET, 0, IF, EMPTY, LOCAL_GET, 4, LOCAL_GET, 0]);
    code.extend([
        LOCAL_GET, 1, LOCAL_GET, 3, LOCAL_GET, 1, LOCAL_GET, 3, 0x49, 0x1b,
    ]);
    code.extend([0xfc, 10, 0, 0, END]);
    code.extend([LOCAL_GET, 4, END]);
    let mut out = crate::leb::unsigned(code.len() as u32);
    out.extend(code);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb_encodings() {
        assert_eq!(crate::leb::unsigned(0), [0]);
        assert_eq!(crate::leb::unsigned(624485), [0xe5, 0x8e, 0x26]);
        assert_eq!(crate::leb::signed(-1), [0x7f]);
        assert_eq!(crate::leb::signed(64), [0xc0, 0x00]);
        assert_eq!(crate::leb::signed(-123456), [0xc0, 0xbb, 0x78]);
    }

    #[test]
    fn module_without_arena_is_unchanged() {
        let module = b"\0asm\x01\0\0\0".to_vec();
        assert_eq!(add_cabi_realloc(&module).unwrap(), module);
    }
}
