//! Validation of core modules and components with wasmparser, with function bodies checked in parallel.

use wasmparser::{
    BinaryReader, FuncToValidate, FuncValidatorAllocations, FunctionBody, Parser, Payload,
    ValidPayload, Validator, ValidatorResources, WasmFeatures,
};

/// Why a binary is not valid wasm, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at offset {offset:#x})")]
pub struct Invalid {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What is wrong there.
    pub message: String,
}

impl From<wasmparser::BinaryReaderError> for Invalid {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        Invalid {
            offset: e.offset(),
            message: e.message().to_string(),
        }
    }
}

/// Validates a core module or component with the standard wasm features and
/// the component model.
pub fn validate(bytes: &[u8]) -> Result<(), Invalid> {
    validate_with(bytes, WasmFeatures::default())
}

/// A function body left for the second pass: where it is and what the
/// validator said about it, in 24 bytes, so the list stays a small multiple
/// of the code section however small the bodies are.
struct Body {
    /// Offset of the body in the input.
    start: usize,
    /// Length of the body in bytes.
    len: u32,
    /// Its function index.
    index: u32,
    /// Its type index.
    ty: u32,
    /// Which module it belongs to, as an index into the list of modules'
    /// resources.
    module: u32,
}

/// Validates with the given feature set. The module structure is checked in
/// one pass; function bodies, which are most of a large binary, are checked
/// afterwards on every core, and the error reported is always the one at the
/// lowest offset, so the result does not depend on scheduling.
pub fn validate_with(bytes: &[u8], features: WasmFeatures) -> Result<(), Invalid> {
    let mut validator = Validator::new_with_features(features);
    // The resources of each module with code, shared by its bodies.
    let mut modules: Vec<ValidatorResources> = Vec::new();
    let mut bodies: Vec<Body> = Vec::new();
    let mut module_started = false;
    let mut structure = Ok(());
    for payload in Parser::new(0).parse_all(bytes) {
        let step = payload.and_then(|p| {
            if let Payload::CodeSectionStart { count, .. } = &p {
                // The parser has checked the count against the function
                // section, which the validator bounds; a body takes at least
                // two bytes besides.
                bodies.reserve((*count as usize).min(bytes.len() / 2));
                module_started = true;
            }
            validator.payload(&p)
        });
        match step {
            Ok(ValidPayload::Func(func, body)) => {
                if module_started {
                    modules.push(func.resources);
                    module_started = false;
                }
                let range = body.range();
                bodies.push(Body {
                    start: range.start,
                    // A body's size is a u32 in the binary.
                    len: u32::try_from(range.len()).unwrap_or(u32::MAX),
                    index: func.index,
                    ty: func.ty,
                    module: u32::try_from(modules.len().saturating_sub(1)).unwrap_or(u32::MAX),
                });
            }
            Ok(_) => {}
            Err(e) => {
                structure = Err(Invalid::from(e));
                break;
            }
        }
    }
    // A structural error after the code section (a bad data segment, a
    // truncated tail) must not hide a body error earlier in the file.
    let code = Code {
        bytes,
        modules: &modules,
        features,
    };
    match (code.validate(&bodies), structure) {
        (Err(a), Err(b)) => Err(if a.offset <= b.offset { a } else { b }),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// What the bodies are validated against.
struct Code<'a> {
    bytes: &'a [u8],
    modules: &'a [ValidatorResources],
    features: WasmFeatures,
}

impl Code<'_> {
    /// Validates the bodies on every core, in contiguous chunks; the first
    /// error of the first failing chunk is the one at the lowest offset.
    fn validate(&self, bodies: &[Body]) -> Result<(), Invalid> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(bodies.len().div_ceil(64).max(1));
        if threads <= 1 {
            return self.validate_chunk(bodies);
        }
        let chunk = bodies.len().div_ceil(threads);
        let results: Vec<Result<(), Invalid>> = std::thread::scope(|s| {
            let handles: Vec<_> = bodies
                .chunks(chunk)
                .map(|c| s.spawn(move || self.validate_chunk(c)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Invalid {
                            offset: 0,
                            message: "internal error: a validation thread panicked".to_string(),
                        })
                    })
                })
                .collect()
        });
        results.into_iter().collect()
    }

    fn validate_chunk(&self, bodies: &[Body]) -> Result<(), Invalid> {
        let mut allocs = FuncValidatorAllocations::default();
        for body in bodies {
            let (Some(resources), Some(data)) = (
                self.modules.get(body.module as usize),
                self.bytes.get(body.start..body.start + body.len as usize),
            ) else {
                return Err(Invalid {
                    offset: body.start,
                    message: "internal error: a function body was lost".to_string(),
                });
            };
            let func = FuncToValidate {
                resources: resources.clone(),
                index: body.index,
                ty: body.ty,
                features: self.features,
            };
            let mut v = func.into_validator(allocs);
            v.validate(&FunctionBody::new(BinaryReader::new(data, body.start)))?;
            allocs = v.into_allocations();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_module_is_valid() {
        assert_eq!(validate(b"\0asm\x01\0\0\0"), Ok(()));
    }

    #[test]
    fn empty_input_is_invalid() {
        assert!(validate(b"").is_err());
    }

    /// A module of `n` functions of type `() -> (i32)` or `() -> ()`; the
    /// body of function `bad`, if any, returns the wrong thing.
    fn module(n: u32, returns_i32: bool, bad: Option<u32>) -> wasm_encoder::Module {
        use wasm_encoder::{CodeSection, Function, FunctionSection, Instruction, TypeSection};
        let mut types = TypeSection::new();
        let results = if returns_i32 {
            vec![wasm_encoder::ValType::I32]
        } else {
            vec![]
        };
        types.ty().function([], results);
        let mut funcs = FunctionSection::new();
        let mut code = CodeSection::new();
        for i in 0..n {
            funcs.function(0);
            let mut body = Function::new([]);
            if returns_i32 != (bad == Some(i)) {
                body.instruction(&Instruction::I32Const(1));
            }
            body.instruction(&Instruction::End);
            code.function(&body);
        }
        let mut module = wasm_encoder::Module::new();
        module.section(&types).section(&funcs).section(&code);
        module
    }

    fn component(modules: &[wasm_encoder::Module]) -> Vec<u8> {
        let mut component = wasm_encoder::Component::new();
        for m in modules {
            component.section(&wasm_encoder::ModuleSection(m));
        }
        component.finish()
    }

    #[test]
    fn bodies_are_checked_against_their_own_module() {
        let bytes = component(&[module(100, true, None), module(100, false, None)]);
        assert_eq!(validate(&bytes), Ok(()));
    }

    #[test]
    fn the_invalid_body_is_named_as_wasmparser_names_it() {
        for bad in [0, 50, 99] {
            let bytes = component(&[module(100, true, None), module(100, false, Some(bad))]);
            let expected = Validator::new()
                .validate_all(&bytes)
                .err()
                .expect("wasmparser rejects it");
            assert_eq!(validate(&bytes), Err(Invalid::from(expected)), "{bad}");
        }
    }

    #[test]
    fn bad_magic_reports_offset_zero() {
        let err = validate(b"\0asx\x01\0\0\0").unwrap_err();
        assert_eq!(err.offset, 0);
    }
}
