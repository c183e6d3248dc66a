//! Drills as data: what each drill may do to a cluster and whom it promotes, the commands
//! and plans of its repairs (switchover, fencing, rejoin, start again, the witness that
//! follows), and the [`Observer`], a state machine that turns what the runner sees after a
//! fault (time, the cluster's status, the writer's rows) into typed moments and the report.
//!
//! Nothing here reads a clock: the runner passes the milliseconds since the fault.

use crate::api::{
    ClusterStatus, Drill, DrillReport, Machine, Moment, NodeStatus, PostgresRole, Signal,
    WriteSeries,
};
use crate::diag::{Code, Diagnostic};
use crate::plan::{
    Action, PATRONI_CONFIG, PGDATA, Phase, Plan, Profile, SERVICE_COMMAND, Step, bindir,
};
use crate::spec::PlatformSpec;
use crate::{Configured, FailoverManager, Kind, Role};
use std::collections::HashSet;
use std::ops::RangeInclusive;

/// The etcd members of a Patroni design.
pub const ETCD_MEMBERS: u32 = 3;
/// How many etcd members make a quorum.
pub const ETCD_QUORUM: u32 = ETCD_MEMBERS / 2 + 1;
/// How many etcd members a drill may stop: one (the quorum holds) or two (it is lost).
pub const ETCD_STOPPABLE: RangeInclusive<u32> = 1..=(ETCD_MEMBERS - 1);
/// How long a fault that is undone (isolation, stopped etcd members) may last, in seconds.
pub const FAULT_SECONDS: RangeInclusive<u32> = 5..=600;
/// How long the writer writes before the fault, so that a loss can be measured.
pub const LEAD_IN_MS: u64 = 1_000;
/// How long a drill watches the cluster at most, besides the fault's own duration.
pub const WATCH_MS: i64 = 150_000;
/// How often the runner looks at the cluster during a drill. The watcher's own load (a query
/// per node each round) slows what it watches on a small machine: twice a second is enough,
/// the writer times the recovery.
pub const POLL_MS: u64 = 500;
/// The settling ends at the latest this long after the promotion.
pub const SETTLE_BY_MS: i64 = 30_000;
/// How long the cluster stays settled before the drill ends.
pub const SETTLED_FOR_MS: i64 = 1_000;
/// An isolation too short for a failover ends this long after the primary is back.
pub const CARRIED_ON_FOR_MS: i64 = 5_000;
/// How long one write of the writer may take before it counts as refused: a commit that
/// waits for a synchronous standby that is gone is not acknowledged.
pub const WRITE_TIMEOUT_MS: u64 = 5_000;
/// How long the writer waits after a refused write before the next.
pub const WRITE_RETRY_MS: u64 = 100;

/// The table the drill writer fills.
pub const WRITES_TABLE: &str = "CREATE TABLE IF NOT EXISTS m1studio_drill_writes (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())";
/// The first row number of a new drill's writer.
pub const NEXT_WRITE_SQL: &str = "SELECT COALESCE(max(id), 0) + 1 FROM m1studio_drill_writes";

/// The insert of row `id`, answering with the address of the server that acknowledged it.
pub fn insert_sql(id: u64) -> String {
    format!(
        "INSERT INTO m1studio_drill_writes (id) VALUES ({id}) RETURNING host(inet_server_addr())"
    )
}

/// The rows of a drill from `first_id` on, as a comma-separated list.
pub fn present_sql(first_id: u64) -> String {
    format!(
        "SELECT COALESCE(string_agg(id::text, ','), '') FROM m1studio_drill_writes WHERE id >= {first_id}"
    )
}

/// Whether `drill` breaks the primary and is measured with a writer and a report.
pub fn is_fault(drill: &Drill) -> bool {
    matches!(
        drill,
        Drill::KillPrimary { .. }
            | Drill::StopPrimary { .. }
            | Drill::IsolatePrimary { .. }
            | Drill::Switchover { .. }
            | Drill::StopEtcd { .. }
    )
}

/// Whether `drill` acts on machines themselves (kills, stops, starts or cuts them off), which
/// m1studio does only to the containers it made, never to existing hosts.
pub fn breaks_machines(drill: &Drill) -> bool {
    matches!(
        drill,
        Drill::KillPrimary { .. }
            | Drill::StopPrimary { .. }
            | Drill::IsolatePrimary { .. }
            | Drill::StopEtcd { .. }
            | Drill::StopNode { .. }
            | Drill::Start { .. }
    )
}

/// Whether `drill` asks for Barman to be pointed at the new primary afterwards.
pub fn retargets_barman(drill: &Drill) -> bool {
    match drill {
        Drill::KillPrimary { retarget_barman }
        | Drill::StopPrimary { retarget_barman }
        | Drill::IsolatePrimary {
            retarget_barman, ..
        }
        | Drill::Switchover {
            retarget_barman, ..
        } => *retarget_barman,
        _ => false,
    }
}

/// The standby a switchover hands over to: `to`, or the promotable node that is not the
/// primary. M1 promotes only the primary's own replica, never a cascaded replica.
pub fn promotion_target(
    configured: &Configured,
    primary: &str,
    to: Option<&str>,
) -> Option<String> {
    to.map(str::to_string).or_else(|| {
        configured
            .topology
            .instances
            .iter()
            .find(|i| matches!(i.kind, Kind::Primary | Kind::Replica) && i.name != primary)
            .map(|i| i.name.clone())
    })
}

/// Whether a refusal is only about the cluster's state now (try again later: HTTP 409),
/// rather than about the request itself (HTTP 400): one wrong field makes it the request's.
pub fn refused_for_now(diagnostics: &[Diagnostic]) -> bool {
    !diagnostics.is_empty() && diagnostics.iter().all(|d| d.code == Code::DrillNotNow)
}

fn bad(path: &str, message: String) -> Diagnostic {
    Diagnostic::error(path, Code::DrillInvalid, message)
}

fn not_now(path: &str, message: String) -> Diagnostic {
    Diagnostic::error(path, Code::DrillNotNow, message)
}

/// Every reason why `drill` cannot run on this cluster now, each naming the field and the fix.
/// `status` is the cluster's status now.
pub fn check(drill: &Drill, configured: &Configured, status: &ClusterStatus) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let patroni = configured.design.failover() == FailoverManager::Patroni;
    let node_names = || {
        status
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cluster = configured.design.cluster_name();
    if breaks_machines(drill) && matches!(configured.design.platform(), PlatformSpec::Bare) {
        problems.push(bad(
            "action",
            format!(
                "{} breaks machines, and this design's nodes are existing hosts that m1studio will not break: rehearse it on a docker design (--platform docker); on these hosts, run a switchover (action switchover) or point Barman at the primary (action retarget-barman)",
                drill.name()
            ),
        ));
        return problems;
    }
    if is_fault(drill) && status.primary.is_none() {
        problems.push(not_now(
            "action",
            "no single node accepts writes right now: wait for the failover to finish, or start the stopped node".into(),
        ));
    }
    match drill {
        Drill::IsolatePrimary { seconds, .. } if !FAULT_SECONDS.contains(seconds) => {
            problems.push(bad(
                "seconds",
                format!(
                    "{seconds} is out of range: isolate the primary for {} to {} seconds",
                    FAULT_SECONDS.start(),
                    FAULT_SECONDS.end()
                ),
            ));
        }
        Drill::StopEtcd { count, seconds } => {
            if !patroni {
                problems.push(bad(
                    "action",
                    "stop-etcd needs a Patroni cluster; this one uses repmgr, which has no etcd"
                        .into(),
                ));
                return problems;
            }
            if !ETCD_STOPPABLE.contains(count) {
                problems.push(bad(
                    "count",
                    format!(
                        "{count} is out of range: stop 1 etcd member (the quorum holds) or 2 (it is lost)"
                    ),
                ));
            }
            if !FAULT_SECONDS.contains(seconds) {
                problems.push(bad(
                    "seconds",
                    format!(
                        "{seconds} is out of range: stop etcd members for {} to {} seconds",
                        FAULT_SECONDS.start(),
                        FAULT_SECONDS.end()
                    ),
                ));
            }
            let running = status
                .nodes
                .iter()
                .filter(|n| n.designed == Kind::Etcd && n.machine == Machine::Running)
                .count();
            if problems.is_empty() && running < ETCD_MEMBERS as usize {
                problems.push(not_now(
                    "count",
                    format!(
                        "only {running} of the {ETCD_MEMBERS} etcd members run: start the others before stopping {count}"
                    ),
                ));
            }
        }
        Drill::Switchover { to, .. } => {
            let Some(primary) = status.primary.as_deref() else {
                return problems;
            };
            let Some(target) = promotion_target(configured, primary, to.as_deref()) else {
                problems.push(bad(
                    "to",
                    "the cluster has no standby to hand over to".into(),
                ));
                return problems;
            };
            let Some(found) = status.nodes.iter().find(|n| n.name == target) else {
                problems.push(bad("to", format!("{target} is not a node of {cluster}")));
                return problems;
            };
            if found.designed == Kind::CascadedReplica {
                problems.push(bad(
                    "to",
                    format!(
                        "{target} is a cascaded replica, which the M1 architecture never promotes: hand over to the first replica"
                    ),
                ));
            } else if !found.designed.is_postgres() {
                problems.push(bad(
                    "to",
                    format!("{target} runs no Postgres of the cluster"),
                ));
            } else if found.postgres != Some(PostgresRole::Standby)
                || found.upstream.as_deref() != Some(primary)
            {
                problems.push(not_now(
                    "to",
                    format!(
                        "{target} is not a standby streaming from {primary} right now: start it, or wait until it follows {primary}"
                    ),
                ));
            }
        }
        Drill::RetargetBarman if status.primary.is_none() => {
            problems.push(not_now(
                "action",
                "no single node accepts writes right now: Barman can be pointed at a primary once there is one".into(),
            ));
        }
        Drill::StopNode { node } => match status.nodes.iter().find(|n| n.name == *node) {
            None => problems.push(bad("node", format!("{node} is not a node of {cluster}"))),
            Some(_) if status.primary.as_deref() == Some(node.as_str()) => {
                problems.push(bad(
                    "node",
                    format!(
                        "{node} is the primary: use the stop-primary drill, which measures the failover"
                    ),
                ));
            }
            Some(found) if found.machine != Machine::Running => {
                problems.push(not_now("node", format!("{node} is not running")));
            }
            Some(_) => {}
        },
        Drill::Start { node } => match status.nodes.iter().find(|n| n.name == *node) {
            None => problems.push(bad(
                "node",
                format!(
                    "{node} is not a node of {cluster}: use one of {}",
                    node_names()
                ),
            )),
            Some(found) if found.machine == Machine::Running => {
                problems.push(not_now("node", format!("{node} is already running")));
            }
            Some(_) => {}
        },
        _ => {}
    }
    problems
}

/// What a fault drill breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// Kill the node's machine (SIGKILL).
    Kill(String),
    /// Stop the node's machine cleanly.
    Stop(String),
    /// Cut the node off the cluster's network.
    Isolate(String),
    /// Stop these nodes' machines (etcd members), to start them again later.
    StopMembers(Vec<String>),
    /// Run the switchover command on `node`, as postgres; afterwards the witness, if any,
    /// follows the new primary with [`witness_follow`].
    Switchover {
        /// The node that runs the command.
        node: String,
        /// The command.
        argv: Vec<String>,
        /// The witness to register again with the new primary, and the new primary.
        witness: Option<(String, String)>,
    },
}

/// A fault drill, planned: what it breaks, when and how it is undone, and how it is written
/// down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The drill.
    pub drill: Drill,
    /// The primary it hits.
    pub target: String,
    /// What it breaks.
    pub action: Break,
    /// After how long the fault is undone (the isolated primary reconnected, the stopped etcd
    /// members started again), in milliseconds.
    pub undo_after_ms: Option<i64>,
    /// The fault, as the timeline's first moment says it.
    pub description: String,
    /// Whether the failover manager is Patroni.
    pub patroni: bool,
    /// Whether replication is synchronous.
    pub synchronous: bool,
}

/// Plans the fault drill `drill` against the primary `primary`; `None` for a drill that is
/// not a fault. [`check`] refuses what cannot run first.
pub fn fault(drill: &Drill, configured: &Configured, primary: &str) -> Option<Fault> {
    let patroni = configured.design.failover() == FailoverManager::Patroni;
    let old = primary.to_string();
    let (action, description, undo_after_ms) = match drill {
        Drill::KillPrimary { .. } => (
            Break::Kill(old.clone()),
            format!("killed the primary {old}"),
            None,
        ),
        Drill::StopPrimary { .. } => (
            Break::Stop(old.clone()),
            format!("stopped the primary {old}"),
            None,
        ),
        Drill::IsolatePrimary { seconds, .. } => (
            Break::Isolate(old.clone()),
            format!("cut the primary {old} off the cluster's network"),
            Some(i64::from(*seconds) * 1000),
        ),
        Drill::StopEtcd { count, seconds } => {
            let members: Vec<String> = configured
                .topology
                .of_kind(Kind::Etcd)
                .take(*count as usize)
                .map(|i| i.name.clone())
                .collect();
            let left = ETCD_MEMBERS.saturating_sub(members.len() as u32);
            let description = format!(
                "stopped etcd on {}: {left} of {ETCD_MEMBERS} members left, {}",
                members.join(" and "),
                if left >= ETCD_QUORUM {
                    format!("so the quorum ({ETCD_QUORUM}) holds")
                } else {
                    "so there is no quorum: Patroni can neither renew the leader key nor elect a new leader".to_string()
                }
            );
            (
                Break::StopMembers(members),
                description,
                Some(i64::from(*seconds) * 1000),
            )
        }
        Drill::Switchover { to, .. } => {
            let target = promotion_target(configured, primary, to.as_deref())?;
            let mut witness = None;
            let argv = if patroni {
                argv(&[
                    "patronictl",
                    "-c",
                    PATRONI_CONFIG,
                    "switchover",
                    "--leader",
                    primary,
                    "--candidate",
                    &target,
                    "--force",
                ])
            } else {
                let mut command =
                    argv(&["repmgr", "-f", "/etc/repmgr.conf", "standby", "switchover"]);
                // The cascaded replicas of M1 stream from the replica: when the replica
                // hands over, they stay with it (it becomes a standby that they still
                // stream from). Otherwise the old primary's standbys follow the new one.
                let replica = configured.topology.of_kind(Kind::Replica).next();
                if replica.is_none_or(|r| r.name != primary) {
                    command.push("--siblings-follow".into());
                } else {
                    // Without --siblings-follow a witness would stay with the old
                    // primary: it is registered again with the new one, and its repmgrd
                    // restarted to monitor it.
                    witness = configured
                        .topology
                        .instances
                        .iter()
                        .find(|i| i.has(Role::Witness))
                        .map(|w| (w.name.clone(), target.clone()));
                }
                command
            };
            let description = format!(
                "{}: {old} hands over to {target}",
                if patroni {
                    "patronictl switchover"
                } else {
                    "repmgr standby switchover"
                }
            );
            (
                Break::Switchover {
                    node: target,
                    argv,
                    witness,
                },
                description,
                None,
            )
        }
        _ => return None,
    };
    Some(Fault {
        drill: drill.clone(),
        target: old,
        action,
        undo_after_ms,
        description,
        patroni,
        synchronous: configured.design.synchronous(),
    })
}

/// How the drill writer reaches the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    /// The node it writes from (Barman's).
    pub node: String,
    /// The libpq connection string it writes through.
    pub conninfo: String,
    /// Each node's address and name, to tell which node acknowledged a write.
    pub names: Vec<(String, String)>,
}

/// The drill writer of a design: from the Barman node, through HAProxy when the design has
/// it, as its clients would connect; otherwise to every Postgres node, and libpq finds the
/// one that takes writes.
pub fn writer(configured: &Configured) -> Option<Writer> {
    let topology = &configured.topology;
    let node = topology.of_kind(Kind::Barman).next()?.name.clone();
    let proxies: Vec<&str> = topology
        .of_kind(Kind::Haproxy)
        .map(|i| i.name.as_str())
        .collect();
    let hosts: Vec<&str> = if proxies.is_empty() {
        topology
            .instances
            .iter()
            .filter(|i| i.kind.is_postgres())
            .map(|i| i.name.as_str())
            .collect()
    } else {
        proxies
    };
    Some(Writer {
        node,
        conninfo: format!(
            "host={} user=barman dbname=postgres target_session_attrs=read-write connect_timeout=2",
            hosts.join(",")
        ),
        names: topology
            .instances
            .iter()
            .filter_map(|i| i.ip_address.map(|ip| (ip.to_string(), i.name.clone())))
            .collect(),
    })
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

fn run(node: &str, title: &str, user: &str, argv: Vec<String>, stdin: Option<&str>) -> Step {
    Step {
        node: node.to_string(),
        title: title.to_string(),
        action: Action::Run {
            argv,
            user: user.to_string(),
            stdin: stdin.map(str::to_string),
        },
        lane: None,
        timeout_secs: None,
    }
}

fn attempt(node: &str, title: &str, user: &str, argv: Vec<String>) -> Step {
    Step {
        node: node.to_string(),
        title: title.to_string(),
        action: Action::Attempt {
            argv,
            user: user.to_string(),
        },
        lane: None,
        timeout_secs: None,
    }
}

fn start(node: &str, service: &str) -> Step {
    Step {
        node: node.to_string(),
        title: format!("start {service}"),
        action: Action::Start {
            service: service.to_string(),
        },
        lane: None,
        timeout_secs: None,
    }
}

fn phase(title: &str, steps: Vec<Step>) -> Phase {
    Phase {
        title: title.to_string(),
        steps,
    }
}

fn plan_of(configured: &Configured, phases: Vec<Phase>) -> Plan {
    Plan {
        cluster: configured.design.cluster_name().to_string(),
        nodes: Vec::new(),
        phases,
    }
}

/// The query that tells whether a node's Postgres takes writes (`f`).
pub const IN_RECOVERY_SQL: &str = "SELECT pg_is_in_recovery()";

/// Fences `node`, an old primary that would come back beside a new one, so that it never
/// takes a write: repmgrd stops, so that it cannot start Postgres again, and Postgres stops
/// at once.
pub fn fence(configured: &Configured, node: &str) -> Plan {
    let pg_ctl = format!("{}/pg_ctl", bindir(configured.design.version()));
    plan_of(
        configured,
        vec![phase(
            &format!("fence {node}"),
            vec![
                attempt(
                    node,
                    "stop repmgrd",
                    "root",
                    argv(&[SERVICE_COMMAND, "stop", "repmgrd"]),
                ),
                run(
                    node,
                    "stop Postgres at once",
                    "postgres",
                    argv(&[&pg_ctl, "-D", PGDATA, "stop", "-m", "immediate"]),
                    None,
                ),
            ],
        )],
    )
}

/// Registers the repmgr witness `witness` again with the primary `primary` after a switchover
/// that left it out (`--siblings-follow` would have moved the cascaded replicas too), then
/// restarts its repmgrd, which otherwise goes on watching the old primary.
pub fn witness_follow(configured: &Configured, witness: &str, primary: &str) -> Plan {
    plan_of(
        configured,
        vec![phase(
            &format!("the witness {witness} follows {primary}"),
            vec![
                run(
                    witness,
                    "repmgr witness register",
                    "postgres",
                    argv(&[
                        "repmgr",
                        "-f",
                        "/etc/repmgr.conf",
                        "witness",
                        "register",
                        "-h",
                        primary,
                        "-U",
                        "repmgr",
                        "-d",
                        "repmgr",
                        "--force",
                    ]),
                    None,
                ),
                run(
                    witness,
                    "restart repmgrd",
                    "root",
                    argv(&[SERVICE_COMMAND, "restart", "repmgrd"]),
                    None,
                ),
            ],
        )],
    )
}

/// Makes `node`, a repmgr primary that failed, a standby of `primary`: crash recovery in
/// single-user mode (which listens nowhere), so that it is shut down cleanly, a checkpoint on
/// `primary`, then `repmgr node rejoin` with pg_rewind where its timeline went further, then
/// repmgrd and sshd.
pub fn rejoin(configured: &Configured, node: &str, primary: &str, profile: Profile) -> Plan {
    let bin = bindir(configured.design.version());
    let config = format!("config_file={}/postgresql.conf", crate::plan::CONFIG_DIR);
    let source = format!("host={primary} user=repmgr dbname=repmgr connect_timeout=2");
    plan_of(
        configured,
        vec![
            phase(
                &format!("crash recovery of {node}"),
                vec![run(
                    node,
                    "crash recovery in single-user mode",
                    "postgres",
                    argv(&[
                        &format!("{bin}/postgres"),
                        "--single",
                        "-D",
                        PGDATA,
                        "-c",
                        &config,
                        "postgres",
                    ]),
                    Some(""),
                )],
            ),
            // pg_rewind finds the new primary's timeline in its control file, which a
            // promotion updates only at the end of its first checkpoint, a spread one of
            // several seconds: a rejoin before that sees one timeline, rewinds nothing, and the
            // old primary, ahead of the fork, can never follow. A CHECKPOINT on the new
            // primary ends it at once.
            phase(
                &format!("a checkpoint on {primary}"),
                vec![run(
                    primary,
                    "a checkpoint on the new primary",
                    "postgres",
                    argv(&["psql", "-XAt", "-d", "postgres", "-c", "CHECKPOINT"]),
                    None,
                )],
            ),
            phase(
                &format!("{node} rejoins {primary}"),
                vec![
                    run(
                        node,
                        "repmgr node rejoin",
                        "postgres",
                        argv(&[
                            "repmgr",
                            "-f",
                            "/etc/repmgr.conf",
                            "node",
                            "rejoin",
                            "-d",
                            &source,
                            "--force-rewind",
                        ]),
                        None,
                    )
                    .within(crate::plan::COPY_LIMIT_SECS),
                    check_as_a_standby_of_the_primary(node, profile),
                    start(node, "repmgrd"),
                    start(node, "sshd"),
                ],
            ),
        ],
    )
}

/// The step that has repmgrd on `node` check as often as a standby of the primary does under
/// `profile` ([`Profile::repmgr_monitor_secs`]): its repmgr.conf changes in place.
fn check_as_a_standby_of_the_primary(node: &str, profile: Profile) -> Step {
    let interval = format!(
        "s/^monitor_interval_secs=.*/monitor_interval_secs={}/",
        profile.repmgr_monitor_secs(true)
    );
    run(
        node,
        "check the primary as often as its standby does",
        "root",
        argv(&["sed", "-i", "-e", &interval, "/etc/repmgr.conf"]),
        None,
    )
}

/// What follows a switchover that `old` handed over: with repmgr, the old primary is now the
/// standby that a failover would promote, so its repmgrd checks as often as the replica's
/// does (it checked every few seconds as the primary), and rereads its configuration.
/// Patroni's loop is the same on every node: nothing follows.
pub fn after_switchover(configured: &Configured, old: &str, profile: Profile) -> Option<Plan> {
    if configured.design.failover() != FailoverManager::Repmgr {
        return None;
    }
    Some(plan_of(
        configured,
        vec![phase(
            &format!("{old} watches the new primary"),
            vec![
                check_as_a_standby_of_the_primary(old, profile),
                run(
                    old,
                    "repmgrd rereads its configuration",
                    "root",
                    argv(&[SERVICE_COMMAND, "hup", "repmgrd"]),
                    None,
                ),
            ],
        )],
    ))
}

/// The lock files that a killed Postgres (and repmgrd) leaves behind: in a restarted machine
/// their process ids may well belong to another process now, and Postgres and repmgrd would
/// then refuse to start.
pub fn clear_stale_locks(configured: &Configured, node: &str) -> Plan {
    plan_of(
        configured,
        vec![phase(
            &format!("clear {node}'s stale lock files"),
            vec![run(
                node,
                "remove stale lock files",
                "root",
                argv(&[
                    "find",
                    "/var/run/postgresql",
                    PGDATA,
                    "/tmp",
                    "-maxdepth",
                    "1",
                    "(",
                    "-name",
                    ".s.PGSQL.*",
                    "-o",
                    "-name",
                    "postmaster.pid",
                    "-o",
                    "-name",
                    "repmgrd.pid",
                    ")",
                    "-delete",
                ]),
                None,
            )],
        )],
    )
}

/// Whether a node whose machine was started again needs its stale lock files cleared.
pub fn has_lock_files(kind: Kind) -> bool {
    kind.is_postgres() || kind == Kind::Barman
}

/// The command that tells whether a node's data directory belongs to a standby (exit 0).
pub fn standby_signal_test() -> Vec<String> {
    argv(&["test", "-f", &format!("{PGDATA}/standby.signal")])
}

/// How a stopped node comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comeback {
    /// It was a repmgr primary and another node is the primary now: it never starts as one
    /// beside it, but is rejoined as its standby ([`rejoin`]).
    Rejoin {
        /// The primary it follows.
        primary: String,
    },
    /// Its services start again.
    Services(Vec<&'static str>),
}

/// How node `node` (designed as `kind`) comes back once its machine runs again, given the
/// primary now and whether its data directory is a standby's.
pub fn comeback(
    configured: &Configured,
    kind: Kind,
    node: &str,
    primary: Option<&str>,
    standby: bool,
) -> Comeback {
    let patroni = configured.design.failover() == FailoverManager::Patroni;
    if kind.is_postgres()
        && !patroni
        && !standby
        && let Some(primary) = primary.filter(|p| *p != node)
    {
        return Comeback::Rejoin {
            primary: primary.to_string(),
        };
    }
    Comeback::Services(match kind {
        // Patroni finds another leader and makes its node a standby of it (with pg_rewind
        // where the old timeline went further).
        Kind::Primary | Kind::Replica | Kind::CascadedReplica if patroni => vec!["patroni"],
        Kind::Primary | Kind::Replica | Kind::CascadedReplica => {
            vec!["postgres", "repmgrd", "sshd"]
        }
        Kind::Etcd => vec!["etcd"],
        Kind::Haproxy => vec!["haproxy"],
        Kind::Barman
            if configured
                .topology
                .instances
                .iter()
                .any(|i| i.kind == Kind::Barman && i.has(Role::Witness)) =>
        {
            vec!["postgres", "repmgrd", "sshd", "barman-cron"]
        }
        Kind::Barman => vec!["barman-cron"],
    })
}

/// Starts `services` on `node` again, in order.
pub fn start_services(configured: &Configured, node: &str, services: &[&str]) -> Plan {
    plan_of(
        configured,
        vec![phase(
            &format!("{node} runs again"),
            services.iter().map(|s| start(node, s)).collect(),
        )],
    )
}

/// One insert of the drill writer, its times in milliseconds from the fault (negative before
/// it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Write {
    /// The row's number.
    pub id: u64,
    /// When the insert was sent.
    pub started_ms: i64,
    /// When its answer came.
    pub finished_ms: i64,
    /// Whether it was acknowledged.
    pub ok: bool,
    /// The node that acknowledged it.
    #[serde(default)]
    pub by: Option<String>,
}

/// One thing the runner saw during a drill, as it feeds the [`Observer`]: a recorded drill is a
/// list of these, and replaying it ([`replay`]) gives the same report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "seen", rename_all = "snake_case")]
pub enum Observation {
    /// The cluster's status (when it could be read) and the writes finished since the last
    /// observation.
    Status {
        /// Milliseconds since the fault.
        at_ms: i64,
        /// The status.
        status: Option<ClusterStatus>,
        /// The new writes.
        writes: Vec<Write>,
    },
    /// The switchover command ended: its exit code and last words, or why it could not run.
    SwitchoverEnded {
        /// Milliseconds since the fault.
        at_ms: i64,
        /// Its exit code and last words, or why it could not run.
        outcome: Result<(i64, String), String>,
    },
    /// The witness followed the new primary, or could not.
    WitnessFollowed {
        /// Milliseconds since the fault.
        at_ms: i64,
        /// The witness.
        witness: String,
        /// The new primary.
        primary: String,
        /// Why it could not, if it could not.
        outcome: Result<(), String>,
    },
    /// The old primary was fenced, or fencing it failed.
    Fenced {
        /// Milliseconds since the fault.
        at_ms: i64,
        /// Why stopping it failed, if it did.
        outcome: Result<(), String>,
    },
    /// The fault was undone.
    Undone {
        /// Milliseconds since the fault.
        at_ms: i64,
    },
    /// The drill ended: the writes finished since the last observation, and the rows present
    /// on the survivor, where they could be counted.
    Finished {
        /// Milliseconds since the fault.
        at_ms: i64,
        /// The last writes.
        writes: Vec<Write>,
        /// The rows present.
        present: Option<Vec<u64>>,
    },
}

/// The report of a drill recorded as `observations`, numbered `number`: what the observer
/// made of them, as it did when they were seen.
pub fn replay(fault: Fault, number: u64, observations: &[Observation]) -> DrillReport {
    let mut observer = Observer::new(fault, number, 0);
    let mut present = None;
    let mut at = 0;
    for observation in observations {
        at = observation.at_ms();
        match observation {
            Observation::Finished { present: rows, .. } => {
                present = rows
                    .as_ref()
                    .map(|p| p.iter().copied().collect::<HashSet<u64>>());
                observer.see(observation.clone());
                break;
            }
            other => {
                observer.see(other.clone());
            }
        }
    }
    observer.finish(at, present.as_ref())
}

impl Observation {
    /// When it was seen, in milliseconds since the fault.
    pub fn at_ms(&self) -> i64 {
        match self {
            Observation::Status { at_ms, .. }
            | Observation::SwitchoverEnded { at_ms, .. }
            | Observation::WitnessFollowed { at_ms, .. }
            | Observation::Fenced { at_ms, .. }
            | Observation::Undone { at_ms }
            | Observation::Finished { at_ms, .. } => *at_ms,
        }
    }
}

/// What the runner must do to undo a fault whose time is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Start the stopped etcd members' machines and etcd on them.
    StartMembers(Vec<String>),
    /// Connect the isolated primary again; first fence it with [`fence`] if it is still a
    /// primary beside `beside`, the node promoted meanwhile (repmgr only: a Patroni leader that
    /// cannot renew its key in etcd demotes itself).
    Reconnect {
        /// The isolated node.
        node: String,
        /// The new primary, when the old one must be fenced if it still takes writes.
        fence_beside: Option<String>,
    },
}

/// What the runner does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Look again in [`POLL_MS`].
    Poll,
    /// The drill is over: count the rows on [`Observer::survivor`], then [`Observer::finish`].
    Finish,
}

/// Watches a fault drill: fed with the cluster's status and the writer's rows at each
/// moment, it notes the typed moments (detection, promotion, writes refused and resumed,
/// standbys following), says when to undo the fault and when the drill is over, and computes
/// the report. Replaying a recorded sequence of observations gives the same report.
#[derive(Debug, Clone)]
pub struct Observer {
    fault: Fault,
    report: DrillReport,
    /// How many moments of the timeline the runner has already taken.
    taken: usize,
    detected: bool,
    undone: bool,
    /// Whether the switchover command is still running.
    switching: bool,
    settled_at: Option<i64>,
    first_refused: Option<(u64, i64)>,
    /// Every write so far.
    writes: Vec<Write>,
}

impl Observer {
    /// A new drill, numbered `number`, whose fault is made at `fault_ms` (milliseconds since
    /// 1970, for the report). The fault is the timeline's first moment.
    pub fn new(fault: Fault, number: u64, fault_ms: u64) -> Observer {
        let mut observer = Observer {
            report: DrillReport {
                number,
                action: fault.drill.name().to_string(),
                target: fault.target.clone(),
                fault_ms,
                new_primary: None,
                rto_ms: None,
                outage_ms: None,
                writes_acknowledged: 0,
                writes_failed: 0,
                writes_lost: None,
                rpo_ms: None,
                synchronous: fault.synchronous,
                timeline: Vec::new(),
                finished: false,
                note: None,
                writes_over_time: None,
            },
            switching: matches!(fault.action, Break::Switchover { .. }),
            fault,
            taken: 0,
            detected: false,
            undone: false,
            settled_at: None,
            first_refused: None,
            writes: Vec::new(),
        };
        let (target, description) = (
            observer.fault.target.clone(),
            observer.fault.description.clone(),
        );
        observer.note(0, Signal::Fault, Some(&target), description);
        observer
    }

    /// The report so far.
    pub fn report(&self) -> &DrillReport {
        &self.report
    }

    /// The moments noted since the last call, for the runner to announce.
    pub fn take_moments(&mut self) -> Vec<Moment> {
        let new = self.report.timeline[self.taken..].to_vec();
        self.taken = self.report.timeline.len();
        new
    }

    fn note(&mut self, after_ms: i64, kind: Signal, node: Option<&str>, what: String) {
        self.report.timeline.push(Moment {
            after_ms,
            kind,
            node: node.map(str::to_string),
            what,
        });
    }

    fn has(&self, kind: Signal) -> bool {
        self.report.timeline.iter().any(|m| m.kind == kind)
    }

    /// Takes in what the runner saw; returns what to do next.
    pub fn see(&mut self, observation: Observation) -> Next {
        match observation {
            Observation::Status {
                at_ms,
                status,
                writes,
            } => {
                self.writes.extend(writes);
                return self.observe(at_ms, status.as_ref());
            }
            Observation::SwitchoverEnded { at_ms, outcome } => {
                self.switchover_ended(at_ms, outcome);
            }
            Observation::WitnessFollowed {
                at_ms,
                witness,
                primary,
                outcome,
            } => self.witness_followed(at_ms, &witness, &primary, outcome),
            Observation::Fenced { at_ms, outcome } => self.fenced(at_ms, outcome),
            Observation::Undone { at_ms } => self.undone(at_ms),
            Observation::Finished { writes, .. } => {
                self.writes.extend(writes);
                return Next::Finish;
            }
        }
        Next::Poll
    }

    /// The switchover command ended at `at_ms`: with its exit code and last words, or an error
    /// if it could not run.
    fn switchover_ended(&mut self, at_ms: i64, outcome: Result<(i64, String), String>) {
        self.switching = false;
        let (kind, what) = match outcome {
            Ok((0, _)) => (
                Signal::SwitchoverFinished,
                "the switchover command finished".to_string(),
            ),
            Ok((code, said)) => (
                Signal::SwitchoverFailed,
                format!("the switchover command failed ({code}): {said}"),
            ),
            Err(e) => (
                Signal::SwitchoverFailed,
                format!("the switchover command could not run: {e}"),
            ),
        };
        self.note(at_ms, kind, None, what);
    }

    /// The witness was registered with the new primary at `at_ms`, or could not be.
    fn witness_followed(
        &mut self,
        at_ms: i64,
        witness: &str,
        primary: &str,
        outcome: Result<(), String>,
    ) {
        let (kind, what) = match outcome {
            Ok(()) => (
                Signal::WitnessFollows,
                format!("the witness {witness} follows {primary}"),
            ),
            Err(e) => (
                Signal::WitnessLost,
                format!("the witness {witness} could not follow {primary}: {e}"),
            ),
        };
        self.note(at_ms, kind, Some(witness), what);
    }

    /// What to undo at `now_ms`, once the fault's time is up; `None` before, and after.
    pub fn undo_due(&self, now_ms: i64) -> Option<Undo> {
        let after = self.fault.undo_after_ms?;
        if self.undone || now_ms < after {
            return None;
        }
        Some(match &self.fault.action {
            Break::StopMembers(members) => Undo::StartMembers(members.clone()),
            _ => Undo::Reconnect {
                node: self.fault.target.clone(),
                fence_beside: self
                    .report
                    .new_primary
                    .clone()
                    .filter(|_| !self.fault.patroni),
            },
        })
    }

    /// The old primary was fenced at `at_ms` because it was still a primary beside the new
    /// one; `stopped` says whether stopping its Postgres worked, with what it said if not.
    fn fenced(&mut self, at_ms: i64, stopped: Result<(), String>) {
        let old = self.fault.target.clone();
        let new = self.report.new_primary.clone().unwrap_or_default();
        let (kind, what) = match stopped {
            Ok(()) => (
                Signal::Fenced,
                format!(
                    "{old} is still a primary beside {new}: fenced before it comes back (Postgres stopped)"
                ),
            ),
            Err(said) => (
                Signal::FenceFailed,
                format!("{old} is still a primary beside {new}, and stopping it failed: {said}"),
            ),
        };
        self.note(at_ms, kind, Some(&old), what);
    }

    /// The fault was undone at `at_ms`.
    fn undone(&mut self, at_ms: i64) {
        self.undone = true;
        let seconds = self.fault.undo_after_ms.unwrap_or_default() / 1000;
        let (node, what) = match &self.fault.action {
            Break::StopMembers(members) => (
                None,
                format!(
                    "etcd runs again on {} after {seconds} s",
                    members.join(" and ")
                ),
            ),
            _ => (
                Some(self.fault.target.clone()),
                format!(
                    "{} is back on the network after {seconds} s",
                    self.fault.target
                ),
            ),
        };
        self.note(at_ms, Signal::FaultUndone, node.as_deref(), what);
    }

    /// What the runner saw at `now_ms`: the cluster's status (when it could be read), with
    /// every write so far. Returns what to do next.
    fn observe(&mut self, now_ms: i64, status: Option<&ClusterStatus>) -> Next {
        let writes = std::mem::take(&mut self.writes);
        let next = self.observe_with(now_ms, status, &writes);
        self.writes = writes;
        next
    }

    fn observe_with(
        &mut self,
        now_ms: i64,
        status: Option<&ClusterStatus>,
        writes: &[Write],
    ) -> Next {
        let old = self.fault.target.clone();
        let isolation = self.fault.undo_after_ms;
        let members_stopped = matches!(self.fault.action, Break::StopMembers(_));
        if let Some(status) = status {
            if (isolation.is_none() || members_stopped)
                && !self.detected
                && status
                    .nodes
                    .iter()
                    .any(|n| n.name == old && n.postgres != Some(PostgresRole::Primary))
            {
                self.detected = true;
                let what = match self.fault.drill {
                    Drill::StopEtcd { .. } => format!(
                        "{old} no longer takes writes: without a quorum Patroni could not renew its leader key, so it demoted {old}"
                    ),
                    Drill::Switchover { .. } => format!("{old} stepped down"),
                    _ => format!("{old} no longer answers"),
                };
                self.note(now_ms, Signal::Detected, Some(&old), what);
            }
            if self.report.new_primary.is_none()
                && let Some(new) = status
                    .nodes
                    .iter()
                    .find(|n| n.name != old && n.postgres == Some(PostgresRole::Primary))
                    .map(|n| n.name.clone())
            {
                self.report.new_primary = Some(new.clone());
                self.note(
                    now_ms,
                    Signal::Promoted,
                    Some(&new),
                    format!("{new} is the new primary and accepts writes"),
                );
            }
        }
        if self.first_refused.is_none() {
            self.first_refused = writes
                .iter()
                .find(|w| !w.ok && w.started_ms >= 0)
                .map(|w| (w.id, w.started_ms));
        }
        if let Some((row, at)) = self.first_refused
            && !self.has(Signal::WritesRefused)
        {
            self.note(
                at,
                Signal::WritesRefused,
                None,
                format!("writes refused (row {row})"),
            );
        }
        // Recovery ends with the first write after the fault that another node acknowledged
        // (the old primary may still take a few while it shuts down). Where no other node
        // took over once the fault was undone, it ends with the first write acknowledged
        // after the first refused one: none refused, no outage.
        let carried_on = self.undone && self.report.new_primary.is_none();
        // The old primary carried on and no write was refused: there was no outage.
        let untouched = carried_on && self.first_refused.is_none();
        let resumed = writes
            .iter()
            .find(|w| {
                if carried_on {
                    w.ok && w.started_ms >= self.first_refused.map_or(0, |(_, at)| at)
                } else {
                    w.ok && w.started_ms >= 0 && w.by.as_deref().is_some_and(|by| by != old)
                }
            })
            .cloned();
        if self.report.rto_ms.is_none()
            && let Some(first) = resumed
        {
            let rto = if untouched {
                0
            } else {
                first.finished_ms.max(0)
            };
            // The gap without an acknowledged write: from the last one before recovery
            // (the old primary may take some after the fault), or from the fault.
            let last_acknowledged = writes
                .iter()
                .filter(|w| w.ok && w.finished_ms <= first.started_ms)
                .map(|w| w.finished_ms)
                .max()
                .map_or(0, |t| t.max(0));
            let outage = if untouched {
                0
            } else {
                (first.finished_ms - last_acknowledged).max(0)
            };
            self.report.outage_ms = Some(outage as u64);
            self.report.rto_ms = Some(rto as u64);
            let what = if untouched {
                "no write was refused".to_string()
            } else {
                format!(
                    "writes resumed on {} (row {})",
                    first.by.as_deref().unwrap_or("?"),
                    first.id
                )
            };
            self.note(rto, Signal::WritesResumed, first.by.as_deref(), what);
        }
        // Settled once every standby streams again, from a node other than the old primary
        // (or, at the latest, SETTLE_BY_MS after the promotion).
        let promoted_at = self
            .report
            .timeline
            .iter()
            .find(|m| m.kind == Signal::Promoted)
            .map(|m| m.after_ms);
        let following = status.is_some_and(|s| standbys_follow(&s.nodes, &old));
        let overdue = promoted_at.is_some_and(|p| now_ms >= p + SETTLE_BY_MS);
        if let (Some(new), Some(_), None) = (
            self.report.new_primary.clone(),
            self.report.rto_ms,
            self.settled_at,
        ) && let Some(status) = status
            && (following || overdue)
        {
            let streaming: Vec<String> = status
                .nodes
                .iter()
                .filter(|n| n.postgres == Some(PostgresRole::Standby))
                .map(|n| format!("{} from {}", n.name, n.upstream.as_deref().unwrap_or("?")))
                .collect();
            let what = if streaming.is_empty() {
                format!("{new} has no standby streaming")
            } else {
                format!("standbys streaming: {}", streaming.join(", "))
            };
            self.note(now_ms, Signal::Settled, None, what);
            self.settled_at = Some(now_ms);
        }
        let waited = self
            .settled_at
            .is_some_and(|t| now_ms - t >= SETTLED_FOR_MS)
            && !self.switching;
        if waited && (isolation.is_none() || self.undone) {
            return Next::Finish;
        }
        // An isolation too short for a failover: the old primary simply carries on.
        if self.undone
            && self.report.new_primary.is_none()
            && self.report.rto_ms.is_some()
            && isolation.is_some_and(|a| now_ms >= a + CARRIED_ON_FOR_MS)
        {
            return Next::Finish;
        }
        if now_ms >= WATCH_MS + isolation.unwrap_or_default() {
            return Next::Finish;
        }
        Next::Poll
    }

    /// The node that holds the cluster's data afterwards, where the rows are counted: the new
    /// primary, or the old one where it carried on.
    pub fn survivor(&self) -> Option<String> {
        self.report.new_primary.clone().or_else(|| {
            (self.undone && self.fault.undo_after_ms.is_some()).then(|| self.fault.target.clone())
        })
    }

    /// The report, once the drill is over at `now_ms`, with the rows present on the survivor
    /// (`None` where they could not be counted).
    pub fn finish(mut self, now_ms: i64, present: Option<&HashSet<u64>>) -> DrillReport {
        let old = self.fault.target.clone();
        let writes = std::mem::take(&mut self.writes);
        let report = &mut self.report;
        report.writes_over_time = write_series(&writes);
        report.writes_acknowledged = writes.iter().filter(|w| w.ok).count() as u64;
        report.writes_failed = writes.iter().filter(|w| !w.ok).count() as u64;
        if let Some(present) = present {
            let lost: Vec<&Write> = writes
                .iter()
                .filter(|w| w.ok && !present.contains(&w.id))
                .collect();
            report.writes_lost = Some(lost.len() as u64);
            report.rpo_ms = Some(
                lost.iter()
                    .map(|w| (-w.finished_ms).max(0))
                    .max()
                    .unwrap_or(0) as u64,
            );
        }
        let members = match &self.fault.action {
            Break::StopMembers(members) => members.len() as u32,
            _ => 0,
        };
        report.note = match &report.new_primary {
            Some(_) => None,
            None if members > 0 && ETCD_MEMBERS - members >= ETCD_QUORUM => Some(format!(
                "{old} stayed the leader: two of three etcd members are a quorum, so Patroni carried on as before"
            )),
            None if members > 0 => Some(format!(
                "no failover: with one of three etcd members left there is no quorum, so no leader key can be renewed or taken; Patroni demoted {old} rather than risk two primaries, and {old} led again once the quorum was back"
            )),
            None if self.fault.undo_after_ms.is_some() => Some(format!(
                "{old} stayed the primary: no standby was promoted while it was cut off"
            )),
            None => Some(format!(
                "no other node took over within {} s: the failover manager did not promote a standby{}",
                now_ms.max(0) / 1000,
                if self.fault.synchronous {
                    " (with synchronous replication only the synchronous standby may be promoted, so that no acknowledged write is lost)"
                } else {
                    ""
                }
            )),
        };
        report.timeline.sort_by_key(|m| m.after_ms);
        report.finished = true;
        self.report
    }
}

/// How long a step of a drill's chart of writes is.
pub const CHART_STEP_MS: u64 = 100;

/// The most steps a chart holds (ten minutes of 100 ms): writes answered later are left out.
const CHART_STEPS: usize = 6000;

/// The writes in steps of `CHART_STEP_MS` by the time their answer came, or `None` without any.
pub fn write_series(writes: &[Write]) -> Option<WriteSeries> {
    let step = CHART_STEP_MS as i64;
    let first = writes.iter().map(|w| w.finished_ms).min()?;
    let from_ms = first.div_euclid(step) * step;
    let last = writes.iter().map(|w| w.finished_ms).max().unwrap_or(first);
    let steps = (((last - from_ms) / step) as usize + 1).min(CHART_STEPS);
    let mut series = WriteSeries {
        from_ms,
        step_ms: CHART_STEP_MS,
        acknowledged: vec![0; steps],
        refused: vec![0; steps],
    };
    for write in writes {
        let at = ((write.finished_ms - from_ms) / step) as usize;
        let column = if write.ok {
            &mut series.acknowledged
        } else {
            &mut series.refused
        };
        if let Some(count) = column.get_mut(at) {
            *count += 1;
        }
    }
    Some(series)
}

/// Whether every standby streams from a node other than `old`, the old primary, or from `old`
/// once it is a standby itself (after a switchover, the cascaded replicas stay with the
/// replica that handed over).
fn standbys_follow(nodes: &[NodeStatus], old: &str) -> bool {
    let standby = |name: &str| {
        nodes
            .iter()
            .any(|n| n.name == name && n.postgres == Some(PostgresRole::Standby))
    };
    nodes
        .iter()
        .filter(|n| n.postgres == Some(PostgresRole::Standby))
        .all(|n| {
            n.upstream
                .as_deref()
                .is_some_and(|u| u != old || standby(u))
        })
}
