//! Cutting the primary off the cluster's network, through the API of the real server on a
//! real Docker engine. In a test binary of its own, so that no other deployment shares the
//! machine while the failover manager's timing is measured.

use anyhow::{Context as _, Result};
use m1studio::engine::{Executor as _, argv};
use m1studio::target::docker::DockerExecutor;
use m1studio_e2e::rest::{call, get, moments, wait_for_event, wait_for_signal};
use m1studio_e2e::{Server, destroy_on_failure, docker_or_skip};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_cut_off_the_network_is_replaced_and_fenced_before_it_comes_back() -> Result<()> {
    let Some(docker) = docker_or_skip("the isolation drill test").await? else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("m1studio-e2e-iso-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cluster = format!("iso{}", std::process::id() % 100000);
    let executor_docker = docker.clone();
    let executor = DockerExecutor::new(docker, &cluster);
    let server = Server::start_with_store(&dir.join("m1studio.db"))?;
    let result = destroy_on_failure(&executor, async {
        let design = json!({
            "link": format!("v=2&name={cluster}&pg=15&fm=repmgr&platform=docker&net=10.221.0.0%2F24"),
        });
        let (status, created) = call(server.addr, "POST", "/api/deployments", Some(design))?;
        anyhow::ensure!(status == 202, "{created}");
        anyhow::ensure!(created["profile"] == "fast", "{created}");
        let id = created["id"].as_str().context("id")?.to_string();
        wait_for_event(server.addr, &id, Duration::from_secs(300), |e| {
            e["kind"] == "state" && e["title"] == "running"
        })?;
        // Every repmgrd watches before the fault is made.
        let executor_ready = DockerExecutor::new(executor_docker.clone(), &cluster);
        let started = std::time::Instant::now();
        loop {
            let shown = executor_ready
                .run(
                    "kestrel",
                    &argv(&["repmgr", "-f", "/etc/repmgr.conf", "service", "status"]),
                    "postgres",
                    None,
                )
                .await?;
            // The columns: ID | Name | Role | Status | Upstream | repmgrd | PID | …
            let watching = shown
                .stdout
                .lines()
                .filter(|l| l.split('|').nth(5).is_some_and(|c| c.trim() == "running"))
                .count();
            if watching >= 3 {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "repmgrd is not running everywhere: {}",
                shown.stdout
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (status, refused) = call(
            server.addr,
            "POST",
            &format!("/api/deployments/{id}/drills"),
            Some(json!({"action": "isolate-primary", "seconds": 1})),
        )?;
        anyhow::ensure!(status == 400, "{refused}");
        anyhow::ensure!(
            refused["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("seconds:"),
            "{refused}"
        );
        let (status, drill) = call(
            server.addr,
            "POST",
            &format!("/api/deployments/{id}/drills"),
            Some(json!({"action": "isolate-primary", "seconds": 30})),
        )?;
        anyhow::ensure!(status == 202, "{drill}");
        wait_for_signal(server.addr, &id, Duration::from_secs(120), "report", 1)?;
        let reports = get(server.addr, &format!("/api/deployments/{id}/drills"))?;
        let report = &reports[0];
        anyhow::ensure!(report["action"] == "isolate-primary", "{report}");
        anyhow::ensure!(report["new_primary"] == "quartz", "{report}");
        anyhow::ensure!(report["writes_lost"] == 0, "{report}");
        anyhow::ensure!(
            moments(report, "fenced").iter().any(|m| m["node"] == "kestrel"),
            "{report}"
        );
        let status = get(server.addr, &format!("/api/deployments/{id}/status"))?;
        anyhow::ensure!(status["primary"] == "quartz", "{status}");
        anyhow::ensure!(status["nodes"][0]["machine"] == "running", "{status}");
        anyhow::ensure!(status["nodes"][0]["postgres"] == "down", "never a second primary: {status}");
        let (status, destroyed) = call(
            server.addr,
            "DELETE",
            &format!("/api/deployments/{id}"),
            None,
        )?;
        anyhow::ensure!(status == 200, "{destroyed}");
        anyhow::Ok(())
    })
    .await;
    assert!(executor.containers().await?.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
    result
}
