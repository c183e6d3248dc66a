//! `m1studio serve`: the designer and its API.

use super::files::{open_store, store_dir};
use crate::target::SshAccess;
use anyhow::{Context as _, Result, bail};
use m1studio_shared::capacity::Host;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The options of `m1studio serve`.
#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Where to listen; anything but loopback needs a token
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The token clients must send to /api (Authorization: Bearer TOKEN); better from the
    /// environment (M1STUDIO_TOKEN) or --token-file than on a command line others can list
    #[arg(long, env = "M1STUDIO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file (readable by its owner only) whose first line is the token
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// How many deployments run at once; the others wait in a queue. By default two per core
    #[arg(long, env = "M1STUDIO_PARALLEL", value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: Option<u16>,
    /// Deploy bare designs too, logging in to their hosts as root with this private key
    #[arg(long, value_name = "FILE")]
    ssh_key: Option<PathBuf>,
    /// A host name browsers use to reach this server, besides 127.0.0.1 and localhost (and the
    /// address it listens on); others are refused, against DNS rebinding. Repeat for more
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
    /// Run a workshop of this name: attendees join with the link printed at the start, each
    /// with a token of their own, and see only their own clusters; the trainer's token is in a
    /// file beside the store (or M1STUDIO_TOKEN)
    #[arg(long, value_name = "NAME")]
    workshop: Option<String>,
    /// How many attendees may join the workshop
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u16).range(1..=1000))]
    max_attendees: u16,
    /// Where docker clusters that leave their network at the default get one (a /24 each)
    #[arg(long, value_name = "CIDR", default_value = m1studio_shared::net::DEFAULT_POOL)]
    address_pool: ipnet::Ipv4Net,
    /// How many clusters may live at once; by default as many default clusters as three
    /// quarters of the host's memory and CPU hold. Either way, a cluster is admitted only while
    /// what the live ones cost, idle, leaves room for what it costs
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    max_clusters: Option<u16>,
    /// How many clusters each attendee of a workshop may have at once
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    per_attendee: u16,
    /// Serve HTTPS with this certificate chain (PEM), with --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM), with --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How long a cluster lives before it is destroyed (such as 4h, 90m or 600s); by default 4h
    /// in a workshop, and for ever otherwise
    #[arg(long, value_name = "DURATION", value_parser = duration_value)]
    cluster_ttl: Option<std::time::Duration>,
    /// How many connections may be open at once; more wait until one closes. Event streams
    /// (pages following a deployment) may take half of them
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u16).range(16..))]
    max_connections: u16,
    /// How many seconds a client has to send a request's headers before its connection is
    /// closed
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=300))]
    header_timeout: u16,
    /// How many deployments may wait for a slot; more are refused (503) until some start
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    max_queued: u16,
}

/// A duration such as `4h`, `90m` or `600s`.
fn duration_value(text: &str) -> std::result::Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let seconds = match unit {
        "s" => 1,
        "m" | "" => 60,
        "h" => 3600,
        _ => {
            return Err(format!(
                "{text} is not a duration: write it as 4h, 90m or 600s"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| std::time::Duration::from_secs(n * seconds))
        .ok_or_else(|| format!("{text} is not a duration: write it as 4h, 90m or 600s"))
}

/// What this machine has: its cores, and its memory from /proc/meminfo.
fn this_host() -> Option<Host> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Some(Host {
        cores: u64::try_from(cores).unwrap_or(1),
        memory_mib: kib / 1024,
    })
}

/// What a default cluster costs: the design a workshop's link gives by default.
fn default_cluster_cost() -> m1studio_shared::capacity::Cost {
    m1studio_shared::configure(&m1studio_shared::Draft::starter())
        .0
        .map(|c| m1studio_shared::capacity::configured_cost(&c))
        .unwrap_or_default()
}

/// Serves the designer and `/api` as `args` say, with the store at `db`; with an SSH key, bare
/// designs are deployed too, each cluster's host keys kept beside the store.
pub(crate) fn serve_command(args: ServeArgs, db: Option<&Path>) -> Result<ExitCode> {
    let ServeArgs {
        listen,
        token,
        token_file,
        parallel,
        ssh_key,
        allowed_hosts,
        workshop,
        max_attendees,
        address_pool,
        max_clusters,
        per_attendee,
        cluster_ttl,
        tls_cert,
        tls_key,
        max_connections,
        header_timeout,
        max_queued,
    } = args;
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(crate::server::Tls { cert, key }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = this_host();
    let parallel = parallel
        .map(usize::from)
        .or(host.map(|h| h.parallel()))
        .unwrap_or(2);
    let token = match token_file {
        Some(file) => {
            crate::store::check_private(&file)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            Some(text.lines().next().unwrap_or_default().trim().to_string())
        }
        None => token,
    };
    if address_pool.prefix_len() > m1studio_shared::net::POOL_PREFIX
        || !address_pool.network().is_private()
    {
        bail!(
            "--address-pool {address_pool}: give a private range of at least a /{} (inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16), such as 10.0.0.0/8",
            m1studio_shared::net::POOL_PREFIX
        );
    }
    let workshop = match workshop {
        Some(name) => {
            if m1studio_shared::hostnames::dns_label_problem(&name).is_some() {
                bail!(
                    "--workshop {name}: give a short name of lowercase letters, digits and hyphens, such as pg-ha-march"
                );
            }
            let file = store_dir(db).join(format!("workshop-{name}.json"));
            let workshop = crate::server::Workshop::open(
                &name,
                &file,
                token.clone(),
                usize::from(max_attendees),
            )?;
            Some((Arc::new(workshop), file))
        }
        None => None,
    };
    // A workshop's token is the trainer's, from its file where none was given.
    let exposed_ok = workshop.is_some() || token.is_some();
    if !listen.ip().is_loopback() && !exposed_ok {
        bail!(
            "--listen {listen} makes the server reachable from other machines, which needs a token: set M1STUDIO_TOKEN or --token-file, run a --workshop, or listen on 127.0.0.1"
        );
    }
    if let Some(problem) = crate::server::listen_problem(listen, token.as_deref())
        .filter(|_| workshop.is_none() || token.is_some())
    {
        bail!("{problem}");
    }
    let bad_hosts: Vec<&String> = allowed_hosts
        .iter()
        .filter(|name| !m1studio_shared::hostnames::is_host_name(name.trim()))
        .collect();
    if !bad_hosts.is_empty() {
        bail!(
            "--allowed-host {}: not a host name; give the name (letters, digits, hyphens and dots, no port) that browsers use to reach this server",
            bad_hosts
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(key) = ssh_key.as_deref().filter(|k| !k.is_file()) {
        bail!(
            "--ssh-key {}: no such file; give the private key that logs in to the hosts of bare designs as root",
            key.display()
        );
    }
    let store = open_store(db)?;
    let in_workshop = workshop.is_some();
    let ssh = match ssh_key {
        Some(key) => {
            let hosts = store_dir(db).join("known_hosts");
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&hosts)
                .with_context(|| format!("cannot create {}", hosts.display()))?;
            Some(SshAccess {
                key: Some(key),
                known_hosts: Arc::new(move |cluster: &str| hosts.join(cluster)),
            })
        }
        None => None,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runner = crate::runner::Runner::with(
        store,
        crate::runner::Settings {
            parallel,
            ssh,
            pool: address_pool,
            max_clusters: max_clusters
                .map(usize::from)
                .or(host.map(|h| h.holds(default_cluster_cost()))),
            per_attendee: Some(usize::from(per_attendee)),
            ttl: cluster_ttl.or(in_workshop.then_some(std::time::Duration::from_secs(4 * 3600))),
            max_queued: usize::from(max_queued),
            host,
        },
    );
    let mut allowed_hosts: Vec<String> = allowed_hosts
        .iter()
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    // The address the server listens on, where it is one, is its own name too.
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        allowed_hosts.push(match listen.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        });
    }
    if let Some((workshop, file)) = &workshop {
        let host = allowed_hosts
            .first()
            .cloned()
            .unwrap_or_else(|| listen.ip().to_string());
        println!(
            "workshop {}: attendees join at {scheme}://{host}:{}/#join={}",
            workshop.name,
            listen.port(),
            workshop.code()
        );
        println!(
            "  the trainer's room: {scheme}://{host}:{}/trainer, with the token in {}",
            listen.port(),
            file.display()
        );
    }
    let state = crate::server::AppState {
        workshop: workshop.map(|(workshop, _)| workshop),
        allowed_hosts: allowed_hosts.into(),
        token: token.map(Into::into),
        runner: Some(runner.clone()),
        followers: crate::server::Followers::new(usize::from(max_connections) / 2),
        ..crate::server::AppState::default()
    };
    let limits = crate::server::Limits {
        connections: usize::from(max_connections),
        headers: std::time::Duration::from_secs(u64::from(header_timeout)),
        ..crate::server::Limits::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        for change in runner.reconcile().await? {
            tracing::info!("after the restart: {change}");
        }
        runner.keep_alive();
        runner.expire_every(std::time::Duration::from_secs(5));
        let served = crate::server::serve(listen, state, tls, limits, Default::default()).await;
        // Deployments under way stop with the server: they are recorded as interrupted.
        for id in runner.interrupt() {
            tracing::info!("deployment {id} was interrupted by the server's stop");
        }
        served
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_are_written_with_their_unit() {
        assert_eq!(duration_value("4h"), Ok(Duration::from_secs(4 * 3600)));
        assert_eq!(duration_value("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(duration_value("600s"), Ok(Duration::from_secs(600)));
        assert_eq!(
            duration_value("30"),
            Ok(Duration::from_secs(30 * 60)),
            "minutes by default"
        );
        for bad in ["", "0s", "4d", "h", "-5m", "1.5h"] {
            assert!(
                duration_value(bad).unwrap_err().contains("4h, 90m or 600s"),
                "{bad}"
            );
        }
    }
}
