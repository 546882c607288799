//! `kiln audit`: checks what components import and export against a policy, or compares two versions.

use crate::ops::read_input;
use crate::outcome::Outcome;
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
1 when any input violates the policy (or, with --diff, something changed), 2 on error: an input \
that is not valid wasm (every input is validated, function bodies included, unless \
--no-validate), that uses an encoding kiln cannot read, or that cannot be read at all.\n\n\
Core modules are audited at the level of WIT interfaces: each WASI preview1 import stands for \
the WASI 0.2 interfaces the preview1 adapter imports for it, and imports from any other module \
(`env`, `gojs`, ...) are host-specific (docs/audit-policy.md).\n\n\
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
    /// Skip validating function bodies: read only the facts an audit needs
    /// (the section structure is still validated). For callers that
    /// validated the input already.
    #[arg(long)]
    no_validate: bool,
    #[command(flatten)]
    registry: super::args::RegistryArgs,
}

#[derive(Serialize)]
struct Results<'a> {
    passed: bool,
    policy: &'a str,
    reports: &'a [AuditReport],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    invalid: &'a [InvalidInput],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    unreadable: &'a [UnreadableInput],
}

/// An input that is not valid wasm: it is not audited, and the audit is an
/// error (exit 2).
#[derive(Serialize)]
struct InvalidInput {
    name: String,
    offset: usize,
    message: String,
}

/// An input kiln cannot read: missing, not wasm, or in an encoding newer
/// than kiln's parser. Not audited; the audit is an error (exit 2).
#[derive(Serialize)]
struct UnreadableInput {
    name: String,
    message: String,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    if let Some(pair) = &args.diff {
        return diff(&pair[0], &pair[1], args.json, !args.no_validate, printer);
    }
    let policy = load_policy(args.policy.as_deref())?;
    if args.explain {
        printer.data(&policy.explain())?;
        return Ok(Outcome::Ok);
    }
    let world = policy.world.as_ref().map(WorldNames::load).transpose()?;
    let mut reports = Vec::new();
    let mut invalid = Vec::new();
    let mut unreadable = Vec::new();
    for input in expand(&args.inputs)? {
        let facts = match crate::ops::registry::as_reference(&input) {
            Some(r) => remote_facts(&r, &args, printer),
            None => facts_of(&input, !args.no_validate),
        };
        let name = input.display().to_string();
        match facts {
            Ok(facts) => reports.push(audit::audit(&facts, &policy, world.as_ref())),
            Err(e) => match e.downcast_ref::<kiln_core::Invalid>() {
                Some(i) if !kiln_inspect::unknown_encoding(i) => {
                    printer.warn(&crate::render::invalid_message(&input, i));
                    invalid.push(InvalidInput {
                        name,
                        offset: i.offset,
                        message: i.message.clone(),
                    });
                }
                Some(i) => {
                    let message = cannot_read(i);
                    printer.warn(&format!("`{name}`: {message}"));
                    unreadable.push(UnreadableInput { name, message });
                }
                None => {
                    printer.warn(&format!("{e:#}"));
                    unreadable.push(UnreadableInput {
                        name,
                        message: format!("{e:#}"),
                    });
                }
            },
        }
    }
    let passed = reports.iter().all(|r| r.passed) && invalid.is_empty() && unreadable.is_empty();
    if args.sarif {
        printer.json(&audit::to_sarif(&reports))?;
    } else if args.json {
        printer.json(&Results {
            passed,
            policy: &policy.source,
            reports: &reports,
            invalid: &invalid,
            unreadable: &unreadable,
        })?;
    } else {
        printer.data(&render(&reports, &invalid, &unreadable))?;
    }
    let failed = invalid.len() + unreadable.len();
    if failed > 0 {
        return Err(hinted(
            format!(
                "{failed} of {} input{} could not be audited: {} invalid, {} unreadable",
                reports.len() + failed,
                if reports.len() + failed == 1 { "" } else { "s" },
                invalid.len(),
                unreadable.len()
            ),
            "an audit never passes a binary it could not check; `kiln validate FILE` shows what is wrong with an invalid one",
        ));
    }
    Ok(if passed {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// The message for a binary in an encoding kiln's parser does not know.
fn cannot_read(i: &kiln_core::Invalid) -> String {
    format!(
        "cannot read it: {} at offset {:#x} is an encoding {} does not know; the binary is malformed, or newer than this kiln",
        i.message,
        i.offset,
        kiln_inspect::PARSER
    )
}

/// Most items a note lists in human output; `--json` lists them all.
const NOTE_ITEMS: usize = 8;

fn render(
    reports: &[AuditReport],
    invalid: &[InvalidInput],
    unreadable: &[UnreadableInput],
) -> String {
    let mut out = String::new();
    for r in reports {
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
        for n in &r.notes {
            let shown: Vec<&str> = n
                .items
                .iter()
                .take(NOTE_ITEMS)
                .map(String::as_str)
                .collect();
            let more = n.items.len().saturating_sub(NOTE_ITEMS);
            let _ = write!(out, "  note: {}: {}", n.message, shown.join(", "));
            if more > 0 {
                let _ = write!(out, " and {more} more");
            }
            match &n.origin {
                Some(origin) => {
                    let _ = writeln!(out, " ({origin})");
                }
                None => out.push('\n'),
            }
        }
    }
    for i in invalid {
        let _ = writeln!(
            out,
            "ERROR {} (invalid at offset {:#x}: {})",
            i.name, i.offset, i.message
        );
    }
    for u in unreadable {
        let _ = writeln!(out, "ERROR {} ({})", u.name, u.message);
    }
    out
}

fn load_policy(policy: Option<&str>) -> Result<Policy> {
    match policy {
        Some(p) => Policy::from_arg(p),
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

/// Reads an input's facts, and validates it (function bodies included)
/// unless `validate` is false. Large files are mapped, so without
/// validation the sections an audit skips (code, data contents, custom
/// sections) are never read from disk.
fn facts_of(input: &Path, validate: bool) -> Result<AuditFacts> {
    let bytes = read_input(input)?;
    facts_of_bytes(&input.display().to_string(), &bytes, validate)
        .with_context(|| format!("failed to read `{}`", input.display()))
}

/// The facts of a binary, read while the binary is validated on the other
/// cores. The structure gate of the facts reader runs first in the file and
/// reports its own errors; a function body the validator rejects is an
/// [`kiln_core::Invalid`] too.
fn facts_of_bytes(name: &str, bytes: &[u8], validate: bool) -> Result<AuditFacts> {
    if !validate {
        return audit::read_facts(name, bytes);
    }
    let check = || kiln_component::validate_with(bytes, kiln_component::WasmFeatures::all());
    // Below a megabyte both take less time than starting a thread.
    let (facts, valid) = if bytes.len() < 1 << 20 {
        (audit::read_facts(name, bytes), check())
    } else {
        std::thread::scope(|s| {
            let valid = s.spawn(check);
            let facts = audit::read_facts(name, bytes);
            let valid = valid.join().unwrap_or_else(|_| {
                Err(kiln_core::Invalid {
                    offset: 0,
                    message: "internal error: validation panicked".to_string(),
                })
            });
            (facts, valid)
        })
    };
    let facts = facts?;
    valid?;
    Ok(facts)
}

/// An OCI artifact's facts: from its config's import and export lists,
/// without downloading the wasm; from the wasm itself when the config does
/// not list them (as other tools push Wasm), or with `--deep`, checked
/// against what the config lists.
fn remote_facts(r: &kiln_oci::Reference, args: &Args, printer: &Printer) -> Result<AuditFacts> {
    let store = args.registry.options().open(r, false, printer)?;
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
        let facts = facts_of_bytes(&name, &bytes, !args.no_validate)
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

fn diff(old: &Path, new: &Path, json: bool, validate: bool, printer: &Printer) -> Result<Outcome> {
    let d = Diff::between(&facts_of(old, validate)?, &facts_of(new, validate)?);
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
