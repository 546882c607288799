//! `cargo xtask bench`: times kiln against the standalone tools on the same inputs.
//!
//! Everything is measured in one run, and the report gives the ratios.

use crate::synthetic::{component_with_imports, large_module};
use crate::timing::{median, time, time_all};
use crate::tools::{ensure_wasm_tools, wasm_tools_binary};
use crate::{root, run_json, sh};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const RUNS: usize = 15;

const PARTS: &[&str] = &["inspect", "audit", "build", "compile", "oci", "publish"];

pub fn run(parts: &[String]) -> Result<()> {
    if let Some(p) = parts.iter().find(|p| !PARTS.contains(&p.as_str())) {
        bail!(
            "unknown bench part `{p}`; the parts are {}",
            PARTS.join(", ")
        );
    }
    let part = |name: &str| parts.is_empty() || parts.iter().any(|p| p == name);
    crate::setup::run()?;
    ensure_wasm_tools()?;
    sh(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "kiln"])
            .env("CARGO_INCREMENTAL", "0"),
    )?;
    let kiln = root().join("target/release/kiln");
    let wasm_tools = wasm_tools_binary();
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir)?;

    let mut inputs: Vec<(String, PathBuf)> = Vec::new();
    for (fixture, extra) in [
        ("rust-command", &[][..]),
        ("rust-library", &["--release"][..]),
    ] {
        let out = dir.join(format!("{fixture}.wasm"));
        sh(Command::new(&kiln)
            .args(["build", "-q"])
            .arg(root().join("fixtures").join(fixture))
            .arg("-o")
            .arg(&out)
            .args(extra))?;
        inputs.push((fixture.to_string(), out));
    }
    let big_module = dir.join("large-module.wasm");
    let module = large_module(20 << 20);
    std::fs::write(&big_module, &module)?;
    let big_component = dir.join("large-component.wasm");
    let component = wit_component::ComponentEncoder::default()
        .module(&module)?
        .encode()
        .context("wrap the large module into a component")?;
    std::fs::write(&big_component, &component)?;
    inputs.push(("large module (20 MiB of code)".into(), big_module));
    inputs.push(("large component (20 MiB of code)".into(), big_component));
    let same_parser = if part("inspect") {
        inputs.extend(crate::bench_real::inputs(&dir.join("real"))?);
        crate::bench_real::same_parser_wasm_tools(&root())
    } else {
        None
    };
    let same_parser = same_parser.as_ref();

    let mut rows = Vec::new();
    for (name, path) in inputs.iter().filter(|_| part("inspect")) {
        let size = std::fs::metadata(path)?.len();
        let mut validate = vec![Command::new(&kiln), Command::new(&wasm_tools)];
        validate[0].args(["validate", "-q"]).arg(path);
        validate[1].arg("validate").arg(path);
        if let Some(tool) = same_parser {
            validate.push(Command::new(&tool.path));
            validate[2].arg("validate").arg(path);
        }
        let t = time_all(RUNS, &mut validate.iter_mut().collect::<Vec<_>>())?;
        rows.push(
            row("validate", name, size, t[0], t[1])
                + &crate::bench_real::cells(same_parser, t[0], t.get(2).copied()),
        );
        // `component wit` reads components only.
        if std::fs::read(path)?.get(4..8) != Some(&[0x0d, 0, 0x01, 0][..]) {
            continue;
        }
        let t = time_all(
            RUNS,
            &mut [
                Command::new(&kiln).args(["inspect", "--json"]).arg(path),
                Command::new(&wasm_tools)
                    .args(["component", "wit"])
                    .arg(path),
            ],
        )?;
        rows.push(
            row("inspect --json / component wit", name, size, t[0], t[1])
                + &crate::bench_real::cells(same_parser, t[0], None),
        );
    }

    let audit = if part("audit") {
        audit_rows(&kiln, &wasm_tools, &dir)?
    } else {
        String::new()
    };
    let overhead = if part("build") {
        build_overhead(&kiln, &dir)?
    } else {
        String::new()
    };
    let oci = if part("oci") {
        crate::bench_oci::rows(&kiln)?
    } else {
        String::new()
    };
    let publish = if part("publish") {
        crate::bench_publish::rows(&kiln)?
    } else {
        String::new()
    };
    let aot = if part("compile") {
        let path = dir.join("aot-input.wasm");
        let component = wit_component::ComponentEncoder::default()
            .module(&large_module(6 << 20))?
            .encode()
            .context("wrap a module into a component")?;
        std::fs::write(&path, component)?;
        crate::bench_aot::rows(&kiln, &path, "a component with 6 MiB of code")?
    } else {
        String::new()
    };

    let version = String::from_utf8(Command::new(&wasm_tools).arg("--version").output()?.stdout)?;
    let mut report = format!(
        "Command: `cargo xtask bench` ({RUNS} runs each, median wall time, {} cores; {})\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        version.trim()
    );
    if !rows.is_empty() {
        let (cells, separators) = crate::bench_real::header(same_parser);
        report.push_str(&format!(
            "\n| operation | input | size | kiln | wasm-tools | kiln / wasm-tools |{cells}\n|---|---|---|---|---|---|{separators}\n",
        ));
    }
    for r in &rows {
        report.push_str(r);
        report.push('\n');
    }
    report.push_str(&audit);
    report.push_str(&overhead);
    report.push_str(&aot);
    report.push_str(&oci);
    report.push_str(&publish);
    print!("{report}");
    crate::write_report(&dir.join("report.md"), &report)?;
    eprintln!(
        "bench: report written to {}",
        dir.join("report.md").display()
    );
    Ok(())
}

fn row(op: &str, name: &str, size: u64, kiln: Duration, tool: Duration) -> String {
    format!(
        "| {op} | {name} | {:.1} MiB | {:.1} ms | {:.1} ms | {:.2}x |",
        size as f64 / (1024.0 * 1024.0),
        kiln.as_secs_f64() * 1e3,
        tool.as_secs_f64() * 1e3,
        kiln.as_secs_f64() / tool.as_secs_f64()
    )
}

/// Fixtures whose `kiln build` overhead is measured, with extra build flags.
const BUILD_FIXTURES: &[(&str, &[&str])] = &[
    ("rust-command", &[]),
    ("rust-command", &["--release"]),
    ("rust-library", &[]),
    ("rust-library", &["--release"]),
    ("c-command", &[]),
    ("c-library", &[]),
    ("c-make", &[]),
    ("c-cmake", &[]),
    ("go-command", &[]),
    ("go-reactor", &[]),
    // A module's package chosen by `[build] main` (cmd/greet).
    ("go-module", &[]),
];
const BUILD_RUNS: usize = 5;

/// Sets the modification time of every source file under `dir` to now, so
/// the next build really recompiles.
fn touch_sources(dir: &std::path::Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                touch_sources(&path)?;
            }
        } else if path
            .extension()
            .is_some_and(|e| ["rs", "c", "h", "go"].contains(&e.to_str().unwrap_or("")))
        {
            std::fs::File::options()
                .append(true)
                .open(&path)?
                .set_modified(std::time::SystemTime::now())?;
        }
    }
    Ok(())
}

/// For each fixture, the compiler's own time and kiln's time on top of it
/// (componentize, metadata, validate, write), both read from `kiln build
/// --json` timings of the same run, after touching the sources so the
/// compiler really works.
fn build_overhead(kiln: &std::path::Path, dir: &std::path::Path) -> Result<String> {
    let projects = dir.join("projects");
    let _ = std::fs::remove_dir_all(&projects);
    std::fs::create_dir_all(&projects)?;
    let mut out = String::from(
        "\n`kiln build` overhead (median of 5 rebuilds after touching the sources; the toolchain's output is \
         unchanged, so kiln reuses the component; with `--force` it componentizes, embeds and validates again):\n\n\
         | fixture | compiler | kiln on top | overhead / compiler | with --force | overhead / compiler | target (<5% and <100 ms) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (name, extra) in BUILD_FIXTURES {
        let label = std::iter::once(*name)
            .chain(extra.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let project = projects.join(name);
        if !project.exists() {
            sh(Command::new("cp")
                .arg("-r")
                .arg(root().join("fixtures").join(name))
                .arg(&project))?;
        }
        let output = dir.join(format!("{name}.built.wasm"));
        let command = |force: bool| {
            let mut cmd = Command::new(kiln);
            cmd.args(["build", "-q", "--json"])
                .arg(&project)
                .arg("-o")
                .arg(&output)
                .args(*extra)
                .args(force.then_some("--force"))
                .env("CARGO_TARGET_DIR", dir.join("cargo-target"));
            cmd
        };
        // Warm-up: dependencies and toolchain caches.
        run_json(&mut command(false))?;
        let mut compiler = Vec::new();
        let mut overhead = Vec::new();
        let mut forced_compiler = Vec::new();
        let mut forced = Vec::new();
        for _ in 0..BUILD_RUNS {
            for force in [false, true] {
                touch_sources(&project)?;
                let json = run_json(&mut command(force))?;
                let t = &json["timings"];
                let toolchain = t["compiler_ms"].as_f64().context("timings")?;
                let total = t["total_ms"].as_f64().context("timings")?;
                if force {
                    forced_compiler.push(toolchain);
                    forced.push(total - toolchain);
                } else {
                    compiler.push(toolchain);
                    overhead.push(total - toolchain);
                }
            }
        }
        let (c, o) = (median(compiler), median(overhead));
        let (fc, fo) = (median(forced_compiler), median(forced));
        let verdict = |o: f64, c: f64| {
            if o / c < 0.05 && o < 100.0 {
                "met"
            } else {
                "missed"
            }
        };
        out.push_str(&format!(
            "| {label} | {c:.0} ms | {o:.1} ms | {:.1}% | {fo:.1} ms | {:.1}% | {}; with --force {} |\n",
            o / c * 100.0,
            fo / fc * 100.0,
            verdict(o, c),
            verdict(fo, fc),
        ));
    }
    Ok(out)
}

/// `kiln audit` on a ~1 MiB and a ~25 MiB component with the same imports:
/// its cost should not follow the size of the code.
fn audit_rows(
    kiln: &std::path::Path,
    wasm_tools: &std::path::Path,
    dir: &std::path::Path,
) -> Result<String> {
    let small = dir.join("audit-1mib.wasm");
    let large = dir.join("audit-25mib.wasm");
    std::fs::write(&small, component_with_imports(&large_module(1 << 20)))?;
    std::fs::write(&large, component_with_imports(&large_module(25 << 20)))?;
    let audit = |path: &std::path::Path| {
        time(
            RUNS,
            Command::new(kiln)
                .args([
                    "audit",
                    "--no-validate",
                    "--policy",
                    "builtin:wasi-cli-pure",
                ])
                .arg(path),
        )
    };
    let s = audit(&small)?;
    let l = audit(&large)?;
    let w = time(
        RUNS,
        Command::new(wasm_tools)
            .args(["component", "wit"])
            .arg(&large),
    )?;
    // With validation (the default) an audit costs what validating costs:
    // the facts are read on one core while the bodies are validated.
    let t = time_all(
        RUNS,
        &mut [
            Command::new(kiln)
                .args(["audit", "--policy", "builtin:wasi-cli-pure"])
                .arg(&large),
            Command::new(wasm_tools).arg("validate").arg(&large),
        ],
    )?;
    // The real modules (core modules with host-specific imports, which a
    // policy that allows unlisted imports lets pass): a validating audit
    // against `wasm-tools validate` on the same file.
    let allow = dir.join("allow-all.toml");
    std::fs::write(&allow, "[imports]\ndefault = \"allow\"\n")?;
    let mut real = String::new();
    for (name, path) in crate::bench_real::inputs(&dir.join("real"))? {
        let t = time_all(
            RUNS,
            &mut [
                Command::new(kiln)
                    .arg("audit")
                    .arg("--policy")
                    .arg(&allow)
                    .arg(&path),
                Command::new(wasm_tools).arg("validate").arg(&path),
            ],
        )?;
        real.push_str(&format!(
            "| {name} | | | {:.1} ms | {:.1} ms |\n",
            t[0].as_secs_f64() * 1e3,
            t[1].as_secs_f64() * 1e3
        ));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(format!(
        "\n`kiln audit --no-validate` cost against code size (same imports; targets: 25 MiB < 1.5x of 1 MiB, < 50 ms, no slower than `component wit`), and `kiln audit` (validating) against `wasm-tools validate` (target: no slower):\n\n\
         | input | kiln audit --no-validate | wasm-tools component wit | kiln audit | wasm-tools validate |\n|---|---|---|---|---|\n\
         | 1 MiB component | {:.1} ms | | | |\n\
         | 25 MiB component | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |\n{real}\n\
         25 MiB / 1 MiB: {:.2}x; kiln audit --no-validate / component wit on 25 MiB: {:.2}x; kiln audit / wasm-tools validate: {:.2}x\n",
        ms(s),
        ms(l),
        ms(w),
        ms(t[0]),
        ms(t[1]),
        ms(l) / ms(s),
        ms(l) / ms(w),
        ms(t[0]) / ms(t[1])
    ))
}
