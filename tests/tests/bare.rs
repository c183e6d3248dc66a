//! A bare design deployed on existing hosts over SSH: the hosts are containers of the node image
//! (Debian with the packages, supervisord running) where the test starts sshd and authorises a
//! key of its own for root, as an administrator would prepare a machine. `m1studio deploy` then
//! reaches them only over SSH, from the Docker engine's network namespace where it has one.

use anyhow::{Context as _, Result, bail, ensure};
use m1studio::docker::{self, DockerExecutor};
use m1studio::engine::{Executor as _, argv, query};
use m1studio_e2e::{binary, destroy_on_failure, docker_or_skip, m1studio};
use m1studio_shared::plan::{File, PlanOptions, Profile};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const NETWORK: &str = "10.219.0";

/// `m1studio ARGS` run where the Docker engine's containers are reachable: inside the engine's
/// network namespace when it runs in one of its own (as `.ci/docker-engine` starts it).
fn m1studio_near_the_engine(args: &[&str], dir: &Path) -> Result<std::process::Output> {
    let ours = std::fs::read_link("/proc/self/ns/net")?;
    let engine = std::fs::read_to_string("/var/run/docker.pid")
        .ok()
        .map(|pid| format!("/proc/{}/ns/net", pid.trim()));
    let mut command = match engine.filter(|ns| std::fs::read_link(ns).is_ok_and(|n| n != ours)) {
        Some(ns) => {
            let mut command = Command::new("nsenter");
            command.arg(format!("--net={ns}")).arg("--").arg(binary()?);
            command
        }
        None => Command::new(binary()?),
    };
    Ok(command.args(args).current_dir(dir).output()?)
}

fn said(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

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
    let dir = std::env::temp_dir().join(format!("m1studio-bare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    // The hosts: the default design's four machines, made from the node image.
    let hosts_name = format!("hosts{}", std::process::id() % 100000);
    let mut draft = m1studio_shared::Draft::starter();
    draft.cluster_name = hosts_name.clone();
    draft.platform = Some("docker".into());
    draft.network = Some(format!("{NETWORK}.0/24"));
    let hosts = m1studio_shared::configure(&draft)
        .0
        .context("the hosts' design")?;
    let image = m1studio_shared::plan::node_image(&hosts.design, None)
        .map_err(|d| anyhow::anyhow!(d.message))?;
    if !docker::image_exists(&engine, &image.tag).await {
        eprintln!("building the node image {}", image.tag);
        docker::build_image(&engine, &image, &|line| eprintln!("  {line}")).await?;
    }
    let machines = DockerExecutor::new(engine, &hosts_name);
    let key = dir.join("id_ed25519");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .context("ssh-keygen (Debian's openssh-client)")?;
    ensure!(keygen.status.success(), "{}", said(&keygen));
    let public = std::fs::read_to_string(dir.join("id_ed25519.pub"))?;

    destroy_on_failure(&machines, async {
        let files = hosts
            .topology
            .instances
            .iter()
            .map(|i| {
                let authorized = File {
                    path: "/root/.ssh/authorized_keys".into(),
                    owner: "root".into(),
                    mode: 0o600,
                    content: public.clone(),
                };
                (i.name.clone(), vec![authorized])
            })
            .collect();
        let waves: Vec<Vec<String>> = Vec::new();
        machines
            .create(&hosts.topology, &format!("{NETWORK}.0/24"), &image, &[], &files, &waves)
            .await?;
        machines.all_started().await?;
        for instance in &hosts.topology.instances {
            for words in [
                &["ssh-keygen", "-A"][..],
                &["install", "-d", "-m", "0755", "/run/sshd"],
                &["/usr/sbin/sshd"],
            ] {
                let out = machines.run(&instance.name, &argv(words), "root", None).await?;
                ensure!(out.code == 0, "{words:?} on {}: {}", instance.name, out.stderr);
            }
        }

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
        let hostnames: String = hosts
            .topology
            .instances
            .iter()
            .map(|i| format!("{} {}\n", i.name, i.ip_address.expect("a host address")))
            .collect();
        std::fs::write(dir.join("hosts.txt"), hostnames)?;
        let configure = m1studio(
            &["configure", &cluster, "-a", "M1", "--postgresql", "15", "--enable-repmgr", "--platform", "bare", "--hostnames-from", "hosts.txt", "--force"],
            &dir,
        )?;
        ensure!(configure.status.success(), "{}", said(&configure));
        let with_addresses = std::fs::read_to_string(&config)?;
        ensure!(with_addresses.contains(&format!("  ip_address: {NETWORK}.2\n")), "{with_addresses}");

        // A host that already holds a data directory stops the deployment before any host is
        // changed: the others get neither files nor names.
        let primary = hosts.topology.instances[0].name.clone();
        let touch = argv(&["install", "-o", "postgres", "-m", "0600", "/dev/null", "/var/lib/postgresql/data/PG_VERSION"]);
        ensure!(machines.run(&primary, &touch, "root", None).await?.code == 0);
        let refused = m1studio_near_the_engine(&["deploy", &cluster, "--ssh-key", key.to_str().unwrap()], &dir)?;
        let text = said(&refused);
        ensure!(!refused.status.success(), "{text}");
        ensure!(text.contains(&format!("{primary} (")) && text.contains("already has a data directory in /var/lib/postgresql/data"), "{text}");
        ensure!(text.contains("nothing was changed on any host"), "{text}");
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
        let [primary, replica, cascaded, barman] = [0, 1, 2, 3].map(|i| hosts.topology.instances[i].name.clone());
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

        // Drills and destroy leave existing hosts alone, and say so.
        let drill = m1studio(&["drill", &cluster, "kill-primary"], &dir)?;
        ensure!(!drill.status.success() && said(&drill).contains("existing hosts that m1studio will not break"), "{}", said(&drill));
        let destroy = m1studio(&["destroy", &cluster], &dir)?;
        ensure!(!destroy.status.success() && said(&destroy).contains("never removes clusters from existing hosts"), "{}", said(&destroy));

        // A second run finds the data directories and changes nothing.
        let again = m1studio_near_the_engine(&["deploy", &cluster, "--ssh-key", key.to_str().unwrap()], &dir)?;
        let text = said(&again);
        ensure!(!again.status.success() && text.contains("already has a data directory"), "{text}");

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
