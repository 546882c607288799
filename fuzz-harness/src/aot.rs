//! Fuzz target for precompiled artifacts and their descriptors, as `kiln pull --target` and `compile --check` read them.

use crate::select;

/// The kinds of input, by the selector byte.
pub const DESCRIPTOR: u8 = 0;
/// A `.cwasm` file: its ELF header and engine section.
pub const CWASM: u8 = 1;

/// A descriptor (`.cwasm.json`) or an artifact by the selector byte
/// through what kiln reads before it loads or trusts one. Oracles: no
/// panic; a descriptor that parses serializes and parses again to itself
/// (kiln writes back what it read when it republishes).
pub fn aot(data: &[u8]) {
    let (kind, bytes) = select(data, 2);
    match kind {
        DESCRIPTOR => {
            if let Ok(descriptor) = kiln_aot::Descriptor::parse(bytes) {
                let json = serde_json::to_vec(&descriptor).unwrap();
                let again = kiln_aot::Descriptor::parse(&json).unwrap();
                assert_eq!(
                    descriptor, again,
                    "a descriptor changes through a round trip"
                );
                let _ = descriptor.target.to_string();
                let _ = descriptor.cpu.to_string();
            }
        }
        CWASM => {
            if let Ok(section) = kiln_aot::engine_section(bytes) {
                let _ = section.architecture();
            }
        }
        _ => unreachable!("select gives a kind below 2"),
    }
}
