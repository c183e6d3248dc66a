//! `m1studio scenario run`: a scenario on every running cluster, as the trainer's room runs it,
//! with its results as a table (and as CSV with `--csv`): the clusters of this machine's store,
//! or, with `--server`, those of a workshop's server through its API.

use super::files::{open_store, print_diagnostics};
use crate::runner::Runner;
use anyhow::{Context as _, Result, bail};
use m1studio_shared::api::{DeploymentState, ErrorBody};
use m1studio_shared::scenario::{self, Results, Scenario};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The scenario asked for, and how to print its results.
pub(crate) struct Chosen<'a> {
    /// A scenario file.
    pub file: Option<&'a Path>,
    /// Or a preset's name.
    pub preset: Option<&'a str>,
    /// CSV rather than a table.
    pub csv: bool,
}

/// The server a scenario runs on, and how to reach it as its trainer.
pub(crate) struct Remote {
    /// Its address, such as `https://room.example:8443`.
    pub url: String,
    /// A file whose first line is the token (or M1STUDIO_TOKEN).
    pub token_file: Option<PathBuf>,
    /// A certificate to trust for its HTTPS.
    pub ca_cert: Option<PathBuf>,
}

/// What `chosen` asks for: the scenario file's text or the preset's name, checked here as the
/// server would check it. `None` once the problems are printed.
enum Asked {
    Yaml(String, Scenario),
    Preset(Scenario),
}

fn asked(chosen: &Chosen) -> Result<Option<Asked>> {
    let read = match (chosen.file, chosen.preset) {
        (Some(file), None) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            scenario::read(&text).map(|s| Asked::Yaml(text, s))
        }
        (None, Some(name)) => scenario::preset(name)
            .map(Asked::Preset)
            .map_err(|d| vec![d]),
        _ => {
            eprintln!("error: give a scenario file, or --preset NAME (one of them)");
            for preset in scenario::presets() {
                eprintln!("  preset: {}", preset.name);
            }
            return Ok(None);
        }
    };
    match read {
        Ok(asked) => Ok(Some(asked)),
        Err(problems) => {
            print_diagnostics(&problems);
            eprintln!("nothing was run");
            Ok(None)
        }
    }
}

/// Runs the scenario `chosen` on the running clusters of the store at `db`, and prints its
/// results.
pub(crate) fn run_command(chosen: &Chosen, db: Option<&Path>) -> Result<ExitCode> {
    let scenario = match asked(chosen)? {
        Some(Asked::Yaml(_, scenario) | Asked::Preset(scenario)) => scenario,
        None => return Ok(ExitCode::FAILURE),
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
        let mut progress = Progress::default();
        let results = loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let results = runner
                .scenario_results(&id)
                .map_err(|p| anyhow::anyhow!("{p}"))?;
            progress.show(&results);
            if results.finished {
                break results;
            }
        };
        Ok::<_, anyhow::Error>(finish(&results, chosen.csv))
    })
}

/// Runs the scenario `chosen` on every running cluster of the server `remote`, as its trainer,
/// and prints its results as the server gives them.
pub(crate) fn run_remote(chosen: &Chosen, remote: &Remote) -> Result<ExitCode> {
    let body = match asked(chosen)? {
        Some(Asked::Yaml(text, _)) => serde_json::json!({ "yaml": text }),
        Some(Asked::Preset(scenario)) => serde_json::json!({ "preset": scenario.name }),
        None => return Ok(ExitCode::FAILURE),
    };
    let server = Server::new(remote)?;
    let started: serde_json::Value = server.call("POST", "/api/scenarios", Some(&body))?;
    let Some(id) = started["id"].as_str() else {
        bail!("{} answered without a scenario id: {started}", remote.url);
    };
    eprintln!("scenario {id} started on {}", remote.url);
    let mut progress = Progress::default();
    let results = loop {
        std::thread::sleep(Duration::from_secs(1));
        let results: Results = server.call("GET", &format!("/api/scenarios/{id}"), None)?;
        progress.show(&results);
        if results.finished {
            break results;
        }
    };
    Ok(finish(&results, chosen.csv))
}

/// A server's API, called as its trainer.
struct Server {
    agent: ureq::Agent,
    url: String,
    token: Option<String>,
}

impl Server {
    fn new(remote: &Remote) -> Result<Server> {
        let url = remote.url.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!(
                "--server {url}: give the server's address with its scheme, such as https://room.example:8443 or http://127.0.0.1:8080"
            );
        }
        let token = match &remote.token_file {
            Some(file) => {
                crate::store::check_private(file)?;
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                Some(text.lines().next().unwrap_or_default().trim().to_string())
            }
            None => std::env::var("M1STUDIO_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        };
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)));
        if let Some(file) = &remote.ca_cert {
            let pem = std::fs::read(file)
                .with_context(|| format!("cannot read --ca-cert {}", file.display()))?;
            let certificate = ureq::tls::Certificate::from_pem(&pem).map_err(|e| {
                anyhow::anyhow!(
                    "--ca-cert {}: not a PEM certificate ({e}): give the server's certificate, as --tls-cert took it",
                    file.display()
                )
            })?;
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&[certificate]))
                    .build(),
            );
        }
        Ok(Server {
            agent: config.build().into(),
            url,
            token,
        })
    }

    /// `method path` with `body`, read as `T`; a refusal is an error that says what the server
    /// said, and what to do about a token it did not take.
    fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        let url = format!("{}{path}", self.url);
        let bearer = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let answer = match (method, body) {
            ("POST", Some(body)) => {
                let mut request = self.agent.post(&url);
                if let Some(bearer) = &bearer {
                    request = request.header("Authorization", bearer);
                }
                request
                    .content_type("application/json")
                    .send(body.to_string())
            }
            _ => {
                let mut request = self.agent.get(&url);
                if let Some(bearer) = &bearer {
                    request = request.header("Authorization", bearer);
                }
                request.call()
            }
        };
        let mut answer = answer.map_err(|e| anyhow::anyhow!("cannot reach {url}: {e}"))?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .read_to_string()
            .with_context(|| format!("cannot read the answer of {url}"))?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text)
                .with_context(|| format!("{url} answered what m1studio does not read: {text}"));
        }
        let refusal = serde_json::from_str::<ErrorBody>(&text).ok();
        if let Some(body) = &refusal
            && !body.error.diagnostics.is_empty()
        {
            print_diagnostics(&body.error.diagnostics);
        }
        let message = refusal.map_or(text, |b| b.error.message);
        match status {
            401 => bail!(
                "{} refused the token ({message}): set M1STUDIO_TOKEN, or give --token-file, with the trainer's token",
                self.url
            ),
            403 => bail!(
                "{} refused: {message} (a scenario is the trainer's)",
                self.url
            ),
            _ => bail!("{} answered {status}: {message}", self.url),
        }
    }
}

/// What has been said of a scenario's steps so far, to say only what is new.
#[derive(Default)]
struct Progress {
    done: Vec<usize>,
}

impl Progress {
    /// Says each step that more clusters have finished since the last time (a row holds the
    /// steps that are over).
    fn show(&mut self, results: &Results) {
        let rows = results.rows.len();
        for (index, step) in results.scenario.steps.iter().enumerate() {
            let done = results
                .rows
                .iter()
                .filter(|r| r.steps.len() > index)
                .count();
            if self.done.len() <= index {
                self.done.push(0);
            }
            if done > self.done[index] {
                self.done[index] = done;
                eprintln!(
                    "  t+{} {}: {done} of {rows} clusters done",
                    step.at,
                    step.drill.name()
                );
            }
        }
    }
}

/// Prints `results` (as CSV when `csv`); failure when a step failed anywhere.
fn finish(results: &Results, csv: bool) -> ExitCode {
    if csv {
        print!("{}", scenario::csv(results));
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
            let who = if row.attendee.is_empty() {
                String::new()
            } else {
                format!("{} ", row.attendee)
            };
            println!("  {who}({}): {}", row.deployment, steps.join("; "));
        }
    }
    let failed = results
        .rows
        .iter()
        .flat_map(|r| &r.steps)
        .any(|s| s.error.is_some());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
