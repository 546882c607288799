//! The rules an audit reports findings and notes under, each with its id and description.
//!
//! The ids are what JSON, SARIF and the text report print (see
//! docs/audit-policy.md); they are written here once.

use serde::{Serialize, Serializer};
use std::fmt;

/// What a finding or note is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// An import matches a deny pattern.
    ImportsDenied,
    /// An import is on no allow list and unlisted imports are denied.
    ImportsNotAllowed,
    /// A required export is missing.
    ExportsMissing,
    /// An export matches a forbidden pattern.
    ExportsForbidden,
    /// An import is not provided by the target world.
    WorldImportOutside,
    /// An export the target world requires is missing.
    WorldExportMissing,
    /// The binary is larger than allowed.
    LimitsSize,
    /// The component has more imports than allowed.
    LimitsImports,
    /// The binary uses a forbidden wasm feature.
    LimitsFeature,
    /// A memory may grow beyond the allowed size.
    LimitsMemory,
    /// A core module import matches a deny pattern.
    CoreDenied,
    /// A core module import is on no allow list and unlisted imports are
    /// denied.
    CoreNotAllowed,
    /// A core module imports from outside WASI.
    ImportsHostSpecific,
    /// An import no rule of the policy examined.
    ImportsUnexamined,
}

impl Rule {
    /// Every rule, in the order SARIF lists them.
    pub const ALL: [Rule; 14] = [
        Rule::ImportsDenied,
        Rule::ImportsNotAllowed,
        Rule::ExportsMissing,
        Rule::ExportsForbidden,
        Rule::WorldImportOutside,
        Rule::WorldExportMissing,
        Rule::LimitsSize,
        Rule::LimitsImports,
        Rule::LimitsFeature,
        Rule::LimitsMemory,
        Rule::CoreDenied,
        Rule::CoreNotAllowed,
        Rule::ImportsHostSpecific,
        Rule::ImportsUnexamined,
    ];

    /// The rule's id, e.g. `imports.denied`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::ImportsDenied => "imports.denied",
            Rule::ImportsNotAllowed => "imports.not-allowed",
            Rule::ExportsMissing => "exports.missing",
            Rule::ExportsForbidden => "exports.forbidden",
            Rule::WorldImportOutside => "world.import-outside",
            Rule::WorldExportMissing => "world.export-missing",
            Rule::LimitsSize => "limits.size",
            Rule::LimitsImports => "limits.imports",
            Rule::LimitsFeature => "limits.feature",
            Rule::LimitsMemory => "limits.memory",
            Rule::CoreDenied => "core.denied",
            Rule::CoreNotAllowed => "core.not-allowed",
            Rule::ImportsHostSpecific => "imports.host-specific",
            Rule::ImportsUnexamined => "imports.unexamined",
        }
    }

    /// One sentence saying what the rule reports (SARIF's short
    /// description).
    pub fn description(self) -> &'static str {
        match self {
            Rule::ImportsDenied => "An import matches a deny pattern.",
            Rule::ImportsNotAllowed => {
                "An import is on no allow list and unlisted imports are denied."
            }
            Rule::ExportsMissing => "A required export is missing.",
            Rule::ExportsForbidden => "An export matches a forbidden pattern.",
            Rule::WorldImportOutside => "An import is not provided by the target world.",
            Rule::WorldExportMissing => "An export the target world requires is missing.",
            Rule::LimitsSize => "The binary is larger than allowed.",
            Rule::LimitsImports => "The component has more imports than allowed.",
            Rule::LimitsFeature => "The binary uses a forbidden wasm feature.",
            Rule::LimitsMemory => "A memory may grow beyond the allowed size.",
            Rule::CoreDenied => "A core module import matches a deny pattern.",
            Rule::CoreNotAllowed => {
                "A core module import is on no allow list and unlisted imports are denied."
            }
            Rule::ImportsHostSpecific => {
                "A core module imports from outside WASI (a host-specific module such as `env`)."
            }
            Rule::ImportsUnexamined => "An import no rule of the policy examined.",
        }
    }

    /// The rule's position in [`Rule::ALL`] (SARIF's `ruleIndex`).
    pub fn index(self) -> usize {
        Rule::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_serialize_as_themselves() {
        let mut ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
        for (i, rule) in Rule::ALL.iter().enumerate() {
            assert_eq!(rule.index(), i);
            assert_eq!(
                serde_json::to_value(rule).unwrap(),
                serde_json::Value::String(rule.id().into())
            );
            assert_eq!(rule.to_string(), rule.id());
        }
    }
}
