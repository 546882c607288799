//! Runs the external tools kiln drives (cargo, clang, go, git).
//!
//! Their failures become errors that carry the command line and the tool's
//! stderr.

use std::ffi::OsStr;
use std::fmt;
use std::process::{Command, ExitStatus, Output, Stdio};

/// Why running an external tool failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program is not installed or not on `PATH`.
    #[error("`{program}` was not found on PATH")]
    NotFound {
        /// The program that was looked up.
        program: String,
    },
    /// The program could not be started for another reason.
    #[error("failed to start `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The program ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}){}", stderr_tail(.stderr))]
    Failed {
        /// The command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it wrote to stderr, when it was captured.
        stderr: String,
    },
}

fn stderr_tail(stderr: &str) -> String {
    let trimmed = stderr.trim_end();
    if trimmed.is_empty() {
        return String::new();
    }
    // Long tool output keeps its end, where the actual error usually is.
    let lines: Vec<&str> = trimmed.lines().collect();
    let start = lines.len().saturating_sub(40);
    format!("\n--- stderr\n{}", lines[start..].join("\n"))
}

/// A printable form of a command line, quoting arguments that need it.
pub fn command_line(cmd: &Command) -> String {
    let mut out = quote(cmd.get_program());
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&quote(arg));
    }
    out
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn spawn_error(cmd: &Command, source: std::io::Error) -> ProcessError {
    if source.kind() == std::io::ErrorKind::NotFound {
        ProcessError::NotFound {
            program: cmd.get_program().to_string_lossy().into_owned(),
        }
    } else {
        ProcessError::Spawn {
            command: command_line(cmd),
            source,
        }
    }
}

/// Runs `cmd` to completion with stdout and stderr captured, and fails
/// unless it exits successfully.
pub fn output(cmd: &mut Command) -> Result<Output, ProcessError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(cmd, e))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(ProcessError::Failed {
            command: command_line(cmd),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Runs `cmd` and returns its trimmed stdout as text.
pub fn read_stdout(cmd: &mut Command) -> Result<String, ProcessError> {
    let out = output(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Starts `cmd` with stdout piped and stderr passed through to the user, for
/// tools whose progress the user should see live (cargo's `Compiling` lines)
/// while kiln reads machine output from stdout.
pub fn spawn_streaming(cmd: &mut Command) -> Result<std::process::Child, ProcessError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| spawn_error(cmd, e))
}

/// Turns the exit status of a streamed command into an error; its stderr was
/// already shown to the user, so the error carries only the command line.
pub fn check_status(cmd: &Command, status: ExitStatus) -> Result<(), ProcessError> {
    if status.success() {
        Ok(())
    } else {
        Err(ProcessError::Failed {
            command: command_line(cmd),
            status,
            stderr: String::new(),
        })
    }
}

impl ProcessError {
    /// Whether the program itself was missing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProcessError::NotFound { .. })
    }
}

/// Displays a command line lazily, for log lines.
pub struct CommandLine<'a>(pub &'a Command);

impl fmt::Display for CommandLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&command_line(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        let mut cmd = Command::new("cargo");
        cmd.args(["build", "--target", "wasm32-wasip2", "a b", "it's"]);
        assert_eq!(
            command_line(&cmd),
            r"cargo build --target wasm32-wasip2 'a b' 'it'\''s'"
        );
    }

    #[test]
    fn missing_program_is_not_found() {
        let err = output(&mut Command::new("kiln-no-such-program-xyz")).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }

    #[test]
    fn failure_carries_command_and_stderr() {
        let err = output(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("boom"), "{text}");
    }
}
