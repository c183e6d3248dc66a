//! The messages of the deployment API, shared by the server, the CLI and the designer, and the
//! connection strings of a deployed cluster.

use crate::plan::Profile;
use crate::{Configured, Diagnostic, Draft, Instance, Kind, Topology, config, configure, link};
use serde::{Deserialize, Serialize};

/// Where a deployment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Waiting for a free deployment slot.
    Queued,
    /// Its plan is running.
    Deploying,
    /// Every step finished; the cluster runs.
    Running,
    /// A step failed, or the server stopped during the deployment. Its containers are kept
    /// for inspection until it is destroyed.
    Failed,
    /// Its containers, volumes and network are being removed.
    Destroying,
    /// Nothing of it is left.
    Destroyed,
}

impl DeploymentState {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Queued => "queued",
            DeploymentState::Deploying => "deploying",
            DeploymentState::Running => "running",
            DeploymentState::Failed => "failed",
            DeploymentState::Destroying => "destroying",
            DeploymentState::Destroyed => "destroyed",
        }
    }

    /// The state named `text`.
    pub fn parse(text: &str) -> Option<DeploymentState> {
        [
            DeploymentState::Queued,
            DeploymentState::Deploying,
            DeploymentState::Running,
            DeploymentState::Failed,
            DeploymentState::Destroying,
            DeploymentState::Destroyed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether the deployment's work is under way (a restart interrupts it).
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            DeploymentState::Queued | DeploymentState::Deploying | DeploymentState::Destroying
        )
    }
}

/// Why a deployment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// A step of its plan failed, or did not finish within the plan's limit for it.
    Step,
    /// The process that ran it stopped, or died, while it was under way.
    Interrupted,
    /// Destroying it failed.
    Destroy,
    /// Some of its machines were found stopped when the server started.
    Stopped,
}

impl Failure {
    /// The name the API and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Step => "step",
            Failure::Interrupted => "interrupted",
            Failure::Destroy => "destroy",
            Failure::Stopped => "stopped",
        }
    }

    /// The failure named `name`.
    pub fn parse(name: &str) -> Option<Failure> {
        [
            Failure::Step,
            Failure::Interrupted,
            Failure::Destroy,
            Failure::Stopped,
        ]
        .into_iter()
        .find(|f| f.as_str() == name)
    }
}

/// A request to deploy a design: exactly one of `draft`, `link` or `config_yml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The design as a draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<Draft>,
    /// The design as share-link text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The design as a config.yml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_yml: Option<String>,
    /// The failover timing; `demo` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}

/// A design as a request gives it, read and checked: the draft, the configured design when it
/// has no error, and every diagnostic (a config.yml's with paths in the file). `None` unless
/// exactly one of `draft`, `link` and `config_yml` is given.
pub fn read_design(
    draft: Option<&Draft>,
    link_text: Option<&str>,
    config_yml: Option<&str>,
) -> Option<(Option<Draft>, Option<Configured>, Vec<Diagnostic>)> {
    let (draft, mut diagnostics, validated) = match (draft, link_text, config_yml) {
        (Some(draft), None, None) => (Some(draft.clone()), Vec::new(), false),
        (None, Some(text), None) => {
            let (draft, notices) = link::decode(text);
            (Some(draft), notices, false)
        }
        // A config.yml comes back already validated.
        (None, None, Some(text)) => {
            let (draft, diagnostics) = config::read(text);
            (draft, diagnostics, true)
        }
        _ => return None,
    };
    let configured = draft.as_ref().and_then(|draft| {
        let (configured, validation) = configure(draft);
        if !validated {
            diagnostics.extend(validation);
        }
        configured
    });
    Some((draft, configured, diagnostics))
}

/// How to reach a deployed cluster's Postgres, without its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connections {
    /// Reaches whichever node is the primary, before and after a failover.
    pub read_write: String,
    /// Prefers a standby, and falls back to the primary.
    pub read_only: String,
    /// One per Postgres node: `(name, connection string)`.
    pub nodes: Vec<(String, String)>,
    /// Where the password of the `postgres` user is read.
    pub password: String,
}

/// Why a runner cannot deploy `design`, if it cannot: it runs docker designs on its Docker
/// engine, bare designs' hosts over SSH where it was given the means (`bare_hosts`: the command
/// line always is, a server when started with `--ssh-key`), and an aws design deploys with TPA.
pub fn server_refusal(design: &crate::Design, bare_hosts: bool) -> Option<Diagnostic> {
    use crate::diag::Code;
    use crate::spec::PlatformSpec;
    match design.platform() {
        PlatformSpec::Docker => None,
        PlatformSpec::Bare if bare_hosts => None,
        PlatformSpec::Bare => Some(Diagnostic::error(
            "platform",
            Code::DeployUnsupported,
            "this server deploys docker designs only: it reaches a bare design's hosts over SSH once started with `m1studio serve --ssh-key KEY`; or deploy from the command line: write its config.yml (m1studio configure DIR …, with each host's address after its name in --hostnames-from), then run m1studio deploy DIR --ssh-key KEY",
        )),
        PlatformSpec::Aws { .. } => Some(Diagnostic::error(
            "platform",
            Code::DeployUnsupported,
            "m1studio deploys docker designs (--platform docker), and bare designs on existing hosts; this one is for aws: deploy its config.yml with TPA",
        )),
    }
}

/// Why a docker design's explicit network cannot be used now: `other`'s cluster, deployed, has
/// `taken`, which overlaps it. Docker would refuse it half-way; this says so before.
pub fn network_taken(network: ipnet::Ipv4Net, other: &str, taken: ipnet::Ipv4Net) -> Diagnostic {
    Diagnostic::error(
        "network",
        crate::diag::Code::NetworkTaken,
        format!(
            "--network {network} overlaps {taken}, which cluster {other} uses on this Docker engine: leave --network out (each cluster then gets a free network of its own), choose a range that overlaps no other, or destroy {other} first"
        ),
    )
}

/// Why no network could be found for a docker design that left its own at the default.
pub fn pool_full(pool: ipnet::Ipv4Net) -> Diagnostic {
    Diagnostic::error(
        "network",
        crate::diag::Code::NetworkTaken,
        format!(
            "every network of the address pool {pool} is in use: destroy a cluster, or start the server with a larger --address-pool"
        ),
    )
}

/// Each host of a bare design and the address m1studio reaches it at over SSH, or, for every
/// instance without one, a diagnostic at its `ip_address`.
pub fn bare_hosts(
    topology: &Topology,
) -> Result<std::collections::BTreeMap<String, std::net::IpAddr>, Vec<Diagnostic>> {
    let mut hosts = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    for (index, instance) in topology.instances.iter().enumerate() {
        match instance.ip_address {
            Some(address) => {
                hosts.insert(instance.name.clone(), address);
            }
            None => problems.push(Diagnostic::error(
                format!("instances[{index}].ip_address"),
                crate::diag::Code::DeployUnsupported,
                format!(
                    "{} has no address, and m1studio reaches each host of a bare design over SSH: add `ip_address: ADDRESS` to {} in config.yml, or give each host's address after its name in a --hostnames-from file when you configure",
                    instance.name, instance.name
                ),
            )),
        }
    }
    if problems.is_empty() {
        Ok(hosts)
    } else {
        Err(problems)
    }
}

/// The connection strings of `topology`'s Postgres nodes; each host is listed by its name and,
/// where it has one, its address. `id` names the deployment whose credentials hold the password.
pub fn connections(topology: &Topology, id: &str) -> Connections {
    let postgres: Vec<&Instance> = topology
        .instances
        .iter()
        .filter(|i| i.kind.is_postgres())
        .collect();
    let host = |i: &Instance| {
        i.ip_address
            .map_or_else(|| i.name.clone(), |a| a.to_string())
    };
    let hosts = postgres
        .iter()
        .map(|i| format!("{}:5432", host(i)))
        .collect::<Vec<_>>()
        .join(",");
    // With HAProxy, clients go through it: 5432 reaches the leader, 5433 the standbys.
    let proxies: Vec<&Instance> = topology.of_kind(Kind::Haproxy).collect();
    let through = |port: u16| {
        proxies
            .iter()
            .map(|i| format!("{}:{port}", host(i)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (read_write, read_only) = if proxies.is_empty() {
        (
            format!(
                "postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write&connect_timeout=2"
            ),
            format!(
                "postgresql://postgres@{hosts}/postgres?target_session_attrs=prefer-standby&connect_timeout=2"
            ),
        )
    } else {
        (
            format!(
                "postgresql://postgres@{}/postgres?target_session_attrs=read-write&connect_timeout=2",
                through(5432)
            ),
            format!(
                "postgresql://postgres@{}/postgres?connect_timeout=2",
                through(crate::plan::HAPROXY_READ_ONLY_PORT)
            ),
        )
    };
    Connections {
        read_write,
        read_only,
        nodes: postgres
            .iter()
            .map(|i| {
                (
                    i.name.clone(),
                    format!("postgresql://postgres@{}:5432/postgres", host(i)),
                )
            })
            .collect(),
        password: format!("GET /api/deployments/{id}/credentials"),
    }
}

/// A deployment as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Its identifier.
    pub id: String,
    /// The cluster's name.
    pub cluster: String,
    /// Where it is.
    pub state: DeploymentState,
    /// Its failover timing.
    pub profile: Profile,
    /// When it was asked for, in milliseconds since 1970.
    pub created_ms: u64,
    /// When its state last changed.
    pub updated_ms: u64,
    /// Why it failed, in a sentence.
    #[serde(default)]
    pub error: Option<String>,
    /// What kind of failure it was.
    #[serde(default)]
    pub failure: Option<Failure>,
    /// Its design as share-link text (never with a password).
    pub link: String,
    /// Its instances as designed.
    pub instances: Vec<Instance>,
    /// How to connect.
    pub connections: Connections,
    /// Its place in the queue, from 1, while queued.
    #[serde(default)]
    pub queue_position: Option<usize>,
    /// About how long it waits still, in seconds, while queued.
    #[serde(default)]
    pub queue_wait_secs: Option<u64>,
    /// The network it got from the address pool, when its design left the network at the
    /// default (its instances' addresses and connection strings are in it; its link is not).
    #[serde(default)]
    pub network: Option<String>,
    /// Its owner: an attendee's id in a workshop, or empty for the server's own user.
    #[serde(default)]
    pub owner: String,
    /// When the server destroys it, in milliseconds since 1970, where clusters expire.
    #[serde(default)]
    pub expires_ms: Option<u64>,
}

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The deployment changed state; `title` is the new state.
    State,
    /// A phase of the plan began.
    Phase,
    /// A step began on a node.
    Started,
    /// A step ended well on a node.
    Finished,
    /// A step failed on a node; `detail` has the command's output.
    Failed,
    /// Progress outside the plan (image build, containers).
    Progress,
    /// A drill was carried out.
    Drill,
    /// Something seen while watching the cluster (a node went down, a new primary).
    Observed,
}

/// Something that happened to a deployment, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentEvent {
    /// Its number within the deployment, from 1.
    pub seq: u64,
    /// When, in milliseconds since 1970.
    pub at_ms: u64,
    /// What kind.
    pub kind: EventKind,
    /// The node it concerns.
    #[serde(default)]
    pub node: Option<String>,
    /// What happened.
    pub title: String,
    /// Logs, timings or reasons.
    #[serde(default)]
    pub detail: Option<String>,
    /// What it means, where it is more than a step of a plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
}

/// What Postgres on a node says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostgresRole {
    /// Accepts writes.
    Primary,
    /// Replays WAL.
    Standby,
    /// Does not answer.
    Down,
}

/// The state of a node's machine: a container's state as the Docker engine says it, or, for an
/// existing host, whether it answers over SSH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Machine {
    /// It runs (a host: it answers).
    Running,
    /// Created, never started.
    Created,
    /// Being restarted by the engine.
    Restarting,
    /// Paused.
    Paused,
    /// Stopped or killed.
    Exited,
    /// Being removed.
    Removing,
    /// Dead, as the engine says.
    Dead,
    /// The design has the node, the target has no machine for it.
    Missing,
    /// An existing host that does not answer over SSH.
    Unreachable,
}

impl Machine {
    /// Its name, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Machine::Running => "running",
            Machine::Created => "created",
            Machine::Restarting => "restarting",
            Machine::Paused => "paused",
            Machine::Exited => "exited",
            Machine::Removing => "removing",
            Machine::Dead => "dead",
            Machine::Missing => "missing",
            Machine::Unreachable => "unreachable",
        }
    }

    /// A container's state as the Docker engine names it; an unknown name is `Dead`.
    pub fn of_container(state: &str) -> Machine {
        match state {
            "running" => Machine::Running,
            "created" => Machine::Created,
            "restarting" => Machine::Restarting,
            "paused" => Machine::Paused,
            "exited" => Machine::Exited,
            "removing" => Machine::Removing,
            _ => Machine::Dead,
        }
    }
}

/// The body of every request the API refuses, whatever its status: `{"error": {"message",
/// "diagnostics"}}`. The server writes it and the designer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// One sentence for people, naming the field or what to do.
    pub message: String,
    /// Where the design or the drill was refused: every diagnostic, each with its stable code.
    #[serde(default)]
    pub diagnostics: Vec<Diagnostic>,
}

/// The longest display name an attendee may give.
pub const NAME_LIMIT: usize = 40;

/// A request to join a workshop: its join code, and the name its attendee gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The code of the trainer's join link.
    pub code: String,
    /// The attendee's display name.
    pub name: String,
}

/// An attendee of a workshop, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendeeView {
    /// Its identifier.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The workshop.
    pub workshop: String,
}

/// The answer to a join: the attendee's own token (kept by the page), and who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// The token every later call carries.
    pub token: String,
    /// The attendee.
    pub attendee: AttendeeView,
}

/// What the trainer sees: every attendee with their deployments, and the deployments of the
/// trainer's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    /// The workshop's name.
    pub workshop: String,
    /// Every attendee, in the order they joined.
    pub attendees: Vec<RoomSeat>,
}

/// One attendee in the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSeat {
    /// Who.
    pub attendee: AttendeeView,
    /// Their deployments, newest first.
    pub deployments: Vec<Deployment>,
    /// The last drill report of each of them, by deployment id.
    pub last_reports: Vec<(String, DrillReport)>,
    /// What was last read of each running one, by deployment id.
    #[serde(default)]
    pub live: Vec<(String, Live)>,
}

/// What the room shows of a running cluster, from its last status read: the primary, and how
/// far behind the standbys are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Live {
    /// The node that accepts writes, if exactly one does.
    pub primary: Option<String>,
    /// How many standbys replay WAL.
    pub standbys: usize,
    /// How many Postgres nodes the design has besides the primary.
    pub of: usize,
    /// The largest lag of a standby, in bytes, if any standby says.
    pub lag_bytes: Option<u64>,
    /// How old the reading is, in seconds.
    pub age_secs: u64,
}

impl Live {
    /// The room's view of `status`, read `age_secs` ago.
    pub fn of(status: &ClusterStatus, age_secs: u64) -> Live {
        let postgres: Vec<&NodeStatus> = status
            .nodes
            .iter()
            .filter(|n| n.designed.is_postgres())
            .collect();
        Live {
            primary: status.primary.clone(),
            standbys: postgres
                .iter()
                .filter(|n| n.postgres == Some(PostgresRole::Standby))
                .count(),
            of: postgres.len().saturating_sub(1),
            lag_bytes: postgres.iter().filter_map(|n| n.lag_bytes).max(),
            age_secs,
        }
    }

    /// The room's cell: `kestrel · 2/2 standbys · lag 0 B`.
    pub fn summary(&self) -> String {
        let primary = self.primary.as_deref().unwrap_or("no primary");
        let lag = self
            .lag_bytes
            .map(|bytes| format!(" · lag {}", bytes_text(bytes)))
            .unwrap_or_default();
        format!("{primary} · {}/{} standbys{lag}", self.standbys, self.of)
    }
}

/// `bytes` for people: 0 B, 12 kB, 3.4 MB.
pub fn bytes_text(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{} kB", bytes / 1_000),
        _ => format!("{}.{} MB", bytes / 1_000_000, bytes % 1_000_000 / 100_000),
    }
}

/// What is wrong with a display name, as a diagnostic at `name`, if anything.
pub fn name_problem(name: &str) -> Option<Diagnostic> {
    let trimmed = name.trim();
    let problem = if trimmed.is_empty() {
        "is empty: give the name the room knows you by".to_string()
    } else if trimmed.chars().count() > NAME_LIMIT {
        format!(
            "is {} characters long: give at most {NAME_LIMIT}",
            trimmed.chars().count()
        )
    } else if trimmed.chars().any(char::is_control) {
        "holds control characters: give letters, digits, spaces and punctuation".to_string()
    } else {
        return None;
    };
    Some(Diagnostic::error(
        "name",
        crate::diag::Code::NameInvalid,
        format!("the name {problem}"),
    ))
}

/// One node's live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's name.
    pub name: String,
    /// What it was designed as.
    pub designed: Kind,
    /// Its machine's state: a container's, or whether a host answers over SSH.
    #[serde(alias = "container")]
    pub machine: Machine,
    /// What its Postgres is, for Postgres nodes and the witness.
    #[serde(default)]
    pub postgres: Option<PostgresRole>,
    /// Its timeline.
    #[serde(default)]
    pub timeline: Option<u32>,
    /// For a standby: bytes received but not yet replayed.
    #[serde(default)]
    pub lag_bytes: Option<u64>,
    /// For a standby: the node it streams from.
    #[serde(default)]
    pub upstream: Option<String>,
    /// For an etcd member or an HAProxy node: what the service itself says.
    #[serde(default)]
    pub service: Option<ServiceStatus>,
}

/// What an etcd member or an HAProxy node is doing, asked of the service itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Whether it does its job: an etcd member of a quorum that has a leader, an HAProxy with
    /// a leader to send writes to.
    pub healthy: bool,
    /// A short account, as the diagram shows it: `etcd leader`, `no quorum`, `rw → node2`.
    pub summary: String,
    /// etcd: whether this member leads the quorum.
    #[serde(default)]
    pub leader: Option<bool>,
    /// HAProxy: each frontend and the nodes it sends connections to now.
    #[serde(default)]
    pub routes: Vec<Route>,
}

impl ServiceStatus {
    /// Each route as `5432 → node1; 5433 → node2, node3`; empty for etcd.
    pub fn routes_text(&self) -> String {
        self.routes
            .iter()
            .map(|r| {
                let up = if r.up.is_empty() {
                    "nothing".to_string()
                } else {
                    r.up.join(", ")
                };
                format!("{} → {up}", r.port)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One HAProxy frontend and the backends its health checks find up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The port clients connect to (5432 for writes, 5433 for reads).
    pub port: u16,
    /// The nodes it sends connections to now.
    pub up: Vec<String>,
}

/// Barman's live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarmanStatus {
    /// The Barman node.
    pub node: String,
    /// The node it backs up.
    pub backs_up: String,
    /// Whether `barman check` passes.
    pub check_ok: bool,
    /// How many backups it has.
    pub backups: usize,
    /// What needs attention, such as backing up a node that is no longer the primary.
    #[serde(default)]
    pub warning: Option<String>,
}

/// A deployed cluster's live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// Every node, in node order.
    pub nodes: Vec<NodeStatus>,
    /// The node that accepts writes, if exactly one does.
    #[serde(default)]
    pub primary: Option<String>,
    /// Barman, where the design has it.
    #[serde(default)]
    pub barman: Option<BarmanStatus>,
}

/// A fault or repair to carry out on a running cluster. Written `{"action": NAME, …}` with the
/// fields its action takes; read through [`DrillWire`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", try_from = "DrillWire")]
pub enum Drill {
    /// Kills the current primary's container: the failover manager should promote the replica.
    /// A writer inserts numbered rows throughout, and the drill's report measures the outage.
    KillPrimary {
        /// Point Barman at the new primary once there is one.
        retarget_barman: bool,
    },
    /// Stops the current primary's container cleanly, with the same writer and report.
    StopPrimary {
        /// Point Barman at the new primary once there is one.
        retarget_barman: bool,
    },
    /// Cuts the current primary off the cluster's network for `seconds`, then brings it back;
    /// a primary that comes back beside a new one is fenced (its Postgres stopped).
    IsolatePrimary {
        /// How long it stays cut off (5 to 600).
        seconds: u32,
        /// Point Barman at the new primary once there is one.
        retarget_barman: bool,
    },
    /// A planned switchover: the primary hands over to `to` (by default the first replica) with
    /// `repmgr standby switchover` or `patronictl switchover`, and becomes its standby. The same
    /// writer and report.
    Switchover {
        /// The standby that becomes the primary.
        to: Option<String>,
        /// Point Barman at the new primary once there is one.
        retarget_barman: bool,
    },
    /// Stops `count` etcd members (1 or 2) for `seconds`, then starts them again, with the same
    /// writer and report. With one down the quorum holds and nothing changes; with two down
    /// Patroni can neither renew nor elect a leader, so the primary stops taking writes and no
    /// failover happens until the quorum is back.
    StopEtcd {
        /// How many members stop.
        count: u32,
        /// How long they stay stopped (5 to 600).
        seconds: u32,
    },
    /// Stops a node's container cleanly (a standby, Barman): the cluster carries on without it.
    StopNode {
        /// The node.
        node: String,
    },
    /// Starts a stopped node's container again.
    Start {
        /// The node.
        node: String,
    },
    /// Points Barman at the current primary: conninfo, streaming and its slot; then checks it.
    RetargetBarman,
}

fn default_isolation() -> u32 {
    30
}

/// A drill's action, as `action` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillAction {
    /// [`Drill::KillPrimary`].
    KillPrimary,
    /// [`Drill::StopPrimary`].
    StopPrimary,
    /// [`Drill::IsolatePrimary`].
    IsolatePrimary,
    /// [`Drill::Switchover`].
    Switchover,
    /// [`Drill::StopEtcd`].
    StopEtcd,
    /// [`Drill::StopNode`].
    StopNode,
    /// [`Drill::Start`].
    Start,
    /// [`Drill::RetargetBarman`].
    RetargetBarman,
}

/// A drill as it is written: its action, and the fields that any action takes (and `at`, a
/// scenario step's start). A drill, and a scenario's step, is read through this plain struct,
/// then checked into a [`Drill`]: serde's reading of internally tagged enums and flattened
/// fields buffers the whole object first, and that code would weigh on every page.
#[derive(Debug, Clone, Deserialize)]
pub struct DrillWire {
    #[serde(default)]
    pub(crate) at: Option<u32>,
    pub(crate) action: DrillAction,
    #[serde(default)]
    pub(crate) retarget_barman: bool,
    #[serde(default)]
    pub(crate) seconds: Option<u32>,
    #[serde(default)]
    pub(crate) to: Option<String>,
    #[serde(default)]
    pub(crate) count: Option<u32>,
    #[serde(default)]
    pub(crate) node: Option<String>,
}

impl TryFrom<DrillWire> for Drill {
    type Error = String;

    fn try_from(wire: DrillWire) -> Result<Drill, String> {
        let DrillWire {
            at: _,
            action,
            retarget_barman,
            seconds,
            to,
            count,
            node,
        } = wire;
        let node =
            |name: &str| node.ok_or_else(|| format!("{name} needs the node: add \"node\": NAME"));
        Ok(match action {
            DrillAction::KillPrimary => Drill::KillPrimary { retarget_barman },
            DrillAction::StopPrimary => Drill::StopPrimary { retarget_barman },
            DrillAction::IsolatePrimary => Drill::IsolatePrimary {
                seconds: seconds.unwrap_or_else(default_isolation),
                retarget_barman,
            },
            DrillAction::Switchover => Drill::Switchover {
                to,
                retarget_barman,
            },
            DrillAction::StopEtcd => Drill::StopEtcd {
                count: count.unwrap_or_else(default_etcd_count),
                seconds: seconds.unwrap_or_else(default_isolation),
            },
            DrillAction::StopNode => Drill::StopNode {
                node: node("stop-node")?,
            },
            DrillAction::Start => Drill::Start {
                node: node("start")?,
            },
            DrillAction::RetargetBarman => Drill::RetargetBarman,
        })
    }
}

fn default_etcd_count() -> u32 {
    1
}

impl Drill {
    /// The drill's name, as the API writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Drill::KillPrimary { .. } => "kill-primary",
            Drill::StopPrimary { .. } => "stop-primary",
            Drill::IsolatePrimary { .. } => "isolate-primary",
            Drill::Switchover { .. } => "switchover",
            Drill::StopEtcd { .. } => "stop-etcd",
            Drill::StopNode { .. } => "stop-node",
            Drill::Start { .. } => "start",
            Drill::RetargetBarman => "retarget-barman",
        }
    }
}

/// What a moment of a drill, or an event outside a plan, means: the typed signal that the CLI,
/// the designer and the tests act on, whatever its sentence says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The fault was made.
    Fault,
    /// The failover manager, or the watcher, saw the old primary go.
    Detected,
    /// Another node accepts writes.
    Promoted,
    /// The writer's first refused write after the fault.
    WritesRefused,
    /// The first write acknowledged after the fault by the node that took over.
    WritesResumed,
    /// Every standby streams again.
    Settled,
    /// The fault was undone (the isolated primary reconnected, etcd members started).
    FaultUndone,
    /// An old primary that would have come back beside a new one was fenced.
    Fenced,
    /// Fencing an old primary failed.
    FenceFailed,
    /// The switchover command ended well.
    SwitchoverFinished,
    /// The switchover command failed.
    SwitchoverFailed,
    /// The repmgr witness follows the new primary.
    WitnessFollows,
    /// The repmgr witness could not follow the new primary.
    WitnessLost,
    /// A fault drill's report is complete.
    Report,
    /// Barman backs up the primary and its check is green.
    BarmanFollows,
    /// An old primary rejoined as a standby.
    Rejoined,
    /// A step of a scenario the trainer runs began.
    ScenarioStep,
    /// The node image is being built, before any container of the deployment is made.
    ImageBuild,
    /// Anything else (moments stored before signals were typed).
    #[serde(other)]
    Other,
}

impl Signal {
    /// Whether it is something the drill did (rather than saw).
    pub fn is_action(self) -> bool {
        matches!(self, Signal::Fault | Signal::FaultUndone)
    }
}

fn other_signal() -> Signal {
    Signal::Other
}

/// The answer to a drill: what is under way, and the signal that ends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillStarted {
    /// What is under way, for people.
    pub message: String,
    /// The event signal that ends it (`report`, `barman_follows`, `rejoined`); `None` when it
    /// was over at once.
    #[serde(default)]
    pub until: Option<Signal>,
    /// The fault drill's number, whose report to read.
    #[serde(default)]
    pub number: Option<u64>,
}

/// One moment of a drill, counted from the fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    /// Milliseconds after the fault (negative before it).
    pub after_ms: i64,
    /// What it means.
    #[serde(default = "other_signal")]
    pub kind: Signal,
    /// The node it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// What happened.
    pub what: String,
}

/// What a fault drill measured. While `finished` is false it is still being measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillReport {
    /// Its number within the deployment, from 1.
    pub number: u64,
    /// The drill (`kill-primary`, `stop-primary`).
    pub action: String,
    /// The primary it hit.
    pub target: String,
    /// When the fault was made, in milliseconds since 1970.
    pub fault_ms: u64,
    /// The node that accepted writes afterwards.
    #[serde(default)]
    pub new_primary: Option<String>,
    /// From the fault to the first acknowledged write after it: the recovery time.
    #[serde(default)]
    pub rto_ms: Option<u64>,
    /// How long no write was acknowledged: from the fault, or the last write acknowledged after
    /// it, to the first acknowledged on the node that took over (0 when none was refused).
    #[serde(default)]
    pub outage_ms: Option<u64>,
    /// Writes the cluster acknowledged during the drill.
    pub writes_acknowledged: u64,
    /// Writes that failed (while there was no primary).
    pub writes_failed: u64,
    /// Acknowledged writes missing on the new primary afterwards: the data loss.
    #[serde(default)]
    pub writes_lost: Option<u64>,
    /// How far before the fault the lost writes reach: from the first lost write's
    /// acknowledgement to the fault, the data loss in time (0 when none was lost, or only
    /// writes acknowledged after the fault).
    #[serde(default)]
    pub rpo_ms: Option<u64>,
    /// Whether replication was synchronous (no acknowledged write can be lost).
    pub synchronous: bool,
    /// What happened, in order: fault, detection, promotion, writes resumed, standbys following.
    pub timeline: Vec<Moment>,
    /// Whether measuring is over.
    pub finished: bool,
    /// Why the measurement is incomplete, if it is.
    #[serde(default)]
    pub note: Option<String>,
    /// The writer's writes over time, as the drill's chart draws them (reports older than it
    /// have none).
    #[serde(default)]
    pub writes_over_time: Option<WriteSeries>,
}

/// The writer's writes in steps of `step_ms`, by the time their answer came: acknowledged and
/// refused in each step, the first step starting `from_ms` after the fault (negative: before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSeries {
    /// When the first step starts, relative to the fault.
    pub from_ms: i64,
    /// How long each step is.
    pub step_ms: u64,
    /// Acknowledged writes in each step.
    pub acknowledged: Vec<u32>,
    /// Refused (failed) writes in each step.
    pub refused: Vec<u32>,
}

impl DrillReport {
    /// The acknowledged writes lost, and why they could be: "0 (replication is synchronous)",
    /// "2 (replication is asynchronous: writes acknowledged up to 4 ms before the fault had not
    /// reached the standby)".
    #[must_use]
    pub fn loss(&self) -> Option<String> {
        let lost = self.writes_lost?;
        let replication = if self.synchronous {
            "synchronous"
        } else {
            "asynchronous"
        };
        Some(match self.rpo_ms {
            Some(rpo) if lost > 0 => format!(
                "{lost} (replication is {replication}: writes acknowledged up to {rpo} ms before the fault had not reached the standby)"
            ),
            _ => format!("{lost} (replication is {replication})"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configure;

    fn report(writes_lost: Option<u64>, rpo_ms: Option<u64>, synchronous: bool) -> DrillReport {
        DrillReport {
            number: 1,
            action: "kill-primary".into(),
            target: "kestrel".into(),
            fault_ms: 0,
            new_primary: Some("quartz".into()),
            rto_ms: Some(5000),
            outage_ms: Some(5000),
            writes_acknowledged: 40,
            writes_failed: 3,
            writes_lost,
            rpo_ms,
            synchronous,
            timeline: Vec::new(),
            finished: writes_lost.is_some(),
            note: None,
            writes_over_time: None,
        }
    }

    #[test]
    fn a_loss_says_how_far_before_the_fault_it_reaches() {
        assert_eq!(report(None, None, false).loss(), None, "not counted yet");
        assert_eq!(
            report(Some(0), Some(0), true).loss().unwrap(),
            "0 (replication is synchronous)"
        );
        assert_eq!(
            report(Some(0), Some(0), false).loss().unwrap(),
            "0 (replication is asynchronous)"
        );
        assert_eq!(
            report(Some(2), Some(4), false).loss().unwrap(),
            "2 (replication is asynchronous: writes acknowledged up to 4 ms before the fault had not reached the standby)"
        );
        // A report stored before the reach was measured reads as before.
        let old: DrillReport = serde_json::from_value(serde_json::json!({
            "number": 1, "action": "kill-primary", "target": "kestrel", "fault_ms": 0,
            "writes_acknowledged": 9, "writes_failed": 0, "writes_lost": 1,
            "synchronous": false, "timeline": [], "finished": true
        }))
        .unwrap();
        assert_eq!(old.loss().unwrap(), "1 (replication is asynchronous)");
    }

    #[test]
    fn the_read_write_string_lists_every_postgres_node_and_no_password() {
        let configured = configure(&Draft::starter()).0.unwrap();
        let c = connections(&configured.topology, "d1");
        let postgres = configured
            .topology
            .instances
            .iter()
            .filter(|i| i.kind.is_postgres())
            .count();
        assert_eq!(c.nodes.len(), postgres);
        assert_eq!(c.read_write.matches(":5432").count(), postgres);
        assert!(c.read_write.contains("target_session_attrs=read-write"));
        assert!(
            !c.read_write.contains("postgres:"),
            "no password in {}",
            c.read_write
        );
        assert_eq!(c.password, "GET /api/deployments/d1/credentials");
    }

    #[test]
    fn with_haproxy_clients_connect_through_it() {
        let mut draft = Draft::starter();
        draft.failover_manager = Some("patroni".into());
        draft.enable_haproxy = true;
        let configured = configure(&draft).0.unwrap();
        let c = connections(&configured.topology, "d1");
        let proxies: Vec<String> = configured
            .topology
            .of_kind(Kind::Haproxy)
            .map(|i| i.ip_address.unwrap().to_string())
            .collect();
        assert_eq!(proxies.len(), 2);
        for proxy in &proxies {
            assert!(
                c.read_write.contains(&format!("{proxy}:5432")),
                "{}",
                c.read_write
            );
            assert!(
                c.read_only.contains(&format!("{proxy}:5433")),
                "{}",
                c.read_only
            );
        }
        assert_eq!(c.read_write.matches(':').count(), 2 + 1, "{}", c.read_write);
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for text in [
            "queued",
            "deploying",
            "running",
            "failed",
            "destroying",
            "destroyed",
        ] {
            assert_eq!(DeploymentState::parse(text).unwrap().as_str(), text);
        }
        assert_eq!(DeploymentState::parse("done"), None);
    }

    #[test]
    fn drills_are_tagged_by_action() {
        let drill: Drill = serde_json::from_str(r#"{"action":"kill-primary"}"#).unwrap();
        assert_eq!(
            drill,
            Drill::KillPrimary {
                retarget_barman: false
            }
        );
        let drill: Drill =
            serde_json::from_str(r#"{"action":"stop-primary","retarget_barman":true}"#).unwrap();
        assert_eq!(drill.name(), "stop-primary");
        let drill: Drill = serde_json::from_str(r#"{"action":"retarget-barman"}"#).unwrap();
        assert_eq!(drill, Drill::RetargetBarman);
        let drill: Drill = serde_json::from_str(r#"{"action":"start","node":"kestrel"}"#).unwrap();
        assert_eq!(
            drill,
            Drill::Start {
                node: "kestrel".into()
            }
        );
    }
}
