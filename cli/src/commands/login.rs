//! `kiln login` / `kiln logout`: registry credentials in Docker's config file.
//!
//! `kiln login` / `kiln logout`: registry credentials in Docker's config file
//! (or its credential helper), checked against the registry first.

use super::args::RegistryArgs;
use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::{Context, Result, bail};
use kiln_core::Reporter;
use std::io::Read;

/// Log in to a registry: check the credentials, then store them where docker, oras and cosign find them.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The registry host, e.g. ghcr.io or 127.0.0.1:5000.
    #[arg(value_name = "REGISTRY")]
    registry: String,
    /// User name.
    #[arg(short, long)]
    username: String,
    /// Read the password (or token) from standard input.
    #[arg(long, required = true)]
    password_stdin: bool,
    #[command(flatten)]
    connection: RegistryArgs,
}

/// Remove stored credentials for a registry.
#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// The registry host.
    #[arg(value_name = "REGISTRY")]
    registry: String,
}

pub fn login(args: LoginArgs, printer: &Printer) -> Result<Outcome> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("failed to read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    let registry = args.registry.trim_end_matches('/');
    let registry = registry
        .strip_prefix("https://")
        .or_else(|| registry.strip_prefix("http://"))
        .unwrap_or(registry);
    let client = kiln_oci::registry::Registry::new(
        registry,
        kiln_oci::auth::Credentials::Basic {
            username: args.username.clone(),
            password: password.clone(),
        },
        &args.connection.options().connection(),
    )?;
    client
        .check_login()
        .with_context(|| format!("failed to log in to `{registry}`"))?;
    let stored = kiln_oci::auth::login(registry, &args.username, &password)?;
    printer.status(
        "Logged in",
        &format!(
            "to `{registry}` as `{}` (stored in {stored})",
            args.username
        ),
    );
    Ok(Outcome::Ok)
}

pub fn logout(args: LogoutArgs, printer: &Printer) -> Result<Outcome> {
    if kiln_oci::auth::logout(&args.registry)? {
        printer.status("Logged out", &format!("of `{}`", args.registry));
    } else {
        printer.warn(&format!(
            "no credentials were stored for `{}`",
            args.registry
        ));
    }
    Ok(Outcome::Ok)
}
