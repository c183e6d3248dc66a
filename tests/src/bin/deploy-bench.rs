//! Measures the Docker runner with the node image already built: deploying the default design
//! (1 cascaded replica) and one with 8, and the failover time with the demo profile (primary
//! killed until the replica accepts writes). Run by `cargo xtask bench-deploy`.

use anyhow::{Context as _, Result, bail};
use m1studio::docker::{DockerExecutor, connect};
use m1studio::engine::query;
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
                "failover (demo profile), primary killed to the replica accepting writes: {:.1} s",
                killed.elapsed().as_secs_f64()
            );
        }
        m1studio(&["destroy", name], &dir).context("destroy")?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
