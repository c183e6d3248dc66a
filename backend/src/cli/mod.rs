//! The command line: clap for the subcommands, each carried out by a module of its own
//! (`design`: configure, check and plan; `deploy`: deploy, status, drill and destroy; `serve`),
//! with what they share in `files`.

mod deploy;
mod design;
mod files;
mod image;
mod scenario;
mod serve;

use clap::{Parser, Subcommand};
use m1studio_shared::plan::Profile;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

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
        /// How quickly failover reacts: fast (seconds), normal (half a minute) or safe (the manager's
        /// defaults); by default fast for docker designs, safe for existing hosts, as deploy does
        #[arg(long, value_parser = profile_value, value_name = "PROFILE")]
        profile: Option<Profile>,
        /// Print the plan as JSON
        #[arg(long)]
        json: bool,
    },
    /// Deploy DIR/config.yml: as containers on the local Docker engine (docker designs), or on
    /// existing hosts over SSH as root (bare designs, each instance with its ip_address); repmgr or Patroni
    Deploy {
        /// The cluster directory, or the config.yml itself
        path: PathBuf,
        /// How quickly failover reacts: fast (seconds), normal (half a minute) or safe (the manager's
        /// defaults); by default fast for docker designs, safe for existing hosts
        #[arg(long, value_parser = profile_value, value_name = "PROFILE")]
        profile: Option<Profile>,
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
        /// The private key that logs in to a bare design's hosts as root, for a switchover there
        #[arg(long, value_name = "FILE")]
        ssh_key: Option<PathBuf>,
    },
    /// Remove every container, volume and network of a deployed cluster (harmless to repeat)
    Destroy {
        /// The cluster directory, or the config.yml itself
        path: PathBuf,
    },
    /// Serve the designer in the browser, with its API
    Serve(serve::ServeArgs),
    /// Build the node images a workshop will use before the room fills (or check that they are there)
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Run a scenario (timed drills) on every running cluster of the store at once
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
    },
}

/// What to do with node images.
#[derive(Subcommand)]
enum ImageCommand {
    /// Build the image of each PostgreSQL version with each failover manager, where missing
    Build {
        /// The PostgreSQL versions (repeat, or separate with commas)
        #[arg(long = "postgresql", value_delimiter = ',', default_value = "15")]
        versions: Vec<String>,
        /// The failover managers: repmgr, patroni (repeat, or separate with commas)
        #[arg(
            long = "failover-manager",
            value_delimiter = ',',
            default_value = "repmgr"
        )]
        managers: Vec<String>,
    },
}

/// What to do with scenarios.
#[derive(Subcommand)]
enum ScenarioCommand {
    /// Run FILE (or --preset NAME) now on every running cluster, and print the results
    Run {
        /// The scenario file (YAML: a name, and steps each with `at` in seconds and an action)
        file: Option<PathBuf>,
        /// A built-in scenario instead: "kill the primary", "failover and back", "cut the primary off"
        #[arg(long, conflicts_with = "file")]
        preset: Option<String>,
        /// Print the results as CSV
        #[arg(long)]
        csv: bool,
        /// Run it on the clusters of the m1studio server at URL (a workshop's, such as
        /// https://room.example:8443), as its trainer, with the token of M1STUDIO_TOKEN or
        /// --token-file; without it, on the clusters of this machine's store
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// A file (readable by its owner only) whose first line is the server's token
        #[arg(long, value_name = "FILE", requires = "server")]
        token_file: Option<PathBuf>,
        /// Trust this certificate (PEM) for the server's HTTPS, such as its own self-signed one
        #[arg(long, value_name = "FILE", requires = "server")]
        ca_cert: Option<PathBuf>,
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

/// A failover profile named on the command line.
fn profile_value(text: &str) -> std::result::Result<Profile, String> {
    Profile::parse(text).ok_or_else(|| {
        format!("{text} is not a profile: fast (seconds, also: demo), normal (half a minute) or safe (the failover manager's defaults, also: production)")
    })
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
        Command::Configure { args } => design::configure_command(&args),
        Command::Check { path } => design::check_command(&path),
        Command::Serve(args) => serve::serve_command(args, db.as_deref()),
        Command::Image {
            command: ImageCommand::Build { versions, managers },
        } => image::build_command(&versions, &managers),
        Command::Scenario {
            command:
                ScenarioCommand::Run {
                    file,
                    preset,
                    csv,
                    server,
                    token_file,
                    ca_cert,
                },
        } => {
            let chosen = scenario::Chosen {
                file: file.as_deref(),
                preset: preset.as_deref(),
                csv,
            };
            match server {
                Some(url) => scenario::run_remote(
                    &chosen,
                    &scenario::Remote {
                        url,
                        token_file,
                        ca_cert,
                    },
                ),
                None => scenario::run_command(&chosen, db.as_deref()),
            }
        }
        Command::Deploy {
            path,
            profile,
            ssh_key,
        } => deploy::deploy_command(&path, profile, ssh_key.as_deref(), db.as_deref()),
        Command::Status { path, ssh_key } => {
            deploy::status_command(&path, ssh_key.as_deref(), db.as_deref())
        }
        Command::Destroy { path } => deploy::destroy_command(&path, db.as_deref()),
        Command::Drill {
            path,
            action,
            node,
            to,
            seconds,
            count,
            retarget_barman,
            ssh_key,
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
            drill().and_then(|drill| {
                deploy::drill_command(&path, drill, ssh_key.as_deref(), db.as_deref())
            })
        }
        Command::Plan {
            path,
            profile,
            json,
        } => design::plan_command(&path, profile, json),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
