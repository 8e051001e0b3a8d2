//! atmos: git-native, policy-gated deployments.
//!
//! This crate is the whole product except argument parsing and rendering: it loads and
//! checks deployment configs, decides and carries out rollouts, approvals and builds, and
//! computes typed, serialisable reports that the `atmos` binary renders as tables, JSON or
//! YAML. It never prints and never depends on clap.
//!
//! Modules form layers; a module only uses modules of its own layer or of layers below it,
//! and no two modules use each other (a test, `tests/layers.rs`, checks both):
//!
//! | layer | modules |
//! |---|---|
//! | foundation | [`exit`], [`error`], [`diagnostic`], [`names`], [`plural`], [`dag`], [`duration`], [`identity`], [`scratch`], [`signing`], [`yaml_shape`] |
//! | contracts | [`contracts`]: history records, gate decisions and input, approvals, leases, the git layout |
//! | config | [`config`]: the model, loading, schemas, checks, merging |
//! | git store | [`git`]: refs, tags, notes, the rollout transaction, the remote, locks |
//! | engines | [`gates`], [`executor`], [`sbom`], [`approvals`], [`artifacts`], [`logs`], [`registry`], [`provenance`], [`stacks`] |
//! | queries | [`status`], [`history`], [`diff`], [`listing`], [`describe`], [`promotion`], [`validate`], [`board`] |
//! | workflows | [`workflow`]: rollout, approve, build, drift |
//! | publishing | [`published`]: every JSON Schema generated from the types above |

pub mod approvals;
pub mod artifacts;
pub mod board;
pub mod config;
pub mod contracts;
pub mod dag;
pub mod describe;
pub mod diagnostic;
pub mod diff;
pub mod duration;
pub mod error;
pub mod executor;
pub mod exit;
pub mod gates;
pub mod git;
pub mod history;
pub mod identity;
pub mod listing;
pub mod logs;
pub mod names;
pub mod plural;
pub mod promotion;
pub mod provenance;
pub mod published;
pub mod registry;
pub mod sbom;
pub mod scratch;
pub mod signing;
pub mod stacks;
pub mod status;
pub mod validate;
pub mod workflow;
pub mod yaml_shape;
