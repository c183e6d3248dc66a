//! The SSH executor: a plan run on existing hosts (`--platform bare`). Each host gets the same
//! agent as a container, started by one `ssh` and kept by the process; every command, file and
//! wait of the plan goes through it as an argument vector. The only command line a remote shell
//! ever sees is this module's own constant, which starts Python: host names, users and paths
//! travel as JSON on the agent's input.

use crate::agent::{Agent, Failure, Repeat};
use crate::engine::{Executor, Output, argv};
use anyhow::{Context as _, Result, bail};
use m1studio_shared::api::Machine;
use m1studio_shared::plan::{File, PGDATA, Readiness, SERVICE_COMMAND, host_packages, host_ports};
use m1studio_shared::{Code, Design, Diagnostic, Instance, Topology};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::sync::OnceCell;

/// What the remote shell runs: Python reading its program and environment from the first line
/// of its input, then the agent's commands from the rest. A fixed text, never a user's.
const BOOTSTRAP: &str = "python3 -I -S -u -c 'import json,os,sys;s=json.loads(sys.stdin.buffer.readline());os.environ.update(s[\"env\"]);exec(s[\"program\"])'";

/// Writes files whole, as the plan's `File`s listed in JSON on its input say: parents made,
/// owner and group of the owner's name, mode, then renamed into place, so that no reader ever
/// sees half of one.
const WRITER: &str = r#"import json, os, pwd, sys, tempfile
for f in json.loads(sys.stdin.buffer.read()):
    user = pwd.getpwnam(f["owner"])
    folder = os.path.dirname(f["path"])
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".m1studio-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f["content"])
        os.chown(temporary, user.pw_uid, user.pw_gid)
        os.chmod(temporary, f["mode"])
        os.replace(temporary, f["path"])
    except BaseException:
        os.unlink(temporary)
        raise
"#;

/// Puts the cluster's host names into a hosts file (`/etc/hosts`), between two marker lines that
/// it replaces on every run; the rest of the file stays as it was. Arguments: the file, then
/// name, address, name, address…
const HOSTS: &str = r##"import os, sys
begin, end = "# m1studio: begin", "# m1studio: end"
path, pairs = sys.argv[1], sys.argv[2:]
with open(path) as f:
    lines = f.read().splitlines()
kept, inside = [], False
for line in lines:
    if line.strip() == begin:
        inside = True
    elif line.strip() == end:
        inside = False
    elif not inside:
        kept.append(line)
kept.append(begin)
for name, address in zip(pairs[0::2], pairs[1::2]):
    kept.append(address + "\t" + name)
kept.append(end)
text = "\n".join(kept) + "\n"
try:
    tmp = path + ".m1studio"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
except OSError:
    # The file may be a mount point (containers): write it in place.
    with open(path, "w") as f:
        f.write(text)
"##;

/// Prints each of the TCP ports given as arguments that something on the host already listens
/// on, or that cannot be taken otherwise.
const BUSY_PORTS: &str = r#"import socket, sys
for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("", int(port)))
    except OSError:
        print(port)
    finally:
        s.close()
"#;

/// supervisord's socket on Debian.
const SUPERVISOR_SOCKET: &str = "/var/run/supervisor.sock";

/// How to reach the hosts of one cluster.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Each node's address.
    pub hosts: BTreeMap<String, IpAddr>,
    /// The private key to log in with; otherwise ssh's own defaults and agent.
    pub key: Option<PathBuf>,
    /// Where the hosts' keys are kept, learnt on the first connection and checked on every later
    /// one.
    pub known_hosts: PathBuf,
    /// Where Postgres's programs are on the hosts, first on the agent's `PATH`.
    pub bindir: String,
}

type AgentCell = Arc<OnceCell<Arc<Agent>>>;

/// Runs plans on existing hosts over SSH, as root.
#[derive(Clone)]
pub struct SshExecutor {
    options: Arc<SshOptions>,
    agents: Arc<Mutex<HashMap<String, AgentCell>>>,
}

impl SshExecutor {
    /// The executor for the hosts `options` names; nothing connects before the first command.
    pub fn new(options: SshOptions) -> SshExecutor {
        SshExecutor {
            options: Arc::new(options),
            agents: Arc::default(),
        }
    }

    /// Each node's address.
    pub fn hosts(&self) -> &BTreeMap<String, IpAddr> {
        &self.options.hosts
    }

    /// Whether each host answers over SSH: `Running`, or `Unreachable`.
    pub async fn reachable(&self) -> HashMap<String, Machine> {
        let probes = self.options.hosts.keys().map(|node| async move {
            let answer = tokio::time::timeout(
                std::time::Duration::from_secs(15),
                self.run(node, &argv(&["true"]), "root", None),
            )
            .await;
            let state = match answer {
                Ok(Ok(output)) if output.code == 0 => Machine::Running,
                _ => Machine::Unreachable,
            };
            (node.clone(), state)
        });
        futures_util::future::join_all(probes)
            .await
            .into_iter()
            .collect()
    }

    /// The `ssh` command that starts the agent on `node`, as root: the address is an
    /// `IpAddr`, so it can never be read as an option, and the remote command is `BOOTSTRAP`.
    fn ssh(&self, node: &str) -> Result<tokio::process::Command> {
        let address = self
            .options
            .hosts
            .get(node)
            .with_context(|| format!("no address for {node}"))?;
        let mut command = tokio::process::Command::new("ssh");
        command.args([
            "-T",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
        ]);
        command.arg(format!(
            "UserKnownHostsFile=\"{}\"",
            ssh_path(&self.options.known_hosts)?
        ));
        command.args([
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
            "-l",
            "root",
        ]);
        if let Some(key) = &self.options.key {
            // As an option, not `-i`: ssh reads `-i`'s file name once as it is and once
            // expanded, so that no spelling of a `%` in it passes both.
            command
                .arg("-o")
                .arg(format!("IdentityFile=\"{}\"", ssh_path(key)?))
                .args(["-o", "IdentitiesOnly=yes"]);
        }
        command.arg("--").arg(address.to_string()).arg(BOOTSTRAP);
        Ok(command)
    }

    /// Starts `node`'s agent over SSH; a failure says what ssh or the host said.
    async fn start_agent(&self, node: &str) -> Result<Arc<Agent>> {
        let mut child = self
            .ssh(node)?
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("running ssh (Debian's openssh-client)")?;
        let mut input = child.stdin.take().context("ssh's input")?;
        let output = child.stdout.take().context("ssh's output")?;
        let errors = child.stderr.take().context("ssh's errors")?;
        let path = format!("{}:{}", self.options.bindir, super::docker::DEFAULT_PATH);
        let mut first = serde_json::to_vec(&serde_json::json!({
            "env": { "PATH": path },
            "program": crate::agent::PROGRAM,
        }))?;
        first.push(b'\n');
        input
            .write_all(&first)
            .await
            .with_context(|| format!("sending the agent to {node}"))?;
        // What ssh and the host say on standard error: kept for the message when the agent does
        // not answer, logged otherwise.
        let said: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept = said.clone();
        let name = node.to_string();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(errors).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(host = %name, "{line}");
                let mut kept = crate::lock(&kept);
                kept.push(line);
                if kept.len() > 10 {
                    kept.remove(0);
                }
            }
        });
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let agent = Agent::over_process(node, output, Box::pin(input));
        // One command proves the connection, the login and Python.
        match agent.run(&argv(&["true"]), "root", None).await {
            Ok(out) if out.code == 0 => Ok(agent),
            _ => {
                // Give ssh's last words a moment to arrive.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let said = crate::lock(&said).join("\n");
                bail!(
                    "cannot run commands on {node} ({}) over SSH as root: {}",
                    self.options.hosts[node],
                    if said.trim().is_empty() {
                        "the connection closed; is python3 installed there?".to_string()
                    } else {
                        said.trim().to_string()
                    }
                )
            }
        }
    }

    async fn agent(&self, node: &str) -> Result<Arc<Agent>> {
        for _ in 0..2 {
            let cell = crate::lock(&self.agents)
                .entry(node.to_string())
                .or_default()
                .clone();
            let agent = cell.get_or_try_init(|| self.start_agent(node)).await?;
            if agent.alive() {
                return Ok(agent.clone());
            }
            crate::lock(&self.agents).remove(node);
        }
        bail!("the connection to {node} closes as soon as it opens")
    }

    /// Sends one command through `node`'s agent, with a new connection if the old one closed
    /// before the command was sent.
    async fn send(&self, node: &str, request: Request<'_>) -> Result<Output> {
        for _ in 0..2 {
            let agent = self.agent(node).await?;
            let sent = match &request {
                Request::Run { argv, user, stdin } => agent.command(argv, user, *stdin).await,
                Request::Repeat { argv, user, repeat } => agent.repeat(argv, user, repeat).await,
            };
            match sent {
                Ok(output) => return Ok(output),
                Err(Failure::NotSent) => {
                    crate::lock(&self.agents).remove(node);
                }
                Err(Failure::Lost) => bail!("the connection to {node} closed during a command"),
                Err(Failure::Incompatible(why)) => {
                    crate::lock(&self.agents).remove(node);
                    bail!("{node}: {why}")
                }
            }
        }
        bail!("cannot send commands to {node}: its connection keeps closing")
    }
}

/// One request for an agent.
enum Request<'a> {
    Run {
        argv: &'a [String],
        user: &'a str,
        stdin: Option<&'a str>,
    },
    Repeat {
        argv: &'a [String],
        user: &'a str,
        repeat: &'a Repeat,
    },
}

impl Executor for SshExecutor {
    async fn write_files(&self, node: &str, files: &[File]) -> Result<()> {
        // Every file in one call, as JSON on the writer's input.
        let listed = serde_json::to_string(files)?;
        let output = self
            .run(
                node,
                &argv(&["python3", "-I", "-S", "-c", WRITER]),
                "root",
                Some(&listed),
            )
            .await?;
        if output.code != 0 {
            bail!(
                "writing the files on {node} failed: {}",
                output.stderr.trim()
            );
        }
        crate::engine::load_services(self, node, files).await
    }

    async fn run(
        &self,
        node: &str,
        argv: &[String],
        user: &str,
        stdin: Option<&str>,
    ) -> Result<Output> {
        self.send(node, Request::Run { argv, user, stdin }).await
    }

    async fn wait(&self, node: &str, until: &Readiness, timeout_secs: u32) -> Result<Output> {
        let (check, user, repeat) = crate::agent::check_of(until, timeout_secs);
        self.send(
            node,
            Request::Repeat {
                argv: &check,
                user: &user,
                repeat: &repeat,
            },
        )
        .await
    }

    async fn start(&self, node: &str, service: &str) -> Result<()> {
        let output = self
            .run(
                node,
                &argv(&[SERVICE_COMMAND, "start", service]),
                "root",
                None,
            )
            .await?;
        if output.code != 0 {
            bail!(
                "starting {service} on {node} failed: {}{}",
                output.stdout.trim(),
                output.stderr.trim()
            );
        }
        Ok(())
    }
}

impl SshExecutor {
    /// Checks every host before anything is changed on any: that it answers over SSH as root
    /// with Python, has the packages of its roles, lets the postgres group use supervisord's
    /// socket (repmgr stops and starts Postgres through it), and holds no data directory yet.
    /// Every problem of every host, each at its instance.
    pub async fn check(&self, topology: &Topology, design: &Design) -> Vec<Diagnostic> {
        let checks = topology
            .instances
            .iter()
            .enumerate()
            .map(|(index, instance)| async move {
                let problems = self
                    .check_host(instance, design)
                    .await
                    .unwrap_or_else(|e| vec![format!("{e:#}")]);
                problems.into_iter().map(move |problem| {
                    Diagnostic::error(format!("instances[{index}]"), Code::HostNotReady, problem)
                })
            });
        futures_util::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Names every node of the cluster in each host's `/etc/hosts`.
    pub async fn name_hosts(&self, topology: &Topology) -> Result<(), Vec<String>> {
        let mut pairs = vec![
            "python3".to_string(),
            "-I".into(),
            "-S".into(),
            "-c".into(),
            HOSTS.into(),
            "/etc/hosts".into(),
        ];
        for (name, address) in &self.options.hosts {
            pairs.extend([name.clone(), address.to_string()]);
        }
        let named = topology.instances.iter().map(|instance| {
            let pairs = &pairs;
            async move {
                let output = self.run(&instance.name, pairs, "root", None).await;
                match output {
                    Ok(o) if o.code == 0 => None,
                    Ok(o) => Some(format!(
                        "{}: cannot name the cluster's nodes in /etc/hosts: {}",
                        instance.name,
                        o.stderr.trim()
                    )),
                    Err(e) => Some(format!("{e:#}")),
                }
            }
        });
        let problems: Vec<String> = futures_util::future::join_all(named)
            .await
            .into_iter()
            .flatten()
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// What is wrong with `instance`'s host, if anything.
    async fn check_host(&self, instance: &Instance, design: &Design) -> Result<Vec<String>> {
        let node = instance.name.as_str();
        let address = self.options.hosts[node];
        let mut problems = Vec::new();
        let packages = host_packages(design, instance);
        let mut query = argv(&["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Package}\\n"]);
        query.extend(packages.iter().cloned());
        let listed = self.run(node, &query, "root", None).await?;
        let installed: Vec<&str> = listed
            .stdout
            .lines()
            .filter(|l| l.starts_with("ii "))
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        let missing: Vec<&str> = packages
            .iter()
            .map(String::as_str)
            .filter(|p| !installed.contains(p))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{node} ({address}) lacks the packages {}: install them there (apt-get install {}) and deploy again",
                missing.join(", "),
                missing.join(" ")
            ));
        }
        if instance.runs_postgres() {
            let socket = self
                .run(
                    node,
                    &argv(&["stat", "-c", "%G %a", SUPERVISOR_SOCKET]),
                    "root",
                    None,
                )
                .await?;
            let said = socket.stdout.trim();
            let open = said
                .split_once(' ')
                .is_some_and(|(group, mode)| group == "postgres" && mode_lets_group_write(mode));
            if socket.code != 0 {
                problems.push(format!(
                    "{node} ({address}) runs no supervisord ({SUPERVISOR_SOCKET} is missing): install the supervisor package and start it (systemctl enable --now supervisor)"
                ));
            } else if !open {
                problems.push(format!(
                    "{node} ({address}): supervisord's socket is {said} (group, mode), but repmgr, as postgres, stops and starts Postgres through it: set chmod=0770 and chown=root:postgres under [unix_http_server] in /etc/supervisor/supervisord.conf, then restart supervisor"
                ));
            }
        }
        let ports = host_ports(design, instance);
        let mut check = argv(&["python3", "-I", "-S", "-c", BUSY_PORTS]);
        check.extend(ports.iter().map(u16::to_string));
        let busy = self.run(node, &check, "root", None).await?;
        let busy: Vec<&str> = busy.stdout.split_whitespace().collect();
        if !busy.is_empty() {
            problems.push(format!(
                "{node} ({address}): something already listens on port {}, which {} needs: stop it there{}",
                busy.join(" and "),
                instance.kind.as_str(),
                if busy.contains(&"5432") {
                    format!(
                        " (a Postgres cluster that Debian's package made: pg_lsclusters lists it, and pg_dropcluster --stop {} main removes it if it holds nothing you need)",
                        design.version()
                    )
                } else {
                    String::new()
                }
            ));
        }
        let data = self
            .run(node, &argv(&["ls", "-A", PGDATA]), "root", None)
            .await?;
        if data.code == 0 && !data.stdout.trim().is_empty() {
            problems.push(format!(
                "{node} ({address}) already has a data directory in {PGDATA}: m1studio never overwrites one; move it away, or deploy on other hosts"
            ));
        }
        Ok(problems)
    }
}

/// `path` as ssh reads a file name in an option's value: `%` doubled, since ssh expands `%h` and
/// the like there, and in double quotes, so that a path with one cannot be given.
fn ssh_path(path: &std::path::Path) -> Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8, which ssh cannot be given", path.display()))?;
    if text.contains('"') {
        bail!(
            "{text} has a double quote, which ssh cannot take in a file name: move it to a path without one"
        );
    }
    Ok(text.replace('%', "%%"))
}

/// Whether a mode in octal (`770`) lets the group read and write.
fn mode_lets_group_write(mode: &str) -> bool {
    u32::from_str_radix(mode, 8).is_ok_and(|m| m & 0o060 == 0o060)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn python(program: &str, args: &[&str], stdin: &str) -> std::process::Output {
        use std::io::Write as _;
        let mut child = Command::new("python3")
            .args(["-I", "-S", "-c", program])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (Debian's python3 package)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn me() -> String {
        let out = Command::new("id").arg("-un").output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn the_writer_writes_every_file_whole_with_its_mode_and_parents() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            File {
                path: dir.path().join("a/b/secret.conf").display().to_string(),
                owner: me(),
                mode: 0o600,
                content: "password = 'x'\nnon-ASCII: é\n".into(),
            },
            File {
                path: dir.path().join("plain").display().to_string(),
                owner: me(),
                mode: 0o644,
                content: "one\n".into(),
            },
        ];
        let out = python(WRITER, &[], &serde_json::to_string(&files).unwrap());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for file in &files {
            let written = std::fs::read_to_string(&file.path).unwrap();
            assert_eq!(written, file.content);
            let mode = std::fs::metadata(&file.path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, file.mode, "{}", file.path);
        }
        let left: Vec<_> = std::fs::read_dir(dir.path().join("a/b"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
        // An unknown owner fails, and leaves nothing behind.
        let bad = vec![File {
            path: dir.path().join("orphan").display().to_string(),
            owner: "no-such-user-m1studio".into(),
            mode: 0o644,
            content: String::new(),
        }];
        let out = python(WRITER, &[], &serde_json::to_string(&bad).unwrap());
        assert!(!out.status.success());
        assert!(!dir.path().join("orphan").exists());
    }

    #[test]
    fn the_hosts_file_gets_one_block_of_the_cluster_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(
            &hosts,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n",
        )
        .unwrap();
        let path = hosts.display().to_string();
        for addresses in [["10.0.0.5", "10.0.0.6"], ["10.0.0.7", "10.0.0.8"]] {
            let out = python(
                HOSTS,
                &[&path, "kestrel", addresses[0], "quartz", addresses[1]],
                "",
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(
            std::fs::read_to_string(&hosts).unwrap(),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n# m1studio: begin\n10.0.0.7\tkestrel\n10.0.0.8\tquartz\n# m1studio: end\n",
            "the second run replaced the first one's block"
        );
    }

    #[test]
    fn ports_that_something_listens_on_are_named() {
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let taken = listener.local_addr().unwrap().port().to_string();
        let free = std::net::TcpListener::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let out = python(BUSY_PORTS, &[&taken, &free], "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), taken);
    }

    #[test]
    fn file_names_reach_ssh_unexpanded() {
        let path = |p: &str| ssh_path(std::path::Path::new(p));
        assert_eq!(path("/home/a b/100%/kh").unwrap(), "/home/a b/100%%/kh");
        assert!(
            path("/tmp/say \"hi\"")
                .unwrap_err()
                .to_string()
                .contains("double quote")
        );
    }

    #[test]
    fn a_socket_mode_must_let_the_group_read_and_write() {
        assert!(mode_lets_group_write("770"));
        assert!(mode_lets_group_write("760"));
        assert!(!mode_lets_group_write("700"));
        assert!(!mode_lets_group_write("740"));
        assert!(!mode_lets_group_write("rwx"));
    }
}
