//! The runner: deployments from request to running cluster, shared by the server and the CLI.
//! It checks a design completely before anything is created, records each deployment, its
//! events and its passwords in the [`Store`], runs at most a few deployments at once (the rest
//! wait in a queue), reads a cluster's live status, carries out drills, destroys, and after a
//! restart reconciles the store with what the Docker engine really runs.

mod capacity;
mod drill;
mod network;
mod problem;
mod reconcile;
mod scenario;
mod status;

pub use problem::Problem;

pub use status::{cluster_status, status_of};

use crate::engine::{Event, Secrets, run_plan};
use crate::lock;
use crate::store::{InsertError, Record, Store};
use crate::target::{DEPLOYMENT_LABEL, Refusal, SshAccess, Target};
use anyhow::Result;
use futures_util::Stream;
use m1studio_shared::api::{
    DeployRequest, Deployment, DeploymentEvent, DeploymentState, EventKind, Failure, Signal,
    connections, read_design,
};
use m1studio_shared::capacity::{self as cost, Host};
use m1studio_shared::plan::{PlanOptions, Profile, node_image, plan};
use m1studio_shared::spec::PlatformSpec;
use m1studio_shared::{Configured, Diagnostic, Draft, configure, has_errors, link};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, broadcast};

/// The label that carries a cluster's design as share-link text.
const LINK_LABEL: &str = "m1studio.link";
/// The label that carries the failover profile.
const PROFILE_LABEL: &str = "m1studio.profile";

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
    /// The node image, for containers.
    image: Option<m1studio_shared::plan::NodeImage>,
    profile: Profile,
}

/// Checks that `configured` can be deployed with `profile` (by default the platform's): the
/// same diagnostics as everywhere else, all together. `bare_hosts`: whether this runner
/// reaches existing hosts.
fn prepare(
    draft: Draft,
    configured: Configured,
    profile: Option<Profile>,
    bare_hosts: bool,
) -> std::result::Result<Prepared, Problem> {
    let design = &configured.design;
    let profile = profile.unwrap_or(Profile::for_platform(design.platform().platform()));
    let mut problems = Vec::new();
    problems.extend(m1studio_shared::api::server_refusal(design, bare_hosts));
    if matches!(design.platform(), PlatformSpec::Bare)
        && let Err(missing) = m1studio_shared::api::bare_hosts(&configured.topology)
    {
        problems.extend(missing);
    }
    let plan = plan(design, &configured.topology, plan_options(profile))
        .map_err(|p| problems.extend(p))
        .ok();
    let image = match design.platform() {
        PlatformSpec::Docker => {
            let pgdg = std::env::var("M1STUDIO_PGDG_MIRROR").ok();
            node_image(design, pgdg.as_deref())
                .map_err(|p| problems.push(p))
                .ok()
        }
        _ => None,
    };
    match plan {
        Some(plan) if problems.is_empty() => Ok(Prepared {
            draft,
            configured,
            plan,
            image,
            profile,
        }),
        _ => Err(Problem::Invalid(problems)),
    }
}

/// Who asks: the server's own user (or a workshop's trainer), who may see and do everything, or
/// an attendee of a workshop, who sees only their own deployments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The local user, or the trainer.
    Operator,
    /// An attendee, by id.
    Attendee(String),
}

impl Caller {
    /// The owner its deployments get.
    pub fn owner(&self) -> &str {
        match self {
            Caller::Operator => "",
            Caller::Attendee(id) => id,
        }
    }

    /// Whether it may see deployment `record`.
    pub fn sees(&self, record: &Record) -> bool {
        match self {
            Caller::Operator => true,
            Caller::Attendee(id) => record.owner == *id,
        }
    }
}

/// How a runner works.
#[derive(Clone)]
pub struct Settings {
    /// How many deployments run at once.
    pub parallel: usize,
    /// How existing hosts are reached, when bare designs are deployed.
    pub ssh: Option<SshAccess>,
    /// Where docker clusters that left their network at the default get one.
    pub pool: ipnet::Ipv4Net,
    /// How many clusters may live at once, all owners together.
    pub max_clusters: Option<usize>,
    /// How many clusters each attendee of a workshop may have at once.
    pub per_attendee: Option<usize>,
    /// How long a cluster lives before it is destroyed.
    pub ttl: Option<Duration>,
    /// How many deployments may wait for a slot; more are refused until some have started.
    pub max_queued: usize,
    /// What the host has, to admit clusters by what they cost; none admits them by count.
    pub host: Option<Host>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            parallel: 2,
            ssh: None,
            pool: m1studio_shared::net::DEFAULT_POOL
                .parse()
                .unwrap_or_default(),
            max_clusters: None,
            per_attendee: None,
            ttl: None,
            max_queued: 64,
            host: None,
        }
    }
}

struct Inner {
    store: Store,
    /// Admissions one at a time: a network is chosen and recorded before the next is.
    admitting: tokio::sync::Mutex<()>,
    pool: ipnet::Ipv4Net,
    max_clusters: Option<usize>,
    per_attendee: Option<usize>,
    ttl: Option<Duration>,
    max_queued: usize,
    host: Option<Host>,
    /// How many deployments run at once.
    parallel: usize,
    /// How long the last deployments took, in seconds, newest last: how long the queue waits.
    took: Mutex<VecDeque<u64>>,
    slots: Arc<Semaphore>,
    queue: Mutex<VecDeque<String>>,
    channels: Mutex<HashMap<String, broadcast::Sender<DeploymentEvent>>>,
    watching: Mutex<Vec<String>>,
    /// How existing hosts are reached, when this runner deploys bare designs.
    ssh: Option<SshAccess>,
    /// Each deployment's target, once used: its connections (agents) last between requests.
    targets: Mutex<HashMap<String, Target>>,
    /// The scenarios run since the start, by id.
    scenarios: Mutex<HashMap<String, scenario::Run>>,
    /// The last status read of each deployment.
    statuses: Mutex<status::Statuses>,
    /// The tasks of the deployments this process runs (queued or deploying), to stop them.
    tasks: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// This process's id in the store: the deployments it runs carry it, and it says it
    /// lives every few seconds while it does.
    process: String,
    /// Whether the heartbeat runs.
    beating: std::sync::atomic::AtomicBool,
}

/// Runs deployments; cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

fn new_id() -> Result<String> {
    crate::random_hex(6)
}

impl Runner {
    /// A runner over `store` that deploys at most `parallel` clusters at once, on the local
    /// Docker engine.
    pub fn new(store: Store, parallel: usize) -> Runner {
        Runner::with_ssh(store, parallel, None)
    }

    /// A runner that also deploys bare designs on their hosts, reached as `ssh` says.
    pub fn with_ssh(store: Store, parallel: usize, ssh: Option<SshAccess>) -> Runner {
        Runner::with(
            store,
            Settings {
                parallel,
                ssh,
                ..Settings::default()
            },
        )
    }

    /// A runner over `store` that works as `settings` say.
    pub fn with(store: Store, settings: Settings) -> Runner {
        let Settings {
            parallel,
            ssh,
            pool,
            max_clusters,
            per_attendee,
            ttl,
            max_queued,
            host,
        } = settings;
        Runner {
            inner: Arc::new(Inner {
                store,
                admitting: tokio::sync::Mutex::new(()),
                pool,
                max_clusters,
                per_attendee,
                ttl,
                max_queued,
                host,
                parallel: parallel.max(1),
                took: Mutex::new(VecDeque::new()),
                slots: Arc::new(Semaphore::new(parallel.max(1))),
                queue: Mutex::new(VecDeque::new()),
                channels: Mutex::new(HashMap::new()),
                watching: Mutex::new(Vec::new()),
                ssh,
                targets: Mutex::new(HashMap::new()),
                scenarios: Mutex::new(HashMap::new()),
                statuses: Mutex::new(status::Statuses::default()),
                tasks: Mutex::new(HashMap::new()),
                process: new_id().unwrap_or_else(|_| format!("p{}", std::process::id())),
                beating: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The target of deployment `record`, whose design is `configured`: the one already in
    /// use, or a new one.
    async fn target(&self, record: &Record, configured: &Configured) -> Result<Target, Problem> {
        if let Some(target) = lock(&self.inner.targets).get(&record.id) {
            return Ok(target.clone());
        }
        let target = Target::connect(configured, &record.engine_name(), self.inner.ssh.as_ref())
            .await?
            .for_deployment(&record.id);
        Ok(lock(&self.inner.targets)
            .entry(record.id.clone())
            .or_insert(target)
            .clone())
    }

    /// The design deployment `record` runs: its stored design, on the network it got.
    fn effective(record: &Record) -> Draft {
        let mut draft = record.draft.clone();
        if record.network.is_some() {
            draft.network.clone_from(&record.network);
        }
        draft
    }

    /// The design deployment `record` runs, configured.
    fn configured(record: &Record) -> Result<Configured, Problem> {
        configure(&Runner::effective(record)).0.ok_or_else(|| {
            Problem::Internal(anyhow::anyhow!(
                "the stored design of {} is no longer valid",
                record.id
            ))
        })
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
        self.record(id, kind, node, title, detail, None);
    }

    /// Records an event that means `signal`, and tells everyone following the deployment.
    fn signal(
        &self,
        id: &str,
        signal: Signal,
        kind: EventKind,
        node: Option<&str>,
        title: &str,
        detail: Option<&str>,
    ) {
        self.record(id, kind, node, title, detail, Some(signal));
    }

    fn record(
        &self,
        id: &str,
        kind: EventKind,
        node: Option<&str>,
        title: &str,
        detail: Option<&str>,
        signal: Option<Signal>,
    ) {
        match self
            .inner
            .store
            .append(id, kind, node, title, detail, signal)
        {
            Ok(event) => {
                // What is read of the cluster's state from now on must be newer than this.
                let mut statuses = lock(&self.inner.statuses);
                statuses.forget(id);
                if signal == Some(Signal::BarmanFollows) {
                    statuses.forget_barman(id);
                }
                drop(statuses);
                let _ = self.sender(id).send(event);
            }
            Err(e) => tracing::warn!("cannot record an event of deployment {id}: {e:#}"),
        }
    }

    fn set_state(&self, id: &str, state: DeploymentState) {
        let process = Some(self.inner.process.as_str());
        if let Err(e) = self.inner.store.set_state_by(id, state, None, process) {
            tracing::warn!("cannot record the state of deployment {id}: {e:#}");
        }
        self.emit(id, EventKind::State, None, state.as_str(), None);
    }

    /// Marks deployment `id` failed, with the kind of failure and its reason.
    fn fail(&self, id: &str, failure: Failure, reason: &str) {
        let state = DeploymentState::Failed;
        if let Err(e) = self
            .inner
            .store
            .set_state(id, state, Some((failure, reason)))
        {
            tracing::warn!("cannot record the state of deployment {id}: {e:#}");
        }
        self.emit(id, EventKind::State, None, state.as_str(), Some(reason));
    }

    /// Turns the stored events of a plan into the deployment's events.
    fn plan_events<'a>(&'a self, id: &'a str) -> impl Fn(Event) + Sync + 'a {
        move |event: Event| {
            let (kind, node, title, detail) = deployment_event(event);
            self.emit(id, kind, node.as_deref(), &title, detail.as_deref());
        }
    }

    /// The API's view of a stored deployment.
    pub fn view(&self, record: &Record) -> Deployment {
        let topology = configure(&Runner::effective(record))
            .0
            .map(|c| c.topology)
            .unwrap_or_default();
        let queue_position = lock(&self.inner.queue)
            .iter()
            .position(|q| *q == record.id)
            .map(|p| p + 1);
        let queue_wait_secs = queue_position.map(|position| {
            cost::estimated_wait_secs(position, self.inner.parallel, self.typical_secs())
        });
        Deployment {
            id: record.id.clone(),
            cluster: record.cluster.clone(),
            state: record.state,
            profile: record.profile,
            created_ms: record.created_ms,
            updated_ms: record.updated_ms,
            error: record.error.clone(),
            failure: record.failure,
            link: link::encode(&record.draft),
            connections: connections(&topology, &record.id),
            instances: topology.instances,
            queue_position,
            queue_wait_secs,
            network: record.network.clone(),
            owner: record.owner.clone(),
            expires_ms: self.expires_ms(record),
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
        self.list_as(&Caller::Operator)
    }

    /// Every deployment `caller` may see, newest first.
    pub fn list_as(&self, caller: &Caller) -> Result<Vec<Deployment>> {
        Ok(self
            .inner
            .store
            .list()?
            .iter()
            .filter(|r| caller.sees(r))
            .map(|r| self.view(r))
            .collect())
    }

    /// The deployment `id`, if `caller` may see it; anyone else's is not found, so that its
    /// existence is not told either.
    pub fn get_as(&self, caller: &Caller, id: &str) -> std::result::Result<Record, Problem> {
        let record = self.get(id)?;
        if caller.sees(&record) {
            Ok(record)
        } else {
            Err(Problem::NotFound(format!(
                "no deployment {id}: list yours with GET /api/deployments"
            )))
        }
    }

    /// Checks a request, records it as queued and starts it in the background. Nothing is
    /// created when the design, the target or the cluster name is wrong.
    pub async fn submit(&self, request: DeployRequest) -> std::result::Result<Deployment, Problem> {
        self.submit_with(request, None).await
    }

    /// `submit`, for `caller`, who owns the deployment.
    pub async fn submit_as(
        &self,
        caller: &Caller,
        request: DeployRequest,
    ) -> std::result::Result<Deployment, Problem> {
        self.admit(caller.owner(), request, None).await
    }

    /// `submit`, with the cluster's passwords and SSH key given (a bare cluster's, kept in its
    /// directory) rather than new ones.
    pub async fn submit_with(
        &self,
        request: DeployRequest,
        secrets: Option<Secrets>,
    ) -> std::result::Result<Deployment, Problem> {
        self.admit("", request, secrets).await
    }

    async fn admit(
        &self,
        owner: &str,
        request: DeployRequest,
        secrets: Option<Secrets>,
    ) -> std::result::Result<Deployment, Problem> {
        let request = std::sync::Arc::new(request);
        let checking = request.clone();
        let (draft, configured, _) = crate::off_workers(move || resolve(&checking)).await??;
        self.keep_alive();
        let cluster = configured.design.cluster_name().to_string();
        if let Some(existing) = self.inner.store.live_by_cluster(owner, &cluster)? {
            return Err(conflict(&existing));
        }
        // One admission at a time, from the choice of a network until it is recorded.
        let admission = self.inner.admitting.lock().await;
        let waiting = lock(&self.inner.queue).len();
        if waiting >= self.inner.max_queued {
            return Err(Problem::Unavailable(format!(
                "{waiting} deployments are waiting for a slot already, as many as this server queues: try again once some have started"
            )));
        }
        self.within_quota(owner, cost::configured_cost(&configured))?;
        let (draft, configured, network) = self.place(draft, configured).await?;
        let prepared = prepare(draft, configured, request.profile, self.inner.ssh.is_some())?;
        let engine_name = crate::store::engine_name(owner, &cluster);
        let id = new_id()?;
        let target = Target::connect(&prepared.configured, &engine_name, self.inner.ssh.as_ref())
            .await?
            .for_deployment(&id);
        match target.refusal(&prepared.configured).await? {
            Some(Refusal::Taken(message)) => return Err(Problem::Conflict(message)),
            Some(Refusal::Hosts(problems)) => return Err(Problem::Invalid(problems)),
            None => {}
        }
        let secrets = match secrets {
            Some(secrets) => secrets,
            None => Secrets::generate()?,
        };
        let record = Record {
            profile: prepared.profile,
            process: Some(self.inner.process.clone()),
            owner: owner.to_string(),
            network,
            ..Record::new(&id, &cluster, prepared.draft.clone())
        };
        let pairs: Vec<(&str, &str)> = secrets.entries().collect();
        match self.inner.store.insert(&record, &pairs) {
            Ok(()) => {}
            Err(InsertError::Conflict(existing)) => return Err(conflict(&existing)),
            Err(InsertError::Other(e)) => return Err(Problem::Internal(e)),
            Err(InsertError::Taken) => {
                return Err(Problem::Internal(anyhow::anyhow!(
                    "deployment {} is already recorded",
                    record.id
                )));
            }
        }
        drop(admission);
        lock(&self.inner.targets).insert(record.id.clone(), target.clone());
        lock(&self.inner.queue).push_back(record.id.clone());
        self.emit(&record.id, EventKind::State, None, "queued", None);
        let runner = self.clone();
        let id = record.id.clone();
        let task = tokio::spawn(async move {
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
            if let Err(e) = runner.deploy(&id, &prepared, &secrets, &target).await {
                let reason = secrets.hide(&format!("{e:#}"));
                runner.fail(&id, Failure::Step, &reason);
            }
            drop(permit);
            lock(&runner.inner.tasks).remove(&id);
        });
        lock(&self.inner.tasks).insert(record.id.clone(), task);
        Ok(self.view(&record))
    }

    async fn deploy(
        &self,
        id: &str,
        prepared: &Prepared,
        secrets: &Secrets,
        target: &Target,
    ) -> Result<()> {
        self.set_state(id, DeploymentState::Deploying);
        let started = Instant::now();
        let configured = &prepared.configured;
        let cluster = configured.design.cluster_name();
        let link = link::encode(&prepared.draft);
        let files = prepared
            .plan
            .nodes
            .iter()
            .map(|n| {
                (
                    n.node.clone(),
                    crate::engine::filled_files(&prepared.plan, secrets, &n.node),
                )
            })
            .collect();
        let waves = prepared.plan.start_order(
            configured
                .topology
                .instances
                .iter()
                .map(|i| i.name.as_str()),
        );
        target
            .provision(
                configured,
                prepared.image.as_ref(),
                &[
                    (LINK_LABEL, &link),
                    (DEPLOYMENT_LABEL, id),
                    (PROFILE_LABEL, prepared.profile.as_str()),
                ],
                &files,
                &waves,
                &|signal, title, detail| {
                    self.record(id, EventKind::Progress, None, title, detail, signal);
                },
            )
            .await?;
        let events = self.plan_events(id);
        run_plan(target, &prepared.plan, secrets, &events).await?;
        target.ready().await?;
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
        {
            let mut took = lock(&self.inner.took);
            took.push_back(started.elapsed().as_secs());
            if took.len() > 8 {
                took.pop_front();
            }
        }
        self.set_state(id, DeploymentState::Running);
        Ok(())
    }

    /// How long a deployment takes here, in seconds: the last ones' average, or the usual
    /// time before any has run.
    fn typical_secs(&self) -> u64 {
        let took = lock(&self.inner.took);
        match u64::try_from(took.len()) {
            Ok(count) if count > 0 => took.iter().sum::<u64>() / count,
            _ => cost::TYPICAL_DEPLOY_SECS,
        }
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
