//! Scenarios run on many clusters at once: each deployment gets the scenario's steps at their
//! times (a bounded number of deployments at once), each step's start is an event its owner's
//! page shows, and each step's outcome (recovery time, writes lost) goes into the results.

use super::{Problem, Runner};
use crate::lock;
use m1studio_shared::api::{DeploymentState, EventKind, Signal};
use m1studio_shared::scenario::{ResultRow, Results, Scenario, StepResult, resolve};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How many deployments run a scenario at once; the others start theirs when one is done.
const AT_ONCE: usize = 8;
/// How long a step's drill may take to report before the step counts as failed.
const STEP_LIMIT: Duration = Duration::from_secs(600);

/// A scenario under way or done, and its results so far.
pub(super) type Run = Arc<Mutex<Results>>;

impl Runner {
    /// Runs `scenario` on each of `deployments` (an id, and whose it is), which must be
    /// running; returns the run's id, whose results fill in as the steps end.
    pub fn run_scenario(
        &self,
        scenario: Scenario,
        deployments: Vec<(String, String)>,
    ) -> Result<String, Problem> {
        if deployments.is_empty() {
            return Err(Problem::Conflict(
                "no cluster is running: a scenario runs on the running ones; deploy first".into(),
            ));
        }
        let id = super::new_id()?;
        let rows = deployments
            .iter()
            .map(|(deployment, attendee)| ResultRow {
                deployment: deployment.clone(),
                attendee: attendee.clone(),
                steps: Vec::new(),
            })
            .collect();
        let run: Run = Arc::new(Mutex::new(Results {
            scenario: scenario.clone(),
            finished: false,
            rows,
        }));
        lock(&self.inner.scenarios).insert(id.clone(), run.clone());
        let runner = self.clone();
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(AT_ONCE));
            let tasks = deployments
                .into_iter()
                .enumerate()
                .map(|(row, (deployment, _))| {
                    let (runner, scenario, run, slots) =
                        (runner.clone(), scenario.clone(), run.clone(), slots.clone());
                    async move {
                        let _slot = slots.acquire_owned().await;
                        runner.run_steps(&scenario, &deployment, row, &run).await;
                    }
                });
            futures_util::future::join_all(tasks).await;
            lock(&run).finished = true;
        });
        Ok(id)
    }

    /// The results of scenario run `id` so far.
    pub fn scenario_results(&self, id: &str) -> Result<Results, Problem> {
        lock(&self.inner.scenarios)
            .get(id)
            .map(|run| lock(run).clone())
            .ok_or_else(|| Problem::NotFound(format!("no scenario run {id}")))
    }

    /// One deployment's steps, each at its time, its outcome written to row `row` of `run`.
    async fn run_steps(&self, scenario: &Scenario, deployment: &str, row: usize, run: &Run) {
        let started = Instant::now();
        let mut old_primary: Option<String> = None;
        let count = scenario.steps.len();
        for (index, step) in scenario.steps.iter().enumerate() {
            let due = Duration::from_secs(u64::from(step.at));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            let drill = resolve(&step.drill, old_primary.as_deref());
            let started_after_ms = started.elapsed().as_millis() as u64;
            self.signal(
                deployment,
                Signal::ScenarioStep,
                EventKind::Drill,
                None,
                &format!(
                    "scenario {}, step {} of {count}: {}",
                    scenario.name,
                    index + 1,
                    drill.name()
                ),
                None,
            );
            let mut result = StepResult {
                started_after_ms,
                rto_ms: None,
                writes_lost: None,
                error: None,
            };
            match self.step(deployment, drill).await {
                Ok((target, rto_ms, writes_lost)) => {
                    if target.is_some() {
                        old_primary = target;
                    }
                    result.rto_ms = rto_ms;
                    result.writes_lost = writes_lost;
                }
                Err(problem) => result.error = Some(problem.to_string()),
            }
            lock(run).rows[row].steps.push(result);
        }
    }

    /// Carries out one step's drill on `deployment` and waits for its end: the primary it hit,
    /// its recovery time and its writes lost, for a fault drill.
    async fn step(
        &self,
        deployment: &str,
        drill: m1studio_shared::api::Drill,
    ) -> Result<(Option<String>, Option<u64>, Option<u64>), Problem> {
        let record = self.get(deployment)?;
        if record.state != DeploymentState::Running {
            return Err(Problem::Conflict(format!(
                "deployment {deployment} is {}",
                record.state.as_str()
            )));
        }
        let after = self
            .inner
            .store
            .events(deployment, 0)?
            .last()
            .map_or(0, |e| e.seq);
        let started = self.drill(deployment, drill).await?;
        let Some(until) = started.until else {
            return Ok((None, None, None));
        };
        let begun = Instant::now();
        loop {
            if let Some(number) = started.number {
                let reports = self.inner.store.reports(deployment)?;
                if let Some(report) = reports.iter().find(|r| r.number == number && r.finished) {
                    return Ok((
                        Some(report.target.clone()),
                        report.rto_ms,
                        report.writes_lost,
                    ));
                }
            }
            let events = self.inner.store.events(deployment, after)?;
            if let Some(failed) = events.iter().find(|e| e.kind == EventKind::Failed) {
                return Err(Problem::Conflict(format!(
                    "{}{}",
                    failed.title,
                    failed
                        .detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                )));
            }
            if started.number.is_none() && events.iter().any(|e| e.signal == Some(until)) {
                return Ok((None, None, None));
            }
            if begun.elapsed() > STEP_LIMIT {
                return Err(Problem::Conflict(format!(
                    "the step did not end within {} s",
                    STEP_LIMIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
