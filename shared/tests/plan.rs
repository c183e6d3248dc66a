//! The deployment plan: reviewed snapshots for the repmgr matrix, and the properties every plan
//! keeps (no secret in it, no shell, cascaded replicas cloned together, the witness when the rule says so).

mod common;

use m1studio_shared::plan::{Action, PATRONI_CONFIG, Plan, PlanOptions, Profile, SECRETS, plan};
use m1studio_shared::{Code, FailoverManager, Kind, configure};

fn plan_for(line: &str, options: PlanOptions) -> Result<Plan, Vec<m1studio_shared::Diagnostic>> {
    let (invocation, problems) = common::parse(line);
    assert!(problems.is_empty(), "{problems:?}");
    let configured = configure(&invocation.draft).0.expect("a valid design");
    plan(&configured.design, &configured.topology, options)
}

fn repmgr(n: u32) -> Plan {
    plan_for(
        &format!("m1 -a M1 --postgresql 15 --failover-manager repmgr --platform docker --num-cascaded-replicas {n}"),
        PlanOptions::default(),
    )
    .expect("repmgr designs deploy")
}

fn full_text(plan: &Plan) -> String {
    let mut text = plan.describe();
    for node in &plan.nodes {
        for file in &node.files {
            text += &format!(
                "\n=== {}:{} ({}, {:o})\n{}",
                node.node, file.path, file.owner, file.mode, file.content
            );
        }
    }
    text
}

#[test]
fn repmgr_plans_match_the_snapshots() {
    for n in [0, 1, 2, 5] {
        insta::assert_snapshot!(format!("repmgr-docker-n{n}"), full_text(&repmgr(n)));
    }
}

#[test]
fn plans_hold_no_secret_only_placeholders_of_known_secrets() {
    for n in [0, 1, 5] {
        let text = full_text(&repmgr(n));
        let mut rest = text.as_str();
        let mut found = 0;
        let next = |text: &str| {
            [text.find("${secret:"), text.find("${scram:")]
                .into_iter()
                .flatten()
                .min()
        };
        while let Some(at) = next(rest) {
            let tail = &rest[at + 2..];
            let tail = &tail[tail.find(':').expect("a placeholder's kind") + 1..];
            let name = &tail[..tail.find('}').expect("closed placeholder")];
            assert!(SECRETS.contains(&name), "unknown secret {name}");
            found += 1;
            rest = tail;
        }
        assert!(found >= 5, "the passwords are placeholders ({found})");
        // A role is given its password's verifier, never the password itself.
        for statement in text.split("PASSWORD '").skip(1) {
            assert!(statement.starts_with("${scram:"), "{statement}");
        }
    }
}

#[test]
fn commands_are_argument_vectors_never_a_shell() {
    for step in repmgr(2).phases.iter().flat_map(|p| &p.steps) {
        if let Action::Run { argv, .. } = &step.action {
            assert!(
                !["sh", "bash", "/bin/sh"].contains(&argv[0].as_str()),
                "{argv:?}"
            );
            assert!(
                !argv.iter().any(|a| a == "-c" && argv[0].ends_with("sh")),
                "{argv:?}"
            );
        }
    }
}

#[test]
fn cascaded_replicas_are_cloned_from_node_two_at_once_once_it_is_registered() {
    let plan = repmgr(5);
    let phase = plan
        .phases
        .iter()
        .find(|p| p.title.contains("the cascaded replicas from quartz"))
        .expect("a phase that clones the cascaded replicas");
    let clones: Vec<&str> = phase
        .steps
        .iter()
        .filter(|s| s.title == "clone from quartz")
        .map(|s| s.node.as_str())
        .collect();
    assert_eq!(clones, ["karma", "quarry", "unison", "kingdom", "quiver"]);
    // The replica is cloned in the same phase: each cascaded replica's lane first waits until
    // the replica's registration has reached it.
    assert!(
        phase
            .steps
            .iter()
            .any(|s| s.node == "quartz" && s.title == "clone from kestrel")
    );
    for node in clones {
        let lane: Vec<&m1studio_shared::plan::Step> =
            phase.steps.iter().filter(|s| s.node == node).collect();
        let wait = lane
            .iter()
            .position(|s| s.title == "quartz is registered")
            .unwrap_or_else(|| panic!("{node} waits for quartz"));
        let clone = lane
            .iter()
            .position(|s| s.title == "clone from quartz")
            .unwrap();
        assert!(wait < clone, "{node}: {lane:?}");
        assert_eq!(wait, 0, "{node} waits before anything else: {lane:?}");
        let Action::After { node: other, title } = &lane[wait].action else {
            panic!("{:?}", lane[wait]);
        };
        // The step it waits for is in the replica's lane of the same phase.
        assert_eq!(other, "quartz");
        assert!(
            phase
                .steps
                .iter()
                .any(|s| s.node == "quartz" && &s.title == title && s.lane.is_none()),
            "{title}"
        );
        assert_eq!(lane.last().unwrap().title, "start sshd and repmgrd");
        // It registers once quartz itself sees it streaming (not catching up), which is what
        // `repmgr standby register` checks.
        let streaming = lane
            .iter()
            .position(|s| s.title == "streaming from quartz")
            .unwrap();
        let register = lane
            .iter()
            .position(|s| s.title == "register the standby with repmgr")
            .unwrap();
        assert!(streaming < register);
        let text = format!("{:?}", lane[streaming].action);
        assert!(
            text.contains("\"-h\", \"quartz\"")
                && text.contains(&format!(
                    "pg_stat_replication WHERE application_name = '{node}' AND state = 'streaming'"
                )),
            "{text}"
        );
    }
    let none = repmgr(0);
    assert!(none.phases.iter().all(|p| !p.title.contains("cascaded")));
    assert!(
        none.phases
            .iter()
            .flat_map(|p| &p.steps)
            .all(|s| s.title != "quartz is registered")
    );
}

#[test]
fn barman_archives_its_first_wal_file_without_waiting_for_the_primary_to_write() {
    // Barman archives a streamed WAL file only once receive-wal has opened the next one: the
    // plan commits a transaction after the switch, and archives before `barman check`.
    for plan in [repmgr(1), patroni(1, false)] {
        let uplift: Vec<&m1studio_shared::plan::Step> = plan
            .phases
            .iter()
            .flat_map(|p| &p.steps)
            .filter(|s| s.node == "uplift")
            .collect();
        let position = |title: &str| {
            uplift
                .iter()
                .position(|s| s.title == title)
                .unwrap_or_else(|| panic!("uplift has no step {title:?}"))
        };
        let close = uplift[position("close the current WAL file")];
        let Action::Run { argv, user, .. } = &close.action else {
            panic!("closing the WAL file is a command: {close:?}");
        };
        assert_eq!(user, "barman");
        let switch = argv.iter().position(|a| a == "SELECT pg_switch_wal()");
        let commit = argv.iter().rposition(|a| a == "SELECT txid_current()");
        assert!(
            matches!((switch, commit), (Some(s), Some(c)) if c > s),
            "a commit follows the switch: {argv:?}"
        );
        assert!(
            position("receive-wal streams from kestrel") < position("close the current WAL file")
        );
        assert!(position("close the current WAL file") < position("archive the closed WAL file"));
        // The backup waits for the archived file in Barman's own lane, and `barman check`
        // runs beside it in a lane of its own, once the file is archived too.
        let lane = |name: Option<&str>| -> Vec<&str> {
            uplift
                .iter()
                .filter(|s| s.lane.as_deref() == name)
                .map(|s| s.title.as_str())
                .collect()
        };
        let main = lane(None);
        let archive = main
            .iter()
            .position(|t| *t == "archive the closed WAL file")
            .unwrap();
        assert_eq!(
            main[archive + 1..],
            [
                "a WAL file is archived",
                "take the first backup",
                "start barman-cron"
            ],
            "{main:?}"
        );
        // receive-wal starts on its own, not from barman cron's first run.
        let streams = main
            .iter()
            .position(|t| *t == "receive-wal streams from kestrel")
            .unwrap();
        assert_eq!(main[streams - 1], "start barman-receive-wal", "{main:?}");
        // Barman's directories exist before any Barman command, so that the backup and the
        // check beside it never race to make one.
        assert_eq!(main[streams - 2], "create Barman's directories", "{main:?}");
        let first_barman = uplift
            .iter()
            .position(|s| match &s.action {
                Action::Run { argv, .. } => argv[0] == "barman",
                Action::Start { service } => service.starts_with("barman"),
                _ => false,
            })
            .unwrap();
        assert!(position("create Barman's directories") < first_barman);
        assert_eq!(
            lane(Some("check")),
            ["a WAL file is archived", "barman check is green"]
        );
    }
    // With repmgr the primary's set-up makes Barman's slot; Barman itself no longer does.
    let plan = repmgr(1);
    let set_up = plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .find(|s| s.title == "create the roles and the repmgr database")
        .expect("the primary's set-up");
    let Action::Run {
        stdin: Some(sql), ..
    } = &set_up.action
    else {
        panic!("the set-up is SQL on psql's input: {set_up:?}");
    };
    assert!(
        sql.contains("pg_create_physical_replication_slot('barman', true)"),
        "{sql}"
    );
    assert!(!full_text(&plan).contains("--create-slot"));
}

#[test]
fn the_witness_is_set_up_exactly_when_the_rule_says() {
    for (n, witness) in [(0, true), (1, false), (2, true), (5, false)] {
        let plan = repmgr(n);
        assert_eq!(
            plan.phases
                .iter()
                .flat_map(|p| &p.steps)
                .any(|s| s.title == "register the witness"),
            witness,
            "n={n}"
        );
    }
}

#[test]
fn only_the_first_replica_may_be_promoted() {
    let plan = repmgr(2);
    let priority = |node: &str| {
        plan.files_of(node)
            .iter()
            .find(|f| f.path == "/etc/repmgr.conf")
            .map(|f| {
                f.content
                    .lines()
                    .find(|l| l.starts_with("priority="))
                    .unwrap_or_default()
                    .to_string()
            })
    };
    assert_eq!(priority("quartz").as_deref(), Some("priority=100"));
    assert_eq!(priority("karma").as_deref(), Some("priority=0"));
    assert_eq!(priority("kestrel").as_deref(), Some("priority=100"));
}

#[test]
fn only_the_standby_that_a_failover_promotes_checks_as_often_as_the_profile_says() {
    for profile in Profile::ALL {
        let plan = plan_for(
            "m1 -a M1 --postgresql 15 --enable-repmgr --platform docker --num-cascaded-replicas 2",
            PlanOptions {
                profile,
                edb_token: false,
            },
        )
        .expect("a plan");
        let interval = |node: &str| -> u32 {
            let conf = plan
                .files_of(node)
                .iter()
                .find(|f| f.path == "/etc/repmgr.conf")
                .map(|f| f.content.clone())
                .unwrap_or_default();
            conf.lines()
                .find_map(|l| l.strip_prefix("monitor_interval_secs="))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{node} has no monitor interval"))
        };
        let (_, _, monitor) = profile.repmgr_timing();
        // The replica, which a failover promotes, watches the primary as often as the profile
        // says; so does the witness on Barman's node, where there is one.
        assert_eq!(interval("quartz"), monitor, "{profile:?}");
        // The primary (no failover waits for its own checks) and the cascaded replicas (never
        // promoted) check every 5 s.
        for node in ["kestrel", "karma", "quarry"] {
            assert_eq!(interval(node), monitor.max(5), "{profile:?} {node}");
        }
    }
}

#[test]
fn the_demo_profile_fails_over_within_ten_seconds() {
    assert!(Profile::Fast.worst_case_failover_secs() <= 10);
    assert!(Profile::Safe.worst_case_failover_secs() >= 60);
    let demo = plan_for(
        "m1 -a M1 --postgresql 15 --enable-repmgr --platform docker",
        PlanOptions {
            profile: Profile::Fast,
            edb_token: false,
        },
    )
    .unwrap();
    let conf = &demo
        .files_of("quartz")
        .iter()
        .find(|f| f.path == "/etc/repmgr.conf")
        .unwrap()
        .content;
    assert!(
        conf.contains("reconnect_attempts=1\nreconnect_interval=1\n"),
        "{conf}"
    );
}

#[test]
fn only_fast_clusters_flush_a_copy_with_one_syncfs_and_write_no_zeros_into_new_wal_files() {
    // A standby's first start from its copy flushes the data directory: the fast profile does
    // it with one syncfs() (Postgres 14 on), the others file by file, Postgres's default. The
    // fast profile also makes a new WAL file without writing 16 MB of zeros into it first.
    let setting = |manager: &str, version: u32, profile: Profile, name: &str| {
        let plan = plan_for(
            &format!(
                "m1 -a M1 --postgresql {version} --failover-manager {manager} --platform docker"
            ),
            PlanOptions {
                profile,
                edb_token: false,
            },
        )
        .unwrap();
        let path = if manager == "patroni" {
            PATRONI_CONFIG
        } else {
            "/etc/m1studio/postgresql.conf"
        };
        let content = &plan
            .files_of("quartz")
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("quartz has {path}"))
            .content;
        content
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .map(|l| l.trim().to_string())
    };
    let sync = "recovery_init_sync_method";
    let zero = "wal_init_zero";
    assert_eq!(
        setting("repmgr", 15, Profile::Fast, sync).as_deref(),
        Some("recovery_init_sync_method = syncfs")
    );
    assert_eq!(
        setting("repmgr", 15, Profile::Fast, zero).as_deref(),
        Some("wal_init_zero = off")
    );
    assert_eq!(
        setting("patroni", 17, Profile::Fast, sync).as_deref(),
        Some("recovery_init_sync_method: syncfs")
    );
    assert_eq!(
        setting("patroni", 17, Profile::Fast, zero).as_deref(),
        Some("wal_init_zero: off")
    );
    for profile in [Profile::Normal, Profile::Safe] {
        for name in [sync, zero] {
            assert_eq!(setting("repmgr", 15, profile, name), None, "{profile:?}");
            assert_eq!(setting("patroni", 15, profile, name), None, "{profile:?}");
        }
    }
    // Postgres 13 has no recovery_init_sync_method, and would refuse to start with it.
    assert_eq!(setting("repmgr", 13, Profile::Fast, sync), None);
    assert_eq!(
        setting("repmgr", 13, Profile::Fast, zero).as_deref(),
        Some("wal_init_zero = off")
    );
}

#[test]
fn pg_hba_allows_only_the_cluster_network_with_scram() {
    let plan = plan_for(
        "m1 -a M1 --postgresql 15 --enable-repmgr --platform docker --network 192.168.40.0/24",
        PlanOptions::default(),
    )
    .unwrap();
    let hba = &plan
        .files_of("kestrel")
        .iter()
        .find(|f| f.path.ends_with("pg_hba.conf"))
        .unwrap()
        .content;
    for line in hba.lines().filter(|l| l.starts_with("host")) {
        assert!(
            line.contains("192.168.40.0/24") && line.ends_with("scram-sha-256"),
            "{line}"
        );
    }
}

#[test]
fn edb_software_without_a_token_stops_before_anything_is_created() {
    for line in [
        "m1 -a M1 --epas 16 --redwood --enable-repmgr --platform docker",
        "m1 -a M1 --postgresql 15 --enable-efm --platform docker",
    ] {
        let problems = plan_for(line, PlanOptions::default()).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|d| d.code == Code::EdbTokenNeeded
                    && d.message.contains("EDB_SUBSCRIPTION_TOKEN")),
            "{problems:?}"
        );
    }
    let with_token = plan_for(
        "m1 -a M1 --epas 16 --redwood --enable-repmgr --platform docker",
        PlanOptions {
            edb_token: true,
            ..PlanOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        with_token.len(),
        1,
        "with a token, only the missing EDB repository is left"
    );
    assert_eq!(with_token[0].code.as_str(), "deploy-unsupported");
}

fn patroni(n: u32, haproxy: bool) -> Plan {
    let line = format!(
        "m1 -a M1 --postgresql 15 --enable-patroni --platform docker --num-cascaded-replicas {n}{}",
        if haproxy { " --enable-haproxy" } else { "" }
    );
    plan_for(&line, PlanOptions::default()).expect("Patroni designs deploy")
}

#[test]
fn patroni_plans_match_the_snapshots() {
    for (n, haproxy) in [(0, false), (1, true), (2, true)] {
        let name = format!(
            "patroni-docker-n{n}{}",
            if haproxy { "-haproxy" } else { "" }
        );
        insta::assert_snapshot!(name, full_text(&patroni(n, haproxy)));
    }
}

#[test]
fn patroni_starts_etcd_and_the_leader_before_any_replica_and_cascades_from_node_two() {
    let plan = patroni(2, true);
    let phase_of = |node: &str, title: &str| {
        plan.phases
            .iter()
            .position(|p| p.steps.iter().any(|s| s.node == node && s.title == title))
            .unwrap_or_else(|| panic!("{node}: {title} is not in the plan"))
    };
    let (invocation, _) = common::parse(
        "m1 -a M1 --postgresql 15 --enable-patroni --platform docker --num-cascaded-replicas 2 --enable-haproxy",
    );
    let topology = configure(&invocation.draft)
        .0
        .expect("a valid design")
        .topology;
    let names =
        |kind: Kind| -> Vec<String> { topology.of_kind(kind).map(|i| i.name.clone()).collect() };
    let leader = &names(Kind::Primary)[0];
    let replica = &names(Kind::Replica)[0];
    let start_leader = phase_of(leader, "start patroni");
    for etcd in names(Kind::Etcd) {
        assert!(phase_of(&etcd, "etcd answers") <= start_leader);
    }
    assert!(phase_of(replica, "start patroni") > start_leader);
    let cascades = names(Kind::CascadedReplica);
    assert_eq!(cascades.len(), 2);
    for cascade in &cascades {
        assert_eq!(
            phase_of(cascade, "start patroni"),
            phase_of(&cascades[0], "start patroni"),
            "the cascaded replicas start together"
        );
        // In the replica's phase, a cascaded replica's lane begins by waiting for the
        // replica to stream.
        let streams = format!("streaming from {leader}");
        let phase = &plan.phases[phase_of(replica, &streams)];
        let lane: Vec<&m1studio_shared::plan::Step> =
            phase.steps.iter().filter(|s| &s.node == cascade).collect();
        assert!(
            matches!(&lane[0].action, Action::After { node, title } if node == replica && *title == streams),
            "{lane:?}"
        );
        assert!(lane.iter().any(|s| s.title == "start patroni"));
        let yml = &plan
            .files_of(cascade)
            .iter()
            .find(|f| f.path == PATRONI_CONFIG)
            .unwrap()
            .content;
        assert!(yml.contains(&format!("replicatefrom: {replica}")), "{yml}");
        assert!(yml.contains("nofailover: true"), "{yml}");
    }
    for proxy in names(Kind::Haproxy) {
        let cfg = &plan
            .files_of(&proxy)
            .iter()
            .find(|f| f.path == "/etc/haproxy/haproxy.cfg")
            .unwrap()
            .content;
        assert!(
            cfg.contains("bind *:5432") && cfg.contains("GET /primary"),
            "{cfg}"
        );
        assert!(
            cfg.contains("bind *:5433") && cfg.contains("GET /replica"),
            "{cfg}"
        );
        assert_eq!(cfg.matches("check port 8008").count(), 2 * 4, "{cfg}");
    }
}

#[test]
fn synchronous_designs_make_commits_wait_for_a_standby() {
    let synchronous = plan_for(
        "m1 -a M1 --postgresql 15 --failover-manager repmgr --platform docker --synchronous-replication",
        PlanOptions::default(),
    )
    .unwrap();
    // The set-up's own commits, and repmgr's metadata, never wait for a standby: there is
    // none while the primary is set up.
    let sql: Vec<&str> = synchronous
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .filter(|s| s.node == "kestrel")
        .filter_map(|s| match &s.action {
            Action::Run {
                stdin: Some(sql), ..
            } => Some(sql.as_str()),
            _ => None,
        })
        .collect();
    // One psql makes every role and the repmgr database.
    assert_eq!(sql.len(), 1, "{sql:?}");
    for made in [
        "CREATE ROLE repmgr",
        "CREATE ROLE barman",
        "CREATE ROLE streaming_barman",
        "ALTER ROLE postgres PASSWORD",
        "CREATE DATABASE repmgr",
    ] {
        assert!(sql[0].contains(made), "{made} is not in {sql:?}");
    }
    for statements in &sql {
        assert!(
            statements.starts_with("SET synchronous_commit = local;\n"),
            "{statements}"
        );
    }
    assert!(
        sql.iter()
            .any(|s| s.contains("ALTER ROLE repmgr SET synchronous_commit = local")),
        "{sql:?}"
    );
    for node in synchronous
        .nodes
        .iter()
        .filter(|n| ["kestrel", "quartz", "karma"].contains(&n.node.as_str()))
    {
        let conf = &node
            .files
            .iter()
            .find(|f| f.path.ends_with("postgresql.conf"))
            .unwrap()
            .content;
        assert!(
            conf.contains(
                "synchronous_standby_names = 'ANY 1 (\"kestrel\", \"quartz\", \"karma\")'"
            ),
            "{conf}"
        );
    }
    let patroni = plan_for(
        "m1 -a M1 --postgresql 15 --enable-patroni --platform docker --synchronous-replication",
        PlanOptions::default(),
    )
    .unwrap();
    let yml = &patroni.nodes[0]
        .files
        .iter()
        .find(|f| f.path == PATRONI_CONFIG)
        .unwrap()
        .content;
    assert!(yml.contains("    synchronous_mode: true\n"), "{yml}");
    assert!(
        !repmgr(1).nodes[0].files[0]
            .content
            .contains("synchronous_standby_names")
    );
}

#[test]
fn patroni_timings_come_from_the_profile_and_keep_barmans_slot() {
    for profile in Profile::ALL {
        let plan = plan_for(
            "m1 -a M1 --postgresql 15 --enable-patroni --platform docker",
            PlanOptions {
                profile,
                edb_token: false,
            },
        )
        .unwrap();
        let (ttl, loop_wait, retry) = profile.patroni_timing();
        let yml = &plan.nodes[0]
            .files
            .iter()
            .find(|f| f.path == PATRONI_CONFIG)
            .unwrap()
            .content;
        for line in [
            format!("ttl: {ttl}\n"),
            format!("loop_wait: {loop_wait}\n"),
            format!("retry_timeout: {retry}\n"),
            "  slots:\n      barman:\n        type: physical\n".to_string(),
        ] {
            assert!(yml.contains(&line), "{line:?} is not in {yml}");
        }
    }
}

#[test]
fn node_images_come_from_debian_suites_with_tags_made_from_the_recipe() {
    let design = |version: u32| {
        let (invocation, _) = common::parse(&format!(
            "m1 -a M1 --postgresql {version} --enable-repmgr --platform docker"
        ));
        configure(&invocation.draft).0.unwrap().design
    };
    let image = m1studio_shared::plan::node_image(&design(15), None).unwrap();
    assert_eq!(image.suite, "bookworm");
    assert!(image.packages.contains(&"postgresql-15-repmgr".to_string()));
    assert!(
        image.tag.starts_with("m1studio-node:bookworm-pg15-"),
        "{}",
        image.tag
    );
    assert_eq!(
        m1studio_shared::plan::node_image(&design(15), None)
            .unwrap()
            .tag,
        image.tag,
        "stable"
    );
    assert_eq!(
        m1studio_shared::plan::node_image(&design(17), None)
            .unwrap()
            .suite,
        "trixie"
    );
    assert_eq!(
        m1studio_shared::plan::node_image(&design(13), None)
            .unwrap()
            .suite,
        "bullseye"
    );
    assert_eq!(
        m1studio_shared::plan::node_image(&design(18), None)
            .unwrap()
            .suite,
        "sid"
    );
    let refused = m1studio_shared::plan::node_image(&design(16), None).unwrap_err();
    assert!(
        refused
            .message
            .contains("PostgreSQL 16 is not in Debian's archive")
            && refused.message.contains("M1STUDIO_PGDG_MIRROR="),
        "{}",
        refused.message
    );
    assert_eq!(refused.path, "postgres_version");
    // Where the PostgreSQL apt repository is reachable, the server packages come from it, on
    // bookworm; the rest still comes from Debian, and the repository is part of the recipe.
    let pgdg = m1studio_shared::plan::node_image(
        &design(16),
        Some("http://apt.postgresql.org/pub/repos/apt/"),
    )
    .unwrap();
    assert_eq!(pgdg.suite, "bookworm");
    let from = pgdg.pgdg.as_ref().unwrap();
    assert_eq!(from.mirror, "http://apt.postgresql.org/pub/repos/apt");
    assert_eq!(from.suite, "bookworm-pgdg");
    assert_eq!(from.packages, ["postgresql-16", "postgresql-16-repmgr"]);
    assert!(pgdg.packages.contains(&"postgresql-common".to_string()));
    assert!(!pgdg.packages.iter().any(|p| p.starts_with("postgresql-16")));
    assert!(
        pgdg.tag.starts_with("m1studio-node:bookworm-pg16-pgdg-"),
        "{}",
        pgdg.tag
    );
    let elsewhere =
        m1studio_shared::plan::node_image(&design(16), Some("http://mirror.example/pgdg")).unwrap();
    assert_ne!(
        elsewhere.tag, pgdg.tag,
        "the repository is part of the recipe"
    );
    // Versions Debian carries keep coming from Debian.
    assert_eq!(
        m1studio_shared::plan::node_image(
            &design(15),
            Some("http://apt.postgresql.org/pub/repos/apt")
        )
        .unwrap(),
        image
    );
}

#[test]
fn every_profile_keeps_patronis_rules_and_orders_the_failover_times() {
    for profile in Profile::ALL {
        let (ttl, loop_wait, retry) = profile.patroni_timing();
        assert!(loop_wait + 2 * retry <= ttl, "{profile:?}");
        assert!(ttl >= 20 && loop_wait >= 1 && retry >= 3, "{profile:?}");
        assert_eq!(Profile::parse(profile.as_str()), Some(profile));
        assert!(
            profile
                .explain(FailoverManager::Patroni)
                .contains(&format!("ttl {ttl} s"))
        );
    }
    for manager in [FailoverManager::Repmgr, FailoverManager::Patroni] {
        let times: Vec<u32> = Profile::ALL
            .iter()
            .map(|p| p.worst_case_failover_secs_for(manager))
            .collect();
        assert!(
            times[0] < times[1] && times[1] < times[2],
            "{manager:?}: {times:?}"
        );
    }
    assert_eq!(Profile::parse("demo"), Some(Profile::Fast));
    assert_eq!(Profile::parse("production"), Some(Profile::Safe));
    assert_eq!(Profile::parse("slow"), None);
}

#[test]
fn containers_start_in_the_order_the_plan_needs_them() {
    // Each node's name and the waves the plan starts them in, for n cascaded replicas.
    let waves_for = |n: u32| {
        let (invocation, _) = common::parse(&format!(
            "m1 -a M1 --postgresql 15 --enable-repmgr --platform docker --num-cascaded-replicas {n}"
        ));
        let configured = configure(&invocation.draft).0.unwrap();
        let waves = repmgr(n).start_order(
            configured
                .topology
                .instances
                .iter()
                .map(|i| i.name.as_str()),
        );
        (configured.topology, waves)
    };
    let (topology, waves) = waves_for(3);
    let names: Vec<&str> = topology.instances.iter().map(|i| i.name.as_str()).collect();
    // The primary alone, then the replica and Barman, then the cascaded replicas.
    assert_eq!(waves.len(), 3, "{waves:?}");
    assert_eq!(waves[0], [names[0]]);
    assert!(waves[1].contains(&names[1].to_string()), "{waves:?}");
    let barman = topology.of_kind(Kind::Barman).next().unwrap();
    assert!(waves[1].contains(&barman.name), "{waves:?}");
    let cascades: Vec<String> = topology
        .of_kind(Kind::CascadedReplica)
        .map(|i| i.name.clone())
        .collect();
    assert_eq!(waves[2], cascades);
    assert_eq!(waves.concat().len(), names.len(), "every node once");
    // The cascaded replicas are cloned in the replica's phase, but first wait for it: they
    // start after the replica and Barman.
    // A witness on the Barman node gets its Postgres beside the primary's.
    let (topology, waves) = waves_for(2);
    let barman = topology.of_kind(Kind::Barman).next().unwrap();
    assert!(barman.has(m1studio_shared::Role::Witness));
    assert_eq!(waves[0], ["kestrel".to_string(), barman.name.clone()]);
}

#[test]
fn every_wait_for_another_lane_names_a_step_of_another_lane_in_its_phase() {
    let plans = [
        repmgr(0),
        repmgr(1),
        repmgr(2),
        repmgr(5),
        patroni(0, false),
        patroni(1, true),
        patroni(2, true),
    ];
    let mut waits = 0;
    for plan in &plans {
        for phase in &plan.phases {
            for step in &phase.steps {
                let Action::After { node, title } = &step.action else {
                    continue;
                };
                waits += 1;
                let target = phase
                    .steps
                    .iter()
                    .find(|s| &s.node == node && &s.title == title)
                    .unwrap_or_else(|| panic!("{step:?} waits for a step not in its phase"));
                assert_ne!(target.lane_key(), step.lane_key(), "{step:?}");
                // The step waited for never waits itself: no lane can wait for a lane that
                // waits for it.
                assert!(
                    phase
                        .steps
                        .iter()
                        .filter(|s| s.lane_key() == target.lane_key())
                        .all(|s| !matches!(s.action, Action::After { .. })),
                    "{target:?}"
                );
            }
        }
    }
    // Cascaded replicas (1 + 2 + 5 with repmgr, 1 + 2 with Patroni) each wait for the replica,
    // and each of the three Patroni primaries for its three etcd members before it turns
    // etcd's password on.
    assert_eq!(waits, 20);
}

#[test]
fn on_existing_hosts_the_plan_keeps_their_own_sshd() {
    let bare = plan_for(
        "m1 -a M1 --postgresql 15 --failover-manager repmgr --platform bare",
        PlanOptions::default(),
    )
    .expect("bare designs deploy");
    let docker = repmgr(1);
    for node in &bare.nodes {
        assert!(
            node.files.iter().all(|f| !f.path.contains("sshd")),
            "{}: {:?}",
            node.node,
            node.files.iter().map(|f| &f.path).collect::<Vec<_>>()
        );
        let key = node
            .files
            .iter()
            .any(|f| f.path.ends_with("/.ssh/authorized_keys"));
        let docker_key = docker
            .nodes
            .iter()
            .find(|n| n.node == node.node)
            .is_some_and(|n| {
                n.files
                    .iter()
                    .any(|f| f.path.ends_with("/.ssh/authorized_keys"))
            });
        assert_eq!(
            key, docker_key,
            "{}: the cluster's key pair is there all the same",
            node.node
        );
    }
    let starts: Vec<String> = bare
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match &s.action {
            Action::Run { argv, .. } if argv.iter().any(|a| a == "start") => Some(argv.join(" ")),
            _ => None,
        })
        .collect();
    assert!(!starts.is_empty());
    assert!(starts.iter().all(|s| !s.contains("sshd")), "{starts:?}");
    assert!(
        docker.phases.iter().flat_map(|p| &p.steps).any(
            |s| matches!(&s.action, Action::Run { argv, .. } if argv.iter().any(|a| a == "sshd"))
        ),
        "containers start a sshd of their own"
    );
}

#[test]
fn each_host_needs_the_packages_of_its_roles() {
    let mut draft = m1studio_shared::Draft::starter();
    draft.platform = Some("bare".into());
    let configured = m1studio_shared::configure(&draft).0.unwrap();
    let of = |name: &str| {
        let instance = configured
            .topology
            .instances
            .iter()
            .find(|i| i.name == name)
            .unwrap();
        m1studio_shared::plan::host_packages(&configured.design, instance)
    };
    assert_eq!(
        of("kestrel"),
        [
            "supervisor",
            "procps",
            "postgresql-15",
            "postgresql-15-repmgr"
        ]
    );
    assert_eq!(
        of("uplift"),
        ["supervisor", "procps", "barman", "barman-cli"]
    );
    draft.failover_manager = Some("patroni".into());
    draft.enable_haproxy = true;
    let configured = m1studio_shared::configure(&draft).0.unwrap();
    let kinds: Vec<(Kind, Vec<String>)> = configured
        .topology
        .instances
        .iter()
        .map(|i| {
            (
                i.kind,
                m1studio_shared::plan::host_packages(&configured.design, i),
            )
        })
        .collect();
    for (kind, packages) in kinds {
        match kind {
            Kind::Etcd => assert!(packages.contains(&"etcd-server".to_string())),
            Kind::Haproxy => assert!(packages.contains(&"haproxy".to_string())),
            k if k.is_postgres() => assert!(packages.contains(&"patroni".to_string())),
            _ => {}
        }
    }
}

#[test]
fn on_existing_hosts_etcd_and_patroni_listen_on_the_host_s_address_and_pg_hba_lists_the_cluster_s()
{
    let mut draft = m1studio_shared::Draft::starter();
    draft.platform = Some("bare".into());
    draft.failover_manager = Some("patroni".into());
    let count = m1studio_shared::configure(&draft)
        .0
        .unwrap()
        .topology
        .instances
        .len();
    draft.addresses = Some((0..count).map(|i| format!("192.0.2.{}", i + 10)).collect());
    let configured = m1studio_shared::configure(&draft)
        .0
        .expect("a bare Patroni design");
    let plan = m1studio_shared::plan::plan(
        &configured.design,
        &configured.topology,
        PlanOptions::default(),
    )
    .unwrap();
    let file = |node: &str, path: &str| -> String {
        plan.files_of(node)
            .iter()
            .find(|f| f.path.contains(path))
            .unwrap_or_else(|| panic!("{node}: no {path}"))
            .content
            .clone()
    };
    let address = |name: &str| {
        configured
            .topology
            .instances
            .iter()
            .find(|i| i.name == name)
            .and_then(|i| i.ip_address)
            .unwrap()
            .to_string()
    };
    let patroni = file("kestrel", "patroni");
    assert!(
        patroni.contains(&format!("listen: {}:8008", address("kestrel"))),
        "{patroni}"
    );
    assert!(!patroni.contains("samenet") && !patroni.contains("0.0.0.0:8008"));
    for instance in &configured.topology.instances {
        assert!(
            patroni.contains(&format!(
                "host all all {}/32 scram-sha-256",
                address(&instance.name)
            )),
            "{}: {patroni}",
            instance.name
        );
    }
    let etcd = configured
        .topology
        .instances
        .iter()
        .find(|i| i.kind == m1studio_shared::Kind::Etcd)
        .unwrap();
    let service = file(&etcd.name, "etcd");
    let own = address(&etcd.name);
    assert!(
        service.contains(&format!("--listen-peer-urls http://{own}:2380"))
            && service.contains(&format!(
                "--listen-client-urls http://{own}:2379,http://127.0.0.1:2379"
            )),
        "{service}"
    );
    assert!(!service.contains("0.0.0.0"), "{service}");
}
