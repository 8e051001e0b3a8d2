//! Rollouts: deploy a commit to a target, promote between targets, roll back.
//!
//! [`session::RolloutSession`] drives the steps: [`plan::plan`] decides what would happen
//! (and what every gate says, on the input document of [`input`]), [`wait`] handles missing
//! approvals, [`prepare::prepare`] checks the tools and lays out files, the executors run wave
//! by wave, and [`record::record`] writes the history tags and state refs in one transaction.

pub mod input;
pub mod model;
pub mod plan;
pub mod prepare;
pub mod record;
pub mod session;
pub mod wait;

pub use model::{
    Action, Change, ComponentResult, PlannedComponent, PromotionDenial, RolloutPlan, RolloutReport,
    RolloutRequest,
};
pub use session::{RolloutOptions, RolloutOutcome, RolloutSession};
