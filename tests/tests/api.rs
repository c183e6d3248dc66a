//! The deployment API of the real server on a real Docker engine: a design with no cascaded
//! replica (so the witness is on the Barman node) deployed through `/api`, the server killed in
//! the middle of a deployment and restarted, a deployment stopped and destroyed while under way,
//! the server stopped by SIGTERM in the middle of another, then a full deployment, a drill and
//! destroy.

use anyhow::{Context as _, Result};
use m1studio::engine::{Executor as _, argv};
use m1studio::target::docker::{CLUSTER_LABEL, DockerExecutor};
use m1studio_e2e::rest::{call, get, moments, wait_for_event, wait_for_signal};
use m1studio_e2e::{
    Server, destroy_on_failure, docker_or_skip, lost_only_in_flight, refuses_writes,
};
use serde_json::json;
use std::time::Duration;

/// Submits `design` and waits until its deployment begins the phase whose title begins with
/// `phase`; returns the deployment's id.
fn deploy_until_phase(
    addr: std::net::SocketAddr,
    design: &serde_json::Value,
    phase: &str,
) -> Result<String> {
    let (status, created) = call(addr, "POST", "/api/deployments", Some(design.clone()))?;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().context("id")?.to_string();
    wait_for_event(addr, &id, Duration::from_secs(300), |e| {
        e["kind"] == "phase" && e["title"].as_str().is_some_and(|t| t.starts_with(phase))
    })?;
    Ok(id)
}

/// Destroys deployment `id`, which must answer 200 and be destroyed.
fn destroy(addr: std::net::SocketAddr, id: &str) -> Result<()> {
    let (status, destroyed) = call(addr, "DELETE", &format!("/api/deployments/{id}"), None)?;
    assert_eq!(status, 200, "{destroyed}");
    assert_eq!(destroyed["state"], "destroyed", "{destroyed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_survives_a_server_crash_and_the_witness_design_fails_over_through_the_api()
-> Result<()> {
    let Some(docker) = docker_or_skip("the API deployment test").await? else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("m1studio-e2e-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("m1studio.db");
    let cluster = format!("w{}", std::process::id() % 100000);
    let design = json!({
        "link": format!("v=1&name={cluster}&pg=15&fm=repmgr&platform=docker&n=0&net=10.213.0.0%2F24"),
        "profile": "fast",
    });
    let executor = DockerExecutor::new(docker.clone(), &cluster);

    let result = destroy_on_failure(&executor, async {
        // Start a deployment and crash the server while the replica is being cloned.
        let server = Server::start_with_store(&db)?;
        let (status, created) = call(
            server.addr,
            "POST",
            "/api/deployments",
            Some(design.clone()),
        )?;
        assert_eq!(status, 202, "{created}");
        let first = created["id"].as_str().context("id")?.to_string();
        assert_eq!(
            created["instances"].as_array().context("instances")?.len(),
            3
        );
        let barman = &created["instances"][2];
        assert_eq!(barman["roles"], json!(["barman", "witness"]), "{barman}");
        let witness = barman["name"].as_str().context("the witness's name")?.to_string();
        wait_for_event(server.addr, &first, Duration::from_secs(300), |e| {
            e["kind"] == "phase"
                && e["title"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Clone the replica"))
        })?;
        server.crash();
        assert!(
            !executor.containers().await?.is_empty(),
            "the half-done cluster is still there"
        );

        // After the restart the deployment is failed, as interrupted, its name is taken, and it
        // can be destroyed.
        let server = Server::start_with_store(&db)?;
        let got = get(server.addr, &format!("/api/deployments/{first}"))?;
        assert_eq!(got["state"], "failed", "{got}");
        assert_eq!(got["failure"], "interrupted", "{got}");
        let (status, conflict) = call(
            server.addr,
            "POST",
            "/api/deployments",
            Some(design.clone()),
        )?;
        assert_eq!(status, 409, "{conflict}");
        assert!(
            conflict["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("cluster_name:"),
            "{conflict}"
        );
        destroy(server.addr, &first)?;
        assert!(executor.containers().await?.is_empty());

        // A deployment under way is stopped and destroyed by DELETE: nothing of it is left.
        let stopped = deploy_until_phase(server.addr, &design, "Clone the replica")?;
        destroy(server.addr, &stopped)?;
        assert!(executor.containers().await?.is_empty(), "its containers are gone");
        let labelled = std::collections::HashMap::from([(
            "label".to_string(),
            vec![format!("{CLUSTER_LABEL}={cluster}")],
        )]);
        let networks = docker
            .list_networks(Some(
                bollard::query_parameters::ListNetworksOptionsBuilder::default()
                    .filters(&labelled)
                    .build(),
            ))
            .await?;
        assert!(networks.is_empty(), "its network is gone: {networks:?}");
        let volumes = docker
            .list_volumes(Some(
                bollard::query_parameters::ListVolumesOptionsBuilder::default()
                    .filters(&labelled)
                    .build(),
            ))
            .await?;
        assert!(
            volumes.volumes.unwrap_or_default().is_empty(),
            "its volumes are gone"
        );

        // SIGTERM stops the server within seconds, and the deployment it was running is
        // recorded as interrupted, never left deploying.
        let interrupted = deploy_until_phase(server.addr, &design, "Initialise the primary")?;
        let took = server.stop(Duration::from_secs(10))?;
        eprintln!("the server stopped {took:?} after SIGTERM");
        let server = Server::start_with_store(&db)?;
        let got = get(server.addr, &format!("/api/deployments/{interrupted}"))?;
        assert_eq!(got["state"], "failed", "{got}");
        assert_eq!(got["failure"], "interrupted", "{got}");
        destroy(server.addr, &interrupted)?;
        assert!(executor.containers().await?.is_empty());

        // Deploy it for real: the witness watches from the Barman node.
        let (status, created) = call(
            server.addr,
            "POST",
            "/api/deployments",
            Some(design.clone()),
        )?;
        assert_eq!(status, 202, "{created}");
        let id = created["id"].as_str().context("id")?.to_string();

        // With one deployment at a time, a second one waits in the queue, and can be cancelled.
        let other = json!({
            "link": format!("v=1&name={cluster}q&pg=15&fm=repmgr&platform=docker&n=0&net=10.217.0.0%2F24"),
        });
        let (status, queued) = call(server.addr, "POST", "/api/deployments", Some(other))?;
        assert_eq!(status, 202, "{queued}");
        assert_eq!(queued["state"], "queued", "{queued}");
        assert_eq!(queued["queue_position"], 1, "{queued}");
        // About how long it waits: half of a deployment, the one ahead being half done.
        assert!(queued["queue_wait_secs"].as_u64().is_some_and(|s| s > 0), "{queued}");
        let queued_id = queued["id"].as_str().context("id")?;
        let (status, cancelled) = call(server.addr, "DELETE", &format!("/api/deployments/{queued_id}"), None)?;
        assert_eq!(status, 200, "{cancelled}");
        assert_eq!(cancelled["state"], "destroyed", "{cancelled}");
        wait_for_event(server.addr, &id, Duration::from_secs(300), |e| {
            e["kind"] == "state" && e["title"] == "running"
        })?;
        let barman_node = created["instances"][2]["name"]
            .as_str()
            .context("name")?
            .to_string();
        let shown = executor
            .run(
                "kestrel",
                &argv(&["repmgr", "-f", "/etc/repmgr.conf", "cluster", "show"]),
                "postgres",
                None,
            )
            .await?;
        assert!(
            shown.stdout.lines().any(|l| l.contains(&barman_node)
                && l.contains("witness")
                && l.contains("running")),
            "{}",
            shown.stdout
        );

        // The status shows the roles, and Barman green with one backup.
        let status = get(server.addr, &format!("/api/deployments/{id}/status"))?;
        assert_eq!(status["primary"], "kestrel", "{status}");
        assert_eq!(status["nodes"][1]["postgres"], "standby", "{status}");
        assert_eq!(status["nodes"][1]["upstream"], "kestrel", "{status}");
        assert_eq!(status["barman"]["check_ok"], true, "{status}");
        assert_eq!(status["barman"]["backups"], 1, "{status}");

        // A restart keeps a running deployment running.
        server.crash();
        let server = Server::start_with_store(&db)?;
        let got = get(server.addr, &format!("/api/deployments/{id}"))?;
        assert_eq!(got["state"], "running", "{got}");
        let credentials = get(server.addr, &format!("/api/deployments/{id}/credentials"))?;
        let password = credentials["password"]
            .as_str()
            .context("password")?
            .to_string();
        assert_eq!(password.len(), 36);

        // The replica watches the primary every second (the fast profile); the primary itself,
        // which no failover waits for, checks every 5 s.
        for (node, every) in [("kestrel", 5), ("quartz", 1)] {
            let interval = executor
                .run(
                    node,
                    &argv(&["grep", "^monitor_interval_secs=", "/etc/repmgr.conf"]),
                    "root",
                    None,
                )
                .await?;
            assert_eq!(
                interval.stdout.trim(),
                format!("monitor_interval_secs={every}"),
                "{node}"
            );
        }

        // Kill the primary while a writer inserts rows, with Barman following the new primary.
        let (status, drill) = call(
            server.addr,
            "POST",
            &format!("/api/deployments/{id}/drills"),
            Some(json!({"action": "kill-primary", "retarget_barman": true})),
        )?;
        assert_eq!(status, 202, "{drill}");
        let promoted = wait_for_signal(server.addr, &id, Duration::from_secs(60), "promoted", 1)?;
        assert_eq!(promoted["node"], "quartz", "{promoted}");
        eprintln!("failover through the API: {}", promoted["detail"]);

        // The drill's report: the recovery time, and no acknowledged write lost.
        let reports = get(server.addr, &format!("/api/deployments/{id}/drills"))?;
        let report = &reports[0];
        assert_eq!(report["target"], "kestrel", "{report}");
        wait_for_signal(server.addr, &id, Duration::from_secs(120), "report", 1)?;
        let reports = get(server.addr, &format!("/api/deployments/{id}/drills"))?;
        let report = &reports[0];
        assert_eq!(report["finished"], true, "{report}");
        assert_eq!(report["new_primary"], "quartz", "{report}");
        let rto = report["rto_ms"].as_u64().context("a recovery time")?;
        assert!(rto > 0, "{report}");
        assert!(report["writes_acknowledged"].as_u64() > Some(0), "{report}");
        let loss = serde_json::from_value::<m1studio_shared::api::DrillReport>(report.clone())?.loss();
        lost_only_in_flight(&loss.context("the loss is counted")?)?;
        eprintln!("drill report: recovery {rto} ms, {} writes acknowledged", report["writes_acknowledged"]);

        // Barman follows: it streams from the new primary, checks green, and backs it up.
        wait_for_signal(server.addr, &id, Duration::from_secs(180), "barman_follows", 1)?;
        let status = get(server.addr, &format!("/api/deployments/{id}/status"))?;
        assert_eq!(status["primary"], "quartz", "{status}");
        assert_eq!(status["barman"]["backs_up"], "quartz", "{status}");
        assert_eq!(status["barman"]["check_ok"], true, "{status}");
        assert_eq!(status["barman"]["backups"], 2, "{status}");
        assert!(status["barman"]["warning"].is_null(), "{status}");

        // The old primary comes back, never as a second primary: it is rejoined as a standby
        // of the new one (crash recovery offline, then repmgr node rejoin with pg_rewind).
        let (status, started) = call(
            server.addr,
            "POST",
            &format!("/api/deployments/{id}/drills"),
            Some(json!({"action": "start", "node": "kestrel"})),
        )?;
        assert_eq!(status, 202, "{started}");
        assert_eq!(started["until"], "rejoined", "the answer says what ends it: {started}");
        let status = get(server.addr, &format!("/api/deployments/{id}/status"))?;
        assert_eq!(status["primary"], "quartz", "never two primaries: {status}");
        let rejoined = wait_for_signal(server.addr, &id, Duration::from_secs(120), "rejoined", 1)?;
        assert_eq!(rejoined["node"], "kestrel", "{rejoined}");
        let status = get(server.addr, &format!("/api/deployments/{id}/status"))?;
        assert_eq!(status["nodes"][0]["postgres"], "standby", "{status}");
        assert_eq!(status["nodes"][0]["upstream"], "quartz", "{status}");
        refuses_writes(&executor, "kestrel").await?;
        // Rejoined, kestrel is the standby that a failover would promote: its repmgrd checks as
        // often as the replica's (every second on the fast profile), where as the primary it
        // checked every 5 s.
        let interval = executor
            .run(
                "kestrel",
                &argv(&["grep", "^monitor_interval_secs=", "/etc/repmgr.conf"]),
                "root",
                None,
            )
            .await?;
        assert_eq!(interval.stdout.trim(), "monitor_interval_secs=1", "{interval:?}");

        // A planned switchover back to kestrel (repmgr standby switchover, over SSH), with
        // Barman following: barman check is green afterwards.
        let (status, drill) = call(
            server.addr,
            "POST",
            &format!("/api/deployments/{id}/drills"),
            Some(json!({"action": "switchover", "retarget_barman": true})),
        )?;
        assert_eq!(status, 202, "{drill}");
        assert_eq!(drill["number"], 2, "{drill}");
        wait_for_signal(server.addr, &id, Duration::from_secs(120), "report", 2)?;
        let reports = get(server.addr, &format!("/api/deployments/{id}/drills"))?;
        let report = &reports[1];
        assert_eq!(report["action"], "switchover", "{report}");
        assert_eq!(report["new_primary"], "kestrel", "{report}");
        assert_eq!(report["writes_lost"], 0, "{report}");
        assert_eq!(moments(report, "switchover_finished").len(), 1, "{report}");
        // The replica handed over without --siblings-follow: the witness is registered again
        // with the new primary, and both copies of repmgr's metadata say so.
        assert!(
            moments(report, "witness_follows").iter().any(|m| m["node"] == witness.as_str()),
            "{report}"
        );
        for node in ["kestrel", witness.as_str()] {
            let upstream = executor
                .run(
                    node,
                    &argv(&[
                        "psql",
                        "-XAtq",
                        "-d",
                        "repmgr",
                        "-c",
                        "SELECT u.node_name FROM repmgr.nodes n JOIN repmgr.nodes u ON u.node_id = n.upstream_node_id WHERE n.type = 'witness'",
                    ]),
                    "postgres",
                    None,
                )
                .await?;
            assert_eq!(upstream.stdout.trim(), "kestrel", "the witness's upstream as {node} sees it: {upstream:?}");
        }
        eprintln!("switchover report: {report}");
        wait_for_signal(server.addr, &id, Duration::from_secs(180), "barman_follows", 2)?;
        let status = get(server.addr, &format!("/api/deployments/{id}/status"))?;
        assert_eq!(status["primary"], "kestrel", "{status}");
        assert_eq!(status["nodes"][1]["upstream"], "kestrel", "{status}");
        assert_eq!(status["barman"]["backs_up"], "kestrel", "{status}");
        assert_eq!(status["barman"]["check_ok"], true, "{status}");

        // No password in any event.
        let events = get(server.addr, &format!("/api/deployments/{id}/events"))?;
        assert!(
            !events.to_string().contains(&password),
            "events never carry a password"
        );

        let (status, destroyed) = call(
            server.addr,
            "DELETE",
            &format!("/api/deployments/{id}"),
            None,
        )?;
        assert_eq!(status, 200, "{destroyed}");
        anyhow::Ok(())
    })
    .await;
    assert!(
        executor.containers().await?.is_empty(),
        "nothing of the cluster is left"
    );
    let queued = DockerExecutor::new(docker, &format!("{cluster}q"));
    assert!(
        queued.containers().await?.is_empty(),
        "nothing of the cancelled cluster was created"
    );
    let _ = std::fs::remove_dir_all(&dir);
    result
}
