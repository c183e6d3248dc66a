//! The M1 model: one place for every rule of the M1 architecture.
//!
//! A design flows one way: a [`Draft`] (what the user typed) is checked by [`validate`] into a
//! [`Design`] plus [`Diagnostic`]s; a design gives its [`Topology`], and the two render as
//! config.yml. Drafts also travel as share links ([`link`]) and command lines ([`cmdline`]).
//!
//! This crate does no IO, reads no clock and knows no runtime: it builds for
//! `wasm32-unknown-unknown` and runs the same in the browser, the server and the CLI.

// User input never panics the model.
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
pub mod capacity;
pub mod cmdline;
pub mod config;
pub mod diag;
pub mod drill;
pub mod field;
pub mod hostnames;
pub mod link;
pub mod net;
pub mod plan;
pub mod scenario;
pub mod spec;
pub mod topology;
pub mod tpa;
pub mod validate;

pub use diag::{Code, Diagnostic, Severity, has_errors};
pub use field::Field;
pub use spec::{Design, Draft, FailoverManager, Flavour, Platform};
pub use topology::{Instance, Kind, Role, Topology, topology};
pub use validate::validate;

/// Everything a valid design produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    /// The checked design.
    pub design: Design,
    /// Its instances.
    pub topology: Topology,
    /// Its config.yml.
    pub config_yml: String,
}

/// Validates `draft` and, when it has no errors, lays it out and renders its config.yml.
pub fn configure(draft: &Draft) -> (Option<Configured>, Vec<Diagnostic>) {
    let (design, diagnostics) = validate(draft);
    let configured = design.map(|design| {
        let topology = topology(&design);
        let config_yml = config::render(&design, &topology);
        Configured {
            design,
            topology,
            config_yml,
        }
    });
    (configured, diagnostics)
}
