//! Workflows: the protocols that change a deployment — roll out, promote and roll back
//! ([`rollout`]), approve ([`approve`]), build ([`build`]) — and the drift check that runs
//! executors without changing anything ([`drift`]). Each takes a typed request, tells an
//! [`Observer`] what happens as it happens, and returns a typed outcome; the lock lease
//! ([`lease`]), the shared remote's fetch and compare-and-swap publish ([`store`]), approval
//! waiting and record building all live here, so that a test or another front end drives
//! them without the command line. [`verify`] audits what they recorded, and guards a server
//! against pushes that break the rules.

pub mod approve;
pub mod archive;
pub mod build;
pub mod drift;
pub mod error;
pub mod events;
pub mod health;
pub mod inputs;
pub mod lease;
pub mod rollout;
pub mod store;
pub mod sync;
pub mod trust;
pub mod verify;

pub use error::WorkflowError;
pub use events::{Event, Observer, Replan, Silent};
pub use inputs::{duration, resolve_target};
