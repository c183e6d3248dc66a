//! `m1studio deploy`, `status` and `destroy`: the Docker runner from the command line, with a
//! progress display. Everything is checked before anything is created.

use crate::cli::{print_diagnostics, read_config, summary};
use crate::docker::{self, DockerExecutor};
use crate::engine::{Event, Executor as _, Secrets, argv, query, run_plan};
use anyhow::{Context as _, Result, bail};
use m1studio_shared::plan::{PlanOptions, Profile, node_image, plan};
use m1studio_shared::spec::PlatformSpec;
use m1studio_shared::{Configured, Kind, configure, has_errors};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// The configured design of a cluster directory, or `None` after printing why not.
fn load(path: &Path) -> Result<Option<Configured>> {
    let (file, draft, diagnostics) = read_config(path)?;
    let configured = draft
        .filter(|_| !has_errors(&diagnostics))
        .and_then(|d| configure(&d).0);
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

/// Deploys a docker design, showing each phase and step as it runs.
pub(crate) fn deploy_command(path: &Path, profile: Profile) -> Result<ExitCode> {
    let Some(configured) = load(path)? else {
        return Ok(ExitCode::FAILURE);
    };
    let design = &configured.design;
    if !matches!(design.platform(), PlatformSpec::Docker) {
        bail!(
            "m1studio deploy runs docker designs (--platform docker); this one is for {}: use config.yml with TPA",
            design.platform().platform().as_str()
        );
    }
    let options = PlanOptions {
        profile,
        edb_token: std::env::var_os("EDB_SUBSCRIPTION_TOKEN").is_some_and(|t| !t.is_empty()),
    };
    let mut problems = Vec::new();
    let plan = plan(design, &configured.topology, options)
        .map_err(|p| problems.extend(p))
        .ok();
    let image = node_image(design).map_err(|p| problems.push(p)).ok();
    let (Some(plan), Some(image), true) = (plan, image, problems.is_empty()) else {
        print_diagnostics(&problems);
        eprintln!("nothing was created");
        return Ok(ExitCode::FAILURE);
    };
    let network = design.network().map(|n| n.to_string()).unwrap_or_default();
    let cluster = design.cluster_name().to_string();
    runtime()?.block_on(async {
        let started = Instant::now();
        let docker = docker::connect().await?;
        if !docker::image_exists(&docker, &image.tag).await {
            docker::build_image(&docker, &image, &|line| eprintln!("  image: {line}")).await?;
        }
        let executor = DockerExecutor::new(docker, &cluster);
        eprintln!("creating {} containers for cluster {cluster}", configured.topology.instances.len());
        executor.create(&configured.topology, &network, &image.tag).await?;
        let secrets = Secrets::generate()?;
        let show = |event: Event| match event {
            Event::Phase { number, of, title } => eprintln!("[{number}/{of}] {title}"),
            Event::Started { .. } => {}
            Event::Finished { node, title, millis } => eprintln!("      {node}: {title} ({:.1} s)", millis as f64 / 1000.0),
            Event::Failed { node, title, reason } => eprintln!("  FAILED {node}: {title}\n{reason}"),
        };
        if let Err(err) = run_plan(&executor, &plan, &secrets, &show).await {
            eprintln!("the deployment failed; its containers are kept for inspection, and `m1studio destroy {}` removes them", path.display());
            return Err(err);
        }
        let postgres: Vec<&str> = configured
            .topology
            .instances
            .iter()
            .filter(|i| matches!(i.kind, Kind::Primary | Kind::Replica))
            .map(|i| i.name.as_str())
            .collect();
        println!("cluster {cluster} is running ({:.1} s)", started.elapsed().as_secs_f64());
        println!("  writes go to: postgresql://{}/postgres?target_session_attrs=read-write (inside the cluster's network)", postgres.join(","));
        println!("  status: m1studio status {}    remove: m1studio destroy {}", path.display(), path.display());
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Prints each node's container state, Postgres role, timeline and replay lag, and Barman's state.
pub(crate) fn status_command(path: &Path) -> Result<ExitCode> {
    let Some(configured) = load(path)? else {
        return Ok(ExitCode::FAILURE);
    };
    let cluster = configured.design.cluster_name().to_string();
    runtime()?.block_on(async {
        let executor = DockerExecutor::new(docker::connect().await?, &cluster);
        let containers = executor.containers().await?;
        if containers.is_empty() {
            println!("cluster {cluster} is not deployed on this Docker engine");
            return Ok(());
        }
        println!("{:<12} {:<17} {:<9} {:<8} {:>8} {:>12}", "NODE", "DESIGNED AS", "CONTAINER", "POSTGRES", "TIMELINE", "LAG (BYTES)");
        for (node, role, state) in &containers {
            let mut postgres = "-".to_string();
            let (mut timeline, mut lag) = ("-".to_string(), "-".to_string());
            if state == "running" && role != "barman" || configured.topology.get(node).is_some_and(|i| i.has(m1studio_shared::Role::Witness)) {
                match query(&executor, node, "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END || ' ' || (SELECT timeline_id FROM pg_control_checkpoint())").await.ok() {
                    Some(answer) => {
                        let mut parts = answer.split_whitespace();
                        postgres = parts.next().unwrap_or("-").to_string();
                        timeline = parts.next().unwrap_or("-").to_string();
                        if postgres == "standby" {
                            lag = query(&executor, node, "SELECT COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)").await.unwrap_or_else(|_| "-".into());
                        }
                    }
                    None if state == "running" => postgres = "down".into(),
                    None => {}
                }
            }
            println!("{node:<12} {role:<17} {state:<9} {postgres:<8} {timeline:>8} {lag:>12}");
        }
        if let Some(barman) = configured.topology.of_kind(Kind::Barman).next() {
            let primary = &configured.topology.instances[0].name;
            let check = executor.run(&barman.name, &argv(&["barman", "-q", "check", primary]), "barman", None).await.map(|o| o.code == 0).unwrap_or(false);
            let backups = executor.run(&barman.name, &argv(&["barman", "list-backups", "--minimal", primary]), "barman", None).await.map(|o| o.stdout.lines().count()).unwrap_or(0);
            println!("barman on {} backs up {primary}: check {}, {backups} backup(s)", barman.name, if check { "OK" } else { "FAILED" });
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Removes the cluster's containers, volumes and network.
pub(crate) fn destroy_command(path: &Path) -> Result<ExitCode> {
    let (file, draft, _) = read_config(path)?;
    let name = draft
        .map(|d| d.cluster_name)
        .filter(|n| !n.is_empty())
        .with_context(|| format!("{} has no cluster_name", file.display()))?;
    runtime()?.block_on(async {
        let executor = DockerExecutor::new(docker::connect().await?, &name);
        let removed = executor.destroy().await?;
        println!("cluster {name}: removed {removed} containers, volumes and networks");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
