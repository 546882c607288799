//! SARIF 2.1.0 output of audit reports, for code-scanning services.

use super::eval::AuditReport;
use serde_json::{Value, json};

/// Every rule kind an audit reports, with a short description.
const RULES: &[(&str, &str)] = &[
    ("imports.denied", "An import matches a deny pattern."),
    (
        "imports.not-allowed",
        "An import is on no allow list and unlisted imports are denied.",
    ),
    ("exports.missing", "A required export is missing."),
    (
        "exports.forbidden",
        "An export matches a forbidden pattern.",
    ),
    (
        "world.import-outside",
        "An import is not provided by the target world.",
    ),
    (
        "world.export-missing",
        "An export the target world requires is missing.",
    ),
    ("limits.size", "The binary is larger than allowed."),
    (
        "limits.imports",
        "The component has more imports than allowed.",
    ),
    (
        "limits.feature",
        "The binary uses a forbidden wasm feature.",
    ),
    (
        "limits.memory",
        "A memory may grow beyond the allowed size.",
    ),
    (
        "core.denied",
        "A core module import matches a deny pattern.",
    ),
    (
        "core.not-allowed",
        "A core module import is on no allow list and unlisted imports are denied.",
    ),
    (
        "imports.host-specific",
        "A core module imports from outside WASI (a host-specific module such as `env`).",
    ),
    (
        "imports.unexamined",
        "An import no rule of the policy examined.",
    ),
];

/// One SARIF log with one run holding the findings of every report. The
/// audited file is the result's location; the policy line that matched is
/// a related location.
pub fn to_sarif(reports: &[AuditReport]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, text)| {
            json!({
                "id": id,
                "shortDescription": { "text": text },
                "defaultConfiguration": { "level": "error" },
            })
        })
        .collect();
    let mut results = Vec::new();
    for report in reports {
        for f in &report.findings {
            let rule_index = RULES.iter().position(|(id, _)| *id == f.rule).unwrap_or(0);
            let (policy_file, policy_line) = match f.origin.rsplit_once(':') {
                Some((file, line)) => (file.to_string(), line.parse::<u64>().ok()),
                None => (f.origin.clone(), None),
            };
            let mut policy_region = json!({ "uri": policy_file });
            let mut related = json!({
                "id": 0,
                "physicalLocation": { "artifactLocation": policy_region.take() },
                "message": { "text": "the policy rule" },
            });
            if let Some(line) = policy_line {
                related["physicalLocation"]["region"] = json!({ "startLine": line });
            }
            results.push(json!({
                "ruleId": f.rule,
                "ruleIndex": rule_index,
                "level": "error",
                "message": { "text": f.message },
                "locations": [{
                    "physicalLocation": { "artifactLocation": { "uri": report.name } },
                }],
                "relatedLocations": [related],
                "properties": {
                    "item": f.item,
                    "pattern": f.pattern,
                },
            }));
        }
        // Notes are not violations: host-specific imports a default let
        // pass, imports no rule examined.
        for n in &report.notes {
            let rule_index = RULES.iter().position(|(id, _)| *id == n.rule).unwrap_or(0);
            results.push(json!({
                "ruleId": n.rule,
                "ruleIndex": rule_index,
                "level": "note",
                "message": { "text": format!("{}: {}", n.message, n.items.join(", ")) },
                "locations": [{
                    "physicalLocation": { "artifactLocation": { "uri": report.name } },
                }],
                "properties": { "items": n.items },
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "kiln",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://example.invalid/kiln",
                    "rules": rules,
                }
            },
            "results": results,
        }],
    })
}
