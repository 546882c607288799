//! The `kiln` command: parses arguments, chains kiln's library stages and renders their results.

mod commands;
mod ops;
mod outcome;
mod output;
mod render;

use clap::{Parser, Subcommand};
use outcome::Outcome;
use output::Printer;
use std::process::ExitCode;

/// Build, validate, inspect and publish WebAssembly components.
#[derive(Parser)]
#[command(name = "kiln", version, about, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command accepts.
#[derive(clap::Args, Debug, Clone)]
struct GlobalOpts {
    /// Print only errors and data, no status lines.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// When to use colors on stderr: auto, always or never (`NO_COLOR` is honoured).
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    color: output::ColorChoice,
}

#[derive(Subcommand)]
enum Command {
    Build(Box<commands::build::Args>),
    Validate(commands::validate::Args),
    Inspect(commands::inspect::Args),
    Audit(commands::audit::Args),
    Compile(commands::compile::Args),
    Push(commands::push::Args),
    Pull(commands::pull::Args),
    Tags(commands::tags::Args),
    Login(commands::login::LoginArgs),
    Keygen(commands::sign::KeygenArgs),
    Sign(commands::sign::SignArgs),
    Verify(commands::sign::VerifyArgs),
    SignBlob(commands::sign::SignBlobArgs),
    VerifyBlob(commands::sign::VerifyBlobArgs),
    Attest(commands::attest::AttestArgs),
    VerifyAttestation(commands::attest::VerifyAttestationArgs),
    Logout(commands::login::LogoutArgs),
    New(commands::new::Args),
    Publish(Box<commands::publish::Args>),
    Doctor(commands::doctor::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(&output::Options {
        quiet: cli.global.quiet,
        color: cli.global.color,
    });
    let result = match cli.command {
        Command::Build(args) => commands::build::run(*args, &printer),
        Command::Validate(args) => commands::validate::run(args, &printer),
        Command::Inspect(args) => commands::inspect::run(args, &printer),
        Command::Audit(args) => commands::audit::run(args, &printer),
        Command::Compile(args) => commands::compile::run(args, &printer),
        Command::Push(args) => commands::push::run(args, &printer),
        Command::Pull(args) => commands::pull::run(args, &printer),
        Command::Tags(args) => commands::tags::run(args, &printer),
        Command::Login(args) => commands::login::login(args, &printer),
        Command::Keygen(args) => commands::sign::keygen(args, &printer),
        Command::Sign(args) => commands::sign::sign(args, &printer),
        Command::Verify(args) => commands::sign::verify(args, &printer),
        Command::SignBlob(args) => commands::sign::sign_blob(args, &printer),
        Command::VerifyBlob(args) => commands::sign::verify_blob(args, &printer),
        Command::Attest(args) => commands::attest::attest(args, &printer),
        Command::VerifyAttestation(args) => commands::attest::verify_attestation(args, &printer),
        Command::Logout(args) => commands::login::logout(args, &printer),
        Command::New(args) => commands::new::run(args, &printer),
        Command::Publish(args) => commands::publish::run(*args, &printer),
        Command::Doctor(args) => commands::doctor::run(args, &printer),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            printer.error(&err);
            ExitCode::from(2)
        }
    }
}
