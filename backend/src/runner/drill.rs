//! Drills on a running cluster. What a drill may do, whom it promotes, its repairs and what
//! its moments mean are decided in `m1studio_shared::drill`; the runner carries them out on
//! the engine, feeds the observer what it sees, and records the moments and the report.

use super::status::cluster_status;
use super::{Problem, Runner};
use crate::engine::{Event, Executor, Secrets, argv, query, run_plan};
use crate::lock;
use crate::store::now_ms;
use crate::target::Target;
use anyhow::Result;
use m1studio_shared::api::{DeploymentState, Drill, DrillStarted, EventKind, Moment, Signal};
use m1studio_shared::drill::{
    self as rules, Break, Comeback, Next, Observation, Observer, Undo, Write, Writer,
};
use m1studio_shared::plan::retarget_barman;
use m1studio_shared::{Configured, Diagnostic};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A drill refused: about the cluster's state now (409), or about the request (400); every
/// reason, each naming its field.
fn refusal(problems: Vec<Diagnostic>) -> Problem {
    Problem::Refused {
        now: rules::refused_for_now(&problems),
        diagnostics: problems,
    }
}

/// A plan's steps need no event of their own where the drill reports the outcome.
fn quiet(_: Event) {}

impl Runner {
    /// Carries out `drill` on deployment `id`, and watches the cluster react.
    pub async fn drill(&self, id: &str, drill: Drill) -> Result<DrillStarted, Problem> {
        let record = self.get(id)?;
        if record.state != DeploymentState::Running {
            return Err(Problem::Conflict(format!(
                "deployment {id} is {}: drills run on a running cluster",
                record.state.as_str()
            )));
        }
        let configured = Runner::configured(&record)?;
        let executor = self.target(&record, &configured).await?;
        let status = cluster_status(&executor, &configured, false).await?;
        let problems = rules::check(&drill, &configured, &status);
        if !problems.is_empty() {
            return Err(refusal(problems));
        }
        let started = |message: String, until: Option<Signal>| DrillStarted {
            message,
            until,
            number: None,
        };
        match &drill {
            Drill::RetargetBarman => {
                let primary = status.primary.clone().unwrap_or_default();
                let runner = self.clone();
                let (id_owned, source) = (id.to_string(), primary.clone());
                tokio::spawn(async move {
                    if let Err(e) = runner
                        .retarget(&id_owned, &executor, &configured, &source)
                        .await
                    {
                        runner.emit(
                            &id_owned,
                            EventKind::Failed,
                            None,
                            &format!("pointing Barman at {source} failed"),
                            Some(&format!("{e:#}")),
                        );
                    }
                });
                Ok(started(
                    format!("Barman is being pointed at {primary}; follow the events"),
                    Some(Signal::BarmanFollows),
                ))
            }
            Drill::StopNode { node } => {
                executor.stop(node).await?;
                let message = format!("stopped {node}");
                self.emit(id, EventKind::Drill, Some(node), &message, None);
                Ok(started(message, None))
            }
            Drill::Start { node } => {
                self.start_again(id, executor, configured, &status, node)
                    .await
            }
            _ => {
                let primary = status.primary.clone().unwrap_or_default();
                let Some(fault) = rules::fault(&drill, &configured, &primary) else {
                    return Err(Problem::BadRequest(format!(
                        "action: {} is not a fault drill",
                        drill.name()
                    )));
                };
                {
                    let mut watching = lock(&self.inner.watching);
                    if watching.contains(&id.to_string()) {
                        return Err(Problem::Conflict(format!(
                            "a drill is already running on deployment {id}: wait for its report"
                        )));
                    }
                    watching.push(id.to_string());
                }
                let number = self.inner.store.reports(id)?.len() as u64 + 1;
                let runner = self.clone();
                let retarget = rules::retargets_barman(&drill);
                let id_owned = id.to_string();
                tokio::spawn(async move {
                    let outcome = runner
                        .fault_drill(&id_owned, number, fault, &executor, &configured, retarget)
                        .await;
                    if let Err(e) = outcome {
                        runner.emit(
                            &id_owned,
                            EventKind::Failed,
                            None,
                            "the drill failed",
                            Some(&format!("{e:#}")),
                        );
                    }
                    lock(&runner.inner.watching).retain(|w| *w != id_owned);
                });
                Ok(DrillStarted {
                    message: format!(
                        "drill {number}: a writer starts, then {primary} goes down; follow the events, and GET /api/deployments/{id}/drills for the report"
                    ),
                    until: Some(Signal::Report),
                    number: Some(number),
                })
            }
        }
    }

    /// Starts node `node`'s machine again, and brings it back as `rules::comeback` says: its
    /// services, or, for an old repmgr primary, a rejoin as a standby in the background.
    async fn start_again(
        &self,
        id: &str,
        executor: Target,
        configured: Configured,
        status: &m1studio_shared::api::ClusterStatus,
        node: &str,
    ) -> Result<DrillStarted, Problem> {
        let kind = status
            .nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.designed)
            .ok_or_else(|| Problem::BadRequest(format!("node: {node} is not a node")))?;
        executor.start_machine(node).await?;
        if rules::has_lock_files(kind) {
            let plan = rules::clear_stale_locks(&configured, node);
            run_plan(&executor, &plan, &Secrets::none(), &quiet).await?;
        }
        let standby = executor
            .run(node, &rules::standby_signal_test(), "postgres", None)
            .await
            .is_ok_and(|o| o.code == 0);
        let (message, until) = match rules::comeback(
            &configured,
            kind,
            node,
            status.primary.as_deref(),
            standby,
        ) {
            Comeback::Rejoin { primary } => {
                let runner = self.clone();
                let (id_owned, node_owned) = (id.to_string(), node.to_string());
                let primary_owned = primary.clone();
                let profile = self.get(id)?.profile;
                tokio::spawn(async move {
                    let plan = rules::rejoin(&configured, &node_owned, &primary_owned, profile);
                    let outcome = run_plan(&executor, &plan, &Secrets::none(), &quiet).await;
                    match outcome {
                        Ok(()) => runner.signal(
                            &id_owned,
                            Signal::Rejoined,
                            EventKind::Observed,
                            Some(&node_owned),
                            &format!("{node_owned} rejoined as a standby of {primary_owned}"),
                            Some("repmgr node rejoin, with pg_rewind where its timeline went further"),
                        ),
                        Err(e) => runner.emit(
                            &id_owned,
                            EventKind::Failed,
                            Some(&node_owned),
                            &format!(
                                "{node_owned} could not rejoin {primary_owned}: its Postgres stays stopped, and never takes writes"
                            ),
                            Some(&format!("{e:#}")),
                        ),
                    }
                });
                (
                    format!(
                        "{node} runs again with Postgres stopped: it was a primary, and {primary} is the primary now, so it is rejoined as a standby of {primary} (repmgr node rejoin, with pg_rewind where needed); follow the events"
                    ),
                    Some(Signal::Rejoined),
                )
            }
            Comeback::Services(services) => {
                let plan = rules::start_services(&configured, node, &services);
                run_plan(&executor, &plan, &Secrets::none(), &quiet)
                    .await
                    .map_err(|e| {
                        Problem::Internal(anyhow::anyhow!(
                            "starting {} on {node} failed: {e:#}",
                            services.join(", ")
                        ))
                    })?;
                (
                    format!("{node} runs again, with {}", services.join(", ")),
                    None,
                )
            }
        };
        self.emit(id, EventKind::Drill, Some(node), &message, None);
        Ok(DrillStarted {
            message,
            until,
            number: None,
        })
    }

    /// Announces a moment of a drill as an event.
    fn announce(&self, id: &str, moment: &Moment) {
        let kind = if moment.kind.is_action() {
            EventKind::Drill
        } else {
            EventKind::Observed
        };
        self.signal(
            id,
            moment.kind,
            kind,
            moment.node.as_deref(),
            &moment.what,
            Some(&seconds(moment.after_ms)),
        );
    }

    /// Points Barman at `source` and checks it, reporting each step.
    pub(super) async fn retarget(
        &self,
        id: &str,
        executor: &Target,
        configured: &Configured,
        source: &str,
    ) -> Result<()> {
        let plan = retarget_barman(&configured.design, &configured.topology, source, true)
            .map_err(|d| anyhow::anyhow!("{}", d.message))?;
        let secrets = Secrets::from_entries(self.inner.store.secrets(id)?);
        self.emit(
            id,
            EventKind::Drill,
            None,
            &format!("pointing Barman at {source}"),
            None,
        );
        run_plan(executor, &plan, &secrets, &self.plan_events(id)).await?;
        self.signal(
            id,
            Signal::BarmanFollows,
            EventKind::Observed,
            None,
            &format!("Barman backs up {source}, and barman check is green"),
            None,
        );
        Ok(())
    }

    /// Breaks the primary as `fault` says while a writer inserts numbered rows, feeds the
    /// observer what it sees, and records what it measured: the time until writes resumed and
    /// the rows lost.
    async fn fault_drill(
        &self,
        id: &str,
        number: u64,
        fault: rules::Fault,
        executor: &Target,
        configured: &Configured,
        retarget_barman: bool,
    ) -> Result<()> {
        let old = fault.target.clone();
        let writer = rules::writer(configured)
            .ok_or_else(|| anyhow::anyhow!("the design has no Barman node to write from"))?;
        query(executor, &old, rules::WRITES_TABLE).await?;
        let first_id: u64 = query(executor, &old, rules::NEXT_WRITE_SQL)
            .await?
            .parse()
            .unwrap_or(1);
        let writes = Arc::new(Mutex::new(Vec::<Timed>::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let write_task = tokio::spawn(write_rows(
            executor.clone(),
            writer,
            first_id,
            stop.clone(),
            writes.clone(),
        ));
        // A second of writes before the fault, so that the loss can be measured.
        tokio::time::sleep(Duration::from_millis(rules::LEAD_IN_MS)).await;
        let fault_instant = Instant::now();
        let since = move || relative(Instant::now(), fault_instant);
        // The writes not yet seen by the observer.
        let mut passed = 0;
        let mut new_writes = |writes: &Mutex<Vec<Timed>>| -> Vec<Write> {
            let all = lock(writes);
            let new: Vec<Write> = all[passed..]
                .iter()
                .map(|w| w.from(fault_instant))
                .collect();
            passed = all.len();
            new
        };
        let fault_ms = now_ms();
        let mut switchover = None;
        match &fault.action {
            Break::Kill(node) => executor.kill(node).await?,
            Break::Stop(node) => executor.stop(node).await?,
            Break::Isolate(node) => executor.isolate(node).await?,
            Break::StopMembers(members) => {
                for member in members {
                    executor.stop(member).await?;
                }
            }
            Break::Switchover {
                node,
                argv: command,
                witness,
            } => {
                let (executor, node, command) = (executor.clone(), node.clone(), command.clone());
                let (witness, configured) = (witness.clone(), configured.clone());
                let profile = self.get(id).map_err(|p| anyhow::anyhow!("{p}"))?.profile;
                let after = rules::after_switchover(&configured, &old, profile);
                // The command's own end, not when the watcher next looks.
                switchover = Some(tokio::spawn(async move {
                    let output = executor.run(&node, &command, "postgres", None).await;
                    let at = since();
                    let succeeded = output.as_ref().is_ok_and(|o| o.code == 0);
                    if let Some(plan) = after.filter(|_| succeeded)
                        && let Err(e) = run_plan(&executor, &plan, &Secrets::none(), &quiet).await
                    {
                        tracing::warn!("after the switchover: {e:#}");
                    }
                    let witness = match witness.filter(|_| succeeded) {
                        Some((witness, primary)) => {
                            let plan = rules::witness_follow(&configured, &witness, &primary);
                            let outcome =
                                run_plan(&executor, &plan, &Secrets::none(), &quiet).await;
                            Some((witness, primary, outcome, since()))
                        }
                        None => None,
                    };
                    (output, at, witness)
                }));
            }
        }
        let mut observer = Observer::new(fault.clone(), number, fault_ms);
        // Each observation goes to the observer, and to the debug log as one JSON line: a
        // drill's log replays to the same report (`m1studio_shared::drill::replay`).
        let see = |observer: &mut Observer, observation: Observation| {
            tracing::debug!(
                target: "m1studio::drill",
                "{}",
                serde_json::to_string(&observation).unwrap_or_default()
            );
            observer.see(observation)
        };
        for moment in observer.take_moments() {
            self.announce(id, &moment);
        }
        self.inner.store.save_report(id, observer.report())?;
        let old_instance = configured
            .topology
            .get(&old)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{old} is not in the design"))?;
        loop {
            if let Some(finished) = switchover.take_if(|h| h.is_finished()) {
                let (output, at, witness) = match finished.await {
                    Ok(finished) => finished,
                    Err(e) => (Err(anyhow::anyhow!("{e}")), since(), None),
                };
                let outcome = match output {
                    Ok(o) => Ok((
                        o.code,
                        crate::engine::tail(&format!("{}\n{}", o.stdout, o.stderr), 4),
                    )),
                    Err(e) => Err(format!("{e:#}")),
                };
                see(
                    &mut observer,
                    Observation::SwitchoverEnded { at_ms: at, outcome },
                );
                if let Some((witness, primary, outcome, at)) = witness {
                    see(
                        &mut observer,
                        Observation::WitnessFollowed {
                            at_ms: at,
                            witness,
                            primary,
                            outcome: outcome.map_err(|e| format!("{e:#}")),
                        },
                    );
                }
            }
            if let Some(undo) = observer.undo_due(since()) {
                match undo {
                    Undo::StartMembers(members) => {
                        for member in &members {
                            executor.start_machine(member).await?;
                            executor.start(member, "etcd").await?;
                        }
                    }
                    Undo::Reconnect { node, fence_beside } => {
                        // A primary that would come back beside a new one is fenced first, so
                        // that it never takes a write.
                        if fence_beside.is_some() {
                            let still_primary = query(executor, &node, rules::IN_RECOVERY_SQL)
                                .await
                                .is_ok_and(|r| r == "f");
                            if still_primary {
                                let plan = rules::fence(configured, &node);
                                let outcome =
                                    run_plan(executor, &plan, &Secrets::none(), &quiet).await;
                                see(
                                    &mut observer,
                                    Observation::Fenced {
                                        at_ms: since(),
                                        outcome: outcome.map_err(|e| format!("{e:#}")),
                                    },
                                );
                                // repmgrd goes too (it may take a while, stuck on the cut
                                // network).
                                let stop = argv(&[
                                    m1studio_shared::plan::SERVICE_COMMAND,
                                    "stop",
                                    "repmgrd",
                                ]);
                                executor.run(&node, &stop, "root", None).await?;
                            }
                        }
                        executor.reconnect(&old_instance).await?;
                    }
                }
                see(&mut observer, Observation::Undone { at_ms: since() });
            }
            let status = cluster_status(executor, configured, false).await.ok();
            let next = see(
                &mut observer,
                Observation::Status {
                    at_ms: since(),
                    status,
                    writes: new_writes(&writes),
                },
            );
            for moment in observer.take_moments() {
                self.announce(id, &moment);
            }
            if next == Next::Finish && switchover.is_none() {
                break;
            }
            self.inner.store.save_report(id, observer.report())?;
            tokio::time::sleep(Duration::from_millis(rules::POLL_MS)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = write_task.await;
        let last = new_writes(&writes);
        let present = match observer.survivor() {
            Some(survivor) => query(executor, &survivor, &rules::present_sql(first_id))
                .await
                .ok()
                .map(|present| {
                    present
                        .split(',')
                        .filter_map(|v| v.parse().ok())
                        .collect::<HashSet<u64>>()
                }),
            None => None,
        };
        let at_ms = since();
        see(
            &mut observer,
            Observation::Finished {
                at_ms,
                writes: last,
                present: present.as_ref().map(|p| {
                    let mut rows: Vec<u64> = p.iter().copied().collect();
                    rows.sort_unstable();
                    rows
                }),
            },
        );
        let report = observer.finish(at_ms, present.as_ref());
        self.inner.store.save_report(id, &report)?;
        self.signal(
            id,
            Signal::Report,
            EventKind::Observed,
            None,
            &format!("drill {number} report"),
            Some(&format!(
                "recovery {}, {} writes acknowledged, lost: {}",
                report.rto_ms.map_or_else(
                    || "none".to_string(),
                    |r| seconds(i64::try_from(r).unwrap_or(i64::MAX))
                ),
                report.writes_acknowledged,
                report.loss().unwrap_or_else(|| "?".to_string())
            )),
        );
        if retarget_barman && let Some(new) = report.new_primary.clone() {
            self.retarget(id, executor, configured, &new).await?;
        }
        Ok(())
    }
}

fn seconds(after_ms: i64) -> String {
    format!("{:.1} s after the fault", after_ms as f64 / 1000.0)
}

/// Milliseconds from `fault` to `at` (negative before it).
fn relative(at: Instant, fault: Instant) -> i64 {
    if at >= fault {
        i64::try_from(at.duration_since(fault).as_millis()).unwrap_or(i64::MAX)
    } else {
        -i64::try_from(fault.duration_since(at).as_millis()).unwrap_or(i64::MAX)
    }
}

/// One insert of the drill writer, timed by the machine's clock.
struct Timed {
    id: u64,
    started: Instant,
    finished: Instant,
    ok: bool,
    /// The node that acknowledged it.
    by: Option<String>,
}

impl Timed {
    /// The write as the observer reads it, timed from `fault`.
    fn from(&self, fault: Instant) -> Write {
        Write {
            id: self.id,
            started_ms: relative(self.started, fault),
            finished_ms: relative(self.finished, fault),
            ok: self.ok,
            by: self.by.clone(),
        }
    }
}

/// Inserts numbered rows one after the other through the writer's connection string (every
/// Postgres node, the one that accepts writes chosen by libpq, or HAProxy), from its node,
/// until `stop`. Each insert returns the server's address, which the writer's names turn into
/// the node that acknowledged it.
async fn write_rows(
    executor: Target,
    writer: Writer,
    first_id: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
    writes: Arc<Mutex<Vec<Timed>>>,
) {
    let names: std::collections::HashMap<String, String> = writer.names.into_iter().collect();
    let mut next = first_id;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let command = argv(&[
            "psql",
            "-XAtq",
            "-d",
            &writer.conninfo,
            "-c",
            &rules::insert_sql(next),
        ]);
        let started = Instant::now();
        // A commit that waits for a synchronous standby that is gone is not acknowledged.
        let output = tokio::time::timeout(
            Duration::from_millis(rules::WRITE_TIMEOUT_MS),
            executor.run(&writer.node, &command, "barman", None),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within 5 s")));
        let ok = output.as_ref().is_ok_and(|o| o.code == 0);
        let by = output
            .ok()
            .filter(|_| ok)
            .and_then(|o| names.get(o.stdout.trim()).cloned());
        lock(&writes).push(Timed {
            id: next,
            started,
            finished: Instant::now(),
            ok,
            by,
        });
        next += 1;
        if !ok {
            tokio::time::sleep(Duration::from_millis(rules::WRITE_RETRY_MS)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_count_from_the_fault_both_ways() {
        let fault = Instant::now();
        let later = fault + Duration::from_millis(1500);
        assert_eq!(relative(later, fault), 1500);
        assert_eq!(relative(fault, later), -1500);
        assert_eq!(relative(fault, fault), 0);
    }

    #[test]
    fn a_refusal_for_now_is_a_conflict_and_a_bad_field_a_bad_request() {
        use m1studio_shared::Code;
        let now = vec![Diagnostic::error(
            "node",
            Code::DrillNotNow,
            "kestrel is already running",
        )];
        assert!(matches!(
            refusal(now.clone()),
            Problem::Refused { now: true, diagnostics } if diagnostics == now
        ));
        let bad = vec![
            Diagnostic::error("count", Code::DrillInvalid, "3 is out of range"),
            Diagnostic::error("seconds", Code::DrillInvalid, "1 is out of range"),
            Diagnostic::error("node", Code::DrillNotNow, "kestrel is already running"),
        ];
        // One wrong field makes the request wrong, whatever the moment.
        let refused = refusal(bad.clone());
        assert!(
            matches!(&refused, Problem::Refused { now: false, diagnostics } if *diagnostics == bad)
        );
        assert_eq!(
            refused.to_string(),
            "count: 3 is out of range\nseconds: 1 is out of range\nnode: kestrel is already running"
        );
    }
}
