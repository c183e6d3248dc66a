//! The server killed (SIGKILL) at a random moment of each of 20 deployments, on the real Docker
//! engine. After each restart the deployment is running, or failed and destroyable; after a
//! final destroy of all, nothing of any of them is left: no container, volume or network.
//! The moments come from a seed that is printed, and taken from `CHAOS_SEED` when set.

use anyhow::{Context as _, Result, ensure};
use m1studio::target::docker::CLUSTER_LABEL;
use m1studio_e2e::rest::{call, get};
use m1studio_e2e::{Server, docker_or_skip};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

const DEPLOYMENTS: u64 = 20;

/// A small generator of moments: enough for a reproducible test, and no dependency.
struct Moments(u64);

impl Moments {
    /// The next moment, in milliseconds below `below`.
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// What is left on the engine of clusters whose names begin with `prefix`.
async fn left(docker: &m1studio::target::docker::Docker, prefix: &str) -> Result<Vec<String>> {
    let filters = HashMap::from([("label".to_string(), vec![CLUSTER_LABEL.to_string()])]);
    let ours = |labels: Option<&HashMap<String, String>>| {
        labels
            .and_then(|l| l.get(CLUSTER_LABEL))
            .is_some_and(|c| c.starts_with(prefix))
    };
    let mut found = Vec::new();
    let containers = docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await?;
    found.extend(
        containers
            .into_iter()
            .filter(|c| ours(c.labels.as_ref()))
            .map(|c| format!("container {:?}", c.names)),
    );
    let volumes = docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await?;
    found.extend(
        volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| ours(Some(&v.labels)))
            .map(|v| format!("volume {}", v.name)),
    );
    let networks = docker
        .list_networks(Some(
            bollard::query_parameters::ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await?;
    found.extend(
        networks
            .into_iter()
            .filter(|n| ours(n.labels.as_ref()))
            .map(|n| format!("network {:?}", n.name)),
    );
    Ok(found)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_killed_at_random_moments_of_20_deployments_leaves_nothing_behind() -> Result<()>
{
    let Some(docker) = docker_or_skip("the chaos test").await? else {
        return Ok(());
    };
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("chaos: seed {seed} (CHAOS_SEED={seed} repeats these moments)");
    let mut moments = Moments(seed);
    let dir = std::env::temp_dir().join(format!("m1studio-e2e-chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("m1studio.db");
    let prefix = format!("c{}", std::process::id() % 100000);
    let mut server = Some(Server::start_with(&db, &[], 2)?);
    let addr = |server: &Option<Server>| server.as_ref().map(|s| s.addr).context("no server");
    let mut ids = Vec::new();
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    let result = async {
        for i in 0..DEPLOYMENTS {
            let cluster = format!("{prefix}x{i}");
            let design = json!({
                "link": format!("v=2&name={cluster}&pg=15&fm=repmgr&platform=docker&n=0&net=10.{}.0.0%2F24", 150 + i),
                "profile": "fast",
            });
            let (status, created) = call(addr(&server)?, "POST", "/api/deployments", Some(design))?;
            ensure!(status == 202, "{created}");
            let id = created["id"].as_str().context("id")?.to_string();
            // Somewhere between its admission and a little after it runs (about 15 s here).
            let moment = moments.next(25_000);
            tokio::time::sleep(Duration::from_millis(moment)).await;
            if let Some(running) = server.take() {
                running.crash();
            }
            server = Some(Server::start_with(&db, &[], 2)?);
            let got = get(addr(&server)?, &format!("/api/deployments/{id}"))?;
            let state = got["state"].as_str().unwrap_or_default().to_string();
            eprintln!("chaos: {cluster} killed after {moment} ms: {state} {}", got["failure"]);
            match state.as_str() {
                "running" => {}
                "failed" => ensure!(
                    ["interrupted", "step"].contains(&got["failure"].as_str().unwrap_or_default()),
                    "a failed deployment says why: {got}"
                ),
                _ => anyhow::bail!("after a restart, {cluster} is {state}: {got}"),
            }
            *outcomes.entry(state).or_default() += 1;
            ids.push(id);
            // At most three clusters at once on the machine: the oldest goes.
            if ids.len() > 3 {
                let oldest = ids.remove(0);
                let (status, body) = call(addr(&server)?, "DELETE", &format!("/api/deployments/{oldest}"), None)?;
                ensure!(status == 200, "destroying {oldest}: {body}");
            }
        }
        for id in ids.drain(..) {
            let (status, body) = call(addr(&server)?, "DELETE", &format!("/api/deployments/{id}"), None)?;
            ensure!(status == 200, "destroying {id}: {body}");
            ensure!(body["state"] == "destroyed", "{body}");
        }
        anyhow::Ok(())
    }
    .await;
    let remaining = left(&docker, &prefix).await?;
    drop(server);
    if result.is_err() || !remaining.is_empty() {
        // Whatever the outcome, the engine is left clean for the other tests.
        for i in 0..DEPLOYMENTS {
            let _ = m1studio::target::remove_containers(&format!("{prefix}x{i}")).await;
        }
    }
    result?;
    eprintln!("chaos: outcomes {outcomes:?}");
    ensure!(remaining.is_empty(), "left behind: {remaining:?}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
