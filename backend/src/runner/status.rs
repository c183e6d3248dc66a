//! A cluster's live state: every node's machine, Postgres role, timeline, lag and upstream,
//! and what etcd, HAProxy and Barman say.

use super::{Problem, Runner};
use crate::engine::{Executor, argv};
use crate::store::Record;
use crate::target::Target;
use anyhow::Result;
use m1studio_shared::api::{BarmanStatus, ClusterStatus, Machine, NodeStatus, PostgresRole};
use m1studio_shared::plan::barman_server_file;
use m1studio_shared::{Configured, Kind};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How old a status read for someone else may be when it is given again: pages poll every two
/// seconds, and a cluster in a drill takes seconds to read (a node that does not answer).
const FRESH: Duration = Duration::from_secs(1);

/// How old the status that the trainer's room shows may be before it is read again, in the
/// background: a room of thirty clusters polled every two seconds reads each every five.
const ROOM_FRESH: Duration = Duration::from_secs(5);

/// The last status read of each deployment, and whether a read is under way.
#[derive(Default)]
pub(super) struct Statuses {
    read: HashMap<String, (Instant, ClusterStatus)>,
    /// The last read of each deployment, kept through its events, for the trainer's room.
    seen: HashMap<String, (Instant, ClusterStatus)>,
    reading: std::collections::HashSet<String>,
    /// How many times each deployment's reads were made out of date (by an event): a read
    /// that began before is not kept.
    generation: HashMap<String, u64>,
    /// Barman's state as last read, kept for `BARMAN_FRESH` unless Barman is pointed elsewhere:
    /// its commands take seconds, and it changes only when it is.
    barman: HashMap<String, KeptBarman>,
}

/// Barman's state as read, when, and the machines' states then.
type KeptBarman = (Instant, HashMap<String, Machine>, Option<BarmanStatus>);

/// How long Barman's state read is given again.
const BARMAN_FRESH: Duration = Duration::from_secs(10);

impl Statuses {
    /// Forgets what was read of deployment `id`: something happened to it (an event), so the
    /// next request reads it anew, and a read under way is not kept.
    pub(super) fn forget(&mut self, id: &str) {
        self.read.remove(id);
        *self.generation.entry(id.to_string()).or_default() += 1;
    }

    /// Forgets Barman's state of deployment `id`: Barman was pointed elsewhere, or it went.
    pub(super) fn forget_barman(&mut self, id: &str) {
        self.barman.remove(id);
    }

    fn generation(&self, id: &str) -> u64 {
        self.generation.get(id).copied().unwrap_or(0)
    }
}

impl Runner {
    /// Deployment `id`'s live state, read from its machines: at once the last one read when it
    /// is less than a second old, or older while a new read is under way (which then replaces
    /// it); read now when there is none, or when something happened to the deployment since (an
    /// event). Many pages watching many clusters cost one read per cluster at a time, and none
    /// waits for a slow one.
    pub async fn status(&self, id: &str) -> std::result::Result<ClusterStatus, Problem> {
        let record = self.get(id)?;
        let known = crate::lock(&self.inner.statuses).read.get(id).cloned();
        if let Some((at, status)) = known {
            if at.elapsed() >= FRESH {
                self.read_status_later(&record);
            }
            return Ok(status);
        }
        self.read_status(&record).await
    }

    /// Deployment `id`'s last status read and how old it is, at once: the room never waits for
    /// a cluster. When it is older than a few seconds, or there is none, a new read starts in
    /// the background.
    pub fn status_seen(&self, id: &str) -> Option<(Duration, ClusterStatus)> {
        let seen = crate::lock(&self.inner.statuses).seen.get(id).cloned();
        if seen
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= ROOM_FRESH)
            && let Ok(record) = self.get(id)
        {
            self.read_status_later(&record);
        }
        seen.map(|(at, status)| (at.elapsed(), status))
    }

    async fn read_status(&self, record: &Record) -> std::result::Result<ClusterStatus, Problem> {
        let (generation, kept) = {
            let statuses = crate::lock(&self.inner.statuses);
            let kept = statuses
                .barman
                .get(&record.id)
                .filter(|(at, _, _)| at.elapsed() < BARMAN_FRESH)
                .cloned();
            (statuses.generation(&record.id), kept)
        };
        let configured = Runner::configured(record)?;
        let target = self.target(record, &configured).await?;
        let machines = target.machines().await?;
        // Barman's state as last read, while no machine started or stopped since.
        let barman = kept
            .filter(|(_, then, _)| *then == machines)
            .map(|(_, _, barman)| barman);
        let mut status =
            status_parts(&target, &machines, &configured, true, barman.is_none()).await;
        match barman {
            Some(mut kept) => {
                if let Some(kept) = kept.as_mut()
                    && machines.get(&kept.node) == Some(&Machine::Running)
                {
                    kept.warning = barman_warning(status.primary.as_deref(), &kept.backs_up);
                }
                status.barman = kept;
            }
            None => {
                crate::lock(&self.inner.statuses).barman.insert(
                    record.id.clone(),
                    (Instant::now(), machines.clone(), status.barman.clone()),
                );
            }
        }
        let mut statuses = crate::lock(&self.inner.statuses);
        statuses
            .seen
            .insert(record.id.clone(), (Instant::now(), status.clone()));
        if statuses.generation(&record.id) == generation {
            statuses
                .read
                .insert(record.id.clone(), (Instant::now(), status.clone()));
        }
        Ok(status)
    }

    /// Reads `record`'s status in the background, unless a read is already under way.
    fn read_status_later(&self, record: &Record) {
        if !crate::lock(&self.inner.statuses)
            .reading
            .insert(record.id.clone())
        {
            return;
        }
        let (runner, record) = (self.clone(), record.clone());
        tokio::spawn(async move {
            if let Err(problem) = runner.read_status(&record).await {
                tracing::debug!("reading the status of {}: {problem}", record.id);
                crate::lock(&runner.inner.statuses).read.remove(&record.id);
            }
            crate::lock(&runner.inner.statuses)
                .reading
                .remove(&record.id);
        });
    }
}

/// Reads every node's machine state, Postgres role, timeline, lag and upstream, all nodes at
/// once, and, when `full`, what etcd, HAProxy and Barman say (which takes longer: drills,
/// which poll several times a second, leave them out).
pub async fn cluster_status(
    target: &Target,
    configured: &Configured,
    full: bool,
) -> Result<ClusterStatus> {
    let machines = target.machines().await?;
    Ok(status_of(target, &machines, configured, full).await)
}

/// The live state of the cluster's nodes, through `executor`, given each node's machine state.
pub async fn status_of(
    executor: &impl Executor,
    machines: &HashMap<String, Machine>,
    configured: &Configured,
    full: bool,
) -> ClusterStatus {
    status_parts(executor, machines, configured, full, full).await
}

/// `status_of`, with what etcd and HAProxy say when `services`, and Barman's state when `barman`
/// (its commands are Python programs that take about half a second each).
async fn status_parts(
    executor: &impl Executor,
    machines: &HashMap<String, Machine>,
    configured: &Configured,
    services: bool,
    barman: bool,
) -> ClusterStatus {
    let full = services;
    let probes = configured.topology.instances.iter().map(|instance| {
        let machine = machines.get(&instance.name).copied().unwrap_or(Machine::Missing);
        async move {
            let mut status = NodeStatus {
                name: instance.name.clone(),
                designed: instance.kind,
                machine,
                postgres: None,
                timeline: None,
                lag_bytes: None,
                upstream: None,
                service: None,
            };
            if !instance.kind.is_postgres() {
                if full && machine == Machine::Running {
                    status.service = match instance.kind {
                        Kind::Etcd => Some(crate::services::etcd(executor, &instance.name).await),
                        Kind::Haproxy => {
                            Some(crate::services::haproxy(executor, &instance.name).await)
                        }
                        _ => None,
                    };
                }
                return status;
            }
            status.postgres = Some(PostgresRole::Down);
            if machine != Machine::Running {
                return status;
            }
            let sql = "SELECT pg_is_in_recovery(), \
                       CASE WHEN pg_is_in_recovery() \
                            THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint())) \
                            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, \
                       COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), \
                       COALESCE((SELECT sender_host FROM pg_stat_wal_receiver), '')";
            if let Ok(answer) = crate::engine::query(executor, &instance.name, sql).await {
                let fields: Vec<&str> = answer.split('|').collect();
                if let [recovery, timeline, lag, upstream] = fields[..] {
                    let standby = recovery == "t";
                    status.postgres = Some(if standby { PostgresRole::Standby } else { PostgresRole::Primary });
                    status.timeline = timeline.parse().ok();
                    if standby {
                        status.lag_bytes = lag.parse::<f64>().ok().map(|l| l.max(0.0) as u64);
                        status.upstream = Some(upstream.to_string()).filter(|u| !u.is_empty());
                    }
                }
            }
            status
        }
    });
    let nodes = futures_util::future::join_all(probes).await;
    let primaries: Vec<&NodeStatus> = nodes
        .iter()
        .filter(|n| n.postgres == Some(PostgresRole::Primary))
        .collect();
    let primary = match primaries[..] {
        [only] => Some(only.name.clone()),
        _ => None,
    };
    let barman = match configured
        .topology
        .of_kind(Kind::Barman)
        .next()
        .filter(|_| barman)
    {
        Some(barman) if machines.get(&barman.name) == Some(&Machine::Running) => {
            // The server keeps the first primary's name; its conninfo says where it connects.
            let server = configured.topology.instances[0].name.clone();
            let file = barman_server_file(&configured.topology);
            let backs_up = executor_run(executor, &barman.name, &argv(&["cat", &file]))
                .await
                .and_then(|o| {
                    o.stdout.lines().find_map(|l| {
                        l.strip_prefix("conninfo = host=")
                            .and_then(|rest| rest.split_whitespace().next())
                            .map(str::to_string)
                    })
                })
                .unwrap_or_else(|| server.clone());
            let check = argv(&["barman", "-q", "check", &server]);
            let list = argv(&["barman", "list-backups", "--minimal", &server]);
            // `barman check` waits about 20 s for a server that is down: only ask when it is up.
            let source_up = nodes
                .iter()
                .any(|n| n.name == backs_up && n.postgres.is_some_and(|p| p != PostgresRole::Down));
            let (check, list) = futures_util::join!(
                async {
                    if source_up {
                        executor_run(executor, &barman.name, &check).await
                    } else {
                        None
                    }
                },
                executor_run(executor, &barman.name, &list)
            );
            let warning = barman_warning(primary.as_deref(), &backs_up);
            Some(BarmanStatus {
                node: barman.name.clone(),
                check_ok: check.as_ref().is_some_and(|o| o.code == 0),
                backups: list
                    .map(|o| o.stdout.lines().filter(|l| !l.trim().is_empty()).count())
                    .unwrap_or(0),
                backs_up,
                warning,
            })
        }
        Some(barman) => Some(BarmanStatus {
            node: barman.name.clone(),
            backs_up: configured.topology.instances[0].name.clone(),
            check_ok: false,
            backups: 0,
            warning: Some(format!("the machine of {} is not running", barman.name)),
        }),
        None => None,
    };
    ClusterStatus {
        nodes,
        primary,
        barman,
    }
}

/// What is wrong with Barman backing up `backs_up` while `primary` is the primary, if anything.
fn barman_warning(primary: Option<&str>, backs_up: &str) -> Option<String> {
    primary.filter(|p| *p != backs_up).map(|p| {
        format!("Barman backs up {backs_up}, which is no longer the primary ({p} is): its backups and WAL stop until it is pointed at {p}")
    })
}

/// Runs a Barman command, giving up after a few seconds: `barman check` waits about 20 s for
/// a primary that is gone.
async fn executor_run(
    executor: &impl Executor,
    node: &str,
    command: &[String],
) -> Option<crate::engine::Output> {
    tokio::time::timeout(
        Duration::from_secs(4),
        executor.run(node, command, "barman", None),
    )
    .await
    .ok()?
    .ok()
}
