//! The targets kiln precompiles for, named by the triples Wasmtime and Cranelift use.

use crate::error::hinted;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A target kiln precompiles for: one of [`Target::ALL`]. It is parsed
/// once, where a target is named (`--target`, `[compile] targets`, a
/// descriptor read back), so nothing downstream checks a triple again; it
/// is written, displayed and serialized as the plain triple.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target(&'static str);

impl Target {
    /// Every target kiln compiles for: the Linux architectures Cranelift
    /// supports and Wasmtime's portable Pulley bytecode.
    pub const ALL: &'static [Target] = &[
        Target("x86_64-unknown-linux-gnu"),
        Target("aarch64-unknown-linux-gnu"),
        Target("riscv64gc-unknown-linux-gnu"),
        Target("s390x-unknown-linux-gnu"),
        Target("pulley64"),
        Target("pulley32"),
    ];

    /// The target of the machine kiln runs on (Pulley where Cranelift has
    /// no backend).
    pub fn host() -> Target {
        Target(if cfg!(target_arch = "x86_64") {
            "x86_64-unknown-linux-gnu"
        } else if cfg!(target_arch = "aarch64") {
            "aarch64-unknown-linux-gnu"
        } else if cfg!(target_arch = "riscv64") {
            "riscv64gc-unknown-linux-gnu"
        } else if cfg!(target_arch = "s390x") {
            "s390x-unknown-linux-gnu"
        } else {
            "pulley64"
        })
    }

    /// Parses a triple; anything but one of [`Target::ALL`] is an error
    /// whose hint lists them.
    pub fn parse(triple: &str) -> anyhow::Result<Target> {
        Target::ALL
            .iter()
            .copied()
            .find(|t| t.0 == triple)
            .ok_or_else(|| {
                let all: Vec<&str> = Target::ALL.iter().map(|t| t.0).collect();
                hinted(
                    format!("`{triple}` is not a target kiln compiles for"),
                    format!("use one of: {}, or `all`", all.join(", ")),
                )
            })
    }

    /// The triple.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl FromStr for Target {
    type Err = anyhow::Error;

    fn from_str(triple: &str) -> anyhow::Result<Target> {
        Target::parse(triple)
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Target, D::Error> {
        let triple = String::deserialize(d)?;
        Target::parse(&triple).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_triples_only() {
        for t in Target::ALL {
            assert_eq!(Target::parse(t.as_str()).unwrap(), *t);
            assert_eq!(t.to_string().parse::<Target>().unwrap(), *t);
        }
        assert!(Target::ALL.contains(&Target::host()));
        let e = Target::parse("wasm32-wasip2").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`wasm32-wasip2` is not a target kiln compiles for"
        );
        let hint = &e.downcast_ref::<crate::Hinted>().unwrap().hint;
        assert!(hint.starts_with("use one of: x86_64-unknown-linux-gnu, "));
        assert!(hint.ends_with("pulley32, or `all`"));
    }

    #[test]
    fn serde_is_the_plain_triple() {
        let t = Target::parse("pulley64").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"pulley64\"");
        assert_eq!(serde_json::from_str::<Target>("\"pulley64\"").unwrap(), t);
        assert!(serde_json::from_str::<Target>("\"pulley16\"").is_err());
    }
}
