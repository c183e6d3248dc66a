//! A bare design deployed on existing hosts over SSH: the hosts are containers of the node image
//! (Debian with the packages, supervisord running) where the test starts sshd and authorises a
//! key of its own for root, as an administrator would prepare a machine. `m1studio deploy` then
//! reaches them only over SSH, from the Docker engine's network namespace where it has one.

use anyhow::{Context as _, Result, bail, ensure};
use m1studio::engine::{Executor as _, argv, query};
use m1studio::target::docker::DockerExecutor;
use m1studio_e2e::hosts::{
    configure_bare, hostnames_file, m1studio_near_the_engine, prepared_hosts, said,
};
use m1studio_e2e::{destroy_on_failure, docker_or_skip, m1studio};
use m1studio_shared::plan::{PlanOptions, Profile};
use std::time::{Duration, Instant};

const NETWORK: &str = "10.219.0";

/// The code of a host that is not ready for a deployment.
const NOT_READY: &str = "host-not-ready";

async fn eventually(executor: &DockerExecutor, node: &str, sql: &str, expect: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        match query(executor, node, sql).await {
            Ok(answer) if answer == expect => return Ok(()),
            answer if started.elapsed() > Duration::from_secs(30) => {
                bail!("{sql} on {node}: {answer:?}, not {expect}")
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_design_is_deployed_over_ssh_on_prepared_hosts() -> Result<()> {
    let Some(engine) = docker_or_skip("the bare deployment test").await? else {
        return Ok(());
    };
    // A directory with a space and a percent sign: ssh reads both in file names.
    let dir = std::env::temp_dir().join(format!("m1studio bare 100% {}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    // The hosts: the default design's four machines.
    let (machines, hosts, key) = prepared_hosts(
        engine,
        m1studio_shared::Draft::starter(),
        &format!("{NETWORK}.0/24"),
        &dir,
    )
    .await?;

    destroy_on_failure(&machines, async {
        // The design: the same machines as a bare cluster, each instance with its address.
        let cluster = format!("bare{}", std::process::id() % 100000);
        let configure = m1studio(
            &["configure", &cluster, "-a", "M1", "--postgresql", "15", "--enable-repmgr", "--platform", "bare"],
            &dir,
        )?;
        ensure!(configure.status.success(), "{}", said(&configure));
        let config = dir.join(&cluster).join("config.yml");

        // Without addresses nothing is tried, and each missing one is named.
        let refused = m1studio(&["deploy", &cluster, "--ssh-key", key.to_str().unwrap()], &dir)?;
        let text = said(&refused);
        ensure!(!refused.status.success(), "{text}");
        for (index, instance) in hosts.topology.instances.iter().enumerate() {
            ensure!(
                text.contains(&format!("instances[{index}].ip_address: {} has no address", instance.name)),
                "{text}"
            );
        }
        ensure!(text.contains("nothing was changed on any host"), "{text}");

        // Each host's address after its name, as TPA's --hostnames-from file gives them.
        hostnames_file(&hosts, &dir)?;
        let configure = configure_bare(&cluster, &["--enable-repmgr", "--force"], &dir)?;
        ensure!(configure.status.success(), "{}", said(&configure));
        let with_addresses = std::fs::read_to_string(&config)?;
        ensure!(with_addresses.contains(&format!("  ip_address: {NETWORK}.2\n")), "{with_addresses}");

        // A host that already holds a data directory, and another where something listens on
        // Postgres's port (as Debian's own cluster would), stop the deployment before any host
        // is changed, both named at once: the others get neither files nor names.
        let primary = hosts.topology.instances[0].name.clone();
        let second = hosts.topology.instances[1].name.clone();
        let touch = argv(&["install", "-o", "postgres", "-m", "0600", "/dev/null", "/var/lib/postgresql/data/PG_VERSION"]);
        ensure!(machines.run(&primary, &touch, "root", None).await?.code == 0);
        let listen = "import os, socket, sys, time\ns = socket.socket()\ns.bind(('', 5432))\ns.listen()\nif os.fork():\n    os._exit(0)\nos.setsid()\nnull = os.open(os.devnull, os.O_RDWR)\nfor fd in (0, 1, 2):\n    os.dup2(null, fd)\ntime.sleep(600)\n";
        let busy = machines.run(&second, &argv(&["python3", "-c", listen, "m1studio-busy-port"]), "root", None).await?;
        ensure!(busy.code == 0, "{}", busy.stderr);
        let refused = m1studio_near_the_engine(&["deploy", &cluster, "--ssh-key", key.to_str().unwrap()], &dir)?;
        let text = said(&refused);
        ensure!(!refused.status.success(), "{text}");
        // Each problem at its instance, with the code of a host that is not ready.
        ensure!(text.contains(&format!("error[{NOT_READY}] instances[0]: {primary} (")) && text.contains("already has a data directory in /var/lib/postgresql/data"), "{text}");
        ensure!(text.contains(&format!("error[{NOT_READY}] instances[1]: {second} (")) && text.contains("something already listens on port 5432, which replica needs"), "{text}");
        ensure!(text.contains("nothing was changed on any host"), "{text}");
        let stop = machines.run(&second, &argv(&["pkill", "-f", "m1studio-busy-port"]), "root", None).await?;
        ensure!(stop.code == 0, "{}", stop.stderr);
        for instance in &hosts.topology.instances {
            let repmgr = machines.run(&instance.name, &argv(&["test", "-e", "/etc/repmgr.conf"]), "root", None).await?;
            ensure!(repmgr.code != 0, "{} got files from a refused deployment", instance.name);
            let named = machines.run(&instance.name, &argv(&["grep", "-c", "m1studio", "/etc/hosts"]), "root", None).await?;
            ensure!(named.stdout.trim() == "0", "{} was named in /etc/hosts by a refused deployment", instance.name);
        }
        let remove = argv(&["rm", "/var/lib/postgresql/data/PG_VERSION"]);
        ensure!(machines.run(&primary, &remove, "root", None).await?.code == 0);

        // The deployment, over SSH only.
        let deployed = m1studio_near_the_engine(&["deploy", &cluster, "--ssh-key", key.to_str().unwrap()], &dir)?;
        let text = said(&deployed);
        ensure!(deployed.status.success(), "{text}");
        ensure!(text.contains(&format!("cluster {cluster} is running on its hosts")), "{text}");
        eprintln!("{text}");
        let secrets = std::fs::read_to_string(dir.join(&cluster).join("m1studio.secrets"))?;
        let secrets: serde_json::Value = serde_json::from_str(&secrets)?;
        let password = secrets["postgres"].as_str().context("the postgres password")?;
        ensure!(!text.contains(password), "the password is never printed");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(&cluster).join("m1studio.secrets"))?.permissions(),
        );
        ensure!(mode & 0o077 == 0, "the secrets file is its owner's only: {mode:o}");

        // M1 on the hosts: the replica streams from the primary, the cascaded replica from the
        // replica, a row written on the primary reaches the cascaded replica, Barman is green
        // with a backup.
        // TPA's numbering: Barman is node 3, the cascaded replica node 4.
        let [primary, replica, barman, cascaded] = [0, 1, 2, 3].map(|i| hosts.topology.instances[i].name.clone());
        eventually(&machines, &primary, "SELECT string_agg(application_name || ':' || state, ',') FROM pg_stat_replication WHERE application_name <> 'barman_receive_wal'", &format!("{replica}:streaming")).await?;
        eventually(&machines, &replica, "SELECT string_agg(application_name || ':' || state, ',') FROM pg_stat_replication", &format!("{cascaded}:streaming")).await?;
        query(&machines, &primary, "CREATE TABLE over_ssh (id int); INSERT INTO over_ssh VALUES (1)").await?;
        eventually(&machines, &cascaded, "SELECT count(*) FROM over_ssh", "1").await?;
        let check = machines.run(&barman, &argv(&["barman", "check", &primary]), "barman", None).await?;
        ensure!(check.code == 0 && !check.stdout.contains("FAILED"), "{}", check.stdout);
        let backups = machines.run(&barman, &argv(&["barman", "list-backups", "--minimal", &primary]), "barman", None).await?;
        ensure!(backups.stdout.lines().count() == 1, "{}", backups.stdout);

        // Each host was named in /etc/hosts, and repmgr reaches the others over the hosts' own
        // sshd as postgres: its switchover checks pass.
        let hostsfile = machines.run(&cascaded, &argv(&["cat", "/etc/hosts"]), "root", None).await?;
        ensure!(hostsfile.stdout.contains("# m1studio: begin") && hostsfile.stdout.contains(&format!("{NETWORK}.2\t{primary}")), "{}", hostsfile.stdout);
        let dry_run = machines
            .run(&replica, &argv(&["repmgr", "-f", "/etc/repmgr.conf", "standby", "switchover", "--dry-run"]), "postgres", None)
            .await?;
        ensure!(dry_run.code == 0, "{}{}", dry_run.stdout, dry_run.stderr);
        ensure!(dry_run.stdout.contains("SSH connection to host") || dry_run.stderr.contains("SSH connection to host"), "{}{}", dry_run.stdout, dry_run.stderr);

        // The status, over SSH: roles, upstreams, Barman.
        let key_arg = key.to_str().unwrap();
        let status = m1studio_near_the_engine(&["status", &cluster, "--ssh-key", key_arg], &dir)?;
        let text = said(&status);
        ensure!(status.status.success(), "{text}");
        let row = |node: &str| text.lines().find(|l| l.starts_with(node)).unwrap_or_default().to_string();
        ensure!(row(&primary).contains(" running ") && row(&primary).contains(" primary "), "{text}");
        ensure!(row(&replica).contains(" standby ") && row(&replica).trim_end().ends_with(&primary), "{text}");
        ensure!(row(&cascaded).contains(" standby ") && row(&cascaded).trim_end().ends_with(&replica), "{text}");
        ensure!(text.contains(&format!("barman on {barman} backs up {primary}: check OK, 1 backup(s)")), "{text}");

        // The deployment is in the store, as a docker one would be: the same status comes from
        // the runner, through the SSH target.
        ensure!(text.lines().next().is_some_and(|l| l.starts_with("deployment ") && l.ends_with(": running")), "{text}");

        // Drills that break machines are refused for existing hosts, with their code, and
        // nothing is touched.
        let drill = m1studio_near_the_engine(&["drill", &cluster, "kill-primary", "--ssh-key", key_arg], &dir)?;
        ensure!(!drill.status.success() && said(&drill).contains("error[drill-invalid] action: kill-primary"), "{}", said(&drill));

        // A second deployment of the same cluster is refused while the first one lives.
        let again = m1studio_near_the_engine(&["deploy", &cluster, "--ssh-key", key_arg], &dir)?;
        let text = said(&again);
        ensure!(!again.status.success() && text.contains(&format!("a cluster named {cluster} is already deployed")), "{text}");

        // The primary's machine fails: repmgrd on the hosts promotes the replica, the
        // cascaded replica keeps streaming from it, and the status shows the host unreachable.
        machines.kill(&primary).await?;
        let started = Instant::now();
        loop {
            let status = m1studio_near_the_engine(&["status", &cluster, "--ssh-key", key_arg], &dir)?;
            let text = said(&status);
            let row = |node: &str| text.lines().find(|l| l.starts_with(node)).unwrap_or_default().to_string();
            if row(&replica).contains(" primary ") && row(&primary).contains(" unreachable ") {
                eprintln!("failover on the hosts after {:.1} s:\n{text}", started.elapsed().as_secs_f64());
                break;
            }
            ensure!(started.elapsed() < Duration::from_secs(90), "no failover within 90 s: {text}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        eventually(&machines, &replica, "SELECT string_agg(application_name || ':' || state, ',') FROM pg_stat_replication WHERE application_name <> 'barman_receive_wal'", &format!("{cascaded}:streaming")).await?;
        query(&machines, &replica, "INSERT INTO over_ssh VALUES (2)").await?;
        eventually(&machines, &cascaded, "SELECT count(*) FROM over_ssh", "2").await?;

        // Destroying a bare deployment forgets it and leaves the hosts as they are; a new
        // deployment then finds their data directories and changes nothing.
        let destroy = m1studio_near_the_engine(&["destroy", &cluster], &dir)?;
        ensure!(destroy.status.success(), "{}", said(&destroy));
        let answer = query(&machines, &replica, "SELECT count(*) FROM over_ssh").await?;
        ensure!(answer == "2", "the hosts keep their data after destroy: {answer}");
        let again = m1studio_near_the_engine(&["deploy", &cluster, "--ssh-key", key_arg], &dir)?;
        let text = said(&again);
        ensure!(!again.status.success() && text.contains(&format!("error[{NOT_READY}]")) && text.contains("already has a data directory"), "{text}");
        ensure!(text.contains("nothing was changed on any host"), "{text}");

        // The plan for these hosts runs no sshd of its own.
        let bare = m1studio_shared::configure(&m1studio_shared::config::read(&with_addresses).0.context("the bare draft")?)
            .0
            .context("the bare design")?;
        let plan = m1studio_shared::plan::plan(&bare.design, &bare.topology, PlanOptions { profile: Profile::Fast, edb_token: false })
            .map_err(|d| anyhow::anyhow!("{d:?}"))?;
        ensure!(plan.nodes.iter().all(|n| n.files.iter().all(|f| !f.path.contains("sshd"))));
        anyhow::Ok(())
    })
    .await?;
    machines.destroy().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_patroni_design_with_haproxy_is_deployed_over_ssh() -> Result<()> {
    let Some(engine) = docker_or_skip("the bare Patroni deployment test").await? else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("m1studio-bare-patroni-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut draft = m1studio_shared::Draft::starter();
    draft.failover_manager = Some("patroni".into());
    draft.enable_haproxy = true;
    let (machines, hosts, key) = prepared_hosts(engine, draft, "10.220.0.0/24", &dir).await?;
    destroy_on_failure(&machines, async {
        hostnames_file(&hosts, &dir)?;
        let cluster = format!("barep{}", std::process::id() % 100000);
        let configure = configure_bare(&cluster, &["--enable-patroni", "--enable-haproxy"], &dir)?;
        ensure!(configure.status.success(), "{}", said(&configure));
        let key = key.to_str().unwrap();
        let deployed = m1studio_near_the_engine(&["deploy", &cluster, "--ssh-key", key], &dir)?;
        let text = said(&deployed);
        ensure!(deployed.status.success(), "{text}");
        eprintln!("{text}");

        // The leader, its replica and the cascaded replica; etcd with a leader; HAProxy sends
        // writes to the leader; Barman green.
        let status = m1studio_near_the_engine(&["status", &cluster, "--ssh-key", key], &dir)?;
        let text = said(&status);
        ensure!(status.status.success(), "{text}");
        let names: Vec<&str> = hosts
            .topology
            .instances
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        let row = |node: &str| {
            text.lines()
                .find(|l| l.starts_with(node))
                .unwrap_or_default()
                .to_string()
        };
        ensure!(row(names[0]).contains(" primary "), "{text}");
        ensure!(
            row(names[1]).contains(" standby ") && row(names[3]).contains(" standby "),
            "{text}"
        );
        ensure!(text.contains("etcd leader"), "{text}");
        ensure!(text.contains(&format!("rw → {}", names[0])), "{text}");
        ensure!(text.contains("check OK, 1 backup(s)"), "{text}");

        // A write through HAProxy reaches the cascaded replica.
        let haproxy = hosts
            .topology
            .instances
            .iter()
            .find(|i| i.kind == m1studio_shared::Kind::Haproxy)
            .context("an HAProxy node")?;
        let barman = hosts
            .topology
            .instances
            .iter()
            .find(|i| i.kind == m1studio_shared::Kind::Barman)
            .context("a Barman node")?;
        let through = format!(
            "host={} port=5432 user=barman dbname=postgres",
            haproxy.name
        );
        let write = machines
            .run(
                &barman.name,
                &argv(&[
                    "psql",
                    "-XAtq",
                    "-d",
                    &through,
                    "-c",
                    "CREATE TABLE through_haproxy (id int); INSERT INTO through_haproxy VALUES (1)",
                ]),
                "barman",
                None,
            )
            .await?;
        ensure!(write.code == 0, "{}", write.stderr);
        eventually(
            &machines,
            names[3],
            "SELECT count(*) FROM through_haproxy",
            "1",
        )
        .await?;
        anyhow::Ok(())
    })
    .await?;
    machines.destroy().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
