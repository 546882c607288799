//! `cargo xtask soak [SECONDS]`: kiln `push` and `sign` killed with SIGKILL at random moments.
//!
//! Several run at a time against one local layout; after every round the layout
//! must be whole, and at the end every push run again must land.
//!
//! The test command kills kiln at named steps (`KILN_TEST_KILL_AFTER`,
//! cli/tests/it/crash.rs); this loop adds the timings nobody named, for
//! as long as it is given.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes started at once in each round.
const AT_ONCE: usize = 4;

pub fn run(seconds: Option<&String>) -> Result<()> {
    let seconds: u64 = match seconds {
        Some(s) => s
            .parse()
            .with_context(|| format!("`{s}` is not a number of seconds"))?,
        None => 60,
    };
    crate::sh(crate::cargo().args(["build", "-p", "kiln"]))?;
    let kiln = crate::kiln_bin();
    let work = crate::root().join("target/soak");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let kiln_cmd = || {
        let mut c = Command::new(&kiln);
        c.current_dir(&work)
            .env("KILN_PASSWORD", "soak")
            .env("KILN_CACHE_DIR", work.join("cache"))
            .env("CI", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let inputs: Vec<PathBuf> = (0..8)
        .map(|i| write_module(&work, i))
        .collect::<Result<_>>()?;
    if !kiln_cmd()
        .args(["keygen", "--output-prefix", "k"])
        .status()?
        .success()
    {
        bail!("`kiln keygen` failed");
    }
    let layout = work.join("layout");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut rounds, mut killed) = (0u64, 0u64);
    while Instant::now() < deadline {
        let mut children = Vec::new();
        for _ in 0..AT_ONCE {
            let i = fastrand::usize(0..inputs.len());
            let mut c = kiln_cmd();
            if fastrand::bool() {
                c.arg("push")
                    .arg(&inputs[i])
                    .arg(format!("oci:{}:t{i}", layout.display()));
            } else {
                c.arg("sign")
                    .arg(format!("oci:{}:t{i}", layout.display()))
                    .args(["--key", "k.key", "-a"])
                    .arg(format!("round={rounds}"));
            }
            children.push(c.spawn().context("failed to start kiln")?);
        }
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..60)));
        for mut c in children {
            if c.try_wait()?.is_none() {
                let _ = c.kill();
                killed += 1;
            }
            c.wait()?;
        }
        if layout.join("index.json").is_file() {
            check_whole(&layout).with_context(|| format!("after round {rounds}"))?;
        }
        rounds += 1;
    }
    // Every push, run to its end, lands.
    for (i, input) in inputs.iter().enumerate() {
        let status = kiln_cmd()
            .arg("push")
            .arg(input)
            .arg(format!("oci:{}:t{i}", layout.display()))
            .status()?;
        if !status.success() {
            bail!("push {i} failed after the soak");
        }
    }
    check_whole(&layout)?;
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let tags: BTreeSet<&str> = index["manifests"]
        .as_array()
        .context("index.json lists no manifests")?
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    for i in 0..inputs.len() {
        if !tags.contains(format!("t{i}").as_str()) {
            bail!("tag t{i} is missing after the soak");
        }
    }
    eprintln!("soak: {rounds} rounds, {killed} processes killed, the layout stayed whole");
    Ok(())
}

/// A valid core module whose custom section makes it a few hundred KiB, so
/// a push is long enough to be killed in the middle.
fn write_module(dir: &Path, i: usize) -> Result<PathBuf> {
    let mut m = wasm_encoder::Module::new();
    m.section(&wasm_encoder::CustomSection {
        name: format!("soak-{i}").into(),
        data: vec![i as u8; 256 << 10].into(),
    });
    let path = dir.join(format!("m{i}.wasm"));
    std::fs::write(&path, m.finish())?;
    Ok(path)
}

/// Every manifest reachable from `index.json` is stored with its digest,
/// and so is every blob it names.
fn check_whole(layout: &Path) -> Result<()> {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)
        .context("index.json does not parse")?;
    let mut todo: Vec<(String, u64)> = Vec::new();
    let push_all = |todo: &mut Vec<(String, u64)>, list: &Value| -> Result<()> {
        for d in list.as_array().context("a list of descriptors")? {
            todo.push((
                d["digest"].as_str().context("a digest")?.to_string(),
                d["size"].as_u64().context("a size")?,
            ));
        }
        Ok(())
    };
    push_all(&mut todo, &index["manifests"])?;
    let mut seen = BTreeSet::new();
    while let Some((digest, size)) = todo.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let bytes = blob(layout, &digest, size)?;
        let m: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("manifest {digest} does not parse"))?;
        if m.get("manifests").is_some() {
            push_all(&mut todo, &m["manifests"])?;
        } else {
            let config = &m["config"];
            blob(
                layout,
                config["digest"].as_str().context("a config digest")?,
                config["size"].as_u64().context("a config size")?,
            )?;
            for l in m["layers"].as_array().context("layers")? {
                blob(
                    layout,
                    l["digest"].as_str().context("a layer digest")?,
                    l["size"].as_u64().context("a layer size")?,
                )?;
            }
        }
    }
    Ok(())
}

fn blob(layout: &Path, digest: &str, size: u64) -> Result<Vec<u8>> {
    use sha2::Digest as _;
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let bytes = std::fs::read(&path).with_context(|| format!("{digest} is missing"))?;
    let actual = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    if actual != digest || bytes.len() as u64 != size {
        bail!(
            "{digest} holds other content ({actual}, {} bytes)",
            bytes.len()
        );
    }
    Ok(bytes)
}
