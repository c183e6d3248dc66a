//! The real runner on a real Docker engine: deploy the default design with the real binary,
//! check replication, the cascade and Barman, kill the primary, watch the failover, destroy.

use anyhow::{Result, bail};
use m1studio::engine::{Executor as _, argv, query};
use m1studio::target::docker::DockerExecutor;
use m1studio_e2e::{
    Server, binary, configure_repmgr_on_docker, destroy_on_failure, docker_or_skip, http_get,
    lost_only_in_flight, m1studio,
};
use std::process::Command;
use std::time::{Duration, Instant};

async fn eventually(
    executor: &DockerExecutor,
    node: &str,
    sql: &str,
    expect: &str,
    within: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if query(executor, node, sql)
            .await
            .is_ok_and(|answer| answer == expect)
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            bail!(
                "{sql} on {node} never gave {expect:?} within {} s",
                within.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_design_deploys_streams_backs_up_fails_over_and_is_destroyed() -> Result<()> {
    let Some(docker) = docker_or_skip("the deployment test").await? else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("m1studio-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cluster = format!("e2e{}", std::process::id() % 100000);
    let configure = configure_repmgr_on_docker(&cluster, "10.212.0.0/24", &[], &dir)?;
    assert!(
        configure.status.success(),
        "{}",
        String::from_utf8_lossy(&configure.stderr)
    );
    let executor = DockerExecutor::new(docker, &cluster);
    let result = destroy_on_failure(&executor, async {
        let deploy = m1studio(&["deploy", &cluster, "--profile", "fast"], &dir)?;
        let stderr = String::from_utf8_lossy(&deploy.stderr).into_owned();
        assert!(deploy.status.success(), "deploy failed:\n{stderr}");
        assert!(stderr.contains("[3/3] Clone the replica, quartz, from the primary, and the cascaded replicas from quartz once it is registered, all at once; start Barman on uplift and back up kestrel; start repmgrd on each node once it is ready"), "{stderr}");
        // The cascaded replica clones once the replica's registration has reached it.
        let at = |line: &str| {
            stderr
                .find(line)
                .unwrap_or_else(|| panic!("no {line:?} in:\n{stderr}"))
        };
        assert!(
            at("quartz: the registration reached the standby") < at("karma: quartz is registered")
        );
        assert!(at("karma: quartz is registered") < at("karma: clone from quartz"));
        assert!(stderr.contains("uplift: take the first backup"), "{stderr}");
        assert!(stderr.contains("uplift: barman check is green"), "{stderr}");
        let stdout = String::from_utf8_lossy(&deploy.stdout).into_owned();
        assert!(stdout.contains("postgresql://postgres@10.212.0.2:5432,10.212.0.3:5432,10.212.0.5:5432/postgres?target_session_attrs=read-write"), "{stdout}");

        // A server with a store of its own finds the cluster through its labels, running.
        {
            let server = Server::start()?;
            let (status, listed) = http_get(server.addr, "/api/deployments")?;
            assert_eq!(status, 200, "{listed}");
            let listed: serde_json::Value = serde_json::from_str(&listed)?;
            let found = listed
                .as_array()
                .into_iter()
                .flatten()
                .find(|d| d["cluster"] == cluster.as_str())
                .cloned()
                .unwrap_or_default();
            assert_eq!(found["state"], "running", "{listed}");
            assert_eq!(found["instances"].as_array().map(Vec::len), Some(4), "{found}");
        }

        // The replica streams from the primary, and the cascaded replica from the replica.
        assert_eq!(query(&executor, "kestrel", "SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication").await?, "barman_receive_wal:streaming,quartz:streaming");
        assert_eq!(query(&executor, "quartz", "SELECT string_agg(application_name || ':' || state, ',') FROM pg_stat_replication").await?, "karma:streaming");
        query(&executor, "kestrel", "CREATE TABLE drill (id int); INSERT INTO drill VALUES (1)").await?;
        eventually(&executor, "karma", "SELECT count(*) FROM drill", "1", Duration::from_secs(10)).await?;

        // Barman: check green, one backup.
        let check = executor.run("uplift", &argv(&["barman", "check", "kestrel"]), "barman", None).await?;
        assert_eq!(check.code, 0, "{}", check.stdout);
        let backups = executor.run("uplift", &argv(&["barman", "list-backups", "--minimal", "kestrel"]), "barman", None).await?;
        assert_eq!(backups.stdout.lines().count(), 1, "{}", backups.stdout);

        // The cluster's roles log in with verifiers of few iterations, the cheap check that
        // repmgrd makes every second (and its clones, Barman's backup and the writes above
        // logged in with them).
        assert_eq!(
            query(&executor, "kestrel", "SELECT string_agg(rolname || ':' || split_part(rolpassword, ':', 1), ',' ORDER BY rolname) FROM pg_authid WHERE rolpassword IS NOT NULL").await?,
            "barman:SCRAM-SHA-256$16,postgres:SCRAM-SHA-256$16,repmgr:SCRAM-SHA-256$16,streaming_barman:SCRAM-SHA-256$16"
        );
        // No password or verifier in what the deployment printed.
        assert!(!stderr.contains("PASSWORD '") || stderr.contains("${scram:"), "{stderr}");
        assert!(!stderr.contains("SCRAM-SHA-256$"), "{stderr}");

        // A drill without the node it needs is refused, naming the option.
        let refused = m1studio(&["drill", &cluster, "stop-node"], &dir)?;
        assert!(!refused.status.success());
        let refused = String::from_utf8_lossy(&refused.stderr).into_owned();
        assert!(refused.contains("--node is needed with stop-node"), "{refused}");

        // Kill the primary with the CLI's drill: the replica is promoted, the report is printed,
        // and the cascaded replica keeps streaming from the new primary.
        let drill = m1studio(&["drill", &cluster, "kill-primary"], &dir)?;
        let report = String::from_utf8_lossy(&drill.stdout).into_owned();
        assert!(drill.status.success(), "{report}{}", String::from_utf8_lossy(&drill.stderr));
        assert!(report.contains("drill 1: kill-primary of kestrel"), "{report}");
        assert!(report.contains("new primary:          quartz"), "{report}");
        let loss = report.lines().find_map(|l| l.trim().strip_prefix("acknowledged lost:")).unwrap_or_default();
        lost_only_in_flight(loss.trim())?;
        eprintln!("{report}");
        assert_eq!(query(&executor, "quartz", "SELECT pg_is_in_recovery()").await?, "f");
        query(&executor, "quartz", "INSERT INTO drill VALUES (2)").await?;
        eventually(&executor, "karma", "SELECT count(*) FROM drill", "2", Duration::from_secs(20)).await?;
        assert_eq!(query(&executor, "quartz", "SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication").await?, "karma:streaming");
        let status = m1studio(&["status", &cluster], &dir)?;
        let status = String::from_utf8_lossy(&status.stdout).into_owned();
        assert!(status.lines().any(|l| l.starts_with("quartz") && l.contains(" primary ")), "{status}");

        // The old primary comes back as a standby of the new one.
        let start = m1studio(&["drill", &cluster, "start", "--node", "kestrel"], &dir)?;
        let said = String::from_utf8_lossy(&start.stderr).into_owned();
        assert!(start.status.success(), "{said}");
        assert!(said.contains("kestrel rejoined as a standby of quartz"), "{said}");
        assert_eq!(query(&executor, "kestrel", "SELECT pg_is_in_recovery()").await?, "t");

        // A switchover back to kestrel: the cascaded replica stays with quartz, which is a
        // standby of kestrel again, as M1 draws them.
        let switchover = m1studio(&["drill", &cluster, "switchover", "--to", "kestrel"], &dir)?;
        let report = String::from_utf8_lossy(&switchover.stdout).into_owned();
        assert!(switchover.status.success(), "{report}{}", String::from_utf8_lossy(&switchover.stderr));
        assert!(report.contains("the switchover command finished"), "{report}");
        assert!(report.contains("acknowledged lost:    0"), "{report}");
        assert_eq!(query(&executor, "kestrel", "SELECT pg_is_in_recovery()").await?, "f");
        eventually(&executor, "quartz", "SELECT sender_host FROM pg_stat_wal_receiver", "kestrel", Duration::from_secs(30)).await?;
        eventually(&executor, "karma", "SELECT sender_host FROM pg_stat_wal_receiver", "quartz", Duration::from_secs(30)).await?;
        anyhow::Ok(())
    })
    .await;

    // Destroy removes everything of the cluster, and doing it again is harmless.
    let destroy = m1studio(&["destroy", &cluster], &dir)?;
    assert!(
        destroy.status.success(),
        "{}",
        String::from_utf8_lossy(&destroy.stderr)
    );
    assert!(executor.containers().await?.is_empty());
    let again = m1studio(&["destroy", &cluster], &dir)?;
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("removed 0 containers"), "{again}");
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn designs_that_cannot_deploy_stop_before_anything_is_created() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("m1studio-e2e-refuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for (name, args) in [
        (
            "edb",
            vec![
                "--epas",
                "16",
                "--redwood",
                "--enable-repmgr",
                "--platform",
                "docker",
            ],
        ),
        (
            "pg16",
            vec![
                "--postgresql",
                "16",
                "--enable-repmgr",
                "--platform",
                "docker",
            ],
        ),
        ("onaws", vec!["--postgresql", "15", "--enable-repmgr"]),
    ] {
        let mut configure = vec!["configure", name, "-a", "M1"];
        configure.extend(args);
        assert!(m1studio(&configure, &dir)?.status.success());
        let out = Command::new(binary()?)
            .args(["deploy", name])
            .current_dir(&dir)
            .env("M1STUDIO_DB", dir.join("m1studio.db"))
            .env_remove("EDB_SUBSCRIPTION_TOKEN")
            .output()?;
        assert!(!out.status.success(), "{name} must not deploy");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = match name {
            "edb" => "EDB_SUBSCRIPTION_TOKEN",
            "pg16" => "PostgreSQL 16 is not in Debian's archive",
            _ => "m1studio deploys docker designs",
        };
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stderr.contains("creating"), "nothing is created: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_removes_only_what_carries_the_cluster_s_and_the_deployment_s_labels() -> Result<()>
{
    use m1studio::target::docker::{CLUSTER_LABEL, DEPLOYMENT_LABEL, DockerExecutor};
    let Some(docker) = docker_or_skip("the destroy-by-labels test").await? else {
        return Ok(());
    };
    let cluster = format!("lbl{}", std::process::id() % 100000);
    let volume = |name: String, labels: &[(&str, &str)]| {
        let docker = docker.clone();
        let labels: std::collections::HashMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move {
            docker
                .create_volume(bollard::models::VolumeCreateRequest {
                    name: Some(name.clone()),
                    labels: Some(labels),
                    ..Default::default()
                })
                .await?;
            anyhow::Ok(name)
        }
    };
    // Ours; a cluster whose name begins with ours; the same cluster name in another store.
    let ours = volume(
        format!("m1studio-{cluster}-kestrel-pgdata"),
        &[(CLUSTER_LABEL, &cluster), (DEPLOYMENT_LABEL, "d1")],
    )
    .await?;
    let longer = format!("{cluster}-test");
    let neighbour = volume(
        format!("m1studio-{longer}-kestrel-pgdata"),
        &[(CLUSTER_LABEL, &longer), (DEPLOYMENT_LABEL, "d2")],
    )
    .await?;
    let elsewhere = volume(
        format!("m1studio-{cluster}-quartz-pgdata"),
        &[(CLUSTER_LABEL, &cluster), (DEPLOYMENT_LABEL, "d3")],
    )
    .await?;
    let removed = DockerExecutor::new(docker.clone(), &cluster)
        .for_deployment("d1")
        .destroy()
        .await;
    let exists = |name: String| {
        let docker = docker.clone();
        async move { docker.inspect_volume(&name).await.is_ok() }
    };
    let (ours_left, neighbour_left, elsewhere_left) = (
        exists(ours.clone()).await,
        exists(neighbour.clone()).await,
        exists(elsewhere.clone()).await,
    );
    for name in [&ours, &neighbour, &elsewhere] {
        let _ = docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await;
    }
    assert_eq!(removed?, 1);
    assert!(!ours_left, "the deployment's own volume goes");
    assert!(
        neighbour_left,
        "another cluster whose name begins alike keeps its volume"
    );
    assert!(
        elsewhere_left,
        "the same name's deployment of another store keeps its volume"
    );
    Ok(())
}
