//! Deployment configuration: the typed model, loading with located errors, semantic checks,
//! vars merging, and the project that holds the files.

pub mod checks;
pub mod load;
pub mod merge;
pub mod model;
pub mod parse;
pub mod probes;
pub mod process;
pub mod project;
pub mod render;
pub mod schema;
pub mod settings;
pub mod source;
pub mod strategy;
pub mod template;

pub mod source_map;

pub use load::LoadedDeployment;
pub use model::{
    Component, ComponentRef, ComponentType, Deployment, Promotion, ProvenanceRules, Target,
    UnknownTarget, Vars,
};
pub use project::{Catalog, Project, ProjectError};
pub use settings::Settings;
