//! The runner: deployments from request to running cluster, shared by the server and the CLI.
//! It checks a design completely before anything is created, records each deployment, its
//! events and its passwords in the [`Store`], runs at most a few deployments at once (the rest
//! wait in a queue), reads a cluster's live status, carries out drills, destroys, and after a
//! restart reconciles the store with what the Docker engine really runs.

use crate::docker::{self, DockerExecutor, FoundCluster};
use crate::engine::{Event, Executor, Secrets, argv, run_plan};
use crate::lock;
use crate::store::{InsertError, Record, Store, now_ms};
use anyhow::Result;
use futures_util::Stream;
use m1studio_shared::api::{
    BarmanStatus, ClusterStatus, DeployRequest, Deployment, DeploymentEvent, DeploymentState,
    Drill, DrillReport, EventKind, Moment, NodeStatus, PostgresRole, connections, read_design,
};
use m1studio_shared::plan::{
    CONFIG_DIR, PATRONI_CONFIG, PGDATA, PlanOptions, Profile, barman_server_file, node_image, plan,
    retarget_barman,
};
use m1studio_shared::{
    Configured, Diagnostic, Draft, FailoverManager, Kind, configure, has_errors, link,
};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, broadcast};

/// The label that carries a cluster's design as share-link text.
const LINK_LABEL: &str = "m1studio.link";
/// The label that carries the deployment's identifier.
const DEPLOYMENT_LABEL: &str = "m1studio.deployment";
/// The label that carries the failover profile.
const PROFILE_LABEL: &str = "m1studio.profile";

/// Why a request was refused; each maps to one HTTP status and one CLI message.
#[derive(Debug)]
pub enum Problem {
    /// The design is wrong: every diagnostic, nothing created.
    Invalid(Vec<Diagnostic>),
    /// The request itself is malformed.
    BadRequest(String),
    /// No such deployment.
    NotFound(String),
    /// The cluster name is taken, or the deployment is busy.
    Conflict(String),
    /// The Docker engine cannot be reached.
    Unavailable(String),
    /// Anything else.
    Internal(anyhow::Error),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Invalid(diagnostics) => {
                write!(f, "the design has problems; nothing was created")?;
                for d in diagnostics.iter().filter(|d| d.is_error()) {
                    write!(f, "\n  {d}")?;
                }
                Ok(())
            }
            Problem::BadRequest(m)
            | Problem::NotFound(m)
            | Problem::Conflict(m)
            | Problem::Unavailable(m) => f.write_str(m),
            Problem::Internal(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Problem {
        Problem::Internal(e)
    }
}

/// The design of a request, checked, with the diagnostics of its source.
pub fn resolve(
    request: &DeployRequest,
) -> std::result::Result<(Draft, Configured, Vec<Diagnostic>), Problem> {
    let Some((draft, configured, diagnostics)) = read_design(
        request.draft.as_ref(),
        request.link.as_deref(),
        request.config_yml.as_deref(),
    ) else {
        return Err(Problem::BadRequest(
            "give exactly one of draft, link or config_yml".into(),
        ));
    };
    match (draft, configured) {
        (Some(draft), Some(configured)) if !has_errors(&diagnostics) => {
            Ok((draft, configured, diagnostics))
        }
        _ => Err(Problem::Invalid(diagnostics)),
    }
}

/// Everything a deployment needs, checked.
struct Prepared {
    draft: Draft,
    configured: Configured,
    plan: m1studio_shared::plan::Plan,
    image: m1studio_shared::plan::NodeImage,
    profile: Profile,
}

/// Checks that `configured` can be deployed to Docker with `profile`: the same diagnostics as
/// everywhere else, all together.
fn prepare(
    draft: Draft,
    configured: Configured,
    profile: Profile,
) -> std::result::Result<Prepared, Problem> {
    let design = &configured.design;
    let mut problems = Vec::new();
    problems.extend(m1studio_shared::api::server_refusal(design));
    let plan = plan(design, &configured.topology, plan_options(profile))
        .map_err(|p| problems.extend(p))
        .ok();
    let pgdg = std::env::var("M1STUDIO_PGDG_MIRROR").ok();
    let image = node_image(design, pgdg.as_deref())
        .map_err(|p| problems.push(p))
        .ok();
    match (plan, image) {
        (Some(plan), Some(image)) if problems.is_empty() => Ok(Prepared {
            draft,
            configured,
            plan,
            image,
            profile,
        }),
        _ => Err(Problem::Invalid(problems)),
    }
}

struct Inner {
    store: Store,
    slots: Arc<Semaphore>,
    queue: Mutex<VecDeque<String>>,
    channels: Mutex<HashMap<String, broadcast::Sender<DeploymentEvent>>>,
    watching: Mutex<Vec<String>>,
}

/// Runs deployments; cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

fn new_id() -> Result<String> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn docker_connection() -> std::result::Result<docker::Docker, Problem> {
    docker::connect()
        .await
        .map_err(|e| Problem::Unavailable(format!("{e:#}")))
}

impl Runner {
    /// A runner over `store` that deploys at most `parallel` clusters at once.
    pub fn new(store: Store, parallel: usize) -> Runner {
        Runner {
            inner: Arc::new(Inner {
                store,
                slots: Arc::new(Semaphore::new(parallel.max(1))),
                queue: Mutex::new(VecDeque::new()),
                channels: Mutex::new(HashMap::new()),
                watching: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn sender(&self, id: &str) -> broadcast::Sender<DeploymentEvent> {
        lock(&self.inner.channels)
            .entry(id.to_string())
            .or_insert_with(|| broadcast::channel(1024).0)
            .clone()
    }

    /// Records an event and tells everyone following the deployment.
    fn emit(
        &self,
        id: &str,
        kind: EventKind,
        node: Option<&str>,
        title: &str,
        detail: Option<&str>,
    ) {
        match self.inner.store.append(id, kind, node, title, detail) {
            Ok(event) => {
                let _ = self.sender(id).send(event);
            }
            Err(e) => tracing::warn!("cannot record an event of deployment {id}: {e:#}"),
        }
    }

    fn set_state(&self, id: &str, state: DeploymentState, error: Option<&str>) {
        if let Err(e) = self.inner.store.set_state(id, state, error) {
            tracing::warn!("cannot record the state of deployment {id}: {e:#}");
        }
        self.emit(id, EventKind::State, None, state.as_str(), error);
    }

    /// The API's view of a stored deployment.
    pub fn view(&self, record: &Record) -> Deployment {
        let topology = configure(&record.draft)
            .0
            .map(|c| c.topology)
            .unwrap_or_default();
        let queue_position = lock(&self.inner.queue)
            .iter()
            .position(|q| *q == record.id)
            .map(|p| p + 1);
        Deployment {
            id: record.id.clone(),
            cluster: record.cluster.clone(),
            state: record.state,
            profile: record.profile,
            created_ms: record.created_ms,
            updated_ms: record.updated_ms,
            error: record.error.clone(),
            link: link::encode(&record.draft),
            connections: connections(&topology, &record.id),
            instances: topology.instances,
            queue_position,
        }
    }

    /// The deployment `id`.
    pub fn get(&self, id: &str) -> std::result::Result<Record, Problem> {
        self.inner.store.get(id)?.ok_or_else(|| {
            Problem::NotFound(format!(
                "no deployment {id}: list them with GET /api/deployments"
            ))
        })
    }

    /// Every deployment, newest first.
    pub fn list(&self) -> Result<Vec<Deployment>> {
        Ok(self
            .inner
            .store
            .list()?
            .iter()
            .map(|r| self.view(r))
            .collect())
    }

    /// Checks a request, records it as queued and starts it in the background. Nothing is
    /// created when the design, the engine or the cluster name is wrong.
    pub async fn submit(&self, request: DeployRequest) -> std::result::Result<Deployment, Problem> {
        let (draft, configured, _) = resolve(&request)?;
        let prepared = prepare(draft, configured, request.profile.unwrap_or(Profile::Fast))?;
        let cluster = prepared.configured.design.cluster_name().to_string();
        if let Some(existing) = self.inner.store.live_by_cluster(&cluster)? {
            return Err(conflict(&existing));
        }
        let engine = docker_connection().await?;
        if !DockerExecutor::new(engine.clone(), &cluster)
            .containers()
            .await?
            .is_empty()
        {
            return Err(Problem::Conflict(format!(
                "containers of a cluster named {cluster} already exist on the Docker engine: destroy them first (`m1studio destroy`), or give the design another cluster_name"
            )));
        }
        let secrets = Secrets::generate()?;
        let now = now_ms();
        let record = Record {
            id: new_id()?,
            cluster,
            state: DeploymentState::Queued,
            profile: prepared.profile,
            draft: prepared.draft.clone(),
            created_ms: now,
            updated_ms: now,
            error: None,
        };
        let pairs: Vec<(&str, &str)> = secrets.entries().collect();
        match self.inner.store.insert(&record, &pairs) {
            Ok(()) => {}
            Err(InsertError::Conflict(existing)) => return Err(conflict(&existing)),
            Err(InsertError::Other(e)) => return Err(Problem::Internal(e)),
        }
        lock(&self.inner.queue).push_back(record.id.clone());
        self.emit(&record.id, EventKind::State, None, "queued", None);
        let runner = self.clone();
        let id = record.id.clone();
        tokio::spawn(async move {
            let slots = runner.inner.slots.clone();
            let permit = slots.acquire_owned().await;
            lock(&runner.inner.queue).retain(|q| *q != id);
            // It may have been cancelled while it waited.
            let still_queued = runner
                .inner
                .store
                .get(&id)
                .ok()
                .flatten()
                .is_some_and(|r| r.state == DeploymentState::Queued);
            if !still_queued {
                return;
            }
            if let Err(e) = runner.deploy(&id, &prepared, &secrets, engine).await {
                let reason = secrets.hide(&format!("{e:#}"));
                runner.set_state(&id, DeploymentState::Failed, Some(&reason));
            }
            drop(permit);
        });
        Ok(self.view(&record))
    }

    async fn deploy(
        &self,
        id: &str,
        prepared: &Prepared,
        secrets: &Secrets,
        engine: docker::Docker,
    ) -> Result<()> {
        self.set_state(id, DeploymentState::Deploying, None);
        let started = Instant::now();
        let image = &prepared.image;
        if !docker::image_exists(&engine, &image.tag).await {
            self.emit(
                id,
                EventKind::Progress,
                None,
                &format!("building the node image {}", image.tag),
                None,
            );
            let last = Mutex::new(Instant::now() - Duration::from_secs(10));
            docker::build_image(&engine, image, &|line| {
                // One line a second is enough to show it moving.
                let mut last = lock(&last);
                if last.elapsed() >= Duration::from_secs(1) {
                    *last = Instant::now();
                    self.emit(
                        id,
                        EventKind::Progress,
                        None,
                        "building the node image",
                        Some(line),
                    );
                }
            })
            .await?;
        }
        let configured = &prepared.configured;
        let cluster = configured.design.cluster_name();
        let executor = DockerExecutor::new(engine, cluster);
        let network = configured
            .design
            .network()
            .map(|n| n.to_string())
            .unwrap_or_default();
        self.emit(
            id,
            EventKind::Progress,
            None,
            &format!(
                "creating {} containers",
                configured.topology.instances.len()
            ),
            None,
        );
        let link = link::encode(&prepared.draft);
        let profile = prepared.profile.as_str();
        executor
            .create(
                &configured.topology,
                &network,
                image,
                &[
                    (LINK_LABEL, &link),
                    (DEPLOYMENT_LABEL, id),
                    (PROFILE_LABEL, profile),
                ],
                &prepared
                    .plan
                    .nodes
                    .iter()
                    .map(|n| {
                        (
                            n.node.clone(),
                            crate::engine::filled_files(&prepared.plan, secrets, &n.node),
                        )
                    })
                    .collect(),
                &prepared.plan.start_order(
                    configured
                        .topology
                        .instances
                        .iter()
                        .map(|i| i.name.as_str()),
                ),
            )
            .await?;
        let events = self.plan_events(id);
        run_plan(&executor, &prepared.plan, secrets, &events).await?;
        executor.all_started().await?;
        self.emit(
            id,
            EventKind::Progress,
            None,
            &format!(
                "cluster {cluster} is running after {:.1} s",
                started.elapsed().as_secs_f64()
            ),
            None,
        );
        self.set_state(id, DeploymentState::Running, None);
        Ok(())
    }

    /// The events of `id` after number `after`, then each new one as it happens.
    pub fn follow(
        &self,
        id: &str,
        after: u64,
    ) -> impl Stream<Item = DeploymentEvent> + Send + 'static {
        // Subscribe first, so that nothing falls between the stored events and the live ones.
        let receiver = self.sender(id).subscribe();
        let runner = self.clone();
        let id = id.to_string();
        let backlog: VecDeque<DeploymentEvent> = self
            .inner
            .store
            .events(&id, after)
            .unwrap_or_default()
            .into();
        futures_util::stream::unfold(
            (receiver, backlog, after, runner, id),
            |(mut receiver, mut backlog, mut last, runner, id)| async move {
                loop {
                    if let Some(event) = backlog.pop_front() {
                        last = event.seq;
                        return Some((event, (receiver, backlog, last, runner, id)));
                    }
                    match receiver.recv().await {
                        Ok(event) if event.seq > last => backlog.push_back(event),
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            backlog = runner
                                .inner
                                .store
                                .events(&id, last)
                                .unwrap_or_default()
                                .into();
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        )
    }

    /// The password of the `postgres` user of deployment `id`.
    pub fn credentials(&self, id: &str) -> std::result::Result<(String, String), Problem> {
        let record = self.get(id)?;
        let secrets = self.inner.store.secrets(&record.id)?;
        secrets
            .into_iter()
            .find(|(name, _)| name == "postgres")
            .map(|(_, password)| ("postgres".to_string(), password))
            .ok_or_else(|| {
                Problem::NotFound(format!(
                    "deployment {id} keeps no password (it was destroyed, or found on the Docker engine rather than deployed by this store)"
                ))
            })
    }

    /// Deployment `id`'s live state, read from its containers.
    pub async fn status(&self, id: &str) -> std::result::Result<ClusterStatus, Problem> {
        let record = self.get(id)?;
        let configured = configure(&record.draft).0.ok_or_else(|| {
            Problem::Internal(anyhow::anyhow!(
                "the stored design of {id} is no longer valid"
            ))
        })?;
        let executor = DockerExecutor::new(docker_connection().await?, &record.cluster);
        Ok(cluster_status(&executor, &configured, true).await?)
    }

    /// Carries out `drill` on deployment `id`, and watches the cluster react.
    pub async fn drill(&self, id: &str, drill: Drill) -> std::result::Result<String, Problem> {
        let record = self.get(id)?;
        if record.state != DeploymentState::Running {
            return Err(Problem::Conflict(format!(
                "deployment {id} is {}: drills run on a running cluster",
                record.state.as_str()
            )));
        }
        let configured = configure(&record.draft).0.ok_or_else(|| {
            Problem::Internal(anyhow::anyhow!(
                "the stored design of {id} is no longer valid"
            ))
        })?;
        let executor = DockerExecutor::new(docker_connection().await?, &record.cluster);
        let status = cluster_status(&executor, &configured, false).await?;
        let message = match &drill {
            Drill::KillPrimary { .. }
            | Drill::StopPrimary { .. }
            | Drill::IsolatePrimary { .. }
            | Drill::Switchover { .. }
            | Drill::StopEtcd { .. } => {
                let retarget = match &drill {
                    Drill::KillPrimary { retarget_barman }
                    | Drill::StopPrimary { retarget_barman }
                    | Drill::IsolatePrimary {
                        retarget_barman, ..
                    }
                    | Drill::Switchover {
                        retarget_barman, ..
                    } => *retarget_barman,
                    _ => false,
                };
                let Some(primary) = status.primary.clone() else {
                    return Err(Problem::Conflict(
                        "no single node accepts writes right now: wait for the failover to finish, or start the stopped node".into(),
                    ));
                };
                check_drill(&drill, &configured, &status, &primary)?;
                {
                    let mut watching = lock(&self.inner.watching);
                    if watching.contains(&id.to_string()) {
                        return Err(Problem::Conflict(format!(
                            "a drill is already running on deployment {id}: wait for its report"
                        )));
                    }
                    watching.push(id.to_string());
                }
                let number = self.inner.store.reports(id)?.len() as u64 + 1;
                let runner = self.clone();
                let (drill, id_owned, target) = (drill.clone(), id.to_string(), primary.clone());
                tokio::spawn(async move {
                    let outcome = runner
                        .fault_drill(
                            &id_owned,
                            number,
                            &drill,
                            &executor,
                            &configured,
                            &target,
                            retarget,
                        )
                        .await;
                    if let Err(e) = outcome {
                        runner.emit(
                            &id_owned,
                            EventKind::Failed,
                            None,
                            "the drill failed",
                            Some(&format!("{e:#}")),
                        );
                    }
                    lock(&runner.inner.watching).retain(|w| *w != id_owned);
                });
                format!(
                    "drill {number}: a writer starts, then {primary} goes down; follow the events, and GET /api/deployments/{id}/drills for the report"
                )
            }
            Drill::RetargetBarman => {
                let Some(primary) = status.primary.clone() else {
                    return Err(Problem::Conflict(
                        "no single node accepts writes right now: Barman can be pointed at a primary once there is one".into(),
                    ));
                };
                let runner = self.clone();
                let id_owned = id.to_string();
                let source = primary.clone();
                tokio::spawn(async move {
                    if let Err(e) = runner
                        .retarget(&id_owned, &executor, &configured, &source)
                        .await
                    {
                        runner.emit(
                            &id_owned,
                            EventKind::Failed,
                            None,
                            &format!("pointing Barman at {source} failed"),
                            Some(&format!("{e:#}")),
                        );
                    }
                });
                format!("Barman is being pointed at {primary}; follow the events")
            }
            Drill::StopNode { node } => {
                let Some(found) = status.nodes.iter().find(|n| n.name == *node) else {
                    return Err(Problem::BadRequest(format!(
                        "node: {node} is not a node of {}",
                        record.cluster
                    )));
                };
                if status.primary.as_deref() == Some(node.as_str()) {
                    return Err(Problem::BadRequest(format!(
                        "node: {node} is the primary: use the stop-primary drill, which measures the failover"
                    )));
                }
                if found.container != "running" {
                    return Err(Problem::Conflict(format!("node: {node} is not running")));
                }
                executor.stop(node).await?;
                let message = format!("stopped {node}");
                self.emit(id, EventKind::Drill, Some(node), &message, None);
                message
            }
            Drill::Start { node } => {
                let Some(found) = status.nodes.iter().find(|n| n.name == *node) else {
                    return Err(Problem::BadRequest(format!(
                        "node: {node} is not a node of {}: use one of {}",
                        record.cluster,
                        status
                            .nodes
                            .iter()
                            .map(|n| n.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                };
                if found.container == "running" {
                    return Err(Problem::Conflict(format!(
                        "node: {node} is already running"
                    )));
                }
                executor.start_container(node).await?;
                let postgres = found.designed.is_postgres();
                if postgres || found.designed == Kind::Barman {
                    // A killed Postgres (and repmgrd) leaves its lock files behind, and in a
                    // restarted container their process ids may well belong to another process
                    // now: Postgres and repmgrd would then refuse to start.
                    let stale = argv(&[
                        "find",
                        "/var/run/postgresql",
                        PGDATA,
                        "/tmp",
                        "-maxdepth",
                        "1",
                        "(",
                        "-name",
                        ".s.PGSQL.*",
                        "-o",
                        "-name",
                        "postmaster.pid",
                        "-o",
                        "-name",
                        "repmgrd.pid",
                        ")",
                        "-delete",
                    ]);
                    executor.run(node, &stale, "root", None).await?;
                }
                let standby = executor
                    .run(
                        node,
                        &argv(&["test", "-f", &format!("{PGDATA}/standby.signal")]),
                        "postgres",
                        None,
                    )
                    .await
                    .is_ok_and(|o| o.code == 0);
                let patroni = configured.design.failover() == FailoverManager::Patroni;
                let message = if postgres
                    && !patroni
                    && !standby
                    && let Some(primary) = status.primary.clone().filter(|p| p != node)
                {
                    // It was a primary: it never starts as one beside the new primary, but is
                    // rejoined as its standby, in the background.
                    let runner = self.clone();
                    let (id_owned, node_owned) = (id.to_string(), node.clone());
                    let primary_owned = primary.clone();
                    tokio::spawn(async move {
                        let outcome = runner
                            .rejoin(&executor, &configured, &node_owned, &primary_owned)
                            .await;
                        let (kind, title, detail) = match outcome {
                            Ok(how) => (
                                EventKind::Observed,
                                format!("{node_owned} rejoined as a standby of {primary_owned}"),
                                how,
                            ),
                            Err(e) => (
                                EventKind::Failed,
                                format!(
                                    "{node_owned} could not rejoin {primary_owned}: its Postgres stays stopped, and never takes writes"
                                ),
                                format!("{e:#}"),
                            ),
                        };
                        runner.emit(&id_owned, kind, Some(&node_owned), &title, Some(&detail));
                    });
                    format!(
                        "{node} runs again with Postgres stopped: it was a primary, and {primary} is the primary now, so it is rejoined as a standby of {primary} (repmgr node rejoin, with pg_rewind where needed); follow the events"
                    )
                } else {
                    let services: &[&str] = match found.designed {
                        // Patroni finds another leader and makes its node a standby of it
                        // (with pg_rewind where the old timeline went further).
                        Kind::Primary | Kind::Replica | Kind::CascadedReplica if patroni => {
                            &["patroni"]
                        }
                        Kind::Primary | Kind::Replica | Kind::CascadedReplica => {
                            &["postgres", "repmgrd", "sshd"]
                        }
                        Kind::Etcd => &["etcd"],
                        Kind::Haproxy => &["haproxy"],
                        Kind::Barman
                            if configured.topology.instances.iter().any(|i| {
                                i.kind == Kind::Barman && i.has(m1studio_shared::Role::Witness)
                            }) =>
                        {
                            &["postgres", "repmgrd", "sshd", "barman-cron"]
                        }
                        Kind::Barman => &["barman-cron"],
                    };
                    let mut command = argv(&["supervisorctl", "start"]);
                    command.extend(services.iter().map(|s| s.to_string()));
                    let output = executor.run(node, &command, "root", None).await?;
                    if output.code != 0 {
                        return Err(Problem::Internal(anyhow::anyhow!(
                            "starting {} on {node} failed: {}",
                            services.join(", "),
                            output.stdout.trim()
                        )));
                    }
                    format!("{node} runs again, with {}", services.join(", "))
                };
                self.emit(id, EventKind::Drill, Some(node), &message, None);
                message
            }
        };
        Ok(message)
    }

    /// Makes `node`, a primary that failed, a standby of `primary`: crash recovery in single-user
    /// mode (which listens nowhere), so that it is shut down cleanly, a checkpoint on `primary`,
    /// then `repmgr node rejoin` with pg_rewind where its timeline went further, then repmgrd.
    /// Returns what repmgr said.
    async fn rejoin(
        &self,
        executor: &DockerExecutor,
        configured: &Configured,
        node: &str,
        primary: &str,
    ) -> Result<String> {
        let bin = m1studio_shared::plan::bindir(configured.design.version());
        let config = format!("config_file={CONFIG_DIR}/postgresql.conf");
        let single = argv(&[
            &format!("{bin}/postgres"),
            "--single",
            "-D",
            PGDATA,
            "-c",
            &config,
            "postgres",
        ]);
        run_checked(
            executor,
            node,
            &single,
            "postgres",
            Some(""),
            "crash recovery in single-user mode",
        )
        .await?;
        // pg_rewind finds the new primary's timeline in its control file, which a promotion
        // updates only at the end of its first checkpoint, a spread one of several seconds: a
        // rejoin before that sees one timeline, rewinds nothing, and the old primary, ahead
        // of the fork, can never follow. A CHECKPOINT on the new primary ends it at once.
        run_checked(
            executor,
            primary,
            &crate::engine::psql("CHECKPOINT"),
            "postgres",
            None,
            "a checkpoint on the new primary",
        )
        .await?;
        let source = format!("host={primary} user=repmgr dbname=repmgr connect_timeout=2");
        let rejoin = argv(&[
            "repmgr",
            "-f",
            "/etc/repmgr.conf",
            "node",
            "rejoin",
            "-d",
            &source,
            "--force-rewind",
        ]);
        let output = run_checked(
            executor,
            node,
            &rejoin,
            "postgres",
            None,
            "repmgr node rejoin",
        )
        .await?;
        let start = argv(&["supervisorctl", "start", "repmgrd", "sshd"]);
        executor.run(node, &start, "root", None).await?;
        Ok(crate::engine::tail(
            &format!("{}\n{}", output.stdout, output.stderr),
            3,
        ))
    }

    /// Reports a moment of a drill as an event, and adds it to the drill's timeline.
    fn note(
        &self,
        id: &str,
        report: &mut DrillReport,
        kind: EventKind,
        node: Option<&str>,
        moment: Moment,
    ) {
        self.emit(
            id,
            kind,
            node,
            &moment.what,
            Some(&seconds(moment.after_ms)),
        );
        report.timeline.push(moment);
    }

    /// Turns the stored events of a plan into the deployment's events.
    fn plan_events<'a>(&'a self, id: &'a str) -> impl Fn(Event) + Sync + 'a {
        move |event: Event| {
            let (kind, node, title, detail) = deployment_event(event);
            self.emit(id, kind, node.as_deref(), &title, detail.as_deref());
        }
    }

    /// Points Barman at `source` and checks it, reporting each step.
    async fn retarget(
        &self,
        id: &str,
        executor: &DockerExecutor,
        configured: &Configured,
        source: &str,
    ) -> Result<()> {
        let plan = retarget_barman(&configured.design, &configured.topology, source, true)
            .map_err(|d| anyhow::anyhow!("{}", d.message))?;
        let secrets = Secrets::from_entries(self.inner.store.secrets(id)?);
        self.emit(
            id,
            EventKind::Drill,
            None,
            &format!("pointing Barman at {source}"),
            None,
        );
        run_plan(executor, &plan, &secrets, &self.plan_events(id)).await?;
        self.emit(
            id,
            EventKind::Observed,
            None,
            &format!("Barman backs up {source}, and barman check is green"),
            None,
        );
        Ok(())
    }

    /// Kills or stops the primary while a writer inserts numbered rows, watches the failover,
    /// and records what it measured: the time until writes resumed and the rows lost.
    #[allow(clippy::too_many_arguments)]
    async fn fault_drill(
        &self,
        id: &str,
        number: u64,
        drill: &Drill,
        executor: &DockerExecutor,
        configured: &Configured,
        old: &str,
        retarget_barman: bool,
    ) -> Result<()> {
        let mut report = DrillReport {
            number,
            action: drill.name().to_string(),
            target: old.to_string(),
            fault_ms: 0,
            new_primary: None,
            rto_ms: None,
            outage_ms: None,
            writes_acknowledged: 0,
            writes_failed: 0,
            writes_lost: None,
            rpo_ms: None,
            synchronous: configured.design.synchronous(),
            timeline: Vec::new(),
            finished: false,
            note: None,
        };
        let writer_node = configured
            .topology
            .of_kind(Kind::Barman)
            .next()
            .map(|b| b.name.clone())
            .ok_or_else(|| anyhow::anyhow!("the design has no Barman node to write from"))?;
        crate::engine::query(executor, old, WRITES_TABLE).await?;
        let first_id: u64 = crate::engine::query(
            executor,
            old,
            "SELECT COALESCE(max(id), 0) + 1 FROM m1studio_drill_writes",
        )
        .await?
        .parse()
        .unwrap_or(1);
        // Through HAProxy when the design has it, as its clients would connect; otherwise to
        // every Postgres node, and libpq finds the one that takes writes.
        let proxies: Vec<&str> = configured
            .topology
            .of_kind(Kind::Haproxy)
            .map(|i| i.name.as_str())
            .collect();
        let hosts: Vec<&str> = if proxies.is_empty() {
            configured
                .topology
                .instances
                .iter()
                .filter(|i| i.kind.is_postgres())
                .map(|i| i.name.as_str())
                .collect()
        } else {
            proxies
        };
        let conninfo = format!(
            "host={} user=barman dbname=postgres target_session_attrs=read-write connect_timeout=2",
            hosts.join(",")
        );
        let writes = Arc::new(Mutex::new(Vec::<Write>::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = tokio::spawn(write_rows(
            executor.clone(),
            writer_node,
            (
                conninfo,
                configured
                    .topology
                    .instances
                    .iter()
                    .filter_map(|i| i.ip_address.map(|ip| (ip.to_string(), i.name.clone())))
                    .collect(),
            ),
            first_id,
            stop.clone(),
            writes.clone(),
        ));
        // A second of writes before the fault, so that the loss can be measured.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let fault = Instant::now();
        report.fault_ms = now_ms();
        // A fault that is undone after a while: the isolated primary reconnected, the stopped
        // etcd members started again.
        let isolation = match drill {
            Drill::IsolatePrimary { seconds, .. } | Drill::StopEtcd { seconds, .. } => {
                Some(Duration::from_secs(u64::from(*seconds)))
            }
            _ => None,
        };
        let patroni = configured.design.failover() == FailoverManager::Patroni;
        let etcd_stopped: Vec<String> = match drill {
            Drill::StopEtcd { count, .. } => configured
                .topology
                .of_kind(Kind::Etcd)
                .take(*count as usize)
                .map(|i| i.name.clone())
                .collect(),
            _ => Vec::new(),
        };
        let mut switchover = None;
        let mut witness_follows: Option<(String, String)> = None;
        let fault_text = match drill {
            Drill::KillPrimary { .. } => {
                executor.kill(old).await?;
                format!("killed the primary {old}")
            }
            Drill::IsolatePrimary { .. } => {
                executor.isolate(old).await?;
                format!("cut the primary {old} off the cluster's network")
            }
            Drill::StopEtcd { .. } => {
                for member in &etcd_stopped {
                    executor.stop(member).await?;
                }
                let left = 3 - etcd_stopped.len();
                format!(
                    "stopped etcd on {}: {left} of 3 members left, {}",
                    etcd_stopped.join(" and "),
                    if left >= 2 {
                        "so the quorum (2) holds"
                    } else {
                        "so there is no quorum: Patroni can neither renew the leader key nor elect a new leader"
                    }
                )
            }
            Drill::Switchover { to, .. } => {
                let target = switchover_target(configured, old, to.as_deref())
                    .ok_or_else(|| anyhow::anyhow!("no standby to hand over to"))?;
                let (node, command) = if patroni {
                    (
                        target.clone(),
                        argv(&[
                            "patronictl",
                            "-c",
                            PATRONI_CONFIG,
                            "switchover",
                            "--leader",
                            old,
                            "--candidate",
                            &target,
                            "--force",
                        ]),
                    )
                } else {
                    let mut command =
                        argv(&["repmgr", "-f", "/etc/repmgr.conf", "standby", "switchover"]);
                    // The cascaded replicas of M1 stream from the replica: when the replica
                    // hands over, they stay with it (it becomes a standby that they still
                    // stream from). Otherwise the old primary's standbys follow the new one.
                    let replica = configured.topology.of_kind(Kind::Replica).next();
                    if replica.is_none_or(|r| r.name != *old) {
                        command.push("--siblings-follow".into());
                    } else {
                        // Without --siblings-follow a witness would stay with the old
                        // primary: it is registered again with the new one, and its repmgrd
                        // restarted to monitor it.
                        witness_follows = configured
                            .topology
                            .instances
                            .iter()
                            .find(|i| i.has(m1studio_shared::Role::Witness))
                            .map(|w| (w.name.clone(), target.clone()));
                    }
                    (target.clone(), command)
                };
                let text = format!(
                    "{}: {old} hands over to {target}",
                    if patroni {
                        "patronictl switchover"
                    } else {
                        "repmgr standby switchover"
                    }
                );
                let executor = executor.clone();
                // The command's own end, not when the watcher next looks.
                switchover = Some(tokio::spawn(async move {
                    let output = executor.run(&node, &command, "postgres", None).await;
                    let at = Instant::now();
                    let succeeded = output.as_ref().is_ok_and(|o| o.code == 0);
                    let witness = match witness_follows.filter(|_| succeeded) {
                        Some((witness, primary)) => {
                            let outcome = witness_follow(&executor, &witness, &primary).await;
                            Some((witness, primary, outcome, Instant::now()))
                        }
                        None => None,
                    };
                    (output, at, witness)
                }));
                text
            }
            _ => {
                executor.stop(old).await?;
                format!("stopped the primary {old}")
            }
        };
        let mut reconnected = false;
        let old_instance = configured
            .topology
            .get(old)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{old} is not in the design"))?;
        let moment_at = |at: Instant, what: String| Moment {
            after_ms: i64::try_from(at.duration_since(fault).as_millis()).unwrap_or(i64::MAX),
            what,
        };
        let moment = |what: String| moment_at(Instant::now(), what);
        report.timeline.push(Moment {
            after_ms: 0,
            what: fault_text.clone(),
        });
        self.emit(
            id,
            EventKind::Drill,
            Some(old),
            &fault_text,
            Some(&format!("drill {number}")),
        );
        self.inner.store.save_report(id, &report)?;

        let mut detected = false;
        let mut settled_at: Option<Instant> = None;
        while fault.elapsed() < Duration::from_secs(150) + isolation.unwrap_or_default() {
            if let Some(finished) = switchover.take_if(|h| h.is_finished()) {
                let (outcome, at, witness) = match finished.await {
                    Ok(finished) => finished,
                    Err(e) => (Err(anyhow::anyhow!("{e}")), Instant::now(), None),
                };
                let what = match outcome {
                    Ok(output) if output.code == 0 => "the switchover command finished".to_string(),
                    Ok(output) => format!(
                        "the switchover command failed ({}): {}",
                        output.code,
                        crate::engine::tail(&format!("{}\n{}", output.stdout, output.stderr), 4)
                    ),
                    Err(e) => format!("the switchover command could not run: {e:#}"),
                };
                let m = moment_at(at, what);
                self.note(id, &mut report, EventKind::Observed, None, m);
                if let Some((witness, primary, outcome, at)) = witness {
                    let what = match outcome {
                        Ok(()) => format!("the witness {witness} follows {primary}"),
                        Err(e) => {
                            format!("the witness {witness} could not follow {primary}: {e:#}")
                        }
                    };
                    let m = moment_at(at, what);
                    self.note(id, &mut report, EventKind::Observed, Some(&witness), m);
                }
            }
            if !etcd_stopped.is_empty()
                && let Some(after) = isolation.filter(|a| !reconnected && fault.elapsed() >= *a)
            {
                for member in &etcd_stopped {
                    executor.start_container(member).await?;
                    let start = argv(&["supervisorctl", "start", "etcd"]);
                    executor.run(member, &start, "root", None).await?;
                }
                reconnected = true;
                let m = moment(format!(
                    "etcd runs again on {} after {} s",
                    etcd_stopped.join(" and "),
                    after.as_secs()
                ));
                self.note(id, &mut report, EventKind::Drill, None, m);
            }
            if etcd_stopped.is_empty()
                && let Some(after) = isolation.filter(|a| !reconnected && fault.elapsed() >= *a)
            {
                // A primary that would come back beside a new one is fenced first, so that it
                // never takes a write: Postgres stops at once, and repmgrd with it. Patroni
                // needs no help: a leader that cannot renew its key in etcd demotes itself.
                if let Some(new) = report.new_primary.clone().filter(|_| !patroni) {
                    let still_primary =
                        crate::engine::query(executor, old, "SELECT pg_is_in_recovery()")
                            .await
                            .is_ok_and(|r| r == "f");
                    if still_primary {
                        let stop = argv(&["supervisorctl", "stop", "repmgrd"]);
                        executor.run(old, &stop, "root", None).await?;
                        let pg_ctl = format!(
                            "{}/pg_ctl",
                            m1studio_shared::plan::bindir(configured.design.version())
                        );
                        let immediate = argv(&[&pg_ctl, "-D", PGDATA, "stop", "-m", "immediate"]);
                        let output = executor.run(old, &immediate, "postgres", None).await?;
                        let m = moment(if output.code == 0 {
                            format!(
                                "{old} is still a primary beside {new}: fenced before it comes back (Postgres stopped)"
                            )
                        } else {
                            format!(
                                "{old} is still a primary beside {new}, and stopping it failed: {}",
                                output.stderr.trim()
                            )
                        });
                        self.note(id, &mut report, EventKind::Observed, Some(old), m);
                        // repmgrd goes too (it may take a while, stuck on the cut network).
                        let stop = argv(&["supervisorctl", "stop", "repmgrd"]);
                        executor.run(old, &stop, "root", None).await?;
                    }
                }
                executor.reconnect(&old_instance).await?;
                reconnected = true;
                let m = moment(format!(
                    "{old} is back on the network after {} s",
                    after.as_secs()
                ));
                self.note(id, &mut report, EventKind::Drill, Some(old), m);
            }
            let status = cluster_status(executor, configured, false).await.ok();
            if let Some(status) = &status {
                if (isolation.is_none() || !etcd_stopped.is_empty())
                    && !detected
                    && status
                        .nodes
                        .iter()
                        .any(|n| n.name == old && n.postgres != Some(PostgresRole::Primary))
                {
                    detected = true;
                    let m = moment(match drill {
                        Drill::StopEtcd { .. } => format!(
                            "{old} no longer takes writes: without a quorum Patroni could not renew its leader key, so it demoted {old}"
                        ),
                        Drill::Switchover { .. } => format!("{old} stepped down"),
                        _ => format!("{old} no longer answers"),
                    });
                    self.note(id, &mut report, EventKind::Observed, Some(old), m);
                }
                if report.new_primary.is_none()
                    && let Some(new) = status
                        .nodes
                        .iter()
                        .find(|n| n.name != old && n.postgres == Some(PostgresRole::Primary))
                        .map(|n| &n.name)
                {
                    report.new_primary = Some(new.clone());
                    let m = moment(format!("{new} is the new primary and accepts writes"));
                    self.note(id, &mut report, EventKind::Observed, Some(new), m);
                }
            }
            let first_refused = lock(&writes)
                .iter()
                .find(|w| !w.ok && w.started >= fault)
                .map(|w| (w.id, w.started));
            if let Some((row, at)) = first_refused
                && !report
                    .timeline
                    .iter()
                    .any(|m| m.what.starts_with("writes refused"))
            {
                let m = moment_at(at, format!("writes refused (row {row})"));
                self.note(id, &mut report, EventKind::Observed, None, m);
            }
            // Recovery ends with the first write after the fault that another node acknowledged
            // (the old primary may still take a few while it shuts down). Where no other node
            // took over once the fault was undone, it ends with the first write acknowledged
            // after the first refused one: none refused, no outage.
            let carried_on = reconnected && report.new_primary.is_none();
            // The old primary carried on and no write was refused: there was no outage.
            let untouched = carried_on && first_refused.is_none();
            let resumed = lock(&writes)
                .iter()
                .find(|w| {
                    if carried_on {
                        w.ok && w.started >= first_refused.map_or(fault, |(_, at)| at)
                    } else {
                        w.ok && w.started >= fault && w.by.as_deref().is_some_and(|by| by != old)
                    }
                })
                .cloned();
            if report.rto_ms.is_none()
                && let Some(first) = resumed
            {
                let rto = if untouched {
                    Duration::ZERO
                } else {
                    first.finished.duration_since(fault)
                };
                // The gap without an acknowledged write: from the last one before recovery
                // (the old primary may take some after the fault), or from the fault.
                let last_acknowledged = lock(&writes)
                    .iter()
                    .filter(|w| w.ok && w.finished <= first.started)
                    .map(|w| w.finished)
                    .max()
                    .map_or(fault, |t| t.max(fault));
                let outage = if untouched {
                    Duration::ZERO
                } else {
                    first.finished.saturating_duration_since(last_acknowledged)
                };
                report.outage_ms = Some(u64::try_from(outage.as_millis()).unwrap_or(u64::MAX));
                report.rto_ms = Some(u64::try_from(rto.as_millis()).unwrap_or(u64::MAX));
                let what = if untouched {
                    "no write was refused".to_string()
                } else {
                    format!(
                        "writes resumed on {} (row {})",
                        first.by.as_deref().unwrap_or("?"),
                        first.id
                    )
                };
                let after_ms = i64::try_from(rto.as_millis()).unwrap_or(i64::MAX);
                self.note(
                    id,
                    &mut report,
                    EventKind::Observed,
                    None,
                    Moment { after_ms, what },
                );
            }
            // Settled once every standby streams again, from a node other than the old
            // primary (or, at the latest, 30 s after the promotion).
            let promoted_at = report
                .timeline
                .iter()
                .find(|m| m.what.contains("is the new primary"))
                .map(|m| Duration::from_millis(u64::try_from(m.after_ms).unwrap_or(0)));
            // Every standby streams from the new primary or from another standby; the old
            // primary counts only once it is a standby itself (after a switchover, the
            // cascaded replicas stay with the replica that handed over).
            let following = status.as_ref().is_some_and(|s| {
                let standby = |name: &str| {
                    s.nodes
                        .iter()
                        .any(|n| n.name == name && n.postgres == Some(PostgresRole::Standby))
                };
                s.nodes
                    .iter()
                    .filter(|n| n.postgres == Some(PostgresRole::Standby))
                    .all(|n| {
                        n.upstream
                            .as_deref()
                            .is_some_and(|u| u != old || standby(u))
                    })
            });
            let overdue =
                promoted_at.is_some_and(|p| fault.elapsed() >= p + Duration::from_secs(30));
            if let (Some(new), Some(_), None) = (&report.new_primary, report.rto_ms, settled_at)
                && let Some(status) = &status
                && (following || overdue)
            {
                let following: Vec<String> = status
                    .nodes
                    .iter()
                    .filter(|n| n.postgres == Some(PostgresRole::Standby))
                    .map(|n| format!("{} from {}", n.name, n.upstream.as_deref().unwrap_or("?")))
                    .collect();
                let m = moment(if following.is_empty() {
                    format!("{new} has no standby streaming")
                } else {
                    format!("standbys streaming: {}", following.join(", "))
                });
                self.note(id, &mut report, EventKind::Observed, None, m);
                settled_at = Some(Instant::now());
            }
            let waited = settled_at.is_some_and(|t| t.elapsed() >= Duration::from_secs(1))
                && switchover.is_none();
            if waited && (isolation.is_none() || reconnected) {
                break;
            }
            // An isolation too short for a failover: the old primary simply carries on.
            if reconnected
                && report.new_primary.is_none()
                && report.rto_ms.is_some()
                && isolation.is_some_and(|a| fault.elapsed() >= a + Duration::from_secs(5))
            {
                break;
            }
            self.inner.store.save_report(id, &report)?;
            // The watcher's own load (a query per node each round) slows what it watches on a
            // small machine: twice a second is enough, the writer times the recovery.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = writer.await;
        let writes = lock(&writes).clone();
        report.writes_acknowledged = writes.iter().filter(|w| w.ok).count() as u64;
        report.writes_failed = writes.iter().filter(|w| !w.ok).count() as u64;
        // The node that holds the cluster's data afterwards: the new primary, or the old one
        // where it carried on.
        let survivor = report
            .new_primary
            .clone()
            .or_else(|| (reconnected && isolation.is_some()).then(|| old.to_string()));
        if let Some(survivor) = &survivor {
            let present = crate::engine::query(
                executor,
                survivor,
                &format!("SELECT COALESCE(string_agg(id::text, ','), '') FROM m1studio_drill_writes WHERE id >= {first_id}"),
            )
            .await;
            if let Ok(present) = present {
                let present: std::collections::HashSet<u64> =
                    present.split(',').filter_map(|v| v.parse().ok()).collect();
                let lost: Vec<&Write> = writes
                    .iter()
                    .filter(|w| w.ok && !present.contains(&w.id))
                    .collect();
                report.writes_lost = Some(lost.len() as u64);
                report.rpo_ms = Some(
                    lost.iter()
                        .map(|w| fault.saturating_duration_since(w.finished))
                        .max()
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                );
            }
        }
        match &report.new_primary {
            Some(_) => {}
            None if etcd_stopped.len() == 1 => {
                report.note = Some(format!(
                    "{old} stayed the leader: two of three etcd members are a quorum, so Patroni carried on as before"
                ));
            }
            None if !etcd_stopped.is_empty() => {
                report.note = Some(format!(
                    "no failover: with one of three etcd members left there is no quorum, so no leader key can be renewed or taken; Patroni demoted {old} rather than risk two primaries, and {old} led again once the quorum was back"
                ));
            }
            None if isolation.is_some() => {
                report.note = Some(format!(
                    "{old} stayed the primary: no standby was promoted while it was cut off"
                ));
            }
            None => {
                report.note = Some(format!(
                    "no other node took over within {} s: the failover manager did not promote a standby{}",
                    fault.elapsed().as_secs(),
                    if configured.design.synchronous() {
                        " (with synchronous replication only the synchronous standby may be promoted, so that no acknowledged write is lost)"
                    } else {
                        ""
                    }
                ));
            }
        }
        report.timeline.sort_by_key(|m| m.after_ms);
        report.finished = true;
        self.inner.store.save_report(id, &report)?;
        self.emit(
            id,
            EventKind::Observed,
            None,
            &format!("drill {number} report"),
            Some(&format!(
                "recovery {}, {} writes acknowledged, lost: {}",
                report.rto_ms.map_or_else(
                    || "none".to_string(),
                    |r| seconds(i64::try_from(r).unwrap_or(i64::MAX))
                ),
                report.writes_acknowledged,
                report.loss().unwrap_or_else(|| "?".to_string())
            )),
        );
        if retarget_barman && let Some(new) = report.new_primary.clone() {
            self.retarget(id, executor, configured, &new).await?;
        }
        Ok(())
    }

    /// Removes every container, volume and network of deployment `id`. Doing it twice is harmless.
    /// Returns the deployment and how many Docker objects were removed.
    pub async fn destroy(&self, id: &str) -> std::result::Result<(Deployment, usize), Problem> {
        let record = self.get(id)?;
        if record.state == DeploymentState::Queued {
            // Nothing was created yet: it leaves the queue.
            lock(&self.inner.queue).retain(|q| q != id);
            self.emit(
                id,
                EventKind::Progress,
                None,
                "cancelled while queued",
                None,
            );
            self.set_state(id, DeploymentState::Destroyed, None);
            return Ok((self.view(&self.get(id)?), 0));
        }
        if record.state == DeploymentState::Deploying {
            return Err(Problem::Conflict(format!(
                "deployment {id} is deploying: wait until it is running or has failed, then destroy it"
            )));
        }
        let executor = DockerExecutor::new(docker_connection().await?, &record.cluster);
        self.set_state(id, DeploymentState::Destroying, None);
        let removed = match executor.destroy().await {
            Ok(removed) => {
                self.emit(
                    id,
                    EventKind::Progress,
                    None,
                    &format!("removed {removed} containers, volumes and networks"),
                    None,
                );
                self.set_state(id, DeploymentState::Destroyed, None);
                removed
            }
            Err(e) => {
                self.set_state(
                    id,
                    DeploymentState::Failed,
                    Some(&format!("destroying failed: {e:#}")),
                );
                return Err(Problem::Internal(e));
            }
        };
        let record = self.get(id)?;
        Ok((self.view(&record), removed))
    }

    /// Brings the store in line with the Docker engine after a restart: deployments that were
    /// under way are marked failed (and can be destroyed), running ones whose containers are
    /// gone are marked destroyed, and clusters found on the engine that the store does not know
    /// are recorded from their labels. Returns what it changed.
    pub async fn reconcile(&self) -> Result<Vec<String>> {
        let mut changes = Vec::new();
        for record in self.inner.store.list()? {
            if record.state.in_progress() {
                let reason =
                    "the server stopped during this deployment: destroy it, then deploy again";
                self.set_state(&record.id, DeploymentState::Failed, Some(reason));
                changes.push(format!(
                    "{} ({}): failed, was {}",
                    record.id,
                    record.cluster,
                    record.state.as_str()
                ));
            }
        }
        let engine = match docker::connect().await {
            Ok(engine) => engine,
            Err(e) => {
                tracing::warn!("not reconciling with Docker: {e:#}");
                return Ok(changes);
            }
        };
        let found = docker::clusters(&engine).await?;
        for record in self.inner.store.list()? {
            if record.state == DeploymentState::Running
                && !found.iter().any(|c| c.name == record.cluster)
            {
                self.set_state(
                    &record.id,
                    DeploymentState::Destroyed,
                    Some("its containers were removed outside this server"),
                );
                changes.push(format!(
                    "{} ({}): destroyed outside",
                    record.id, record.cluster
                ));
            }
        }
        for cluster in found {
            if self.inner.store.live_by_cluster(&cluster.name)?.is_none()
                && let Some(id) = self.adopt(&cluster)?
            {
                {
                    changes.push(format!(
                        "{id} ({}): found on the Docker engine",
                        cluster.name
                    ));
                }
            }
        }
        Ok(changes)
    }

    /// Records a cluster found on the engine, from its labels.
    fn adopt(&self, cluster: &FoundCluster) -> Result<Option<String>> {
        let Some(text) = cluster.labels.get(LINK_LABEL) else {
            return Ok(None);
        };
        let (draft, _) = link::decode(text);
        if draft.cluster_name != cluster.name {
            return Ok(None);
        }
        let id = cluster
            .labels
            .get(DEPLOYMENT_LABEL)
            .filter(|id| self.inner.store.get(id).ok().flatten().is_none())
            .cloned()
            .map_or_else(new_id, Ok)?;
        let profile = cluster
            .labels
            .get(PROFILE_LABEL)
            .and_then(|p| Profile::parse(p))
            .unwrap_or_default();
        let now = now_ms();
        let all_running = cluster.running == cluster.containers;
        let record = Record {
            id: id.clone(),
            cluster: cluster.name.clone(),
            state: if all_running {
                DeploymentState::Running
            } else {
                DeploymentState::Failed
            },
            profile,
            draft,
            created_ms: now,
            updated_ms: now,
            error: (!all_running).then(|| {
                format!(
                    "{} of its {} containers run",
                    cluster.running, cluster.containers
                )
            }),
        };
        match self.inner.store.insert(&record, &[]) {
            Ok(()) => {
                self.emit(
                    &id,
                    EventKind::Progress,
                    None,
                    "found on the Docker engine after a restart",
                    None,
                );
                Ok(Some(id))
            }
            Err(InsertError::Conflict(_)) => Ok(None),
            Err(InsertError::Other(e)) => Err(e),
        }
    }
}

/// The standby a switchover hands over to: `to`, or the promotable node that is not the primary.
fn switchover_target(configured: &Configured, primary: &str, to: Option<&str>) -> Option<String> {
    to.map(str::to_string).or_else(|| {
        configured
            .topology
            .instances
            .iter()
            .find(|i| matches!(i.kind, Kind::Primary | Kind::Replica) && i.name != primary)
            .map(|i| i.name.clone())
    })
}

/// Refuses a fault drill that cannot run on this cluster now, naming the field and the fix.
fn check_drill(
    drill: &Drill,
    configured: &Configured,
    status: &ClusterStatus,
    primary: &str,
) -> std::result::Result<(), Problem> {
    let patroni = configured.design.failover() == FailoverManager::Patroni;
    match drill {
        Drill::IsolatePrimary { seconds, .. } if !(5..=600).contains(seconds) => {
            Err(Problem::BadRequest(format!(
                "seconds: {seconds} is out of range: isolate the primary for 5 to 600 seconds"
            )))
        }
        Drill::StopEtcd { .. } if !patroni => Err(Problem::BadRequest(
            "action: stop-etcd needs a Patroni cluster; this one uses repmgr, which has no etcd"
                .into(),
        )),
        Drill::StopEtcd { count, .. } if !(1..=2).contains(count) => {
            Err(Problem::BadRequest(format!(
                "count: {count} is out of range: stop 1 etcd member (the quorum holds) or 2 (it is lost)"
            )))
        }
        Drill::StopEtcd { seconds, .. } if !(5..=600).contains(seconds) => {
            Err(Problem::BadRequest(format!(
                "seconds: {seconds} is out of range: stop etcd members for 5 to 600 seconds"
            )))
        }
        Drill::StopEtcd { count, .. } => {
            let running = status
                .nodes
                .iter()
                .filter(|n| n.designed == Kind::Etcd && n.container == "running")
                .count();
            if running < 3 {
                return Err(Problem::Conflict(format!(
                    "only {running} of the 3 etcd members run: start the others before stopping {count}"
                )));
            }
            Ok(())
        }
        Drill::Switchover { to, .. } => {
            let Some(target) = switchover_target(configured, primary, to.as_deref()) else {
                return Err(Problem::BadRequest(
                    "to: the cluster has no standby to hand over to".into(),
                ));
            };
            let Some(found) = status.nodes.iter().find(|n| n.name == target) else {
                return Err(Problem::BadRequest(format!(
                    "to: {target} is not a node of {}",
                    configured.design.cluster_name()
                )));
            };
            if found.designed == Kind::CascadedReplica {
                return Err(Problem::BadRequest(format!(
                    "to: {target} is a cascaded replica, which the M1 architecture never promotes: hand over to the first replica"
                )));
            }
            if !found.designed.is_postgres() {
                return Err(Problem::BadRequest(format!(
                    "to: {target} runs no Postgres of the cluster"
                )));
            }
            if found.postgres != Some(PostgresRole::Standby)
                || found.upstream.as_deref() != Some(primary)
            {
                return Err(Problem::Conflict(format!(
                    "to: {target} is not a standby streaming from {primary} right now: start it, or wait until it follows {primary}"
                )));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn conflict(existing: &Record) -> Problem {
    Problem::Conflict(format!(
        "cluster_name: a cluster named {} is already deployed (deployment {}, {}): destroy it first, or give the design another cluster_name",
        existing.cluster,
        existing.id,
        existing.state.as_str()
    ))
}

/// A plan's event as a deployment's: its kind, node, title and detail (a phase's number of
/// all, a step's duration, a failure's reason).
pub(crate) fn deployment_event(
    event: Event,
) -> (EventKind, Option<String>, String, Option<String>) {
    match event {
        Event::Phase { number, of, title } => (
            EventKind::Phase,
            None,
            title,
            Some(format!("{number}/{of}")),
        ),
        Event::Started { node, title } => (EventKind::Started, Some(node), title, None),
        Event::Finished {
            node,
            title,
            millis,
        } => (
            EventKind::Finished,
            Some(node),
            title,
            Some(format!("{:.1} s", millis as f64 / 1000.0)),
        ),
        Event::Failed {
            node,
            title,
            reason,
        } => (EventKind::Failed, Some(node), title, Some(reason)),
    }
}

/// The options of a plan made here: `EDB_SUBSCRIPTION_TOKEN` counts when it is set and not
/// empty.
pub(crate) fn plan_options(profile: Profile) -> PlanOptions {
    PlanOptions {
        profile,
        edb_token: std::env::var_os("EDB_SUBSCRIPTION_TOKEN").is_some_and(|t| !t.is_empty()),
    }
}

/// Reads every node's container state, Postgres role, timeline, lag and upstream, all nodes at
/// once, and, when `full`, what etcd, HAProxy and Barman say (which takes longer: drills,
/// which poll several times a second, leave them out).
pub async fn cluster_status(
    executor: &DockerExecutor,
    configured: &Configured,
    full: bool,
) -> Result<ClusterStatus> {
    let containers: HashMap<String, String> = executor
        .containers()
        .await?
        .into_iter()
        .map(|(node, _, state)| (node, state))
        .collect();
    Ok(status_of(executor, &containers, configured, full).await)
}

/// The live state of the cluster's nodes, through `executor`, given whether each node's
/// machine runs (`containers`: `running`, or what else it is).
pub async fn status_of(
    executor: &impl Executor,
    containers: &HashMap<String, String>,
    configured: &Configured,
    full: bool,
) -> ClusterStatus {
    let probes = configured.topology.instances.iter().map(|instance| {
        let container = containers.get(&instance.name).cloned().unwrap_or_else(|| "missing".into());
        async move {
            let mut status = NodeStatus {
                name: instance.name.clone(),
                designed: instance.kind,
                container: container.clone(),
                postgres: None,
                timeline: None,
                lag_bytes: None,
                upstream: None,
                service: None,
            };
            if !instance.kind.is_postgres() {
                if full && container == "running" {
                    status.service = match instance.kind {
                        Kind::Etcd => Some(crate::services::etcd(executor, &instance.name).await),
                        Kind::Haproxy => {
                            Some(crate::services::haproxy(executor, &instance.name).await)
                        }
                        _ => None,
                    };
                }
                return status;
            }
            status.postgres = Some(PostgresRole::Down);
            if container != "running" {
                return status;
            }
            let sql = "SELECT pg_is_in_recovery(), \
                       CASE WHEN pg_is_in_recovery() \
                            THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint())) \
                            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, \
                       COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), \
                       COALESCE((SELECT sender_host FROM pg_stat_wal_receiver), '')";
            if let Ok(answer) = crate::engine::query(executor, &instance.name, sql).await {
                let fields: Vec<&str> = answer.split('|').collect();
                if let [recovery, timeline, lag, upstream] = fields[..] {
                    let standby = recovery == "t";
                    status.postgres = Some(if standby { PostgresRole::Standby } else { PostgresRole::Primary });
                    status.timeline = timeline.parse().ok();
                    if standby {
                        status.lag_bytes = lag.parse::<f64>().ok().map(|l| l.max(0.0) as u64);
                        status.upstream = Some(upstream.to_string()).filter(|u| !u.is_empty());
                    }
                }
            }
            status
        }
    });
    let nodes = futures_util::future::join_all(probes).await;
    let primaries: Vec<&NodeStatus> = nodes
        .iter()
        .filter(|n| n.postgres == Some(PostgresRole::Primary))
        .collect();
    let primary = match primaries[..] {
        [only] => Some(only.name.clone()),
        _ => None,
    };
    let barman = match configured
        .topology
        .of_kind(Kind::Barman)
        .next()
        .filter(|_| full)
    {
        Some(barman) if containers.get(&barman.name).is_some_and(|s| s == "running") => {
            // The server keeps the first primary's name; its conninfo says where it connects.
            let server = configured.topology.instances[0].name.clone();
            let file = barman_server_file(&configured.topology);
            let backs_up = executor_run(executor, &barman.name, &argv(&["cat", &file]))
                .await
                .and_then(|o| {
                    o.stdout.lines().find_map(|l| {
                        l.strip_prefix("conninfo = host=")
                            .and_then(|rest| rest.split_whitespace().next())
                            .map(str::to_string)
                    })
                })
                .unwrap_or_else(|| server.clone());
            let check = argv(&["barman", "-q", "check", &server]);
            let list = argv(&["barman", "list-backups", "--minimal", &server]);
            // `barman check` waits about 20 s for a server that is down: only ask when it is up.
            let source_up = nodes
                .iter()
                .any(|n| n.name == backs_up && n.postgres.is_some_and(|p| p != PostgresRole::Down));
            let (check, list) = futures_util::join!(
                async {
                    if source_up {
                        executor_run(executor, &barman.name, &check).await
                    } else {
                        None
                    }
                },
                executor_run(executor, &barman.name, &list)
            );
            let warning = primary
                .as_ref()
                .filter(|p| **p != backs_up)
                .map(|p| format!("Barman backs up {backs_up}, which is no longer the primary ({p} is): its backups and WAL stop until it is pointed at {p}"));
            Some(BarmanStatus {
                node: barman.name.clone(),
                check_ok: check.as_ref().is_some_and(|o| o.code == 0),
                backups: list
                    .map(|o| o.stdout.lines().filter(|l| !l.trim().is_empty()).count())
                    .unwrap_or(0),
                backs_up,
                warning,
            })
        }
        Some(barman) => Some(BarmanStatus {
            node: barman.name.clone(),
            backs_up: configured.topology.instances[0].name.clone(),
            check_ok: false,
            backups: 0,
            warning: Some(format!("the container of {} is not running", barman.name)),
        }),
        None => None,
    };
    ClusterStatus {
        nodes,
        primary,
        barman,
    }
}

/// Registers the repmgr witness `witness` again with the primary `primary` after a switchover
/// that left it out (`--siblings-follow` would have moved the cascaded replicas too), then
/// restarts its repmgrd, which otherwise goes on watching the old primary.
async fn witness_follow(executor: &DockerExecutor, witness: &str, primary: &str) -> Result<()> {
    let register = argv(&[
        "repmgr",
        "-f",
        "/etc/repmgr.conf",
        "witness",
        "register",
        "-h",
        primary,
        "-U",
        "repmgr",
        "-d",
        "repmgr",
        "--force",
    ]);
    run_checked(
        executor,
        witness,
        &register,
        "postgres",
        None,
        "repmgr witness register",
    )
    .await?;
    let restart = argv(&[m1studio_shared::plan::SERVICE_COMMAND, "restart", "repmgrd"]);
    run_checked(
        executor,
        witness,
        &restart,
        "root",
        None,
        "restarting repmgrd",
    )
    .await?;
    Ok(())
}

/// Runs `command` on `node` as `user`; a non-zero exit is an error saying that `what` failed,
/// with the end of what the command printed.
async fn run_checked(
    executor: &DockerExecutor,
    node: &str,
    command: &[String],
    user: &str,
    stdin: Option<&str>,
    what: &str,
) -> Result<crate::engine::Output> {
    let output = executor.run(node, command, user, stdin).await?;
    if output.code != 0 {
        anyhow::bail!(
            "{what} failed (exit {}): {}",
            output.code,
            crate::engine::tail(&format!("{}\n{}", output.stdout, output.stderr), 15)
        );
    }
    Ok(output)
}

/// Runs a Barman command, giving up after a few seconds: `barman check` waits about 20 s for
/// a primary that is gone.
async fn executor_run(
    executor: &impl Executor,
    node: &str,
    command: &[String],
) -> Option<crate::engine::Output> {
    tokio::time::timeout(
        Duration::from_secs(4),
        executor.run(node, command, "barman", None),
    )
    .await
    .ok()?
    .ok()
}

/// The table the drill writer fills.
const WRITES_TABLE: &str = "CREATE TABLE IF NOT EXISTS m1studio_drill_writes (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())";

/// One insert of the drill writer.
#[derive(Debug, Clone)]
struct Write {
    id: u64,
    started: Instant,
    finished: Instant,
    ok: bool,
    /// The node that acknowledged it.
    by: Option<String>,
}

fn seconds(after_ms: i64) -> String {
    format!("{:.1} s after the fault", after_ms as f64 / 1000.0)
}

/// Inserts numbered rows one after the other through `conninfo` (every Postgres node, the
/// one that accepts writes chosen by libpq), from `node`, until `stop`. Each insert returns
/// the server's address, which `names` turns into the node that acknowledged it.
async fn write_rows(
    executor: DockerExecutor,
    node: String,
    (conninfo, names): (String, HashMap<String, String>),
    first_id: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
    writes: Arc<Mutex<Vec<Write>>>,
) {
    let mut next = first_id;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let sql = format!(
            "INSERT INTO m1studio_drill_writes (id) VALUES ({next}) RETURNING host(inet_server_addr())"
        );
        let command = argv(&["psql", "-XAtq", "-d", &conninfo, "-c", &sql]);
        let started = Instant::now();
        // A commit that waits for a synchronous standby that is gone is not acknowledged.
        let output = tokio::time::timeout(
            Duration::from_secs(5),
            executor.run(&node, &command, "barman", None),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within 5 s")));
        let ok = output.as_ref().is_ok_and(|o| o.code == 0);
        let by = output
            .ok()
            .filter(|_| ok)
            .and_then(|o| names.get(o.stdout.trim()).cloned());
        lock(&writes).push(Write {
            id: next,
            started,
            finished: Instant::now(),
            ok,
            by,
        });
        next += 1;
        if !ok {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
