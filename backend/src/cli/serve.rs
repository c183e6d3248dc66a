//! `m1studio serve`: the designer and its API.

use super::files::{open_store, store_dir};
use crate::target::SshAccess;
use anyhow::{Context as _, Result, bail};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Serves the designer and `/api` on `listen`, with the store at `db`; with `ssh_key`, bare
/// designs are deployed too, each cluster's host keys kept beside the store.
pub(crate) fn serve_command(
    listen: std::net::SocketAddr,
    token: Option<String>,
    db: Option<&Path>,
    parallel: usize,
    ssh_key: Option<PathBuf>,
    allowed_hosts: &[String],
) -> Result<ExitCode> {
    if let Some(problem) = crate::server::listen_problem(listen, token.as_deref()) {
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
    let runner = crate::runner::Runner::with_ssh(store, parallel, ssh);
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
    let state = crate::server::AppState {
        allowed_hosts: allowed_hosts.into(),
        token: token.map(Into::into),
        runner: Some(runner.clone()),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        for change in runner.reconcile().await? {
            tracing::info!("after the restart: {change}");
        }
        crate::server::serve(listen, state).await
    })?;
    Ok(ExitCode::SUCCESS)
}
