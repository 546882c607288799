//! `kiln new`: a project from one of the templates in templates/.
//!
//! `kiln new`: a project from one of the templates in templates/, ready for
//! `kiln build` and `kiln publish` with no edits.

use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::{Context, Result, bail};
use kiln_core::{Reporter, hinted};
use std::path::PathBuf;

/// Create a project from a template.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Templates: rust (command, library, http), c (command, library), go (command, library). \
`http` is a wasi:http/incoming-handler component; Go and C have no http template because \
kiln builds them through WASI preview 1 core modules, which cannot export wasi:http.")]
pub struct Args {
    /// The directory to create; its name is the project's name (lowercase
    /// words of letters and digits joined by `-`, as WIT names are).
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// The language.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// What kind of component.
    #[arg(long, value_enum, default_value = "command")]
    template: Template,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Lang {
    Rust,
    C,
    Go,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Template {
    /// A program with `main` (wasi:cli/run).
    Command,
    /// A library exporting a WIT interface.
    Library,
    /// A wasi:http/incoming-handler.
    Http,
}

/// A template file: its path under templates/ and its text.
macro_rules! file {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../templates/", $path)))
    };
}

/// Every template file, compiled in so an installed kiln needs no data
/// files; cli/tests/it/new.rs checks this list against templates/.
pub const FILES: &[(&str, &str)] = &[
    file!("c-command/gitignore"),
    file!("c-command/kiln.toml"),
    file!("c-command/src/main.c"),
    file!("c-library/gitignore"),
    file!("c-library/kiln.toml"),
    file!("c-library/src/api.c"),
    file!("c-library/wit/world.wit"),
    file!("go-command/gitignore"),
    file!("go-command/go.mod"),
    file!("go-command/kiln.toml"),
    file!("go-command/main.go"),
    file!("go-library/gitignore"),
    file!("go-library/go.mod"),
    file!("go-library/kiln.toml"),
    file!("go-library/main.go"),
    file!("go-library/wit/world.wit"),
    file!("rust-command/Cargo.toml"),
    file!("rust-command/gitignore"),
    file!("rust-command/src/main.rs"),
    file!("rust-http/Cargo.toml"),
    file!("rust-http/gitignore"),
    file!("rust-http/src/lib.rs"),
    file!("rust-library/Cargo.toml"),
    file!("rust-library/gitignore"),
    file!("rust-library/src/lib.rs"),
    file!("rust-library/wit/world.wit"),
];

/// Whether `name` is usable as a package, crate, Go module and WIT name.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.split('-').all(|word| {
            word.starts_with(|c: char| c.is_ascii_lowercase())
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !ok {
        return Err(hinted(
            format!("`{name}` cannot name a project"),
            "use lowercase words of letters and digits, each starting with a letter, joined by `-` (e.g. `hello-world`)",
        ));
    }
    Ok(())
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    let lang = match args.lang {
        Lang::Rust => "rust",
        Lang::C => "c",
        Lang::Go => "go",
    };
    let template = match args.template {
        Template::Command => "command",
        Template::Library => "library",
        Template::Http => "http",
    };
    let prefix = format!("{lang}-{template}/");
    let files: Vec<(&str, &str)> = FILES
        .iter()
        .filter_map(|(p, text)| p.strip_prefix(prefix.as_str()).map(|rest| (rest, *text)))
        .collect();
    if files.is_empty() {
        let mut have: Vec<&str> = FILES
            .iter()
            .filter_map(|(p, _)| p.split('/').next())
            .collect();
        have.dedup();
        return Err(hinted(
            format!("there is no `{template}` template for {lang}"),
            format!("templates: {}", have.join(", ")),
        ));
    }
    let name = args
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("the path names no directory")?;
    check_name(&name)?;
    if args.path.exists() {
        bail!(
            "`{}` already exists; kiln new creates a new directory",
            args.path.display()
        );
    }
    let parent = match args.path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("failed to create `{}`", parent.display()))?;
    // Written to a directory beside the destination, then renamed: an
    // interrupted `kiln new` leaves no half-made project behind, and what
    // a killed one left is removed here once nobody holds its lock.
    kiln_core::fs::clean_stale(&parent);
    let staging = tempfile::Builder::new()
        .prefix(kiln_core::fs::NEW_PREFIX)
        .tempdir_in(&parent)
        .with_context(|| format!("failed to create a directory in `{}`", parent.display()))?;
    let lock_path = staging.path().join(kiln_core::fs::LOCK_FILE);
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("failed to create `{}`", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("failed to lock `{}`", lock_path.display()))?;
    let snake = name.replace('-', "_");
    for (rel, text) in &files {
        let rel = match rel.rsplit_once('/') {
            Some((dir, "gitignore")) => format!("{dir}/.gitignore"),
            None if *rel == "gitignore" => ".gitignore".to_string(),
            _ => rel.to_string(),
        };
        let path = staging.path().join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create `{}`", dir.display()))?;
        }
        let text = text.replace("{{name}}", &name).replace("{{snake}}", &snake);
        std::fs::write(&path, text)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    // The lock file is not part of the project. Removed while still held,
    // the directory's fresh modification time keeps it safe from
    // `clean_stale` until the rename.
    std::fs::remove_file(&lock_path)
        .with_context(|| format!("failed to remove `{}`", lock_path.display()))?;
    // Dropping `staging` on a failed rename removes it.
    std::fs::rename(staging.path(), &args.path).with_context(|| {
        format!(
            "failed to move the new project into `{}`",
            args.path.display()
        )
    })?;
    let _ = staging.keep();
    drop(lock);
    printer.status(
        "Created",
        &format!("{lang} {template} `{name}` in `{}`", args.path.display()),
    );
    printer.status(
        "Next",
        &format!(
            "`kiln build {0}`, then `kiln publish {0}`",
            args.path.display()
        ),
    );
    printer.data(&format!("{}\n", args.path.display()))?;
    Ok(Outcome::Ok)
}
