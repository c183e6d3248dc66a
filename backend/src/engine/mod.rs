//! Carries out a deployment plan through an [`Executor`]: phases one after the other, the lanes
//! of a phase at the same time (a lane that follows another lane's step waits for it here),
//! each lane's steps in order. Secrets are put into files, commands and standard input here and
//! nowhere else; events report every step as it starts and ends.

use anyhow::{Context as _, Result, bail};
use m1studio_shared::plan::{
    Action, File, Phase, Plan, Readiness, SECRETS, SSH_KEY, SSH_KEY_PUB, Step,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What a command printed, and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The exit code.
    pub code: i64,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Where a plan runs: containers, hosts over SSH, or a recording for tests.
pub trait Executor: Sync {
    /// Writes `files` on `node`, whole, with their owners and modes.
    fn write_files(&self, node: &str, files: &[File]) -> impl Future<Output = Result<()>> + Send;
    /// Runs `argv` on `node` as `user`, feeding it `stdin`.
    fn run(
        &self,
        node: &str,
        argv: &[String],
        user: &str,
        stdin: Option<&str>,
    ) -> impl Future<Output = Result<Output>> + Send;
    /// Starts the supervised service `service` on `node`.
    fn start(&self, node: &str, service: &str) -> impl Future<Output = Result<()>> + Send;
    /// Waits on `node` until `until` holds, for at most `timeout_secs`: exit code 0 once it
    /// does, 124 when the time is up, with the output of the last check. By default one
    /// command that polls on the node (`wait_command`).
    fn wait(
        &self,
        node: &str,
        until: &Readiness,
        timeout_secs: u32,
    ) -> impl Future<Output = Result<Output>> + Send {
        async move {
            let (command, user) = wait_command(until, timeout_secs);
            self.run(node, &command, &user, None).await
        }
    }
}

/// Something that happened while a plan ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A phase began.
    Phase {
        /// Its number, from 1.
        number: usize,
        /// Of how many.
        of: usize,
        /// What it does.
        title: String,
    },
    /// A step began.
    Started {
        /// Where.
        node: String,
        /// What.
        title: String,
    },
    /// A step ended well.
    Finished {
        /// Where.
        node: String,
        /// What.
        title: String,
        /// How long it took.
        millis: u128,
    },
    /// A step failed; the deployment stops.
    Failed {
        /// Where.
        node: String,
        /// What.
        title: String,
        /// Why, with the command's output.
        reason: String,
    },
}

/// The passwords of one cluster: random, made once per deployment, never shown; and the SCRAM
/// verifier of each, with which the cluster's roles are made.
#[derive(Clone)]
pub struct Secrets {
    values: BTreeMap<&'static str, String>,
    verifiers: BTreeMap<&'static str, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} hidden)", self.values.len())
    }
}

/// How many PBKDF2 iterations a role's SCRAM verifier asks of every client that logs in.
/// Postgres uses 4096 by default, to slow down guessing a person's password from a stolen
/// verifier. The cluster's passwords are 144 random bits, which no number of guesses finds, so
/// the stretching buys nothing here, while it cost each connection about 5 ms of CPU: repmgrd
/// checks each node with a new connection every second, and that was a third of an idle
/// cluster's CPU.
pub const SCRAM_ITERATIONS: u32 = 16;

/// The SCRAM-SHA-256 verifier of `password` with `salt`, as Postgres keeps it in
/// `pg_authid.rolpassword` and takes it in `CREATE ROLE … PASSWORD` (RFC 5802, RFC 7677).
/// The password is used as it is: the cluster's are ASCII, which SASLprep leaves unchanged.
pub fn scram_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, Mac as _};
    use sha2::{Digest as _, Sha256};
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
    let key = |text: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(&salted).expect("HMAC takes any key");
        mac.update(text);
        mac.finalize().into_bytes()
    };
    let stored = Sha256::digest(key(b"Client Key"));
    let server = key(b"Server Key");
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        b64.encode(salt),
        b64.encode(stored),
        b64.encode(server)
    )
}

impl Secrets {
    /// The secrets `values`, with a verifier of each password under a random salt.
    fn with(values: BTreeMap<&'static str, String>) -> Secrets {
        let verifiers = values
            .iter()
            .filter(|(name, _)| ![SSH_KEY, SSH_KEY_PUB].contains(name))
            .map(|(name, password)| {
                let mut salt = [0u8; 16];
                if getrandom::fill(&mut salt).is_err() {
                    // No random source: a salt of the password's own, still never reused.
                    use sha2::{Digest as _, Sha256};
                    salt.copy_from_slice(&Sha256::digest(password.as_bytes())[..16]);
                }
                (*name, scram_verifier(password, &salt, SCRAM_ITERATIONS))
            })
            .collect();
        Secrets { values, verifiers }
    }

    /// No secret: for plans that refer to none (a drill's repairs).
    pub fn none() -> Secrets {
        Secrets::with(BTreeMap::new())
    }

    /// New random passwords for every secret a plan refers to.
    pub fn generate() -> Result<Secrets> {
        let mut map = BTreeMap::new();
        // The cluster's SSH key pair, with which repmgr reaches the other nodes as postgres.
        let key = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .map_err(|e| anyhow::anyhow!("cannot make an SSH key: {e}"))?;
        let private = key
            .to_openssh(ssh_key::LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("cannot write the SSH key: {e}"))?;
        let public = key
            .public_key()
            .to_openssh()
            .map_err(|e| anyhow::anyhow!("cannot write the SSH key: {e}"))?;
        map.insert(SSH_KEY, private.to_string());
        map.insert(SSH_KEY_PUB, public);
        for name in SECRETS
            .iter()
            .filter(|n| ![SSH_KEY, SSH_KEY_PUB].contains(n))
        {
            let mut bytes = [0u8; 18];
            getrandom::fill(&mut bytes)
                .map_err(|e| anyhow::anyhow!("cannot make a random password: {e}"))?;
            map.insert(*name, bytes.iter().map(|b| format!("{b:02x}")).collect());
        }
        Ok(Secrets::with(map))
    }

    /// Each secret's name and value, to keep them in the store.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
    }

    /// The secrets read back from the store; names the plan does not know are dropped, and
    /// those it has learned since they were kept (etcd's, say) are new random ones.
    pub fn from_entries(pairs: impl IntoIterator<Item = (String, String)>) -> Secrets {
        let mut map: BTreeMap<&'static str, String> = pairs
            .into_iter()
            .filter_map(|(name, value)| {
                SECRETS
                    .iter()
                    .find(|known| **known == name)
                    .map(|known| (*known, value))
            })
            .collect();
        if let Ok(fresh) = Secrets::generate() {
            for (name, value) in fresh.values {
                if ![SSH_KEY, SSH_KEY_PUB].contains(&name) {
                    map.entry(name).or_insert(value);
                }
            }
        }
        Secrets::with(map)
    }

    /// `text` with every `${secret:NAME}` replaced by the password, and every `${scram:NAME}`
    /// by its verifier.
    pub fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.values {
            out = out.replace(&format!("${{secret:{name}}}"), value);
        }
        for (name, value) in &self.verifiers {
            out = out.replace(&format!("${{scram:{name}}}"), value);
        }
        out
    }

    /// `text` with every password and verifier replaced by `***`, for logs and error messages.
    pub fn hide(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in self.values.values().chain(self.verifiers.values()) {
            out = out.replace(value.as_str(), "***");
        }
        out
    }
}

/// Has supervisord on `node` load the services that `files`, just written, define, if any: so
/// that starting one is a single call.
pub async fn load_services<E: Executor>(executor: &E, node: &str, files: &[File]) -> Result<()> {
    if files
        .iter()
        .any(|f| f.path.starts_with("/etc/supervisor/conf.d/"))
    {
        let output = executor
            .run(node, &argv(&["supervisorctl", "update"]), "root", None)
            .await?;
        if output.code != 0 {
            bail!(
                "`supervisorctl update` on {node} exited with {}: {}",
                output.code,
                output.stdout.trim()
            );
        }
    }
    Ok(())
}

/// An argument vector from words.
pub fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The command that runs one SQL statement with psql, unaligned and without headers.
pub fn psql(sql: &str) -> Vec<String> {
    argv(&["psql", "-XAt", "-d", "postgres", "-c", sql])
}

/// Runs `sql` on `node` as postgres and returns its answer, trimmed; an error names the statement.
pub async fn query<E: Executor>(executor: &E, node: &str, sql: &str) -> Result<String> {
    let output = executor.run(node, &psql(sql), "postgres", None).await?;
    if output.code != 0 {
        bail!("{sql} on {node}: {}", output.stderr.trim());
    }
    Ok(output.stdout.trim().to_string())
}

/// The files of `node` in `plan`, with the secrets filled in.
pub fn filled_files(plan: &Plan, secrets: &Secrets, node: &str) -> Vec<File> {
    plan.files_of(node)
        .iter()
        .map(|f| File {
            content: secrets.fill(&f.content),
            ..f.clone()
        })
        .collect()
}

/// The last `count` lines of `text`.
pub fn tail(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// The last lines of what a command printed, passwords hidden.
fn last_words(secrets: &Secrets, output: &Output) -> String {
    secrets
        .hide(&format!(
            "{}\n{}",
            tail(&output.stdout, 15),
            tail(&output.stderr, 15)
        ))
        .trim()
        .to_string()
}

fn failure(secrets: &Secrets, what: &str, output: &Output) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} exited with {}\n{}",
        output.code,
        last_words(secrets, output)
    )
}

/// The command that waits for `until` on a node for at most `timeout_secs`, and its user. It
/// polls inside the node, so that each check costs a process start there rather than a round
/// trip through the engine: with many nodes waiting at once, the round trips took the CPU
/// that the nodes needed to become ready. The SQL, its expected answer and a command's
/// arguments reach the shell only as positional parameters, never as shell text.
pub fn wait_command(until: &Readiness, timeout_secs: u32) -> (Vec<String>, String) {
    let mut command = argv(&["timeout", &timeout_secs.to_string(), "sh", "-c"]);
    let user = match until {
        Readiness::PostgresReady => {
            command.extend(argv(&[
                "until pg_isready -q -h /var/run/postgresql; do sleep 0.05; done",
                "wait",
            ]));
            "postgres".to_string()
        }
        Readiness::Query { sql, expect } => {
            command.extend(argv(&[
                r#"until [ "$(psql -XAt -d postgres -c "$1" 2>/dev/null)" = "$2" ]; do sleep 0.05; done"#,
                "wait",
                sql,
                expect,
            ]));
            "postgres".to_string()
        }
        Readiness::CommandSucceeds { argv: check, user } => {
            command.extend(argv(&[
                r#"until "$@" >/dev/null 2>&1; do sleep 0.2; done"#,
                "wait",
            ]));
            command.extend(check.iter().cloned());
            user.clone()
        }
    };
    (command, user)
}

/// `command` stopped on the node after `limit` seconds (TERM, then KILL 10 s later), where the
/// step has a limit: the node's `timeout` ends what a dropped request would leave running.
fn limited(command: Vec<String>, limit: Option<u32>) -> Vec<String> {
    match limit {
        Some(secs) => {
            let mut limited = argv(&["timeout", "-k", "10", &secs.to_string()]);
            limited.extend(command);
            limited
        }
        None => command,
    }
}

/// How much longer than a step's limit the engine waits for its node to stop it.
const LIMIT_MARGIN: Duration = Duration::from_secs(15);

/// Runs `step` on its node within its limit: past it, the step is stopped and fails.
async fn run_limited<E: Executor>(
    executor: &E,
    plan: &Plan,
    secrets: &Secrets,
    step: &Step,
) -> Result<()> {
    let limit = step.time_limit();
    let running = run_step(executor, plan, secrets, &step.node, &step.action, limit);
    let Some(secs) = limit else {
        return running.await;
    };
    match tokio::time::timeout(Duration::from_secs(secs.into()) + LIMIT_MARGIN, running).await {
        Ok(done) => done,
        Err(_) => {
            bail!("did not finish within {secs} s, the plan's limit for this step: it was stopped")
        }
    }
}

async fn run_step<E: Executor>(
    executor: &E,
    plan: &Plan,
    secrets: &Secrets,
    node: &str,
    action: &Action,
    limit: Option<u32>,
) -> Result<()> {
    match action {
        Action::WriteFiles => {
            executor
                .write_files(node, &filled_files(plan, secrets, node))
                .await
        }
        Action::Run { argv, user, stdin } => {
            let argv: Vec<String> = argv.iter().map(|a| secrets.fill(a)).collect();
            let stdin = stdin.as_deref().map(|s| secrets.fill(s));
            let output = executor
                .run(node, &limited(argv.clone(), limit), user, stdin.as_deref())
                .await?;
            if output.code == 124 && limit.is_some() {
                bail!(
                    "did not finish within {} s, the plan's limit for this step: it was stopped{}",
                    limit.unwrap_or_default(),
                    match last_words(secrets, &output) {
                        last if last.is_empty() => String::new(),
                        last => format!("; its last words:\n{last}"),
                    }
                );
            }
            if output.code != 0 {
                return Err(failure(secrets, &argv.join(" "), &output));
            }
            Ok(())
        }
        Action::Attempt { argv, user } => {
            executor
                .run(node, &limited(argv.clone(), limit), user, None)
                .await?;
            Ok(())
        }
        Action::Start { service } => executor.start(node, service).await,
        Action::After { node, title } => {
            bail!("waiting for \"{title}\" on {node} needs the other lanes of a phase")
        }
        Action::Wait {
            until,
            timeout_secs,
        } => {
            let output = executor.wait(node, until, *timeout_secs).await?;
            if output.code == 0 {
                return Ok(());
            }
            let last = last_words(secrets, &output);
            bail!(
                "still not ready after {timeout_secs} s{}{}",
                if output.code == 124 {
                    String::new()
                } else {
                    format!(" (the wait exited with {})", output.code)
                },
                if last.is_empty() {
                    String::new()
                } else {
                    format!("; the last check said:\n{last}")
                }
            );
        }
    }
}

/// Waits until the step `title` of `node`, in another lane of `phase` than `lane`, has
/// finished. A failed step stops the whole phase, so the wait ends either way.
async fn after(
    phase: &Phase,
    lane: &str,
    mut finished: watch::Receiver<Vec<(String, String)>>,
    node: &str,
    title: &str,
) -> Result<()> {
    if !phase
        .steps
        .iter()
        .any(|s| s.node == node && s.title == title && s.lane_key() != lane)
    {
        bail!(
            "the plan waits for \"{title}\" on {node}, which is not in another lane of this phase"
        );
    }
    finished
        .wait_for(|done| done.iter().any(|(n, t)| n == node && t == title))
        .await
        .context("the phase ended")?;
    Ok(())
}

/// Runs `plan`, reporting through `events`. Stops at the first failed step: the steps under way
/// in the other lanes of its phase are dropped and reported as stopped, before the failure.
pub async fn run_plan<E: Executor>(
    executor: &E,
    plan: &Plan,
    secrets: &Secrets,
    events: &(dyn Fn(Event) + Sync),
) -> Result<()> {
    let phases = plan.phases.len();
    for (number, phase) in plan.phases.iter().enumerate() {
        events(Event::Phase {
            number: number + 1,
            of: phases,
            title: phase.title.clone(),
        });
        let mut lanes: Vec<String> = Vec::new();
        for step in &phase.steps {
            let lane = step.lane_key();
            if !lanes.contains(&lane) {
                lanes.push(lane);
            }
        }
        // The steps of this phase that have finished, for lanes that wait for another's step,
        // and those under way, to report as stopped if another fails.
        let (finished, _) = watch::channel(Vec::<(String, String)>::new());
        let finished = &finished;
        let under_way = &std::sync::Mutex::new(Vec::<(String, String)>::new());
        let lanes = lanes.into_iter().map(|lane| async move {
            for step in phase.steps.iter().filter(|s| s.lane_key() == lane) {
                let this = (step.node.clone(), step.title.clone());
                events(Event::Started {
                    node: step.node.clone(),
                    title: step.title.clone(),
                });
                crate::lock(under_way).push(this.clone());
                let started = Instant::now();
                let result = match &step.action {
                    Action::After { node, title } => {
                        after(phase, &lane, finished.subscribe(), node, title).await
                    }
                    _ => run_limited(executor, plan, secrets, step).await,
                };
                crate::lock(under_way).retain(|s| *s != this);
                match result {
                    Ok(()) => {
                        finished.send_modify(|done| done.push(this));
                        events(Event::Finished {
                            node: step.node.clone(),
                            title: step.title.clone(),
                            millis: started.elapsed().as_millis(),
                        });
                    }
                    Err(err) => return Err((this, secrets.hide(&format!("{err:#}")))),
                }
            }
            Ok(())
        });
        // The first failed lane stops the others: a lane waiting for a node that failed would
        // otherwise wait until its timeout. The steps it stops are reported first, so that the
        // last failure reported is the one that stopped the deployment.
        if let Err(((node, title), reason)) = futures_util::future::try_join_all(lanes).await {
            for (other, other_title) in std::mem::take(&mut *crate::lock(under_way)) {
                events(Event::Failed {
                    node: other,
                    title: other_title,
                    reason: format!("stopped: {title} failed on {node}"),
                });
            }
            events(Event::Failed {
                node: node.clone(),
                title: title.clone(),
                reason: reason.clone(),
            });
            return Err(anyhow::anyhow!("{node}: {title}: {reason}")).context(format!(
                "phase {} ({}) failed",
                number + 1,
                phase.title
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
