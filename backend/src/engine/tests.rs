//! The engine against a recording executor.

use super::*;
use m1studio_shared::plan::{PlanOptions, Step, plan};
use m1studio_shared::{Draft, configure};
use std::sync::Mutex;

/// Records what it is asked to do, and answers every check as ready: except a command
/// containing `fail_on`, which fails once the other lanes have had their turn, and one
/// containing `hang_on`, which never ends.
#[derive(Default)]
struct Recording {
    log: Mutex<Vec<String>>,
    fail_on: Option<&'static str>,
    hang_on: Option<&'static str>,
}

impl Recording {
    /// Whether no command containing `word` ran.
    fn never_ran(&self, word: &str) -> bool {
        self.log.lock().unwrap().iter().all(|l| !l.contains(word))
    }
}

impl Executor for Recording {
    async fn write_files(&self, node: &str, files: &[File]) -> Result<()> {
        for f in files {
            self.log
                .lock()
                .unwrap()
                .push(format!("{node} write {} {}", f.path, f.content.len()));
            assert!(
                !f.content.contains("${secret:"),
                "secrets are filled in before writing"
            );
        }
        Ok(())
    }

    async fn run(
        &self,
        node: &str,
        argv: &[String],
        user: &str,
        stdin: Option<&str>,
    ) -> Result<Output> {
        // The command as the plan gives it, without the node's `timeout` that the engine puts
        // before it (its own test checks that).
        let argv = match argv {
            [timeout, k, _, _, command @ ..] if timeout == "timeout" && k == "-k" => command,
            command => command,
        };
        let line = format!(
            "{node} {user}: {}{}",
            argv.join(" "),
            stdin.map(|s| format!(" <<< {s}")).unwrap_or_default()
        );
        self.log.lock().unwrap().push(line.clone());
        if self.hang_on.is_some_and(|h| line.contains(h)) {
            std::future::pending::<()>().await;
        }
        let code = i64::from(self.fail_on.is_some_and(|f| line.contains(f)));
        if code != 0 {
            // Fails after the other lanes have had their turn, as a real command would.
            tokio::task::yield_now().await;
        }
        let stdout = if argv.iter().any(|a| a.contains("pg_stat_wal_receiver")) {
            "streaming"
        } else if argv.iter().any(|a| a.contains("barman_receive_wal")) {
            "1"
        } else {
            ""
        };
        Ok(Output {
            code,
            stdout: stdout.into(),
            stderr: if code == 0 {
                String::new()
            } else {
                "boom".into()
            },
        })
    }

    async fn start(&self, node: &str, service: &str) -> Result<()> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{node} start {service}"));
        Ok(())
    }
}

fn starter_plan() -> Plan {
    let configured = configure(&Draft::starter()).0.unwrap();
    plan(
        &configured.design,
        &configured.topology,
        PlanOptions::default(),
    )
    .unwrap()
}

#[test]
fn scram_verifiers_are_the_ones_postgres_makes() {
    // Made by Postgres 15: CREATE ROLE … PASSWORD 'pencil-7f3a', then pg_authid.rolpassword.
    let postgres = "SCRAM-SHA-256$4096:3msE7izSLWSv/T8y4kDnBg==$Zih/P0wfNoyt/c7L/ZJDywZ+GIuAbCRwliGSABDw93Q=:pv7ztEfHw/JMw2DE93YC6uSyRkRFM7nw5//KBe5wQSA=";
    use base64::Engine as _;
    let salt = base64::engine::general_purpose::STANDARD
        .decode("3msE7izSLWSv/T8y4kDnBg==")
        .unwrap();
    assert_eq!(scram_verifier("pencil-7f3a", &salt, 4096), postgres);
    assert_ne!(scram_verifier("pencil-7f3b", &salt, 4096), postgres);
}

#[test]
fn each_password_gets_a_verifier_of_its_own_and_logs_hide_both() {
    let secrets = Secrets::generate().unwrap();
    let (repmgr, barman) = (
        secrets.fill("${scram:repmgr}"),
        secrets.fill("${scram:barman}"),
    );
    assert!(repmgr.starts_with(&format!("SCRAM-SHA-256${SCRAM_ITERATIONS}:")));
    assert_ne!(repmgr, barman);
    let line = format!(
        "CREATE ROLE repmgr PASSWORD '{repmgr}' -- {}",
        secrets.fill("${secret:repmgr}")
    );
    assert_eq!(
        secrets.hide(&line),
        "CREATE ROLE repmgr PASSWORD '***' -- ***"
    );
}

#[tokio::test]
async fn a_plan_runs_in_order_with_secrets_filled_in_and_hidden_from_events() {
    let executor = Recording::default();
    let secrets = Secrets::generate().unwrap();
    let events = Mutex::new(Vec::new());
    run_plan(&executor, &starter_plan(), &secrets, &|e| {
        events.lock().unwrap().push(e)
    })
    .await
    .unwrap();
    let log = executor.log.lock().unwrap().join("\n");
    let repmgr = secrets.fill("${secret:repmgr}");
    assert_eq!(repmgr.len(), 36);
    let verifier = secrets.fill("${scram:repmgr}");
    assert!(verifier.starts_with("SCRAM-SHA-256$16:"), "{verifier}");
    assert!(
        log.contains(&format!("PASSWORD '{verifier}'")),
        "the executor gets the password's verifier"
    );
    assert!(!log.contains(&format!("PASSWORD '{repmgr}'")));
    let init = log
        .find("kestrel postgres: /usr/lib/postgresql/15/bin/initdb")
        .unwrap();
    let clone = log
        .find("quartz postgres: repmgr -f /etc/repmgr.conf -h kestrel")
        .unwrap();
    let cascade = log
        .find("karma postgres: repmgr -f /etc/repmgr.conf -h quartz")
        .unwrap();
    let registered = log
        .find("quartz postgres: timeout 60 sh -c until \"$@\" >/dev/null 2>&1; do sleep 0.2; done wait psql -XAtq -d repmgr")
        .unwrap();
    let backup = log
        .find("uplift barman: barman backup --wait kestrel")
        .unwrap();
    assert!(
        init < clone && clone < registered && registered < cascade && init < backup,
        "{log}"
    );
    let events = events.lock().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Phase { .. }))
            .count(),
        3
    );
    assert!(
        format!("{events:?}").find(&repmgr).is_none(),
        "events never carry a password"
    );
}

#[test]
fn waits_poll_inside_the_node_with_their_sql_and_commands_as_parameters() {
    let sql = "SELECT status FROM pg_stat_wal_receiver WHERE x = '$(reboot)'";
    let (command, user) = wait_command(
        &Readiness::Query {
            sql: sql.into(),
            expect: "streaming".into(),
        },
        60,
    );
    assert_eq!(user, "postgres");
    assert_eq!(command[..4], ["timeout", "60", "sh", "-c"]);
    assert!(!command[4].contains("pg_stat_wal_receiver"), "{command:?}");
    assert_eq!(command[5..], ["wait", sql, "streaming"]);
    let (command, user) = wait_command(
        &Readiness::CommandSucceeds {
            argv: argv(&["barman", "check", "kestrel"]),
            user: "barman".into(),
        },
        120,
    );
    assert_eq!(user, "barman");
    assert_eq!(command[1], "120");
    assert_eq!(command[5..], ["wait", "barman", "check", "kestrel"]);
}

/// A plan of one phase with the steps `(node, title, action)`.
fn one_phase(steps: Vec<(&str, &str, Action)>) -> Plan {
    Plan {
        cluster: "m1".into(),
        nodes: Vec::new(),
        phases: vec![Phase {
            title: "the phase".into(),
            steps: steps
                .into_iter()
                .map(|(node, title, action)| Step {
                    node: node.into(),
                    title: title.into(),
                    action,
                    lane: None,
                    timeout_secs: None,
                })
                .collect(),
        }],
    }
}

fn command(word: &str) -> Action {
    Action::Run {
        argv: vec![word.into()],
        user: "postgres".into(),
        stdin: None,
    }
}

/// uplift waits for quartz's step "get ready", then clones; quartz starts.
fn follows_quartz() -> Vec<(&'static str, &'static str, Action)> {
    vec![
        (
            "uplift",
            "quartz is ready",
            Action::After {
                node: "quartz".into(),
                title: "get ready".into(),
            },
        ),
        ("uplift", "clone", command("clone")),
        ("quartz", "start", command("start")),
    ]
}

#[tokio::test]
async fn a_lane_that_follows_another_nodes_step_runs_after_it() {
    // uplift's lane is listed, and so polled, first: it must still wait for quartz.
    let mut steps = follows_quartz();
    steps.push(("quartz", "get ready", command("ready")));
    let plan = one_phase(steps);
    let executor = Recording::default();
    let events = Mutex::new(Vec::new());
    run_plan(&executor, &plan, &Secrets::generate().unwrap(), &|e| {
        events.lock().unwrap().push(e)
    })
    .await
    .unwrap();
    assert_eq!(
        *executor.log.lock().unwrap(),
        [
            "quartz postgres: start",
            "quartz postgres: ready",
            "uplift postgres: clone"
        ]
    );
    assert!(events.lock().unwrap().iter().any(|e| matches!(
        e,
        Event::Finished { node, title, .. } if node == "uplift" && title == "quartz is ready"
    )));
}

#[tokio::test]
async fn following_a_step_that_is_not_in_the_phase_fails_at_once() {
    let plan = one_phase(follows_quartz());
    let executor = Recording::default();
    let err = run_plan(&executor, &plan, &Secrets::generate().unwrap(), &|_| {})
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("uplift: quartz is ready") && message.contains("\"get ready\" on quartz"),
        "{message}"
    );
    assert!(executor.never_ran("clone"));
}

#[tokio::test]
async fn a_failed_lane_stops_its_phase_without_waiting_for_the_other_lanes() {
    // Barman's wait for an archived WAL file never ends here, as a wait does not while
    // its node is stuck; the replica's failed clone must still stop the plan at once.
    let executor = Recording {
        fail_on: Some("quartz postgres: repmgr -f /etc/repmgr.conf -h kestrel"),
        hang_on: Some("uplift barman: timeout 120 sh -c"),
        ..Recording::default()
    };
    let secrets = Secrets::generate().unwrap();
    let plan = starter_plan();
    let events = Mutex::new(Vec::new());
    let record = |e| events.lock().unwrap().push(e);
    let run = run_plan(&executor, &plan, &secrets, &record);
    let err = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("the plan stops instead of waiting for the hung lane")
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("phase 3") && message.contains("quartz: clone from kestrel"),
        "{message}"
    );
    let log = executor.log.lock().unwrap();
    assert!(
        log.iter().all(|l| !l.contains("karma postgres: repmgr")),
        "the cascaded replica, which follows the replica, never clones: {log:?}"
    );
    // The stopped steps are reported as such, before the failure that stopped them, so
    // that the last failure is the cause.
    let failures: Vec<(String, String, String)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Failed {
                node,
                title,
                reason,
            } => Some((node.clone(), title.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    let (node, title, _) = failures.last().unwrap();
    assert_eq!(
        (node.as_str(), title.as_str()),
        ("quartz", "clone from kestrel")
    );
    for stopped in ["a WAL file is archived", "quartz is registered"] {
        assert!(
            failures.iter().any(|(_, t, reason)| t == stopped
                && reason == "stopped: clone from kestrel failed on quartz"),
            "{failures:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_step_stops_the_plan_and_hides_passwords_in_the_reason() {
    let executor = Recording {
        fail_on: Some("CREATE ROLE barman"),
        ..Recording::default()
    };
    let secrets = Secrets::generate().unwrap();
    let events = Mutex::new(Vec::new());
    let err = run_plan(&executor, &starter_plan(), &secrets, &|e| {
        events.lock().unwrap().push(e)
    })
    .await
    .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("phase 2"), "{message}");
    assert!(
        !message.contains(&secrets.fill("${secret:barman}")),
        "{message}"
    );
    assert!(
        executor.never_ran("standby clone"),
        "nothing after the failure"
    );
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::Failed { node, .. } if node == "kestrel"))
    );
}

/// Answers every wait as timed out, with a last check that printed `said`.
struct NeverReady {
    said: String,
}

impl Executor for NeverReady {
    async fn write_files(&self, _: &str, _: &[File]) -> Result<()> {
        Ok(())
    }

    async fn run(&self, _: &str, _: &[String], _: &str, _: Option<&str>) -> Result<Output> {
        panic!("a wait goes through Executor::wait")
    }

    async fn start(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }

    async fn wait(&self, _: &str, _: &Readiness, _: u32) -> Result<Output> {
        Ok(Output {
            code: 124,
            stdout: String::new(),
            stderr: self.said.clone(),
        })
    }
}

#[tokio::test]
async fn a_wait_that_times_out_says_what_its_last_check_said_without_passwords() {
    let secrets = Secrets::generate().unwrap();
    let password = secrets.fill("${secret:barman}");
    let executor = NeverReady {
        said: format!("ERROR: barman.ssh: FAILED\npassword {password} was refused\n"),
    };
    let until = Action::Wait {
        until: Readiness::CommandSucceeds {
            argv: argv(&["barman", "check", "kestrel"]),
            user: "barman".into(),
        },
        timeout_secs: 120,
    };
    let plan = one_phase(vec![("quill", "barman check is green", until)]);
    let err = run_plan(&executor, &plan, &secrets, &|_| {})
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("still not ready after 120 s"), "{message}");
    assert!(message.contains("the last check said:"), "{message}");
    assert!(message.contains("barman.ssh: FAILED"), "{message}");
    assert!(!message.contains(&password), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_step_past_its_limit_is_stopped_on_its_node_and_fails_the_plan() {
    let executor = Recording {
        hang_on: Some("never-ends"),
        ..Recording::default()
    };
    let plan = one_phase(vec![
        ("quartz", "hangs", command("never-ends")),
        ("quartz", "after it", command("next")),
    ]);
    let started = tokio::time::Instant::now();
    let err = run_plan(&executor, &plan, &Secrets::generate().unwrap(), &|_| {})
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("quartz: hangs") && message.contains("did not finish within 300 s"),
        "{message}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(300) && waited < Duration::from_secs(400),
        "stopped at its limit, on the runtime's clock: {waited:?}"
    );
    assert!(executor.never_ran("next"));
}

#[test]
fn commands_run_under_the_node_s_timeout_and_copies_get_hours() {
    assert_eq!(
        limited(argv(&["barman", "backup"]), Some(14400)),
        argv(&["timeout", "-k", "10", "14400", "barman", "backup"])
    );
    assert_eq!(limited(argv(&["true"]), None), argv(&["true"]));
    let plan = starter_plan();
    let limit_of = |title: &str| {
        plan.phases
            .iter()
            .flat_map(|p| &p.steps)
            .find(|s| s.title == title)
            .and_then(Step::time_limit)
    };
    assert_eq!(
        limit_of("take the first backup"),
        Some(m1studio_shared::plan::COPY_LIMIT_SECS)
    );
    assert_eq!(
        limit_of("clone from kestrel"),
        Some(m1studio_shared::plan::COPY_LIMIT_SECS)
    );
    assert_eq!(
        limit_of("write configuration files"),
        Some(m1studio_shared::plan::QUICK_LIMIT_SECS)
    );
}
