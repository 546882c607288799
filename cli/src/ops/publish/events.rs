//! The stage events of a publish: status lines on stderr and, with `--json`, JSON lines on stdout.
//!
//! The stage events of a publish: human status lines on stderr through the
//! printer and, with `--json`, one JSON object per line on stdout
//! (docs/cli.md); also the `Reporter` the stages report through.

use super::receipt::Receipt;
use crate::ops::ms;
use crate::output::Printer;
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use kiln_core::{Progress, Reporter};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Where a publish's events go, and the time each stage took.
pub struct Events<'a> {
    printer: &'a Printer,
    json: bool,
    /// Milliseconds per stage name, summed over the stage's runs.
    timings: Mutex<BTreeMap<String, f64>>,
}

/// One event of the JSON-lines protocol.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event<'a> {
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

/// Writes one event as a line of JSON on stdout, through the printer: the
/// one place every event is framed, where a field common to all of them
/// (the workspace member a run publishes, once several run at once) would
/// be added.
fn write_line(printer: &Printer, event: &Event) {
    if let Ok(line) = serde_json::to_string(event) {
        // A closed stdout ends the run later, where the receipt is written.
        let _ = printer.data(&format!("{line}\n"));
    }
}

impl<'a> Events<'a> {
    /// Events for `printer`, as JSON lines on stdout too when `json`.
    pub fn new(printer: &'a Printer, json: bool) -> Events<'a> {
        Events {
            printer,
            json,
            timings: Mutex::new(BTreeMap::new()),
        }
    }

    /// Writes an event, when JSON events were asked for.
    pub fn emit(&self, event: &Event) {
        if self.json {
            write_line(self.printer, event);
        }
    }

    /// Starts a stage: reports it and shows a spinner until [`Stage::end`].
    pub fn start<'e>(&'e self, stage: &'e str) -> Stage<'e> {
        self.emit(&Event::StageStarted { stage });
        Stage {
            events: self,
            name: stage,
            spinner: self.printer.spinner(stage),
            started: Instant::now(),
        }
    }

    /// Runs one stage, timing it and reporting its start, end or failure.
    pub fn stage<T>(&self, stage: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = self.start(stage);
        started.end(f())
    }

    /// Adds a time of the build's own to the stage timings.
    pub fn record(&self, name: &str, ms: f64) {
        if let Ok(mut t) = self.timings.lock() {
            t.insert(name.to_string(), ms);
        }
    }

    /// The stage timings so far.
    pub fn timings(&self) -> BTreeMap<String, f64> {
        self.timings.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// A stage that started; [`Stage::end`] reports how it ended.
pub struct Stage<'e> {
    events: &'e Events<'e>,
    name: &'e str,
    spinner: ProgressBar,
    started: Instant,
}

impl Stage<'_> {
    /// Reports the stage's end, or its failure with the error, and names
    /// the stage in the error.
    pub fn end<T>(self, result: Result<T>) -> Result<T> {
        let Stage {
            events,
            name: stage,
            spinner,
            started,
        } = self;
        spinner.finish_and_clear();
        let elapsed = ms(started);
        match &result {
            Ok(_) => {
                events.emit(&Event::StageFinished { stage, ms: elapsed });
                if let Ok(mut t) = events.timings.lock() {
                    *t.entry(stage.to_string()).or_default() += elapsed;
                }
            }
            Err(e) => events.emit(&Event::StageFailed {
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
            printer: self.printer.clone(),
            label: label.to_string(),
            total,
            done: AtomicU64::new(0),
            inner,
        })
    }
}

/// Progress that also reports its end as a JSON event.
struct EventProgress {
    printer: Printer,
    label: String,
    total: u64,
    done: AtomicU64,
    inner: Box<dyn Progress>,
}

impl Progress for EventProgress {
    fn inc(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        self.inner.inc(n);
    }

    fn finish(&self) {
        self.inner.finish();
        write_line(
            &self.printer,
            &Event::Progress {
                label: &self.label,
                total: self.total,
                done: self.done.load(Ordering::Relaxed),
            },
        );
    }
}
