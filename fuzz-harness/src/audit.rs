//! Fuzz targets for audit policies and the checks run against them.

use arbitrary::{Arbitrary, Unstructured};
use kiln_inspect::audit::{AuditFacts, MemoryFacts, Pattern, Policy, WorldNames, audit as check};
use std::path::Path;

/// Policy text and a wasm binary, separated by the first NUL byte, through
/// what `kiln audit FILE --policy P` runs: the policy parse, the facts read,
/// the check, its explanation and SARIF. Oracle: no panic, and SARIF is JSON.
pub fn audit(data: &[u8]) {
    let (policy, wasm) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(policy) = Policy::from_text(
        &String::from_utf8_lossy(policy),
        "fuzz.toml",
        Path::new("."),
    ) else {
        return;
    };
    let _ = policy.explain();
    if let Ok(facts) = kiln_inspect::audit::read_facts("fuzz.wasm", wasm) {
        report(&facts, &policy, None);
    }
}

/// A policy assembled from parts that reach deep into the checker (names,
/// version ranges, limits, features) and audit facts as a registry's Wasm
/// config or a hostile binary may present them, through the check.
/// Oracles: no panic; the report and SARIF serialize as JSON.
pub fn audit_facts(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else {
        return;
    };
    let text = input.policy_text();
    let facts = input.facts();
    let world = input.world.then(|| WorldNames {
        name: "fuzz:world/w".to_string(),
        imports: input.world_imports.iter().map(|n| name(*n)).collect(),
        exports: input.world_exports.iter().map(|n| name(*n)).collect(),
        origin: "fuzz.toml:1".to_string(),
    });
    for text in [text.as_str(), input.raw_policy.as_str()] {
        if let Ok(policy) = Policy::from_text(text, "fuzz.toml", Path::new(".")) {
            let _ = policy.explain();
            report(&facts, &policy, world.as_ref());
        }
    }
}

/// Policy text as a policy file, as the `[audit]` table of a kiln.toml, and
/// its first line as a pattern matched against the other lines. Oracle: no
/// panic; a pattern without wildcards or versions matches its own name.
pub fn policy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(policy) = Policy::from_text(&text, "fuzz.toml", Path::new(".")) {
        let _ = policy.explain();
    }
    if let Ok(Some(policy)) = Policy::from_kiln_toml_text(&text, "kiln.toml", Path::new(".")) {
        let _ = policy.explain();
    }
    let _ = Policy::from_arg(&format!("builtin:{}", text.lines().next().unwrap_or("")));
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(pattern) = Pattern::parse(first, "fuzz.toml:1".to_string()) {
        for line in rest.lines() {
            let _ = pattern.matches(line);
        }
        // Names are compared as written; a pattern is trimmed, so it is
        // the trimmed text that must match.
        let name = first.trim();
        if !name.contains(['*', '@']) && !name.is_empty() {
            assert!(pattern.matches(name), "`{name}` does not match itself");
        }
    }
}

fn report(facts: &AuditFacts, policy: &Policy, world: Option<&WorldNames>) {
    let report = check(facts, policy, world);
    let sarif = kiln_inspect::audit::to_sarif(std::slice::from_ref(&report));
    serde_json::to_string(&sarif).unwrap();
    serde_json::to_string(&report).unwrap();
}

/// Interface names and version suffixes policies and facts are built from;
/// the fuzzer also supplies free strings.
const NAMES: &[&str] = &[
    "wasi:cli/*",
    "wasi:*",
    "*",
    "wasi:sockets/tcp",
    "wasi:http/types",
    "wasi:cli/environment",
    "acme:x/y",
    "",
    "env::*",
    "*::*",
    "wasi_snapshot_preview1::fd_write",
];
const VERSIONS: &[&str] = &[
    "",
    "@0.2",
    "@0.2.x",
    "@>=0.2.0, <0.3.0",
    "@=0.2.6",
    "@>=0.3.0-rc-1",
    "@*",
    "@bad",
    "@",
    "@0.2.6",
];
const FEATURES: &[&str] = &[
    "threads",
    "memory64",
    "multi-memory",
    "exceptions",
    "nonsense",
];

/// A name from the tables, or a free string when the first byte says so.
#[derive(Debug, Clone, Copy, Arbitrary)]
struct Name(u8, u8);

fn name(Name(n, v): Name) -> String {
    let n = NAMES[n as usize % NAMES.len()].trim_end_matches('*');
    format!("{n}{}", VERSIONS[v as usize % VERSIONS.len()])
}

fn pattern(Name(n, v): Name) -> String {
    format!(
        "{}{}",
        NAMES[n as usize % NAMES.len()],
        VERSIONS[v as usize % VERSIONS.len()]
    )
}

#[derive(Debug, Arbitrary)]
struct Input {
    default_deny: bool,
    allow: Vec<Name>,
    deny: Vec<Name>,
    require: Vec<Name>,
    core_deny: Vec<Name>,
    max_size: Option<u32>,
    max_imports: Option<u8>,
    forbid: Vec<u8>,
    max_memory: Option<u32>,
    raw_policy: String,
    imports: Vec<Name>,
    free_imports: Vec<String>,
    exports: Vec<Name>,
    core_imports: Vec<Name>,
    memories: Vec<(bool, bool, Option<u64>)>,
    size: Option<u64>,
    core_modules: u32,
    uses_exceptions: bool,
    uses_multi_memory: bool,
    world: bool,
    world_imports: Vec<Name>,
    world_exports: Vec<Name>,
}

impl Input {
    fn policy_text(&self) -> String {
        let list = |items: &[Name]| {
            items
                .iter()
                .take(8)
                .map(|p| format!("{:?}", pattern(*p)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut text = format!(
            "[imports]\ndefault = {:?}\nallow = [{}]\ndeny = [{}]\n[exports]\nrequire = [{}]\n\
             [core]\ndefault = \"allow\"\ndeny = [{}]\n[limits]\nforbid-features = [{}]\n",
            if self.default_deny { "deny" } else { "allow" },
            list(&self.allow),
            list(&self.deny),
            list(&self.require),
            list(&self.core_deny),
            self.forbid
                .iter()
                .take(4)
                .map(|f| format!("{:?}", FEATURES[*f as usize % FEATURES.len()]))
                .collect::<Vec<_>>()
                .join(", "),
        );
        if let Some(s) = self.max_size {
            text.push_str(&format!("max-size = {s}\n"));
        }
        if let Some(n) = self.max_imports {
            text.push_str(&format!("max-imports = {n}\n"));
        }
        if let Some(m) = self.max_memory {
            text.push_str(&format!("max-memory = \"{m} KiB\"\n"));
        }
        text
    }

    fn facts(&self) -> AuditFacts {
        let mut imports: Vec<String> = self.imports.iter().map(|n| name(*n)).collect();
        imports.extend(self.free_imports.iter().take(4).cloned());
        AuditFacts {
            name: "fuzz.wasm".to_string(),
            kind: None,
            size: self.size,
            imports,
            exports: self.exports.iter().map(|n| name(*n)).collect(),
            core_imports: self.core_imports.iter().map(|n| name(*n)).collect(),
            memories: self
                .memories
                .iter()
                .take(4)
                .map(|(shared, memory64, max_bytes)| MemoryFacts {
                    shared: *shared,
                    memory64: *memory64,
                    max_bytes: *max_bytes,
                })
                .collect(),
            core_modules: self.core_modules,
            uses_exceptions: self.uses_exceptions,
            uses_multi_memory: self.uses_multi_memory,
            ..AuditFacts::default()
        }
    }
}
