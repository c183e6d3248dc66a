//! Patroni with etcd and HAProxy, through the API of the real server on a real Docker engine:
//! etcd healthy, one leader, the cascaded replica streaming from node 2, clients reaching the
//! leader through HAProxy; then the leader killed while a writer inserts through HAProxy, Barman
//! pointed at the new leader, the old leader back as a standby that takes no writes, a planned
//! switchover back, and two of three etcd members stopped (no quorum, no failover). In a
//! test binary of its own, so that no other deployment shares the machine while Patroni's timing
//! is measured.

use anyhow::{Context as _, Result, ensure};
use m1studio::engine::{Executor as _, argv};
use m1studio::target::docker::DockerExecutor;
use m1studio_e2e::rest::{call, get, moments, wait_for_event, wait_for_signal};
use m1studio_e2e::{Server, destroy_on_failure, docker_or_skip, refuses_writes};
use m1studio_shared::plan::PATRONI_CONFIG;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const NETWORK: &str = "10.222.0";

/// Runs `sql` as the barman user from the Barman node (which has its password), connecting to
/// `host:port`; the single answer.
async fn through(executor: &DockerExecutor, host: &str, port: u16, sql: &str) -> Result<String> {
    let conninfo = format!("host={host} port={port} user=barman dbname=postgres connect_timeout=2");
    let output = executor
        .run(
            "uplift",
            &argv(&["psql", "-XAtq", "-d", &conninfo, "-c", sql]),
            "barman",
            None,
        )
        .await?;
    ensure!(
        output.code == 0,
        "{sql} through {host}:{port}: {}",
        output.stderr
    );
    Ok(output.stdout.trim().to_string())
}

/// Polls the deployment's status until `holds` is true of it.
async fn wait_for_status(
    server: &Server,
    id: &str,
    within: Duration,
    what: &str,
    holds: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let started = Instant::now();
    loop {
        let status = get(server.addr, &format!("/api/deployments/{id}/status"))?;
        if holds(&status) {
            return Ok(status);
        }
        ensure!(
            started.elapsed() < within,
            "{what} did not happen within {} s: {status}",
            within.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn node<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["name"] == name))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn patroni_with_haproxy_fails_over_and_the_old_leader_comes_back_as_a_standby() -> Result<()>
{
    let Some(docker) = docker_or_skip("the Patroni deployment test").await? else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("m1studio-e2e-patroni-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cluster = format!("pat{}", std::process::id() % 100000);
    let executor = DockerExecutor::new(docker, &cluster);
    let server = Server::start_with_store(&dir.join("m1studio.db"))?;
    let result = destroy_on_failure(&executor, async {
        let design = json!({
            "link": format!("v=2&name={cluster}&pg=15&fm=patroni&haproxy=1&platform=docker&net={NETWORK}.0%2F24"),
            "profile": "fast",
        });
        let (status, created) = call(server.addr, "POST", "/api/deployments", Some(design))?;
        ensure!(status == 202, "{created}");
        let id = created["id"].as_str().context("id")?.to_string();
        let read_write = created["connections"]["read_write"].as_str().unwrap_or_default();
        ensure!(
            read_write.contains(&format!("{NETWORK}.9:5432,{NETWORK}.10:5432")),
            "clients are sent through HAProxy: {read_write}"
        );
        wait_for_event(server.addr, &id, Duration::from_secs(400), |e| {
            e["kind"] == "state" && e["title"] == "running"
        })?;

        // etcd has a quorum of three, and answers no client without its password.
        let status = executor
            .run(
                "quarry",
                &argv(&[
                    "etcdctl",
                    "--endpoints=http://quarry:2379,http://unison:2379,http://kingdom:2379",
                    "-w",
                    "json",
                    "endpoint",
                    "status",
                ]),
                "etcd",
                None,
            )
            .await?;
        ensure!(status.code == 0, "etcd: {} {}", status.stdout, status.stderr);
        let members: serde_json::Value = serde_json::from_str(&status.stdout)?;
        let members = members.as_array().map(Vec::as_slice).unwrap_or_default();
        ensure!(members.len() == 3, "etcd: {}", status.stdout);
        let leaders: std::collections::BTreeSet<String> = members
            .iter()
            .map(|m| m["Status"]["leader"].to_string())
            .collect();
        ensure!(leaders.len() == 1, "one leader for all: {}", status.stdout);
        let anonymous = executor
            .run(
                "quarry",
                &argv(&[
                    "etcdctl",
                    "--endpoints=http://quarry:2379",
                    "get",
                    "--prefix",
                    "/m1studio/",
                ]),
                "etcd",
                None,
            )
            .await?;
        ensure!(
            anonymous.code != 0 && !anonymous.stdout.contains("/m1studio/"),
            "etcd answers a client without a password: {} {}",
            anonymous.stdout,
            anonymous.stderr
        );

        // Patroni shows one leader; the replica streams from it and the cascaded replica
        // from the replica.
        let list = executor
            .run(
                "kestrel",
                &argv(&["patronictl", "-c", PATRONI_CONFIG, "list", "-f", "json"]),
                "postgres",
                None,
            )
            .await?;
        ensure!(list.code == 0, "patronictl list: {}", list.stderr);
        let members: Vec<Value> = serde_json::from_str(&list.stdout)?;
        let leaders: Vec<&Value> = members.iter().filter(|m| m["Role"] == "Leader").collect();
        ensure!(leaders.len() == 1 && leaders[0]["Member"] == "kestrel", "{members:?}");
        ensure!(members.len() == 3, "{members:?}");
        let streams = "SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication WHERE application_name <> 'barman_receive_wal'";
        // As the senders see them. Once, just after the deployment ran, the replica showed no
        // sender to the cascaded replica for a moment: each must show within 30 s.
        for (sender, expected) in [("kestrel", "quartz:streaming"), ("quartz", "karma:streaming")] {
            let mut seen = String::new();
            for _ in 0..30 {
                seen = m1studio::engine::query(&executor, sender, streams).await?;
                if seen == expected {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            ensure!(seen == expected, "{sender} sends to: {seen}");
        }

        // HAProxy's 5432 reaches the leader, and 5433 a standby, from either proxy.
        for proxy in ["quiver", "upland"] {
            let answer = through(&executor, proxy, 5432, "SELECT host(inet_server_addr()) || ' ' || pg_is_in_recovery()").await?;
            ensure!(answer == format!("{NETWORK}.2 false"), "{proxy}:5432 reached {answer}");
            let answer = through(&executor, proxy, 5433, "SELECT pg_is_in_recovery()").await?;
            ensure!(answer == "t", "{proxy}:5433 reached a primary");
        }
        let status = wait_for_status(&server, &id, Duration::from_secs(30), "Barman's first backup", |s| {
            s["barman"]["check_ok"] == true && s["barman"]["backups"].as_u64() >= Some(1)
        })
        .await?;
        ensure!(status["primary"] == "kestrel", "{status}");
        ensure!(node(&status, "karma")["upstream"] == "quartz", "{status}");
        // The live status asks etcd and HAProxy themselves: one etcd leader among three
        // healthy members, and both proxies sending writes to the leader.
        let members = ["quarry", "unison", "kingdom"].map(|m| node(&status, m)["service"].clone());
        ensure!(members.iter().all(|m| m["healthy"] == true), "{status}");
        ensure!(members.iter().filter(|m| m["leader"] == true).count() == 1, "{status}");
        for proxy in ["quiver", "upland"] {
            let service = &node(&status, proxy)["service"];
            ensure!(service["healthy"] == true && service["summary"] == "rw → kestrel", "{status}");
            ensure!(service["routes"][0] == json!({"port": 5432, "up": ["kestrel"]}), "{status}");
            ensure!(service["routes"][1]["up"].to_string().contains("quartz"), "{status}");
        }

        // Kill the leader while a writer inserts through HAProxy; Barman follows the new one.
        let (status, drill) = call(
            server.addr,
            "POST",
            &format!("/api/deployments/{id}/drills"),
            Some(json!({"action": "kill-primary", "retarget_barman": true})),
        )?;
        ensure!(status == 202, "{drill}");
        wait_for_signal(server.addr, &id, Duration::from_secs(180), "report", 1)?;
        let reports = get(server.addr, &format!("/api/deployments/{id}/drills"))?;
        let report = &reports[0];
        ensure!(report["new_primary"] == "quartz", "{report}");
        ensure!(report["rto_ms"].as_u64().is_some(), "{report}");
        ensure!(report["writes_acknowledged"].as_u64() > Some(0), "{report}");
        ensure!(report["writes_lost"].as_u64().is_some(), "{report}");
        ensure!(
            moments(report, "writes_resumed").iter().any(|m| m["node"] == "quartz"),
            "the writer went through HAProxy to the new leader: {report}"
        );
        for proxy in ["quiver", "upland"] {
            let answer = through(&executor, proxy, 5432, "SELECT host(inet_server_addr())").await?;
            ensure!(answer == format!("{NETWORK}.3"), "HAProxy follows the new leader: {answer}");
        }
        wait_for_status(&server, &id, Duration::from_secs(10), "HAProxy's status showing quartz", |s| {
            ["quiver", "upland"].iter().all(|p| node(s, p)["service"]["summary"] == "rw → quartz")
        })
        .await?;
        wait_for_signal(server.addr, &id, Duration::from_secs(180), "barman_follows", 1)?;
        let status = get(server.addr, &format!("/api/deployments/{id}/status"))?;
        ensure!(status["barman"]["backs_up"] == "quartz", "{status}");
        ensure!(status["barman"]["check_ok"] == true, "{status}");
        ensure!(status["barman"]["warning"].is_null(), "{status}");

        // The old leader comes back: Patroni makes it a standby of the new one.
        let (status, started) = call(
            server.addr,
            "POST",
            &format!("/api/deployments/{id}/drills"),
            Some(json!({"action": "start", "node": "kestrel"})),
        )?;
        ensure!(status == 202, "{started}");
        let status = wait_for_status(&server, &id, Duration::from_secs(90), "kestrel following quartz", |s| {
            node(s, "kestrel")["postgres"] == "standby" && node(s, "kestrel")["upstream"] == "quartz"
        })
        .await?;
        ensure!(status["primary"] == "quartz", "{status}");
        refuses_writes(&executor, "kestrel").await?;

        // A planned switchover back to kestrel: patronictl hands the leader key over.
        let (status, drill) = call(
            server.addr,
            "POST",
            &format!("/api/deployments/{id}/drills"),
            Some(json!({"action": "switchover", "to": "kestrel"})),
        )?;
        ensure!(status == 202, "{drill}");
        wait_for_signal(server.addr, &id, Duration::from_secs(120), "report", 2)?;
        let reports = get(server.addr, &format!("/api/deployments/{id}/drills"))?;
        let report = &reports[1];
        ensure!(report["action"] == "switchover" && report["new_primary"] == "kestrel", "{report}");
        ensure!(report["writes_lost"] == 0, "{report}");
        ensure!(moments(report, "switchover_finished").len() == 1, "{report}");

        // Two of three etcd members stopped: no quorum, so no failover; Patroni demotes the
        // leader it can no longer vouch for, and it leads again once the members are back.
        let (status, refused) = call(
            server.addr,
            "POST",
            &format!("/api/deployments/{id}/drills"),
            Some(json!({"action": "stop-etcd", "count": 3})),
        )?;
        ensure!(status == 400, "{refused}");
        ensure!(
            refused["error"]["message"].as_str().unwrap_or_default().starts_with("count:"),
            "{refused}"
        );
        let (status, drill) = call(
            server.addr,
            "POST",
            &format!("/api/deployments/{id}/drills"),
            Some(json!({"action": "stop-etcd", "count": 2, "seconds": 30})),
        )?;
        ensure!(status == 202, "{drill}");
        // The member left alone says that it has no quorum.
        let status = wait_for_status(&server, &id, Duration::from_secs(25), "kingdom alone", |s| {
            node(s, "kingdom")["service"]["summary"] == "no quorum"
        })
        .await?;
        ensure!(node(&status, "kingdom")["service"]["healthy"] == false, "{status}");
        wait_for_signal(server.addr, &id, Duration::from_secs(200), "report", 3)?;
        let reports = get(server.addr, &format!("/api/deployments/{id}/drills"))?;
        let report = &reports[2];
        ensure!(report["action"] == "stop-etcd", "{report}");
        ensure!(report["new_primary"].is_null(), "no failover without a quorum: {report}");
        ensure!(moments(report, "promoted").is_empty(), "{report}");
        ensure!(
            moments(report, "detected").iter().any(|m| m["node"] == "kestrel"),
            "Patroni demoted kestrel: {report}"
        );
        ensure!(moments(report, "fault_undone").len() == 1, "etcd runs again: {report}");
        ensure!(report["writes_failed"].as_u64() > Some(0), "{report}");
        ensure!(report["rto_ms"].as_u64().is_some(), "writes resumed once etcd was back: {report}");
        ensure!(report["writes_lost"] == 0, "{report}");
        wait_for_status(&server, &id, Duration::from_secs(60), "a leader again", |s| {
            s["primary"].is_string()
        })
        .await?;

        let (status, destroyed) = call(
            server.addr,
            "DELETE",
            &format!("/api/deployments/{id}"),
            None,
        )?;
        ensure!(status == 200, "{destroyed}");
        anyhow::Ok(())
    })
    .await;
    assert!(executor.containers().await?.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
    result
}
