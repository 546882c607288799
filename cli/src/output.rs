//! The one place kiln writes to the terminal: data on stdout, status lines, warnings and errors on stderr.

use crate::GlobalOpts;
use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_core::{Hinted, Reporter};
use serde::Serialize;
use std::io::{IsTerminal, Write};

/// `--color` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ColorChoice {
    /// Color when stderr is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// Writes everything kiln shows the user.
pub struct Printer {
    quiet: bool,
    color: bool,
    /// Whether progress bars may be drawn: stderr is a terminal and `CI` is unset.
    interactive: bool,
    /// The one display every bar and spinner joins on a terminal, so status
    /// lines print above them instead of through them.
    multi: MultiProgress,
}

const BOLD_GREEN: &str = "\x1b[1;32m";
const BOLD_YELLOW: &str = "\x1b[1;33m";
const BOLD_RED: &str = "\x1b[1;31m";
const BOLD_CYAN: &str = "\x1b[1;36m";
const RESET: &str = "\x1b[0m";

impl Printer {
    pub fn new(opts: &GlobalOpts) -> Printer {
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match opts.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        let interactive = tty && !ci;
        Printer {
            quiet: opts.quiet,
            color,
            interactive,
            multi: MultiProgress::with_draw_target(if interactive {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            }),
        }
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    fn stderr_line(&self, line: &str) {
        // A closed stderr leaves nowhere to report to; dropping the line is all
        // that can be done.
        if self.interactive {
            let _ = self.multi.println(line);
        } else {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }

    /// A spinner for a running stage, drawn only on an interactive terminal.
    pub fn spinner(&self, label: &str) -> ProgressBar {
        if !self.interactive || self.quiet {
            return ProgressBar::hidden();
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>12.cyan.bold} {spinner} {elapsed}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        bar
    }

    /// Writes data to stdout.
    pub fn data(&self, text: &str) -> Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .context("failed to write to stdout")
    }

    /// Writes a value as pretty JSON to stdout.
    pub fn json<T: Serialize>(&self, value: &T) -> Result<()> {
        let mut text = serde_json::to_string_pretty(value).context("failed to encode JSON")?;
        text.push('\n');
        self.data(&text)
    }

    /// Prints an error with its causes and hint, as kiln's last words.
    pub fn error(&self, err: &anyhow::Error) {
        let mut text = format!("{} {err}", self.paint(BOLD_RED, "error:"));
        let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
        if !causes.is_empty() {
            text.push_str("\n\nCaused by:");
            for cause in causes {
                for (i, line) in cause.lines().enumerate() {
                    text.push_str(if i == 0 { "\n  " } else { "\n    " });
                    text.push_str(line);
                }
            }
        }
        if let Some(h) = err
            .downcast_ref::<Hinted>()
            .or_else(|| err.chain().find_map(|e| e.downcast_ref::<Hinted>()))
        {
            text.push_str(&format!("\n{} {}", self.paint(BOLD_CYAN, "hint:"), h.hint));
        }
        self.stderr_line(&text);
    }

    /// A progress bar for `len` steps, drawn only on an interactive terminal;
    /// elsewhere it stays hidden and the caller's status lines tell the story.
    pub fn progress(&self, len: u64, message: &str) -> ProgressBar {
        if !self.interactive || self.quiet {
            return ProgressBar::hidden();
        }
        let bar = self.multi.add(ProgressBar::new(len));
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>12.cyan.bold} [{bar:30}] {pos}/{len} {wide_msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(message.to_string());
        bar
    }
}

impl Reporter for Printer {
    fn status(&self, verb: &str, message: &str) {
        if !self.quiet {
            self.stderr_line(&format!(
                "{} {message}",
                self.paint(BOLD_GREEN, &format!("{verb:>12}"))
            ));
        }
    }

    fn warn(&self, message: &str) {
        self.stderr_line(&format!(
            "{} {message}",
            self.paint(BOLD_YELLOW, "warning:")
        ));
    }

    fn progress(&self, label: &str, total: u64) -> Box<dyn kiln_core::Progress> {
        if !self.interactive || self.quiet {
            // No terminal (or CI): one plain line per transfer.
            let (verb, rest) = label.split_once(' ').unwrap_or((label, ""));
            self.status(verb, &format!("{rest} ({})", human_size(total)));
            return Box::new(kiln_core::NoProgress);
        }
        let bar = self.multi.add(ProgressBar::new(total));
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>12.cyan.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let (verb, rest) = label.split_once(' ').unwrap_or((label, ""));
        bar.set_prefix(verb.to_string());
        bar.set_message(rest.to_string());
        Box::new(Bar(bar))
    }
}

/// An indicatif bar as a [`kiln_core::Progress`].
struct Bar(ProgressBar);

impl kiln_core::Progress for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Whether the error is a write to a closed pipe (`kiln inspect x | head`),
/// which ends kiln quietly.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Formats a byte count for people: `1.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
