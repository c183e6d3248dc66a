//! Where a docker cluster's network comes from: its design's own when nothing else uses it, or
//! a free one from the address pool when the design left it at the default, so that any number
//! of clusters (two attendees' of the same link among them) run side by side on one engine.

use super::{Problem, Runner};
use anyhow::Result;
use m1studio_shared::api::DeploymentState;
use m1studio_shared::{Configured, Draft, configure};

impl Runner {
    /// The networks in use: each live deployment's, and every network of the Docker engine,
    /// each with the name of what uses it.
    async fn networks_in_use(&self) -> Result<Vec<(String, ipnet::Ipv4Net)>> {
        let mut taken = Vec::new();
        for record in self.inner.store.list()? {
            if record.state == DeploymentState::Destroyed {
                continue;
            }
            let draft = Runner::effective(&record);
            if let Some(configured) = configure(&draft).0
                && configured.design.platform().platform() == m1studio_shared::Platform::Docker
                && let Some(network) = configured.design.network()
            {
                taken.push((record.cluster.clone(), network));
            }
        }
        taken.extend(crate::target::networks_in_use().await.unwrap_or_default());
        Ok(taken)
    }

    /// Checks a request of `owner` and, for a docker design, chooses its network: a free one
    /// from the pool where the design left it at the default, or the design's own when nothing
    /// else uses it. Returns the design to deploy and the network it got.
    pub(super) async fn place(
        &self,
        draft: Draft,
        configured: Configured,
    ) -> std::result::Result<(Draft, Configured, Option<String>), Problem> {
        if configured.design.platform().platform() != m1studio_shared::Platform::Docker {
            return Ok((draft, configured, None));
        }
        let taken = self.networks_in_use().await?;
        if draft.network.is_some() {
            if let Some(network) = configured.design.network()
                && let Some((other, used)) = taken
                    .iter()
                    .find(|(_, used)| m1studio_shared::net::overlaps(*used, network))
            {
                return Err(Problem::Invalid(vec![m1studio_shared::api::network_taken(
                    network, other, *used,
                )]));
            }
            return Ok((draft, configured, None));
        }
        let used: Vec<ipnet::Ipv4Net> = taken.iter().map(|(_, n)| *n).collect();
        let Some(network) = m1studio_shared::net::free_subnet(
            self.inner.pool,
            m1studio_shared::net::POOL_PREFIX,
            &used,
        ) else {
            return Err(Problem::Invalid(vec![m1studio_shared::api::pool_full(
                self.inner.pool,
            )]));
        };
        let mut effective = draft.clone();
        effective.network = Some(network.to_string());
        let (configured, diagnostics) = configure(&effective);
        let configured = configured.ok_or(Problem::Invalid(diagnostics))?;
        Ok((draft, configured, Some(network.to_string())))
    }
}
