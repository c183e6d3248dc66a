//! The deployment plan: from a design, what each node needs (its files) and what to do, in
//! order (phases whose steps may run in parallel): commands as argument vectors, services to
//! start, and readiness as data. Pure: executors carry it out.
//!
//! Passwords never appear in a plan. Files and commands refer to them as `${secret:NAME}`, and
//! roles are given them as `${scram:NAME}` (the password's SCRAM verifier), which only an
//! executor replaces, with values it keeps to itself.

use crate::diag::{Code, Diagnostic};
use crate::spec::{Design, FailoverManager, PlatformSpec};
use crate::topology::{Instance, Kind, Role, Topology};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

mod barman;
mod image;
mod model;
use barman::*;
pub use barman::{barman_server_file, retarget_barman};
use model::*;
pub use model::{
    Action, COMMAND_LIMIT_SECS, COPY_LIMIT_SECS, File, NodeFiles, Phase, Plan, QUICK_LIMIT_SECS,
    Readiness, Step, WAIT_MARGIN_SECS,
};
mod patroni;
mod profile;
pub use image::{
    DEBIAN_SUITES, NodeImage, PGDG_BASE_SUITE, PGDG_MIRROR, Pgdg, bindir, host_packages,
    host_ports, node_image,
};
pub use patroni::{
    ETCD_CLIENT_PORT, HAPROXY_FRONTENDS, HAPROXY_READ_ONLY_PORT, HAPROXY_STATS_PORT, PATRONI_PORT,
};
pub use profile::{PlanOptions, Profile};

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
    "etcd",
    SSH_KEY,
    SSH_KEY_PUB,
];
/// The secret that holds the cluster's private SSH key (OpenSSH format), for repmgr's switchover.
pub const SSH_KEY: &str = "ssh_key";
/// The secret that holds its public half.
pub const SSH_KEY_PUB: &str = "ssh_key_pub";
/// Patroni's configuration on every Postgres node of a Patroni cluster.
pub const PATRONI_CONFIG: &str = "/etc/patroni/m1studio.yml";

struct Context<'a> {
    design: &'a Design,
    topology: &'a Topology,
    options: PlanOptions,
    bindir: String,
    /// Where the cluster's clients and peers connect from, for `pg_hba`: the network of a
    /// docker or aws design; each host's address (or name) on existing hosts, whose networks
    /// others share.
    networks: Vec<String>,
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
        let mut out = String::from(
            "# Written by m1studio: local peers, and scram-sha-256 from the cluster's own addresses only.\n\
             local   all          postgres                     peer\n\
             local   all          all                          peer\n",
        );
        for (database, user) in [
            ("repmgr", "repmgr"),
            ("replication", "repmgr"),
            ("postgres", "barman"),
            ("replication", "streaming_barman"),
            ("all", "all"),
        ] {
            for net in &self.networks {
                let _ = writeln!(
                    out,
                    "host    {database:<12} {user:<17} {net}  scram-sha-256"
                );
            }
        }
        out
    }

    /// The address `instance`'s services listen on for the cluster's peers: its own on an
    /// existing host (whose other interfaces are not the cluster's), every one in a container.
    fn bind_address(&self, instance: &Instance) -> String {
        match (self.design.platform(), instance.ip_address) {
            (PlatformSpec::Bare, Some(address)) => address.to_string(),
            _ => "0.0.0.0".to_string(),
        }
    }

    fn repmgr_conf(&self, instance: &Instance) -> String {
        let (attempts, interval, _) = self.options.profile.repmgr_timing();
        let monitor = self
            .options
            .profile
            .repmgr_monitor_secs(Profile::watches_primary(instance.kind));
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

    /// barman cron, every 15 s then every two minutes, restarted by supervisord if it ever stops.
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
            file(WAL_ARCHIVED_PATH, "root", 0o755, WAL_ARCHIVED.to_string()),
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
                        verifier(user)
                    )
                })
                .collect();
        statements.push(format!(
            "ALTER ROLE postgres PASSWORD '{}'",
            verifier("postgres")
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
            verifier("repmgr")
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
                    verifier("repmgr")
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
                )
                .within(COPY_LIMIT_SECS),
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
    let networks = match design.platform() {
        PlatformSpec::Docker | PlatformSpec::Aws { .. } => {
            vec![design.network().map(|n| n.to_string()).unwrap_or_default()]
        }
        // Each host by its address, or by its name (which Postgres looks up both ways).
        PlatformSpec::Bare => topology
            .instances
            .iter()
            .map(|i| match i.ip_address {
                Some(std::net::IpAddr::V4(a)) => format!("{a}/32"),
                Some(std::net::IpAddr::V6(a)) => format!("{a}/128"),
                None => i.name.clone(),
            })
            .collect(),
    };
    let context = Context {
        design,
        topology,
        options,
        bindir: bindir(design.version()),
        networks,
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
