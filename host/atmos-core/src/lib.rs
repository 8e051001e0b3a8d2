//! atmos: git-native, policy-gated deployments.
//!
//! This crate is the whole product except argument parsing and rendering: it loads and
//! checks deployment configs, and computes typed, serialisable reports that the `atmos`
//! binary renders as tables, JSON or YAML. It never prints and never depends on clap.

pub mod approvals;
pub mod build;
pub mod config;
pub mod contracts;
pub mod dag;
pub mod describe;
pub mod diagnostic;
pub mod diff;
pub mod drift;
pub mod executor;
pub mod exit;
pub mod gates;
pub mod git;
pub mod history;
pub mod identity;
pub mod listing;
pub mod names;
pub mod promotion;
pub mod rollout;
pub mod sbom;
pub mod status;
pub mod validate;
