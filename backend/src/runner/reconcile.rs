//! Destroying a deployment, and bringing the store in line with the engine after a restart.

use super::{DEPLOYMENT_LABEL, LINK_LABEL, PROFILE_LABEL, Problem, Runner, new_id};
use crate::lock;
use crate::store::{InsertError, Record, now_ms};
use crate::target::{FoundCluster, found_clusters};
use anyhow::Result;
use m1studio_shared::api::{Deployment, DeploymentState, EventKind, Failure};
use m1studio_shared::plan::Profile;
use m1studio_shared::{Platform, link};

/// Why a deployment whose process stopped under way failed.
const INTERRUPTED: &str =
    "the server stopped during this deployment: destroy it, then deploy again";

/// How long a request sent to the engine by a plan that was stopped may still take to land.
const IN_FLIGHT: std::time::Duration = std::time::Duration::from_secs(2);

impl Runner {
    /// Removes what deployment `id`'s target made (every container, volume and network on
    /// Docker; nothing from existing hosts, whose deployment is only forgotten). Doing it twice
    /// is harmless. Returns the deployment and how many objects were removed.
    pub async fn destroy(&self, id: &str) -> std::result::Result<(Deployment, usize), Problem> {
        let record = self.get(id)?;
        if record.state == DeploymentState::Queued {
            // Nothing was created yet: it leaves the queue.
            lock(&self.inner.queue).retain(|q| q != id);
            self.emit(
                id,
                EventKind::Progress,
                None,
                "cancelled while queued",
                None,
            );
            self.set_state(id, DeploymentState::Destroyed);
            return Ok((self.view(&self.get(id)?), 0));
        }
        let stopped = record.state == DeploymentState::Deploying;
        if stopped {
            if let Some(pid) = self.run_elsewhere(&record) {
                return Err(Problem::Conflict(format!(
                    "deployment {id} is deploying in another m1studio process (pid {pid}): destroy it there, or stop that process first"
                )));
            }
            // Its plan stops where it is; removing its machines ends what they run.
            let task = lock(&self.inner.tasks).remove(id);
            if let Some(task) = task {
                task.abort();
                let _ = task.await;
                // A request the plan had sent (a network, a container) still lands on the
                // engine after the plan stops: it is given time to, so that destroy finds it.
                tokio::time::sleep(IN_FLIGHT).await;
            }
            self.emit(
                id,
                EventKind::Progress,
                None,
                "stopped while deploying, to be destroyed",
                None,
            );
        }
        let configured = Runner::configured(&record)?;
        let target = self.target(&record, &configured).await?;
        self.set_state(id, DeploymentState::Destroying);
        let mut destroyed = target.destroy().await;
        if stopped && destroyed.is_ok() {
            // And anything that landed later still: a second pass finds it.
            tokio::time::sleep(IN_FLIGHT).await;
            destroyed = match (destroyed, target.destroy().await) {
                (Ok(first), Ok(second)) => Ok(first + second),
                (_, Err(e)) | (Err(e), _) => Err(e),
            };
        }
        let removed = match destroyed {
            Ok(removed) => {
                let said = match target.platform() {
                    Platform::Docker => {
                        format!("removed {removed} containers, volumes and networks")
                    }
                    _ => "forgotten: its hosts keep their Postgres, services and data, which m1studio never removes".to_string(),
                };
                lock(&self.inner.targets).remove(id);
                lock(&self.inner.statuses).forget(id);
                lock(&self.inner.statuses).forget_barman(id);
                self.emit(id, EventKind::Progress, None, &said, None);
                self.set_state(id, DeploymentState::Destroyed);
                removed
            }
            Err(e) => {
                self.fail(id, Failure::Destroy, &format!("destroying failed: {e:#}"));
                return Err(Problem::Internal(e));
            }
        };
        let record = self.get(id)?;
        Ok((self.view(&record), removed))
    }

    /// Says that this process lives, now and every few seconds from now on, so that other
    /// processes leave the deployments it runs alone. Once is enough.
    pub fn keep_alive(&self) {
        if self
            .inner
            .beating
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let beat = |runner: &Runner| {
            if let Err(e) = runner
                .inner
                .store
                .heartbeat(&runner.inner.process, std::process::id())
            {
                tracing::warn!("cannot record that this process lives: {e:#}");
            }
        };
        beat(self);
        let runner = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(crate::store::HEARTBEAT).await;
                beat(&runner);
                // Work that another process left when it died is taken over as it is found.
                match runner.take_over_the_dead() {
                    Ok(changes) => {
                        for change in changes {
                            tracing::info!("its process is gone: {change}");
                        }
                    }
                    Err(e) => tracing::warn!("cannot read the store: {e:#}"),
                }
            }
        });
    }

    /// Marks the deployments this process runs (queued or deploying) as interrupted, as it
    /// stops, and takes this process out of the store's. Returns their ids.
    pub fn interrupt(&self) -> Vec<String> {
        let mut interrupted = Vec::new();
        for record in self.inner.store.list().unwrap_or_default() {
            if record.state.in_progress()
                && record.process.as_deref() == Some(self.inner.process.as_str())
            {
                self.fail(&record.id, Failure::Interrupted, INTERRUPTED);
                interrupted.push(record.id);
            }
        }
        if let Err(e) = self.inner.store.forget_process(&self.inner.process) {
            tracing::warn!("cannot take this process out of the store: {e:#}");
        }
        interrupted
    }

    /// Whether deployment `record` is under way in another process that lives: its pid. A
    /// process lives while it says so every few seconds and, the store being on this machine,
    /// while its pid does: a crashed server's work is taken over at once on restart.
    pub fn run_elsewhere(&self, record: &crate::store::Record) -> Option<u32> {
        if !record.state.in_progress()
            || record.process.as_deref() == Some(self.inner.process.as_str())
        {
            return None;
        }
        self.inner
            .store
            .live_owner(record, now_ms())
            .ok()
            .flatten()
            .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    }

    /// Marks the work under way of processes that no longer live as interrupted. Returns
    /// what it changed.
    fn take_over_the_dead(&self) -> Result<Vec<String>> {
        let mut changes = Vec::new();
        for record in self.inner.store.list()? {
            let mine = record.process.as_deref() == Some(self.inner.process.as_str());
            if record.state.in_progress() && !mine && self.run_elsewhere(&record).is_none() {
                self.fail(&record.id, Failure::Interrupted, INTERRUPTED);
                changes.push(format!(
                    "{} ({}): failed, was {}",
                    record.id,
                    record.cluster,
                    record.state.as_str()
                ));
            }
        }
        Ok(changes)
    }

    /// Brings the store in line with the Docker engine after a restart: deployments that were
    /// under way in a process that no longer lives are marked interrupted (and can be
    /// destroyed), those of a process that lives are left to it, running ones whose containers
    /// are gone are marked destroyed, and clusters found on the engine that the store does not
    /// know are recorded from their labels. Returns what it changed.
    pub async fn reconcile(&self) -> Result<Vec<String>> {
        let mut changes = self.take_over_the_dead()?;
        let found = match found_clusters().await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!("not reconciling with the Docker engine: {e:#}");
                return Ok(changes);
            }
        };
        for record in self.inner.store.list()? {
            // Only containers can vanish behind the store's back; existing hosts stay.
            let on_docker = Runner::configured(&record)
                .is_ok_and(|c| c.design.platform().platform() == Platform::Docker);
            if on_docker
                && record.state == DeploymentState::Running
                && !found.iter().any(|c| c.name == record.engine_name())
            {
                self.set_state(&record.id, DeploymentState::Destroyed);
                self.emit(
                    &record.id,
                    EventKind::Progress,
                    None,
                    "its containers were removed outside this server",
                    None,
                );
                changes.push(format!(
                    "{} ({}): destroyed outside",
                    record.id, record.cluster
                ));
            }
        }
        for cluster in found {
            let known =
                self.inner.store.list()?.iter().any(|r| {
                    r.state != DeploymentState::Destroyed && r.engine_name() == cluster.name
                });
            if !known && let Some(id) = self.adopt(&cluster)? {
                {
                    changes.push(format!(
                        "{id} ({}): found on the Docker engine",
                        cluster.name
                    ));
                }
            }
        }
        Ok(changes)
    }

    /// Records a cluster found on the engine, from its labels.
    fn adopt(&self, cluster: &FoundCluster) -> Result<Option<String>> {
        let Some(text) = cluster.labels.get(LINK_LABEL) else {
            return Ok(None);
        };
        let (draft, _) = link::decode(text);
        if draft.cluster_name != cluster.name {
            return Ok(None);
        }
        let id = cluster
            .labels
            .get(DEPLOYMENT_LABEL)
            .filter(|id| self.inner.store.get(id).ok().flatten().is_none())
            .cloned()
            .map_or_else(new_id, Ok)?;
        let profile = cluster
            .labels
            .get(PROFILE_LABEL)
            .and_then(|p| Profile::parse(p))
            .unwrap_or_default();
        let now = now_ms();
        let all_running = cluster.running == cluster.containers;
        let record = Record {
            id: id.clone(),
            cluster: cluster.name.clone(),
            state: if all_running {
                DeploymentState::Running
            } else {
                DeploymentState::Failed
            },
            profile,
            draft,
            created_ms: now,
            updated_ms: now,
            owner: String::new(),
            network: None,
            failure: (!all_running).then_some(Failure::Stopped),
            process: None,
            error: (!all_running).then(|| {
                format!(
                    "{} of its {} containers run",
                    cluster.running, cluster.containers
                )
            }),
        };
        match self.inner.store.insert(&record, &[]) {
            Ok(()) => {
                self.emit(
                    &id,
                    EventKind::Progress,
                    None,
                    "found on the Docker engine after a restart",
                    None,
                );
                Ok(Some(id))
            }
            Err(InsertError::Conflict(_) | InsertError::Taken) => Ok(None),
            Err(InsertError::Other(e)) => Err(e),
        }
    }
}
