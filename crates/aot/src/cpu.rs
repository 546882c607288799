//! CPU features for compiled code: baseline, the host's (`native`), or Cranelift presets and flags.
//!
//! They are expanded into the list a descriptor records and checked against
//! this host's CPU.

use anyhow::{Result, bail};
#[cfg(feature = "engine")]
use cranelift_codegen::isa;
#[cfg(feature = "engine")]
use cranelift_codegen::settings::{self, Configurable, SettingKind};
#[cfg(feature = "engine")]
use kiln_core::{Target, hinted};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Which CPU features the code may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Cpu {
    /// The target's baseline: loads on every CPU of that architecture.
    Baseline,
    /// Whatever the build machine's CPU has (host target only).
    Native,
    /// Cranelift presets and features, comma-separated, e.g. `x86-64-v3`,
    /// `haswell` or `has_avx2,has_bmi2` (`+avx2` and `avx2` mean `has_avx2`).
    Named(String),
}

impl FromStr for Cpu {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Cpu> {
        Ok(match s.trim() {
            "" => bail!("`--cpu` needs a value: baseline, native, or presets and features"),
            "baseline" => Cpu::Baseline,
            "native" => Cpu::Native,
            other => Cpu::Named(other.to_string()),
        })
    }
}

impl std::fmt::Display for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cpu::Baseline => f.write_str("baseline"),
            Cpu::Native => f.write_str("native"),
            Cpu::Named(s) => f.write_str(s),
        }
    }
}

impl From<Cpu> for String {
    fn from(c: Cpu) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for Cpu {
    type Error = anyhow::Error;
    fn try_from(s: String) -> Result<Cpu> {
        s.parse()
    }
}

// What a selection means needs Cranelift's tables of each ISA.
#[cfg(feature = "engine")]
impl Cpu {
    /// The Cranelift settings to enable for a named selection, each item
    /// resolved against `target`'s ISA: a preset or flag by its own name,
    /// else `has_<item>`. Empty for `baseline` and `native`.
    pub(crate) fn cranelift_names(&self, target: Target) -> Result<Vec<String>> {
        let Cpu::Named(spec) = self else {
            return Ok(Vec::new());
        };
        let builder = isa_builder(target)?;
        let known: Vec<settings::Setting> = builder
            .iter()
            .filter(|s| matches!(s.kind, SettingKind::Bool | SettingKind::Preset))
            .collect();
        let mut names = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bare = item.trim_start_matches('+');
            let found = [bare.to_string(), format!("has_{bare}")]
                .into_iter()
                .find(|n| known.iter().any(|s| s.name == n.as_str()));
            match found {
                Some(n) => names.push(n),
                None => {
                    let presets: Vec<&str> = known
                        .iter()
                        .filter(|s| s.kind == SettingKind::Preset)
                        .map(|s| s.name)
                        .collect();
                    let flags: Vec<&str> = known
                        .iter()
                        .filter(|s| s.kind == SettingKind::Bool && s.name.starts_with("has_"))
                        .map(|s| s.name.trim_start_matches("has_"))
                        .collect();
                    return Err(hinted(
                        format!("`{item}` is not a CPU preset or feature of `{target}`"),
                        if presets.is_empty() && flags.is_empty() {
                            format!(
                                "`{target}` has no CPU features to choose; use `--cpu baseline`"
                            )
                        } else {
                            format!(
                                "presets: {}; features: {}",
                                if presets.is_empty() {
                                    "none".to_string()
                                } else {
                                    presets.join(", ")
                                },
                                flags.join(", ")
                            )
                        },
                    ));
                }
            }
        }
        if names.is_empty() {
            bail!("`--cpu {spec}` names no preset or feature");
        }
        Ok(names)
    }

    /// The CPU features (Cranelift's `has_*` flags) code for `target`
    /// compiled with this selection may use.
    pub fn features(&self, target: Target) -> Result<Vec<String>> {
        let mut builder = match self {
            Cpu::Native => cranelift_native::builder()
                .map_err(|e| anyhow::anyhow!("cannot detect this machine's CPU features: {e}"))?,
            _ => isa_builder(target)?,
        };
        for name in self.cranelift_names(target)? {
            builder
                .enable(&name)
                .map_err(|e| anyhow::anyhow!("cannot enable `{name}` for `{target}`: {e}"))?;
        }
        let isa = builder
            .finish(settings::Flags::new(settings::builder()))
            .map_err(|e| anyhow::anyhow!("cannot set up Cranelift for `{target}`: {e}"))?;
        let mut features: Vec<String> = isa
            .isa_flags()
            .iter()
            .filter(|v| v.name.starts_with("has_") && v.as_bool() == Some(true))
            .map(|v| v.name.to_string())
            .collect();
        features.sort();
        Ok(features)
    }
}

#[cfg(feature = "engine")]
fn isa_builder(target: Target) -> Result<isa::Builder> {
    let triple = target_lexicon::Triple::from_str(target.as_str())
        .map_err(|e| anyhow::anyhow!("`{target}` is not a target triple: {e}"))?;
    isa::lookup(triple).map_err(|e| anyhow::anyhow!("Cranelift cannot compile for `{target}`: {e}"))
}

/// Whether this host's CPU has a Cranelift feature, as Wasmtime checks
/// it when loading an artifact; `None` when this host cannot tell.
#[cfg(feature = "engine")]
pub(crate) fn host_has(flag: &str) -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        Some(match flag {
            "has_cmpxchg16b" => has!("cmpxchg16b"),
            "has_sse3" => has!("sse3"),
            "has_ssse3" => has!("ssse3"),
            "has_sse41" => has!("sse4.1"),
            "has_sse42" => has!("sse4.2"),
            "has_popcnt" => has!("popcnt"),
            "has_avx" => has!("avx"),
            "has_avx2" => has!("avx2"),
            "has_fma" => has!("fma"),
            "has_avx_vnni" => has!("avxvnni"),
            "has_bmi1" => has!("bmi1"),
            "has_bmi2" => has!("bmi2"),
            "has_avx512bitalg" => has!("avx512bitalg"),
            "has_avx512dq" => has!("avx512dq"),
            "has_avx512f" => has!("avx512f"),
            "has_avx512vl" => has!("avx512vl"),
            "has_avx512vbmi" => has!("avx512vbmi"),
            "has_avx512vnni" => has!("avx512vnni"),
            "has_lzcnt" => has!("lzcnt"),
            _ => return None,
        })
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as has;
        Some(match flag {
            "has_lse" => has!("lse"),
            "has_pauth" => has!("paca"),
            "has_fp16" => has!("fp16"),
            "has_dotprod" => has!("dotprod"),
            "has_i8mm" => has!("i8mm"),
            _ => return None,
        })
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = flag;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "engine")]
    fn t(triple: &str) -> Target {
        Target::parse(triple).unwrap()
    }

    #[cfg(feature = "engine")]
    #[test]
    fn presets_expand_to_their_features() {
        let v3 = Cpu::Named("x86-64-v3".into())
            .features(t("x86_64-unknown-linux-gnu"))
            .unwrap();
        for f in ["has_avx2", "has_bmi2", "has_fma", "has_sse42", "has_lzcnt"] {
            assert!(v3.contains(&f.to_string()), "{f} missing from {v3:?}");
        }
        assert!(!v3.contains(&"has_avx512f".to_string()));
        let base = Cpu::Baseline
            .features(t("x86_64-unknown-linux-gnu"))
            .unwrap();
        assert!(!base.contains(&"has_avx2".to_string()));
    }

    #[cfg(feature = "engine")]
    #[test]
    fn features_take_short_and_plus_names() {
        let f = Cpu::Named("+lse, fp16".into())
            .features(t("aarch64-unknown-linux-gnu"))
            .unwrap();
        assert_eq!(f, vec!["has_fp16".to_string(), "has_lse".to_string()]);
    }

    #[cfg(feature = "engine")]
    #[test]
    fn unknown_names_list_what_the_target_has() {
        let e = Cpu::Named("avx2".into())
            .features(t("aarch64-unknown-linux-gnu"))
            .unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("`avx2` is not a CPU preset or feature of `aarch64"));
        let hint = &e.downcast_ref::<kiln_core::Hinted>().unwrap().hint;
        assert!(hint.contains("lse"), "{hint}");
        let e = Cpu::Named("avx2".into())
            .features(t("pulley64"))
            .unwrap_err();
        assert!(format!("{e:#}").contains("pulley64"));
    }

    #[test]
    fn round_trips_through_its_string() {
        for s in ["baseline", "native", "x86-64-v2,has_avx"] {
            let c: Cpu = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Cpu>(&json).unwrap(), c);
        }
    }
}
