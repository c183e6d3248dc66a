//! The deployment plan: from a design, what each node needs (its files) and what to do, in
//! order (phases whose steps may run in parallel): commands as argument vectors, services to
//! start, and readiness as data. Pure: executors carry it out.
//!
//! Passwords never appear in a plan. Files and commands refer to them as `${secret:NAME}`,
//! which only an executor replaces, with values it keeps to itself.

use crate::diag::{Code, Diagnostic};
use crate::spec::{Design, FailoverManager, PlatformSpec};
use crate::topology::{Instance, Kind, Role, Topology};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::fmt::Write as _;

mod patroni;
pub use patroni::{
    ETCD_CLIENT_PORT, HAPROXY_FRONTENDS, HAPROXY_READ_ONLY_PORT, HAPROXY_STATS_PORT, PATRONI_PORT,
};

/// Where Postgres keeps its data on every node.
pub const PGDATA: &str = "/var/lib/postgresql/data";
/// The directory of the files the plan writes for Postgres.
pub const CONFIG_DIR: &str = "/etc/m1studio";
/// The secrets a plan refers to.
pub const SECRETS: &[&str] = &[
    "repmgr",
    "barman",
    "streaming_barman",
    "postgres",
    "replicator",
    "patroni",
    SSH_KEY,
    SSH_KEY_PUB,
];
/// The secret that holds the cluster's private SSH key (OpenSSH format), for repmgr's switchover.
pub const SSH_KEY: &str = "ssh_key";
/// The secret that holds its public half.
pub const SSH_KEY_PUB: &str = "ssh_key_pub";
/// Patroni's configuration on every Postgres node of a Patroni cluster.
pub const PATRONI_CONFIG: &str = "/etc/patroni/m1studio.yml";

/// How quickly the failover manager reacts, and so how long a failover takes. The same names
/// serve repmgr and Patroni; each sets that manager's timings together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// For demonstrations and workshops: a failed primary is replaced in seconds, and a
    /// network hiccup of a few seconds is enough to cause a failover.
    #[serde(alias = "demo")]
    Fast,
    /// Between the two: a failover after about half a minute.
    Normal,
    /// The managers' own defaults: about a minute before a promotion, and the fewest needless
    /// failovers.
    #[default]
    #[serde(alias = "production")]
    Safe,
}

impl Profile {
    /// Every profile, fastest first.
    pub const ALL: [Profile; 3] = [Profile::Fast, Profile::Normal, Profile::Safe];

    /// The profile a design gets when none is asked for, wherever it is planned, previewed or
    /// deployed: `fast` for throwaway containers, and `safe` for existing hosts and cloud
    /// instances, where a network hiccup must not cost a failover and durability shortcuts are
    /// out of place. (`Profile::default()`, `safe`, is the same rule where no platform is known.)
    pub fn for_platform(platform: crate::spec::Platform) -> Profile {
        match platform {
            crate::spec::Platform::Docker => Profile::Fast,
            crate::spec::Platform::Bare | crate::spec::Platform::Aws => Profile::Safe,
        }
    }

    /// The profile's name, as options, links and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Normal => "normal",
            Profile::Safe => "safe",
        }
    }

    /// The profile named `text`, including the older names `demo` and `production`.
    pub fn parse(text: &str) -> Option<Profile> {
        match text {
            "fast" | "demo" => Some(Profile::Fast),
            "normal" => Some(Profile::Normal),
            "safe" | "production" => Some(Profile::Safe),
            _ => None,
        }
    }

    /// repmgr's `(reconnect_attempts, reconnect_interval, monitor_interval_secs)`.
    pub fn repmgr_timing(self) -> (u32, u32, u32) {
        match self {
            Profile::Fast => (1, 1, 1),
            Profile::Normal => (3, 5, 2),
            Profile::Safe => (6, 10, 2),
        }
    }

    /// Patroni's `(ttl, loop_wait, retry_timeout)`. Each keeps loop_wait + 2 × retry_timeout ≤
    /// ttl, and Patroni's minimums (ttl ≥ 20, loop_wait ≥ 1, retry_timeout ≥ 3).
    pub fn patroni_timing(self) -> (u32, u32, u32) {
        match self {
            Profile::Fast => (20, 2, 5),
            Profile::Normal => (30, 10, 10),
            Profile::Safe => (60, 10, 20),
        }
    }

    /// libpq's `connect_timeout` in repmgr's conninfo, in seconds: how long one check of a dead
    /// node takes. libpq treats anything under 2 as 2.
    pub fn connect_timeout(self) -> u32 {
        2
    }

    /// The longest time from a primary's failure to a promotion with `manager`, in seconds.
    /// For Patroni the leader key must expire first (ttl), then a loop notices it.
    pub fn worst_case_failover_secs_for(self, manager: FailoverManager) -> u32 {
        match manager {
            FailoverManager::Patroni => {
                let (ttl, loop_wait, _) = self.patroni_timing();
                ttl + loop_wait
            }
            _ => {
                let (attempts, interval, monitor) = self.repmgr_timing();
                let timeout = self.connect_timeout();
                monitor + timeout + attempts * (interval + timeout) + 2 * timeout
            }
        }
    }

    /// The longest time from a primary's failure to a promotion with repmgr, in seconds.
    pub fn worst_case_failover_secs(self) -> u32 {
        self.worst_case_failover_secs_for(FailoverManager::Repmgr)
    }

    /// What the profile trades, for `manager`, in a sentence.
    pub fn explain(self, manager: FailoverManager) -> String {
        let worst = self.worst_case_failover_secs_for(manager);
        let timing = match manager {
            FailoverManager::Patroni => {
                let (ttl, loop_wait, retry) = self.patroni_timing();
                format!("ttl {ttl} s, loop_wait {loop_wait} s, retry_timeout {retry} s")
            }
            _ => {
                let (attempts, interval, monitor) = self.repmgr_timing();
                format!(
                    "{attempts} reconnect attempt{} {interval} s apart, checked every {monitor} s",
                    if attempts == 1 { "" } else { "s" }
                )
            }
        };
        let trade = match self {
            Profile::Fast => {
                "shortest outage; a pause of a few seconds (a busy host, a network blip) can also trigger a failover"
            }
            Profile::Normal => "a failover within about half a minute; short pauses are ridden out",
            Profile::Safe => {
                "the managers' defaults: the longest outage, and the fewest needless failovers"
            }
        };
        format!(
            "{}: up to {worst} s to a new primary ({timing}); {trade}",
            self.as_str()
        )
    }
}

/// What a deployment is asked for besides the design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanOptions {
    /// The failover timing.
    pub profile: Profile,
    /// Whether `EDB_SUBSCRIPTION_TOKEN` is set where the deployment runs.
    pub edb_token: bool,
}

/// A file to write on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    /// Its absolute path.
    pub path: String,
    /// Its owner (user and group of the same name).
    pub owner: String,
    /// Its permission bits.
    pub mode: u32,
    /// Its text, with `${secret:NAME}` where a password goes.
    pub content: String,
}

/// What the plan waits for before going on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Readiness {
    /// Postgres accepts connections on the node.
    PostgresReady,
    /// A query, run on the node as postgres, returns `expect` (as text).
    Query {
        /// The SQL.
        sql: String,
        /// The expected single value.
        expect: String,
    },
    /// A command exits 0.
    CommandSucceeds {
        /// The command.
        argv: Vec<String>,
        /// The user it runs as.
        user: String,
    },
}

/// One thing to do on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Write the node's files.
    WriteFiles,
    /// Run a command, as an argument vector; never through a shell.
    Run {
        /// The program and its arguments.
        argv: Vec<String>,
        /// The user it runs as.
        user: String,
        /// What to write to its standard input (where secrets go, never into `argv`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stdin: Option<String>,
    },
    /// Run a command whose failure is harmless (stopping what may not run), as an argument
    /// vector; its exit code does not stop the plan.
    Attempt {
        /// The program and its arguments.
        argv: Vec<String>,
        /// The user it runs as.
        user: String,
    },
    /// Start a supervised service.
    Start {
        /// The service's name.
        service: String,
    },
    /// Wait until the step titled `title` of node `node`, in another lane of the same phase,
    /// has finished: a lane that needs another node ready first begins with it. It costs the
    /// nodes nothing, where polling from the node would start a client every time.
    After {
        /// The other step's node.
        node: String,
        /// The other step's title.
        title: String,
    },
    /// Wait until something holds, up to `timeout_secs`.
    Wait {
        /// What must hold.
        until: Readiness,
        /// How long to wait at most.
        timeout_secs: u32,
    },
}

/// A step: an action on a node, with a title people understand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The node's name.
    pub node: String,
    /// What the step does.
    pub title: String,
    /// How.
    pub action: Action,
    /// The lane it runs in, beside the node's own, where a node does two things at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<String>,
}

impl Step {
    /// The lane the step runs in: its node's name, or the node's name and its own lane.
    pub fn lane_key(&self) -> String {
        match &self.lane {
            Some(lane) => format!("{} ({lane})", self.node),
            None => self.node.clone(),
        }
    }
}

/// A phase: steps that may run at the same time. Phases run one after the other; within a
/// phase, the steps of one lane (a node, or one of a node's named lanes) run in order, and
/// lanes run at the same time. A lane that needs another node to be ready first begins by
/// waiting for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// What the phase achieves.
    pub title: String,
    /// Its steps.
    pub steps: Vec<Step>,
}

/// The files of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFiles {
    /// The node's name.
    pub node: String,
    /// Its files.
    pub files: Vec<File>,
}

/// Everything a deployment does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The cluster's name.
    pub cluster: String,
    /// The files of each node, node 1 first.
    pub nodes: Vec<NodeFiles>,
    /// What to do, in order.
    pub phases: Vec<Phase>,
}

impl Plan {
    /// `nodes` in the order the plan needs them: grouped by the first phase with a step on
    /// them other than writing their files, earliest first, and within a phase the nodes whose
    /// lane begins by waiting for another node's step after the others; nodes it never needs
    /// come last. Containers can start wave by wave, so that the first ones get the machine to
    /// themselves.
    pub fn start_order<'a>(&self, nodes: impl IntoIterator<Item = &'a str>) -> Vec<Vec<String>> {
        let first_need = |node: &str| {
            self.phases.iter().enumerate().find_map(|(at, phase)| {
                let first = phase
                    .steps
                    .iter()
                    .find(|s| s.node == node && !matches!(s.action, Action::WriteFiles))?;
                Some((at, matches!(first.action, Action::After { .. })))
            })
        };
        let mut waves: Vec<((usize, bool), Vec<String>)> = Vec::new();
        for node in nodes {
            let at = first_need(node).unwrap_or((usize::MAX, true));
            match waves.iter_mut().find(|(w, _)| *w == at) {
                Some((_, wave)) => wave.push(node.to_string()),
                None => waves.push((at, vec![node.to_string()])),
            }
        }
        waves.sort_by_key(|(at, _)| *at);
        waves.into_iter().map(|(_, wave)| wave).collect()
    }

    /// The files of node `name`.
    pub fn files_of(&self, name: &str) -> &[File] {
        self.nodes
            .iter()
            .find(|n| n.node == name)
            .map_or(&[], |n| n.files.as_slice())
    }

    /// The plan as text, for people: phases, steps and commands, without any secret.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, phase) in self.phases.iter().enumerate() {
            let _ = writeln!(out, "{}. {}", i + 1, phase.title);
            for step in &phase.steps {
                let how = match &step.action {
                    Action::WriteFiles => format!("{} files", self.files_of(&step.node).len()),
                    Action::Run {
                        argv,
                        user,
                        stdin: None,
                    } => format!("as {user}: {}", argv.join(" ")),
                    Action::Run {
                        argv,
                        user,
                        stdin: Some(input),
                    } => {
                        format!("as {user}: {} <<< {input}", argv.join(" "))
                    }
                    Action::Attempt { argv, user } => {
                        format!("as {user}, may fail: {}", argv.join(" "))
                    }
                    Action::Start { service } => format!("start {service}"),
                    Action::After { node, title } => format!("after [{node}] {title}"),
                    Action::Wait {
                        until,
                        timeout_secs,
                    } => format!("wait up to {timeout_secs} s for {until:?}"),
                };
                let _ = writeln!(out, "   [{}] {}: {how}", step.lane_key(), step.title);
            }
        }
        out
    }
}

fn secret(name: &str) -> String {
    format!("${{secret:{name}}}")
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

fn step(node: &str, title: &str, action: Action) -> Step {
    Step {
        node: node.to_string(),
        title: title.to_string(),
        action,
        lane: None,
    }
}

/// Starts supervisord's program `service` on `node`.
fn start(node: &str, service: &str) -> Step {
    step(
        node,
        &format!("start {service}"),
        Action::Start {
            service: service.into(),
        },
    )
}

/// `steps` in their node's lane named `lane`.
fn in_lane(lane: &str, steps: Vec<Step>) -> Vec<Step> {
    steps
        .into_iter()
        .map(|s| Step {
            lane: Some(lane.to_string()),
            ..s
        })
        .collect()
}

fn run(node: &str, title: &str, user: &str, parts: &[&str]) -> Step {
    step(
        node,
        title,
        Action::Run {
            argv: argv(parts),
            user: user.to_string(),
            stdin: None,
        },
    )
}

fn wait(node: &str, title: &str, until: Readiness, timeout_secs: u32) -> Step {
    step(
        node,
        title,
        Action::Wait {
            until,
            timeout_secs,
        },
    )
}

fn file(path: &str, owner: &str, mode: u32, content: String) -> File {
    File {
        path: path.to_string(),
        owner: owner.to_string(),
        mode,
        content,
    }
}

struct Context<'a> {
    design: &'a Design,
    topology: &'a Topology,
    options: PlanOptions,
    bindir: String,
    network: String,
}

impl Context<'_> {
    fn primary(&self) -> &Instance {
        &self.topology.instances[0]
    }

    fn replica(&self) -> &Instance {
        &self.topology.instances[1]
    }

    /// The settings of a fast-profile (workshop) cluster where they are not Postgres's
    /// defaults, for a cluster made anew and thrown away, never recovered:
    /// - `recovery_init_sync_method = syncfs` (Postgres 14 on): a standby's first start from its
    ///   copy, like a start after a crash, first flushes the whole data directory; one
    ///   `syncfs()` of its file system is faster than opening and flushing its 1,300 files one
    ///   by one, and also flushes whatever else on that file system is unwritten;
    /// - `wal_init_zero = off`: a new WAL file is made by writing its last byte rather than all
    ///   its 16 MB of zeros. Every standby makes one each time the primary switches files (a
    ///   base backup does, and so does Barman's archiving): 600 MB of zeros at each deployment
    ///   with 8 cascaded replicas.
    ///
    /// Each comes with what it does, for the file that shows it.
    fn fast_settings(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        if self.options.profile != Profile::Fast {
            return Vec::new();
        }
        let mut settings = Vec::new();
        if self.design.version() >= 14 {
            settings.push((
                "recovery_init_sync_method",
                "syncfs",
                "a start from a fresh copy or after a crash flushes the data directory's file system at once",
            ));
        }
        settings.push((
            "wal_init_zero",
            "off",
            "a new WAL file is not filled with zeros first",
        ));
        settings
    }

    fn postgresql_conf(&self, instance: &Instance) -> String {
        format!(
            "# Written by m1studio for {name} (node {node}) of cluster {cluster}.\n\
             listen_addresses = '*'\n\
             port = 5432\n\
             hba_file = '{CONFIG_DIR}/pg_hba.conf'\n\
             unix_socket_directories = '/var/run/postgresql'\n\
             password_encryption = 'scram-sha-256'\n\
             max_connections = 100\n\
             shared_buffers = '128MB'\n\
             wal_level = 'replica'\n\
             wal_log_hints = on\n\
             max_wal_senders = 16\n\
             max_replication_slots = 16\n\
             wal_keep_size = '256MB'\n\
             hot_standby = on\n\
             full_page_writes = on\n\
             shared_preload_libraries = 'repmgr'\n\
             cluster_name = '{cluster}-{name}'\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n{fast}{synchronous}",
            name = instance.name,
            fast = match self.fast_settings().as_slice() {
                [] => String::new(),
                settings => settings.iter().fold(
                    "# A fast-profile (workshop) cluster, made anew and never recovered.\n"
                        .to_string(),
                    |text, (name, value, what)| text + &format!("# {what}\n{name} = {value}\n"),
                ),
            },
            node = instance.node,
            cluster = self.design.cluster_name(),
            // Every Postgres node carries it, for whenever it is the primary (pg_rewind copies
            // postgresql.auto.conf, never this file); the witness never (it is a primary of
            // its own, with no standby).
            synchronous = if self.design.synchronous() && instance.kind.is_postgres() {
                format!(
                    "# Synchronous: a commit waits until a standby of this primary has it.\n\
                     synchronous_standby_names = '{}'\n",
                    crate::config::synchronous_standby_names(self.topology)
                )
            } else {
                String::new()
            },
        )
    }

    fn pg_hba(&self) -> String {
        let net = &self.network;
        format!(
            "# Written by m1studio: local peers, and scram-sha-256 from the cluster's network only.\n\
             local   all          postgres                     peer\n\
             local   all          all                          peer\n\
             host    repmgr       repmgr            {net}  scram-sha-256\n\
             host    replication  repmgr            {net}  scram-sha-256\n\
             host    postgres     barman            {net}  scram-sha-256\n\
             host    replication  streaming_barman  {net}  scram-sha-256\n\
             host    all          all               {net}  scram-sha-256\n"
        )
    }

    fn repmgr_conf(&self, instance: &Instance) -> String {
        let (attempts, interval, monitor) = self.options.profile.repmgr_timing();
        let priority = match instance.kind {
            Kind::Replica | Kind::Primary => 100,
            _ => 0,
        };
        format!(
            "# Written by m1studio for {name} (node {node}).\n\
             node_id={node}\n\
             node_name='{name}'\n\
             conninfo='host={name} user=repmgr dbname=repmgr connect_timeout={timeout}'\n\
             data_directory='{PGDATA}'\n\
             pg_bindir='{bindir}'\n\
             config_directory='{CONFIG_DIR}'\n\
             location='{location}'\n\
             priority={priority}\n\
             use_replication_slots=yes\n\
             failover=automatic\n\
             promote_command='/usr/bin/repmgr standby promote -f /etc/repmgr.conf --log-to-file'\n\
             follow_command='/usr/bin/repmgr standby follow -f /etc/repmgr.conf --log-to-file --upstream-node-id=%n'\n\
             reconnect_attempts={attempts}\n\
             reconnect_interval={interval}\n\
             monitor_interval_secs={monitor}\n\
             connection_check_type='ping'\n\
             service_start_command='{SERVICE_COMMAND} start postgres'\n\
             service_stop_command='{SERVICE_COMMAND} stop postgres'\n\
             service_restart_command='{SERVICE_COMMAND} restart postgres'\n\
             service_reload_command='{SERVICE_COMMAND} hup postgres'\n\
             log_file='/var/log/postgresql/repmgr.log'\n\
             ssh_options='-q -o ConnectTimeout=5 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=auto -o ControlPath=/tmp/m1studio-ssh-%C -o ControlPersist=30 -o ServerAliveInterval=2 -o ServerAliveCountMax=2'\n{clone_options}",
            clone_options = if self.options.profile == Profile::Fast {
                // A fast-profile (workshop) cluster is made anew, never recovered: skip the final fsync.
                "pg_basebackup_options='--no-sync'\n"
            } else {
                ""
            },
            name = instance.name,
            node = instance.node,
            bindir = self.bindir,
            location = instance.location,
            timeout = self.options.profile.connect_timeout(),
        )
    }

    fn postgres_service(&self) -> String {
        format!(
            "[program:postgres]\n\
             command={bindir}/postgres -D {PGDATA} -c config_file={CONFIG_DIR}/postgresql.conf\n\
             user=postgres\n\
             environment=HOME=\"/var/lib/postgresql\",PGPASSFILE=\"/var/lib/postgresql/.pgpass\"\n\
             autostart=false\n\
             autorestart=false\n\
             startsecs=0\n\
             stopsignal=INT\n\
             stopwaitsecs=30\n\
             redirect_stderr=true\n\
             stdout_logfile=/var/log/postgresql/postgres.log\n",
            bindir = self.bindir
        )
    }

    fn repmgrd_service(&self) -> String {
        "[program:repmgrd]\n\
         command=/usr/bin/repmgrd -f /etc/repmgr.conf --daemonize=false\n\
         user=postgres\n\
         environment=HOME=\"/var/lib/postgresql\",PGPASSFILE=\"/var/lib/postgresql/.pgpass\"\n\
         autostart=false\n\
         autorestart=true\n\
         startsecs=0\n\
         redirect_stderr=true\n\
         stdout_logfile=/var/log/postgresql/repmgrd.log\n"
            .to_string()
    }

    /// Barman's server file: the server keeps the first primary's name (its catalogue of
    /// backups and WAL), and connects to `source`, the primary of the moment.
    fn barman_conf(&self, source: &str) -> String {
        let primary = &self.primary().name;
        format!(
            "; Written by m1studio: Barman backs up {source}, the primary of cluster {cluster}.\n\
             [{primary}]\n\
             description = \"{source}, primary of {cluster}\"\n\
             conninfo = host={source} user=barman dbname=postgres connect_timeout=5\n\
             streaming_conninfo = host={source} user=streaming_barman dbname=postgres connect_timeout=5\n\
             backup_method = postgres\n\
             ; A backup starts at once rather than after a spread checkpoint.\n\
             immediate_checkpoint = true\n\
             streaming_archiver = on\n\
             slot_name = {BARMAN_SLOT}\n\
             create_slot = auto\n\
             path_prefix = {bindir}\n\
             retention_policy = REDUNDANCY 3\n",
            cluster = self.design.cluster_name(),
            bindir = self.bindir,
        )
    }

    /// barman cron, every 15 s then every minute, restarted by supervisord if it ever stops.
    fn barman_cron_service(&self) -> String {
        barman_program(
            "barman-cron",
            "/usr/local/bin/m1studio-barman-cron",
            true,
            "cron",
        )
    }

    /// Streams WAL at once when started: `barman receive-wal` for the server, once. barman
    /// cron starts it too, but only after three other Barman processes of its own, and restarts
    /// it within 15 s whenever it stops (its primary stopped, or Barman was pointed at another).
    fn barman_receive_wal_service(&self) -> String {
        // Barman's server is named after the designed primary, as in `barman_conf`.
        let command = format!("/usr/bin/barman -q receive-wal {}", self.primary().name);
        barman_program("barman-receive-wal", &command, false, "receive-wal")
    }

    fn files(&self, instance: &Instance) -> Vec<File> {
        let mut files = if self.design.failover() == FailoverManager::Patroni {
            self.patroni_files(instance)
        } else {
            self.repmgr_files(instance)
        };
        if !files.is_empty() {
            files.push(file(SERVICE_COMMAND, "root", 0o755, SERVICE_SCRIPT.into()));
        }
        files
    }

    fn repmgr_files(&self, instance: &Instance) -> Vec<File> {
        let mut files = Vec::new();
        let pgpass = |user: &str| {
            format!(
                "# host:port:database:user:password\n*:*:*:{user}:{}\n*:*:replication:{user}:{}\n",
                secret(user),
                secret(user)
            )
        };
        if instance.runs_postgres() {
            files.push(file(
                &format!("{CONFIG_DIR}/postgresql.conf"),
                "postgres",
                0o644,
                self.postgresql_conf(instance),
            ));
            files.push(file(
                &format!("{CONFIG_DIR}/pg_hba.conf"),
                "postgres",
                0o640,
                self.pg_hba(),
            ));
            files.push(file(
                "/etc/repmgr.conf",
                "postgres",
                0o644,
                self.repmgr_conf(instance),
            ));
            files.push(file(
                "/var/lib/postgresql/.pgpass",
                "postgres",
                0o600,
                pgpass("repmgr"),
            ));
            files.push(file(
                "/etc/supervisor/conf.d/postgres.conf",
                "root",
                0o644,
                self.postgres_service(),
            ));
            files.push(file(
                "/etc/supervisor/conf.d/repmgrd.conf",
                "root",
                0o644,
                self.repmgrd_service(),
            ));
            files.extend(self.ssh_files());
        }
        if instance.kind == Kind::Barman {
            files.extend(self.barman_files());
        }
        files
    }

    /// Whether the nodes are existing hosts, reached over SSH: their own sshd serves postgres
    /// too, where a container runs one of the plan's.
    fn bare(&self) -> bool {
        matches!(self.design.platform(), PlatformSpec::Bare)
    }

    /// The SSH server and the cluster's key pair for postgres: `repmgr standby switchover`
    /// stops the old primary and rejoins it over SSH. An existing host keeps its own SSH server.
    fn ssh_files(&self) -> Vec<File> {
        let mut files = vec![
            file(
                "/var/lib/postgresql/.ssh/id_ed25519",
                "postgres",
                0o600,
                secret(SSH_KEY),
            ),
            file(
                "/var/lib/postgresql/.ssh/authorized_keys",
                "postgres",
                0o600,
                format!("{}\n", secret(SSH_KEY_PUB)),
            ),
        ];
        if self.bare() {
            return files;
        }
        files.extend([
            file(
                "/usr/local/bin/m1studio-sshd",
                "root",
                0o755,
                "#!/bin/sh\n\
                 # Runs sshd for postgres only, with a host key made in this container on its first start.\n\
                 set -e\n\
                 install -d -m 0755 /run/sshd\n\
                 install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/.ssh\n\
                 [ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key\n\
                 exec /usr/sbin/sshd -D -e -o HostKey=/etc/ssh/ssh_host_ed25519_key -o AllowUsers=postgres \\\n\
                 \x20   -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o PermitRootLogin=no\n"
                    .to_string(),
            ),
            file(
                "/etc/supervisor/conf.d/sshd.conf",
                "root",
                0o644,
                "[program:sshd]\n\
                 command=/usr/local/bin/m1studio-sshd\n\
                 autostart=false\n\
                 autorestart=true\n\
                 startsecs=0\n\
                 redirect_stderr=true\n\
                 stdout_logfile=/var/log/sshd.log\n"
                    .to_string(),
            ),
        ]);
        files
    }

    /// Barman's files: its server file, its passwords and its cron service.
    fn barman_files(&self) -> Vec<File> {
        let pass = format!(
            "# host:port:database:user:password\n*:*:*:barman:{}\n*:*:*:streaming_barman:{}\n",
            secret("barman"),
            secret("streaming_barman")
        );
        vec![
            file(
                &barman_server_file(self.topology),
                "barman",
                0o644,
                self.barman_conf(&self.primary().name),
            ),
            file("/var/lib/barman/.pgpass", "barman", 0o600, pass),
            file(
                "/usr/local/bin/m1studio-barman-cron",
                "root",
                0o755,
                BARMAN_CRON.to_string(),
            ),
            file(
                "/etc/supervisor/conf.d/barman-cron.conf",
                "root",
                0o644,
                self.barman_cron_service(),
            ),
            file(
                "/etc/supervisor/conf.d/barman-receive-wal.conf",
                "root",
                0o644,
                self.barman_receive_wal_service(),
            ),
        ]
    }

    /// SQL run by psql as postgres, given on standard input so that passwords stay out of argv.
    fn sql(&self, node: &str, title: &str, sql: &str) -> Step {
        step(
            node,
            title,
            Action::Run {
                argv: argv(&[
                    "psql",
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    "postgres",
                ]),
                user: "postgres".into(),
                stdin: Some(format!("{}{sql};\n", self.set_up_commits())),
            },
        )
    }

    /// What the set-up's SQL starts with. A synchronous repmgr primary waits for a standby
    /// from its first start, and has none yet while it is set up: the set-up's own commits
    /// (roles, the repmgr database) are only local. Patroni names a synchronous standby only
    /// once there is one.
    fn set_up_commits(&self) -> &'static str {
        if self.design.synchronous() && self.design.failover() != FailoverManager::Patroni {
            "SET synchronous_commit = local;\n"
        } else {
            ""
        }
    }

    /// A new, empty Postgres on `node`, started and accepting connections.
    fn new_postgres(&self, node: &str, title: &str, initdb_options: &[&str]) -> Vec<Step> {
        let initdb = format!("{}/initdb", self.bindir);
        let mut initdb_argv = vec![
            initdb.as_str(),
            "-D",
            PGDATA,
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
        ];
        initdb_argv.extend_from_slice(initdb_options);
        if self.options.profile == Profile::Fast {
            // A fast-profile (workshop) cluster is made anew, never recovered: skip the final fsync.
            initdb_argv.push("--no-sync");
        }
        vec![
            self.directories(node),
            run(node, title, "postgres", &initdb_argv),
            self.start_postgres(node),
            self.postgres_ready(node),
        ]
    }

    fn start_postgres(&self, node: &str) -> Step {
        step(
            node,
            "start Postgres",
            Action::Start {
                service: "postgres".into(),
            },
        )
    }

    fn postgres_ready(&self, node: &str) -> Step {
        wait(
            node,
            "Postgres accepts connections",
            Readiness::PostgresReady,
            60,
        )
    }

    /// The directories Postgres needs, which a container has no init system to make.
    fn directories(&self, node: &str) -> Step {
        run(
            node,
            "create Postgres's directories",
            "root",
            &[
                "install",
                "-d",
                "-o",
                "postgres",
                "-g",
                "postgres",
                "-m",
                "0700",
                PGDATA,
                "-m",
                "2775",
                "/var/run/postgresql",
                "/var/log/postgresql",
            ],
        )
    }

    /// PGDATA with the mode Postgres demands, for a node whose data directory no initdb or
    /// repmgr clone makes (`install -d` gives every directory it makes the last mode named).
    fn data_directory(&self, node: &str) -> Step {
        run(
            node,
            "make the data directory private",
            "root",
            &[
                "install", "-d", "-o", "postgres", "-g", "postgres", "-m", "0700", PGDATA,
            ],
        )
    }

    fn write_files_phase(&self) -> Phase {
        Phase {
            title: "Write every node's files".into(),
            steps: self
                .topology
                .instances
                .iter()
                .filter(|i| !self.files(i).is_empty())
                .map(|i| step(&i.name, "write configuration files", Action::WriteFiles))
                .collect(),
        }
    }

    /// The roles Barman connects as, made on the primary, with the superuser's password for
    /// the connection strings users are given.
    fn barman_roles(&self) -> Vec<String> {
        let mut statements: Vec<String> =
            [("barman", "SUPERUSER"), ("streaming_barman", "REPLICATION")]
                .iter()
                .map(|(user, attributes)| {
                    format!(
                        "CREATE ROLE {user} LOGIN {attributes} PASSWORD '{}'",
                        secret(user)
                    )
                })
                .collect();
        statements.push(format!(
            "ALTER ROLE postgres PASSWORD '{}'",
            secret("postgres")
        ));
        statements
    }

    fn phases(&self) -> Vec<Phase> {
        if self.design.failover() == FailoverManager::Patroni {
            return self.patroni_phases();
        }
        let primary = self.primary().name.clone();
        let replica = self.replica().name.clone();
        let mut phases = vec![self.write_files_phase()];

        let mut init = self.new_postgres(&primary, "initialise the primary", &["--data-checksums"]);
        // One psql for every role and the repmgr database: each statement commits on its own.
        let mut statements = vec![format!(
            "CREATE ROLE repmgr LOGIN SUPERUSER REPLICATION PASSWORD '{}'",
            secret("repmgr")
        )];
        if self.design.synchronous() {
            // repmgr's metadata (registrations, promotions) never waits for a standby:
            // registering the primary comes before any standby.
            statements.push("ALTER ROLE repmgr SET synchronous_commit = local".into());
        }
        statements.extend(self.barman_roles());
        if self.topology.of_kind(Kind::Barman).next().is_some() {
            // Barman's slot, reserving WAL from now on: receive-wal starts streaming into it
            // once barman cron starts it.
            statements.push(format!(
                "SELECT pg_create_physical_replication_slot('{BARMAN_SLOT}', true)"
            ));
        }
        statements.push("CREATE DATABASE repmgr OWNER repmgr".into());
        init.push(self.sql(
            &primary,
            "create the roles and the repmgr database",
            &statements.join(";\n"),
        ));
        init.push(run(
            &primary,
            "register the primary with repmgr",
            "postgres",
            &["repmgr", "-f", "/etc/repmgr.conf", "primary", "register"],
        ));
        // The witness's own Postgres needs nothing else: it is made beside the primary, and
        // registered once the primary is.
        let witness = self
            .topology
            .of_kind(Kind::Barman)
            .find(|b| b.has(Role::Witness))
            .map(|b| b.name.clone());
        let mut init_title = format!("Initialise the primary, {primary}");
        if let Some(w) = &witness {
            init.extend(self.new_postgres(w, "initialise the witness", &[]));
            init.push(self.sql(
                w,
                "create the repmgr role and database",
                &format!(
                    "CREATE ROLE repmgr LOGIN SUPERUSER PASSWORD '{}';\nCREATE DATABASE repmgr OWNER repmgr",
                    secret("repmgr")
                ),
            ));
            init_title.push_str(&format!(", and the witness's Postgres on {w}"));
        }
        phases.push(Phase {
            title: init_title,
            steps: init,
        });

        // The rest runs at once, lane by lane: each node starts sshd and repmgrd as soon as it
        // is ready, the cascaded replicas clone as soon as the replica is registered, and
        // Barman streams and backs up beside them all.
        let clone = |instance: &Instance, upstream: &str, upstream_id: u32| -> Vec<Step> {
            let node = instance.name.as_str();
            let id = upstream_id.to_string();
            let mut steps = Vec::new();
            if upstream != primary {
                // A clone from a standby starts once the standby's own registration has
                // reached it: repmgr's clone reads the upstream's record there.
                steps.push(step(
                    node,
                    &format!("{upstream} is registered"),
                    Action::After {
                        node: upstream.to_string(),
                        title: REGISTRATION_REACHED.into(),
                    },
                ));
            }
            steps.push(self.directories(node));
            steps.extend([
                run(
                    node,
                    &format!("clone from {upstream}"),
                    "postgres",
                    &[
                        "repmgr",
                        "-f",
                        "/etc/repmgr.conf",
                        "-h",
                        upstream,
                        "-U",
                        "repmgr",
                        "-d",
                        "repmgr",
                        "standby",
                        "clone",
                        "--fast-checkpoint",
                        "--upstream-node-id",
                        &id,
                    ],
                ),
                self.start_postgres(node),
                self.postgres_ready(node),
                // As the upstream sees it, where `repmgr standby register` looks: a standby
                // still catching up (the upstream's walsender in state `catchup`, as while
                // Barman's backup writes WAL) is refused, though its own receiver streams.
                rows_exist(
                    node,
                    &format!("streaming from {upstream}"),
                    "postgres",
                    &["-h", upstream, "-U", "repmgr", "-d", "repmgr"],
                    &format!(
                        "pg_stat_replication WHERE application_name = '{node}' AND state = 'streaming'"
                    ),
                ),
                run(
                    node,
                    "register the standby with repmgr",
                    "postgres",
                    &[
                        "repmgr",
                        "-f",
                        "/etc/repmgr.conf",
                        "standby",
                        "register",
                        "--upstream-node-id",
                        &id,
                    ],
                ),
                // repmgrd needs the node's record in its own copy of the metadata: it comes
                // from the primary through the upstream. Polled here every 200 ms, where
                // `--wait-sync` checks once a second.
                rows_exist(
                    node,
                    REGISTRATION_REACHED,
                    "postgres",
                    &["-d", "repmgr"],
                    &format!("repmgr.nodes WHERE node_id = {}", instance.node),
                ),
            ]);
            steps
        };
        // One call for both sshd and repmgrd: each call costs a Python start on a busy node.
        // An existing host's own sshd already runs.
        let (services_title, services_argv): (&str, &[&str]) = if self.bare() {
            ("start repmgrd", &[SERVICE_COMMAND, "start", "repmgrd"])
        } else {
            (
                "start sshd and repmgrd",
                &[SERVICE_COMMAND, "start", "sshd", "repmgrd"],
            )
        };
        let services = |node: &str| run(node, services_title, "root", services_argv);
        let mut steps = vec![services(&primary)];
        steps.extend(clone(self.replica(), &primary, 1));
        steps.push(services(&replica));
        let cascades: Vec<&Instance> = self.topology.of_kind(Kind::CascadedReplica).collect();
        for cascade in &cascades {
            steps.extend(clone(cascade, &replica, 2));
            steps.push(services(&cascade.name));
        }
        let mut title = format!("Clone the replica, {replica}, from the primary");
        if !cascades.is_empty() {
            title.push_str(&format!(
                ", and the cascaded replicas from {replica} once it is registered, all at once"
            ));
        }
        if let Some(barman) = self.topology.of_kind(Kind::Barman).next() {
            let b = barman.name.as_str();
            title.push_str(&format!("; start Barman on {b} and back up {primary}"));
            steps.extend(barman_stream_and_back_up(b, &primary));
            if let Some(w) = &witness {
                title.push_str(&format!("; register the witness on {w}"));
                steps.extend(in_lane(
                    "witness",
                    vec![
                        run(
                            w,
                            "register the witness",
                            "postgres",
                            &[
                                "repmgr",
                                "-f",
                                "/etc/repmgr.conf",
                                "-h",
                                &primary,
                                "-U",
                                "repmgr",
                                "-d",
                                "repmgr",
                                "witness",
                                "register",
                            ],
                        ),
                        services(w),
                    ],
                ));
            }
        }
        title.push_str("; start repmgrd on each node once it is ready");
        phases.push(Phase { title, steps });
        phases
    }
}

/// The plan that deploys `design`, or the reasons it cannot be deployed yet, before anything is created.
pub fn plan(
    design: &Design,
    topology: &Topology,
    options: PlanOptions,
) -> Result<Plan, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    if design.needs_edb_subscription() && !options.edb_token {
        problems.push(Diagnostic::error(
            "deploy",
            Code::EdbTokenNeeded,
            "this design uses EDB software from EDB Repos 2.0: set EDB_SUBSCRIPTION_TOKEN to your EDB subscription token and deploy again",
        ));
    }
    if design.flavour().is_edb() && options.edb_token {
        problems.push(Diagnostic::error(
            "postgres_flavour",
            Code::DeployUnsupported,
            format!(
                "deploying {} is not available yet (it needs EDB Repos 2.0 in the node image): deploy with --postgresql, or use config.yml with TPA",
                design.flavour().title()
            ),
        ));
    }
    if design.failover() == FailoverManager::Efm && options.edb_token {
        problems.push(Diagnostic::error(
            "failover_manager",
            Code::DeployUnsupported,
            "deploying EFM clusters is not available yet: deploy with --failover-manager repmgr, or use config.yml with TPA",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let network = match design.platform() {
        PlatformSpec::Docker | PlatformSpec::Aws { .. } => {
            design.network().map(|n| n.to_string()).unwrap_or_default()
        }
        PlatformSpec::Bare => "samenet".to_string(),
    };
    let context = Context {
        design,
        topology,
        options,
        bindir: bindir(design.version()),
        network,
    };
    Ok(Plan {
        cluster: design.cluster_name().to_string(),
        nodes: topology
            .instances
            .iter()
            .map(|i| NodeFiles {
                node: i.name.clone(),
                files: context.files(i),
            })
            .collect(),
        phases: context.phases(),
    })
}

/// Barman's steps on node `b` for server `server`, once WAL streams from `primary`: a closed
/// WAL file that it archives, `barman check` green, and a backup titled `backup_title`.
fn barman_backup(b: &str, server: &str, primary: &str, backup_title: &str) -> Vec<Step> {
    let mut steps = barman_close_wal(b, server, primary);
    steps.extend(barman_first_backup(b, server, backup_title));
    steps
}

/// Waits on the Barman node until receive-wal streams from `primary`, as the primary sees it.
/// A WAL switch before that would close a file that receive-wal, starting at the current
/// position, never receives.
fn barman_streaming(b: &str, primary: &str) -> Step {
    rows_exist(
        b,
        &format!("receive-wal streams from {primary}"),
        "barman",
        &["-h", primary, "-U", "barman", "-d", "postgres"],
        "pg_stat_replication WHERE application_name = 'barman_receive_wal' AND state = 'streaming'",
    )
}

/// Waits on `node`, as `user`, until `psql` with `connection` finds a row in `rows` (a table
/// and its condition): the query fails, dividing by zero, while there is none.
fn rows_exist(node: &str, title: &str, user: &str, connection: &[&str], rows: &str) -> Step {
    let mut command = argv(&["psql", "-XAtq"]);
    command.extend(argv(connection));
    command.extend(argv(&["-c", &format!("SELECT 1 / count(*) FROM {rows}")]));
    wait(
        node,
        title,
        Readiness::CommandSucceeds {
            argv: command,
            user: user.into(),
        },
        60,
    )
}

/// How Barman's node runs barman cron: every 15 s for its first two minutes, while a deployment
/// gets WAL streaming and the first backup going, then every minute, as Debian's cron.d does.
/// Each run is a Python start of about half a second of CPU: every 15 s for ever was a third of
/// an idle cluster's CPU. Drills that move Barman run it themselves.
const BARMAN_CRON: &str = "#!/bin/sh
# Runs barman cron (Barman's maintenance and WAL streaming): every 15 seconds for two minutes
# after it starts, then every minute, as Debian's cron.d does. Deployments do not wait for it:
# they start receive-wal and archive the first WAL file themselves, and backup --wait archives
# too; pointing Barman at a new primary runs it at once.
runs=0
while true; do
    /usr/bin/barman -q cron
    if [ \"$runs\" -lt 8 ]; then
        runs=$((runs + 1))
        sleep 15
    else
        sleep 60
    fi
done
";

/// Closes the primary's current WAL file and archives it on the Barman node `b`, so that
/// `barman check` finds an archived file. Barman archives a streamed file only once receive-wal
/// has opened the next one, and an idle primary writes nothing for up to 15 s after a switch
/// (`barman switch-wal --archive` waited that long): a transaction is committed after the
/// switch, so that the next file opens at once. If the archive runs before it has, `barman
/// cron` archives the file within 15 s.
fn barman_close_wal(b: &str, server: &str, primary: &str) -> Vec<Step> {
    vec![
        run(
            b,
            "close the current WAL file",
            "barman",
            &[
                "psql",
                "-XAtq",
                "-h",
                primary,
                "-U",
                "barman",
                "-d",
                "postgres",
                "-c",
                "SELECT txid_current()",
                "-c",
                "SELECT pg_switch_wal()",
                "-c",
                "SELECT txid_current()",
            ],
        ),
        run(
            b,
            "archive the closed WAL file",
            "barman",
            &["barman", "-q", "archive-wal", server],
        ),
    ]
}

/// Barman on node `b`, at a cluster's start: WAL streams from `primary` (receive-wal started
/// on its own, at once), a closed WAL file is archived, the first backup is taken with `barman
/// check` beside it, then barman cron keeps it all going. cron's first run would start three
/// Barman processes of its own while the backup runs.
fn barman_stream_and_back_up(b: &str, primary: &str) -> Vec<Step> {
    let mut steps = vec![
        barman_directories(b, primary),
        start(b, "barman-receive-wal"),
        barman_streaming(b, primary),
    ];
    steps.extend(barman_close_wal(b, primary, primary));
    steps.extend(barman_first_backup_beside_check(b, primary));
    steps.push(start(b, "barman-cron"));
    steps
}

/// The directories of Barman's server `server` on node `b`, made before any Barman command
/// runs. Each Barman command makes those missing as it starts, testing for each then making
/// it: two of them started at once (the backup and `barman check` beside it) can both find one
/// missing, and the slower fails its "directories" check.
fn barman_directories(b: &str, server: &str) -> Step {
    let home = barman_server_directory(server);
    let directories: Vec<String> = ["", "/base", "/errors", "/incoming", "/streaming", "/wals"]
        .iter()
        .map(|dir| format!("{home}{dir}"))
        .collect();
    let mut command = vec!["install", "-d", "-m", "0755"];
    command.extend(directories.iter().map(String::as_str));
    run(b, "create Barman's directories", "barman", &command)
}

/// Barman's directory of server `server`, where its backups and WAL files go.
fn barman_server_directory(server: &str) -> String {
    format!("/var/lib/barman/{server}")
}

/// Barman's first backup of `server` on node `b`, once a WAL file is archived, and `barman
/// check` beside it. `barman backup` runs Barman's checks itself and refuses to start if one
/// fails (the archived WAL file is one); `barman check` shows them to people.
fn barman_first_backup_beside_check(b: &str, server: &str) -> Vec<Step> {
    let mut steps = vec![
        wal_archived(b, server),
        run(
            b,
            "take the first backup",
            "barman",
            &["barman", "backup", "--wait", server],
        ),
    ];
    steps.extend(in_lane(
        "check",
        vec![wal_archived(b, server), barman_check(b, server)],
    ));
    steps
}

/// Waits on the Barman node `b` until a WAL file of `server` is in Barman's catalogue:
/// `xlog.db` in the server's WAL directory, named `SERVER-xlog.db` from Barman 3.13 on. If
/// `barman archive-wal` ran before receive-wal had opened the next file, barman cron archives
/// it within 15 s.
fn wal_archived(b: &str, server: &str) -> Step {
    let wals = format!("{}/wals", barman_server_directory(server));
    wait(
        b,
        "a WAL file is archived",
        Readiness::CommandSucceeds {
            argv: argv(&[
                "test",
                "-s",
                &format!("{wals}/xlog.db"),
                "-o",
                "-s",
                &format!("{wals}/{server}-xlog.db"),
            ]),
            user: "barman".into(),
        },
        60,
    )
}

/// Waits until `barman check` is green for `server`.
fn barman_check(b: &str, server: &str) -> Step {
    wait(
        b,
        "barman check is green",
        Readiness::CommandSucceeds {
            argv: argv(&["barman", "check", server]),
            user: "barman".into(),
        },
        120,
    )
}

/// `barman check` green, then a backup: once a WAL file is archived.
fn barman_first_backup(b: &str, server: &str, backup_title: &str) -> Vec<Step> {
    vec![
        barman_check(b, server),
        run(
            b,
            backup_title,
            "barman",
            &["barman", "backup", "--wait", server],
        ),
    ]
}

/// The step after which a repmgr standby's own record is in its copy of the metadata.
const REGISTRATION_REACHED: &str = "the registration reached the standby";

/// The replication slot Barman streams WAL through, on the primary.
const BARMAN_SLOT: &str = "barman";

/// The program that starts, stops, restarts or signals supervisord's programs on every node.
pub const SERVICE_COMMAND: &str = "/usr/local/bin/m1studio-service";

/// `SERVICE_COMMAND`: supervisord's own XML-RPC interface on its socket, from Python's standard
/// library. It does what `supervisorctl start`, `stop`, `restart` and `signal HUP` do, without
/// loading supervisorctl, whose start takes about 0.4 s on a busy node. Its `main` takes the
/// streams it writes to, so that a Python program that has loaded it (the Docker executor's
/// agent) can call it without a process start.
const SERVICE_SCRIPT: &str = r#"#!/usr/bin/python3 -S
# Written by m1studio: starts, stops, restarts or signals supervisord's programs through its
# socket, as supervisorctl does, in a fraction of supervisorctl's start-up time.
import http.client
import socket
import sys
import xmlrpc.client


class Connection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect("/var/run/supervisor.sock")


class Transport(xmlrpc.client.Transport):
    def make_connection(self, host):
        return Connection("localhost")


def call(method, name, harmless):
    try:
        method(name, True)
    except xmlrpc.client.Fault as fault:
        if harmless not in fault.faultString:
            raise


def run(supervisor, action, name):
    if action in ("stop", "restart"):
        call(supervisor.stopProcess, name, "NOT_RUNNING")
    if action in ("start", "restart"):
        call(supervisor.startProcess, name, "ALREADY_STARTED")
    if action == "hup":
        supervisor.signalProcess(name, "HUP")


def main(argv, out=sys.stdout, err=sys.stderr):
    if len(argv) < 3 or argv[1] not in ("start", "stop", "restart", "hup"):
        print("usage: m1studio-service start|stop|restart|hup NAME...", file=err)
        return 2
    proxy = xmlrpc.client.ServerProxy("http://localhost", transport=Transport())
    for name in argv[2:]:
        try:
            run(proxy.supervisor, argv[1], name)
        except (OSError, xmlrpc.client.Fault) as error:
            print(f"{name}: {argv[1]} failed: {error}", file=err)
            return 1
        print(f"{name}: {argv[1]} done", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
"#;

/// A supervisord program of Barman's, run as barman, started only when asked for, logging to
/// `/var/log/barman/LOG.log`.
fn barman_program(name: &str, command: &str, autorestart: bool, log: &str) -> String {
    format!(
        "[program:{name}]\n\
         command={command}\n\
         user=barman\n\
         environment=HOME=\"/var/lib/barman\"\n\
         autostart=false\n\
         autorestart={autorestart}\n\
         startsecs=0\n\
         redirect_stderr=true\n\
         stdout_logfile=/var/log/barman/{log}.log\n"
    )
}

/// The path of Barman's server file on the Barman node.
pub fn barman_server_file(topology: &Topology) -> String {
    format!("/etc/barman.d/{}.conf", topology.instances[0].name)
}

/// The plan that points Barman at `source`, the primary after a failover: its server file
/// (same server, same catalogue), the slot on the new primary, streaming, a WAL switch and
/// `barman check`. With `backup`, a new backup is taken too.
pub fn retarget_barman(
    design: &Design,
    topology: &Topology,
    source: &str,
    backup: bool,
) -> Result<Plan, Diagnostic> {
    let Some(barman) = topology.of_kind(Kind::Barman).next() else {
        return Err(Diagnostic::error(
            "barman",
            Code::DeployUnsupported,
            "this design has no Barman node",
        ));
    };
    if !topology.get(source).is_some_and(|i| i.kind.is_postgres()) {
        return Err(Diagnostic::error(
            "node",
            Code::DeployUnsupported,
            format!(
                "{source} is not a Postgres node of {}",
                design.cluster_name()
            ),
        ));
    }
    let context = Context {
        design,
        topology,
        options: PlanOptions::default(),
        bindir: bindir(design.version()),
        network: String::new(),
    };
    let server = topology.instances[0].name.as_str();
    let b = barman.name.as_str();
    // barman cron makes the slot (create_slot = auto) and restarts receive-wal against it, once
    // the receive-wal of the old source has stopped (after a switchover it would go on
    // streaming from the old primary, now a standby).
    let mut check = barman_backup(b, server, source, &format!("back up {source}"));
    if !backup {
        check.pop();
    }
    let phases = vec![
        Phase {
            title: format!("Point Barman on {b} at {source}"),
            steps: vec![
                step(b, &format!("point Barman at {source}"), Action::WriteFiles),
                step(
                    b,
                    "stop streaming from the old primary",
                    Action::Attempt {
                        argv: argv(&["barman", "receive-wal", "--stop", server]),
                        user: "barman".into(),
                    },
                ),
                run(
                    b,
                    "make the slot and stream from the new primary (barman cron)",
                    "barman",
                    &["barman", "-q", "cron"],
                ),
            ],
        },
        Phase {
            title: format!("Wait for Barman to stream WAL from {source}"),
            steps: vec![wait(
                source,
                "Barman streams WAL from the new primary",
                Readiness::Query {
                    sql: "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'barman_receive_wal' AND state = 'streaming'".into(),
                    expect: "1".into(),
                },
                90,
            )],
        },
        Phase {
            title: "Check Barman".into(),
            steps: check,
        },
    ];
    Ok(Plan {
        cluster: design.cluster_name().to_string(),
        nodes: vec![NodeFiles {
            node: b.to_string(),
            files: vec![file(
                &barman_server_file(topology),
                "barman",
                0o644,
                context.barman_conf(source),
            )],
        }],
        phases,
    })
}

/// The Postgres server packages of `version`: the server and repmgr.
fn server_packages(version: u32) -> [String; 2] {
    [
        format!("postgresql-{version}"),
        format!("postgresql-{version}-repmgr"),
    ]
}

/// The Debian packages that `instance`'s roles need on an existing host (a container has them
/// all, in the node image).
pub fn host_packages(design: &Design, instance: &Instance) -> Vec<String> {
    let mut packages = vec!["supervisor".to_string(), "procps".into()];
    if instance.runs_postgres() {
        let [server, repmgr] = server_packages(design.version());
        packages.push(server);
        packages.push(match design.failover() {
            FailoverManager::Patroni => "patroni".into(),
            _ => repmgr,
        });
    }
    match instance.kind {
        Kind::Barman => packages.extend(["barman".to_string(), "barman-cli".into()]),
        Kind::Etcd => packages.extend(["etcd-server".to_string(), "etcd-client".into()]),
        Kind::Haproxy => packages.push("haproxy".into()),
        _ => {}
    }
    packages
}

/// The TCP ports that `instance`'s services listen on.
pub fn host_ports(design: &Design, instance: &Instance) -> Vec<u16> {
    let mut ports = Vec::new();
    if instance.runs_postgres() {
        ports.push(5432);
        if design.failover() == FailoverManager::Patroni {
            ports.push(PATRONI_PORT);
        }
    }
    match instance.kind {
        // Clients, then the other members.
        Kind::Etcd => ports.extend([ETCD_CLIENT_PORT, 2380]),
        Kind::Haproxy => ports.extend([5432, HAPROXY_READ_ONLY_PORT, HAPROXY_STATS_PORT]),
        _ => {}
    }
    ports
}

/// The container image every node of a docker deployment runs: Debian with the packages of
/// every role, built from Debian's archive without a registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeImage {
    /// The Debian suite.
    pub suite: String,
    /// The packages installed into it from Debian's archive.
    pub packages: Vec<String>,
    /// Where the Postgres server packages come from when Debian's archive has no such version.
    pub pgdg: Option<Pgdg>,
    /// The tag, made from the recipe's content: the same recipe always has the same tag.
    pub tag: String,
    /// Where its Postgres's programs are.
    pub bindir: String,
}

/// Where Debian's packages put the programs of Postgres `version`.
pub fn bindir(version: u32) -> String {
    format!("/usr/lib/postgresql/{version}/bin")
}

/// The PostgreSQL project's apt repository, for a version Debian's archive does not carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pgdg {
    /// The repository's address, as in `http://apt.postgresql.org/pub/repos/apt`.
    pub mirror: String,
    /// Its suite (`bookworm-pgdg`).
    pub suite: String,
    /// The packages installed from it, after the Debian ones.
    pub packages: Vec<String>,
}

/// Where each Postgres major version comes from in Debian's own archive.
pub const DEBIAN_SUITES: &[(u32, &str)] = &[
    (13, "bullseye"),
    (15, "bookworm"),
    (17, "trixie"),
    (18, "sid"),
];

/// The Debian suite an image that takes Postgres from the PostgreSQL apt repository is built on.
pub const PGDG_BASE_SUITE: &str = "bookworm";

/// The PostgreSQL apt repository's usual address, named in messages.
pub const PGDG_MIRROR: &str = "http://apt.postgresql.org/pub/repos/apt";

/// The node image for `design`, or why it cannot be built. Versions in Debian's archive come
/// from it; any other version needs `pgdg`, the address of the PostgreSQL project's apt
/// repository where it is reachable.
pub fn node_image(design: &Design, pgdg: Option<&str>) -> Result<NodeImage, Diagnostic> {
    let version = design.version();
    let server = server_packages(version);
    let (suite, pgdg) = match (DEBIAN_SUITES.iter().find(|(v, _)| *v == version), pgdg) {
        (Some((_, suite)), _) => (*suite, None),
        (None, Some(mirror)) if !mirror.trim().is_empty() => (
            PGDG_BASE_SUITE,
            Some(Pgdg {
                mirror: mirror.trim().trim_end_matches('/').to_string(),
                suite: format!("{PGDG_BASE_SUITE}-pgdg"),
                packages: server.to_vec(),
            }),
        ),
        (None, _) => {
            let known: Vec<String> = DEBIAN_SUITES
                .iter()
                .map(|(v, s)| format!("{v} ({s})"))
                .collect();
            return Err(Diagnostic::error(
                "postgres_version",
                Code::DeployUnsupported,
                format!(
                    "PostgreSQL {version} is not in Debian's archive, and containers are built from it: use {} for a docker deployment, or, where the PostgreSQL project's apt repository is reachable, set M1STUDIO_PGDG_MIRROR={PGDG_MIRROR} to build the image with it",
                    known.join(", ")
                ),
            ));
        }
    };
    let mut packages: Vec<String> = [
        "barman".to_string(),
        "barman-cli".into(),
        "patroni".into(),
        "etcd-server".into(),
        "etcd-client".into(),
        "haproxy".into(),
        "openssh-server".into(),
        "iproute2".into(),
        "procps".into(),
        "supervisor".into(),
    ]
    .into();
    if pgdg.is_some() {
        packages.push("postgresql-common".into());
    } else {
        packages.extend(server);
    }
    packages.sort();
    // The recipe's version: raise it whenever the way the image is built changes.
    let mut recipe = format!(
        "m1studio-node recipe 2\nsuite={suite}\npackages={}\n",
        packages.join(",")
    );
    if let Some(pgdg) = &pgdg {
        recipe.push_str(&format!(
            "pgdg={} {}\npgdg_packages={}\n",
            pgdg.mirror,
            pgdg.suite,
            pgdg.packages.join(",")
        ));
    }
    let digest = sha2::Sha256::digest(recipe.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let source = if pgdg.is_some() { "-pgdg" } else { "" };
    Ok(NodeImage {
        suite: suite.to_string(),
        packages,
        pgdg,
        tag: format!("m1studio-node:{suite}-pg{version}{source}-{hex}"),
        bindir: bindir(version),
    })
}
