//! `kiln audit`: what a component imports and exports, checked against a policy before deploy.

mod eval;
mod facts;
mod policy;
pub mod preview1;
mod rule;
mod sarif;

pub use eval::{AuditReport, Diff, Finding, Note, WorldNames, audit};
pub use facts::{AuditFacts, FEATURES, MemoryFacts, read_facts};
pub use policy::{BUILTINS, Pattern, Policy};
pub use rule::Rule;
pub use sarif::to_sarif;
