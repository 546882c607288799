//! `kiln audit`: checks what components import and export against a policy, or compares two versions.

use super::read_input;
use crate::Outcome;
use crate::output::Printer;
use anyhow::{Context, Result, bail};
use kiln_core::{Reporter, hinted};
use kiln_inspect::audit::{self, AuditFacts, AuditReport, Diff, Policy, WorldNames};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Check components' imports and exports against a policy before deploy.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 when every input passes (or, with --diff, nothing changed), \
1 when any input violates the policy or is invalid wasm outside its function bodies (or, with \
--diff, something changed), 2 on error (including, with --diff, an invalid input).\n\n\
Policies: a TOML file (docs/audit-policy.md), `builtin:NAME` (wasi-cli-pure, http-handler), \
or, without --policy, the [audit] table of the nearest kiln.toml."
)]
pub struct Args {
    /// Files to audit, or directories whose .wasm files are all audited (`-` reads stdin).
    #[arg(value_name = "INPUT", required_unless_present_any = ["explain", "diff"])]
    inputs: Vec<PathBuf>,
    /// The policy: a file or `builtin:NAME`.
    #[arg(long, value_name = "POLICY")]
    policy: Option<String>,
    /// Print the effective policy, each rule with where it came from, and exit.
    #[arg(long)]
    explain: bool,
    /// Report imports and exports added and removed between OLD and NEW.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with_all = ["inputs", "explain", "sarif"])]
    diff: Option<Vec<PathBuf>>,
    /// Print the results as JSON.
    #[arg(long, conflicts_with = "sarif")]
    json: bool,
    /// Print the results as SARIF 2.1.0.
    #[arg(long)]
    sarif: bool,
    /// For OCI references: download the wasm layer and audit it, failing
    /// if it disagrees with the import and export lists of the config.
    #[arg(long)]
    deep: bool,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
}

#[derive(Serialize)]
struct Results<'a> {
    passed: bool,
    policy: &'a str,
    reports: &'a [AuditReport],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    invalid: &'a [InvalidInput],
}

/// An input wasmparser's validator rejects: it is not audited, and the
/// audit fails.
#[derive(Serialize)]
struct InvalidInput {
    name: String,
    offset: usize,
    message: String,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    if let Some(pair) = &args.diff {
        return diff(&pair[0], &pair[1], args.json, printer);
    }
    let policy = load_policy(args.policy.as_deref())?;
    if args.explain {
        printer.data(&policy.explain())?;
        return Ok(Outcome::Ok);
    }
    let world = policy.world.as_ref().map(WorldNames::load).transpose()?;
    let mut reports = Vec::new();
    let mut invalid = Vec::new();
    for input in expand(&args.inputs)? {
        let facts = match super::registry::as_reference(&input) {
            Some(r) => remote_facts(&r, &args, printer),
            None => facts_of(&input),
        };
        let facts = match facts {
            Ok(facts) => facts,
            Err(e) => match e.downcast_ref::<kiln_inspect::Invalid>() {
                Some(e) => {
                    printer.warn(&super::inspect::invalid_message(&input, e));
                    invalid.push(InvalidInput {
                        name: input.display().to_string(),
                        offset: e.offset,
                        message: e.message.clone(),
                    });
                    continue;
                }
                None => return Err(e),
            },
        };
        reports.push(audit::audit(&facts, &policy, world.as_ref()));
    }
    let passed = reports.iter().all(|r| r.passed) && invalid.is_empty();
    if args.sarif {
        printer.json(&audit::to_sarif(&reports))?;
    } else if args.json {
        printer.json(&Results {
            passed,
            policy: &policy.source,
            reports: &reports,
            invalid: &invalid,
        })?;
    } else {
        let mut out = String::new();
        for r in &reports {
            if r.passed {
                let _ = writeln!(out, "PASS {}", r.name);
            } else {
                let _ = writeln!(
                    out,
                    "FAIL {} ({} finding{})",
                    r.name,
                    r.findings.len(),
                    if r.findings.len() == 1 { "" } else { "s" }
                );
                for f in &r.findings {
                    let _ = writeln!(out, "  {}: {} ({})", f.rule, f.message, f.origin);
                }
            }
        }
        for i in &invalid {
            let _ = writeln!(
                out,
                "FAIL {} (invalid at offset {:#x}: {})",
                i.name, i.offset, i.message
            );
        }
        printer.data(&out)?;
    }
    Ok(if passed {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

fn load_policy(policy: Option<&str>) -> Result<Policy> {
    match policy {
        Some(p) => match p.strip_prefix("builtin:") {
            Some(name) => Policy::builtin(name),
            None => Policy::from_file(Path::new(p)),
        },
        None => {
            let cwd = std::env::current_dir().context("failed to read the current directory")?;
            for dir in cwd.ancestors() {
                let manifest = dir.join("kiln.toml");
                if manifest.is_file()
                    && let Some(policy) = Policy::from_kiln_toml(&manifest)?
                {
                    return Ok(policy);
                }
            }
            Err(hinted(
                "no audit policy: no --policy was given and no kiln.toml with an `[audit]` table was found",
                format!(
                    "pass `--policy FILE` or `--policy builtin:NAME` (built-ins: {})",
                    audit::BUILTINS.join(", ")
                ),
            ))
        }
    }
}

/// Files to audit: each file as given, each directory's .wasm files
/// (recursively, sorted).
fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.as_os_str() != "-" && input.is_dir() {
            let mut found = Vec::new();
            collect_wasm(input, &mut found)?;
            if found.is_empty() {
                bail!("`{}` holds no .wasm file", input.display());
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

fn collect_wasm(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to read `{}`", dir.display()))?
    {
        let path = entry
            .with_context(|| format!("failed to read `{}`", dir.display()))?
            .path();
        if path.is_dir() {
            collect_wasm(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "wasm") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads an input's facts. Large files are mapped, so the sections an audit
/// skips (code, data contents, custom sections) are never read from disk.
fn facts_of(input: &Path) -> Result<AuditFacts> {
    let bytes = read_input(input)?;
    audit::read_facts(&input.display().to_string(), &bytes)
        .with_context(|| format!("failed to read `{}`", input.display()))
}

/// An OCI artifact's facts: from its config's import and export lists,
/// without downloading the wasm; from the wasm itself when the config does
/// not list them (as other tools push Wasm), or with `--deep`, checked
/// against what the config lists.
fn remote_facts(r: &kiln_oci::Reference, args: &Args, printer: &Printer) -> Result<AuditFacts> {
    let store = args.registry.open(r, false, printer)?;
    let name = r.to_string();
    let resolved = store.resolve(r, printer)?;
    if args.deep || !resolved.lists_imports_and_exports() {
        if !resolved.lists_imports_and_exports() {
            printer.status(
                "Reading",
                &format!(
                    "the wasm layer of `{name}`: its config does not list imports and exports"
                ),
            );
        }
        let bytes = store.wasm_bytes(r, &resolved.layer, printer)?;
        let facts = audit::read_facts(&name, &bytes)
            .with_context(|| format!("failed to read the wasm of `{name}`"))?;
        let Some(listed) = &resolved.config.component else {
            return Ok(facts);
        };
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        if sorted(&listed.imports) != sorted(&facts.imports)
            || sorted(&listed.exports) != sorted(&facts.exports)
        {
            let d = Diff::between(
                &AuditFacts {
                    imports: listed.imports.clone(),
                    exports: listed.exports.clone(),
                    ..Default::default()
                },
                &facts,
            );
            bail!(
                "the config of `{name}` disagrees with its wasm layer (imports the config omits: {:?}; listed but absent: {:?}; exports the config omits: {:?}; listed but absent: {:?}); do not trust this artifact's metadata",
                d.imports_added,
                d.imports_removed,
                d.exports_added,
                d.exports_removed
            );
        }
        return Ok(facts);
    }
    printer.status(
        "Audited",
        &format!(
            "`{name}` from its config (without the wasm; --deep also checks memories and features)"
        ),
    );
    // A config that lists imports and exports in a `component` block
    // describes a component, whatever its `os` says.
    let kind = Some(
        resolved
            .config
            .kind()
            .unwrap_or(kiln_core::WasmKind::Component),
    );
    let info = resolved.config.component.unwrap_or_default();
    Ok(AuditFacts {
        name,
        kind,
        size: Some(resolved.layer.size),
        imports: info.imports,
        exports: info.exports,
        ..Default::default()
    })
}

fn diff(old: &Path, new: &Path, json: bool, printer: &Printer) -> Result<Outcome> {
    let d = Diff::between(&facts_of(old)?, &facts_of(new)?);
    if json {
        printer.json(&d)?;
    } else {
        let mut out = String::new();
        for (sign, what, items) in [
            ("+", "import", &d.imports_added),
            ("-", "import", &d.imports_removed),
            ("+", "export", &d.exports_added),
            ("-", "export", &d.exports_removed),
        ] {
            for i in items {
                let _ = writeln!(out, "{sign} {what} {i}");
            }
        }
        printer.data(&out)?;
    }
    Ok(if d.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}
