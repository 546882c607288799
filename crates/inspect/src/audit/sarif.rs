//! SARIF 2.1.0 output of audit reports, for code-scanning services.

use super::eval::AuditReport;
use super::rule::Rule;
use serde_json::{Value, json};

/// One SARIF log with one run holding the findings of every report. The
/// audited file is the result's location; the policy line that matched is
/// a related location.
pub fn to_sarif(reports: &[AuditReport]) -> Value {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id(),
                "shortDescription": { "text": rule.description() },
                "defaultConfiguration": { "level": "error" },
            })
        })
        .collect();
    let mut results = Vec::new();
    for report in reports {
        for f in &report.findings {
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
                "ruleIndex": f.rule.index(),
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
            results.push(json!({
                "ruleId": n.rule,
                "ruleIndex": n.rule.index(),
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
