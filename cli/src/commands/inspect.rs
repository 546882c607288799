//! `kiln inspect`: shows what a wasm binary is, imports, exports and contains.

use crate::ops::read_input;
use crate::outcome::Outcome;
use crate::output::{Printer, human_size};
use anyhow::{Context, Result};
use kiln_core::Reporter;
use kiln_inspect::{Report, World, WorldItem};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Show a module's or component's world, imports, exports, sections and metadata.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 on success, 1 when the binary is invalid outside its function \
bodies (as `kiln validate` reports it: the offset and the reason), 2 on error (e.g. a file that \
is not wasm or is cut short)."
)]
pub struct Args {
    /// The wasm file (`-` reads stdin).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Print the world as WIT text, as `wasm-tools component wit` does.
    #[arg(long, conflicts_with = "json")]
    wit: bool,
    /// Print the whole report as one JSON document (see docs/inspect-json.md).
    #[arg(long)]
    json: bool,
    /// Print only what it imports, one name a line (interfaces with versions
    /// for components, `module::name` for core modules), for quick diffs.
    #[arg(long, conflicts_with_all = ["json", "wit"])]
    imports: bool,
    /// For OCI references: print the CycloneDX SBOM attached to the
    /// artifact (by `kiln publish`), checked against its digest.
    #[arg(long, conflicts_with_all = ["json", "wit", "imports"])]
    sbom: bool,
    /// List every section with its size and offset, one a line, instead of
    /// the summary by kind (`--json` always lists every section).
    #[arg(long, conflicts_with_all = ["json", "wit", "imports", "sbom"])]
    sections: bool,
    #[command(flatten)]
    registry: super::args::RegistryArgs,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    if let Some(reference) = crate::ops::registry::as_reference(&args.file) {
        return remote(&args, &reference, printer);
    }
    if args.sbom {
        anyhow::bail!(
            "--sbom reads the SBOM attached to an OCI artifact; give a reference (REGISTRY/REPO:TAG or oci:DIR:TAG), not a file"
        );
    }
    let bytes = read_input(&args.file)?;
    let name = args.file.display();
    if bytes.starts_with(b"\x7fELF") {
        // A precompiled Wasmtime artifact: show what `kiln compile --check`
        // reads from it, without loading its code.
        // An unreadable descriptor is shown as absent here; `compile --check`
        // reports it as an error.
        let descriptor = kiln_aot::ArtifactFiles::at(args.file.clone())
            .read_descriptor()
            .ok()
            .flatten();
        let report = kiln_aot::check(&bytes, descriptor.as_ref(), None)
            .with_context(|| format!("failed to inspect `{name}`"))?;
        if args.json {
            printer.json(
                &serde_json::json!({ "kind": "cwasm", "check": report, "descriptor": descriptor }),
            )?;
        } else {
            let mut text = format!(
                "kind:     precompiled Wasmtime artifact (cwasm)\nwasmtime: {}.x\narch:     {}\n",
                report.artifact_version, report.artifact_architecture
            );
            if let Some(d) = &descriptor {
                text.push_str(&format!(
                    "target:   {}\ncpu:      {}{}\nsource:   {}\n",
                    d.target,
                    d.cpu,
                    if d.cpu_features.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", d.cpu_features.join(", "))
                    },
                    d.source_digest
                ));
            }
            text.push_str(&crate::render::render_checks(&report));
            printer.data(&text)?;
        }
        return Ok(Outcome::Ok);
    }
    if args.imports {
        let facts = match kiln_inspect::audit::read_facts(&name.to_string(), &bytes) {
            Ok(facts) => facts,
            Err(e) => return invalid_or_error(e, &args.file, "failed to inspect", printer),
        };
        let list = if facts.kind == Some(kiln_core::WasmKind::Component) {
            facts.imports
        } else {
            facts.core_imports
        };
        let mut text = list.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        printer.data(&text)?;
        return Ok(Outcome::Ok);
    }
    if args.wit {
        let text = match kiln_inspect::wit_text(&bytes) {
            Ok(text) => text,
            Err(e) => {
                return invalid_or_error(e, &args.file, "failed to read the WIT of", printer);
            }
        };
        printer.data(&text)?;
        return Ok(Outcome::Ok);
    }
    let report = match kiln_inspect::inspect(&bytes) {
        Ok(report) => report,
        Err(e) => return invalid_or_error(e, &args.file, "failed to inspect", printer),
    };
    if args.json {
        printer.json(&report)?;
    } else {
        printer.data(&render(&report, args.sections))?;
    }
    Ok(Outcome::Ok)
}

/// A binary wasmparser's validator rejects is a finding, reported as
/// `kiln validate` reports it (exit 1); any other failure is an error that
/// names the file (`failed to inspect `FILE``).
fn invalid_or_error(
    err: anyhow::Error,
    file: &Path,
    failed_to: &str,
    printer: &Printer,
) -> Result<Outcome> {
    match err.downcast::<kiln_core::Invalid>() {
        Ok(invalid) => {
            printer.warn(&crate::render::invalid_message(file, &invalid));
            Ok(Outcome::Problems)
        }
        Err(err) => Err(err.context(format!("{failed_to} `{}`", file.display()))),
    }
}

fn render_items(out: &mut String, title: &str, items: &[WorldItem]) {
    let _ = writeln!(out, "  {title}:");
    if items.is_empty() {
        let _ = writeln!(out, "    (none)");
    }
    for item in items {
        let _ = writeln!(out, "    {} {}", kind_word(item), item.name);
        for f in &item.functions {
            if item.kind == kiln_inspect::WorldItemKind::Function {
                let _ = writeln!(out, "      {}", f.signature);
            } else {
                let _ = writeln!(out, "      {}: {}", f.name, f.signature);
            }
        }
    }
}

fn kind_word(item: &WorldItem) -> &'static str {
    match item.kind {
        kiln_inspect::WorldItemKind::Interface => "interface",
        kiln_inspect::WorldItemKind::Function => "func",
        kiln_inspect::WorldItemKind::Type => "type",
    }
}

fn render_world(out: &mut String, world: &World) {
    let _ = match &world.package {
        Some(p) => writeln!(out, "world {p}/{}", world.name),
        None => writeln!(out, "world {}", world.name),
    };
    render_items(out, "imports", &world.imports);
    render_items(out, "exports", &world.exports);
}

/// The human form of a report: its sections summarized by kind, or with
/// `every_section` listed one a line with their offsets.
pub fn render(r: &Report, every_section: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kind:     {} (encoding version {:#x})",
        r.kind, r.encoding_version
    );
    let _ = writeln!(out, "size:     {} ({} bytes)", human_size(r.size), r.size);
    let _ = writeln!(out, "digest:   {}", r.digest);
    let m = &r.metadata;
    for (label, value) in [
        ("name", &m.name),
        ("version", &m.version),
        ("authors", &m.authors),
        ("desc", &m.description),
        ("licenses", &m.licenses),
        ("source", &m.source),
        ("homepage", &m.homepage),
        ("revision", &m.revision),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "{:<9} {v}", format!("{label}:"));
        }
    }
    out.push('\n');
    if let Some(world) = &r.world {
        render_world(&mut out, world);
        out.push('\n');
    }
    if let Some(e) = &r.world_error {
        let _ = writeln!(out, "world: not readable: {e}\n");
    }
    if let Some(module) = &r.module {
        let _ = writeln!(out, "imports ({}):", module.imports.len());
        for i in &module.imports {
            let _ = writeln!(
                out,
                "  {} {}::{}{}",
                i.kind,
                i.module,
                i.name,
                i.signature
                    .as_deref()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(out, "exports ({}):", module.exports.len());
        for e in &module.exports {
            let _ = writeln!(
                out,
                "  {} {}{}",
                e.kind,
                e.name,
                e.signature
                    .as_deref()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(out, "defined functions: {}", module.defined_functions);
        for mem in &module.memories {
            let _ = writeln!(
                out,
                "memory: {} pages{}{}{}{}",
                mem.initial_pages,
                mem.maximum_pages
                    .map(|m| format!(", max {m}"))
                    .unwrap_or_default(),
                if mem.shared { ", shared" } else { "" },
                if mem.memory64 { ", 64-bit" } else { "" },
                if mem.imported { ", imported" } else { "" },
            );
        }
        for t in &module.tables {
            let _ = writeln!(
                out,
                "table: {} x {}{}{}",
                t.initial,
                t.element_type,
                t.maximum.map(|m| format!(", max {m}")).unwrap_or_default(),
                if t.imported { ", imported" } else { "" },
            );
        }
        out.push('\n');
    }
    if !r.producers.is_empty() {
        let _ = writeln!(out, "producers:");
        for field in &r.producers {
            let values: Vec<String> = field
                .values
                .iter()
                .map(|v| format!("{} {}", v.name, v.version).trim().to_string())
                .collect();
            let _ = writeln!(out, "  {}: {}", field.field, values.join(", "));
        }
        out.push('\n');
    }
    if every_section {
        let _ = writeln!(out, "sections:");
        for s in &r.sections {
            let _ = writeln!(
                out,
                "  {:<32} {:>10} bytes  @ {:#x}",
                section_label(s),
                s.size,
                s.offset
            );
        }
    } else {
        render_section_kinds(&mut out, &r.sections);
    }
    out
}

/// What a section is called in the human output: its kind, or for a
/// custom section its name, which is what people look for (`producers`,
/// `name`, `component-type:…`). The name is quoted and escaped, so a crafted
/// one cannot break the line.
fn section_label(s: &kiln_inspect::Section) -> String {
    match &s.name {
        Some(n) => format!("custom {n:?}"),
        None => s.kind.clone(),
    }
}

/// The sections summarized by kind (custom sections by name), in the order
/// each first appears, with how many there are and their bytes: a component
/// has one `alias` or `canonical` section per few items, so listing each one
/// buries the rest of the report.
fn render_section_kinds(out: &mut String, sections: &[kiln_inspect::Section]) {
    // A hostile binary may hold many thousands of custom sections with
    // distinct names, so the grouping looks labels up by hash.
    if sections.is_empty() {
        let _ = writeln!(out, "sections: none");
        return;
    }
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut kinds: Vec<(String, usize, usize)> = Vec::new();
    for s in sections {
        let label = section_label(s);
        match index.get(&label) {
            Some(&i) => {
                kinds[i].1 += 1;
                kinds[i].2 += s.size;
            }
            None => {
                index.insert(label.clone(), kinds.len());
                kinds.push((label, 1, s.size));
            }
        }
    }
    let total: usize = sections.iter().map(|s| s.size).sum();
    let _ = writeln!(
        out,
        "sections ({}, {total} bytes; --sections lists each):",
        sections.len()
    );
    for (label, count, size) in &kinds {
        let _ = writeln!(out, "  {label:<32} {count:>5} ({size} bytes)");
    }
}

/// `kiln inspect REF`: the artifact's manifest, config and attached
/// artifacts. The wasm layer is read only when the config does not list
/// its imports and exports (as other tools push Wasm): then it is
/// downloaded, checked against its digest, and inspected as a file is.
fn remote(args: &Args, reference: &kiln_oci::Reference, printer: &Printer) -> Result<Outcome> {
    let store = args.registry.options().open(reference, false, printer)?;
    let resolved = store.resolve(reference, printer)?;
    let digest = &resolved.digest;
    if args.sbom {
        let (sbom_digest, bytes) = store
            .referrer_layer(digest, kiln_oci::artifact::SBOM_ARTIFACT_TYPE, printer)?
            .with_context(|| format!("`{reference}` ({digest}) has no SBOM attached"))?;
        let _: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("the SBOM {sbom_digest} is not JSON"))?;
        printer.status("SBOM", &format!("{sbom_digest} for {digest}"));
        printer.data(&String::from_utf8_lossy(&bytes))?;
        return Ok(Outcome::Ok);
    }
    if args.wit {
        anyhow::bail!("--wit needs the wasm itself; `kiln pull` it first, then inspect the file");
    }
    let referrers: Vec<kiln_oci::artifact::Descriptor> = store
        .verified_referrers(digest, kiln_oci::Allowed::Any, printer)?
        .iter()
        .map(kiln_oci::VerifiedReferrer::descriptor)
        .collect();
    let layer = &resolved.layer;
    // The layer, when the config does not say what it imports and exports.
    let wasm = if resolved.lists_imports_and_exports() {
        None
    } else {
        printer.status(
            "Reading",
            &format!(
                "the wasm layer of `{reference}` ({}, {}): its config does not list imports and exports",
                layer.digest,
                human_size(layer.size)
            ),
        );
        Some(store.wasm_bytes(reference, layer, printer)?)
    };
    // What a finding or error names: the reference, as a file's path.
    let name = PathBuf::from(reference.to_string());
    if args.imports {
        let list = match &wasm {
            Some(bytes) => {
                let facts = match kiln_inspect::audit::read_facts(&reference.to_string(), bytes) {
                    Ok(facts) => facts,
                    Err(e) => return invalid_or_error(e, &name, "failed to inspect", printer),
                };
                if facts.kind == Some(kiln_core::WasmKind::Component) {
                    facts.imports
                } else {
                    facts.core_imports
                }
            }
            None => {
                resolved
                    .config
                    .component
                    .clone()
                    .unwrap_or_default()
                    .imports
            }
        };
        printer.data(&list.iter().map(|i| format!("{i}\n")).collect::<String>())?;
        return Ok(Outcome::Ok);
    }
    let report = match &wasm {
        Some(bytes) => match kiln_inspect::inspect(bytes) {
            Ok(report) => Some(report),
            Err(e) => return invalid_or_error(e, &name, "failed to inspect", printer),
        },
        None => None,
    };
    if args.json {
        let mut shown = serde_json::json!({
            "kind": "oci",
            "reference": reference.to_string(),
            "digest": digest,
            "manifest": resolved.manifest,
            "config": resolved.config,
            "referrers": referrers,
        });
        if let Some(report) = &report {
            shown["wasm"] = serde_json::to_value(report)?;
        }
        printer.json(&shown)?;
        return Ok(Outcome::Ok);
    }
    let text = render_remote(
        reference,
        &resolved,
        wasm.as_deref(),
        report.as_ref(),
        &referrers,
        args.sections,
    );
    printer.data(&text)?;
    Ok(Outcome::Ok)
}

/// The human description of an OCI artifact: its reference, digest, kind,
/// layer and annotations, what it imports and exports (from the layer when
/// it was read, else from the config), and what is attached to it.
fn render_remote(
    reference: &kiln_oci::Reference,
    resolved: &kiln_oci::store::Resolved,
    wasm: Option<&[u8]>,
    report: Option<&Report>,
    referrers: &[kiln_oci::artifact::Descriptor],
    sections: bool,
) -> String {
    let digest = &resolved.digest;
    let layer = &resolved.layer;
    let config = &resolved.config;
    // The layer, when it was read, says what the wasm is; the config may
    // say otherwise, or nothing.
    let (kind, from) = match wasm.and_then(kiln_core::WasmKind::sniff) {
        Some(kind) => (Some(kind), "read from the layer".to_string()),
        // A config that lists imports and exports describes a component.
        None => (
            config.kind().or_else(|| {
                config
                    .component
                    .as_ref()
                    .map(|_| kiln_core::WasmKind::Component)
            }),
            config
                .os
                .clone()
                .unwrap_or_else(|| "the config gives no `os`".to_string()),
        ),
    };
    let mut text = String::new();
    let _ = writeln!(text, "reference: {reference}");
    let _ = writeln!(text, "digest:    {digest}");
    let _ = writeln!(
        text,
        "kind:      {} ({from})",
        match kind {
            Some(kiln_core::WasmKind::Component) => "component",
            Some(kiln_core::WasmKind::CoreModule) => "core module",
            None => "unknown",
        }
    );
    let _ = writeln!(
        text,
        "layer:     {} {} ({})",
        layer.media_type,
        layer.digest,
        human_size(layer.size)
    );
    if let Some(created) = &config.created {
        let _ = writeln!(text, "created:   {created}");
    }
    for (k, v) in &resolved.manifest.annotations {
        if let Some(short) = k.strip_prefix("org.opencontainers.image.")
            && short != "created"
        {
            let _ = writeln!(text, "{:<10} {v}", format!("{short}:"));
        }
    }
    match report {
        // The imports and exports as the layer has them, shown as for a
        // file.
        Some(report) => {
            let _ = writeln!(
                text,
                "from the wasm layer (the config does not list imports and exports):"
            );
            for line in render(report, sections).lines() {
                match line {
                    "" => text.push('\n'),
                    line => {
                        let _ = writeln!(text, "  {line}");
                    }
                }
            }
        }
        None => {
            let info = config.component.clone().unwrap_or_default();
            let _ = writeln!(text, "imports:");
            for i in &info.imports {
                let _ = writeln!(text, "  {i}");
            }
            let _ = writeln!(text, "exports:");
            for e in &info.exports {
                let _ = writeln!(text, "  {e}");
            }
        }
    }
    if !referrers.is_empty() {
        let _ = writeln!(text, "attached:");
        for r in referrers {
            let _ = writeln!(
                text,
                "  {} {} {}",
                r.annotations
                    .get(kiln_oci::artifact::ANNOTATION_TARGET)
                    .map(String::as_str)
                    .unwrap_or("-"),
                r.artifact_type.as_deref().unwrap_or(&r.media_type),
                r.digest
            );
        }
    }
    text
}
