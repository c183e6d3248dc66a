//! The Docker executor: one network and one container per instance (labelled with the cluster,
//! node and role, with volumes for Postgres's and Barman's data), commands through each
//! container's agent (`crate::agent`), files through archive uploads, services through
//! supervisord; destroy in `destroy`. With the agent's start and the node image's build, the
//! only code that talks to Docker.

use super::archive::{archive, passwd_ids};
use crate::agent::{Agent, Failure, Repeat};
use crate::engine::{Executor, Output, argv};
use crate::lock;
use anyhow::{Context as _, Result, bail};
mod destroy;

pub use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig, Mount,
    MountType, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, UploadToContainerOptionsBuilder,
};
pub use bollard::query_parameters::{InspectContainerOptions, ListVolumesOptions};
use futures_util::TryStreamExt as _;
use futures_util::future::{BoxFuture, FutureExt as _, Shared};
use m1studio_shared::plan::{File, NodeImage, PGDATA, Readiness, SERVICE_COMMAND};
use m1studio_shared::{Kind, Topology};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::OnceCell;

/// How the agent runs a command.
#[derive(Clone, Copy)]
enum How<'a> {
    /// With this input (`Agent::command`).
    Run(Option<&'a str>),
    /// Again and again until it succeeds (`Agent::repeat`).
    Repeat(&'a Repeat),
}

/// supervisord's socket in every node.
const SUPERVISOR_SOCKET: &str = "/var/run/supervisor.sock";

/// The label every object of a cluster carries, with the cluster's name.
pub const CLUSTER_LABEL: &str = "m1studio.cluster";
/// The label that carries the deployment's identifier.
pub const DEPLOYMENT_LABEL: &str = "m1studio.deployment";
const NODE_LABEL: &str = "m1studio.node";
const ROLE_LABEL: &str = "m1studio.role";

/// A container's agent, once started: the commands of every executor go through the same one.
type AgentCell = Arc<OnceCell<Arc<Agent>>>;

/// The agent of every container this process has run a command in, by container name.
static AGENTS: LazyLock<Mutex<HashMap<String, AgentCell>>> = LazyLock::new(Mutex::default);

/// Container `name`'s agent, started if it has none that runs.
async fn agent_of(docker: &Docker, name: &str) -> Result<Arc<Agent>> {
    // A known agent may have stopped with its container: then one new one.
    for _ in 0..2 {
        let cell = lock(&AGENTS).entry(name.to_string()).or_default().clone();
        let agent = cell
            .get_or_try_init(|| Agent::start(docker, name))
            .await?
            .clone();
        if agent.alive() {
            return Ok(agent);
        }
        forget_agent(name, Some(&agent));
    }
    bail!("m1studio's agent in {name} stops as soon as it starts: does the image have python3?")
}

/// Forgets container `name`'s agent (only if it is still `agent`, when given), so that its next
/// command starts a new one: its container stopped, or is gone.
fn forget_agent(name: &str, agent: Option<&Arc<Agent>>) {
    let mut agents = lock(&AGENTS);
    let current = agents.get(name).and_then(|cell| cell.get());
    if agent.is_none_or(|agent| current.is_none_or(|current| Arc::ptr_eq(current, agent)))
        && let Some(forgotten) = agents.remove(name).and_then(|cell| cell.get().cloned())
    {
        forgotten.close();
    }
}

/// The `PATH` of Docker's containers when their image sets none, and of Debian's root.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Names of a cluster's Docker objects.
fn container_name(cluster: &str, node: &str) -> String {
    format!("m1studio-{cluster}-{node}")
}

fn network_name(cluster: &str) -> String {
    format!("m1studio-{cluster}")
}

/// Connects to the local Docker engine (`DOCKER_HOST`, or the standard socket), or says what to start.
pub async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_local_defaults().context("cannot set up a Docker client")?;
    docker.ping().await.map_err(|e| {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        anyhow::anyhow!("cannot reach the Docker engine at {host} ({e}): start Docker (for example `sudo systemctl start docker`), or point DOCKER_HOST at a running engine")
    })?;
    Ok(docker)
}

/// Runs plans in the containers of one cluster.
#[derive(Clone)]
pub struct DockerExecutor {
    docker: Docker,
    cluster: String,
    /// The deployment whose objects these are, when known: destroy removes only objects that
    /// carry its label (or no deployment label, as made by older versions).
    deployment: Option<String>,
    /// The files each node was created with, until its first `write_files`: writing the same
    /// files again is then nothing to do.
    created_with: Arc<Mutex<HashMap<String, Vec<File>>>>,
    /// Each node's container start, from `create` on: a command on a node waits for its own
    /// container only.
    starting: Arc<Mutex<HashMap<String, NodeStart>>>,
}

/// A container start that any number of commands can wait for.
type Starting = Shared<BoxFuture<'static, std::result::Result<(), String>>>;

/// A node's start, in two stages: its container runs (a command can run), then its
/// supervisord answers (a service can start). Commands such as initdb need only the first, so
/// they run while supervisord is still starting.
#[derive(Clone)]
struct NodeStart {
    container: Starting,
    supervisor: Starting,
}

impl DockerExecutor {
    /// The executor for cluster `cluster`.
    pub fn new(docker: Docker, cluster: &str) -> DockerExecutor {
        DockerExecutor {
            docker,
            cluster: cluster.to_string(),
            deployment: None,
            created_with: Arc::default(),
            starting: Arc::default(),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Docker {
        &self.docker
    }

    /// Waits until node `node`'s container, if `create` is starting it, runs, and with
    /// `supervisor` until its supervisord answers too.
    async fn started(&self, node: &str, supervisor: bool) -> Result<()> {
        let starting = lock(&self.starting).get(node).cloned();
        if let Some(start) = starting {
            let stage = if supervisor {
                start.supervisor
            } else {
                start.container
            };
            stage.await.map_err(|e| anyhow::anyhow!(e))?;
        }
        Ok(())
    }

    /// Runs `argv` in node `node`'s container as `user`, now, through the container's agent,
    /// as `how` says.
    async fn exec(&self, node: &str, argv: &[String], user: &str, how: How<'_>) -> Result<Output> {
        let name = container_name(&self.cluster, node);
        // An agent can have stopped with its container since it last ran a command: the
        // command then goes to a new one.
        for _ in 0..2 {
            let agent = agent_of(&self.docker, &name).await?;
            let answer = match how {
                How::Run(stdin) => agent.command(argv, user, stdin).await,
                How::Repeat(repeat) => agent.repeat(argv, user, repeat).await,
            };
            match answer {
                Ok(output) => return Ok(output),
                Err(Failure::NotSent) => forget_agent(&name, Some(&agent)),
                Err(Failure::Incompatible(why)) => {
                    forget_agent(&name, Some(&agent));
                    bail!("{name}: {why}")
                }
                Err(Failure::Lost) => bail!(
                    "{name} stopped while `{}` ran in it",
                    argv.first().map(String::as_str).unwrap_or_default()
                ),
            }
        }
        bail!("m1studio's agent in {name} stops as soon as it starts: is the container restarting?")
    }

    /// Waits until every container `create` started has started.
    pub async fn all_started(&self) -> Result<()> {
        let starting: Vec<NodeStart> = lock(&self.starting).values().cloned().collect();
        for start in starting {
            start.supervisor.await.map_err(|e| anyhow::anyhow!(e))?;
        }
        Ok(())
    }

    /// The numeric user and group ids of the image's users, read from the `/etc/passwd` of the
    /// created (not yet started) container `name`.
    async fn ids_in(&self, name: &str) -> Result<HashMap<String, (u64, u64)>> {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path("/etc/passwd")
            .build();
        let chunks: Vec<_> = self
            .docker
            .download_from_container(name, Some(options))
            .try_collect()
            .await
            .with_context(|| format!("reading /etc/passwd of {name}"))?;
        let tar: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut passwd = String::new();
        for entry in archive.entries()? {
            std::io::Read::read_to_string(&mut entry?, &mut passwd)?;
        }
        Ok(passwd_ids(&passwd))
    }

    /// The label filter that selects this cluster's objects.
    fn filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_string(),
            vec![format!("{CLUSTER_LABEL}={}", self.cluster)],
        )])
    }

    /// The cluster's containers, running or not.
    async fn list(&self) -> Result<Vec<bollard::models::ContainerSummary>> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&self.filters())
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .context("listing the cluster's containers")
    }

    /// The containers of the cluster (running or not), as (node, role, state).
    pub async fn containers(&self) -> Result<Vec<(String, String, String)>> {
        let list = self.list().await?;
        let mut out: Vec<(String, String, String)> = list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                (
                    labels.get(NODE_LABEL).cloned().unwrap_or_default(),
                    labels.get(ROLE_LABEL).cloned().unwrap_or_default(),
                    c.state.map(|s| s.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Creates the network and one started container per instance, all at once, and waits for
    /// each container's supervisord. `annotations` become labels of every container (the
    /// design's link, the deployment), so that a restarted server finds what it deployed.
    /// Nothing is created when the cluster already has containers.
    pub async fn create(
        &self,
        topology: &Topology,
        network: &str,
        image: &NodeImage,
        annotations: &[(&str, &str)],
        files: &HashMap<String, Vec<File>>,
        waves: &[Vec<String>],
    ) -> Result<()> {
        if !self.containers().await?.is_empty() {
            bail!(
                "a cluster named {} already runs on this Docker engine: destroy it first (m1studio destroy), or name the new one differently",
                self.cluster
            );
        }
        // Agents of containers of the same names, gone since: the new ones get new agents.
        for instance in &topology.instances {
            forget_agent(&container_name(&self.cluster, &instance.name), None);
        }
        let labels = |extra: &[(&str, &str)]| -> HashMap<String, String> {
            let mut labels = HashMap::from([(CLUSTER_LABEL.to_string(), self.cluster.clone())]);
            labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            labels
        };
        let net = network_name(&self.cluster);
        self.docker
            .create_network(NetworkCreateRequest {
                name: net.clone(),
                driver: Some("bridge".into()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(network.to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(labels(annotations)),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("creating the network {net} ({network}) failed: {e}; if another Docker network uses that range, give the design another --network"))?;
        // The volumes carry the cluster's and the deployment's labels, as everything else
        // does: destroy finds them by those.
        for instance in &topology.instances {
            let name = container_name(&self.cluster, &instance.name);
            let mut volumes = vec![format!("{name}-pgdata")];
            if instance.kind == Kind::Barman {
                volumes.push(format!("{name}-barman"));
            }
            for volume in volumes {
                self.docker
                    .create_volume(bollard::models::VolumeCreateRequest {
                        name: Some(volume.clone()),
                        labels: Some(labels(annotations)),
                        ..Default::default()
                    })
                    .await
                    .with_context(|| format!("creating the volume {volume}"))?;
            }
        }
        let hosts: Vec<String> = topology
            .instances
            .iter()
            .filter_map(|i| i.ip_address.map(|ip| format!("{}:{ip}", i.name)))
            .collect();
        // Postgres's own programs come first: Debian's wrappers of the same names (`psql`,
        // `pg_isready`, `repmgr`) are Perl, and cost about 45 ms of CPU more per call.
        let path = format!("PATH={}:{DEFAULT_PATH}", image.bindir);
        let containers = topology.instances.iter().map(|instance| {
            let name = container_name(&self.cluster, &instance.name);
            let mut mounts = vec![Mount {
                target: Some(PGDATA.into()),
                source: Some(format!("{name}-pgdata")),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }];
            if instance.kind == Kind::Barman {
                mounts.push(Mount {
                    target: Some("/var/lib/barman".into()),
                    source: Some(format!("{name}-barman")),
                    typ: Some(MountType::VOLUME),
                    ..Default::default()
                });
            }
            let endpoint = EndpointSettings {
                ipam_config: Some(EndpointIpamConfig {
                    ipv4_address: instance.ip_address.map(|ip| ip.to_string()),
                    ..Default::default()
                }),
                aliases: Some(vec![instance.name.clone()]),
                ..Default::default()
            };
            let mut container_labels = vec![
                (NODE_LABEL, instance.name.as_str()),
                (ROLE_LABEL, instance.kind.as_str()),
            ];
            container_labels.extend_from_slice(annotations);
            let body = ContainerCreateBody {
                hostname: Some(instance.name.clone()),
                image: Some(image.tag.clone()),
                env: Some(vec![path.clone()]),
                labels: Some(labels(&container_labels)),
                host_config: Some(HostConfig {
                    mounts: Some(mounts),
                    extra_hosts: Some(hosts.clone()),
                    network_mode: Some(net.clone()),
                    ..Default::default()
                }),
                networking_config: Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(net.clone(), endpoint)])),
                }),
                stop_timeout: Some(20),
                ..Default::default()
            };
            async move {
                self.docker
                    .create_container(
                        Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                        body,
                    )
                    .await
                    .with_context(|| format!("creating the container {name}"))?;
                anyhow::Ok(name)
            }
        });
        let names = futures_util::future::try_join_all(containers).await?;
        // Each node's files go in before it starts, so that supervisord reads its services at
        // start, and the plan's first writes find them there.
        let ids = match names.first() {
            Some(first) if !files.is_empty() => self.ids_in(first).await?,
            _ => HashMap::new(),
        };
        let uploads = topology
            .instances
            .iter()
            .zip(&names)
            .map(|(instance, name)| {
                let files = files.get(&instance.name);
                let ids = &ids;
                async move {
                    if let Some(files) = files.filter(|f| !f.is_empty()) {
                        self.upload(name, files, ids).await?;
                        lock(&self.created_with).insert(instance.name.clone(), files.clone());
                    }
                    anyhow::Ok(())
                }
            });
        futures_util::future::try_join_all(uploads).await?;
        // The containers start wave by wave, in the order the plan needs them, so that the
        // first get the machine to themselves; each node's commands wait for its own start.
        let mut waves = waves.to_vec();
        let listed: Vec<&String> = waves.iter().flatten().collect();
        let rest: Vec<String> = topology
            .instances
            .iter()
            .map(|i| i.name.clone())
            .filter(|n| !listed.contains(&n))
            .collect();
        if !rest.is_empty() {
            waves.push(rest);
        }
        // A wave starts once the one before has its supervisords up.
        let mut before: Option<Starting> = None;
        for wave in waves {
            let mut this_wave = Vec::new();
            for node in wave {
                let executor = self.clone();
                let previous = before.clone();
                let name = node.clone();
                let container: Starting = async move {
                    if let Some(previous) = previous {
                        previous.await?;
                    }
                    executor
                        .start_only(&name)
                        .await
                        .map_err(|e| format!("{e:#}"))
                }
                .boxed()
                .shared();
                let executor = self.clone();
                let name = node.clone();
                let running = container.clone();
                let supervisor: Starting = async move {
                    running.await?;
                    executor
                        .wait_for_supervisor(&name, true)
                        .await
                        .map_err(|e| format!("{e:#}"))
                }
                .boxed()
                .shared();
                tokio::spawn(supervisor.clone());
                lock(&self.starting).insert(
                    node,
                    NodeStart {
                        container,
                        supervisor: supervisor.clone(),
                    },
                );
                this_wave.push(supervisor);
            }
            before = Some(
                async move {
                    for start in this_wave {
                        start.await?;
                    }
                    Ok(())
                }
                .boxed()
                .shared(),
            );
        }
        Ok(())
    }

    /// Writes `files` into container `name`, owned by the numeric ids of `ids`.
    async fn upload(
        &self,
        name: &str,
        files: &[File],
        ids: &HashMap<String, (u64, u64)>,
    ) -> Result<()> {
        if let Some(missing) = files.iter().find(|f| !ids.contains_key(&f.owner)) {
            bail!(
                "{name} has no user {}: the node image is not the one this plan needs",
                missing.owner
            );
        }
        let tar = archive(files, ids)?;
        self.docker
            .upload_to_container(
                name,
                Some(UploadToContainerOptionsBuilder::default().path("/").build()),
                bollard::body_full(tar.into()),
            )
            .await
            .with_context(|| format!("writing files into {name}"))
    }

    /// Waits until supervisord answers in `node`; `fresh` when the container has never run
    /// before.
    async fn wait_for_supervisor(&self, node: &str, fresh: bool) -> Result<()> {
        // Waits inside the container: one command, and no Python client started over and over
        // while supervisord itself starts. The socket appears once supervisord listens. After
        // a restart the old one is still there, so supervisorctl confirms (it exits with 4
        // while it cannot connect); a new container has none, and needs no such confirmation
        // (a Python start each).
        let output = if fresh {
            let socket = Repeat {
                file: Some(SUPERVISOR_SOCKET.to_string()),
                ..Repeat::every(0.01, 20.0)
            };
            self.exec(node, &[], "root", How::Repeat(&socket)).await?
        } else {
            let script = format!(
                "until [ -S {SUPERVISOR_SOCKET} ]; do sleep 0.02; done; \
                 until supervisorctl status >/dev/null 2>&1; [ $? -ne 4 ]; do sleep 0.05; done"
            );
            let wait = argv(&["timeout", "20", "sh", "-c", &script]);
            self.exec(node, &wait, "root", How::Run(None)).await?
        };
        if output.code != 0 {
            bail!("supervisord did not start in {node} within 20 s");
        }
        Ok(())
    }

    /// Disconnects node `node`'s container from the cluster's network, as a cut cable would.
    pub async fn isolate(&self, node: &str) -> Result<()> {
        let name = container_name(&self.cluster, node);
        self.docker
            .disconnect_network(
                &network_name(&self.cluster),
                bollard::models::NetworkDisconnectRequest {
                    container: name.clone(),
                    force: Some(true),
                },
            )
            .await
            .with_context(|| format!("cutting {name} off its network"))
    }

    /// Connects `instance`'s container to the cluster's network again, with its address.
    pub async fn reconnect(&self, instance: &m1studio_shared::Instance) -> Result<()> {
        let name = container_name(&self.cluster, &instance.name);
        self.docker
            .connect_network(
                &network_name(&self.cluster),
                bollard::models::NetworkConnectRequest {
                    container: name.clone(),
                    endpoint_config: Some(EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: instance.ip_address.map(|ip| ip.to_string()),
                            ..Default::default()
                        }),
                        aliases: Some(vec![instance.name.clone()]),
                        ..Default::default()
                    }),
                },
            )
            .await
            .with_context(|| format!("connecting {name} to its network again"))
    }

    /// Stops node `node`'s container cleanly (Postgres gets a fast shutdown).
    pub async fn stop(&self, node: &str) -> Result<()> {
        let name = container_name(&self.cluster, node);
        forget_agent(&name, None);
        self.docker
            .stop_container(
                &name,
                Some(
                    bollard::query_parameters::StopContainerOptionsBuilder::default()
                        .t(20)
                        .build(),
                ),
            )
            .await
            .with_context(|| format!("stopping {name}"))
    }

    /// Starts node `node`'s stopped container again and waits for its supervisord. Its services
    /// stay stopped until asked for.
    pub async fn start_container(&self, node: &str) -> Result<()> {
        self.start_only(node).await?;
        self.wait_for_supervisor(node, false).await
    }

    /// Starts node `node`'s container, without waiting for anything in it.
    async fn start_only(&self, node: &str) -> Result<()> {
        let name = container_name(&self.cluster, node);
        forget_agent(&name, None);
        self.docker
            .start_container(&name, None)
            .await
            .with_context(|| format!("starting {name}"))
    }

    /// Kills node `node`'s container (as a power failure would).
    pub async fn kill(&self, node: &str) -> Result<()> {
        let name = container_name(&self.cluster, node);
        forget_agent(&name, None);
        self.docker
            .kill_container(
                &name,
                Some(
                    KillContainerOptionsBuilder::default()
                        .signal("SIGKILL")
                        .build(),
                ),
            )
            .await
            .with_context(|| format!("killing {name}"))
    }
}

impl Executor for DockerExecutor {
    async fn write_files(&self, node: &str, files: &[File]) -> Result<()> {
        // The node was created with exactly these files: they are there already.
        let created_with = lock(&self.created_with).remove(node);
        if created_with.as_deref() == Some(files) {
            return Ok(());
        }
        // The owners' numeric ids, from the container's own user database, in one call.
        let owners: std::collections::BTreeSet<&str> =
            files.iter().map(|f| f.owner.as_str()).collect();
        let mut getent = argv(&["getent", "passwd"]);
        getent.extend(owners.iter().map(|o| o.to_string()));
        let users = self.run(node, &getent, "root", None).await?;
        let ids = passwd_ids(&users.stdout);
        self.upload(&container_name(&self.cluster, node), files, &ids)
            .await?;
        crate::engine::load_services(self, node, files).await
    }

    async fn run(
        &self,
        node: &str,
        argv: &[String],
        user: &str,
        stdin: Option<&str>,
    ) -> Result<Output> {
        // The service programs talk to supervisord; anything else needs only the container.
        let supervisor = argv
            .first()
            .is_some_and(|a| a == SERVICE_COMMAND || a == "supervisorctl");
        self.started(node, supervisor).await?;
        self.exec(node, argv, user, How::Run(stdin)).await
    }

    /// Waits through the node's agent, which repeats the check itself: no shell, no `sleep`
    /// and no `timeout` process per check, and for Postgres no check at all until its
    /// `postmaster.pid` says that it accepts connections.
    async fn wait(&self, node: &str, until: &Readiness, timeout_secs: u32) -> Result<Output> {
        self.started(node, false).await?;
        let (check, user, repeat) = crate::agent::check_of(until, timeout_secs);
        self.exec(node, &check, &user, How::Repeat(&repeat)).await
    }

    /// Starts a service that the node's files defined (they were loaded when written).
    async fn start(&self, node: &str, service: &str) -> Result<()> {
        let mut words = [SERVICE_COMMAND, "start", service];
        let mut output = self.run(node, &argv(&words), "root", None).await?;
        if matches!(output.code, 126 | 127) {
            // A node made by an older version, without the service program.
            words = ["supervisorctl", "start", service];
            output = self.run(node, &argv(&words), "root", None).await?;
        }
        if output.code != 0 {
            bail!(
                "`{}` on {node} exited with {}: {}{}",
                words.join(" "),
                output.code,
                output.stdout.trim(),
                output.stderr.trim()
            );
        }
        Ok(())
    }
}

/// One cluster found on the engine through its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCluster {
    /// The cluster's name.
    pub name: String,
    /// The labels of its first container (the design's link, the deployment, …).
    pub labels: HashMap<String, String>,
    /// How many containers it has, and how many of them run.
    pub containers: usize,
    /// How many of them run.
    pub running: usize,
}

/// Every cluster that has containers on the engine, by name.
pub async fn clusters(docker: &Docker) -> Result<Vec<FoundCluster>> {
    let filters = HashMap::from([("label".to_string(), vec![CLUSTER_LABEL.to_string()])]);
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .context("listing containers")?;
    let mut found: Vec<FoundCluster> = Vec::new();
    for container in list {
        let labels = container.labels.unwrap_or_default();
        let Some(name) = labels.get(CLUSTER_LABEL).cloned() else {
            continue;
        };
        let running = container.state.is_some_and(|s| s.to_string() == "running");
        match found.iter_mut().find(|c| c.name == name) {
            Some(cluster) => {
                cluster.containers += 1;
                cluster.running += usize::from(running);
            }
            None => found.push(FoundCluster {
                name,
                labels,
                containers: 1,
                running: usize::from(running),
            }),
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Every network of the engine with an IPv4 range: its name and range.
pub async fn networks(docker: &Docker) -> Result<Vec<(String, ipnet::Ipv4Net)>> {
    let networks = docker
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await
        .context("listing the engine's networks")?;
    Ok(networks
        .into_iter()
        .flat_map(|network| {
            let name = network.name.unwrap_or_default();
            network
                .ipam
                .and_then(|ipam| ipam.config)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|config| config.subnet?.parse::<ipnet::Ipv4Net>().ok())
                .map(move |subnet| (name.clone(), subnet))
        })
        .collect())
}
