//! The fuzz targets' seed corpus, generated from the repository's fixtures and from what kiln itself writes.
//!
//! Nothing binary is checked in for seeding: every `cargo xtask fuzz` makes
//! its own `target/fuzz-corpus/seeds.PID/` and removes it at the end. kiln builds a component,
//! precompiles it, pushes it to a local OCI layout, signs it in both of
//! cosign's formats and attests it; every blob of that layout is then
//! classified by its shape and given to the target that parses it, behind
//! the selector byte that target reads first (the numbers below match
//! `fuzz-harness/src/`). `SOURCE_DATE_EPOCH=0` keeps the run reproducible.

use anyhow::{Context, Result, bail};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Selector bytes of the `oci` target (`fuzz-harness/src/oci.rs`).
const OCI_MANIFEST: u8 = 0;
const OCI_INDEX: u8 = 1;
const OCI_REFERRERS: u8 = 2;
const OCI_CONFIG: u8 = 4;
/// Selector bytes of the `sigstore` target (`fuzz-harness/src/sigstore.rs`).
const SIGSTORE_BUNDLE: u8 = 0;
const SIGSTORE_STATEMENT: u8 = 1;
const SIGSTORE_PAYLOAD: u8 = 2;
/// Selector bytes of the `aot` target (`fuzz-harness/src/aot.rs`).
const AOT_DESCRIPTOR: u8 = 0;
const AOT_CWASM: u8 = 1;

/// Largest seed kept: libFuzzer's `-max_len` cuts longer inputs anyway.
const MAX_SEED: u64 = 1 << 20;

struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    /// Adds one seed for `target`, named by its content, as libFuzzer names inputs.
    fn add(&mut self, target: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir)?;
        let name = hex::encode(&Sha256::digest(bytes)[..10]);
        std::fs::write(dir.join(name), bytes)?;
        self.count += 1;
        Ok(())
    }

    fn add_selected(&mut self, target: &str, selector: u8, bytes: &[u8]) -> Result<()> {
        let mut data = vec![selector];
        data.extend_from_slice(bytes);
        self.add(target, &data)
    }
}

/// Makes this run's seeds in `target/fuzz-corpus/seeds.PID/` (one
/// directory per run, so two `cargo xtask fuzz` at once never read each
/// other's half-written corpus; the caller removes it) and returns it.
pub fn generate() -> Result<PathBuf> {
    let root = crate::root();
    let fresh = root.join(format!("target/fuzz-corpus/seeds.{}", std::process::id()));
    let work = root.join(format!("target/fuzz-corpus/work.{}", std::process::id()));
    for d in [&fresh, &work] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d)?;
    }
    let mut seeds = Seeds {
        dir: fresh.clone(),
        count: 0,
    };
    let wasm = wasm_inputs(&root, &work)?;
    for bytes in &wasm {
        seeds.add("wasm", bytes)?;
    }
    text_seeds(&root, &mut seeds, &wasm)?;
    kiln_outputs(&work, &wasm, &mut seeds).context("failed to make seeds with kiln")?;
    let _ = std::fs::remove_dir_all(&work);
    eprintln!("fuzz seeds: {} inputs in {}", seeds.count, fresh.display());
    Ok(fresh)
}

/// The wasm every target starts from: the `.wat` fixtures, the modules
/// and components tests left under `target/fixtures`, two components kiln
/// builds here, and generated modules of a few sizes.
fn wasm_inputs(root: &Path, work: &Path) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for dir in ["fixtures/wat", "fixtures/audit"] {
        for path in files(&root.join(dir), "wat")? {
            let text = std::fs::read_to_string(&path)?;
            out.push(wat::parse_str(&text).with_context(|| format!("`{}`", path.display()))?);
        }
    }
    crate::sh(crate::cargo().args(["build", "-p", "kiln"]))?;
    for fixture in ["rust-command", "rust-library"] {
        let output = work.join(format!("{fixture}.wasm"));
        let status = Command::new(crate::kiln_bin())
            .args(["build", "--release", "-q"])
            .arg(root.join("fixtures").join(fixture))
            .arg("-o")
            .arg(&output)
            // Kept between runs (the work directory is not), so only the
            // first run builds the fixtures.
            .arg("--target-dir")
            .arg(root.join("target/fuzz-corpus/build"))
            .env("CI", "1")
            .stdout(std::process::Stdio::null())
            .status()?;
        if status.success() {
            out.push(std::fs::read(&output)?);
        } else {
            eprintln!(
                "fuzz seeds: `kiln build fixtures/{fixture}` failed; seeding without it (run `cargo xtask setup`)"
            );
        }
    }
    let mut built = Vec::new();
    walk(&root.join("target/fixtures"), &mut built);
    built.retain(|p| p.extension().is_some_and(|e| e == "wasm"));
    built.sort();
    for path in built {
        if std::fs::metadata(&path)?.len() <= MAX_SEED {
            out.push(std::fs::read(&path)?);
        }
    }
    for size in [4 << 10, 64 << 10] {
        let module = crate::synthetic::large_module(size);
        out.push(crate::synthetic::component_with_imports(&module));
        out.push(module);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Policies, kiln.toml files and the TOML examples in the docs, and each
/// policy with a few binaries for the `audit` target.
fn text_seeds(root: &Path, seeds: &mut Seeds, wasm: &[Vec<u8>]) -> Result<()> {
    let mut policies = Vec::new();
    for path in files(&root.join("fixtures/audit/policies"), "toml")? {
        policies.push(std::fs::read(path)?);
    }
    policies.extend(toml_blocks(&root.join("docs/audit-policy.md"))?);
    policies.push(b"extends = \"builtin:wasi-cli-pure\"\n".to_vec());
    policies.push(b"extends = \"builtin:http-handler\"\n".to_vec());
    let mut smallest: Vec<&Vec<u8>> = wasm.iter().collect();
    smallest.sort_by_key(|w| w.len());
    smallest.truncate(8);
    for policy in &policies {
        seeds.add("policy", policy)?;
        for w in &smallest {
            let mut data = policy.clone();
            data.push(0);
            data.extend_from_slice(w);
            seeds.add("audit", &data)?;
        }
    }
    let mut tomls = Vec::new();
    for top in ["fixtures", "templates"] {
        let mut found = Vec::new();
        walk(&root.join(top), &mut found);
        found.retain(|p| {
            p.file_name()
                .is_some_and(|n| n == "kiln.toml" || n == "Cargo.toml")
                && !p.components().any(|c| c.as_os_str() == "target")
        });
        found.sort();
        for p in found {
            tomls.push(std::fs::read(p)?);
        }
    }
    tomls.extend(toml_blocks(&root.join("docs/kiln-toml.md"))?);
    for t in &tomls {
        seeds.add("kiln_toml", t)?;
    }
    Ok(())
}

/// Pushes, signs, attests and precompiles a component with kiln into a
/// local layout and seeds the document targets with what it wrote.
fn kiln_outputs(work: &Path, wasm: &[Vec<u8>], seeds: &mut Seeds) -> Result<()> {
    let Some(component) = wasm
        .iter()
        .filter(|w| w.get(4..8) == Some(&[0x0d, 0, 1, 0]) && w.len() > 10_000)
        .min_by_key(|w| w.len())
    else {
        bail!("no component among the wasm inputs to push");
    };
    let input = work.join("seed.wasm");
    std::fs::write(&input, component)?;
    let kiln = |args: &[&str]| -> Result<()> {
        let mut cmd = Command::new(crate::kiln_bin());
        cmd.args(args)
            .current_dir(work)
            .env("KILN_PASSWORD", "fuzz")
            .env("SOURCE_DATE_EPOCH", "0")
            .env("KILN_CACHE_DIR", work.join("cache"))
            .env("CI", "1");
        crate::run_quiet(&mut cmd)
    };
    kiln(&["compile", "seed.wasm", "--target", "pulley64", "-o", "aot"])?;
    kiln(&["push", "seed.wasm", "oci:layout:seed", "--aot", "aot"])?;
    kiln(&["keygen", "--output-prefix", "k"])?;
    kiln(&[
        "sign",
        "oci:layout:seed",
        "--key",
        "k.key",
        "-a",
        "env=fuzz",
        "--recursive",
    ])?;
    kiln(&[
        "sign",
        "oci:layout:seed",
        "--key",
        "k.key",
        "--format",
        "legacy",
    ])?;
    kiln(&[
        "sign-blob",
        "seed.wasm",
        "--key",
        "k.key",
        "--bundle",
        "blob.sigstore.json",
    ])?;
    std::fs::write(
        work.join("predicate.json"),
        br#"{"buildDefinition":{"buildType":"https://example.com/fuzz"},"runDetails":{"builder":{"id":"fuzz"}}}"#,
    )?;
    kiln(&[
        "attest",
        "oci:layout:seed",
        "--predicate",
        "predicate.json",
        "--type",
        "slsaprovenance",
        "--key",
        "k.key",
    ])?;

    for path in files(&work.join("aot"), "")? {
        let bytes = std::fs::read(&path)?;
        let name = path.to_string_lossy();
        if name.ends_with(".cwasm.json") {
            seeds.add_selected("aot", AOT_DESCRIPTOR, &bytes)?;
        } else if name.ends_with(".cwasm") && bytes.len() as u64 <= MAX_SEED {
            seeds.add_selected("aot", AOT_CWASM, &bytes)?;
        }
    }
    seeds.add_selected(
        "sigstore",
        SIGSTORE_BUNDLE,
        &std::fs::read(work.join("blob.sigstore.json"))?,
    )?;
    let mut blobs = files(&work.join("layout/blobs/sha256"), "")?;
    blobs.push(work.join("layout/index.json"));
    for path in blobs {
        let bytes = std::fs::read(&path)?;
        if bytes.starts_with(b"\0asm") {
            continue;
        }
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        if json.get("layers").is_some() {
            seeds.add_selected("oci", OCI_MANIFEST, &bytes)?;
        } else if json.get("manifests").is_some() {
            // An index is also what the referrers API answers.
            seeds.add_selected("oci", OCI_INDEX, &bytes)?;
            seeds.add_selected("oci", OCI_REFERRERS, &bytes)?;
        } else if json.get("architecture").is_some() || json.get("component").is_some() {
            seeds.add_selected("oci", OCI_CONFIG, &bytes)?;
        } else if json.get("dsseEnvelope").is_some() || json.get("messageSignature").is_some() {
            seeds.add_selected("sigstore", SIGSTORE_BUNDLE, &bytes)?;
            let payload = json
                .pointer("/dsseEnvelope/payload")
                .and_then(|p| p.as_str())
                .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok());
            if let Some(statement) = payload {
                seeds.add_selected("sigstore", SIGSTORE_STATEMENT, &statement)?;
            }
        } else if json.get("critical").is_some() {
            seeds.add_selected("sigstore", SIGSTORE_PAYLOAD, &bytes)?;
        }
    }
    Ok(())
}

/// The fenced ```toml blocks of a Markdown file.
fn toml_blocks(path: &Path) -> Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match &mut block {
            None if line.trim_start().starts_with("```toml") => block = Some(String::new()),
            Some(b) if line.trim_start().starts_with("```") => {
                out.push(std::mem::take(b).into_bytes());
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    Ok(out)
}

/// Files directly in `dir` ending in `.ext` (every file when `ext` is
/// empty); a missing directory has none.
fn files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && (ext.is_empty() || p.extension().is_some_and(|e| e == ext)))
        .collect();
    out.sort();
    Ok(out)
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}
