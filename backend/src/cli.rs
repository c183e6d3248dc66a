//! The command line: `configure` mirrors `tpaexec configure` through the shared parser, and
//! `check` reads a config.yml back. Both print every diagnostic and create nothing on error.

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use m1studio_shared::cmdline::{self, Invocation};
use m1studio_shared::{Diagnostic, Severity, config, configure, has_errors, link};
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the designer runs, for share links, unless `M1STUDIO_URL` says otherwise.
const DEFAULT_DESIGNER_URL: &str = "http://127.0.0.1:8080/";

#[derive(Parser)]
#[command(
    name = "m1studio",
    version,
    about = "Design, configure and run M1 PostgreSQL clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The store of deployments (SQLite); by default m1studio/m1studio.db in the user's data directory
    #[arg(long, global = true, env = "M1STUDIO_DB", value_name = "FILE")]
    db: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Write DIR/config.yml for an M1 cluster (see `configure --architecture M1 --help`)
    #[command(disable_help_flag = true)]
    Configure {
        /// The cluster directory and the options, as `tpaexec configure` takes them
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "DIR OPTIONS"
        )]
        args: Vec<String>,
    },
    /// Read DIR/config.yml (or a config file) and report every problem in it
    Check {
        /// The cluster directory, or the config.yml itself
        path: PathBuf,
    },
    /// Show what deploying DIR/config.yml would do: each node's files and every step
    Plan {
        /// The cluster directory, or the config.yml itself
        path: PathBuf,
        /// How quickly failover reacts: fast (seconds), normal (half a minute) or safe (the manager's defaults)
        #[arg(long, value_enum, default_value = "safe")]
        profile: ProfileArg,
        /// Print the plan as JSON
        #[arg(long)]
        json: bool,
    },
    /// Deploy DIR/config.yml: as containers on the local Docker engine (docker designs), or on
    /// existing hosts over SSH as root (bare designs, each instance with its ip_address); repmgr or Patroni
    Deploy {
        /// The cluster directory, or the config.yml itself
        path: PathBuf,
        /// How quickly failover reacts: fast (seconds), normal (half a minute) or safe (the manager's defaults)
        #[arg(long, value_enum, default_value = "fast")]
        profile: ProfileArg,
        /// The private key that logs in to a bare design's hosts as root (otherwise ssh's own keys and agent)
        #[arg(long, value_name = "FILE")]
        ssh_key: Option<PathBuf>,
    },
    /// Show the live state of a deployed cluster: each node's role, timeline and lag, and Barman
    Status {
        /// The cluster directory, or the config.yml itself
        path: PathBuf,
        /// The private key that logs in to a bare design's hosts as root (otherwise ssh's own keys and agent)
        #[arg(long, value_name = "FILE")]
        ssh_key: Option<PathBuf>,
    },
    /// Break or repair a deployed cluster and watch it react; fault drills run a writer and print
    /// their report (recovery time, time without writes, rows lost, timeline)
    Drill {
        /// The cluster directory, or the config.yml itself
        path: PathBuf,
        /// What to do
        #[arg(value_enum)]
        action: DrillAction,
        /// The node, for stop-node and start
        #[arg(long)]
        node: Option<String>,
        /// The standby that becomes the primary, for switchover (by default the first replica)
        #[arg(long)]
        to: Option<String>,
        /// How long the fault lasts, for isolate-primary and stop-etcd (5 to 600)
        #[arg(long, default_value_t = 30)]
        seconds: u32,
        /// How many etcd members stop, for stop-etcd: 1 (the quorum holds) or 2 (it is lost)
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Point Barman at the new primary afterwards
        #[arg(long)]
        retarget_barman: bool,
    },
    /// Remove every container, volume and network of a deployed cluster (harmless to repeat)
    Destroy {
        /// The cluster directory, or the config.yml itself
        path: PathBuf,
    },
    /// Serve the designer in the browser, with its API
    Serve {
        /// Where to listen; anything but loopback needs a token
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The token clients must send to /api (Authorization: Bearer TOKEN)
        #[arg(long, env = "M1STUDIO_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// How many deployments run at once; the others wait in a queue
        #[arg(long, env = "M1STUDIO_PARALLEL", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
        parallel: u16,
    },
}

/// A drill, as the command line names it (the API's `action`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DrillAction {
    /// Kill the primary's container
    KillPrimary,
    /// Stop the primary's container cleanly
    StopPrimary,
    /// Cut the primary off the cluster's network for --seconds
    IsolatePrimary,
    /// Hand over to a standby (repmgr standby switchover, patronictl switchover)
    Switchover,
    /// Stop --count etcd members for --seconds (Patroni)
    StopEtcd,
    /// Stop --node's container (a standby, Barman, etcd, HAProxy)
    StopNode,
    /// Start --node's container again (an old primary rejoins as a standby)
    Start,
    /// Point Barman at the current primary
    RetargetBarman,
}

/// How quickly failover reacts.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ProfileArg {
    /// Seconds: for demonstrations and workshops (also: demo)
    #[value(alias = "demo")]
    Fast,
    /// About half a minute
    Normal,
    /// The failover manager's defaults: about a minute (also: production)
    #[value(alias = "production")]
    Safe,
}

impl From<ProfileArg> for m1studio_shared::plan::Profile {
    fn from(profile: ProfileArg) -> Self {
        match profile {
            ProfileArg::Fast => m1studio_shared::plan::Profile::Fast,
            ProfileArg::Normal => m1studio_shared::plan::Profile::Normal,
            ProfileArg::Safe => m1studio_shared::plan::Profile::Safe,
        }
    }
}

/// Runs the command line `args` (without the program name) and returns the exit code.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(std::iter::once(OsString::from("m1studio")).chain(args)) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let db = cli.db;
    let outcome = match cli.command {
        Command::Configure { args } => configure_command(&args),
        Command::Check { path } => check_command(&path),
        Command::Serve {
            listen,
            token,
            parallel,
        } => serve_command(listen, token, db.as_deref(), parallel.into()),
        Command::Deploy {
            path,
            profile,
            ssh_key,
        } => {
            crate::deploy::deploy_command(&path, profile.into(), ssh_key.as_deref(), db.as_deref())
        }
        Command::Status { path, ssh_key } => {
            crate::deploy::status_command(&path, ssh_key.as_deref(), db.as_deref())
        }
        Command::Destroy { path } => crate::deploy::destroy_command(&path, db.as_deref()),
        Command::Drill {
            path,
            action,
            node,
            to,
            seconds,
            count,
            retarget_barman,
        } => {
            use m1studio_shared::api::Drill;
            let needs_node = |what: &str| {
                node.clone().ok_or_else(|| {
                    anyhow::anyhow!(
                        "--node is needed with {what}: name the node (`m1studio status {}` lists them)",
                        path.display()
                    )
                })
            };
            let drill = || -> anyhow::Result<Drill> {
                Ok(match action {
                    DrillAction::KillPrimary => Drill::KillPrimary { retarget_barman },
                    DrillAction::StopPrimary => Drill::StopPrimary { retarget_barman },
                    DrillAction::IsolatePrimary => Drill::IsolatePrimary {
                        seconds,
                        retarget_barman,
                    },
                    DrillAction::Switchover => Drill::Switchover {
                        to,
                        retarget_barman,
                    },
                    DrillAction::StopEtcd => Drill::StopEtcd { count, seconds },
                    DrillAction::StopNode => Drill::StopNode {
                        node: needs_node("stop-node")?,
                    },
                    DrillAction::Start => Drill::Start {
                        node: needs_node("start")?,
                    },
                    DrillAction::RetargetBarman => Drill::RetargetBarman,
                })
            };
            drill().and_then(|drill| crate::deploy::drill_command(&path, drill, db.as_deref()))
        }
        Command::Plan {
            path,
            profile,
            json,
        } => plan_command(&path, profile.into(), json),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the store at `db`, or at the default place.
pub(crate) fn open_store(db: Option<&Path>) -> Result<crate::store::Store> {
    let path = match db {
        Some(path) => path.to_path_buf(),
        None => crate::store::default_path()?,
    };
    crate::store::Store::open(&path)
}

fn serve_command(
    listen: std::net::SocketAddr,
    token: Option<String>,
    db: Option<&Path>,
    parallel: usize,
) -> Result<ExitCode> {
    if let Some(problem) = crate::server::listen_problem(listen, token.as_deref()) {
        bail!("{problem}");
    }
    let store = open_store(db)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runner = crate::runner::Runner::new(store, parallel);
    let state = crate::server::AppState {
        token: token.map(Into::into),
        runner: Some(runner.clone()),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        for change in runner.reconcile().await? {
            tracing::info!("after the restart: {change}");
        }
        crate::server::serve(listen, state).await
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_diagnostics(diagnostics: &[Diagnostic]) {
    let mut stderr = std::io::stderr().lock();
    for d in diagnostics {
        let _ = writeln!(stderr, "{d}");
    }
}

pub(crate) fn summary(diagnostics: &[Diagnostic]) -> String {
    let count = |s: Severity| diagnostics.iter().filter(|d| d.severity == s).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning")
    )
}

fn configure_command(args: &[String]) -> Result<ExitCode> {
    let mut read_file = |path: &str| std::fs::read_to_string(path).map_err(|e| e.to_string());
    let (invocation, mut diagnostics) = cmdline::parse_args(args, &mut read_file);
    if invocation.help {
        print!("{}", cmdline::configure_help());
        return Ok(ExitCode::SUCCESS);
    }
    let (configured, validation) = configure(&invocation.draft);
    let dir_missing = invocation.dir.is_none();
    diagnostics.extend(
        validation
            .into_iter()
            .filter(|d| !(dir_missing && d.path == "cluster_name")),
    );
    let dir_problem = invocation
        .dir
        .as_deref()
        .and_then(|dir| dir_problem(Path::new(dir), invocation.force));
    let Some(configured) =
        configured.filter(|_| !has_errors(&diagnostics) && dir_problem.is_none())
    else {
        print_diagnostics(&diagnostics);
        if let Some(problem) = dir_problem {
            eprintln!("error[cluster-dir] cluster_dir: {problem}");
        }
        eprintln!("nothing was written ({})", summary(&diagnostics));
        return Ok(ExitCode::FAILURE);
    };
    print_diagnostics(&diagnostics);
    let Invocation { dir, draft, .. } = invocation;
    let dir = PathBuf::from(dir.unwrap_or_default());
    write_config(&dir, &configured.config_yml)?;
    let base = std::env::var("M1STUDIO_URL").unwrap_or_else(|_| DEFAULT_DESIGNER_URL.to_string());
    println!(
        "wrote {} ({} instances)",
        dir.join("config.yml").display(),
        configured.topology.instances.len()
    );
    for instance in &configured.topology.instances {
        let roles: Vec<&str> = instance.roles.iter().map(|r| r.as_str()).collect();
        println!(
            "  {:>2}  {:<12} {:<8} {}",
            instance.node,
            instance.name,
            instance.location,
            roles.join(", ")
        );
    }
    println!("share: {}", link::url(&base, &draft));
    Ok(ExitCode::SUCCESS)
}

/// Why configure may not write into `dir`, if it may not.
fn dir_problem(dir: &Path, force: bool) -> Option<String> {
    if dir.exists() && !dir.is_dir() {
        return Some(format!(
            "{} exists and is not a directory: choose another path",
            dir.display()
        ));
    }
    let not_empty = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    (not_empty && !force).then(|| {
        format!(
            "{} exists and is not empty: choose a new directory, or add --force to overwrite its config.yml",
            dir.display()
        )
    })
}

/// Writes config.yml whole or not at all: into a temporary file beside it, then renamed.
fn write_config(dir: &Path, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let target = dir.join("config.yml");
    let partial = dir.join(".config.yml.partial");
    std::fs::write(&partial, text)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &target)
        .with_context(|| format!("cannot write {}", target.display()))?;
    Ok(())
}

/// The config.yml that `path` names: a cluster directory's, or the file itself.
pub(crate) fn config_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("config.yml")
    } else {
        path.to_path_buf()
    }
}

/// Reads the config.yml of a cluster directory (or the file itself).
pub(crate) fn read_config(
    path: &Path,
) -> Result<(PathBuf, Option<m1studio_shared::Draft>, Vec<Diagnostic>)> {
    let file = config_file(path);
    if !file.exists() {
        bail!(
            "{} does not exist: give a cluster directory that holds a config.yml",
            file.display()
        );
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let (draft, diagnostics) = config::read(&text);
    Ok((file, draft, diagnostics))
}

fn plan_command(
    path: &Path,
    profile: m1studio_shared::plan::Profile,
    json: bool,
) -> Result<ExitCode> {
    let (file, draft, diagnostics) = read_config(path)?;
    let configured = draft
        .filter(|_| !has_errors(&diagnostics))
        .and_then(|d| configure(&d).0);
    let Some(configured) = configured else {
        print_diagnostics(&diagnostics);
        eprintln!(
            "{} has problems ({}): run m1studio check for details",
            file.display(),
            summary(&diagnostics)
        );
        return Ok(ExitCode::FAILURE);
    };
    let options = crate::runner::plan_options(profile);
    match m1studio_shared::plan::plan(&configured.design, &configured.topology, options) {
        Ok(plan) if json => println!("{}", serde_json::to_string_pretty(&plan)?),
        Ok(plan) => {
            for node in &plan.nodes {
                for f in &node.files {
                    println!(
                        "# ==> {}:{} ({}, {:o})\n{}",
                        node.node, f.path, f.owner, f.mode, f.content
                    );
                }
            }
            print!("{}", plan.describe());
        }
        Err(problems) => {
            print_diagnostics(&problems);
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check_command(path: &Path) -> Result<ExitCode> {
    let (file, draft, diagnostics) = read_config(path)?;
    print_diagnostics(&diagnostics);
    match draft {
        Some(draft) if !has_errors(&diagnostics) => {
            println!(
                "{} is a valid M1 configuration ({})",
                file.display(),
                summary(&diagnostics)
            );
            println!(
                "same as: {}",
                cmdline::command_line(cmdline::Program::M1studio, &draft.cluster_name, &draft)
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!(
                "{} has problems ({})",
                file.display(),
                summary(&diagnostics)
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
