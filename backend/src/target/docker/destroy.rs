//! Destroying a deployment's objects on the engine, chosen by their labels.

use super::{DEPLOYMENT_LABEL, DockerExecutor, forget_agent};
use anyhow::{Context as _, Result};
use bollard::query_parameters::{
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
};
use std::collections::HashMap;

impl DockerExecutor {
    /// The executor of deployment `id`'s objects.
    pub fn for_deployment(mut self, id: &str) -> DockerExecutor {
        self.deployment = Some(id.to_string());
        self
    }

    /// Whether an object with `labels` is this deployment's: its deployment label is ours,
    /// or it has none (made by an older version, or the deployment is not known).
    fn ours(&self, labels: Option<&HashMap<String, String>>) -> bool {
        match (
            &self.deployment,
            labels.and_then(|l| l.get(DEPLOYMENT_LABEL)),
        ) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => true,
        }
    }

    /// Removes every container, volume and network of the cluster and its deployment, and
    /// nothing else: objects are chosen by their labels (cluster and deployment), and volumes
    /// also as those mounted by the containers chosen, never by their names. Doing it twice is
    /// harmless.
    pub async fn destroy(&self) -> Result<usize> {
        let filters = self.filters();
        let mut removed = 0;
        let mut volumes: Vec<String> = Vec::new();
        for c in self.list().await? {
            if !self.ours(c.labels.as_ref()) {
                continue;
            }
            for name in c.names.iter().flatten() {
                forget_agent(name.trim_start_matches('/'), None);
            }
            volumes.extend(
                c.mounts
                    .iter()
                    .flatten()
                    .filter(|m| m.typ.as_deref() == Some("volume"))
                    .filter_map(|m| m.name.clone()),
            );
            if let Some(id) = c.id {
                self.docker
                    .remove_container(
                        &id,
                        Some(
                            RemoveContainerOptionsBuilder::default()
                                .force(true)
                                .v(true)
                                .build(),
                        ),
                    )
                    .await
                    .with_context(|| format!("removing container {id}"))?;
                removed += 1;
            }
        }
        let labelled = self
            .docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .context("listing volumes")?;
        volumes.extend(
            labelled
                .volumes
                .unwrap_or_default()
                .into_iter()
                .filter(|v| self.ours(Some(&v.labels)))
                .map(|v| v.name),
        );
        volumes.sort();
        volumes.dedup();
        for volume in volumes {
            match self
                .docker
                .remove_volume(
                    &volume,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await
            {
                Ok(()) => removed += 1,
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!("removing volume {volume}")));
                }
            }
        }
        let networks = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .context("listing networks")?;
        for network in networks {
            if !self.ours(network.labels.as_ref()) {
                continue;
            }
            if let Some(name) = network.name {
                self.docker
                    .remove_network(&name)
                    .await
                    .with_context(|| format!("removing network {name}"))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
