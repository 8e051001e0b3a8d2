//! Why a registry could not be asked.

/// Why a registry could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Not an image reference.
    #[error("`{reference}` is not an image reference: {why}")]
    BadReference {
        /// The text.
        reference: String,
        /// Why.
        why: String,
    },
    /// The registry did not answer.
    #[error("cannot reach the registry {registry}: {detail}")]
    Unreachable {
        /// The registry.
        registry: String,
        /// What failed.
        detail: String,
    },
    /// The registry answered with an error (other than "not found").
    #[error("the registry {registry} answered {status} for {what}: {detail}")]
    Refused {
        /// The registry.
        registry: String,
        /// HTTP status.
        status: u16,
        /// The request.
        what: String,
        /// Its body, shortened.
        detail: String,
    },
    /// The registry's answer contradicts itself or the request.
    #[error(
        "the registry {registry} served {what} whose content does not hash to {expected} (it hashes to {found})"
    )]
    Mismatch {
        /// The registry.
        registry: String,
        /// The request.
        what: String,
        /// The digest asked for or announced.
        expected: String,
        /// The digest of what came.
        found: String,
    },
    /// What the registry serves cannot be copied or read as asked.
    #[error("{what} in {registry} cannot be handled: {why}")]
    Unsupported {
        /// The registry.
        registry: String,
        /// What.
        what: String,
        /// Why.
        why: String,
    },
    /// A local file (a blob being copied) could not be written or read.
    #[error("{what}: {detail}")]
    Local {
        /// What was being done.
        what: String,
        /// The error.
        detail: String,
    },
}

impl crate::error::Actionable for RegistryError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            RegistryError::BadReference { .. } => crate::exit::Exit::Usage,
            _ => crate::exit::Exit::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            RegistryError::BadReference { .. } => Some(
                "write it as registry/repository:tag (vars.image.registry and vars.image.name)"
                    .into(),
            ),
            RegistryError::Unreachable { registry, .. } => Some(format!(
                "check that {registry} is up and reachable; a registry on plain HTTP must be marked `insecure = true` in registries.conf (CONTAINERS_REGISTRIES_CONF), as for buildah and podman"
            )),
            RegistryError::Refused {
                status: 401 | 403,
                registry,
                ..
            } => Some(format!(
                "log in to {registry} as the engines do (`buildah login`, `podman login`, `docker login`): atmos reads the same auth files"
            )),
            RegistryError::Refused { .. }
            | RegistryError::Mismatch { .. }
            | RegistryError::Unsupported { .. }
            | RegistryError::Local { .. } => None,
        }
    }
}
