//! What clusters cost the machine that runs them, and so how many a server admits: each node's
//! memory and idle CPU by its kind, measured (`cargo xtask bench-deploy idle 1` and
//! `… idle 1 patroni`, docs/BENCHMARKS.md), summed over a design, against what the host has;
//! and how long a queued deployment waits.

use crate::Configured;
use crate::spec::FailoverManager;
use crate::topology::{Kind, Topology};
use serde::{Deserialize, Serialize};

/// What a node or a cluster costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cost {
    /// Memory, idle, without the page cache, in MiB.
    pub memory_mib: u64,
    /// CPU, idle, in milliseconds per second.
    pub idle_cpu_ms: u64,
    /// CPU to deploy it, in milliseconds.
    pub deploy_cpu_ms: u64,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, other: Cost) -> Cost {
        Cost {
            memory_mib: self.memory_mib + other.memory_mib,
            idle_cpu_ms: self.idle_cpu_ms + other.idle_cpu_ms,
            deploy_cpu_ms: self.deploy_cpu_ms + other.deploy_cpu_ms,
        }
    }
}

impl std::iter::Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(iter: I) -> Cost {
        iter.fold(Cost::default(), |a, b| a + b)
    }
}

/// What a node of `kind` costs in a cluster managed by `manager`, as measured on the reference
/// machine (2 cores, the fast profile; the larger of two runs, rounded up).
pub fn node_cost(kind: Kind, manager: FailoverManager) -> Cost {
    let patroni = manager == FailoverManager::Patroni;
    let (memory_mib, idle_cpu_ms, deploy_cpu_ms) = match kind {
        // With repmgrd, each check is a new connection: the primary takes one a second (the
        // replica's) and a fifth (its own), the replica one and a fifth, a cascaded replica a
        // fifth. With Patroni, HAProxy asks each node's REST API about a dozen times a second,
        // and a standby's Patroni opens a replication connection to itself as it loops.
        Kind::Primary if patroni => (72, 35, 3_000),
        Kind::Primary => (56, 14, 2_200),
        Kind::Replica if patroni => (70, 125, 4_200),
        Kind::Replica => (52, 15, 1_100),
        Kind::CascadedReplica if patroni => (68, 120, 1_500),
        Kind::CascadedReplica => (48, 4, 900),
        // barman cron every two minutes, receive-wal, and the first backup.
        Kind::Barman => (58, 8, 3_000),
        Kind::Etcd => (54, 21, 1_000),
        Kind::Haproxy => (38, 10, 600),
    };
    Cost {
        memory_mib,
        idle_cpu_ms,
        deploy_cpu_ms,
    }
}

/// What the cluster of `topology` costs, managed by `manager`.
pub fn cluster_cost(topology: &Topology, manager: FailoverManager) -> Cost {
    topology
        .instances
        .iter()
        .map(|i| node_cost(i.kind, manager))
        .sum()
}

/// What the configured design costs.
pub fn configured_cost(configured: &Configured) -> Cost {
    cluster_cost(&configured.topology, configured.design.failover())
}

/// What a server's host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Its CPU cores.
    pub cores: u64,
    /// Its memory, in MiB.
    pub memory_mib: u64,
}

impl Host {
    /// What clusters may use of the host, idle: three quarters of its memory, and three
    /// quarters of its CPU, the rest for the server, the Docker engine, deployments and drills.
    pub fn budget(&self) -> Cost {
        Cost {
            memory_mib: self.memory_mib * 3 / 4,
            idle_cpu_ms: self.cores * 1000 * 3 / 4,
            deploy_cpu_ms: 0,
        }
    }

    /// How many clusters like `each` the host holds at once: the default of `--max-clusters`.
    pub fn holds(&self, each: Cost) -> usize {
        let budget = self.budget();
        let by_memory = budget.memory_mib / each.memory_mib.max(1);
        let by_cpu = budget.idle_cpu_ms / each.idle_cpu_ms.max(1);
        usize::try_from(by_memory.min(by_cpu).max(1)).unwrap_or(usize::MAX)
    }

    /// How many deployments run at once by default: a deployment keeps about a core busy
    /// while it runs, and two share a core well (one waits on another node while the other
    /// works), so two per core, and at least two.
    pub fn parallel(&self) -> usize {
        usize::try_from((self.cores * 2).max(2)).unwrap_or(2)
    }
}

/// Why the host takes no more clusters, if it does not: the clusters that live now cost
/// `live`, and a new one `new`. The answer says what is full, and what to do.
pub fn refusal(host: &Host, live: Cost, clusters: usize, new: Cost) -> Option<String> {
    let budget = host.budget();
    let after = live + new;
    if after.memory_mib > budget.memory_mib {
        return Some(format!(
            "the server holds {clusters} clusters, using {} of the {} MiB of memory it gives clusters, and this one needs {} more: destroy one, or ask the trainer",
            live.memory_mib, budget.memory_mib, new.memory_mib
        ));
    }
    if after.idle_cpu_ms > budget.idle_cpu_ms {
        return Some(format!(
            "the server holds {clusters} clusters, idling at {} of the {} ms of CPU a second it gives clusters, and this one needs {} more: destroy one, or ask the trainer",
            live.idle_cpu_ms, budget.idle_cpu_ms, new.idle_cpu_ms
        ));
    }
    None
}

/// How long a default deployment takes on the reference machine, in seconds, with its image
/// built: what a queue's wait is counted in before this server has deployed anything.
pub const TYPICAL_DEPLOY_SECS: u64 = 20;

/// About how long, in seconds, the deployment at `position` of the queue (1 is next) waits
/// for one of `parallel` slots, when a deployment takes `typical_secs`: the ones ahead of it
/// leave in rounds of `parallel`, and the round under way is half done on average.
pub fn estimated_wait_secs(position: usize, parallel: usize, typical_secs: u64) -> u64 {
    let parallel = parallel.max(1);
    let rounds = u64::try_from(position.saturating_sub(1) / parallel).unwrap_or(u64::MAX);
    rounds * typical_secs + typical_secs.div_ceil(2)
}
