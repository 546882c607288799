//! Fuzz target: the audit path never panics on arbitrary bytes and policies.
//!
//! Fuzz target: the audit path — policy parsing, fact reading and checking — on
//! arbitrary bytes and arbitrary policies must never panic.
#![no_main]

use arbitrary::Arbitrary;
use kiln_inspect::audit::{Policy, audit, read_facts};
use libfuzzer_sys::fuzz_target;

/// Policies are built from parts that reach deep into the checker more often
/// than random text would, plus fully arbitrary text.
#[derive(Debug, Arbitrary)]
struct Input {
    wasm: Vec<u8>,
    default_deny: bool,
    allow: Vec<(u8, u8)>,
    deny: Vec<(u8, u8)>,
    require: Vec<(u8, u8)>,
    max_size: Option<u32>,
    max_imports: Option<u8>,
    forbid: Vec<u8>,
    max_memory: Option<u32>,
    raw_policy: String,
}

const NAMES: &[&str] = &["wasi:cli/*", "wasi:*", "*", "wasi:sockets/tcp", "wasi:http/types", "acme:x/y", "", "env::*", "*::*"];
const VERSIONS: &[&str] = &["", "@0.2", "@0.2.x", "@>=0.2.0, <0.3.0", "@=0.2.6", "@>=0.3.0-rc-1", "@*", "@bad", "@"];
const FEATURES: &[&str] = &["threads", "memory64", "multi-memory", "exceptions", "nonsense"];

fn pattern((n, v): (u8, u8)) -> String {
    format!("{:?}", format!("{}{}", NAMES[n as usize % NAMES.len()], VERSIONS[v as usize % VERSIONS.len()]))
}

fn list(items: &[(u8, u8)]) -> String {
    items.iter().take(8).map(|p| pattern(*p)).collect::<Vec<_>>().join(", ")
}

fuzz_target!(|input: Input| {
    let mut text = format!(
        "[imports]\ndefault = {:?}\nallow = [{}]\ndeny = [{}]\n[exports]\nrequire = [{}]\n[core]\ndefault = \"allow\"\ndeny = [{}]\n[limits]\nforbid-features = [{}]\n",
        if input.default_deny { "deny" } else { "allow" },
        list(&input.allow),
        list(&input.deny),
        list(&input.require),
        list(&input.deny),
        input.forbid.iter().take(4).map(|f| format!("{:?}", FEATURES[*f as usize % FEATURES.len()])).collect::<Vec<_>>().join(", "),
    );
    if let Some(s) = input.max_size {
        text.push_str(&format!("max-size = {s}\n"));
    }
    if let Some(n) = input.max_imports {
        text.push_str(&format!("max-imports = {n}\n"));
    }
    if let Some(m) = input.max_memory {
        text.push_str(&format!("max-memory = \"{m} KiB\"\n"));
    }
    let facts = read_facts("fuzz.wasm", &input.wasm);
    for policy_text in [text.as_str(), input.raw_policy.as_str()] {
        if let Ok(policy) = Policy::from_text(policy_text, "fuzz.toml", std::path::Path::new(".")) {
            let _ = policy.explain();
            if let Ok(facts) = &facts {
                let report = audit(facts, &policy, None);
                let _ = kiln_inspect::audit::to_sarif(std::slice::from_ref(&report));
            }
        }
    }
});
