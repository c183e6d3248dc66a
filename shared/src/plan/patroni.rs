//! The Patroni path of the plan: three etcd members form the DCS, Patroni runs every Postgres
//! node (cascaded replicas stream from node 2 through the `replicatefrom` tag), Barman keeps a
//! permanent slot, and optional HAProxy nodes send clients to the leader, checked through
//! Patroni's REST API.

use super::{
    Action, Context, File, PATRONI_CONFIG, PGDATA, Phase, Profile, Readiness, Step, file, secret,
    start, step, wait,
};
use crate::topology::{Instance, Kind};
use std::fmt::Write as _;

/// etcd's client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// Patroni's REST API port.
pub const PATRONI_PORT: u16 = 8008;
/// HAProxy's read-only frontend (the read-write one is 5432).
pub const HAPROXY_READ_ONLY_PORT: u16 = 5433;
/// HAProxy's statistics page, on the node's loopback only: `/stats`, and `/stats;csv`.
pub const HAPROXY_STATS_PORT: u16 = 8404;
/// HAProxy's frontends: name, port and Patroni's check.
pub const HAPROXY_FRONTENDS: [(&str, u16, &str); 2] = [
    ("primary", 5432, "/primary"),
    ("replicas", HAPROXY_READ_ONLY_PORT, "/replica"),
];

/// The step that turns etcd's authentication on.
const ETCD_AUTH_TITLE: &str = "etcd asks for a password";

/// Where the plan writes [`ETCD_AUTH`] on the etcd nodes.
const ETCD_AUTH_PATH: &str = "/usr/local/bin/m1studio-etcd-auth";

/// Gives etcd a root user with the password read from standard input (`{"password": …,
/// "endpoint": …}`) and turns authentication on, through the member's JSON gateway. Run again, it finds the
/// user there and authentication on, and succeeds.
const ETCD_AUTH: &str = r#"#!/usr/bin/python3
# Written by m1studio: gives etcd a root user, with the password and the member's address on
# standard input, and turns authentication on. Run again, it changes nothing.
import json, sys, urllib.error, urllib.request

given = json.load(sys.stdin)
password, endpoint = given["password"], given["endpoint"]

def call(path, body):
    request = urllib.request.Request(
        endpoint + "/v3/auth/" + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.read().decode()
    except urllib.error.HTTPError as error:
        said = error.read().decode()
        if "already exists" in said or "already enabled" in said or "authentication is not enabled" in said:
            return said
        if "user name is empty" in said or "invalid auth token" in said or "permission denied" in said:
            # Authentication is on already: nothing more to do.
            sys.exit(0)
        sys.exit("etcd refused %s: %s" % (path, said))

call("role/add", {"name": "root"})
call("user/add", {"name": "root", "password": password})
call("user/grant", {"user": "root", "role": "root"})
call("enable", {})
"#;

impl Context<'_> {
    fn etcd_members(&self) -> Vec<&Instance> {
        self.topology.of_kind(Kind::Etcd).collect()
    }

    fn etcd_service(&self, instance: &Instance) -> String {
        let initial: Vec<String> = self
            .etcd_members()
            .iter()
            .map(|m| format!("{}=http://{}:2380", m.name, m.name))
            .collect();
        // On an existing host, etcd listens on its own address (and loopback, for the checks
        // run there), not on every interface.
        let bind = self.bind_address(instance);
        let clients = if bind == "0.0.0.0" {
            format!("http://0.0.0.0:{ETCD_CLIENT_PORT}")
        } else {
            format!("http://{bind}:{ETCD_CLIENT_PORT},http://127.0.0.1:{ETCD_CLIENT_PORT}")
        };
        format!(
            "[program:etcd]\n\
             command=/usr/bin/etcd --name {name} --data-dir /var/lib/etcd/{cluster} \
             --listen-peer-urls http://{bind}:2380 --listen-client-urls {clients} \
             --initial-advertise-peer-urls http://{name}:2380 --advertise-client-urls http://{name}:{ETCD_CLIENT_PORT} \
             --initial-cluster {initial} --initial-cluster-token {cluster} --initial-cluster-state new\n\
             user=etcd\n\
             autostart=false\n\
             autorestart=true\n\
             startsecs=0\n\
             redirect_stderr=true\n\
             stdout_logfile=/var/log/etcd.log\n",
            name = instance.name,
            cluster = self.design.cluster_name(),
            initial = initial.join(","),
        )
    }

    /// Patroni's configuration for `instance`. The DCS section of `bootstrap` is read once, by
    /// the node that initialises the cluster, and then lives in etcd.
    fn patroni_yml(&self, instance: &Instance) -> String {
        let (ttl, loop_wait, retry) = self.options.profile.patroni_timing();
        let fast = self.options.profile == Profile::Fast;
        let hosts: Vec<String> = self
            .etcd_members()
            .iter()
            .map(|m| format!("{}:{ETCD_CLIENT_PORT}", m.name))
            .collect();
        let hba: String = [
            ("replication", "replicator"),
            ("replication", "streaming_barman"),
            ("postgres", "barman"),
            ("all", "all"),
        ]
        .iter()
        .flat_map(|(database, user)| {
            self.networks
                .iter()
                .map(move |net| format!("  - host {database} {user} {net} scram-sha-256\n"))
        })
        .collect();
        let bind = self.bind_address(instance);
        let mut out = String::new();
        let _ = write!(
            out,
            "# Written by m1studio for {name} (node {node}) of cluster {cluster}.\n\
             scope: {cluster}\n\
             namespace: /m1studio/\n\
             name: {name}\n\
             restapi:\n\
             \x20 listen: {bind}:{PATRONI_PORT}\n\
             \x20 connect_address: {name}:{PATRONI_PORT}\n\
             \x20 authentication:\n\
             \x20   username: patroni\n\
             \x20   password: '{patroni}'\n\
             ctl:\n\
             \x20 authentication:\n\
             \x20   username: patroni\n\
             \x20   password: '{patroni}'\n\
             etcd3:\n\
             \x20 hosts: {hosts}\n\
             \x20 username: root\n\
             \x20 password: '{etcd}'\n\
             bootstrap:\n\
             \x20 dcs:\n\
             \x20   ttl: {ttl}\n\
             \x20   loop_wait: {loop_wait}\n\
             \x20   retry_timeout: {retry}\n\
             \x20   maximum_lag_on_failover: 1048576\n{synchronous}\
             \x20   postgresql:\n\
             \x20     use_pg_rewind: true\n\
             \x20     use_slots: true\n\
             \x20     parameters:\n\
             \x20       wal_level: replica\n\
             \x20       wal_log_hints: 'on'\n\
             \x20       hot_standby: 'on'\n\
             \x20       max_connections: 100\n\
             \x20       max_wal_senders: 16\n\
             \x20       max_replication_slots: 16\n\
             \x20       wal_keep_size: 256MB\n\
             \x20   # Barman's slot is permanent: Patroni keeps it on the leader and on the standbys,\n\
             \x20   # so that it is there on whichever node is promoted.\n\
             \x20   slots:\n\
             \x20     {barman_slot}:\n\
             \x20       type: physical\n\
             \x20 initdb:\n\
             \x20 - data-checksums\n\
             \x20 - auth-local: peer\n\
             \x20 - auth-host: scram-sha-256\n{initdb_fast}\
             postgresql:\n\
             \x20 listen: 0.0.0.0:5432\n\
             \x20 connect_address: {name}:5432\n\
             \x20 data_dir: {PGDATA}\n\
             \x20 bin_dir: {bindir}\n\
             \x20 pgpass: /var/lib/postgresql/.pgpass.patroni\n\
             \x20 use_unix_socket: true\n\
             \x20 remove_data_directory_on_rewind_failure: true\n\
             \x20 remove_data_directory_on_diverged_timelines: true\n\
             \x20 authentication:\n\
             \x20   superuser:\n\
             \x20     username: postgres\n\
             \x20     password: '{postgres}'\n\
             \x20   replication:\n\
             \x20     username: replicator\n\
             \x20     password: '{replicator}'\n\
             \x20   rewind:\n\
             \x20     username: postgres\n\
             \x20     password: '{postgres}'\n\
             \x20 basebackup:\n\
             \x20 - checkpoint: fast\n{basebackup_fast}\
             \x20 parameters:\n\
             \x20   unix_socket_directories: /var/run/postgresql\n\
             \x20   password_encryption: scram-sha-256\n\
             \x20   shared_buffers: 128MB\n\
             \x20   cluster_name: {cluster}-{name}\n\
             \x20   log_line_prefix: '%m [%p] %q%u@%d '\n{fast}\
             \x20 pg_hba:\n\
             \x20 - local all all peer\n{hba}\
             tags:\n\
             \x20 nofailover: {nofailover}\n\
             \x20 noloadbalance: false\n\
             \x20 clonefrom: {clonefrom}\n\
             \x20 nosync: {nosync}\n",
            name = instance.name,
            node = instance.node,
            cluster = self.design.cluster_name(),
            patroni = secret("patroni"),
            etcd = secret("etcd"),
            postgres = secret("postgres"),
            replicator = secret("replicator"),
            hosts = hosts.join(","),
            // Patroni names the synchronous standby itself, and only that one may be promoted.
            synchronous = if self.design.synchronous() {
                "    synchronous_mode: true\n"
            } else {
                ""
            },
            bindir = self.bindir,
            barman_slot = super::BARMAN_SLOT,
            // A fast-profile (workshop) cluster is made anew, never recovered: skip the final fsync.
            initdb_fast = if fast { "  - no-sync\n" } else { "" },
            basebackup_fast = if fast { "  - no-sync\n" } else { "" },
            fast = self
                .fast_settings()
                .iter()
                .map(|(name, value, _)| format!("    {name}: {value}\n"))
                .collect::<String>(),
            // As with repmgr, only the first replica may be promoted: the cascaded replicas are
            // in the other location.
            nofailover = instance.kind == Kind::CascadedReplica,
            clonefrom = instance.kind == Kind::Replica,
            nosync = instance.kind == Kind::CascadedReplica,
        );
        if instance.kind == Kind::CascadedReplica {
            let _ = writeln!(out, "  replicatefrom: {}", self.replica().name);
        }
        out
    }

    fn patroni_service(&self) -> String {
        "[program:patroni]\n\
         command=/usr/bin/patroni /etc/patroni/m1studio.yml\n\
         user=postgres\n\
         environment=HOME=\"/var/lib/postgresql\"\n\
         autostart=false\n\
         autorestart=true\n\
         startsecs=0\n\
         stopsignal=TERM\n\
         stopwaitsecs=30\n\
         redirect_stderr=true\n\
         stdout_logfile=/var/log/postgresql/patroni.log\n"
            .to_string()
    }

    fn haproxy_cfg(&self, instance: &Instance) -> String {
        let mut out = format!(
            "# Written by m1studio: clients reach the leader on 5432 and the standbys on {HAPROXY_READ_ONLY_PORT},\n\
             # as Patroni's REST API says (GET /primary, GET /replica on port {PATRONI_PORT}).\n\
             global\n\
             \x20   maxconn 200\n\
             defaults\n\
             \x20   mode tcp\n\
             \x20   timeout connect 2s\n\
             \x20   timeout client 30m\n\
             \x20   timeout server 30m\n\
             \x20   timeout check 2s\n\
             listen stats\n\
             \x20   mode http\n\
             \x20   bind 127.0.0.1:{HAPROXY_STATS_PORT}\n\
             \x20   stats enable\n\
             \x20   stats uri /stats\n"
        );
        for (frontend, port, check) in HAPROXY_FRONTENDS {
            let _ = write!(
                out,
                "listen {frontend}\n\
                 \x20   bind *:{port}\n\
                 \x20   option httpchk GET {check}\n\
                 \x20   http-check expect status 200\n\
                 \x20   default-server inter 500ms fastinter 250ms downinter 250ms fall 2 rise 1 on-marked-down shutdown-sessions\n"
            );
            for backend in &instance.backends {
                let _ = writeln!(
                    out,
                    "    server {backend} {backend}:5432 check port {PATRONI_PORT}"
                );
            }
        }
        out
    }

    fn haproxy_service(&self) -> String {
        "[program:haproxy]\n\
         command=/usr/sbin/haproxy -W -db -f /etc/haproxy/haproxy.cfg\n\
         user=haproxy\n\
         autostart=false\n\
         autorestart=true\n\
         startsecs=0\n\
         redirect_stderr=true\n\
         stdout_logfile=/var/log/haproxy.log\n"
            .to_string()
    }

    pub(super) fn patroni_files(&self, instance: &Instance) -> Vec<File> {
        match instance.kind {
            Kind::Primary | Kind::Replica | Kind::CascadedReplica => vec![
                file(
                    PATRONI_CONFIG,
                    "postgres",
                    0o600,
                    self.patroni_yml(instance),
                ),
                file(
                    "/etc/supervisor/conf.d/patroni.conf",
                    "root",
                    0o644,
                    self.patroni_service(),
                ),
                file(ETCD_AUTH_PATH, "root", 0o755, ETCD_AUTH.to_string()),
            ],
            Kind::Etcd => vec![file(
                "/etc/supervisor/conf.d/etcd.conf",
                "root",
                0o644,
                self.etcd_service(instance),
            )],
            Kind::Haproxy => vec![
                file(
                    "/etc/haproxy/haproxy.cfg",
                    "root",
                    0o644,
                    self.haproxy_cfg(instance),
                ),
                file(
                    "/etc/supervisor/conf.d/haproxy.conf",
                    "root",
                    0o644,
                    self.haproxy_service(),
                ),
            ],
            Kind::Barman => self.barman_files(),
        }
    }

    fn streaming_from(&self, node: &str, upstream: &str) -> Step {
        wait(
            node,
            &format!("streaming from {upstream}"),
            Readiness::Query {
                sql: "SELECT status || ' from ' || sender_host FROM pg_stat_wal_receiver".into(),
                expect: format!("streaming from {upstream}"),
            },
            180,
        )
    }

    /// etcd first (Patroni on the primary waits for it), then the leader, then the replica, and
    /// the cascaded replicas from the replica once it streams; Barman streams and backs up
    /// beside them.
    pub(super) fn patroni_phases(&self) -> Vec<Phase> {
        let primary = self.primary().name.clone();
        let replica = self.replica().name.clone();
        let mut phases = vec![self.write_files_phase()];

        let mut first = Vec::new();
        for member in self.etcd_members() {
            first.push(start(&member.name, "etcd"));
            first.push(wait(
                &member.name,
                "etcd answers",
                Readiness::CommandSucceeds {
                    argv: super::argv(&[
                        "etcdctl",
                        "--endpoints=http://127.0.0.1:2379",
                        "--command-timeout=2s",
                        "endpoint",
                        "health",
                    ]),
                    user: "etcd".into(),
                },
                60,
            ));
        }
        // Once every member answers, etcd asks every client for a password (its root user's,
        // which Patroni has): on existing hosts, others on the network reach its port. The
        // primary turns it on, through the first member: a member that answered after that
        // could no longer say so without the password.
        let members = self.etcd_members();
        if let Some(first_member) = members.first() {
            for member in &members {
                first.push(step(
                    &primary,
                    &format!("etcd answers on {}", member.name),
                    Action::After {
                        node: member.name.clone(),
                        title: "etcd answers".into(),
                    },
                ));
            }
            first.push(Step {
                node: primary.clone(),
                title: ETCD_AUTH_TITLE.into(),
                action: Action::Run {
                    argv: super::argv(&["python3", ETCD_AUTH_PATH]),
                    user: "root".into(),
                    stdin: Some(format!(
                        "{{\"password\": \"{}\", \"endpoint\": \"http://{}:{ETCD_CLIENT_PORT}\"}}",
                        secret("etcd"),
                        first_member.name
                    )),
                },
                lane: None,
                timeout_secs: None,
            });
        }
        first.extend([
            self.directories(&primary),
            self.data_directory(&primary),
            start(&primary, "patroni"),
            wait(
                &primary,
                "Patroni initialises the leader",
                Readiness::Query {
                    sql: "SELECT NOT pg_is_in_recovery() AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator')".into(),
                    expect: "t".into(),
                },
                120,
            ),
        ]);
        first.push(self.sql(
            &primary,
            "create Barman's roles and set the postgres password",
            &self.barman_roles().join(";\n"),
        ));
        for proxy in self.topology.of_kind(Kind::Haproxy) {
            first.push(start(&proxy.name, "haproxy"));
        }
        phases.push(Phase {
            title: format!(
                "Start etcd on {}; Patroni initialises the primary, {primary}",
                self.etcd_members()
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            steps: first,
        });

        let replica_streams = self.streaming_from(&replica, &primary);
        // The cascaded replicas clone from the replica (its `clonefrom` tag) once it streams:
        // they wait for that very step.
        let after_replica = Action::After {
            node: replica.clone(),
            title: replica_streams.title.clone(),
        };
        let mut second = vec![
            self.directories(&replica),
            self.data_directory(&replica),
            start(&replica, "patroni"),
            replica_streams,
        ];
        let cascades: Vec<&Instance> = self.topology.of_kind(Kind::CascadedReplica).collect();
        for cascade in &cascades {
            let node = cascade.name.as_str();
            second.extend([
                step(node, &format!("{replica} streams"), after_replica.clone()),
                self.directories(node),
                self.data_directory(node),
                start(node, "patroni"),
                self.streaming_from(node, &replica),
            ]);
        }
        let mut title = format!("Patroni clones the replica, {replica}, from the primary");
        if !cascades.is_empty() {
            title.push_str(&format!(
                ", and the cascaded replicas from {replica} once it streams, all at once"
            ));
        }
        if let Some(barman) = self.topology.of_kind(Kind::Barman).next() {
            let b = barman.name.as_str();
            // Patroni makes the permanent slot; receive-wal streams into it.
            second.extend(super::barman_stream_and_back_up(b, &primary));
            title.push_str(&format!(
                "; Barman on {b} streams WAL and backs up {primary}"
            ));
        }
        for proxy in self.topology.of_kind(Kind::Haproxy) {
            second.push(wait(
                &proxy.name,
                "HAProxy reaches the leader",
                Readiness::CommandSucceeds {
                    argv: super::argv(&["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]),
                    user: "postgres".into(),
                },
                60,
            ));
        }
        phases.push(Phase {
            title,
            steps: second,
        });
        phases
    }
}
