//! The one place kiln writes to the terminal: data on stdout, status lines, warnings and errors on stderr.

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_core::{Hinted, Reporter};
use serde::Serialize;
use std::borrow::Cow;
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

/// How the printer writes: the global flags, as plain values.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Print only errors and data, no status lines.
    pub quiet: bool,
    /// When to color stderr.
    pub color: ColorChoice,
}

/// Writes everything kiln shows the user. A clone writes to the same
/// terminal and joins the same progress display.
#[derive(Clone)]
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
    #[allow(
        clippy::disallowed_methods,
        reason = "the printer decides colours and progress bars from whether stderr is a terminal"
    )]
    pub fn new(opts: &Options) -> Printer {
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

    #[allow(
        clippy::disallowed_methods,
        reason = "the printer is the one writer to stderr"
    )]
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
        bar.set_prefix(escape(label, &[]).into_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        bar
    }

    /// Writes data to stdout, with control characters other than newlines
    /// and tabs escaped (see [`escape_data`]).
    #[allow(
        clippy::disallowed_methods,
        reason = "the printer is the one writer to stdout"
    )]
    pub fn data(&self, text: &str) -> Result<()> {
        let text = escape_data(text);
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

    /// Writes values to stdout as compact JSON, one per line.
    pub fn json_lines<T: Serialize>(&self, values: impl IntoIterator<Item = T>) -> Result<()> {
        let mut text = String::new();
        for value in values {
            text.push_str(&serde_json::to_string(&value).context("failed to encode JSON")?);
            text.push('\n');
        }
        self.data(&text)
    }

    /// Prints an error with its causes and hint, as kiln's last words. A
    /// message keeps its lines (a tool's stderr has several), and every
    /// other control character in it is escaped.
    pub fn error(&self, err: &anyhow::Error) {
        let lines = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| escape(l, &['\t']).into_owned())
                .collect()
        };
        let mut text = format!(
            "{} {}",
            self.paint(BOLD_RED, "error:"),
            lines(&err.to_string()).join("\n")
        );
        let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
        if !causes.is_empty() {
            text.push_str("\n\nCaused by:");
            for cause in causes {
                for (i, line) in lines(&cause).iter().enumerate() {
                    text.push_str(if i == 0 { "\n  " } else { "\n    " });
                    text.push_str(line);
                }
            }
        }
        if let Some(h) = err
            .downcast_ref::<Hinted>()
            .or_else(|| err.chain().find_map(|e| e.downcast_ref::<Hinted>()))
        {
            text.push_str(&format!(
                "\n{} {}",
                self.paint(BOLD_CYAN, "hint:"),
                escape(&h.hint, &[])
            ));
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
        bar.set_prefix(escape(message, &[]).into_owned());
        bar
    }
}

impl Reporter for Printer {
    fn status(&self, verb: &str, message: &str) {
        if !self.quiet {
            self.stderr_line(&format!(
                "{} {}",
                self.paint(BOLD_GREEN, &format!("{:>12}", escape(verb, &[]))),
                escape(message, &[])
            ));
        }
    }

    fn warn(&self, message: &str) {
        self.stderr_line(&format!(
            "{} {}",
            self.paint(BOLD_YELLOW, "warning:"),
            escape(message, &[])
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
        bar.set_prefix(escape(verb, &[]).into_owned());
        bar.set_message(escape(rest, &[]).into_owned());
        Box::new(Bar(bar))
    }
}

/// Makes text kiln did not write itself (media types, annotations, tags,
/// error bodies from a registry) safe for a terminal: every control
/// character except those in `keep`, and Unicode's bidirectional
/// overrides, is written as a visible escape (`\r`, `\u{1b}`), so such a
/// string cannot move the cursor, erase a line, recolour the output or
/// reorder what is shown (a fake `Verified` line). The Printer adds its own
/// colours after escaping.
pub fn escape<'a>(text: &'a str, keep: &[char]) -> Cow<'a, str> {
    // `escape_default` spells these `\n`, `\r`, `\t` or `\u{..}`.
    escape_with(text, keep, |c, out| out.extend(c.escape_default()))
}

/// [`escape`] for data on stdout: newlines and tabs stay, and the escapes
/// are JSON's (`\u001b`). Data may be JSON (`--json`, the JSON Lines of
/// `publish`), where serde leaves C1 controls and bidirectional overrides
/// raw inside strings, and a JSON escape there stands for the same
/// character: escaping never changes what a JSON reader gets.
pub fn escape_data(text: &str) -> Cow<'_, str> {
    // Every character escaped is in the Basic Multilingual Plane, so one
    // `\uXXXX` spells it.
    escape_with(text, &['\n', '\t'], |c, out| {
        out.push_str(&format!("\\u{:04x}", u32::from(c)));
    })
}

fn escape_with<'a>(
    text: &'a str,
    keep: &[char],
    spell: impl Fn(char, &mut String),
) -> Cow<'a, str> {
    let unsafe_char = |c: char| {
        (c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
            && !keep.contains(&c)
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            spell(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
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

#[cfg(test)]
mod tests {
    use super::{escape, escape_data};

    #[test]
    fn escapes_what_could_rewrite_the_terminal() {
        let evil = "ok\r\x1b[2K    Verified fake\u{9b}2K\u{202e}\n";
        assert_eq!(
            escape(evil, &[]),
            "ok\\r\\u{1b}[2K    Verified fake\\u{9b}2K\\u{202e}\\n"
        );
        assert_eq!(escape("a\tb\nc\rd", &['\n', '\t']), "a\tb\nc\\rd");
        assert_eq!(escape_data("a\tb\nc\rd\x1b"), "a\tb\nc\\u000dd\\u001b");
        // JSON stays JSON, meaning the same.
        let json = serde_json::to_string_pretty(&["x\u{9b}2K\u{202e}\r"]).unwrap();
        let escaped = escape_data(&json);
        assert!(!escaped.contains(['\u{9b}', '\u{202e}']), "{escaped}");
        let back: Vec<String> = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, ["x\u{9b}2K\u{202e}\r"]);
        assert!(matches!(
            escape("plain `text`, ünïcode", &[]),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
