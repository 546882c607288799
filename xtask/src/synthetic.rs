//! Synthetic wasm inputs for the benches: large modules of plain code, and components around them.

use wasm_encoder::{
    CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction, Module,
    TypeSection, ValType,
};

/// A valid module with about `code_bytes` of function bodies: many functions
/// of straight-line integer arithmetic, the shape of compiled code.
pub fn large_module(code_bytes: usize) -> Vec<u8> {
    let mut types = TypeSection::new();
    types
        .ty()
        .function([ValType::I32, ValType::I32], [ValType::I32]);
    let mut body = Function::new([(2, ValType::I32)]);
    for k in 0..120 {
        body.instruction(&Instruction::LocalGet(0));
        body.instruction(&Instruction::I32Const(k * 7919));
        body.instruction(&Instruction::I32Add);
        body.instruction(&Instruction::LocalGet(1));
        body.instruction(&Instruction::I32Xor);
        body.instruction(&Instruction::LocalSet(0));
    }
    body.instruction(&Instruction::LocalGet(0));
    body.instruction(&Instruction::End);
    let body_len = body.byte_len();
    let count = (code_bytes / body_len).max(1) as u32;
    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    for _ in 0..count {
        funcs.function(0);
        code.function(&body);
    }
    let mut exports = ExportSection::new();
    exports.export("f0", ExportKind::Func, 0);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&funcs)
        .section(&exports)
        .section(&code);
    module.finish()
}

/// The same component-level imports around core modules of different sizes.
pub fn component_with_imports(module: &[u8]) -> Vec<u8> {
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType,
        RawSection,
    };
    let mut component = Component::new();
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    component.section(&types);
    let mut imports = ComponentImportSection::new();
    for name in [
        "wasi:cli/environment@0.2.6",
        "wasi:cli/stdout@0.2.6",
        "wasi:clocks/wall-clock@0.2.6",
        "wasi:filesystem/types@0.2.6",
        "wasi:io/streams@0.2.6",
        "wasi:random/random@0.2.6",
    ] {
        imports.import(name, ComponentTypeRef::Instance(0));
    }
    component.section(&imports);
    // Section id 1 in a component is a nested core module.
    component.section(&RawSection {
        id: 1,
        data: module,
    });
    component.finish()
}
