//! What a `.cwasm` says about the engine that made it: its ELF header and `.wasmtime.engine` section.
//!
//! Read without Wasmtime, from bytes that may come from anywhere (a
//! registry, a file beside a component), and without deserializing code.

use anyhow::{Context, Result, bail};
use object::read::elf::{ElfFile64, FileHeader};
use object::{Object, ObjectSection};

/// The engine facts a precompiled artifact carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSection {
    /// The ELF machine type (`e_machine`).
    pub machine: u16,
    /// The ELF flags (`e_flags`), where Wasmtime marks Pulley bytecode.
    pub flags: u32,
    /// The Wasmtime version the artifact records (its major version, the
    /// one Wasmtime compares on load), lossily decoded as UTF-8.
    pub version: String,
}

/// Reads the ELF header and `.wasmtime.engine` section of `cwasm`. Errors
/// when it is not a 64-bit ELF file, has no such section, or the section
/// is too short for the version it declares.
pub fn engine_section(cwasm: &[u8]) -> Result<EngineSection> {
    let elf = ElfFile64::<object::Endianness>::parse(cwasm)
        .context("not a precompiled Wasmtime artifact: it is not a 64-bit ELF file")?;
    let machine = elf.elf_header().e_machine(elf.endian());
    let flags = elf.elf_header().e_flags(elf.endian());
    let section = elf
        .section_by_name(".wasmtime.engine")
        .context("not a precompiled Wasmtime artifact: it has no `.wasmtime.engine` section")?;
    let data = section
        .data()
        .context("failed to read the engine section")?;
    // Layout: a format byte, a length byte, the version string, then
    // Wasmtime's private settings encoding.
    let version = match data {
        [_, len, rest @ ..] if rest.len() >= usize::from(*len) => {
            String::from_utf8_lossy(&rest[..usize::from(*len)]).into_owned()
        }
        _ => bail!("not a precompiled Wasmtime artifact: its engine section is malformed"),
    };
    Ok(EngineSection {
        machine,
        flags,
        version,
    })
}

/// Wasmtime's `e_flags` bits marking Pulley bytecode (wasmtime-environ's
/// `obj.rs`); such objects carry the machine type of the host that made them.
const EF_WASMTIME_PULLEY32: u32 = 1 << 2;
const EF_WASMTIME_PULLEY64: u32 = 1 << 3;

impl EngineSection {
    /// The architecture of the code: `x86_64`, `aarch64`, `riscv64`,
    /// `s390x`, `pulley32`, `pulley64`, or `unknown`.
    pub fn architecture(&self) -> &'static str {
        let (machine, flags) = (self.machine, self.flags);
        if flags & EF_WASMTIME_PULLEY64 != 0 {
            return "pulley64";
        }
        if flags & EF_WASMTIME_PULLEY32 != 0 {
            return "pulley32";
        }
        match machine {
            object::elf::EM_X86_64 => "x86_64",
            object::elf::EM_AARCH64 => "aarch64",
            object::elf::EM_RISCV => "riscv64",
            object::elf::EM_S390 => "s390x",
            _ => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian ELF64 file with the given machine and flags and one
    /// `.wasmtime.engine` section holding `engine` (`None`: no such section,
    /// a `.text` one instead).
    fn elf(machine: u16, flags: u32, engine: Option<&[u8]>) -> Vec<u8> {
        let name = if engine.is_some() {
            ".wasmtime.engine"
        } else {
            ".text"
        };
        let strings = format!("\0.shstrtab\0{name}\0").into_bytes();
        let data = engine.unwrap_or(b"code");
        let strings_at = 64u64;
        let data_at = strings_at + strings.len() as u64;
        let headers_at = (data_at + data.len() as u64).next_multiple_of(8);
        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&1u16.to_le_bytes()); // e_type: relocatable
        out.extend_from_slice(&machine.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes()); // e_version
        out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
        out.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
        out.extend_from_slice(&headers_at.to_le_bytes()); // e_shoff
        out.extend_from_slice(&flags.to_le_bytes());
        for half in [64u16, 0, 0, 64, 3, 1] {
            // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
            out.extend_from_slice(&half.to_le_bytes());
        }
        out.extend_from_slice(&strings);
        out.extend_from_slice(data);
        out.resize(headers_at as usize, 0);
        let section = |out: &mut Vec<u8>, name: u32, kind: u32, at: u64, size: u64| {
            out.extend_from_slice(&name.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            for word in [0u64, 0, at, size] {
                // sh_flags, sh_addr, sh_offset, sh_size
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(&[0; 8]); // sh_link, sh_info
            out.extend_from_slice(&1u64.to_le_bytes()); // sh_addralign
            out.extend_from_slice(&0u64.to_le_bytes()); // sh_entsize
        };
        section(&mut out, 0, 0, 0, 0);
        section(&mut out, 1, 3, strings_at, strings.len() as u64);
        section(&mut out, 11, 1, data_at, data.len() as u64);
        out
    }

    fn err(bytes: &[u8]) -> String {
        format!("{:#}", engine_section(bytes).unwrap_err())
    }

    #[test]
    fn reads_the_engine_section() {
        let s =
            engine_section(&elf(object::elf::EM_X86_64, 0, Some(b"\x02\x0248settings"))).unwrap();
        assert_eq!(s.version, "48");
        assert_eq!(s.architecture(), "x86_64");
        let s = engine_section(&elf(
            object::elf::EM_AARCH64,
            EF_WASMTIME_PULLEY64,
            Some(b"\0\0"),
        ))
        .unwrap();
        assert_eq!(s.version, "");
        assert_eq!(s.architecture(), "pulley64");
        assert_eq!(
            engine_section(&elf(0x1234, 0, Some(b"\0\x02\xff\xfe")))
                .unwrap()
                .architecture(),
            "unknown"
        );
    }

    #[test]
    fn hostile_artifacts_are_errors() {
        assert!(err(b"").contains("not a 64-bit ELF file"));
        assert!(err(b"\0asm\x01\0\0\0").contains("not a 64-bit ELF file"));
        let good = elf(object::elf::EM_X86_64, 0, Some(b"\x02\x0248"));
        // Truncated anywhere: an error, never a panic.
        for len in 0..good.len() {
            let _ = engine_section(&good[..len]);
        }
        assert!(err(&good[..40]).contains("not a 64-bit ELF file"));
        assert!(err(&elf(object::elf::EM_X86_64, 0, None)).contains("no `.wasmtime.engine`"));
        // A version longer than the section, and sections too short to
        // hold a length at all.
        for bad in [&b"\x02\x0948"[..], b"\x02", b""] {
            let e = err(&elf(object::elf::EM_X86_64, 0, Some(bad)));
            assert!(e.contains("engine section is malformed"), "{bad:?}: {e}");
        }
        // A section whose offset points past the end of the file.
        let mut past = good.clone();
        let at = past.len() - 64 + 24;
        past[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(err(&past).contains("failed to read the engine section"));
    }

    /// What Wasmtime itself writes reads as its version and architecture.
    #[cfg(feature = "engine")]
    #[test]
    fn reads_what_wasmtime_writes() {
        let wasm = wat::parse_str("(module)").unwrap();
        let target = kiln_core::Target::parse("pulley64").unwrap();
        let settings = crate::Settings::default();
        let artifact =
            crate::compile(&wasm, target, &crate::Cpu::Baseline, &settings, None).unwrap();
        let s = engine_section(&artifact.bytes).unwrap();
        assert_eq!(s.architecture(), "pulley64");
        assert_eq!(
            Some(s.version.as_str()),
            crate::WASMTIME_VERSION.split('.').next()
        );
    }
}
