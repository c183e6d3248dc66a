//! Measures the Docker runner with the node image already built: deploying the default design
//! (1 cascaded replica) and one with 8, the failover time with the fast profile (primary
//! killed until the replica accepts writes), and the drills' reports (recovery time seen by a
//! writer, time without writes, rows lost) for repmgr and for Patroni with HAProxy, on the fast
//! and the normal profile: kill, clean stop, switchover, and two etcd members stopped.
//! Run by `cargo xtask bench-deploy`.
//!
//! `cargo xtask bench-deploy kills N MANAGER` instead deploys a synchronous design with MANAGER
//! (repmgr or patroni) and kills its primary N times, bringing the old one back as a standby
//! each time, and sums the acknowledged rows lost.
//!
//! `cargo xtask bench-deploy deploys N` deploys the default design and the one with 8
//! cascaded replicas N times each, one after the other, and prints each time with the minimum,
//! median and maximum: one run says little on a machine whose speed drifts.
//!
//! `cargo xtask bench-deploy idle N` deploys N default clusters (fast profile) side by side,
//! each on a network of the address pool, lets them settle for 130 s (past barman cron's
//! first two minutes, when it runs every 15 s), then reads each cluster's
//! CPU (the containers' `cpu.stat`) over 120 s (barman cron's period) and its memory (`memory.current`): milliseconds of
//! CPU per second and MiB per idle cluster, and for all N together.
//!
//! `cargo xtask bench-deploy bare N` deploys the default design as a bare one, over SSH, on 4
//! fresh prepared hosts (containers of the node image running sshd), N times, and prints each
//! time with the minimum, median and maximum. Preparing the hosts is not measured; the SSH
//! connections, the checks of every host and the plan are.

use anyhow::{Context as _, Result, bail};
use m1studio::engine::Executor as _;
use m1studio::engine::query;
use m1studio::runner::Runner;
use m1studio::store::Store;
use m1studio::target::docker::{DockerExecutor, connect};
use m1studio_shared::FailoverManager;
use m1studio_shared::api::{DeployRequest, DeploymentState, Drill, DrillReport, PostgresRole};
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, count, manager] = &args[..]
        && command == "kills"
    {
        let count: u32 = count.parse().context("N must be a whole number")?;
        return repeated_kills(count, manager).await;
    }
    if let [command, count] = &args[..]
        && command == "deploys"
    {
        let count: u32 = count.parse().context("N must be a whole number")?;
        return repeated_deploys(count);
    }
    if let [command, count, rest @ ..] = &args[..]
        && command == "idle"
    {
        let count: u32 = count.parse().context("N must be a whole number")?;
        let patroni = match rest {
            [] => false,
            [manager] if manager == "patroni" => true,
            _ => bail!("bench-deploy idle N [patroni]"),
        };
        return idle(count, patroni).await;
    }
    if let [command, count] = &args[..]
        && command == "bare"
    {
        let count: u32 = count.parse().context("N must be a whole number")?;
        return repeated_bare_deploys(count).await;
    }
    let docker = connect().await?;
    let dir = std::env::temp_dir().join(format!("m1studio-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // Warm up: builds the node image if it is missing, so that it is not measured.
    for (name, n, network) in [
        ("benchwarm", 0, "10.213.0.0/24"),
        ("bench1", 1, "10.214.0.0/24"),
        ("bench8", 8, "10.215.0.0/24"),
    ] {
        configure(name, n, network, &dir)?;
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
        drills("repmgr", profile).await?;
        drills("patroni", profile).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn anyhow_of(problem: m1studio::runner::Problem) -> anyhow::Error {
    anyhow::anyhow!("{problem}")
}

fn seconds(ms: Option<u64>) -> String {
    ms.map_or_else(
        || "never".into(),
        |ms| format!("{:.1} s", ms as f64 / 1000.0),
    )
}

/// Deploys `link` with `profile` through the runner; the deployment's id and how long it took.
async fn deploy(runner: &Runner, link: String, profile: Profile) -> Result<(String, Duration)> {
    let request = DeployRequest {
        link: Some(link),
        profile: Some(profile),
        ..DeployRequest::default()
    };
    let started = Instant::now();
    let deployment = runner.submit(request).await.map_err(anyhow_of)?;
    let id = deployment.id.clone();
    loop {
        match runner.get(&id).map_err(anyhow_of)?.state {
            DeploymentState::Running => return Ok((id, started.elapsed())),
            DeploymentState::Failed => bail!("the deployment failed"),
            _ if started.elapsed() > Duration::from_secs(400) => bail!("not running after 400 s"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs `drill` and waits for its finished report.
async fn drill(runner: &Runner, id: &str, drill: Drill) -> Result<DrillReport> {
    let before = runner.store().reports(id)?.len();
    runner.drill(id, drill).await.map_err(anyhow_of)?;
    let started = Instant::now();
    loop {
        let reports = runner.store().reports(id)?;
        if let Some(report) = reports.get(before).filter(|r| r.finished) {
            // Barman and the writer's table settle before the next drill.
            tokio::time::sleep(Duration::from_secs(2)).await;
            return Ok(report.clone());
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("no drill report after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Starts `node` again and waits until it streams as a standby (with synchronous replication,
/// as the synchronous one: only that one may be promoted).
async fn bring_back(runner: &Runner, id: &str, node: &str) -> Result<()> {
    let deployment = runner.get(id).map_err(anyhow_of)?;
    let executor = DockerExecutor::new(connect().await?, &deployment.cluster);
    let synchronous = deployment.draft.synchronous;
    runner
        .drill(
            id,
            Drill::Start {
                node: node.to_string(),
            },
        )
        .await
        .map_err(anyhow_of)?;
    let started = Instant::now();
    loop {
        let status = runner.status(id).await.map_err(anyhow_of)?;
        let mut back = status.nodes.iter().any(|n| {
            n.name == node
                && n.postgres == Some(PostgresRole::Standby)
                && n.upstream.is_some()
                && n.lag_bytes == Some(0)
        });
        let patroni = deployment.draft.failover_manager.as_deref() == Some("patroni");
        if back && synchronous && patroni {
            // Patroni promotes only the member its /sync key names.
            let list = executor
                .run(
                    node,
                    &m1studio::engine::argv(&[
                        "patronictl",
                        "-c",
                        m1studio_shared::plan::PATRONI_CONFIG,
                        "list",
                        "-f",
                        "json",
                    ]),
                    "postgres",
                    None,
                )
                .await?;
            let members: Vec<serde_json::Value> =
                serde_json::from_str(&list.stdout).unwrap_or_default();
            back = members
                .iter()
                .any(|m| m["Member"] == node && m["Role"] == "Sync Standby");
        } else if back
            && synchronous
            && let Some(primary) = &status.primary
        {
            let state = query(
                &executor,
                primary,
                &format!(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = '{node}'"
                ),
            )
            .await
            .unwrap_or_default();
            back = state == "sync" || state == "quorum";
        }
        if back {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(180) {
            bail!("{node} did not come back as a standby within 180 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_report(what: &str, report: &DrillReport) {
    let promotion = report
        .timeline
        .iter()
        .find(|m| m.kind == m1studio_shared::api::Signal::Promoted)
        .map(|m| u64::try_from(m.after_ms).unwrap_or(0));
    println!(
        "{what}: writes resumed after {}, no writes for {}, promotion after {}, {} writes acknowledged, {} lost{}",
        seconds(report.rto_ms),
        seconds(report.outage_ms),
        seconds(promotion),
        report.writes_acknowledged,
        report
            .writes_lost
            .map_or_else(|| "?".into(), |l| l.to_string()),
        report
            .note
            .as_ref()
            .map_or_else(String::new, |n| format!(" ({n})")),
    );
}

/// Deploys the default design with `manager` (Patroni with HAProxy) and `profile`, and runs the
/// drills one after the other, bringing each old primary back as a standby.
async fn drills(manager: &str, profile: Profile) -> Result<()> {
    let runner = Runner::new(Store::in_memory()?, 1);
    let patroni = manager == "patroni";
    let name = format!("{}{}", &manager[..3], profile.as_str());
    let link = format!(
        "v=1&name={name}&pg=15&fm={manager}{}&platform=docker&net=10.219.0.0%2F24",
        if patroni { "&haproxy=1" } else { "" }
    );
    let (id, took) = deploy(&runner, link, profile).await?;
    let label = format!(
        "{manager}{} ({} profile, worst case {} s)",
        if patroni { " + HAProxy" } else { "" },
        profile.as_str(),
        profile.worst_case_failover_secs_for(if patroni {
            FailoverManager::Patroni
        } else {
            FailoverManager::Repmgr
        })
    );
    let result = async {
        if patroni {
            println!("deploy {label}: {:.1} s", took.as_secs_f64());
        }
        let report = drill(
            &runner,
            &id,
            Drill::KillPrimary {
                retarget_barman: false,
            },
        )
        .await?;
        print_report(&format!("kill-primary, {label}"), &report);
        bring_back(&runner, &id, &report.target).await?;
        if profile == Profile::Fast {
            let report = drill(
                &runner,
                &id,
                Drill::StopPrimary {
                    retarget_barman: false,
                },
            )
            .await?;
            print_report(&format!("stop-primary, {label}"), &report);
            bring_back(&runner, &id, &report.target).await?;
            let report = drill(
                &runner,
                &id,
                Drill::Switchover {
                    to: None,
                    retarget_barman: false,
                },
            )
            .await?;
            print_report(&format!("switchover, {label}"), &report);
            if let Some(finished) = report.timeline.iter().find(|m| {
                matches!(
                    m.kind,
                    m1studio_shared::api::Signal::SwitchoverFinished
                        | m1studio_shared::api::Signal::SwitchoverFailed
                )
            }) {
                println!(
                    "  switchover command: {} after {:.1} s",
                    finished.what,
                    finished.after_ms as f64 / 1000.0
                );
            }
            if patroni {
                let report = drill(
                    &runner,
                    &id,
                    Drill::StopEtcd {
                        count: 2,
                        seconds: 30,
                    },
                )
                .await?;
                print_report(&format!("stop-etcd 2 of 3 for 30 s, {label}"), &report);
            }
        }
        anyhow::Ok(())
    }
    .await;
    let _ = runner.destroy(&id).await;
    result
}

/// Configures the repmgr design `name` with `n` cascaded replicas on `network` in `dir`.
fn configure(name: &str, n: u32, network: &str, dir: &std::path::Path) -> Result<()> {
    let n = n.to_string();
    let out = m1studio_e2e::configure_repmgr_on_docker(
        name,
        network,
        &["--num-cascaded-replicas", &n],
        dir,
    )?;
    if !out.status.success() {
        bail!(
            "configuring {name} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Deploys the default design and the one with 8 cascaded replicas `count` times each, in
/// turns, timing `m1studio deploy` as a user would.
fn repeated_deploys(count: u32) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("m1studio-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let designs = [
        ("bench1", 1, "10.214.0.0/24"),
        ("bench8", 8, "10.215.0.0/24"),
    ];
    for (name, n, network) in designs {
        configure(name, n, network, &dir)?;
    }
    // Warm up, so that a missing node image is built outside the measurement.
    m1studio(&["deploy", "bench1", "--profile", "fast"], &dir)?;
    m1studio(&["destroy", "bench1"], &dir)?;
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=count {
        for (at, (name, n, _)) in designs.iter().enumerate() {
            let started = Instant::now();
            m1studio(&["deploy", name, "--profile", "fast"], &dir)?;
            let took = started.elapsed().as_secs_f64();
            m1studio(&["destroy", name], &dir)?;
            println!("round {round}: deploy with {n} cascaded replica(s): {took:.1} s");
            times[at].push(took);
        }
    }
    let mut medians = Vec::new();
    for ((_, n, _), times) in designs.iter().zip(&mut times) {
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        medians.push(median);
        println!(
            "deploy with {n} cascaded replica(s), {count} runs: min {:.1} s, median {median:.1} s, max {:.1} s",
            times[0],
            times[times.len() - 1],
        );
    }
    println!(
        "8 cascaded replicas take {:.2} times as long as 1 (medians)",
        medians[1] / medians[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Deploys the default design `count` times over SSH on fresh prepared hosts, and prints the
/// times of `m1studio deploy`.
async fn repeated_bare_deploys(count: u32) -> Result<()> {
    use m1studio_e2e::hosts::{
        configure_bare, hostnames_file, m1studio_near_the_engine, prepared_hosts, said,
    };
    let mut times = Vec::new();
    for round in 1..=count {
        let dir = std::env::temp_dir().join(format!(
            "m1studio-bench-bare-{}-{round}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        let (machines, hosts, key) = prepared_hosts(
            connect().await?,
            m1studio_shared::Draft::starter(),
            "10.223.0.0/24",
            &dir,
        )
        .await?;
        let measured = async {
            hostnames_file(&hosts, &dir)?;
            let configure = configure_bare("benchbare", &["--enable-repmgr"], &dir)?;
            if !configure.status.success() {
                bail!("configure failed:\n{}", said(&configure));
            }
            let started = Instant::now();
            let out = m1studio_near_the_engine(
                &[
                    "deploy",
                    "benchbare",
                    "--ssh-key",
                    key.to_str().context("a UTF-8 path")?,
                ],
                &dir,
            )?;
            let took = started.elapsed().as_secs_f64();
            if !out.status.success() {
                bail!("the bare deployment failed:\n{}", said(&out));
            }
            anyhow::Ok(took)
        }
        .await;
        machines.destroy().await?;
        let _ = std::fs::remove_dir_all(&dir);
        let took = measured?;
        println!("round {round}: bare deploy over SSH (4 hosts, 1 cascaded replica): {took:.1} s");
        times.push(took);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "bare deploy over SSH, {count} runs: min {:.1} s, median {:.1} s, max {:.1} s",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    Ok(())
}

/// Kills the primary of a synchronous design `count` times, bringing the old one back as a
/// standby each time, and sums the acknowledged rows lost.
async fn repeated_kills(count: u32, manager: &str) -> Result<()> {
    let runner = Runner::new(Store::in_memory()?, 1);
    let patroni = manager == "patroni";
    if !patroni && manager != "repmgr" {
        bail!("MANAGER must be repmgr or patroni, not {manager}");
    }
    let link = format!(
        "v=1&name=kills{manager}&pg=15&fm={manager}{}&sync=1&platform=docker&net=10.218.0.0%2F24",
        if patroni { "&haproxy=1" } else { "" }
    );
    let (id, _) = deploy(&runner, link, Profile::Fast).await?;
    let result = async {
        let (mut lost, mut acknowledged, mut recoveries) = (0, 0, Vec::new());
        for round in 1..=count {
            let report = drill(&runner, &id, Drill::KillPrimary { retarget_barman: false }).await?;
            if !report.synchronous {
                bail!("the report says replication was asynchronous");
            }
            let Some(lost_now) = report.writes_lost else {
                bail!("round {round}: no failover, so no loss could be counted: {:?}", report.note);
            };
            lost += lost_now;
            acknowledged += report.writes_acknowledged;
            recoveries.extend(report.rto_ms);
            print_report(&format!("round {round}, {manager} synchronous"), &report);
            bring_back(&runner, &id, &report.target).await?;
        }
        recoveries.sort_unstable();
        println!(
            "{count} kills of a synchronous {manager} cluster (fast profile): {acknowledged} writes acknowledged, {lost} lost; recovery min {}, median {}, max {}",
            seconds(recoveries.first().copied()),
            seconds(recoveries.get(recoveries.len() / 2).copied()),
            seconds(recoveries.last().copied()),
        );
        anyhow::Ok(())
    }
    .await;
    let _ = runner.destroy(&id).await;
    result
}

/// Where a running container's CPU and memory are counted: its cgroup (v2), or its `cpuacct`
/// and `memory` cgroups (v1).
enum Counted {
    V2(std::path::PathBuf),
    V1 {
        cpu: std::path::PathBuf,
        memory: std::path::PathBuf,
    },
}

/// Each running container's cgroups, by the cluster's engine name.
async fn cgroups(cluster: &str) -> Result<Vec<(String, Counted)>> {
    let docker = connect().await?;
    let executor = DockerExecutor::new(docker.clone(), cluster);
    let mut out = Vec::new();
    for (node, _, state) in executor.containers().await? {
        if state != "running" {
            continue;
        }
        let name = format!("m1studio-{cluster}-{node}");
        let inspect = docker
            .inspect_container(
                &name,
                None::<m1studio::target::docker::InspectContainerOptions>,
            )
            .await?;
        let pid = inspect
            .state
            .and_then(|s| s.pid)
            .context("a running container's pid")?;
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        let root = std::path::Path::new("/sys/fs/cgroup");
        let of = |controller: &str| {
            cgroup.lines().find_map(|l| {
                let mut fields = l.splitn(3, ':');
                let (_, names, path) = (fields.next()?, fields.next()?, fields.next()?);
                names
                    .split(',')
                    .any(|n| n == controller)
                    .then(|| root.join(controller).join(path.trim_start_matches('/')))
            })
        };
        if root.join("cgroup.controllers").exists() {
            let path = cgroup
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .context("a cgroup")?;
            out.push((node, Counted::V2(root.join(path.trim_start_matches('/')))));
        } else {
            let counted = Counted::V1 {
                cpu: of("cpuacct").context("a cpuacct cgroup")?,
                memory: of("memory").context("a memory cgroup")?,
            };
            out.push((node, counted));
        }
    }
    Ok(out)
}

fn number(path: std::path::PathBuf) -> Result<u64> {
    Ok(std::fs::read_to_string(&path)
        .with_context(|| path.display().to_string())?
        .trim()
        .parse()
        .unwrap_or(0))
}

/// A value of a `key value` file such as `cpu.stat` or `memory.stat`.
fn stat(path: std::path::PathBuf, key: &str) -> Result<u64> {
    Ok(std::fs::read_to_string(&path)
        .with_context(|| path.display().to_string())?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0))
}

/// Microseconds of CPU the cgroups used so far, and their memory in bytes now (without the
/// page cache, which the kernel gives back when it needs it).
fn usage(groups: &[Counted]) -> Result<(u64, u64)> {
    let (mut cpu, mut memory) = (0, 0);
    for group in groups {
        match group {
            Counted::V2(dir) => {
                cpu += stat(dir.join("cpu.stat"), "usage_usec")?;
                memory += number(dir.join("memory.current"))?
                    .saturating_sub(stat(dir.join("memory.stat"), "file")?);
            }
            Counted::V1 { cpu: c, memory: m } => {
                cpu += number(c.join("cpuacct.usage"))? / 1000;
                memory += number(m.join("memory.usage_in_bytes"))?
                    .saturating_sub(stat(m.join("memory.stat"), "total_cache")?);
            }
        }
    }
    Ok((cpu, memory))
}

/// `count` idle default clusters (with Patroni and HAProxy when `patroni`): CPU and memory
/// each, and each node's CPU to deploy, idle CPU and memory, by its kind.
async fn idle(count: u32, patroni: bool) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("m1studio-bench-idle-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let names: Vec<String> = (0..count).map(|i| format!("idle{i}")).collect();
    let runner = Runner::new(Store::open(&dir.join("m1studio.db"))?, 2);
    let mut ids = Vec::new();
    for name in &names {
        let manager = if patroni {
            "patroni&haproxy=1"
        } else {
            "repmgr"
        };
        let request = DeployRequest {
            link: Some(format!(
                "v=2&name={name}&pg=15&fm={manager}&platform=docker"
            )),
            profile: Some(Profile::Fast),
            ..DeployRequest::default()
        };
        ids.push(runner.submit(request).await.map_err(anyhow_of)?.id);
    }
    let started = Instant::now();
    for id in &ids {
        loop {
            let record = runner.get(id).map_err(anyhow_of)?;
            match record.state {
                DeploymentState::Running => break,
                DeploymentState::Failed => bail!("{id} failed: {:?}", record.error),
                _ if started.elapsed() > Duration::from_secs(900) => bail!("{id} is not running"),
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }
    println!(
        "{count} default clusters running after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // What each node of the first cluster used to be deployed: its CPU so far.
    let deployed: Vec<(String, u64)> = cgroups(&names[0])
        .await?
        .into_iter()
        .map(|(node, group)| Ok((node, usage(std::slice::from_ref(&group))?.0)))
        .collect::<Result<_>>()?;
    let kinds: std::collections::HashMap<String, String> = runner
        .view(&runner.get(&ids[0]).map_err(anyhow_of)?)
        .instances
        .iter()
        .map(|i| (i.name.clone(), format!("{:?}", i.kind)))
        .collect();
    for (node, cpu) in &deployed {
        println!(
            "  deploy, {node} ({}): {:.2} s of CPU",
            kinds.get(node).map_or("?", String::as_str),
            *cpu as f64 / 1e6
        );
    }
    // Past barman cron's first two minutes, when it runs every 15 s: the steady state.
    tokio::time::sleep(Duration::from_secs(130)).await;
    let mut groups = Vec::new();
    let mut nodes = Vec::new();
    for name in &names {
        let (names, counted): (Vec<String>, Vec<Counted>) =
            cgroups(name).await?.into_iter().unzip();
        groups.push(counted);
        nodes.push(names);
    }
    // Each node of the first cluster on its own, to see where the time goes.
    let first: Vec<u64> = groups[0]
        .iter()
        .map(|g| usage(std::slice::from_ref(g)).map(|u| u.0))
        .collect::<Result<_>>()?;
    let before: Vec<(u64, u64)> = groups.iter().map(|g| usage(g)).collect::<Result<_>>()?;
    let window = Instant::now();
    // Two minutes: barman cron's period, so that the window holds one run of it.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let seconds = window.elapsed().as_secs_f64();
    let after: Vec<(u64, u64)> = groups.iter().map(|g| usage(g)).collect::<Result<_>>()?;
    for ((node, group), cpu0) in nodes[0].iter().zip(&groups[0]).zip(&first) {
        let (cpu1, memory) = usage(std::slice::from_ref(group))?;
        println!(
            "  {}, {node} ({}): {:.1} ms/s, {} MiB",
            names[0],
            kinds.get(node).map_or("?", String::as_str),
            (cpu1 - cpu0) as f64 / 1000.0 / seconds,
            memory / (1024 * 1024)
        );
    }
    let mut total = 0.0;
    for ((name, (cpu0, _)), (cpu1, memory)) in names.iter().zip(&before).zip(&after) {
        let per_second = (cpu1 - cpu0) as f64 / 1000.0 / seconds;
        total += per_second;
        println!(
            "{name}: {per_second:.1} ms of CPU per second, {} MiB",
            memory / (1024 * 1024)
        );
    }
    println!(
        "{count} idle clusters: {total:.1} ms/s together, {:.1} ms/s each",
        total / f64::from(count.max(1))
    );
    for id in &ids {
        runner.destroy(id).await.map_err(anyhow_of)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
