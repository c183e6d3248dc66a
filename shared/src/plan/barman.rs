//! Barman's part of the plan: its directories, streaming and the first backup (with its check
//! beside it), barman cron, its supervisord programs and server file, and the plan that points
//! Barman at a new primary.

use super::*;

/// Barman's steps on node `b` for server `server`, once WAL streams from `primary`: a closed
/// WAL file that it archives, `barman check` green, and a backup titled `backup_title`.
pub(super) fn barman_backup(b: &str, server: &str, primary: &str, backup_title: &str) -> Vec<Step> {
    let mut steps = barman_close_wal(b, server, primary);
    steps.extend(barman_first_backup(b, server, backup_title));
    steps
}

/// Waits on the Barman node until receive-wal streams from `primary`, as the primary sees it.
/// A WAL switch before that would close a file that receive-wal, starting at the current
/// position, never receives.
pub(super) fn barman_streaming(b: &str, primary: &str) -> Step {
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
pub(super) fn rows_exist(
    node: &str,
    title: &str,
    user: &str,
    connection: &[&str],
    rows: &str,
) -> Step {
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
/// gets WAL streaming and the first backup going, then every two minutes. Each run is a Python
/// start of about a third of a second of CPU: every 15 s for ever was a third of an idle
/// cluster's CPU, and every minute (Debian's cron.d) still a sixth. receive-wal streams all the
/// while; cron only restarts it should it stop, and archives the files it finished. Drills that
/// move Barman run it themselves.
pub(super) const BARMAN_CRON: &str = "#!/bin/sh
# Runs barman cron (Barman's maintenance and WAL streaming): every 15 seconds for two minutes
# after it starts, then every two minutes. Deployments do not wait for it:
# they start receive-wal and archive the first WAL file themselves, and backup --wait archives
# too; pointing Barman at a new primary runs it at once.
runs=0
while true; do
    /usr/bin/barman -q cron
    if [ \"$runs\" -lt 8 ]; then
        runs=$((runs + 1))
        sleep 15
    else
        sleep 120
    fi
done
";

/// Closes the primary's current WAL file and archives it on the Barman node `b`, so that
/// `barman check` finds an archived file. Barman archives a streamed file only once receive-wal
/// has opened the next one, and an idle primary writes nothing for up to 15 s after a switch
/// (`barman switch-wal --archive` waited that long): a transaction is committed after the
/// switch, so that the next file opens at once. If the archive runs before it has, the wait
/// for an archived file archives it again at each try.
pub(super) fn barman_close_wal(b: &str, server: &str, primary: &str) -> Vec<Step> {
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
pub(super) fn barman_stream_and_back_up(b: &str, primary: &str) -> Vec<Step> {
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
pub(super) fn barman_directories(b: &str, server: &str) -> Step {
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
pub(super) fn barman_server_directory(server: &str) -> String {
    format!("/var/lib/barman/{server}")
}

/// Barman's first backup of `server` on node `b`, once a WAL file is archived, and `barman
/// check` beside it. `barman backup` runs Barman's checks itself and refuses to start if one
/// fails (the archived WAL file is one); `barman check` shows them to people.
pub(super) fn barman_first_backup_beside_check(b: &str, server: &str) -> Vec<Step> {
    let mut steps = vec![
        wal_archived(b, server),
        run(
            b,
            "take the first backup",
            "barman",
            &["barman", "backup", "--wait", server],
        )
        .within(COPY_LIMIT_SECS),
    ];
    steps.extend(in_lane(
        "check",
        vec![wal_archived(b, server), barman_check(b, server)],
    ));
    steps
}

/// Archives what receive-wal has closed for the server named by its argument, then succeeds
/// once a WAL file is in the server's catalogue: `xlog.db` in its WAL directory, named
/// `SERVER-xlog.db` from Barman 3.13 on. Barman archives a streamed file only once receive-wal
/// has opened the next one, so a single `barman archive-wal` can come too early; barman cron,
/// which would archive it later, starts only after the first backup.
pub(super) const WAL_ARCHIVED: &str = "#!/bin/sh
# Archives the WAL files that receive-wal has closed for the Barman server named by $1, then
# succeeds once one is in the server's catalogue.
set -e
wals=\"/var/lib/barman/$1/wals\"
/usr/bin/barman -q archive-wal \"$1\"
test -s \"$wals/xlog.db\" -o -s \"$wals/$1-xlog.db\"
";

/// Where the plan writes [`WAL_ARCHIVED`] on the Barman node.
pub(super) const WAL_ARCHIVED_PATH: &str = "/usr/local/bin/m1studio-wal-archived";

/// Waits on the Barman node `b` until a WAL file of `server` is in Barman's catalogue,
/// archiving what receive-wal has closed at each try. It waits up to 120 s: on a busy machine
/// (a room deploying at once, the `safe` profile's flushes), a minute was seen to pass before
/// the first file was.
pub(super) fn wal_archived(b: &str, server: &str) -> Step {
    wait(
        b,
        "a WAL file is archived",
        Readiness::CommandSucceeds {
            argv: argv(&[WAL_ARCHIVED_PATH, server]),
            user: "barman".into(),
        },
        120,
    )
}

/// Waits until `barman check` is green for `server`.
pub(super) fn barman_check(b: &str, server: &str) -> Step {
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
pub(super) fn barman_first_backup(b: &str, server: &str, backup_title: &str) -> Vec<Step> {
    vec![
        barman_check(b, server),
        run(
            b,
            backup_title,
            "barman",
            &["barman", "backup", "--wait", server],
        )
        .within(COPY_LIMIT_SECS),
    ]
}

/// A supervisord program of Barman's, run as barman, started only when asked for, logging to
/// `/var/log/barman/LOG.log`.
pub(super) fn barman_program(name: &str, command: &str, autorestart: bool, log: &str) -> String {
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
        networks: Vec::new(),
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
