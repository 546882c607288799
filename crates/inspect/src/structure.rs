//! wasmparser's validator over everything but function bodies.
//!
//! It is the gate every report of a binary passes before it is built.
//!
//! A binary can be small and still describe far more than it holds: one
//! function type with 1,000 parameters imported 300,000 times fits in about a
//! megabyte. The validator bounds such things (the total size of the types a
//! module imports and exports, counts of types, imports and functions), so a
//! report built after it passed is bounded too. Function bodies are left to
//! `kiln validate`: the code section is stepped over unread, which keeps the
//! gate's cost independent of the size of the code.

use anyhow::{Result, anyhow};
use kiln_core::Invalid;
use wasmparser::{Chunk, Parser, Payload, Validator, WasmFeatures};

/// Words of wasmparser's errors that mean "an encoding this parser does not
/// know" rather than "a rule the binary breaks". wasmparser's errors carry
/// only a message, so the messages are matched.
const UNKNOWN_ENCODING: &[&str] = &[
    "invalid leading byte",
    "illegal opcode",
    "malformed section id",
    "unknown binary version",
    "unknown component version",
];

/// Whether a binary the validator rejected uses an encoding (a section id, a
/// type, an opcode or a version byte) kiln's wasm parser does not know: it is
/// malformed, or newer than this kiln, and either way it cannot be read.
pub fn unknown_encoding(invalid: &Invalid) -> bool {
    UNKNOWN_ENCODING.iter().any(|m| invalid.message.contains(m))
}

/// The wasmparser release kiln reads binaries with, for messages about
/// encodings it does not know.
pub const PARSER: &str = "wasmparser 0.254";

/// Why a binary whose first 8 bytes are not a known wasm header cannot be
/// read: not wasm at all, or a version or layer newer than kiln's parser.
pub fn unknown_header(bytes: &[u8]) -> anyhow::Error {
    match bytes.get(..8) {
        Some(head) if head.starts_with(b"\0asm") => anyhow!(
            "cannot read this binary: its encoding version {:#x} (layer {}) is not one {PARSER} knows (core modules are version 1, components version 0xd layer 1); it may be newer than this kiln",
            u16::from_le_bytes([head[4], head[5]]),
            u16::from_le_bytes([head[6], head[7]])
        ),
        Some(_) => anyhow!("not a wasm binary: it does not start with the `\\0asm` magic bytes"),
        None => anyhow!("not a wasm binary: it is shorter than the 8-byte wasm header"),
    }
}

/// Validates every section of a module or component, nested modules and
/// components included, except the function bodies. Every proposal
/// wasmparser knows is accepted: which features a binary may use is a
/// question for `kiln validate` and audit policies, not for reading it.
///
/// The error is an [`Invalid`] when the validator rejects the binary, and a
/// plain error when the binary cannot be parsed at all.
pub(crate) fn validate(bytes: &[u8]) -> Result<()> {
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let mut parser = Parser::new(0);
    // The parsers of the modules and components enclosing the current one.
    let mut enclosing: Vec<Parser> = Vec::new();
    let mut offset = 0usize;
    loop {
        let rest = bytes.get(offset..).ok_or_else(|| past_end(bytes))?;
        let (payload, consumed) = match parser.parse(rest, true)? {
            Chunk::Parsed { consumed, payload } => (payload, consumed),
            // With `eof` set the parser reports an error instead.
            Chunk::NeedMoreData(_) => return Err(past_end(bytes)),
        };
        offset += consumed;
        validator.payload(&payload).map_err(|e| Invalid {
            offset: e.offset(),
            message: e.message().to_string(),
        })?;
        match &payload {
            // The nested binary follows in the input; its parser reads it,
            // and the enclosing one resumes after its end.
            Payload::ModuleSection { parser: nested, .. }
            | Payload::ComponentSection { parser: nested, .. } => {
                enclosing.push(std::mem::replace(&mut parser, nested.clone()));
            }
            // The parser has checked the number of bodies against the
            // function section; the bodies themselves are not read.
            Payload::CodeSectionStart { size, .. } => {
                parser.skip_section();
                offset = offset
                    .checked_add(*size as usize)
                    .filter(|end| *end <= bytes.len())
                    .ok_or_else(|| past_end(bytes))?;
            }
            Payload::End(_) => match enclosing.pop() {
                Some(outer) => parser = outer,
                None => return Ok(()),
            },
            _ => {}
        }
    }
}

fn past_end(bytes: &[u8]) -> anyhow::Error {
    anyhow!(
        "a section extends past the end of the binary ({} bytes)",
        bytes.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        CodeSection, Component, EntityType, ExportKind, ExportSection, Function, FunctionSection,
        ImportSection, Instruction, Module, ModuleSection, TypeSection, ValType,
    };

    /// One function type with `params` i32 parameters, imported `imports` times.
    fn many_imports(params: usize, imports: u32) -> Module {
        let mut types = TypeSection::new();
        types.ty().function(vec![ValType::I32; params], []);
        let mut section = ImportSection::new();
        for i in 0..imports {
            section.import("env", &format!("f{i}"), EntityType::Function(0));
        }
        let mut module = Module::new();
        module.section(&types).section(&section);
        module
    }

    fn invalid(bytes: &[u8]) -> Invalid {
        let err = validate(bytes).expect_err("the validator rejects it");
        err.downcast::<Invalid>()
            .expect("an `Invalid`, not a parse error")
    }

    #[test]
    fn imports_beyond_the_type_size_limit_are_invalid() {
        let bytes = many_imports(1000, 2000).finish();
        let err = invalid(&bytes);
        assert!(err.message.contains("effective type size"), "{err}");
        let expected = Validator::new()
            .validate_all(&bytes)
            .err()
            .expect("wasmparser rejects it");
        assert_eq!(err.offset, expected.offset());
    }

    #[test]
    fn a_nested_module_is_validated_too() {
        let module = many_imports(1000, 2000);
        let mut component = Component::new();
        component.section(&ModuleSection(&module));
        let err = invalid(&component.finish());
        assert!(err.message.contains("effective type size"), "{err}");
    }

    #[test]
    fn function_bodies_are_not_validated() {
        let mut types = TypeSection::new();
        types.ty().function([], [ValType::I32]);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        let mut exports = ExportSection::new();
        exports.export("f", ExportKind::Func, 0);
        let mut code = CodeSection::new();
        // `i64.const` where an i32 is returned: an invalid body.
        let mut body = Function::new([]);
        body.instruction(&Instruction::I64Const(1))
            .instruction(&Instruction::End);
        code.function(&body);
        let mut module = Module::new();
        module
            .section(&types)
            .section(&funcs)
            .section(&exports)
            .section(&code);
        let bytes = module.finish();
        assert!(Validator::new().validate_all(&bytes).is_err());
        validate(&bytes).expect("only the structure is validated");
    }

    #[test]
    fn a_truncated_binary_is_an_error_not_a_finding() {
        let bytes = many_imports(2, 10).finish();
        let mut errors = 0;
        // A cut between sections leaves a valid module; every other cut is
        // an error, and never a finding.
        for cut in 0..bytes.len() {
            if let Err(err) = validate(&bytes[..cut]) {
                assert!(err.downcast_ref::<Invalid>().is_none(), "{cut}: {err}");
                errors += 1;
            }
        }
        assert!(errors > bytes.len() / 2, "{errors} of {}", bytes.len());
    }

    #[test]
    fn a_code_section_past_the_end_is_an_error() {
        let mut types = TypeSection::new();
        types.ty().function([], []);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        let mut code = CodeSection::new();
        let mut body = Function::new([]);
        body.instruction(&Instruction::End);
        code.function(&body);
        let mut module = Module::new();
        module.section(&types).section(&funcs).section(&code);
        let bytes = module.finish();
        validate(&bytes).expect("a valid module");
        let err = validate(&bytes[..bytes.len() - 1]).expect_err("a cut code section");
        assert!(err.downcast_ref::<Invalid>().is_none(), "{err}");
    }
}
