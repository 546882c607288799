//! One module per subcommand: clap `Args` and a `run` that parses, calls `crate::ops` and renders.
//!
//! One module per subcommand, each with its clap `Args` and a `run` that parses
//! them into plain values, calls `crate::ops` and renders the result; `args`
//! holds the flags several commands share. No command imports another.

pub mod args;
pub mod attest;
pub mod audit;
pub mod build;
pub mod compile;
pub mod doctor;
pub mod inspect;
pub mod login;
pub mod new;
pub mod publish;
pub mod pull;
pub mod push;
pub mod sign;
pub mod tags;
pub mod validate;
