//! The agent: one long-lived process in each node's container that runs the commands of the
//! plan, and of status and drills, sent to it as JSON lines over one `docker exec`. A command
//! then costs a process start in the container, where a `docker exec` of its own costs about
//! 60 ms of CPU in Docker's daemons and runc (measured on a 2-core machine), with many of them
//! per deployment. The agent is a Python program using only the standard library: every node
//! image has Python, for supervisord and Barman.

use crate::engine::Output;
use crate::engine::argv;
use crate::lock;
use anyhow::{Context as _, Result, bail};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::{Stream, StreamExt as _};
use m1studio_shared::plan::{PGDATA, Readiness, SERVICE_COMMAND};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::oneshot;

/// The agent's program.
pub(crate) const PROGRAM: &str = include_str!("agent.py");

/// The protocol the agent must speak: its first line says which it does.
const PROTOCOL: u64 = 1;

/// The agent's first line.
#[derive(Deserialize)]
struct Hello {
    agent: String,
    protocol: u64,
}

/// The command that runs the agent: Python without site packages or user settings.
const COMMAND: [&str; 6] = ["python3", "-I", "-S", "-u", "-c", PROGRAM];

/// A command for the agent.
#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    argv: &'a [String],
    user: &'a str,
    stdin: Option<&'a str>,
    /// `argv[0]` is a Python program whose `main(argv, out, err)` the agent calls itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    inline: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat: Option<&'a Repeat>,
}

/// How the agent repeats a command until it succeeds, itself: no shell loop and no `sleep`
/// process between two checks, and no check at all while a file says it cannot succeed yet.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub(crate) struct Repeat {
    /// Seconds between the end of one run and the next.
    pub every: f64,
    /// Seconds until the agent gives up and answers 124, as `timeout` does.
    pub timeout: f64,
    /// The output (stripped) that counts as success, besides exit code 0.
    pub expect: Option<String>,
    /// A file that must exist before the command runs at all (an empty command then succeeds
    /// as soon as it does).
    pub file: Option<String>,
    /// The statuses, in the eighth line of `file` (a `postmaster.pid`), in which the command
    /// can succeed: Postgres writes `ready` or `standby` there once it accepts connections.
    pub status: Option<Vec<String>>,
}

impl Repeat {
    /// A run every `every` seconds for at most `timeout` seconds, with no expected output and
    /// no file to wait for.
    pub(crate) fn every(every: f64, timeout: f64) -> Repeat {
        Repeat {
            every,
            timeout,
            expect: None,
            file: None,
            status: None,
        }
    }
}

/// The check the agent repeats for `until`, its user, and how it repeats it.
pub(crate) fn check_of(until: &Readiness, timeout_secs: u32) -> (Vec<String>, String, Repeat) {
    let repeat = |every: f64| Repeat::every(every, f64::from(timeout_secs));
    match until {
        // Postgres writes its status into postmaster.pid, as `pg_ctl start --wait` reads it;
        // one pg_isready then confirms that the status is not a killed server's.
        Readiness::PostgresReady => (
            argv(&["pg_isready", "-q", "-h", "/var/run/postgresql"]),
            "postgres".to_string(),
            Repeat {
                file: Some(format!("{PGDATA}/postmaster.pid")),
                status: Some(vec!["ready".to_string(), "standby".to_string()]),
                ..repeat(0.02)
            },
        ),
        Readiness::Query { sql, expect } => (
            argv(&["psql", "-XAt", "-d", "postgres", "-c", sql]),
            "postgres".to_string(),
            Repeat {
                expect: Some(expect.clone()),
                ..repeat(0.05)
            },
        ),
        Readiness::CommandSucceeds { argv, user } => (argv.clone(), user.clone(), repeat(0.2)),
    }
}

/// A command's end, from the agent.
#[derive(Deserialize)]
struct Reply {
    id: u64,
    code: i64,
    stdout: String,
    stderr: String,
}

/// Whether the agent's first line is a m1studio agent speaking `PROTOCOL`, or why not.
fn greeting(line: &[u8]) -> std::result::Result<(), String> {
    match serde_json::from_slice::<Hello>(line) {
        Ok(hello) if hello.agent == "m1studio" && hello.protocol == PROTOCOL => Ok(()),
        Ok(hello) => Err(format!(
            "its agent speaks protocol {} of {}, and this m1studio speaks protocol {PROTOCOL}: run the same version on both ends",
            hello.protocol, hello.agent
        )),
        Err(_) => Err(format!(
            "what answered is not m1studio's agent (its first line is not the agent's greeting, protocol {PROTOCOL}): is something printing on login there?"
        )),
    }
}

/// Hands `reply` to the command waiting for it.
fn answer(waiting: &Waiting, reply: Reply) {
    let sender = lock(waiting)
        .as_mut()
        .and_then(|waiting| waiting.remove(&reply.id));
    if let Some(sender) = sender {
        let _ = sender.send(Output {
            code: reply.code,
            stdout: reply.stdout,
            stderr: reply.stderr,
        });
    }
}

/// Why a command did not come back.
pub(crate) enum Failure {
    /// The agent had already stopped: the command never reached it.
    NotSent,
    /// The agent stopped while the command ran (its container stopped or was killed).
    Lost,
    /// The agent is not one this runner talks to: why.
    Incompatible(String),
}

/// The commands sent and not yet answered, by id; `None` once the agent has stopped.
type Waiting = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Output>>>>>;

/// One container's agent.
pub(crate) struct Agent {
    /// Its input, until it is closed.
    input: tokio::sync::Mutex<Option<Pin<Box<dyn AsyncWrite + Send>>>>,
    waiting: Waiting,
    next: AtomicU64,
    /// Why its first line was refused, if it was.
    refused: Arc<Mutex<Option<String>>>,
}

impl Agent {
    /// Starts the agent in the running container `container`.
    pub(crate) async fn start(docker: &Docker, container: &str) -> Result<Arc<Agent>> {
        let exec = docker
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(COMMAND.map(String::from).to_vec()),
                    user: Some("root".to_string()),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    working_dir: Some("/".to_string()),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("starting m1studio's agent in {container}"))?;
        match docker
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .with_context(|| format!("starting m1studio's agent in {container}"))?
        {
            StartExecResults::Attached { output, input } => {
                Ok(Agent::over(container, output, input))
            }
            StartExecResults::Detached => bail!("m1studio's agent in {container} started detached"),
        }
    }

    /// The agent `name` run by a local process (an `ssh`): it reads commands from `input` and
    /// answers on `output`, the process's own.
    pub(crate) fn over_process(
        name: &str,
        output: impl tokio::io::AsyncRead + Send + Unpin + 'static,
        input: Pin<Box<dyn AsyncWrite + Send>>,
    ) -> Arc<Agent> {
        let output = tokio_util::io::ReaderStream::new(output)
            .map(|read| read.map(|message| LogOutput::StdOut { message }));
        Agent::over(name, output, input)
    }

    /// The agent `name` that reads commands from `input` and answers on `output`.
    fn over<E: std::fmt::Display>(
        name: &str,
        mut output: impl Stream<Item = std::result::Result<LogOutput, E>> + Send + Unpin + 'static,
        input: Pin<Box<dyn AsyncWrite + Send>>,
    ) -> Arc<Agent> {
        let waiting: Waiting = Arc::new(Mutex::new(Some(HashMap::new())));
        let answers = waiting.clone();
        let refused = Arc::new(Mutex::new(None));
        let refusal = refused.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let mut pending = Vec::new();
            let mut greeted = false;
            'reading: while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(LogOutput::StdOut { message }) => {
                        pending.extend_from_slice(&message);
                        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=end).collect();
                            if !greeted {
                                if let Err(why) = greeting(&line) {
                                    *lock(&refusal) = Some(why);
                                    break 'reading;
                                }
                                greeted = true;
                                continue;
                            }
                            match serde_json::from_slice::<Reply>(&line) {
                                Ok(reply) => answer(&answers, reply),
                                // Only where, never what: an answer carries a command's output.
                                Err(e) => tracing::warn!(
                                    agent = %name,
                                    "an unreadable answer ({:?} at column {})",
                                    e.classify(),
                                    e.column()
                                ),
                            }
                        }
                    }
                    Ok(LogOutput::StdErr { message }) => tracing::warn!(
                        agent = %name,
                        "{}",
                        String::from_utf8_lossy(&message).trim_end()
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(agent = %name, "its output broke off: {e}");
                        break;
                    }
                }
            }
            // Every command still waiting gets `Failure::Lost`, and later ones `NotSent`.
            lock(&answers).take();
        });
        Arc::new(Agent {
            input: tokio::sync::Mutex::new(Some(input)),
            waiting,
            next: AtomicU64::new(0),
            refused,
        })
    }

    /// Ends the agent's input: it exits once the commands it runs have ended. Commands sent
    /// after this are `Failure::NotSent`.
    pub(crate) fn close(self: &Arc<Self>) {
        let agent = self.clone();
        tokio::spawn(async move {
            if let Some(mut input) = agent.input.lock().await.take() {
                let _ = input.shutdown().await;
            }
        });
    }

    /// Whether the agent still runs, as far as its output says.
    pub(crate) fn alive(&self) -> bool {
        lock(&self.waiting).is_some()
    }

    /// Runs `argv` as `user`, with `stdin` as its input, and waits for its end.
    pub(crate) async fn run(
        &self,
        argv: &[String],
        user: &str,
        stdin: Option<&str>,
    ) -> std::result::Result<Output, Failure> {
        self.send(argv, user, stdin, false, None).await
    }

    /// Runs `argv` as `user` with `stdin` as its input; the plan's service program, run as
    /// root without input, is called inside the agent instead: no Python start for it.
    pub(crate) async fn command(
        &self,
        argv: &[String],
        user: &str,
        stdin: Option<&str>,
    ) -> std::result::Result<Output, Failure> {
        if argv.first().is_some_and(|a| a == SERVICE_COMMAND) && user == "root" && stdin.is_none() {
            self.call(argv).await
        } else {
            self.run(argv, user, stdin).await
        }
    }

    /// Calls the `main(argv, out, err)` of the Python program `argv[0]` inside the agent, as
    /// root: the program's start is saved. A missing program exits with 127.
    pub(crate) async fn call(&self, argv: &[String]) -> std::result::Result<Output, Failure> {
        self.send(argv, "root", None, true, None).await
    }

    /// Runs `argv` as `user` as `repeat` says, until it succeeds or times out (exit code 124,
    /// with the last run's output).
    pub(crate) async fn repeat(
        &self,
        argv: &[String],
        user: &str,
        repeat: &Repeat,
    ) -> std::result::Result<Output, Failure> {
        self.send(argv, user, None, false, Some(repeat)).await
    }

    async fn send(
        &self,
        argv: &[String],
        user: &str,
        stdin: Option<&str>,
        inline: bool,
        repeat: Option<&Repeat>,
    ) -> std::result::Result<Output, Failure> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut line = serde_json::to_vec(&Request {
            id,
            argv,
            user,
            stdin,
            inline,
            repeat,
        })
        .map_err(|_| Failure::NotSent)?;
        line.push(b'\n');
        let (sender, answer) = oneshot::channel();
        match lock(&self.waiting).as_mut() {
            Some(waiting) => waiting.insert(id, sender),
            None => return Err(self.failure(Failure::NotSent)),
        };
        let sent = match self.input.lock().await.as_mut() {
            Some(input) => match input.write_all(&line).await {
                Ok(()) => input.flush().await.is_ok(),
                Err(_) => false,
            },
            None => false,
        };
        if !sent {
            if let Some(waiting) = lock(&self.waiting).as_mut() {
                waiting.remove(&id);
            }
            return Err(self.failure(Failure::NotSent));
        }
        answer.await.map_err(|_| self.failure(Failure::Lost))
    }

    /// `failure`, unless the agent was refused: then why.
    fn failure(&self, failure: Failure) -> Failure {
        match lock(&self.refused).clone() {
            Some(why) => Failure::Incompatible(why),
            None => failure,
        }
    }
}

impl Drop for Agent {
    /// An agent nobody holds any more is closed, so that its program exits too.
    fn drop(&mut self) {
        if let (Some(mut input), Ok(runtime)) = (
            self.input.get_mut().take(),
            tokio::runtime::Handle::try_current(),
        ) {
            runtime.spawn(async move {
                let _ = input.shutdown().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::argv;
    use tokio::process::{Child, Command};

    /// The agent's program run by this machine's Python, as a container's would run it.
    fn local() -> (Arc<Agent>, Child) {
        let mut child = Command::new(COMMAND[0])
            .args(&COMMAND[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the agent (Debian's python3 package)");
        let output = child.stdout.take().unwrap();
        let input = Box::pin(child.stdin.take().unwrap());
        (Agent::over_process("local", output, input), child)
    }

    /// The answer to `sent`, a command of `argv`.
    fn answered(sent: std::result::Result<Output, Failure>, argv: &[&str]) -> Output {
        match sent {
            Ok(output) => output,
            Err(Failure::NotSent) => panic!("{argv:?} was not sent"),
            Err(Failure::Lost) => panic!("{argv:?} was lost"),
            Err(Failure::Incompatible(why)) => panic!("{argv:?}: {why}"),
        }
    }

    /// A process that prints `first` and then answers like the agent would: what a runner
    /// meets when the other end is not its agent.
    fn impostor(first: &str) -> (Arc<Agent>, Child) {
        let program = format!(
            "import sys\nsys.stdout.write({first:?} + '\\n')\nsys.stdout.flush()\nexec(open(sys.argv[1]).read())"
        );
        let file = std::env::temp_dir().join(format!("m1studio-agent-{}.py", std::process::id()));
        std::fs::write(&file, PROGRAM).unwrap();
        let mut child = Command::new("python3")
            .args(["-I", "-S", "-u", "-c", &program])
            .arg(&file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3");
        let output = child.stdout.take().unwrap();
        let input = Box::pin(child.stdin.take().unwrap());
        (Agent::over_process("impostor", output, input), child)
    }

    #[tokio::test]
    async fn only_an_agent_of_the_same_protocol_is_talked_to() {
        let (agent, _child) = local();
        assert_eq!(run(&agent, &["true"], &me(), None).await.code, 0);
        // Another protocol, or a line before the greeting (a login banner): every command is
        // refused with the reason, none is run.
        for first in [
            r#"{"agent": "m1studio", "protocol": 99}"#,
            "Welcome to host",
        ] {
            let (agent, _child) = impostor(first);
            match agent.run(&argv(&["true"]), &me(), None).await {
                Err(Failure::Incompatible(why)) => {
                    assert!(why.contains(&format!("protocol {PROTOCOL}")), "{why}");
                }
                Err(Failure::NotSent | Failure::Lost) => panic!("{first}: lost, not refused"),
                Ok(output) => panic!("{first}: answered {output:?}"),
            }
            assert!(!agent.alive(), "{first}: the refused agent is done with");
        }
        let _ = std::fs::remove_file(
            std::env::temp_dir().join(format!("m1studio-agent-{}.py", std::process::id())),
        );
    }

    async fn run(agent: &Agent, words: &[&str], user: &str, stdin: Option<&str>) -> Output {
        answered(agent.run(&argv(words), user, stdin).await, words)
    }

    async fn call(agent: &Agent, words: &[&str]) -> Output {
        answered(agent.call(&argv(words)).await, words)
    }

    /// Sends `words` to `agent` from a task of its own, and returns once the agent has it: it
    /// has then answered a command sent after it.
    async fn running(
        agent: &Arc<Agent>,
        words: &[&str],
    ) -> tokio::task::JoinHandle<std::result::Result<Output, Failure>> {
        let task = tokio::spawn({
            let (agent, argv) = (agent.clone(), argv(words));
            async move { agent.run(&argv, &me(), None).await }
        });
        assert_eq!(run(agent, &["true"], &me(), None).await.code, 0);
        task
    }

    /// Ends the `sleep SECONDS` a test left behind.
    fn end_sleeps(seconds: u32) {
        let _ = std::process::Command::new("pkill")
            .args(["-f", &format!("^sleep {seconds}$")])
            .status();
    }

    fn me() -> String {
        std::env::var("USER").unwrap_or_else(|_| {
            String::from_utf8(
                std::process::Command::new("id")
                    .arg("-un")
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
            .trim()
            .to_string()
        })
    }

    #[tokio::test]
    async fn a_command_gets_its_input_and_reports_its_output_and_exit_code() {
        let (agent, _child) = local();
        let output = run(
            &agent,
            &["sh", "-c", "cat; echo 'to stderr' >&2; exit 3"],
            &me(),
            Some("hello\nsecond line é\n"),
        )
        .await;
        assert_eq!(output.code, 3);
        assert_eq!(output.stdout, "hello\nsecond line é\n");
        assert_eq!(output.stderr, "to stderr\n");
        // Without input, a command reads nothing rather than waiting.
        let output = run(&agent, &["cat"], &me(), None).await;
        assert_eq!((output.code, output.stdout.as_str()), (0, ""));
    }

    #[tokio::test]
    async fn a_missing_program_or_user_is_an_exit_code_with_a_reason() {
        let (agent, _child) = local();
        let output = run(&agent, &["/no/such/program"], &me(), None).await;
        assert_eq!(output.code, 127);
        assert!(output.stderr.contains("/no/such/program"), "{output:?}");
        let output = run(&agent, &["true"], "no-such-user-m1", None).await;
        assert_eq!(output.code, 126);
        assert!(output.stderr.contains("no-such-user-m1"), "{output:?}");
        // Whatever goes wrong, a command is answered: no argument vector at all.
        let output = run(&agent, &[], &me(), None).await;
        assert_eq!(output.code, 126, "{output:?}");
        // A command killed by a signal reports 128 + the signal, as a shell would.
        let output = run(&agent, &["sh", "-c", "kill -TERM $$"], &me(), None).await;
        assert_eq!(output.code, 128 + 15);
    }

    #[tokio::test]
    async fn a_command_runs_as_its_user_with_that_users_home_and_groups() {
        let (agent, _child) = local();
        let output = run(
            &agent,
            &[
                "sh",
                "-c",
                "id -un; echo $HOME; getent passwd \"$(id -un)\" | cut -d: -f6",
            ],
            &me(),
            None,
        )
        .await;
        let lines: Vec<&str> = output.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{output:?}");
        assert_eq!(lines[0], me());
        assert_eq!(lines[1], lines[2], "HOME is the user's home");
        if me() == "root" {
            let output = run(&agent, &["sh", "-c", "id -un; id -gn"], "nobody", None).await;
            assert_eq!(output.stdout, "nobody\nnogroup\n", "{output:?}");
        } else {
            // Only root can run a command as someone else.
            let output = run(&agent, &["id"], "root", None).await;
            assert_eq!(output.code, 126, "{output:?}");
        }
    }

    #[tokio::test]
    async fn commands_run_at_once() {
        let (agent, _child) = local();
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("flag");
        let flag = flag.to_str().unwrap();
        // The first command ends only once the second has run.
        let user = me();
        let wait = [
            "sh",
            "-c",
            "until [ -e \"$1\" ]; do sleep 0.01; done; echo seen",
            "w",
            flag,
        ];
        let touch = ["touch", flag];
        let waiting = run(&agent, &wait, &user, None);
        let touching = run(&agent, &touch, &user, None);
        let both = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            tokio::join!(waiting, touching)
        });
        let (waited, touched) = both
            .await
            .expect("the agent ran the commands one after the other");
        assert_eq!((waited.stdout.as_str(), touched.code), ("seen\n", 0));
    }

    #[tokio::test]
    async fn a_daemon_that_keeps_the_output_open_does_not_hold_its_command() {
        let (agent, _child) = local();
        let output = run(
            &agent,
            &["sh", "-c", "sleep 601 & echo started"],
            &me(),
            None,
        )
        .await;
        assert_eq!((output.code, output.stdout.as_str()), (0, "started\n"));
        end_sleeps(601);
    }

    #[tokio::test]
    async fn a_stopped_agent_loses_its_running_commands_and_takes_no_more() {
        let (agent, mut child) = local();
        let running = running(&agent, &["sleep", "600"]).await;
        child.kill().await.unwrap();
        assert!(matches!(running.await.unwrap(), Err(Failure::Lost)));
        while agent.alive() {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            agent.run(&argv(&["true"]), &me(), None).await,
            Err(Failure::NotSent)
        ));
        end_sleeps(600);
    }

    #[tokio::test]
    async fn a_closed_agent_finishes_what_it_runs_and_then_exits() {
        let (agent, mut child) = local();
        let running = running(&agent, &["sh", "-c", "sleep 0.3; echo done"]).await;
        agent.close();
        let finished = running.await.unwrap();
        assert!(matches!(&finished, Ok(output) if output.stdout == "done\n"));
        assert!(child.wait().await.unwrap().success());
    }

    #[tokio::test]
    async fn an_inline_program_is_called_inside_the_agent_and_reloaded_when_it_changes() {
        let (agent, _child) = local();
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("program");
        let write = |text: &str| std::fs::write(&program, text).unwrap();
        write(
            "import os\ndef main(argv, out, err):\n    print(os.getpid(), *argv[1:], file=out)\n    print('note', file=err)\n    return 4\n",
        );
        let words = [program.to_str().unwrap(), "a", "b"];
        let first = call(&agent, &words).await;
        assert_eq!((first.code, first.stderr.as_str()), (4, "note\n"));
        let pid = first.stdout.split_whitespace().next().unwrap().to_string();
        assert_eq!(first.stdout, format!("{pid} a b\n"));
        // The agent's own process ran it: no process was started for it.
        let second = call(&agent, &words).await;
        assert_eq!(second.stdout, first.stdout);
        // A program changed on disk is loaded again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(
            "def main(argv, out, err):\n    print('new', file=out)\n    raise RuntimeError('broken')\n",
        );
        let changed = call(&agent, &words).await;
        assert_eq!((changed.code, changed.stdout.as_str()), (1, "new\n"));
        assert!(changed.stderr.contains("broken"), "{changed:?}");
        let missing = call(&agent, &["/no/such/program"]).await;
        assert_eq!(missing.code, 127);
    }

    async fn repeated(agent: &Agent, words: &[&str], repeat: &Repeat) -> Output {
        answered(agent.repeat(&argv(words), &me(), repeat).await, words)
    }

    #[tokio::test]
    async fn a_repeated_command_runs_until_it_prints_what_is_expected() {
        let (agent, _child) = local();
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let count = count.to_str().unwrap();
        // Each run counts itself and prints its number: the third run is the one expected.
        let words = [
            "sh",
            "-c",
            "n=$(($(cat \"$1\" 2>/dev/null || echo 0) + 1)); echo $n > \"$1\"; echo $n",
            "count",
            count,
        ];
        let third = Repeat {
            expect: Some("3".into()),
            ..Repeat::every(0.01, 60.0)
        };
        let output = repeated(&agent, &words, &third).await;
        assert_eq!((output.code, output.stdout.as_str()), (0, "3\n"));
        assert_eq!(
            std::fs::read_to_string(count).unwrap(),
            "3\n",
            "no run after it"
        );
        // Exit code 0 alone is enough without an expected output.
        let output = repeated(&agent, &words, &Repeat::every(0.01, 60.0)).await;
        assert_eq!((output.code, output.stdout.as_str()), (0, "4\n"));
    }

    #[tokio::test]
    async fn a_repeated_command_that_never_succeeds_times_out_with_its_last_words() {
        let (agent, _child) = local();
        let words = ["sh", "-c", "echo 'not yet' >&2; exit 1"];
        // Long enough for a busy machine to run it at least once.
        let output = repeated(&agent, &words, &Repeat::every(0.05, 3.0)).await;
        assert_eq!((output.code, output.stderr.as_str()), (124, "not yet\n"));
        // A check that hangs is ended at the deadline, not waited for.
        let started = std::time::Instant::now();
        let output = repeated(&agent, &["sleep", "602"], &Repeat::every(0.05, 0.3)).await;
        assert_eq!(output.code, 124);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the hanging check was waited for"
        );
        let left = std::process::Command::new("pgrep")
            .args(["-f", "^sleep 602$"])
            .output()
            .unwrap();
        assert!(left.stdout.is_empty(), "the hanging check still runs");
    }

    #[tokio::test]
    async fn a_repeated_command_waits_for_its_file_and_the_status_in_it() {
        let (agent, _child) = local();
        let dir = tempfile::tempdir().unwrap();
        let (pid, log) = (dir.path().join("postmaster.pid"), dir.path().join("log"));
        let log_path = log.to_str().unwrap().to_string();
        let gate = Repeat {
            file: Some(pid.to_str().unwrap().into()),
            status: Some(vec!["ready".into(), "standby".into()]),
            ..Repeat::every(0.01, 60.0)
        };
        let task = tokio::spawn({
            let (agent, gate) = (agent.clone(), gate.clone());
            let words = argv(&["sh", "-c", "echo ran >> \"$1\"", "ran", &log_path]);
            async move { agent.repeat(&words, &me(), &gate).await }
        });
        // postmaster.pid's lines, with its status last, as Postgres pads it.
        let write = |status: &str| {
            let lines = ["7", "/data", "1", "5432", "/run", "*", "1 2", status];
            std::fs::write(&pid, format!("{}\n", lines.join("\n"))).unwrap();
        };
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        write("starting");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !log.exists(),
            "the command ran before the status allowed it"
        );
        assert!(!task.is_finished());
        write("standby ");
        let output = task.await.unwrap();
        assert!(matches!(&output, Ok(output) if output.code == 0));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\n");
        // Without a command, the file alone is waited for: here a socket, as supervisord's.
        let socket = dir.path().join("socket");
        let only_file = Repeat {
            file: Some(socket.to_str().unwrap().into()),
            ..Repeat::every(0.01, 0.2)
        };
        assert_eq!(repeated(&agent, &[], &only_file).await.code, 124);
        let _listening = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(repeated(&agent, &[], &only_file).await.code, 0);
    }
}
