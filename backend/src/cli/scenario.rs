//! `m1studio scenario run`: a scenario on every running cluster of the store, as the trainer's
//! room runs it, with its results as a table (and as CSV with `--csv`).

use super::files::{open_store, print_diagnostics};
use crate::runner::Runner;
use anyhow::{Context as _, Result};
use m1studio_shared::api::DeploymentState;
use m1studio_shared::scenario;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Runs the scenario of `file` (or the preset `preset`) and prints its results.
pub(crate) fn run_command(
    file: Option<&Path>,
    preset: Option<&str>,
    csv: bool,
    db: Option<&Path>,
) -> Result<ExitCode> {
    let read = match (file, preset) {
        (Some(file), None) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            scenario::read(&text)
        }
        (None, Some(name)) => scenario::preset(name).map_err(|d| vec![d]),
        _ => {
            eprintln!("error: give a scenario file, or --preset NAME (one of them)");
            for preset in scenario::presets() {
                eprintln!("  preset: {}", preset.name);
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let scenario = match read {
        Ok(scenario) => scenario,
        Err(problems) => {
            print_diagnostics(&problems);
            eprintln!("nothing was run");
            return Ok(ExitCode::FAILURE);
        }
    };
    let runner = Runner::new(open_store(db)?, 1);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let running: Vec<(String, String)> = runner
            .list()?
            .into_iter()
            .filter(|d| d.state == DeploymentState::Running)
            .map(|d| (d.id, d.cluster))
            .collect();
        let id = match runner.run_scenario(scenario, running) {
            Ok(id) => id,
            Err(problem) => {
                eprintln!("error: {problem}");
                return Ok(ExitCode::FAILURE);
            }
        };
        let results = loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let results = runner
                .scenario_results(&id)
                .map_err(|p| anyhow::anyhow!("{p}"))?;
            if results.finished {
                break results;
            }
        };
        if csv {
            print!("{}", scenario::csv(&results));
        } else {
            println!("scenario {}", results.scenario.name);
            for row in &results.rows {
                let steps: Vec<String> = row
                    .steps
                    .iter()
                    .zip(&results.scenario.steps)
                    .map(|(result, step)| match (&result.error, result.rto_ms) {
                        (Some(error), _) => format!("{}: failed ({error})", step.drill.name()),
                        (None, Some(rto)) => format!(
                            "{}: writes back after {:.1} s, {} lost",
                            step.drill.name(),
                            rto as f64 / 1000.0,
                            result
                                .writes_lost
                                .map_or_else(|| "?".into(), |l| l.to_string())
                        ),
                        (None, None) => format!("{}: done", step.drill.name()),
                    })
                    .collect();
                println!(
                    "  {} ({}): {}",
                    row.attendee,
                    row.deployment,
                    steps.join("; ")
                );
            }
        }
        let failed = results
            .rows
            .iter()
            .flat_map(|r| &r.steps)
            .any(|s| s.error.is_some());
        Ok::<_, anyhow::Error>(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}
