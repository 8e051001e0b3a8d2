//! Current state: one lightweight ref per deployed component,
//! `refs/atmos/deployments/<deployment>/<target>/<component>` → the deployed commit.

use super::{GitError, GitRepo};

/// Namespace of every state ref.
pub const STATE_PREFIX: &str = "refs/atmos/deployments";

/// The state ref of one component in one target.
pub fn state_ref(deployment: &str, target: &str, component: &str) -> String {
    format!("{STATE_PREFIX}/{deployment}/{target}/{component}")
}

impl GitRepo {
    /// The commit a component currently runs in a target, if it was ever deployed there.
    pub fn deployed_commit(
        &self,
        deployment: &str,
        target: &str,
        component: &str,
    ) -> Result<Option<String>, GitError> {
        let name = state_ref(deployment, target, component);
        Ok(self.refs().find(&name)?.map(|e| e.oid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_ref_layout() {
        assert_eq!(
            state_ref("payment-service", "prod", "ecs/api"),
            "refs/atmos/deployments/payment-service/prod/ecs/api"
        );
    }
}
