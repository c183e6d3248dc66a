//! `m1studio deploy`, `status`, `drill` and `destroy`: the runner from the command line, with a
//! progress display. They use the same store as the server, so a cluster deployed here shows
//! there, whether it runs in containers or on existing hosts.

use super::files::{config_file, open_store, print_diagnostics, read_config, summary};
use crate::engine::Secrets;
use crate::runner::{Problem, Runner, cluster_status};
use crate::target::{SshAccess, Target};
use anyhow::{Context as _, Result};
use futures_util::StreamExt as _;
use m1studio_shared::api::{
    ClusterStatus, DeployRequest, DeploymentState, Drill, EventKind, Failure, PostgresRole, Signal,
};
use m1studio_shared::plan::Profile;
use m1studio_shared::spec::PlatformSpec;
use m1studio_shared::{Configured, configure, has_errors};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// What a refused bare deployment leaves.
const UNCHANGED: &str = "nothing was changed on any host";

/// The configured design of a cluster directory, or `None` after printing why not.
fn load(path: &Path) -> Result<Option<(m1studio_shared::Draft, Configured)>> {
    let (file, draft, diagnostics) = read_config(path)?;
    let configured = draft
        .filter(|_| !has_errors(&diagnostics))
        .and_then(|d| configure(&d).0.map(|c| (d, c)));
    if configured.is_none() {
        print_diagnostics(&diagnostics);
        eprintln!(
            "{} has problems ({}): nothing was created",
            file.display(),
            summary(&diagnostics)
        );
    }
    Ok(configured)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

/// Prints a plan's phase, finished step or failed step, as the deployment's events say them.
fn print_step(kind: EventKind, node: &str, title: &str, detail: &str) {
    match kind {
        EventKind::Phase => eprintln!("[{detail}] {title}"),
        EventKind::Finished => eprintln!("      {node}: {title} ({detail})"),
        EventKind::Failed => eprintln!("  FAILED {node}: {title}\n{detail}"),
        _ => {}
    }
}

/// Prints a refused request, diagnostics one per line, then `outcome` where the design was
/// refused.
fn report(problem: Problem, outcome: &str) -> ExitCode {
    match problem {
        Problem::Invalid(diagnostics) => {
            print_diagnostics(&diagnostics);
            eprintln!("{outcome}");
        }
        Problem::Refused { diagnostics, .. } => print_diagnostics(&diagnostics),
        other => eprintln!("error: {other}"),
    }
    ExitCode::FAILURE
}

/// The runner of the command line: one deployment at a time, and the hosts of bare designs
/// reached with `ssh_key` (otherwise ssh's own keys), their keys learnt into the cluster
/// directory of `path`.
fn runner(path: &Path, ssh_key: Option<&Path>, db: Option<&Path>) -> Result<Runner> {
    Ok(Runner::with_ssh(
        open_store(db)?,
        1,
        Some(access(path, ssh_key)),
    ))
}

/// How the command line reaches a bare design's hosts: with `ssh_key`, their keys learnt into
/// the cluster directory of `path`.
fn access(path: &Path, ssh_key: Option<&Path>) -> SshAccess {
    let known_hosts = cluster_dir(path).join("known_hosts");
    SshAccess {
        key: ssh_key.map(Path::to_path_buf),
        known_hosts: Arc::new(move |_: &str| known_hosts.clone()),
    }
}

/// Deploys a design, showing each phase and step as it runs: a docker design as containers on
/// the local engine, a bare one on its hosts over SSH (every host checked before any is changed,
/// its passwords kept in the cluster directory).
pub(crate) fn deploy_command(
    path: &Path,
    profile: Option<Profile>,
    ssh_key: Option<&Path>,
    db: Option<&Path>,
) -> Result<ExitCode> {
    let Some((draft, configured)) = load(path)? else {
        return Ok(ExitCode::FAILURE);
    };
    let bare = matches!(configured.design.platform(), PlatformSpec::Bare);
    if !bare && ssh_key.is_some() {
        eprintln!(
            "error: --ssh-key is for bare designs (--platform bare), whose hosts m1studio reaches over SSH; this design is for {}: leave --ssh-key out",
            configured.design.platform().platform().as_str()
        );
        return Ok(ExitCode::FAILURE);
    }
    let outcome = if bare {
        UNCHANGED
    } else {
        "nothing was created"
    };
    if let Some(key) = ssh_key.filter(|k| !k.is_file()) {
        eprintln!(
            "error: --ssh-key {}: no such file; give the private key that logs in to the hosts as root",
            key.display()
        );
        if let Err(missing) = m1studio_shared::api::bare_hosts(&configured.topology) {
            print_diagnostics(&missing);
        }
        eprintln!("{outcome}");
        return Ok(ExitCode::FAILURE);
    }
    let secrets_file = cluster_dir(path).join(SECRETS_FILE);
    // A bare cluster keeps its passwords in its directory: those of an earlier run, or new ones,
    // written once the deployment is accepted.
    let (secrets, new_secrets) = if bare {
        match read_secrets(&secrets_file)? {
            Some(secrets) => (Some(secrets), None),
            None => {
                let secrets = Secrets::generate()?;
                let entries = secrets
                    .entries()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (Some(secrets), Some(entries))
            }
        }
    } else {
        (None, None)
    };
    let runner = runner(path, ssh_key, db)?;
    runtime()?.block_on(async {
        let request = DeployRequest {
            draft: Some(draft),
            profile,
            ..DeployRequest::default()
        };
        if bare {
            eprintln!(
                "checking the {} hosts of cluster {} over SSH",
                configured.topology.instances.len(),
                configured.design.cluster_name()
            );
        }
        let deployment = match runner.submit_with(request, secrets).await {
            Ok(deployment) => deployment,
            Err(problem) => return Ok(report(problem, outcome)),
        };
        if let Some(entries) = new_secrets {
            write_secrets(&secrets_file, &entries)?;
        }
        eprintln!(
            "deployment {} of cluster {} ({} profile)",
            deployment.id,
            deployment.cluster,
            deployment.profile.as_str()
        );
        let started = std::time::Instant::now();
        let mut events = Box::pin(runner.follow(&deployment.id, 0));
        while let Some(event) = events.next().await {
            let node = event.node.as_deref().unwrap_or_default();
            let detail = event.detail.as_deref().unwrap_or_default();
            match event.kind {
                EventKind::Phase | EventKind::Finished | EventKind::Failed => print_step(event.kind, node, &event.title, detail),
                EventKind::Progress => eprintln!("  {}{}", event.title, if detail.is_empty() { String::new() } else { format!(": {detail}") }),
                EventKind::State => match DeploymentState::parse(&event.title) {
                    Some(DeploymentState::Running) if bare => {
                        println!("cluster {} is running on its hosts ({:.1} s)", deployment.cluster, started.elapsed().as_secs_f64());
                        println!("  writes go to: {}", deployment.connections.read_write);
                        println!("  passwords: {} (readable by you only)", secrets_file.display());
                        println!("  status: m1studio status {}", path.display());
                        return Ok(ExitCode::SUCCESS);
                    }
                    Some(DeploymentState::Running) => {
                        println!("cluster {} is running", deployment.cluster);
                        println!("  writes go to: {} (inside the cluster's network)", deployment.connections.read_write);
                        println!("  status: m1studio status {}    remove: m1studio destroy {}", path.display(), path.display());
                        return Ok(ExitCode::SUCCESS);
                    }
                    Some(DeploymentState::Failed) => {
                        eprintln!("the deployment failed: {detail}");
                        if bare {
                            eprintln!("the hosts keep what was done, for inspection; `m1studio destroy {}` forgets the deployment", path.display());
                        } else {
                            eprintln!("its containers are kept for inspection, and `m1studio destroy {}` removes them", path.display());
                        }
                        return Ok(ExitCode::FAILURE);
                    }
                    _ => {}
                },
                EventKind::Started | EventKind::Drill | EventKind::Observed => {}
            }
        }
        Ok::<_, anyhow::Error>(ExitCode::FAILURE)
    })
}

/// Prints each node's machine state (container, or host over SSH), Postgres role, timeline and
/// replay lag, and Barman's state.
pub(crate) fn status_command(
    path: &Path,
    ssh_key: Option<&Path>,
    db: Option<&Path>,
) -> Result<ExitCode> {
    let Some((_, configured)) = load(path)? else {
        return Ok(ExitCode::FAILURE);
    };
    let cluster = configured.design.cluster_name().to_string();
    let bare = matches!(configured.design.platform(), PlatformSpec::Bare);
    let runner = runner(path, ssh_key, db)?;
    let machine = if bare { "HOST" } else { "CONTAINER" };
    let record = runner.store().live_by_cluster("", &cluster)?;
    runtime()?.block_on(async {
        let status = match record {
            Some(record) => {
                println!(
                    "deployment {}: {}{}",
                    record.id,
                    record.state.as_str(),
                    record.error.map(|e| format!(" ({e})")).unwrap_or_default()
                );
                match runner.status(&record.id).await {
                    Ok(status) => status,
                    Err(problem) => return Ok(report(problem, "")),
                }
            }
            // A cluster this store does not know: what its target shows.
            None => {
                let access = access(path, ssh_key);
                let target = match Target::connect(&configured, &cluster, Some(&access)).await {
                    Ok(target) => target,
                    Err(unreachable) => return Ok(report(unreachable.into(), "")),
                };
                if !bare && target.machines().await?.is_empty() {
                    println!("cluster {cluster} is not deployed on this Docker engine");
                    return Ok(ExitCode::SUCCESS);
                }
                cluster_status(&target, &configured, true).await?
            }
        };
        print_status(&status, machine);
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    })
}

/// The status table: `machine` heads the column of each node's container or host state.
fn print_status(status: &ClusterStatus, machine: &str) {
    println!(
        "{:<12} {:<17} {:<9} {:<8} {:>8} {:>12} {:<12}",
        "NODE", "DESIGNED AS", machine, "POSTGRES", "TIMELINE", "LAG (BYTES)", "UPSTREAM"
    );
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for node in &status.nodes {
        let postgres = node.postgres.map(|p| match p {
            PostgresRole::Primary => "primary",
            PostgresRole::Standby => "standby",
            PostgresRole::Down => "down",
        });
        println!(
            "{:<12} {:<17} {:<9} {:<8} {:>8} {:>12} {:<12}",
            node.name,
            node.designed.as_str(),
            node.machine.as_str(),
            postgres.unwrap_or("-"),
            dash(node.timeline.map(|t| t.to_string())),
            dash(node.lag_bytes.map(|l| l.to_string())),
            dash(node.upstream.clone())
        );
    }
    for node in &status.nodes {
        if let Some(service) = &node.service {
            let routes = service.routes_text();
            println!(
                "{} on {}: {}{}",
                node.designed.as_str(),
                node.name,
                service.summary,
                if routes.is_empty() {
                    String::new()
                } else {
                    format!(" ({routes})")
                }
            );
        }
    }
    if let Some(barman) = &status.barman {
        println!(
            "barman on {} backs up {}: check {}, {} backup(s)",
            barman.node,
            barman.backs_up,
            if barman.check_ok { "OK" } else { "FAILED" },
            barman.backups
        );
        if let Some(warning) = &barman.warning {
            println!("warning: {warning}");
        }
    }
}

/// Runs `drill` on the cluster's running deployment, prints what happens, and for a fault
/// drill, its report.
pub(crate) fn drill_command(
    path: &Path,
    drill: Drill,
    ssh_key: Option<&Path>,
    db: Option<&Path>,
) -> Result<ExitCode> {
    // `RUST_LOG=m1studio::drill=debug` logs each observation of the drill as a JSON line.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .without_time()
            .with_target(false)
            .with_level(false)
            .try_init();
    }
    let Some((_, configured)) = load(path)? else {
        return Ok(ExitCode::FAILURE);
    };
    let cluster = configured.design.cluster_name().to_string();
    let runner = runner(path, ssh_key, db)?;
    let Some(record) = runner.store().live_by_cluster("", &cluster)? else {
        eprintln!(
            "error: cluster {cluster} has no deployment in this store: deploy it with `m1studio deploy {}`",
            path.display()
        );
        return Ok(ExitCode::FAILURE);
    };
    let id = record.id.clone();
    runtime()?.block_on(async {
        let after = runner.store().events(&id, 0)?.last().map_or(0, |e| e.seq);
        let reports = runner.store().reports(&id)?.len();
        let fault = m1studio_shared::drill::is_fault(&drill);
        let started = match runner.drill(&id, drill.clone()).await {
            Ok(started) => started,
            Err(problem) => return Ok(report(problem, "")),
        };
        eprintln!("{}", started.message);
        // What to wait for: the report, Barman's check, a rejoin; or nothing.
        let Some(until) = started.until else {
            return Ok(ExitCode::SUCCESS);
        };
        let mut events = Box::pin(runner.follow(&id, after));
        while let Some(event) = events.next().await {
            let detail = event.detail.as_deref().unwrap_or_default();
            match event.kind {
                EventKind::Drill | EventKind::Observed => {
                    eprintln!(
                        "  {} {}",
                        event.title,
                        if detail.is_empty() {
                            String::new()
                        } else {
                            format!("({detail})")
                        }
                    );
                }
                EventKind::Failed => {
                    eprintln!("  FAILED: {}\n{detail}", event.title);
                    return Ok(ExitCode::FAILURE);
                }
                _ => {}
            }
            if event.signal == Some(until) {
                break;
            }
        }
        if let Some(report) = runner.store().reports(&id)?.get(reports).filter(|_| fault) {
            let seconds = |ms: Option<u64>| {
                ms.map_or_else(
                    || "never".to_string(),
                    |ms| format!("{:.1} s", ms as f64 / 1000.0),
                )
            };
            println!(
                "drill {}: {} of {}",
                report.number, report.action, report.target
            );
            println!(
                "  new primary:          {}",
                report.new_primary.as_deref().unwrap_or("none")
            );
            println!("  writes resumed after: {}", seconds(report.rto_ms));
            println!("  no writes for:        {}", seconds(report.outage_ms));
            println!(
                "  writes acknowledged:  {}, refused: {}",
                report.writes_acknowledged, report.writes_failed
            );
            println!(
                "  acknowledged lost:    {}",
                report.loss().unwrap_or_else(|| "not counted".to_string())
            );
            if let Some(note) = &report.note {
                println!("  note: {note}");
            }
            for moment in &report.timeline {
                println!(
                    "  +{:>5.1} s  {}",
                    moment.after_ms as f64 / 1000.0,
                    moment.what
                );
            }
            // A drill with Barman following goes on after the report.
            if m1studio_shared::drill::retargets_barman(&drill) && report.new_primary.is_some() {
                while let Some(event) = events.next().await {
                    match event.kind {
                        EventKind::Failed => {
                            eprintln!(
                                "  FAILED: {}\n{}",
                                event.title,
                                event.detail.unwrap_or_default()
                            );
                            return Ok(ExitCode::FAILURE);
                        }
                        _ if event.signal == Some(Signal::BarmanFollows) => {
                            eprintln!("  {}", event.title);
                            break;
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    })
}

/// Removes the cluster's containers, volumes and network, and marks its deployment destroyed;
/// a bare cluster's deployment is only forgotten, its hosts left as they are.
pub(crate) fn destroy_command(path: &Path, db: Option<&Path>) -> Result<ExitCode> {
    let (file, draft, _) = read_config(path)?;
    let bare = draft
        .as_ref()
        .is_some_and(|d| d.platform.as_deref() == Some("bare"));
    let name = draft
        .map(|d| d.cluster_name)
        .filter(|n| !n.is_empty())
        .with_context(|| format!("{} has no cluster_name", file.display()))?;
    let runner = runner(path, None, db)?;
    let record = runner.store().live_by_cluster("", &name)?;
    runtime()?.block_on(async {
        let mut removed = 0;
        if let Some(record) = &record {
            if let Some(pid) = runner.run_elsewhere(record) {
                eprintln!(
                    "cluster {name}: deployment {} is {} in another m1studio process (pid {pid}); destroy it there (DELETE /api/deployments/{}), or stop that process first",
                    record.id,
                    record.state.as_str(),
                    record.id
                );
                return Ok(ExitCode::FAILURE);
            }
            if record.state.in_progress() {
                // A deployment that a crash interrupted.
                runner.store().set_state(
                    &record.id,
                    DeploymentState::Failed,
                    Some((
                        Failure::Interrupted,
                        "its process stopped while it was under way; destroyed from the command line",
                    )),
                )?;
            }
            match runner.destroy(&record.id).await {
                Ok((_, count)) => removed += count,
                Err(problem) => return Ok(report(problem, "")),
            }
        }
        if bare {
            match record {
                Some(record) => println!("cluster {name}: deployment {} is forgotten", record.id),
                None => println!("cluster {name} has no deployment in this store"),
            }
            println!(
                "  m1studio never removes anything from existing hosts, whose data it did not make disposable: stop the services and remove the data directories on the hosts yourself"
            );
            return Ok(ExitCode::SUCCESS);
        }
        // What no deployment records (a store that was lost, say) goes too.
        removed += crate::target::remove_containers(&name).await?;
        println!("cluster {name}: removed {removed} containers, volumes and networks");
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    })
}

/// Where a bare cluster's passwords are kept: in its directory, readable by its owner only.
const SECRETS_FILE: &str = "m1studio.secrets";

/// The passwords and SSH key of an earlier run, if there was one.
fn read_secrets(file: &Path) -> Result<Option<Secrets>> {
    if std::fs::symlink_metadata(file).is_err() {
        return Ok(None);
    }
    crate::store::check_private(file)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let entries: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not m1studio's secrets file", file.display()))?;
    Ok(Some(Secrets::from_entries(entries)))
}

/// Writes new secrets, readable by their owner only, never over an existing file.
fn write_secrets(file: &Path, entries: &std::collections::BTreeMap<String, String>) -> Result<()> {
    crate::store::write_private(file, &serde_json::to_string_pretty(entries)?)
}

/// The cluster directory of `path` (the directory, or the one that holds the config.yml given).
fn cluster_dir(path: &Path) -> std::path::PathBuf {
    config_file(path)
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}
