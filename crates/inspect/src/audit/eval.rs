//! Checking audit facts against a policy: every violation becomes a finding.
//!
//! A finding names the item, the rule and where the rule was written.

use super::facts::AuditFacts;
use super::policy::{Default, Lists, Origin, Pattern, Policy, TargetWorld};
use super::rule::Rule;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule, e.g. `imports.denied` (see docs/audit-policy.md); it
    /// serializes and displays as its id.
    pub rule: Rule,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The import, export or feature concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The pattern or limit that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Where the rule was written: `file:line` or `builtin:NAME:line`.
    pub origin: Origin,
}

/// Something the report says that is not a violation: imports a policy let
/// pass without naming them, or imports no rule examined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// `imports.host-specific` (host-specific imports allowed by a default)
    /// or `imports.unexamined` (imports no rule of the policy looked at).
    pub rule: Rule,
    /// What the note says, in one sentence.
    pub message: String,
    /// The imports concerned.
    pub items: Vec<String>,
    /// The rule that let them pass, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// The audit of one input.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// What was audited.
    pub name: String,
    /// Whether it passed (no findings).
    pub passed: bool,
    /// Every violation.
    pub findings: Vec<Finding>,
    /// Imports that passed without a rule naming them, and imports no rule
    /// examined.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// The facts the policy was checked against.
    pub facts: AuditFacts,
}

/// The imports and exports of a target world, by name.
#[derive(Debug, Clone)]
pub struct WorldNames {
    /// `package/world`, for messages.
    pub name: String,
    /// Names the world imports.
    pub imports: Vec<String>,
    /// Names the world exports.
    pub exports: Vec<String>,
    /// Where the world was named in the policy.
    pub origin: Origin,
}

impl WorldNames {
    /// Loads the world a policy names.
    pub fn load(target: &TargetWorld) -> Result<WorldNames> {
        let mut resolve = wit_parser::Resolve::default();
        let (pkg, _) = resolve.push_path(&target.wit).with_context(|| {
            format!("failed to read the policy's WIT `{}`", target.wit.display())
        })?;
        let id = resolve
            .select_world(&[pkg], target.name.as_deref())
            .with_context(|| format!("no such world in `{}`", target.wit.display()))?;
        let world = &resolve.worlds[id];
        let names = |items: &wit_parser::IndexMap<wit_parser::WorldKey, wit_parser::WorldItem>| {
            items.keys().map(|k| resolve.name_world_key(k)).collect()
        };
        Ok(WorldNames {
            name: match world.package {
                Some(p) => format!("{}/{}", resolve.packages[p].name, world.name),
                None => world.name.clone(),
            },
            imports: names(&world.imports),
            exports: names(&world.exports),
            origin: target.origin.clone(),
        })
    }
}

fn split(name: &str) -> (&str, Option<semver::Version>) {
    match name.rsplit_once('@') {
        Some((b, v)) => (b, semver::Version::parse(v).ok()),
        None => (name, None),
    }
}

/// Whether `have` satisfies the need for `want`: the same interface, and a
/// version that is semver-compatible with `want` and not older. A world
/// providing `wasi:cli/environment@0.2.6` satisfies a component importing
/// `@0.2.3`; a component exporting `@0.2.6` satisfies a world asking for
/// `@0.2.0`. Unversioned names match by name alone.
fn satisfies(have: &str, want: &str) -> bool {
    let (hb, hv) = split(have);
    let (wb, wv) = split(want);
    if hb != wb {
        return false;
    }
    match (hv, wv) {
        (Some(h), Some(w)) => {
            semver::VersionReq::parse(&format!("^{w}")).is_ok_and(|r| r.matches(&h))
        }
        _ => true,
    }
}

/// `name`, and for a name derived from a core module's imports, which.
fn described(name: &str, facts: &AuditFacts) -> String {
    match facts.derived_from.get(name) {
        Some(sources) if sources.len() > 3 => format!(
            "`{name}` (from `{}` and {} more)",
            sources[..2].join("`, `"),
            sources.len() - 2
        ),
        Some(sources) => format!("`{name}` (from `{}`)", sources.join("`, `")),
        None => format!("`{name}`"),
    }
}

fn check_lists(
    names: &[String],
    facts: &AuditFacts,
    lists: &Lists,
    kind: &str,
    rules: (Rule, Rule),
    findings: &mut Vec<Finding>,
) {
    for name in names {
        let what = described(name, facts);
        if let Some(p) = lists.deny.iter().find(|p| p.matches(name)) {
            findings.push(Finding {
                rule: rules.0,
                message: format!("{kind} {what} is denied by `{}`", p.text),
                item: Some(name.clone()),
                pattern: Some(p.text.clone()),
                origin: p.origin.clone(),
            });
        } else if let Some((Default::Deny, origin)) = &lists.default
            && !lists.allow.iter().any(|p| p.matches(name))
        {
            findings.push(Finding {
                rule: rules.1,
                message: format!(
                    "{kind} {what} is not on the allow list, and unlisted names are denied"
                ),
                item: Some(name.clone()),
                pattern: None,
                origin: origin.clone(),
            });
        }
    }
}

/// Checks `facts` against `policy` (and the policy's world, loaded by the
/// caller once for all inputs).
pub fn audit(facts: &AuditFacts, policy: &Policy, world: Option<&WorldNames>) -> AuditReport {
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    check_lists(
        &facts.imports,
        facts,
        &policy.imports,
        "import",
        (Rule::ImportsDenied, Rule::ImportsNotAllowed),
        &mut findings,
    );
    check_lists(
        &facts.core_imports,
        facts,
        &policy.core,
        "core import",
        (Rule::CoreDenied, Rule::CoreNotAllowed),
        &mut findings,
    );
    check_host_specific(facts, policy, &mut findings, &mut notes);
    let unexamined = unexamined(facts, policy, world.is_some());
    if !unexamined.is_empty() {
        notes.push(Note {
            rule: Rule::ImportsUnexamined,
            message: format!(
                "no rule of the policy examined {} import{}: add an `[imports]` default, or patterns that name them",
                unexamined.len(),
                if unexamined.len() == 1 { "" } else { "s" }
            ),
            items: unexamined,
            origin: None,
        });
    }

    let present = |p: &Pattern| facts.exports.iter().any(|n| p.matches(n));
    for p in &policy.require_exports {
        if !present(p) {
            findings.push(Finding {
                rule: Rule::ExportsMissing,
                message: format!("no export matches the required `{}`", p.text),
                item: None,
                pattern: Some(p.text.clone()),
                origin: p.origin.clone(),
            });
        }
    }
    if !policy.require_any_export.is_empty() && !policy.require_any_export.iter().any(&present) {
        let wanted: Vec<&str> = policy
            .require_any_export
            .iter()
            .map(|p| p.text.as_str())
            .collect();
        findings.push(Finding {
            rule: Rule::ExportsMissing,
            message: format!("no export matches any of `{}`", wanted.join("`, `")),
            item: None,
            pattern: Some(wanted.join(" | ")),
            origin: policy.require_any_export[0].origin.clone(),
        });
    }
    for name in &facts.exports {
        if let Some(p) = policy.forbid_exports.iter().find(|p| p.matches(name)) {
            findings.push(Finding {
                rule: Rule::ExportsForbidden,
                message: format!("export `{name}` is forbidden by `{}`", p.text),
                item: Some(name.clone()),
                pattern: Some(p.text.clone()),
                origin: p.origin.clone(),
            });
        }
    }

    if let Some(world) = world {
        for name in &facts.imports {
            if !world
                .imports
                .iter()
                .any(|provided| satisfies(provided, name))
            {
                findings.push(Finding {
                    rule: Rule::WorldImportOutside,
                    message: format!(
                        "import {} is not provided by the world `{}`",
                        described(name, facts),
                        world.name
                    ),
                    item: Some(name.clone()),
                    pattern: Some(world.name.clone()),
                    origin: world.origin.clone(),
                });
            }
        }
        for name in &facts.host_specific {
            findings.push(Finding {
                rule: Rule::WorldImportOutside,
                message: format!(
                    "host-specific import `{name}` is not provided by the world `{}` (no WIT interface provides it)",
                    world.name
                ),
                item: Some(name.clone()),
                pattern: Some(world.name.clone()),
                origin: world.origin.clone(),
            });
        }
        for want in &world.exports {
            if !facts.exports.iter().any(|have| satisfies(have, want)) {
                findings.push(Finding {
                    rule: Rule::WorldExportMissing,
                    message: format!("the world `{}` requires the export `{want}`", world.name),
                    item: Some(want.clone()),
                    pattern: Some(world.name.clone()),
                    origin: world.origin.clone(),
                });
            }
        }
    }

    if let (Some(limit), Some(size)) = (&policy.max_size, facts.size)
        && size > limit.value
    {
        findings.push(Finding {
            rule: Rule::LimitsSize,
            message: format!(
                "the binary is {size} bytes, over the limit of {}",
                limit.value
            ),
            item: None,
            pattern: Some(format!("max-size = {}", limit.value)),
            origin: limit.origin.clone(),
        });
    }
    if let Some(limit) = &policy.max_imports
        && facts.imports.len() > limit.value as usize
    {
        findings.push(Finding {
            rule: Rule::LimitsImports,
            message: format!(
                "{} imports, over the limit of {}",
                facts.imports.len(),
                limit.value
            ),
            item: None,
            pattern: Some(format!("max-imports = {}", limit.value)),
            origin: limit.origin.clone(),
        });
    }
    let used = facts.features();
    for f in &policy.forbid_features {
        if used.contains(&f.value.as_str()) {
            findings.push(Finding {
                rule: Rule::LimitsFeature,
                message: format!("the binary uses the forbidden feature `{}`", f.value),
                item: Some(f.value.clone()),
                pattern: Some(format!("forbid-features = [{:?}]", f.value)),
                origin: f.origin.clone(),
            });
        }
    }
    if let Some(limit) = &policy.max_memory {
        for m in &facts.memories {
            let over = match m.max_bytes {
                None => Some("a memory declares no maximum".to_string()),
                Some(b) if b > limit.value => Some(format!("a memory may grow to {b} bytes")),
                Some(_) => None,
            };
            if let Some(why) = over {
                findings.push(Finding {
                    rule: Rule::LimitsMemory,
                    message: format!("{why}, over the limit of {} bytes", limit.value),
                    item: None,
                    pattern: Some(format!("max-memory = {}", limit.value)),
                    origin: limit.origin.clone(),
                });
            }
        }
    }
    AuditReport {
        name: facts.name.clone(),
        passed: findings.is_empty(),
        findings,
        notes,
        facts: facts.clone(),
    }
}

/// A core module's host-specific imports (`env::…`, `gojs::…`) stand for no
/// WASI interface, so `[imports]` can only judge them by name or by its
/// default: a deny pattern that names one denies it (deny wins, as
/// everywhere); otherwise `[core]` rules that decide about it (their
/// findings are `core.*`) or an allow pattern let it pass, and failing
/// those `default = "deny"` makes each a finding and `default = "allow"` a
/// note.
fn check_host_specific(
    facts: &AuditFacts,
    policy: &Policy,
    findings: &mut Vec<Finding>,
    notes: &mut Vec<Note>,
) {
    let mut allowed = Vec::new();
    for name in &facts.host_specific {
        let lists = &policy.imports;
        let allowed_by_rule =
            || policy.core.looks_at(name) || lists.allow.iter().any(|p| p.matches(name));
        match lists.deny.iter().find(|p| p.matches(name)) {
            // Denied by name: deny wins.
            Some(p) => findings.push(Finding {
                rule: Rule::ImportsDenied,
                message: format!("host-specific import `{name}` is denied by `{}`", p.text),
                item: Some(name.clone()),
                pattern: Some(p.text.clone()),
                origin: p.origin.clone(),
            }),
            // Allowed: `[core]` decides about it, or an allow pattern names it.
            None if allowed_by_rule() => {}
            // Unlisted: the default decides.
            None => match &lists.default {
                Some((Default::Deny, origin)) => findings.push(Finding {
                    rule: Rule::ImportsHostSpecific,
                    message: format!(
                        "core import `{name}` is host-specific (no WASI interface provides it), and unlisted imports are denied"
                    ),
                    item: Some(name.clone()),
                    pattern: None,
                    origin: origin.clone(),
                }),
                Some((Default::Allow, origin)) => allowed.push((name.clone(), origin.clone())),
                None => {}
            },
        }
    }
    if let Some((_, origin)) = allowed.first() {
        let origin = origin.clone();
        let mut modules: Vec<&str> = allowed
            .iter()
            .filter_map(|(n, _)| n.split_once("::").map(|(m, _)| m))
            .collect();
        modules.dedup();
        notes.push(Note {
            rule: Rule::ImportsHostSpecific,
            message: format!(
                "{} host-specific import{} passed only because unlisted imports are allowed; the module needs a host that provides `{}`",
                allowed.len(),
                if allowed.len() == 1 { "" } else { "s" },
                modules.join("`, `")
            ),
            items: allowed.into_iter().map(|(n, _)| n).collect(),
            origin: Some(origin),
        });
    }
}

/// The imports no rule of the policy decided about. For a component, its
/// imports; for a core module, its core imports (`module::name`), each
/// examined when `[core]` looks at it or `[imports]` (or a target world)
/// looks at what it stands for. A WASI function that needs no interface
/// (`sched_yield`) grants nothing and needs no rule.
fn unexamined(facts: &AuditFacts, policy: &Policy, world: bool) -> Vec<String> {
    let interface_examined = |name: &str| world || policy.imports.looks_at(name);
    if facts.kind != Some(kiln_core::WasmKind::CoreModule) {
        return facts
            .imports
            .iter()
            .filter(|n| !interface_examined(n))
            .cloned()
            .collect();
    }
    let host_specific: HashSet<&str> = facts.host_specific.iter().map(String::as_str).collect();
    // Whether every interface each core import stands for was judged.
    let mut judged: HashMap<&str, bool> = HashMap::new();
    for (interface, sources) in &facts.derived_from {
        let examined = interface_examined(interface);
        for raw in sources {
            *judged.entry(raw.as_str()).or_insert(true) &= examined;
        }
    }
    facts
        .core_imports
        .iter()
        .filter(|raw| {
            if policy.core.looks_at(raw) {
                return false;
            }
            if host_specific.contains(raw.as_str()) {
                return !policy.imports.looks_at(raw);
            }
            !judged.get(raw.as_str()).copied().unwrap_or(true)
        })
        .cloned()
        .collect()
}

/// What changed between two versions of a component.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    /// Imports only the new version has.
    pub imports_added: Vec<String>,
    /// Imports only the old version has.
    pub imports_removed: Vec<String>,
    /// Exports only the new version has.
    pub exports_added: Vec<String>,
    /// Exports only the old version has.
    pub exports_removed: Vec<String>,
}

impl Diff {
    /// Compares two sets of facts by name.
    pub fn between(old: &AuditFacts, new: &AuditFacts) -> Diff {
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            let mut v: Vec<String> = a.iter().filter(|x| !b.contains(x)).cloned().collect();
            v.sort();
            v
        };
        Diff {
            imports_added: only(&new.imports, &old.imports),
            imports_removed: only(&old.imports, &new.imports),
            exports_added: only(&new.exports, &old.exports),
            exports_removed: only(&old.exports, &new.exports),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.imports_added.is_empty()
            && self.imports_removed.is_empty()
            && self.exports_added.is_empty()
            && self.exports_removed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_versions_are_semver_compatible() {
        assert!(satisfies(
            "wasi:cli/environment@0.2.6",
            "wasi:cli/environment@0.2.3"
        ));
        assert!(!satisfies(
            "wasi:cli/environment@0.2.3",
            "wasi:cli/environment@0.2.6"
        ));
        assert!(!satisfies(
            "wasi:cli/environment@0.3.0",
            "wasi:cli/environment@0.2.6"
        ));
        assert!(satisfies("run", "run"));
        assert!(!satisfies(
            "wasi:cli/exit@0.2.0",
            "wasi:cli/environment@0.2.0"
        ));
    }
}
