//! `kiln publish`: build, validate, audit, precompile, push (component, precompiled artifacts, SBOM) and sign in one command, with one receipt.

use super::args::BuildFlags;
use crate::ops::build::BuildOutput;
use crate::ops::ms;
use super::args::RegistryArgs;
use crate::outcome::Outcome;
use crate::output::{Printer, human_size};
use anyhow::{Context, Result, bail};
use kiln_core::{Progress, Reporter};
use kiln_inspect::audit::{self, AuditReport, Policy, WorldNames};
use kiln_oci::{Reference, Store};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

/// Build, audit, precompile, push and sign a project in one step.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Stages: build → validate → audit → compile → push (component, precompiled artifacts, \
SBOM) → sign. Nothing is pushed when build, validation or audit fails. Defaults come from \
kiln.toml ([publish] to, [audit], [compile] targets/cpu, [sign] key) or, for Rust, from \
[package.metadata.kiln] in Cargo.toml; flags override them.

Without --to (or [publish] to) the component goes to the local OCI layout \
target/kiln/oci/NAME under the project, tagged with its version. The receipt is written \
to target/kiln/receipt.json (docs/receipt.md).

Exit status: 0 published, 1 the audit found problems (nothing was pushed), 2 on error.")]
pub struct Args {
    /// The project directory or manifest.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Where to publish: REGISTRY/REPO[:TAG], oci:DIR[:TAG] or NAME[:TAG].
    #[arg(long, value_name = "REF")]
    to: Option<String>,
    /// The audit policy: a file or `builtin:NAME` (default: kiln.toml's `[audit]`).
    #[arg(long, value_name = "POLICY")]
    policy: Option<String>,
    /// Targets to precompile for (repeatable), `all`, or `none` (default:
    /// `[compile] targets`, else this host's).
    #[arg(long = "target", value_name = "TRIPLE")]
    targets: Vec<String>,
    /// CPU features of the precompiled artifacts (default `[compile] cpu`, else `baseline`).
    #[arg(long, value_name = "CPU")]
    cpu: Option<String>,
    /// The private key to sign with (default: `[sign] key`).
    #[arg(long, value_name = "FILE", conflicts_with = "no_sign")]
    key: Option<PathBuf>,
    /// Do not sign, even when a key is configured.
    #[arg(long)]
    no_sign: bool,
    /// Make no SBOM.
    #[arg(long)]
    no_sbom: bool,
    /// Do everything but push and sign.
    #[arg(long)]
    dry_run: bool,
    /// Where to write the receipt (default: `<target dir>/kiln/receipt.json`).
    #[arg(long, value_name = "FILE")]
    receipt: Option<PathBuf>,
    /// The wasm target of Rust builds (wasm32-wasip2 or wasm32-wasip1).
    #[arg(long, value_name = "TRIPLE")]
    wasm_target: Option<String>,
    #[command(flatten)]
    flags: BuildFlags,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print one JSON event per line while running, and the receipt last.
    #[arg(long)]
    json: bool,
}

/// The receipt's format name and version.
pub const RECEIPT_SCHEMA: &str = "kiln-receipt/1";

/// What a publish did; its schema is documented in docs/receipt.md.
/// Everything outside `run` is a function of the inputs, so an unchanged
/// project publishes to the same receipt.
#[derive(Debug, Serialize)]
pub struct Receipt {
    schema: &'static str,
    dry_run: bool,
    project: ProjectInfo,
    toolchain: Toolchain,
    adapter: Option<AdapterInfo>,
    component: ComponentInfo,
    audit: Option<AuditInfo>,
    precompiled: Vec<Precompiled>,
    sbom: Option<SbomInfo>,
    pushed: Option<PushedInfo>,
    signatures: Vec<SignatureInfo>,
    run: RunInfo,
}

#[derive(Debug, Serialize)]
struct ProjectInfo {
    path: PathBuf,
    language: kiln_core::Lang,
    name: String,
    version: Option<String>,
    settings: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Toolchain {
    kiln: &'static str,
    compiler: Option<String>,
    wasmtime: &'static str,
}

#[derive(Debug, Serialize)]
struct AdapterInfo {
    kind: &'static str,
    name: &'static str,
    digest: String,
}

#[derive(Debug, Serialize)]
struct ComponentInfo {
    path: PathBuf,
    digest: String,
    size: u64,
    imports: Vec<String>,
    exports: Vec<String>,
}

#[derive(Debug, Serialize)]
struct AuditInfo {
    policy: String,
    passed: bool,
    findings: usize,
}

#[derive(Debug, Serialize)]
struct Precompiled {
    target: String,
    path: PathBuf,
    digest: String,
    size: u64,
    descriptor: kiln_aot::Descriptor,
    manifest: Option<String>,
}

#[derive(Debug, Serialize)]
struct SbomInfo {
    format: &'static str,
    path: PathBuf,
    digest: String,
    components: usize,
    manifest: Option<String>,
}

#[derive(Debug, Serialize)]
struct PushedInfo {
    reference: String,
    digest: String,
    size: u64,
    media_type: String,
    referrers: Vec<ReferrerInfo>,
}

#[derive(Debug, Serialize)]
struct ReferrerInfo {
    artifact_type: String,
    digest: String,
    target: Option<String>,
}

#[derive(Debug, Serialize)]
struct SignatureInfo {
    subject: String,
    what: String,
    reference: String,
    signature_manifest: String,
}

/// What varies from run to run: timings and how much work was done.
#[derive(Debug, Default, Serialize)]
struct RunInfo {
    timings_ms: BTreeMap<String, f64>,
    uploaded_bytes: u64,
    compiled: usize,
    from_cache: usize,
    signed: usize,
    already_signed: usize,
}

/// Stage events: human status lines on stderr, and with `--json` one JSON
/// object per line on stdout.
struct Events<'a> {
    printer: &'a Printer,
    json: bool,
    timings: Mutex<BTreeMap<String, f64>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Event<'a> {
    StageStarted {
        stage: &'a str,
    },
    StageFinished {
        stage: &'a str,
        ms: f64,
    },
    StageFailed {
        stage: &'a str,
        error: String,
    },
    Status {
        verb: &'a str,
        message: &'a str,
    },
    Warning {
        message: &'a str,
    },
    Progress {
        label: &'a str,
        total: u64,
        done: u64,
    },
    Receipt {
        receipt: &'a Receipt,
    },
}

impl Events<'_> {
    fn emit(&self, event: &Event) {
        if self.json
            && let Ok(line) = serde_json::to_string(event)
        {
            // A closed stdout ends the run later, where the receipt is written.
            let _ = self.printer.data(&format!("{line}\n"));
        }
    }

    /// Runs one stage, timing it and reporting its start, end or failure.
    fn stage<T>(&self, stage: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.emit(&Event::StageStarted { stage });
        let spinner = self.printer.spinner(stage);
        let started = Instant::now();
        let result = f();
        spinner.finish_and_clear();
        let elapsed = ms(started);
        match &result {
            Ok(_) => {
                self.emit(&Event::StageFinished { stage, ms: elapsed });
                if let Ok(mut t) = self.timings.lock() {
                    *t.entry(stage.to_string()).or_default() += elapsed;
                }
            }
            Err(e) => self.emit(&Event::StageFailed {
                stage,
                error: format!("{e:#}"),
            }),
        }
        result.with_context(|| format!("`kiln publish` stopped at the {stage} stage"))
    }
}

impl Reporter for Events<'_> {
    fn status(&self, verb: &str, message: &str) {
        self.printer.status(verb, message);
        self.emit(&Event::Status { verb, message });
    }

    fn warn(&self, message: &str) {
        self.printer.warn(message);
        self.emit(&Event::Warning { message });
    }

    fn progress(&self, label: &str, total: u64) -> Box<dyn Progress> {
        self.emit(&Event::Progress {
            label,
            total,
            done: 0,
        });
        let inner = Reporter::progress(self.printer, label, total);
        if !self.json {
            return inner;
        }
        Box::new(EventProgress {
            label: label.to_string(),
            total,
            done: std::sync::atomic::AtomicU64::new(0),
            inner,
        })
    }
}

/// Progress that also reports its end as a JSON event.
struct EventProgress {
    label: String,
    total: u64,
    done: std::sync::atomic::AtomicU64,
    inner: Box<dyn Progress>,
}

impl Progress for EventProgress {
    fn inc(&self, n: u64) {
        self.done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.inner.inc(n);
    }
    fn finish(&self) {
        self.inner.finish();
        let event = Event::Progress {
            label: &self.label,
            total: self.total,
            done: self.done.load(std::sync::atomic::Ordering::Relaxed),
        };
        if let Ok(line) = serde_json::to_string(&event) {
            use std::io::Write as _;
            // Same stream and framing as `Events::emit`: one line per event.
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

/// Everything `publish` was told, from flags over kiln.toml.
struct Plan {
    reference: Option<Reference>,
    policy: Option<Policy>,
    targets: Vec<String>,
    cpu: kiln_aot::Cpu,
    key: Option<PathBuf>,
    sbom: bool,
    settings_file: Option<PathBuf>,
}

fn plan(args: &Args, project: &kiln_build::Project) -> Result<Plan> {
    let settings = kiln_build::manifest::publish_settings(project)?;
    let policy = match (&args.policy, &settings.audit) {
        (Some(p), _) => Some(match p.strip_prefix("builtin:") {
            Some(name) => Policy::builtin(name)?,
            None => Policy::from_file(Path::new(p))?,
        }),
        (None, Some((text, origin))) => {
            let file = settings.file.clone().unwrap_or_default();
            let base = crate::ops::dir_of(&file);
            Some(if file.file_name().is_some_and(|n| n == "kiln.toml") {
                // kiln.toml's own reader keeps line numbers in findings.
                Policy::from_kiln_toml(&file)?.context("kiln.toml lost its `[audit]` table")?
            } else {
                Policy::from_text(text, origin, &base)
                    .with_context(|| format!("invalid audit policy in {origin}"))?
            })
        }
        (None, None) => None,
    };
    let targets: Vec<String> = if !args.targets.is_empty() {
        args.targets.clone()
    } else if let Some(t) = &settings.compile.targets {
        t.clone()
    } else {
        vec![kiln_aot::host_triple().to_string()]
    };
    let targets: Vec<String> = if targets.iter().any(|t| t == "all") {
        kiln_aot::TARGETS.iter().map(|t| t.to_string()).collect()
    } else {
        targets.into_iter().filter(|t| t != "none").collect()
    };
    let cpu: kiln_aot::Cpu = args
        .cpu
        .as_deref()
        .or(settings.compile.cpu.as_deref())
        .unwrap_or("baseline")
        .parse()?;
    for t in &targets {
        kiln_aot::engine_config(t, &cpu, &kiln_aot::Settings::default())?;
    }
    let to = args.to.clone().or(settings.publish.to.clone());
    let reference = to.as_deref().map(Reference::parse).transpose()?;
    let key = if args.no_sign {
        None
    } else {
        args.key.clone().or(settings.sign.key.clone())
    };
    Ok(Plan {
        reference,
        policy,
        targets,
        cpu,
        key,
        sbom: !args.no_sbom && settings.publish.sbom.unwrap_or(true),
        settings_file: settings.file,
    })
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    let events = Events {
        printer,
        json: args.json,
        timings: Mutex::new(BTreeMap::new()),
    };
    let started = Instant::now();

    // Everything that can be wrong with the settings or the key is found
    // before anything is built.
    let project = kiln_build::discover(&args.path)?;
    let plan = plan(&args, &project)?;
    let signer = match &plan.key {
        Some(key) if !args.dry_run => Some(crate::ops::sign::signer(key)?),
        _ => None,
    };

    // Precompiling starts as soon as the component's bytes are final, while
    // the build still validates and writes them: it publishes nothing, and
    // its artifacts are attached only once the component is pushed.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<(Vec<u8>, PathBuf)>();
    let ready = Mutex::new(Some(ready_tx));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<kiln_aot::Artifact>();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let compile = s.spawn(|| precompile_when_ready(ready_rx, &plan, &events, done_tx, &stop));
        let outcome = pipeline(
            &args,
            &plan,
            signer.as_ref(),
            &events,
            &ready,
            done_rx,
            compile,
            started,
            printer,
        );
        // Whatever ended the pipeline, no further target need be compiled.
        stop.store(true, Ordering::Relaxed);
        outcome
    })
}

/// Where the build hands the component's final bytes and path to the
/// precompile; emptied once the build is over, so the precompile never
/// waits for a build that failed.
type ReadySlot = Mutex<Option<Sender<(Vec<u8>, PathBuf)>>>;

/// Waits for the component's bytes and precompiles them for each target,
/// handing each artifact on as it is made; nothing when the build failed
/// first or there are no targets.
fn precompile_when_ready(
    ready: Receiver<(Vec<u8>, PathBuf)>,
    plan: &Plan,
    events: &Events,
    done: Sender<kiln_aot::Artifact>,
    stop: &AtomicBool,
) -> Result<()> {
    let Ok((component, path)) = ready.recv() else {
        return Ok(());
    };
    if plan.targets.is_empty() {
        return Ok(());
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    events.stage("compile", || {
        compile_targets(&component, plan, &dir, &stem, events, &done, stop)
    })
}

/// Build, audit, push, attach, sign and the receipt; `compile` is the
/// precompile running beside it, fed through `ready`.
#[allow(clippy::too_many_arguments)]
fn pipeline(
    args: &Args,
    plan: &Plan,
    signer: Option<&kiln_sign::Signer>,
    events: &Events,
    ready: &ReadySlot,
    rx: Receiver<kiln_aot::Artifact>,
    compile: std::thread::ScopedJoinHandle<'_, Result<()>>,
    started: Instant,
    printer: &Printer,
) -> Result<Outcome> {
    let on_component = |bytes: &[u8], path: &Path| {
        if let Some(tx) = ready.lock().ok().and_then(|mut r| r.take()) {
            let _ = tx.send((bytes.to_vec(), path.to_path_buf()));
        }
    };
    let built = events.stage("build", || {
        crate::ops::build::build_component(
            &args.path,
            None,
            &args.flags.options(args.wasm_target.clone()),
            events,
            Some(&on_component),
        )
    });
    // A build that failed before its bytes were final: the compile stops
    // waiting.
    drop(ready.lock().ok().and_then(|mut r| r.take()));
    let out = built?;
    if let Ok(mut t) = events.timings.lock() {
        // The compiler's own run inside the build stage, so the rest of
        // kiln's time can be told apart from it.
        t.insert("build.compiler".to_string(), out.timings.compiler_ms);
        t.insert("build.setup".to_string(), out.timings.setup_ms);
    }
    let root = out.project.root.clone();
    let kiln_dir = out.built.target_dir.join("kiln");
    let created = kiln_oci::artifact::created(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())?;

    let audit = match &plan.policy {
        Some(policy) => {
            let report = events.stage("audit", || audit_component(&out, policy))?;
            let info = AuditInfo {
                policy: policy.source.clone(),
                passed: report.passed,
                findings: report.findings.len(),
            };
            if !report.passed {
                for f in &report.findings {
                    events.warn(&format!("{}: {} ({})", f.rule, f.message, f.origin));
                }
                events.emit(&Event::StageFailed {
                    stage: "audit",
                    error: format!(
                        "{} finding(s) against {}",
                        report.findings.len(),
                        policy.source
                    ),
                });
                printer.status(
                    "Stopped",
                    &format!(
                        "`{}` fails its audit policy ({} finding(s)); nothing was pushed",
                        out.path.display(),
                        report.findings.len()
                    ),
                );
                return Ok(Outcome::Problems);
            }
            Some(info)
        }
        None => {
            events.warn(
                "no audit policy (no --policy, no `[audit]` in kiln.toml); the audit stage is skipped",
            );
            None
        }
    };

    let name = out.built.name.clone();
    let stem = out
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.clone());
    let surface = &out.surface;
    let metadata = crate::ops::push::image_metadata(surface);
    let reference = match &plan.reference {
        Some(r) => r.clone(),
        None => {
            let r = crate::ops::push::default_reference(&metadata, &stem)?;
            let dir = kiln_dir.join("oci").join(match &r {
                Reference::Layout { dir, .. } => dir
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(&name)),
                Reference::Registry { .. } => PathBuf::from(&name),
            });
            Reference::Layout {
                dir,
                tag: r.tag().map(str::to_string),
                digest: None,
            }
        }
    };
    let reference = if reference.tag().is_none() && reference.digest().is_none() {
        reference.with_tag(metadata.version.as_deref().unwrap_or("latest"))
    } else {
        reference
    };
    if reference.digest().is_some() {
        bail!(
            "publish to a tag (`REPO:TAG`), not a digest: the digest is what the publish computes"
        );
    }

    let info = kiln_oci::ComponentInfo {
        imports: surface.imports.clone(),
        exports: surface.exports.clone(),
        target: None,
    };
    let layer = kiln_oci::artifact::Blob {
        descriptor: kiln_oci::artifact::Descriptor::of(
            kiln_oci::artifact::WASM_LAYER_MEDIA_TYPE,
            &out.component,
        ),
        data: kiln_oci::artifact::BlobData::File(out.path.clone()),
    };
    let package = kiln_oci::wasm_package(layer, Some(info), &metadata, &created)?;

    let mut run = RunInfo::default();
    let mut precompiled = Vec::new();
    let mut sbom_info = None;
    let mut pushed_info = None;
    let mut signatures = Vec::new();

    // Precompiling (started during the build) runs beside the SBOM, the
    // push of the component and its signing, which need only the component;
    // each precompiled artifact is then attached as soon as it is made.
    let compiled = {
        let rest = (|| -> Result<Vec<kiln_aot::Artifact>> {
            let sbom = if plan.sbom {
                Some(events.stage("sbom", || {
                    make_sbom(&out, &created, &kiln_dir.join(format!("{stem}.cdx.json")))
                })?)
            } else {
                None
            };
            if let Some((bom, bytes, path)) = &sbom {
                sbom_info = Some(SbomInfo {
                    format: "CycloneDX 1.5",
                    path: relative(&root, path),
                    digest: kiln_core::Digest::of(bytes).to_string(),
                    components: bom.components.len(),
                    manifest: None,
                });
            }
            let store = if args.dry_run {
                None
            } else {
                Some(events.stage("push", || {
                    let store = args.registry.options().open(&reference, true, events)?;
                    let pushed = store.push(&reference, &package, &[], events)?;
                    run.uploaded_bytes += pushed.uploaded_bytes;
                    pushed_info = Some(PushedInfo {
                        reference: pushed.reference.clone(),
                        digest: pushed.digest.clone(),
                        size: pushed.size,
                        media_type: pushed.media_type.clone(),
                        referrers: Vec::new(),
                    });
                    if let Some((_, bytes, _)) = &sbom {
                        let sbom_package =
                            kiln_oci::sbom_package(bytes.clone(), &package.descriptor, &created)?;
                        run.uploaded_bytes +=
                            store.attach(&package.descriptor.digest, &sbom_package, events)?;
                        events.status(
                            "Attached",
                            &format!("SBOM {}", sbom_package.descriptor.digest),
                        );
                        if let Some(s) = &mut sbom_info {
                            s.manifest = Some(sbom_package.descriptor.digest.clone());
                        }
                        if let Some(p) = &mut pushed_info {
                            p.referrers.push(ReferrerInfo {
                                artifact_type: kiln_oci::artifact::SBOM_ARTIFACT_TYPE.to_string(),
                                digest: sbom_package.descriptor.digest.clone(),
                                target: None,
                            });
                        }
                    }
                    Ok(store)
                })?)
            };
            if let (Some(store), Some(signer)) = (&store, &signer) {
                events.stage("sign", || {
                    let mut subjects =
                        vec![(package.descriptor.digest.clone(), "component".to_string())];
                    if let Some(m) = sbom_info.as_ref().and_then(|s| s.manifest.clone()) {
                        subjects.push((m, "sbom".to_string()));
                    }
                    for (subject, what) in subjects {
                        signatures.push(sign_once(
                            store, signer, &reference, &subject, &what, &mut run, events,
                        )?);
                    }
                    Ok(())
                })?;
            }
            // Precompiled artifacts, as the compile stage finishes each.
            let mut compiled = Vec::new();
            let mut attached = Vec::new();
            for a in rx.iter() {
                let path =
                    kiln_aot::ArtifactFiles::new(&kiln_dir, &stem, &a.descriptor.target).cwasm;
                let mut entry = Precompiled {
                    target: a.descriptor.target.clone(),
                    path: relative(&root, &path),
                    digest: a.descriptor.artifact_digest.clone(),
                    size: a.descriptor.artifact_size,
                    descriptor: a.descriptor.clone(),
                    manifest: None,
                };
                if let Some(store) = &store {
                    events.stage("attach", || {
                        let mut json = serde_json::to_vec_pretty(&a.descriptor)?;
                        json.push(b'\n');
                        let file_name = path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let cwasm = kiln_oci::cwasm_package(
                            a.bytes.clone(),
                            json,
                            &a.descriptor.target,
                            &a.descriptor.wasmtime_version,
                            &file_name,
                            &package.descriptor,
                            &created,
                        )?;
                        run.uploaded_bytes += store.put_attachment(&cwasm, events)?;
                        events.status(
                            "Attached",
                            &format!("{} {}", a.descriptor.target, cwasm.descriptor.digest),
                        );
                        entry.manifest = Some(cwasm.descriptor.digest.clone());
                        if let Some(pi) = &mut pushed_info {
                            pi.referrers.push(ReferrerInfo {
                                artifact_type: kiln_oci::artifact::CWASM_ARTIFACT_TYPE.to_string(),
                                digest: cwasm.descriptor.digest.clone(),
                                target: Some(a.descriptor.target.clone()),
                            });
                        }
                        attached.push(cwasm.descriptor);
                        Ok(())
                    })?;
                }
                precompiled.push(entry);
                compiled.push(a);
            }
            if let Some(store) = &store
                && !attached.is_empty()
            {
                // One update of the referrers index for all of them.
                events.stage("attach", || {
                    store.add_referrers(&package.descriptor.digest, &attached)
                })?;
                if let Some(signer) = &signer {
                    events.stage("sign", || {
                        for p in &precompiled {
                            if let Some(m) = &p.manifest {
                                signatures.push(sign_once(
                                    store,
                                    signer,
                                    &reference,
                                    m,
                                    &format!("precompiled {}", p.target),
                                    &mut run,
                                    events,
                                )?);
                            }
                        }
                        Ok(())
                    })?;
                }
            }
            Ok(compiled)
        })();
        let compiled_ok = compile
            .join()
            .map_err(|_| anyhow::anyhow!("internal error: the compile stage panicked"))?;
        let compiled = rest?;
        compiled_ok?;
        compiled
    };
    for a in &compiled {
        if a.cached {
            run.from_cache += 1;
        } else {
            run.compiled += 1;
        }
    }

    run.timings_ms = events.timings.lock().map(|t| t.clone()).unwrap_or_default();
    run.timings_ms.insert("total".to_string(), ms(started));
    let built = &out.built;
    let receipt = Receipt {
        schema: RECEIPT_SCHEMA,
        dry_run: args.dry_run,
        project: ProjectInfo {
            path: root.clone(),
            language: out.project.lang,
            name: built.metadata.name.clone(),
            version: built.metadata.version.clone(),
            settings: plan.settings_file.as_ref().map(|f| relative(&root, f)),
        },
        toolchain: Toolchain {
            kiln: env!("CARGO_PKG_VERSION"),
            compiler: built
                .metadata
                .language
                .as_ref()
                .map(|(l, v)| format!("{l} {v}")),
            wasmtime: kiln_aot::WASMTIME_VERSION,
        },
        adapter: out.adapter.map(|a| AdapterInfo {
            kind: match a {
                kiln_component::Adapter::Command => "command",
                kiln_component::Adapter::Reactor => "reactor",
            },
            name: a.name(),
            digest: kiln_core::Digest::of(a.bytes()).to_string(),
        }),
        component: ComponentInfo {
            path: relative(&root, &out.path),
            digest: out.digest.to_string(),
            size: out.component.len() as u64,
            imports: surface.imports.clone(),
            exports: surface.exports.clone(),
        },
        audit,
        precompiled,
        sbom: sbom_info,
        pushed: pushed_info,
        signatures,
        run,
    };
    let receipt_path = args
        .receipt
        .clone()
        .unwrap_or_else(|| kiln_dir.join("receipt.json"));
    let mut bytes = serde_json::to_vec_pretty(&receipt)?;
    bytes.push(b'\n');
    kiln_core::fs::write_atomic(&receipt_path, &bytes)?;
    printer.status(
        if args.dry_run { "Dry run" } else { "Published" },
        &format!(
            "{} in {:.2}s (receipt `{}`)",
            receipt
                .pushed
                .as_ref()
                .map_or_else(|| receipt.component.digest.clone(), |p| p.reference.clone()),
            started.elapsed().as_secs_f64(),
            receipt_path.display()
        ),
    );
    if args.json {
        events.emit(&Event::Receipt { receipt: &receipt });
    } else {
        let mut text = String::new();
        match &receipt.pushed {
            Some(p) => {
                text.push_str(&format!("{}\n", p.reference));
                for r in &p.referrers {
                    text.push_str(&format!(
                        "{}\t{}\n",
                        r.target.as_deref().unwrap_or(
                            if r.artifact_type == kiln_oci::artifact::SBOM_ARTIFACT_TYPE {
                                "sbom"
                            } else {
                                "referrer"
                            }
                        ),
                        reference.with_digest(&r.digest)
                    ));
                }
            }
            None => text.push_str(&format!(
                "{}\t{}\n",
                receipt.component.path.display(),
                receipt.component.digest
            )),
        }
        printer.data(&text)?;
        if receipt.run.uploaded_bytes > 0 || !args.dry_run {
            printer.status(
                "Uploaded",
                &format!("{} of blobs", human_size(receipt.run.uploaded_bytes)),
            );
        }
    }
    Ok(Outcome::Ok)
}

fn audit_component(out: &BuildOutput, policy: &Policy) -> Result<AuditReport> {
    let world = policy.world.as_ref().map(WorldNames::load).transpose()?;
    let facts = audit::read_facts(&out.path.display().to_string(), &out.component)
        .with_context(|| format!("failed to read `{}`", out.path.display()))?;
    Ok(audit::audit(&facts, policy, world.as_ref()))
}

fn compile_targets(
    wasm: &[u8],
    plan: &Plan,
    dir: &Path,
    stem: &str,
    events: &Events,
    done: &Sender<kiln_aot::Artifact>,
    stop: &AtomicBool,
) -> Result<()> {
    let cache = kiln_core::cache_dir().map(|d| d.join("aot"));
    let settings = kiln_aot::Settings::default();
    // One target at a time (each compile already spreads its functions over
    // every core), each handed on as soon as it is written, so the first is
    // being uploaded while the next compiles.
    for target in &plan.targets {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let artifact = kiln_aot::compile(wasm, target, &plan.cpu, &settings, cache.as_deref())
            .with_context(|| format!("failed to precompile for {target}"))?;
        let files = kiln_aot::ArtifactFiles::new(dir, stem, target);
        files.write(&artifact.bytes, &artifact.descriptor)?;
        let path = files.cwasm;
        events.status(
            if artifact.cached {
                "Cached"
            } else {
                "Compiled"
            },
            &format!("{target} `{}`", path.display()),
        );
        if done.send(artifact).is_err() {
            // The pipeline stopped on an error of its own; it reports that.
            break;
        }
    }
    Ok(())
}

fn make_sbom(
    out: &BuildOutput,
    created: &str,
    path: &Path,
) -> Result<(kiln_build::sbom::Bom, Vec<u8>, PathBuf)> {
    let m = &out.built.metadata;
    let bom = kiln_build::sbom::generate(
        &out.built.sbom,
        &kiln_build::sbom::Subject {
            name: &m.name,
            version: m.version.as_deref(),
            license: m.license.as_deref(),
            digest_hex: &out.digest.hex(),
            is_program: out.built.is_program,
            created,
        },
        &out.built.wasm,
    )?;
    let bytes = kiln_build::sbom::to_bytes(&bom)?;
    kiln_core::fs::write_if_changed(path, &bytes)?;
    Ok((bom, bytes, path.to_path_buf()))
}

/// Signs `subject` unless this key's signature of it is already stored:
/// an unchanged digest is never signed twice.
fn sign_once(
    store: &Store,
    signer: &kiln_sign::Signer,
    reference: &Reference,
    subject: &str,
    what: &str,
    run: &mut RunInfo,
    events: &Events,
) -> Result<SignatureInfo> {
    let verifier = kiln_sign::load_public_key(signer.public_key_pem()?.as_bytes())?;
    let (good, _) =
        crate::ops::sign::verified_payloads(store, subject, &verifier, &BTreeMap::new(), events)?;
    let tag = kiln_oci::signature::signature_tag(subject)?;
    let manifest = if good.is_empty() {
        let payload =
            kiln_sign::Payload::new(&crate::ops::sign::identity(reference), subject, &BTreeMap::new())
                .to_bytes()?;
        let signature = signer.sign(&payload)?;
        let manifest = store.add_signature(subject, payload, &signature, events)?;
        events.status("Signed", &format!("{what} {subject}"));
        run.signed += 1;
        manifest
    } else {
        events.status(
            "Signed",
            &format!("{what} {subject} (already, by this key)"),
        );
        run.already_signed += 1;
        store.resolve_digest(&reference.with_tag(&tag))?
    };
    Ok(SignatureInfo {
        subject: subject.to_string(),
        what: what.to_string(),
        reference: reference.with_tag(&tag).to_string(),
        signature_manifest: manifest,
    })
}

/// `path` relative to the project root when it is inside it.
fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}
