//! `kiln tags`: the tags of a repository in a registry or of a local OCI layout.

use super::args::RegistryArgs;
use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::Result;
use kiln_oci::Reference;

/// List the tags of a repository or local layout.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// REGISTRY/REPO, oci:DIR, or NAME (a tag or digest in it is ignored).
    #[arg(value_name = "REF")]
    reference: String,
    /// Include the `sha256-…` tags that index referrers.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the tags as a JSON array.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    let reference = Reference::parse(&args.reference)?;
    let store = args.registry.options().open(&reference, false, printer)?;
    let tags: Vec<String> = store
        .tags()?
        .into_iter()
        .filter(|t| args.all || !is_referrers_tag(t))
        .collect();
    if args.json {
        printer.json(&tags)?;
    } else {
        printer.data(&tags.iter().map(|t| format!("{t}\n")).collect::<String>())?;
    }
    Ok(Outcome::Ok)
}

fn is_referrers_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}
