//! Validation of core modules and components with wasmparser, with function bodies checked in parallel.

use wasmparser::{
    FuncToValidate, FuncValidatorAllocations, FunctionBody, Parser, ValidPayload, Validator,
    ValidatorResources, WasmFeatures,
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

type Func<'a> = (FuncToValidate<ValidatorResources>, FunctionBody<'a>);

/// Validates with the given feature set. The module structure is checked in
/// one pass; function bodies, which are most of a large binary, are checked
/// afterwards on every core, and the error reported is always the one at the
/// lowest offset, so the result does not depend on scheduling.
pub fn validate_with(bytes: &[u8], features: WasmFeatures) -> Result<(), Invalid> {
    let mut validator = Validator::new_with_features(features);
    let mut funcs: Vec<Func<'_>> = Vec::new();
    let mut structure = Ok(());
    for payload in Parser::new(0).parse_all(bytes) {
        let step = payload.and_then(|p| validator.payload(&p));
        match step {
            Ok(ValidPayload::Func(func, body)) => funcs.push((func, body)),
            Ok(_) => {}
            Err(e) => {
                structure = Err(Invalid::from(e));
                break;
            }
        }
    }
    // A structural error after the code section (a bad data segment, a
    // truncated tail) must not hide a body error earlier in the file.
    match (validate_bodies(funcs), structure) {
        (Err(a), Err(b)) => Err(if a.offset <= b.offset { a } else { b }),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

fn validate_bodies(funcs: Vec<Func<'_>>) -> Result<(), Invalid> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(funcs.len().div_ceil(64).max(1));
    if threads <= 1 {
        return validate_chunk(funcs);
    }
    let chunk = funcs.len().div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    let mut rest = funcs;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    let results: Vec<Result<(), Invalid>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| s.spawn(move || validate_chunk(c)))
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
    // Chunks are contiguous and in order, so the first error is the lowest.
    results.into_iter().collect()
}

fn validate_chunk(funcs: Vec<Func<'_>>) -> Result<(), Invalid> {
    let mut allocs = FuncValidatorAllocations::default();
    for (func, body) in funcs {
        let mut v = func.into_validator(allocs);
        v.validate(&body)?;
        allocs = v.into_allocations();
    }
    Ok(())
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

    #[test]
    fn bad_magic_reports_offset_zero() {
        let err = validate(b"\0asx\x01\0\0\0").unwrap_err();
        assert_eq!(err.offset, 0);
    }
}
