//! What a server holds: how many clusters at once, each attendee's share, and how long a
//! cluster lives before it is destroyed.

use super::{Problem, Runner};
use crate::store::{Record, now_ms};
use m1studio_shared::api::{DeploymentState, EventKind};
use m1studio_shared::capacity::{self, Cost};
use std::time::Duration;

impl Runner {
    /// Refuses a new cluster of `owner`, costing `new`, beyond the server's or the attendee's
    /// share, or beyond what the host holds, saying why and what to do.
    pub(super) fn within_quota(&self, owner: &str, new: Cost) -> std::result::Result<(), Problem> {
        let live: Vec<Record> = self
            .inner
            .store
            .list()?
            .into_iter()
            .filter(|r| r.state != DeploymentState::Destroyed)
            .collect();
        if let Some(most) = self.inner.max_clusters
            && live.len() >= most
        {
            return Err(Problem::Conflict(format!(
                "the server holds {} of {most} clusters: destroy one, or ask the trainer",
                live.len()
            )));
        }
        if let Some(host) = &self.inner.host {
            let costs: Cost = live.iter().map(record_cost).sum();
            if let Some(why) = capacity::refusal(host, costs, live.len(), new) {
                return Err(Problem::Conflict(why));
            }
        }
        let mine = live.iter().filter(|r| r.owner == owner).count();
        if let Some(most) = self.inner.per_attendee.filter(|_| !owner.is_empty())
            && mine >= most
        {
            return Err(Problem::Conflict(format!(
                "you have {mine} of your {most} clusters: destroy one of them first"
            )));
        }
        Ok(())
    }

    /// When deployment `record` expires, if clusters do.
    pub(super) fn expires_ms(&self, record: &Record) -> Option<u64> {
        let ttl = u64::try_from(self.inner.ttl?.as_millis()).unwrap_or(u64::MAX);
        Some(record.created_ms.saturating_add(ttl))
    }

    /// Destroys every live deployment whose time is up at `now_ms`; returns their ids.
    pub async fn expire(&self, now_ms: u64) -> Vec<String> {
        let mut expired = Vec::new();
        let Ok(records) = self.inner.store.list() else {
            return expired;
        };
        for record in records {
            let due = self.expires_ms(&record).is_some_and(|at| at <= now_ms);
            let done = matches!(
                record.state,
                DeploymentState::Destroyed | DeploymentState::Destroying
            );
            if !due || done || record.state.in_progress() {
                continue;
            }
            self.emit(
                &record.id,
                EventKind::Progress,
                None,
                "its time is up: the cluster is destroyed",
                None,
            );
            match self.destroy(&record.id).await {
                Ok(_) => expired.push(record.id),
                Err(problem) => {
                    tracing::warn!("cannot destroy expired deployment {}: {problem}", record.id);
                }
            }
        }
        expired
    }

    /// Destroys expired clusters every `every`, for as long as the runner lives.
    pub fn expire_every(&self, every: Duration) {
        if self.inner.ttl.is_none() {
            return;
        }
        let runner = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                for id in runner.expire(now_ms()).await {
                    tracing::info!("deployment {id} expired and was destroyed");
                }
            }
        });
    }
}

/// What the cluster of `record` costs the host.
fn record_cost(record: &Record) -> Cost {
    m1studio_shared::configure(&Runner::effective(record))
        .0
        .map(|c| capacity::configured_cost(&c))
        .unwrap_or_default()
}
