//! Validation of core modules and components with wasmparser, function bodies in parallel.

use kiln_core::Invalid;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use wasmparser::{
    BinaryReader, FuncToValidate, FuncValidatorAllocations, FunctionBody, Parser, Payload,
    ValidPayload, Validator, ValidatorResources, WasmFeatures,
};

/// wasmparser's error as kiln's [`Invalid`].
fn invalid(e: wasmparser::BinaryReaderError) -> Invalid {
    Invalid {
        offset: e.offset(),
        message: e.message().to_string(),
    }
}

/// Validates a core module or component with the standard wasm features and
/// the component model.
pub fn validate(bytes: &[u8]) -> Result<(), Invalid> {
    validate_with(bytes, WasmFeatures::default())
}

/// A function body left for a worker: where it is and what the validator
/// said about it, in 24 bytes, so the queue stays a small multiple of the
/// code section however small the bodies are.
struct Body {
    /// Offset of the body in the input.
    start: usize,
    /// Length of the body in bytes.
    len: u32,
    /// Its function index.
    index: u32,
    /// Its type index.
    ty: u32,
}

/// Consecutive bodies of one module, taken by one thread at a time. Bodies
/// differ in size by orders of magnitude (a few huge functions next to
/// thousands of tiny ones), so work is handed out in batches of about this
/// many bytes rather than in one slice per thread, which left a core idle
/// while another validated most of the code.
const BATCH_BYTES: usize = 32 << 10;

/// At most this many bodies to a batch, so that a batch of tiny bodies
/// stays small too (a power of two, which a growing `Vec` fills exactly).
const BATCH_BODIES: usize = 1024;

/// Code sections smaller than this are validated on the calling thread
/// alone: starting a thread costs more than it would save.
const PARALLEL_AT_LEAST: usize = 4 * BATCH_BYTES;

struct Batch {
    /// The resources of the module the bodies belong to.
    resources: ValidatorResources,
    bodies: Vec<Body>,
}

/// Validates with the given feature set. The module structure is checked in
/// one pass on the calling thread; function bodies, which are most of a large
/// binary, are handed in batches, as that pass reaches them, to one thread per
/// other core, and the calling thread joins them once the structure is done.
/// The error reported is always the one at the lowest offset, so the result
/// does not depend on scheduling.
pub fn validate_with(bytes: &[u8], features: WasmFeatures) -> Result<(), Invalid> {
    let queue = Queue::default();
    let code = Code {
        bytes,
        features,
        queue: &queue,
    };
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        let mut spawned = false;
        let structure = {
            // Workers stop when the queue closes, also if this pass panics.
            let _close = CloseOnDrop(&queue);
            structure(bytes, features, &queue, |code_size| {
                if spawned || code_size < PARALLEL_AT_LEAST {
                    return;
                }
                spawned = true;
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                // Threads that cannot be started leave their share to the
                // others, this one included.
                workers = (1..threads)
                    .map_while(|_| {
                        std::thread::Builder::new()
                            .name("kiln-validate".to_string())
                            .spawn_scoped(s, || code.work())
                            .ok()
                    })
                    .collect();
            })
        };
        let mut result = code.work();
        for worker in workers {
            let found = worker.join().unwrap_or_else(|_| {
                Err(Invalid {
                    offset: 0,
                    message: "internal error: a validation thread panicked".to_string(),
                })
            });
            result = lowest(result, found);
        }
        // A structural error after the code section (a bad data segment, a
        // truncated tail) must not hide a body error earlier in the file.
        lowest(result, structure)
    })
}

/// The error at the lower offset, a body's on a tie.
fn lowest(bodies: Result<(), Invalid>, other: Result<(), Invalid>) -> Result<(), Invalid> {
    match (bodies, other) {
        (Err(a), Err(b)) => Err(if a.offset <= b.offset { a } else { b }),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Checks everything but the function bodies, which it queues in batches.
/// `code_section` is called with the size of each code section before its
/// bodies are queued.
fn structure(
    bytes: &[u8],
    features: WasmFeatures,
    queue: &Queue,
    mut code_section: impl FnMut(usize),
) -> Result<(), Invalid> {
    let mut validator = Validator::new_with_features(features);
    let mut batch: Option<Batch> = None;
    let mut batch_bytes = 0;
    let mut module_started = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let step = payload.and_then(|p| {
            if let Payload::CodeSectionStart { size, .. } = &p {
                code_section(*size as usize);
                module_started = true;
            }
            validator.payload(&p)
        });
        match step {
            Ok(ValidPayload::Func(func, body)) => {
                if module_started {
                    // A new module's bodies go in batches of their own.
                    queue.push(batch.take());
                    batch_bytes = 0;
                    module_started = false;
                }
                let range = body.range();
                let current = batch.get_or_insert_with(|| Batch {
                    resources: func.resources,
                    bodies: Vec::new(),
                });
                current.bodies.push(Body {
                    start: range.start,
                    // A body's size is a u32 in the binary.
                    len: u32::try_from(range.len()).unwrap_or(u32::MAX),
                    index: func.index,
                    ty: func.ty,
                });
                batch_bytes += range.len();
                if batch_bytes >= BATCH_BYTES || current.bodies.len() >= BATCH_BODIES {
                    queue.push(batch.take());
                    batch_bytes = 0;
                    // Past a body error, a structural error could only be
                    // at a higher offset: it would not be the one reported.
                    if queue.first_error.load(Ordering::Relaxed) < range.start {
                        return Ok(());
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                queue.push(batch.take());
                // Bodies after it could not hold an error at a lower offset.
                queue.first_error.fetch_min(e.offset(), Ordering::Relaxed);
                return Err(invalid(e));
            }
        }
    }
    queue.push(batch.take());
    Ok(())
}

/// The batches waiting for a thread. A mutex and a condition variable
/// rather than rayon or a channel crate: the producer is the structure pass
/// on the calling thread, which then becomes a consumer itself, and
/// `first_error` lets every consumer skip work past an error already found;
/// this is the whole of it, in a few dozen lines.
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    /// The lowest offset of an error found so far (`usize::MAX` while there
    /// is none): bodies after it need no validating.
    first_error: AtomicUsize,
}

#[derive(Default)]
struct QueueState {
    batches: VecDeque<Batch>,
    /// No more batches will come.
    closed: bool,
    /// Threads waiting for a batch.
    waiting: usize,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            state: Mutex::default(),
            ready: Condvar::new(),
            first_error: AtomicUsize::new(usize::MAX),
        }
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, batch: Option<Batch>) {
        let Some(batch) = batch else { return };
        let mut state = self.lock();
        state.batches.push_back(batch);
        if state.waiting > 0 {
            self.ready.notify_one();
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The next batch, waiting for one while the queue is open.
    fn pop(&self) -> Option<Batch> {
        let mut state = self.lock();
        loop {
            if let Some(batch) = state.batches.pop_front() {
                return Some(batch);
            }
            if state.closed {
                return None;
            }
            state.waiting += 1;
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
    }
}

struct CloseOnDrop<'a>(&'a Queue);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// What the bodies are validated against.
struct Code<'a> {
    bytes: &'a [u8],
    features: WasmFeatures,
    queue: &'a Queue,
}

impl Code<'_> {
    /// Validates batches until the queue is closed and empty; the error at
    /// the lowest offset this thread found, if any. Bodies are queued in
    /// file order and a body's errors lie within it, so skipping the bodies
    /// after the lowest error found by any thread never skips the lowest
    /// error of all.
    fn work(&self) -> Result<(), Invalid> {
        let mut allocs = FuncValidatorAllocations::default();
        let mut found = Ok(());
        while let Some(batch) = self.queue.pop() {
            for body in &batch.bodies {
                if body.start > self.queue.first_error.load(Ordering::Relaxed) {
                    break;
                }
                let (outcome, back) = self.validate(&batch.resources, body, allocs);
                allocs = back;
                if let Err(e) = outcome {
                    self.queue
                        .first_error
                        .fetch_min(e.offset, Ordering::Relaxed);
                    found = lowest(Err(e), found);
                    break;
                }
            }
        }
        found
    }

    fn validate(
        &self,
        resources: &ValidatorResources,
        body: &Body,
        allocs: FuncValidatorAllocations,
    ) -> (Result<(), Invalid>, FuncValidatorAllocations) {
        let Some(data) = self.bytes.get(body.start..body.start + body.len as usize) else {
            let lost = Invalid {
                offset: body.start,
                message: "internal error: a function body was lost".to_string(),
            };
            return (Err(lost), allocs);
        };
        let func = FuncToValidate {
            resources,
            index: body.index,
            ty: body.ty,
            features: self.features,
        };
        let mut v = func.into_validator(allocs);
        let outcome = v.validate(&FunctionBody::new(BinaryReader::new(data, body.start)));
        (outcome.map_err(invalid), v.into_allocations())
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
        padded_module(n, returns_i32, bad, 0)
    }

    /// Like [`module`], with `nops` no-ops at the start of every body, so
    /// that the code section is large enough to be validated in parallel.
    fn padded_module(
        n: u32,
        returns_i32: bool,
        bad: Option<u32>,
        nops: usize,
    ) -> wasm_encoder::Module {
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
            for _ in 0..nops {
                body.instruction(&Instruction::Nop);
            }
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
            assert_eq!(validate(&bytes), Err(invalid(expected)), "{bad}");
        }
    }

    #[test]
    fn bad_magic_reports_offset_zero() {
        let err = validate(b"\0asx\x01\0\0\0").unwrap_err();
        assert_eq!(err.offset, 0);
    }

    /// What wasmparser, validating every body in order on one thread, says.
    fn sequential(bytes: &[u8]) -> Result<(), Invalid> {
        Validator::new()
            .validate_all(bytes)
            .map(|_| ())
            .map_err(invalid)
    }

    #[test]
    fn large_code_is_checked_in_parallel_with_the_same_result() {
        // 3000 bodies of ~100 bytes: many batches, more than enough to
        // start the other threads.
        let n = 3000;
        let big = |returns_i32, bad| padded_module(n, returns_i32, bad, 100);
        let bytes = big(true, None).finish();
        assert!(bytes.len() >= 2 * PARALLEL_AT_LEAST);
        assert_eq!(validate(&bytes), Ok(()));
        for bad in [0, 1, n / 2, n - 1] {
            let bytes = big(true, Some(bad)).finish();
            let expected = sequential(&bytes);
            assert!(expected.is_err());
            assert_eq!(validate(&bytes), expected, "{bad}");
            let bytes = component(&[big(true, None), big(false, Some(bad))]);
            let expected = sequential(&bytes);
            assert!(expected.is_err());
            assert_eq!(validate(&bytes), expected, "{bad} in the second module");
        }
    }

    #[test]
    fn the_lowest_of_several_body_errors_is_reported() {
        // Every body is invalid: whichever thread gets to which first, the
        // first body's error is the one reported.
        let bytes = padded_module(3000, false, None, 100);
        let mut with_results = wasm_encoder::Module::new();
        let mut types = wasm_encoder::TypeSection::new();
        types.ty().function([], [wasm_encoder::ValType::I32]);
        with_results.section(&types);
        let raw = bytes.finish();
        // Re-type every function as `() -> (i32)` by swapping the type
        // section, which comes first, for one with a result.
        let types_end = 8 + 2 + raw[9] as usize;
        let mut all_bad = with_results.finish();
        all_bad.extend_from_slice(&raw[types_end..]);
        let expected = sequential(&all_bad);
        assert!(expected.is_err());
        for _ in 0..20 {
            assert_eq!(validate(&all_bad), expected);
        }
    }

    #[test]
    fn a_body_error_wins_over_a_later_structural_error() {
        // wasmparser's own `validate_all` reports the structural error
        // first; kiln reports the one earlier in the file.
        let n = 3000;
        for bad in [None, Some(0), Some(n - 1)] {
            let whole = padded_module(n, true, bad, 100).finish();
            let mut bytes = whole.clone();
            // A section cut short after the code section.
            bytes.extend_from_slice(&[11, 0x7f]);
            let expected = match bad {
                None => sequential(&bytes),
                Some(_) => sequential(&whole),
            };
            assert!(expected.is_err());
            assert_eq!(validate(&bytes), expected, "{bad:?}");
        }
    }
}
