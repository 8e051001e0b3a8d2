//! Contracts: the documents atmos writes and others read — history records, gate decisions,
//! the gate input, approvals, leases, and where they live in git. The lowest layer: these
//! types depend on nothing else in the crate, and every other layer speaks them.

pub mod approval;
pub mod build;
pub mod decision;
pub mod gate_input;
pub mod layout;
pub mod lease;
pub mod limits;
pub mod output;
pub mod provenance;
pub mod record;
pub mod schema;

pub use approval::{ApprovalDecision, ApprovalRecord};
pub use build::BuildRecord;
pub use decision::{Decision, Verdict};
pub use gate_input::{GateAction, GateInput};
pub use lease::Lease;
pub use record::{Status, TagRecord};
