//! End-to-end tests: the real `atmos` binary against real throwaway git repositories.

mod approvals;
mod artifacts;
mod atmos_config;
mod board;
mod ci;
mod cli;
mod describe;
mod gates;
mod graph;
mod hardening;
mod hooks;
mod list;
mod probes;
mod processing;
mod provenance;
mod queries;
mod registry;
mod remote;
mod rollout;
mod sbom;
mod snapshots;
mod support;
mod trust;
mod validate;
mod verify;
mod writeahead;
