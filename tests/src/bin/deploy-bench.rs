//! Measures the Docker runner with the node image already built: deploying the default design
//! (1 cascaded replica) and one with 8, the failover time with the fast profile (primary
//! killed until the replica accepts writes), and the kill-primary drill's report (recovery time
//! seen by a writer, and rows lost) for the fast and the normal profile. Run by
//! `cargo xtask bench-deploy`.

use anyhow::{Context as _, Result, bail};
use m1studio::docker::{DockerExecutor, connect};
use m1studio::engine::query;
use m1studio::runner::Runner;
use m1studio::store::Store;
use m1studio_shared::api::{DeployRequest, DeploymentState, Drill};
use m1studio_shared::plan::Profile;
use std::time::{Duration, Instant};

/// Runs the real binary, failing with its output when it fails.
fn m1studio(args: &[&str], dir: &std::path::Path) -> Result<()> {
    let out = m1studio_e2e::m1studio(args, dir)?;
    if !out.status.success() {
        bail!(
            "m1studio {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let docker = connect().await?;
    let dir = std::env::temp_dir().join(format!("m1studio-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // Warm up: builds the node image if it is missing, so that it is not measured.
    for (name, n, network) in [
        ("benchwarm", 0, "10.213.0.0/24"),
        ("bench1", 1, "10.214.0.0/24"),
        ("bench8", 8, "10.215.0.0/24"),
    ] {
        let n = n.to_string();
        m1studio(
            &[
                "configure",
                name,
                "-a",
                "M1",
                "--postgresql",
                "15",
                "--enable-repmgr",
                "--platform",
                "docker",
                "--network",
                network,
                "--num-cascaded-replicas",
                &n,
            ],
            &dir,
        )?;
        let started = Instant::now();
        m1studio(&["deploy", name, "--profile", "fast"], &dir)?;
        let took = started.elapsed();
        if name != "benchwarm" {
            println!(
                "deploy with {n} cascaded replica(s), image built: {:.1} s",
                took.as_secs_f64()
            );
        }
        if name == "bench1" {
            let executor = DockerExecutor::new(docker.clone(), name);
            query(&executor, "kestrel", "CREATE TABLE bench (i int)").await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            executor.kill("kestrel").await?;
            let killed = Instant::now();
            while query(&executor, "quartz", "INSERT INTO bench VALUES (1)")
                .await
                .is_err()
            {
                if killed.elapsed() > Duration::from_secs(60) {
                    bail!("no failover within 60 s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            println!(
                "failover (fast profile), primary killed to the replica accepting writes: {:.1} s",
                killed.elapsed().as_secs_f64()
            );
        }
        m1studio(&["destroy", name], &dir).context("destroy")?;
    }
    for profile in [Profile::Fast, Profile::Normal] {
        drill(profile).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Deploys the default design with `profile` through the runner, kills its primary with the
/// drill (a writer inserting rows throughout), and prints the report.
async fn drill(profile: Profile) -> Result<()> {
    let runner = Runner::new(Store::in_memory()?, 1);
    let name = format!("rto{}", profile.as_str());
    let request = DeployRequest {
        link: Some(format!(
            "v=1&name={name}&pg=15&fm=repmgr&platform=docker&net=10.219.0.0%2F24"
        )),
        profile: Some(profile),
        ..DeployRequest::default()
    };
    let deployment = runner
        .submit(request)
        .await
        .map_err(|p| anyhow::anyhow!("{p}"))?;
    let id = deployment.id.clone();
    let result = async {
        let started = Instant::now();
        loop {
            let state = runner.get(&id).map_err(|p| anyhow::anyhow!("{p}"))?.state;
            match state {
                DeploymentState::Running => break,
                DeploymentState::Failed => bail!("the deployment failed"),
                _ if started.elapsed() > Duration::from_secs(300) => bail!("not running after 300 s"),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        runner
            .drill(&id, Drill::KillPrimary { retarget_barman: false })
            .await
            .map_err(|p| anyhow::anyhow!("{p}"))?;
        let started = Instant::now();
        let report = loop {
            if let Some(report) = runner.store().reports(&id)?.into_iter().find(|r| r.finished) {
                break report;
            }
            if started.elapsed() > Duration::from_secs(240) {
                bail!("no drill report after 240 s");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        println!(
            "kill-primary drill ({} profile, worst case {} s): writes resumed after {}, promotion after {}, {} writes acknowledged, {} lost",
            profile.as_str(),
            profile.worst_case_failover_secs(),
            report.rto_ms.map_or_else(|| "never".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
            report
                .timeline
                .iter()
                .find(|m| m.what.contains("new primary"))
                .map_or_else(|| "never".into(), |m| format!("{:.1} s", m.after_ms as f64 / 1000.0)),
            report.writes_acknowledged,
            report.writes_lost.map_or_else(|| "?".into(), |l| l.to_string()),
        );
        anyhow::Ok(())
    }
    .await;
    let _ = runner.destroy(&id).await;
    result
}
