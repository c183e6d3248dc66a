//! Scenarios: a short list of timed drills that a trainer runs on every attendee's cluster at
//! once, such as "t+0 kill the primary; t+60 start the old primary; t+90 switch over". Written
//! in a small YAML file or picked from the presets, and checked here like every other input:
//! every problem at once, each naming its field.
//!
//! ```yaml
//! name: failover and back
//! steps:
//!   - at: 0
//!     action: kill-primary
//!   - at: 60
//!     action: start
//!     node: old-primary
//!   - at: 90
//!     action: switchover
//! ```

use crate::api::Drill;
use crate::diag::{Code, Diagnostic};
use serde::{Deserialize, Serialize};

/// The latest a step may start, in seconds after the scenario's start.
pub const LATEST_STEP: u32 = 3600;
/// The most steps a scenario holds.
pub const MOST_STEPS: usize = 20;
/// The longest scenario file read.
pub const MOST_BYTES: usize = 16 * 1024;
/// Stands, in a step's `node`, for the primary that the scenario's last fault hit.
pub const OLD_PRIMARY: &str = "old-primary";

/// A checked scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// Its name, as the results name it.
    pub name: String,
    /// Its steps, in the order they start.
    pub steps: Vec<Step>,
}

/// One step: a drill, `at` seconds after the scenario's start. Written as the drill's fields
/// beside `at`; read through [`crate::api::DrillWire`], as drills are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "crate::api::DrillWire")]
pub struct Step {
    /// When it starts, in seconds after the scenario's start.
    pub at: u32,
    /// What it does (`node: old-primary` means the primary the last fault hit).
    #[serde(flatten)]
    pub drill: Drill,
}

impl TryFrom<crate::api::DrillWire> for Step {
    type Error = String;

    fn try_from(wire: crate::api::DrillWire) -> Result<Step, String> {
        Ok(Step {
            at: wire.at.ok_or("missing field `at`")?,
            drill: Drill::try_from(wire)?,
        })
    }
}

/// A scenario as written, before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    steps: Vec<yaml_serde::Value>,
}

fn problem(path: String, message: String) -> Diagnostic {
    Diagnostic::error(path, Code::ScenarioInvalid, message)
}

/// Reads and checks a scenario file: the scenario, or every problem in it.
pub fn read(text: &str) -> Result<Scenario, Vec<Diagnostic>> {
    if text.len() > MOST_BYTES {
        return Err(vec![problem(
            "scenario".into(),
            format!(
                "the file is {} bytes long, more than the {MOST_BYTES} a scenario needs",
                text.len()
            ),
        )]);
    }
    let written: Written = yaml_serde::from_str(text).map_err(|e| {
        vec![problem(
            "scenario".into(),
            format!("{e}: write a name and a list of steps, each with `at` (seconds) and `action`"),
        )]
    })?;
    let mut problems = Vec::new();
    let name = written.name.unwrap_or_default().trim().to_string();
    if name.is_empty() || name.chars().count() > 80 {
        problems.push(problem(
            "name".into(),
            "give the scenario a name of 1 to 80 characters, as its results show it".into(),
        ));
    }
    if written.steps.is_empty() || written.steps.len() > MOST_STEPS {
        problems.push(problem(
            "steps".into(),
            format!(
                "a scenario has 1 to {MOST_STEPS} steps; this one has {}",
                written.steps.len()
            ),
        ));
    }
    let mut steps: Vec<Step> = Vec::new();
    for (index, value) in written.steps.into_iter().enumerate() {
        let path = format!("steps[{index}]");
        match yaml_serde::from_value::<Step>(value) {
            Ok(step) => {
                if step.at > LATEST_STEP {
                    problems.push(problem(
                        format!("{path}.at"),
                        format!(
                            "{} s is too late: a step starts within {LATEST_STEP} s of the scenario's start",
                            step.at
                        ),
                    ));
                }
                if let Some(before) = steps.last().filter(|b| b.at > step.at) {
                    problems.push(problem(
                        format!("{path}.at"),
                        format!(
                            "{} s comes before the step above it ({} s): list the steps in the order they start",
                            step.at, before.at
                        ),
                    ));
                }
                steps.push(step);
            }
            Err(e) => problems.push(problem(
                path,
                format!(
                    "{e}: a step is `at: SECONDS` and an action (kill-primary, stop-primary, isolate-primary, switchover, stop-etcd, stop-node, start, retarget-barman), with its node or seconds where it needs them"
                ),
            )),
        }
    }
    if problems.is_empty() {
        Ok(Scenario { name, steps })
    } else {
        Err(problems)
    }
}

/// The built-in scenarios, by name.
pub fn presets() -> Vec<Scenario> {
    let step = |at, drill| Step { at, drill };
    vec![
        Scenario {
            name: "kill the primary".into(),
            steps: vec![step(
                0,
                Drill::KillPrimary {
                    retarget_barman: false,
                },
            )],
        },
        Scenario {
            name: "failover and back".into(),
            steps: vec![
                step(
                    0,
                    Drill::KillPrimary {
                        retarget_barman: true,
                    },
                ),
                step(
                    60,
                    Drill::Start {
                        node: OLD_PRIMARY.into(),
                    },
                ),
                step(
                    90,
                    Drill::Switchover {
                        to: None,
                        retarget_barman: true,
                    },
                ),
            ],
        },
        Scenario {
            name: "cut the primary off".into(),
            steps: vec![step(
                0,
                Drill::IsolatePrimary {
                    seconds: 30,
                    retarget_barman: false,
                },
            )],
        },
    ]
}

/// The preset named `name`, or a diagnostic that lists them.
pub fn preset(name: &str) -> Result<Scenario, Diagnostic> {
    let all = presets();
    let names: Vec<String> = all.iter().map(|s| s.name.clone()).collect();
    all.into_iter().find(|s| s.name == name).ok_or_else(|| {
        problem(
            "preset".into(),
            format!(
                "{name:?} is not a preset: choose one of {}",
                names.join(", ")
            ),
        )
    })
}

/// `drill` with `old-primary` put to `old`, the primary the scenario's last fault hit.
pub fn resolve(drill: &Drill, old: Option<&str>) -> Drill {
    match (drill, old) {
        (Drill::Start { node }, Some(old)) if node == OLD_PRIMARY => Drill::Start {
            node: old.to_string(),
        },
        (Drill::StopNode { node }, Some(old)) if node == OLD_PRIMARY => Drill::StopNode {
            node: old.to_string(),
        },
        _ => drill.clone(),
    }
}

/// One attendee's (one deployment's) outcome of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    /// When it started, in milliseconds after the scenario's start.
    pub started_after_ms: u64,
    /// Its drill's recovery time, for a fault drill that finished.
    #[serde(default)]
    pub rto_ms: Option<u64>,
    /// Acknowledged writes lost, where counted.
    #[serde(default)]
    pub writes_lost: Option<u64>,
    /// Why it did not run, or failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// The results of a scenario, one row per deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Results {
    /// The scenario.
    pub scenario: Scenario,
    /// Whether every step of every row is over.
    pub finished: bool,
    /// One row per deployment.
    pub rows: Vec<ResultRow>,
}

/// One deployment's results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRow {
    /// The deployment.
    pub deployment: String,
    /// Whose it is: the attendee's name, or empty.
    pub attendee: String,
    /// Each step's outcome so far.
    pub steps: Vec<StepResult>,
}

/// `results` as CSV: a row per deployment and step.
pub fn csv(results: &Results) -> String {
    let quote = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    let mut out =
        String::from("attendee,deployment,step,action,started_after_ms,rto_ms,writes_lost,error\n");
    for row in &results.rows {
        for (index, step) in row.steps.iter().enumerate() {
            let action = results
                .scenario
                .steps
                .get(index)
                .map_or("", |s| s.drill.name());
            let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                quote(&row.attendee),
                quote(&row.deployment),
                index + 1,
                action,
                step.started_after_ms,
                number(step.rto_ms),
                number(step.writes_lost),
                quote(step.error.as_deref().unwrap_or_default())
            ));
        }
    }
    out
}
