//! Targets: where a deployment's machines are, behind one lifecycle. A Docker engine makes its
//! machines (containers) and can break them for drills; existing hosts are reached over SSH and
//! are never created, broken or removed. The runner keeps one `Target` per deployment, runs its
//! plans through it (it is an `Executor`), and never names Docker or SSH itself.

mod archive;
pub mod docker;
pub mod image;
pub mod ssh;

pub use docker::{DEPLOYMENT_LABEL, FoundCluster};

use crate::engine::{Executor, Output};
use anyhow::{Result, bail};
use m1studio_shared::api::{Machine, Signal, bare_hosts, server_refusal};
use m1studio_shared::plan::{File, NodeImage, Readiness, bindir};
use m1studio_shared::spec::PlatformSpec;
use m1studio_shared::{Configured, Diagnostic, Instance, Platform};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// How a runner reaches existing hosts: as root over SSH, with this key (otherwise ssh's own
/// keys and agent), learning each cluster's host keys once into the file `known_hosts` names
/// for it and checking them after.
#[derive(Clone)]
pub struct SshAccess {
    /// The private key that logs in as root.
    pub key: Option<PathBuf>,
    /// The known-hosts file of a cluster, by its name.
    pub known_hosts: Arc<dyn Fn(&str) -> PathBuf + Send + Sync>,
}

/// Why a deployment's target cannot be reached or used.
#[derive(Debug)]
pub enum Unreachable {
    /// The Docker engine does not answer.
    Engine(anyhow::Error),
    /// The design cannot go to its target from here: every reason.
    Design(Vec<Diagnostic>),
}

/// Why a cluster cannot be deployed on its target now.
#[derive(Debug)]
pub enum Refusal {
    /// The target already holds a cluster of this name.
    Taken(String),
    /// The hosts are not ready: every problem of every host.
    Hosts(Vec<Diagnostic>),
}

/// What `provision` says while it works: what it means (building the node image), a title,
/// and a detail.
pub type Progress<'a> = &'a (dyn Fn(Option<Signal>, &str, Option<&str>) + Sync);

/// The clusters whose containers run on the local Docker engine, found by their labels.
pub async fn found_clusters() -> Result<Vec<FoundCluster>> {
    docker::clusters(&docker::connect().await?).await
}

/// The networks of the local Docker engine with an IPv4 range, by name; none where no engine
/// answers.
pub async fn networks_in_use() -> Result<Vec<(String, ipnet::Ipv4Net)>> {
    docker::networks(&docker::connect().await?).await
}

/// Removes every container, volume and network of cluster `cluster` from the local Docker
/// engine, whether a store knows it or not; returns how many objects went.
pub async fn remove_containers(cluster: &str) -> Result<usize> {
    docker::DockerExecutor::new(docker::connect().await?, cluster)
        .destroy()
        .await
}

/// One deployment's machines.
#[derive(Clone)]
pub enum Target {
    /// Containers on a Docker engine.
    Docker(docker::DockerExecutor),
    /// Existing hosts, over SSH.
    Ssh(ssh::SshExecutor),
}

/// What a target does to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Kill it, as a power failure would.
    Kill,
    /// Stop it cleanly.
    Stop,
    /// Start it again.
    Start,
    /// Cut it off the cluster's network.
    Isolate,
    /// Connect it again.
    Reconnect,
}

impl Operation {
    fn verb(self) -> &'static str {
        match self {
            Operation::Kill => "kill",
            Operation::Stop => "stop",
            Operation::Start => "start",
            Operation::Isolate => "cut off",
            Operation::Reconnect => "reconnect",
        }
    }
}

impl Target {
    /// The target of `configured`'s cluster: its Docker engine, or its hosts over SSH when
    /// `ssh` says how to reach them. Nothing is changed.
    /// `name` names the target's objects (the cluster's name, or with its owner's after it).
    pub async fn connect(
        configured: &Configured,
        name: &str,
        ssh: Option<&SshAccess>,
    ) -> std::result::Result<Target, Unreachable> {
        let design = &configured.design;
        if let Some(refusal) = server_refusal(design, ssh.is_some()) {
            return Err(Unreachable::Design(vec![refusal]));
        }
        let cluster = name;
        match (design.platform(), ssh) {
            (PlatformSpec::Bare, Some(access)) => {
                let hosts = bare_hosts(&configured.topology).map_err(Unreachable::Design)?;
                Ok(Target::Ssh(ssh::SshExecutor::new(ssh::SshOptions {
                    hosts,
                    key: access.key.clone(),
                    known_hosts: (access.known_hosts)(cluster),
                    bindir: bindir(design.version()),
                })))
            }
            _ => {
                let engine = docker::connect().await.map_err(Unreachable::Engine)?;
                Ok(Target::Docker(docker::DockerExecutor::new(engine, cluster)))
            }
        }
    }

    /// Whether `configured`'s cluster can be deployed here now: no cluster of its name on the
    /// Docker engine; hosts with their packages, free ports and no data directory. Nothing is
    /// changed.
    pub async fn refusal(&self, configured: &Configured) -> Result<Option<Refusal>> {
        match self {
            Target::Docker(docker) => Ok((!docker.containers().await?.is_empty()).then(|| {
                Refusal::Taken(format!(
                    "containers of a cluster named {} already exist on the Docker engine: destroy them first (`m1studio destroy`), or give the design another cluster_name",
                    configured.design.cluster_name()
                ))
            })),
            Target::Ssh(ssh) => {
                let problems = ssh.check(&configured.topology, &configured.design).await;
                Ok((!problems.is_empty()).then_some(Refusal::Hosts(problems)))
            }
        }
    }

    /// Makes the machines ready for the plan: on Docker, the node image (built where missing)
    /// and one started container per instance, labelled with `labels` and created with
    /// `files`, in the order `waves` gives; on existing hosts, every node named in each host's
    /// `/etc/hosts`.
    #[allow(clippy::too_many_arguments)]
    pub async fn provision(
        &self,
        configured: &Configured,
        image: Option<&NodeImage>,
        labels: &[(&str, &str)],
        files: &HashMap<String, Vec<File>>,
        waves: &[Vec<String>],
        progress: Progress<'_>,
    ) -> Result<()> {
        match self {
            Target::Docker(docker) => {
                let Some(image) = image else {
                    bail!("a docker deployment needs its node image");
                };
                image::ensure(docker.engine(), image, progress).await?;
                progress(
                    None,
                    &format!(
                        "creating {} containers",
                        configured.topology.instances.len()
                    ),
                    None,
                );
                let network = configured
                    .design
                    .network()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                docker
                    .create(&configured.topology, &network, image, labels, files, waves)
                    .await
            }
            Target::Ssh(ssh) => {
                progress(
                    None,
                    "naming the cluster's nodes in each host's /etc/hosts",
                    None,
                );
                ssh.name_hosts(&configured.topology)
                    .await
                    .map_err(|problems| anyhow::anyhow!(problems.join("\n")))
            }
        }
    }

    /// Waits until every machine `provision` started runs its supervisor.
    pub async fn ready(&self) -> Result<()> {
        match self {
            Target::Docker(docker) => docker.all_started().await,
            Target::Ssh(_) => Ok(()),
        }
    }

    /// The target of deployment `id`: what it makes carries the deployment's label, and
    /// destroy removes only what does (existing hosts have nothing of the kind).
    pub fn for_deployment(self, id: &str) -> Target {
        match self {
            Target::Docker(docker) => Target::Docker(docker.for_deployment(id)),
            ssh => ssh,
        }
    }

    /// The platform whose machines these are.
    pub fn platform(&self) -> Platform {
        match self {
            Target::Docker(_) => Platform::Docker,
            Target::Ssh(_) => Platform::Bare,
        }
    }

    /// Only machines m1studio made are broken; `shared::drill::check` refuses such drills on
    /// existing hosts before they get here.
    fn refuse(&self, operation: Operation, node: &str) -> Result<()> {
        bail!(
            "m1studio does not {} {node}: it is an existing host, and m1studio breaks only the containers it made",
            operation.verb()
        )
    }

    /// Each node's machine state, for every machine the target has for the cluster.
    pub async fn machines(&self) -> Result<HashMap<String, Machine>> {
        match self {
            Target::Docker(docker) => Ok(docker
                .containers()
                .await?
                .into_iter()
                .map(|(node, _, state)| (node, Machine::of_container(&state)))
                .collect()),
            Target::Ssh(ssh) => Ok(ssh.reachable().await),
        }
    }

    /// Kills node `node`'s machine.
    pub async fn kill(&self, node: &str) -> Result<()> {
        match self {
            Target::Docker(docker) => docker.kill(node).await,
            Target::Ssh(_) => self.refuse(Operation::Kill, node),
        }
    }

    /// Stops node `node`'s machine cleanly.
    pub async fn stop(&self, node: &str) -> Result<()> {
        match self {
            Target::Docker(docker) => docker.stop(node).await,
            Target::Ssh(_) => self.refuse(Operation::Stop, node),
        }
    }

    /// Starts node `node`'s stopped machine again; its services stay stopped until asked for.
    pub async fn start_machine(&self, node: &str) -> Result<()> {
        match self {
            Target::Docker(docker) => docker.start_container(node).await,
            Target::Ssh(_) => self.refuse(Operation::Start, node),
        }
    }

    /// Cuts node `node`'s machine off the cluster's network.
    pub async fn isolate(&self, node: &str) -> Result<()> {
        match self {
            Target::Docker(docker) => docker.isolate(node).await,
            Target::Ssh(_) => self.refuse(Operation::Isolate, node),
        }
    }

    /// Connects `instance`'s machine to the cluster's network again, with its address.
    pub async fn reconnect(&self, instance: &Instance) -> Result<()> {
        match self {
            Target::Docker(docker) => docker.reconnect(instance).await,
            Target::Ssh(_) => self.refuse(Operation::Reconnect, &instance.name),
        }
    }

    /// Removes what the target made for the cluster, and returns how many objects went. Existing
    /// hosts are left as they are: nothing was made for them but their files and services, and
    /// their data is not m1studio's to remove.
    pub async fn destroy(&self) -> Result<usize> {
        match self {
            Target::Docker(docker) => docker.destroy().await,
            Target::Ssh(_) => Ok(0),
        }
    }
}

impl Executor for Target {
    async fn write_files(&self, node: &str, files: &[File]) -> Result<()> {
        match self {
            Target::Docker(docker) => docker.write_files(node, files).await,
            Target::Ssh(ssh) => ssh.write_files(node, files).await,
        }
    }

    async fn run(
        &self,
        node: &str,
        argv: &[String],
        user: &str,
        stdin: Option<&str>,
    ) -> Result<Output> {
        match self {
            Target::Docker(docker) => docker.run(node, argv, user, stdin).await,
            Target::Ssh(ssh) => ssh.run(node, argv, user, stdin).await,
        }
    }

    async fn start(&self, node: &str, service: &str) -> Result<()> {
        match self {
            Target::Docker(docker) => docker.start(node, service).await,
            Target::Ssh(ssh) => ssh.start(node, service).await,
        }
    }

    async fn wait(&self, node: &str, until: &Readiness, timeout_secs: u32) -> Result<Output> {
        match self {
            Target::Docker(docker) => docker.wait(node, until, timeout_secs).await,
            Target::Ssh(ssh) => ssh.wait(node, until, timeout_secs).await,
        }
    }
}
