//! `cargo xtask bench`, publishing part: `kiln push`/`pull` against `skopeo copy` and oras.
//!
//! A 50 MiB component goes to a loopback registry (CNCF distribution); skopeo
//! and PyPI's oras client move the same artifact, and the bytes a re-push
//! uploads are counted.

use crate::synthetic::{component_with_imports, large_module};
use crate::timing::time_each;
use crate::tools::{ORAS_CONFIG, oras_push_command, start_registry};
use crate::{root, run_json, run_quiet};
use anyhow::Result;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const RUNS: usize = 3;

pub fn rows(kiln: &Path) -> Result<String> {
    let dir = root().join("target/bench/oci");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let reg = start_registry(&dir)?;
    // Every push gets content of its own (the same 50 MiB component with a
    // one-byte different custom section at the end), so no tool can mount
    // or skip a blob another run uploaded.
    let base = component_with_imports(&large_module(50 << 20));
    let size = base.len() as u64 + 8;
    let variant = |tool: &str, i: usize| -> Result<std::path::PathBuf> {
        let path = dir.join(format!("{tool}{i}.wasm"));
        let mut bytes = base.clone();
        // A custom section: id 0, size 6, name "run", two payload bytes.
        let t = tool.as_bytes().first().copied().unwrap_or(b'x');
        bytes.extend_from_slice(&[0, 6, 3, b'r', b'u', b'n', i as u8, t]);
        std::fs::write(&path, &bytes)?;
        Ok(path)
    };
    let layout = dir.join("layout");
    let config = dir.join("config.json");
    std::fs::write(&config, ORAS_CONFIG)?;
    let mut kiln_files = Vec::new();
    let mut skopeo_files = Vec::new();
    let mut oras_files = Vec::new();
    for i in 0..RUNS {
        kiln_files.push(variant("k", i)?);
        oras_files.push(variant("o", i)?);
        let s = variant("s", i)?;
        // skopeo copies from a layout holding the same kind of artifact.
        run_quiet(
            Command::new(kiln)
                .args(["push", "-q", "--no-aot"])
                .arg(&s)
                .arg(format!("oci:{}:run{i}", layout.display())),
        )?;
        skopeo_files.push(s);
    }

    let kiln_push = time_each(RUNS, |i| {
        run_quiet(
            Command::new(kiln)
                .args(["push", "-q", "--no-aot"])
                .arg(&kiln_files[i])
                .arg(format!("{}/kiln{i}/big:v1", reg.host)),
        )
    })?;
    let skopeo_push = time_each(RUNS, |i| {
        run_quiet(
            Command::new("skopeo")
                .args(["copy", "-q", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:run{i}", layout.display()))
                .arg(format!("docker://{}/skopeo{i}/big:v1", reg.host)),
        )
    })?;
    let oras_push = time_each(RUNS, |i| {
        let name = oras_files[i]
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = format!("{}/oras{i}/big:v1", reg.host);
        run_quiet(&mut oras_push_command(&reg.host, &target, &name, &dir))
    })?;
    let kiln_pull = time_each(RUNS, |i| {
        run_quiet(
            Command::new(kiln)
                .args(["pull", "-q"])
                .arg(format!("{}/kiln{i}/big:v1", reg.host))
                .arg("-o")
                .arg(dir.join(format!("pulled{i}.wasm"))),
        )
    })?;
    let skopeo_pull = time_each(RUNS, |i| {
        run_quiet(
            Command::new("skopeo")
                .args(["copy", "-q", "--src-tls-verify=false"])
                .arg(format!("docker://{}/kiln{i}/big:v1", reg.host))
                .arg(format!(
                    "oci:{}:v1",
                    dir.join(format!("skopeo-pulled{i}")).display()
                )),
        )
    })?;
    // A re-push of unchanged content: how long, and how many blob bytes.
    let repush = run_json(
        Command::new(kiln)
            .args(["push", "-q", "--no-aot", "--json"])
            .arg(&kiln_files[0])
            .arg(format!("{}/kiln0/big:v1", reg.host)),
    )?;
    let repush_time = time_each(RUNS, |_| {
        run_quiet(
            Command::new(kiln)
                .args(["push", "-q", "--no-aot"])
                .arg(&kiln_files[0])
                .arg(format!("{}/kiln0/big:v1", reg.host)),
        )
    })?;
    let mibs = |d: Duration| size as f64 / (1024.0 * 1024.0) / d.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(format!(
        "\nPush and pull of a {:.0} MiB component to a loopback registry (CNCF distribution), {RUNS} runs, median:\n\n\
         | operation | kiln | skopeo copy | oras (PyPI) | kiln / fastest other |\n|---|---|---|---|---|\n\
         | push (fresh repository) | {:.0} ms ({:.0} MiB/s) | {:.0} ms ({:.0} MiB/s) | {:.0} ms ({:.0} MiB/s) | {:.2}x |\n\
         | pull | {:.0} ms ({:.0} MiB/s) | {:.0} ms ({:.0} MiB/s) | | {:.2}x |\n\n\
         Re-push of unchanged content: {:.0} ms, {} blob bytes uploaded.\n",
        size as f64 / (1024.0 * 1024.0),
        ms(kiln_push),
        mibs(kiln_push),
        ms(skopeo_push),
        mibs(skopeo_push),
        ms(oras_push),
        mibs(oras_push),
        ms(kiln_push) / ms(skopeo_push).min(ms(oras_push)),
        ms(kiln_pull),
        mibs(kiln_pull),
        ms(skopeo_pull),
        mibs(skopeo_pull),
        ms(kiln_pull) / ms(skopeo_pull),
        ms(repush_time),
        repush["uploaded_bytes"]
    ))
}
