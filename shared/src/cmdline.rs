//! The `configure` command line: the table of options (names, aliases, defaults, help), the
//! parser shared by the CLI and the browser, the help text, and the equivalent
//! `m1studio configure …` and `tpaexec configure …` lines for a draft.

use crate::diag::{Code, Diagnostic};
use crate::hostnames::{default_hostname, parse_hostnames_addresses, parse_hostnames_file};
use crate::spec::{DEFAULT_INSTANCE_TYPE, DEFAULT_NETWORK, DEFAULT_REGION, Draft, Flavour};
use crate::validate::closest;
use std::fmt::Write as _;

/// Which group an option is listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Must be given.
    Mandatory,
    /// Has a default.
    Additional,
    /// About the command, not the design.
    Command,
}

/// Every option `configure` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    /// `--architecture`.
    Architecture,
    /// `--postgresql`.
    Postgresql,
    /// `--edb-postgres-advanced`.
    Epas,
    /// `--edb-postgres-extended`.
    Pgextended,
    /// `--postgres-flavour`.
    PostgresFlavour,
    /// `--postgres-version`.
    PostgresVersion,
    /// `--failover-manager`.
    FailoverManager,
    /// `--enable-efm`.
    EnableEfm,
    /// `--enable-repmgr`.
    EnableRepmgr,
    /// `--enable-patroni`.
    EnablePatroni,
    /// `--platform`.
    Platform,
    /// `--region`.
    Region,
    /// `--instance-type`.
    InstanceType,
    /// `--distribution`.
    Distribution,
    /// `--os-version`.
    OsVersion,
    /// `--num-cascaded-replicas`.
    NumCascadedReplicas,
    /// `--enable-haproxy`.
    EnableHaproxy,
    /// `--synchronous-replication`.
    Synchronous,
    /// `--patroni-dcs`.
    PatroniDcs,
    /// `--redwood`.
    Redwood,
    /// `--no-redwood`.
    NoRedwood,
    /// `--location-names`.
    LocationNames,
    /// `--owner`.
    Owner,
    /// `--network`.
    Network,
    /// `--hostnames-from`.
    HostnamesFrom,
    /// `--keyring-backend`.
    KeyringBackend,
    /// `--use-volatile-subscriptions`.
    VolatileSubscriptions,
    /// `--root-volume-size`.
    RootVolumeSize,
    /// `--postgres-volume-size`.
    PostgresVolumeSize,
    /// `--barman-volume-size`.
    BarmanVolumeSize,
    /// `--regions`: TPA's list of regions; M1's two locations share one.
    Regions,
    /// `--force`.
    Force,
    /// `--help`.
    Help,
}

/// One option: its names (the first is the canonical one), its value, and its help.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// Which option.
    pub opt: Opt,
    /// Its names, canonical first, aliases after.
    pub names: &'static [&'static str],
    /// The name of its value, or `None` for a flag.
    pub value: Option<&'static str>,
    /// Where the help lists it.
    pub group: Group,
    /// What it does.
    pub help: &'static str,
    /// What applies when it is left out.
    pub default: Option<&'static str>,
}

const fn option(
    opt: Opt,
    names: &'static [&'static str],
    value: Option<&'static str>,
    group: Group,
    help: &'static str,
    default: Option<&'static str>,
) -> OptionSpec {
    OptionSpec {
        opt,
        names,
        value,
        group,
        help,
        default,
    }
}

/// The options, in the order the help lists them.
pub const OPTIONS: &[OptionSpec] = &[
    option(
        Opt::Architecture,
        &["--architecture", "-a"],
        Some("M1"),
        Group::Mandatory,
        "the architecture; M1 is the only one",
        None,
    ),
    option(
        Opt::Postgresql,
        &["--postgresql"],
        Some("VERSION"),
        Group::Mandatory,
        "PostgreSQL of this major version (10 to 18)",
        None,
    ),
    option(
        Opt::Epas,
        &["--edb-postgres-advanced", "--epas"],
        Some("VERSION"),
        Group::Mandatory,
        "EDB Postgres Advanced Server of this version (needs --redwood or --no-redwood)",
        None,
    ),
    option(
        Opt::Pgextended,
        &["--edb-postgres-extended", "--pgextended", "--edbpge"],
        Some("VERSION"),
        Group::Mandatory,
        "EDB Postgres Extended of this version",
        None,
    ),
    option(
        Opt::PostgresFlavour,
        &["--postgres-flavour"],
        Some("FLAVOUR"),
        Group::Mandatory,
        "the flavour by name: postgresql, epas or pgextended (with --postgres-version)",
        None,
    ),
    option(
        Opt::PostgresVersion,
        &["--postgres-version"],
        Some("VERSION"),
        Group::Mandatory,
        "the major version, with --postgres-flavour",
        None,
    ),
    option(
        Opt::FailoverManager,
        &["--failover-manager"],
        Some("MANAGER"),
        Group::Mandatory,
        "the failover manager: efm, repmgr or patroni",
        None,
    ),
    option(
        Opt::EnableEfm,
        &["--enable-efm"],
        None,
        Group::Mandatory,
        "the same as --failover-manager efm",
        None,
    ),
    option(
        Opt::EnableRepmgr,
        &["--enable-repmgr"],
        None,
        Group::Mandatory,
        "the same as --failover-manager repmgr",
        None,
    ),
    option(
        Opt::EnablePatroni,
        &["--enable-patroni"],
        None,
        Group::Mandatory,
        "the same as --failover-manager patroni",
        None,
    ),
    option(
        Opt::Platform,
        &["--platform"],
        Some("PLATFORM"),
        Group::Additional,
        "where the instances run: aws, docker or bare",
        Some("aws"),
    ),
    option(
        Opt::Region,
        &["--region"],
        Some("REGION"),
        Group::Additional,
        "the AWS region (aws only)",
        Some(DEFAULT_REGION),
    ),
    option(
        Opt::InstanceType,
        &["--instance-type"],
        Some("TYPE"),
        Group::Additional,
        "the EC2 instance type (aws only)",
        Some(DEFAULT_INSTANCE_TYPE),
    ),
    option(
        Opt::Distribution,
        &["--distribution", "--os"],
        Some("DISTRIBUTION"),
        Group::Additional,
        "the operating system: Debian, Ubuntu, RedHat, Rocky, AlmaLinux or SLES (docker: Debian)",
        Some("Debian"),
    ),
    option(
        Opt::OsVersion,
        &["--os-version"],
        Some("VERSION"),
        Group::Additional,
        "the operating system's version",
        Some("12 for Debian"),
    ),
    option(
        Opt::NumCascadedReplicas,
        &["--num-cascaded-replicas"],
        Some("N"),
        Group::Additional,
        "replicas cascaded from the first replica (0 to 32)",
        Some("1"),
    ),
    option(
        Opt::EnableHaproxy,
        &["--enable-haproxy"],
        None,
        Group::Additional,
        "add 2 HAProxy nodes that route to the leader (Patroni only)",
        Some("off"),
    ),
    option(
        Opt::Synchronous,
        &["--synchronous-replication"],
        None,
        Group::Additional,
        "commits wait for the first replica, so a failover loses no acknowledged write (m1studio; written as synchronous_standby_names)",
        Some("off"),
    ),
    option(
        Opt::PatroniDcs,
        &["--patroni-dcs"],
        Some("DCS"),
        Group::Additional,
        "Patroni's configuration store; etcd is the only choice (Patroni only)",
        Some("etcd"),
    ),
    option(
        Opt::Redwood,
        &["--redwood"],
        None,
        Group::Additional,
        "EDB Postgres Advanced Server in Oracle-compatible mode (EPAS only, and required there)",
        None,
    ),
    option(
        Opt::NoRedwood,
        &["--no-redwood", "--no-redwood-compat"],
        None,
        Group::Additional,
        "EDB Postgres Advanced Server in PostgreSQL mode (EPAS only)",
        None,
    ),
    option(
        Opt::LocationNames,
        &["--location-names"],
        Some("A B"),
        Group::Additional,
        "the primary's location, then the disaster-recovery one",
        Some("main dr"),
    ),
    option(
        Opt::Owner,
        &["--owner"],
        Some("OWNER"),
        Group::Additional,
        "the Owner tag of the cluster",
        None,
    ),
    option(
        Opt::Network,
        &["--network"],
        Some("CIDR"),
        Group::Additional,
        "the address range of the cluster (aws and docker)",
        Some(DEFAULT_NETWORK),
    ),
    option(
        Opt::HostnamesFrom,
        &["--hostnames-from"],
        Some("FILE"),
        Group::Additional,
        "host names, one a line, in node order",
        None,
    ),
    option(
        Opt::KeyringBackend,
        &["--keyring-backend"],
        Some("BACKEND"),
        Group::Additional,
        "where TPA keeps the cluster's vault password: system or legacy",
        Some("system"),
    ),
    option(
        Opt::VolatileSubscriptions,
        &["--use-volatile-subscriptions"],
        None,
        Group::Additional,
        "TPA registers subscriptions anew at each deploy (always on for docker)",
        Some("off"),
    ),
    option(
        Opt::RootVolumeSize,
        &["--root-volume-size"],
        Some("GB"),
        Group::Additional,
        "the root volume of every instance (aws only)",
        Some("16"),
    ),
    option(
        Opt::PostgresVolumeSize,
        &["--postgres-volume-size"],
        Some("GB"),
        Group::Additional,
        "the Postgres data volume of every instance (aws only)",
        Some("16"),
    ),
    option(
        Opt::BarmanVolumeSize,
        &["--barman-volume-size"],
        Some("GB"),
        Group::Additional,
        "Barman's backup volume (aws only)",
        Some("32"),
    ),
    option(
        Opt::Regions,
        &["--regions"],
        Some("REGION"),
        Group::Additional,
        "TPA's list of regions: M1's two locations share one, so give one (the same as --region)",
        None,
    ),
    option(
        Opt::Force,
        &["--force"],
        None,
        Group::Command,
        "write into a directory that is not empty",
        None,
    ),
    option(
        Opt::Help,
        &["--help", "-h"],
        None,
        Group::Command,
        "show this help",
        None,
    ),
];

/// The option called `name`, by any of its names.
pub fn find_option(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.names.contains(&name))
}

fn spec(opt: Opt) -> &'static OptionSpec {
    OPTIONS.iter().find(|o| o.opt == opt).unwrap_or(&OPTIONS[0])
}

/// The canonical name of `opt`.
pub fn option_name(opt: Opt) -> &'static str {
    spec(opt).names[0]
}

/// A parsed `configure` invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// The cluster directory, as given.
    pub dir: Option<String>,
    /// The design.
    pub draft: Draft,
    /// `--force`.
    pub force: bool,
    /// `--help`.
    pub help: bool,
    /// The `--hostnames-from` file, as given.
    pub hostnames_from: Option<String>,
}

/// The last path component of a cluster directory: the cluster's name.
pub fn cluster_name_of(dir: &str) -> String {
    dir.trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_string()
}

struct Parser<'a> {
    out: Vec<Diagnostic>,
    inv: Invocation,
    /// The option that set each single-valued setting, for conflict messages.
    flavour_by: Option<&'static str>,
    version_by: Option<&'static str>,
    failover_by: Option<&'static str>,
    redwood_by: Option<&'static str>,
    read_file: &'a mut dyn FnMut(&str) -> Result<String, String>,
}

impl Parser<'_> {
    fn set_flavour(&mut self, flavour: String, by: &'static str) {
        match (&self.inv.draft.postgres_flavour, self.flavour_by) {
            (Some(old), Some(old_by))
                if Flavour::parse_alias(old) != Flavour::parse_alias(&flavour)
                    || old_by == by && *old != flavour =>
            {
                self.out.push(Diagnostic::error(
                    "postgres_flavour",
                    Code::FlavourConflict,
                    format!(
                        "{by} {flavour} conflicts with {old_by} {old}: choose one Postgres flavour"
                    ),
                ));
            }
            _ => {
                self.inv.draft.postgres_flavour = Some(flavour);
                self.flavour_by = Some(by);
            }
        }
    }

    fn set_version(&mut self, version: String, by: &'static str) {
        match (&self.inv.draft.postgres_version, self.version_by) {
            (Some(old), Some(old_by)) if *old != version => {
                self.out.push(Diagnostic::error(
                    "postgres_version",
                    Code::OptionRepeated,
                    format!("{by} gives version {version}, but {old_by} already gave {old}: give the Postgres version once"),
                ));
            }
            _ => {
                self.inv.draft.postgres_version = Some(version);
                self.version_by = Some(by);
            }
        }
    }

    fn set_failover(&mut self, manager: &str, by: &'static str) {
        match (&self.inv.draft.failover_manager, self.failover_by) {
            (Some(old), Some(old_by)) if old != manager => {
                self.out.push(Diagnostic::error(
                    "failover_manager",
                    Code::FailoverManagerConflict,
                    format!(
                        "{} conflicts with {}: choose one failover manager",
                        shown(by, manager),
                        shown(old_by, old)
                    ),
                ));
            }
            _ => {
                self.inv.draft.failover_manager = Some(manager.to_string());
                self.failover_by = Some(by);
            }
        }
    }

    fn set_redwood(&mut self, redwood: bool, by: &'static str) {
        match (self.inv.draft.redwood, self.redwood_by) {
            (Some(old), Some(old_by)) if old != redwood => self.out.push(Diagnostic::error(
                "redwood",
                Code::RedwoodConflict,
                format!("{by} conflicts with {old_by}: give one of them"),
            )),
            _ => {
                self.inv.draft.redwood = Some(redwood);
                self.redwood_by = Some(by);
            }
        }
    }

    fn set_scalar(&mut self, opt: Opt, path: &str, value: String) {
        let name = option_name(opt);
        let draft = &mut self.inv.draft;
        let slot = match opt {
            Opt::Architecture => &mut draft.architecture,
            Opt::Platform => &mut draft.platform,
            Opt::Region => &mut draft.region,
            Opt::InstanceType => &mut draft.instance_type,
            Opt::Distribution => &mut draft.distribution,
            Opt::OsVersion => &mut draft.os_version,
            Opt::NumCascadedReplicas => &mut draft.num_cascaded_replicas,
            Opt::PatroniDcs => &mut draft.patroni_dcs,
            Opt::Owner => &mut draft.owner,
            Opt::Network => &mut draft.network,
            Opt::KeyringBackend => &mut draft.keyring_backend,
            Opt::RootVolumeSize => &mut draft.volume_sizes.root,
            Opt::PostgresVolumeSize => &mut draft.volume_sizes.postgres,
            Opt::BarmanVolumeSize => &mut draft.volume_sizes.barman,
            _ => &mut self.inv.hostnames_from,
        };
        match slot {
            Some(old) if *old != value => {
                let message = format!("{name} is given twice ({old}, then {value}): give it once");
                self.out
                    .push(Diagnostic::error(path, Code::OptionRepeated, message));
            }
            _ => *slot = Some(value),
        }
    }

    fn apply(&mut self, opt: Opt, by: &'static str, values: Vec<String>) {
        let one = || values.first().cloned().unwrap_or_default();
        match opt {
            Opt::Postgresql | Opt::Epas | Opt::Pgextended => {
                let flavour = match opt {
                    Opt::Postgresql => Flavour::Postgresql,
                    Opt::Epas => Flavour::Epas,
                    _ => Flavour::Pgextended,
                };
                self.set_flavour(flavour.as_str().to_string(), by);
                self.set_version(one(), by);
            }
            Opt::PostgresFlavour => self.set_flavour(one(), by),
            Opt::PostgresVersion => self.set_version(one(), by),
            Opt::FailoverManager => self.set_failover(&one(), by),
            Opt::EnableEfm => self.set_failover("efm", by),
            Opt::EnableRepmgr => self.set_failover("repmgr", by),
            Opt::EnablePatroni => self.set_failover("patroni", by),
            Opt::EnableHaproxy => self.inv.draft.enable_haproxy = true,
            Opt::Synchronous => self.inv.draft.synchronous = true,
            Opt::Redwood => self.set_redwood(true, by),
            Opt::NoRedwood => self.set_redwood(false, by),
            Opt::LocationNames => {
                if self.inv.draft.location_names.is_some() {
                    self.out.push(Diagnostic::error(
                        "location_names",
                        Code::OptionRepeated,
                        "--location-names is given twice: give it once, with both names",
                    ));
                } else {
                    self.inv.draft.location_names = Some(values);
                }
            }
            Opt::HostnamesFrom => {
                let path = one();
                match (self.read_file)(&path) {
                    Ok(text) => {
                        let names = parse_hostnames_file(&text);
                        let addresses = parse_hostnames_addresses(&text);
                        // A file that gives addresses to hosts of the default names names no
                        // host itself, as config.yml does not.
                        let defaults = (1..=names.len() as u32).map(default_hostname);
                        if addresses.is_none() || !names.iter().cloned().eq(defaults) {
                            self.inv.draft.hostnames = Some(names);
                        }
                        self.inv.draft.addresses = addresses;
                    }
                    Err(err) => self.out.push(Diagnostic::error(
                        "hostnames",
                        Code::HostnamesFileUnreadable,
                        format!(
                            "cannot read the --hostnames-from file '{path}': {err}; check the path"
                        ),
                    )),
                }
                self.set_scalar(opt, "hostnames", path);
            }
            Opt::Force => self.inv.force = true,
            Opt::Help => self.inv.help = true,
            Opt::Architecture => self.set_scalar(opt, "architecture", one()),
            Opt::Platform => self.set_scalar(opt, "platform", one()),
            Opt::Region => self.set_scalar(opt, "region", one()),
            Opt::InstanceType => self.set_scalar(opt, "instance_type", one()),
            Opt::Distribution => self.set_scalar(opt, "distribution", one()),
            Opt::OsVersion => self.set_scalar(opt, "os_version", one()),
            Opt::NumCascadedReplicas => self.set_scalar(opt, "num_cascaded_replicas", one()),
            Opt::PatroniDcs => self.set_scalar(opt, "patroni_dcs", one()),
            Opt::Owner => self.set_scalar(opt, "owner", one()),
            Opt::Network => self.set_scalar(opt, "network", one()),
            Opt::KeyringBackend => self.set_scalar(opt, "keyring_backend", one()),
            Opt::RootVolumeSize => self.set_scalar(opt, "volume_sizes.root", one()),
            Opt::PostgresVolumeSize => self.set_scalar(opt, "volume_sizes.postgres", one()),
            Opt::BarmanVolumeSize => self.set_scalar(opt, "volume_sizes.barman", one()),
            Opt::VolatileSubscriptions => self.inv.draft.volatile_subscriptions = true,
            Opt::Regions => match values.as_slice() {
                [region] => self.set_scalar(Opt::Region, "region", region.clone()),
                _ => self.out.push(Diagnostic::error(
                    "region",
                    Code::OptionUnsupported,
                    format!(
                        "--regions gives {} regions, but M1's two locations share one region in m1studio: give one, as --region {}",
                        values.len(),
                        values.first().map_or(DEFAULT_REGION, String::as_str)
                    ),
                )),
            },
        }
    }
}

/// How m1studio treats an option of `tpaexec configure` (v23.31) that it does not use itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// Accepted, with a note: it changes nothing in an m1studio cluster.
    Ignored(&'static str),
    /// Refused: m1studio cannot do what it asks.
    Unsupported(&'static str),
}

/// How many values a foreign option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// A flag.
    None,
    /// One value.
    One,
    /// One or more values, up to the next option.
    Many,
}

/// Every option of `tpaexec configure --architecture M1 --help` (TPA v23.31) that m1studio does not
/// take as its own, with what it does with it. A TPA command line pasted into `configure`
/// parses: what changes nothing gets a note, what m1studio cannot honour an error with the reason.
pub const TPA_OPTIONS: &[(&[&str], Arity, Foreign)] = &[
    (
        &["--verbose", "-v"],
        Arity::None,
        Foreign::Ignored("m1studio configure prints the same either way"),
    ),
    (
        &["--no-git"],
        Arity::None,
        Foreign::Ignored("m1studio never makes the cluster directory a git repository"),
    ),
    (
        &["--no-shuffle-subnets"],
        Arity::None,
        Foreign::Ignored(
            "m1studio's subnets are never shuffled: the same design always gets the same ones",
        ),
    ),
    (
        &["--hostnames-unsorted"],
        Arity::None,
        Foreign::Ignored(
            "m1studio's host names are fixed for each node, never drawn from a shuffled word list",
        ),
    ),
    (
        &["--hostnames-sorted-by"],
        Arity::One,
        Foreign::Ignored(
            "m1studio's host names are fixed for each node, never drawn from a sorted word list",
        ),
    ),
    (
        &["--cluster-bucket"],
        Arity::One,
        Foreign::Ignored("m1studio keeps nothing in an S3 bucket"),
    ),
    (
        &["--overrides-from"],
        Arity::Many,
        Foreign::Unsupported(
            "m1studio renders config.yml itself and has no TPA template to override: edit the options, or the config.yml it writes",
        ),
    ),
    (
        &["--use-redhat-aac", "--use-ansible-tower"],
        Arity::One,
        Foreign::Unsupported(
            "m1studio deploys the cluster itself, not through Ansible Automation Controller",
        ),
    ),
    (
        &["--tower-git-repository"],
        Arity::One,
        Foreign::Unsupported(
            "m1studio deploys the cluster itself, not through Ansible Automation Controller",
        ),
    ),
    (
        &["--os-image"],
        Arity::One,
        Foreign::Unsupported(
            "m1studio picks the image from --distribution and --os-version (on docker, its own node image): give those instead",
        ),
    ),
    (
        &["--2Q-repositories"],
        Arity::Many,
        Foreign::Unsupported(
            "2ndQuadrant's repositories are retired, and no M1 component comes from them",
        ),
    ),
    (
        &["--edb-repositories"],
        Arity::Many,
        Foreign::Unsupported(
            "m1studio chooses EDB's repositories from the flavour and the failover manager",
        ),
    ),
    (
        &["--install-from-source"],
        Arity::Many,
        Foreign::Unsupported("m1studio installs every component from packages"),
    ),
    (
        &[
            "--postgres-package-version",
            "--repmgr-package-version",
            "--barman-package-version",
            "--pglogical-package-version",
            "--bdr-package-version",
            "--pgbouncer-package-version",
        ],
        Arity::One,
        Foreign::Unsupported(
            "m1studio installs the version the distribution's repository carries for --postgresql; pinning a package version is not supported",
        ),
    ),
    (
        &["--enable-pem"],
        Arity::None,
        Foreign::Unsupported(
            "m1studio does not deploy a PEM server; its own page shows roles, lag and backups",
        ),
    ),
    (
        &["--enable-pg-backup-api"],
        Arity::None,
        Foreign::Unsupported("m1studio does not install pg-backup-api on the Barman node"),
    ),
    (
        &[
            "--extra-packages",
            "--extra-optional-packages",
            "--extra-postgres-packages",
        ],
        Arity::Many,
        Foreign::Unsupported(
            "m1studio installs only what each role of M1 needs: add packages to the hosts after deploying",
        ),
    ),
    (
        &["--enable-local-repo", "--use-local-repo-only"],
        Arity::None,
        Foreign::Unsupported(
            "m1studio installs from the distribution's repositories, not from a local repository in the cluster directory",
        ),
    ),
    (
        &["--exclude-subnets-from"],
        Arity::One,
        Foreign::Unsupported(
            "m1studio places every cluster inside --network: give a --network that other clusters do not use",
        ),
    ),
    (
        &["--subnet-prefix"],
        Arity::One,
        Foreign::Unsupported("m1studio sizes each location's subnet to its nodes inside --network"),
    ),
    (
        &["--hostnames-pattern"],
        Arity::One,
        Foreign::Unsupported("give the host names in a file with --hostnames-from"),
    ),
    (
        &["--cluster-prefixed-hostnames"],
        Arity::None,
        Foreign::Unsupported("give the host names in a file with --hostnames-from"),
    ),
];

/// The foreign option called `name`.
pub fn find_tpa_option(name: &str) -> Option<(&'static str, Arity, Foreign)> {
    TPA_OPTIONS
        .iter()
        .find(|(names, _, _)| names.contains(&name))
        .map(|(names, arity, what)| (names[0], *arity, *what))
}

fn shown(by: &str, value: &str) -> String {
    if by.starts_with("--enable-") {
        by.to_string()
    } else {
        format!("{by} {value}")
    }
}

/// Whether `arg` looks like an option rather than a value.
fn is_option(arg: &str) -> bool {
    arg.starts_with('-') && arg.len() > 1 && !arg[1..].starts_with(|c: char| c.is_ascii_digit())
}

/// Parses the arguments of `configure` (everything after the word `configure`). Files named by
/// `--hostnames-from` are read through `read_file`, so the parser itself does no IO.
/// Every problem is reported; the draft holds whatever could be understood.
pub fn parse_args<S: AsRef<str>>(
    args: &[S],
    read_file: &mut dyn FnMut(&str) -> Result<String, String>,
) -> (Invocation, Vec<Diagnostic>) {
    let mut parser = Parser {
        out: Vec::new(),
        inv: Invocation::default(),
        flavour_by: None,
        version_by: None,
        failover_by: None,
        redwood_by: None,
        read_file,
    };
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let mut i = 0;
    let mut only_positionals = false;
    while i < args.len() {
        let arg = args[i];
        i += 1;
        if only_positionals || !is_option(arg) {
            if parser.inv.dir.is_none() {
                parser.inv.dir = Some(arg.to_string());
            } else {
                parser.out.push(Diagnostic::error(
                    "cluster_dir",
                    Code::ArgumentUnexpected,
                    format!("unexpected argument '{arg}': configure takes one cluster directory, and every option starts with --"),
                ));
            }
            continue;
        }
        if arg == "--" {
            only_positionals = true;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (arg, None),
        };
        if find_option(name).is_none()
            && let Some((canonical, arity, what)) = find_tpa_option(name)
        {
            let mut given = inline.clone().into_iter().collect::<Vec<_>>();
            let takes = match arity {
                Arity::None => 0,
                Arity::One => 1,
                Arity::Many => usize::MAX,
            };
            while given.len() < takes && i < args.len() && !is_option(args[i]) {
                given.push(args[i].to_string());
                i += 1;
            }
            match what {
                Foreign::Ignored(why) => parser.out.push(Diagnostic::info(
                    "options",
                    Code::OptionIgnored,
                    format!("{canonical} is tpaexec's, and changes nothing here: {why}"),
                )),
                Foreign::Unsupported(why) => parser.out.push(Diagnostic::error(
                    "options",
                    Code::OptionUnsupported,
                    format!("{canonical} cannot be honoured by m1studio: {why}; remove it"),
                )),
            }
            continue;
        }
        let Some(option) = find_option(name) else {
            let names: Vec<&str> = OPTIONS
                .iter()
                .flat_map(|o| o.names.iter().copied())
                .collect();
            let hint = closest(name, &names)
                .map(|near| format!("did you mean {near}? "))
                .unwrap_or_default();
            parser.out.push(Diagnostic::error(
                "options",
                Code::OptionUnknown,
                format!("unknown option {name}: {hint}see m1studio configure --architecture M1 --help for every option"),
            ));
            // Its value, if it has one, is not a second cluster directory.
            if inline.is_none() && parser.inv.dir.is_some() && i < args.len() && !is_option(args[i])
            {
                i += 1;
            }
            continue;
        };
        let by = option.names[0];
        let mut values = Vec::new();
        match (option.value, inline) {
            (None, Some(_)) => {
                parser.out.push(Diagnostic::error(
                    "options",
                    Code::OptionUnknown,
                    format!("{by} takes no value: write it alone, as {by}"),
                ));
                continue;
            }
            (None, None) => {}
            (Some(_), Some(value)) => values.push(value),
            (Some(_), None) if matches!(option.opt, Opt::LocationNames | Opt::Regions) => {
                while i < args.len() && !is_option(args[i]) {
                    values.push(args[i].to_string());
                    i += 1;
                }
            }
            (Some(_), None) => {
                if i < args.len() && !is_option(args[i]) {
                    values.push(args[i].to_string());
                    i += 1;
                }
            }
        }
        if option.value.is_some() && values.is_empty() {
            let example = match option.opt {
                Opt::LocationNames => "main dr",
                Opt::Architecture => "M1",
                Opt::FailoverManager => "repmgr",
                Opt::Platform => "docker",
                Opt::NumCascadedReplicas => "2",
                _ => option.default.unwrap_or("15"),
            };
            parser.out.push(Diagnostic::error(
                "options",
                Code::OptionValueMissing,
                format!(
                    "{by} needs a value ({}): for example {by} {example}",
                    option.value.unwrap_or_default()
                ),
            ));
            continue;
        }
        parser.apply(option.opt, by, values);
    }
    let mut inv = parser.inv;
    match &inv.dir {
        Some(dir) => inv.draft.cluster_name = cluster_name_of(dir),
        None if !inv.help => parser.out.push(Diagnostic::error(
            "cluster_dir",
            Code::ClusterDirMissing,
            "no cluster directory given: name one first, as in m1studio configure ~/clusters/m1 --architecture M1 …",
        )),
        None => {}
    }
    (inv, parser.out)
}

/// Parses a whole `m1studio configure …` or `tpaexec configure …` line, quoted as a POSIX shell would.
pub fn parse_command_line(
    line: &str,
    read_file: &mut dyn FnMut(&str) -> Result<String, String>,
) -> (Invocation, Vec<Diagnostic>) {
    let joined = line.replace("\\\n", " ");
    let Some(words) = shlex::split(&joined) else {
        return (
            Invocation::default(),
            vec![Diagnostic::error(
                "command_line",
                Code::CommandLineInvalid,
                "the command line has an unterminated quote: close every ' and \"",
            )],
        );
    };
    let start = words.iter().position(|w| w == "configure");
    let program_ok = start.is_some_and(|s| {
        s >= 1 && {
            let program = cluster_name_of(&words[s - 1]);
            program == "m1studio" || program == "tpaexec"
        }
    });
    match (start, program_ok) {
        (Some(s), true) => parse_args(&words[s + 1..], read_file),
        _ => (
            Invocation::default(),
            vec![Diagnostic::error(
                "command_line",
                Code::CommandLineInvalid,
                "the command line must start with m1studio configure or tpaexec configure",
            )],
        ),
    }
}

/// Which program a rendered line calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `m1studio configure`.
    M1studio,
    /// `tpaexec configure`.
    Tpaexec,
}

/// The file name a rendered command line gives to `--hostnames-from`.
pub const HOSTNAMES_FILE: &str = "hostnames.txt";

/// The arguments after `configure` that recreate `draft`, defaults left out.
pub fn command_args(dir: &str, draft: &Draft) -> Vec<String> {
    let mut args = vec![dir.to_string()];
    let mut push = |opt: Opt, values: &[&str]| {
        args.push(option_name(opt).to_string());
        args.extend(values.iter().map(|v| v.to_string()));
    };
    if let Some(architecture) = &draft.architecture {
        push(Opt::Architecture, &[architecture]);
    }
    let flavour_opt = match draft
        .postgres_flavour
        .as_deref()
        .map(|f| (f, Flavour::parse(f)))
    {
        Some((_, Some(Flavour::Postgresql))) => Some(Opt::Postgresql),
        Some((_, Some(Flavour::Epas))) => Some(Opt::Epas),
        Some((_, Some(Flavour::Pgextended))) => Some(Opt::Pgextended),
        _ => None,
    };
    match (
        flavour_opt,
        &draft.postgres_flavour,
        &draft.postgres_version,
    ) {
        (Some(opt), _, Some(version)) => push(opt, &[version]),
        (_, flavour, version) => {
            if let Some(flavour) = flavour {
                push(Opt::PostgresFlavour, &[flavour]);
            }
            if let Some(version) = version {
                push(Opt::PostgresVersion, &[version]);
            }
        }
    }
    if let Some(manager) = &draft.failover_manager {
        push(Opt::FailoverManager, &[manager]);
    }
    let draft = draft.normalized();
    for (opt, value) in [
        (Opt::Platform, &draft.platform),
        (Opt::Region, &draft.region),
        (Opt::InstanceType, &draft.instance_type),
        (Opt::Distribution, &draft.distribution),
        (Opt::OsVersion, &draft.os_version),
        (Opt::NumCascadedReplicas, &draft.num_cascaded_replicas),
    ] {
        if let Some(value) = value {
            push(opt, &[value]);
        }
    }
    if draft.enable_haproxy {
        push(Opt::EnableHaproxy, &[]);
    }
    if draft.synchronous {
        push(Opt::Synchronous, &[]);
    }
    if let Some(dcs) = &draft.patroni_dcs {
        push(Opt::PatroniDcs, &[dcs]);
    }
    match draft.redwood {
        Some(true) => push(Opt::Redwood, &[]),
        Some(false) => push(Opt::NoRedwood, &[]),
        None => {}
    }
    if let Some(names) = &draft.location_names {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        push(Opt::LocationNames, &names);
    }
    if let Some(owner) = &draft.owner {
        push(Opt::Owner, &[owner]);
    }
    if let Some(network) = &draft.network {
        push(Opt::Network, &[network]);
    }
    if hostnames_file(&draft).is_some() {
        push(Opt::HostnamesFrom, &[HOSTNAMES_FILE]);
    }
    if let Some(backend) = &draft.keyring_backend {
        push(Opt::KeyringBackend, &[backend]);
    }
    if draft.volatile_subscriptions {
        push(Opt::VolatileSubscriptions, &[]);
    }
    for (opt, value) in [
        (Opt::RootVolumeSize, &draft.volume_sizes.root),
        (Opt::PostgresVolumeSize, &draft.volume_sizes.postgres),
        (Opt::BarmanVolumeSize, &draft.volume_sizes.barman),
    ] {
        if let Some(value) = value {
            push(opt, &[value]);
        }
    }
    args
}

/// The text of the `--hostnames-from` file a rendered command line refers to, if the draft has
/// names or addresses: a host a line, its name then its address where it has one.
pub fn hostnames_file(draft: &Draft) -> Option<String> {
    let addresses = draft.addresses.as_deref().unwrap_or_default();
    let names: Vec<String> = match &draft.hostnames {
        Some(names) => names.clone(),
        None if !addresses.is_empty() => {
            (1..=addresses.len() as u32).map(default_hostname).collect()
        }
        None => return None,
    };
    Some(
        names
            .iter()
            .enumerate()
            .map(
                |(i, name)| match addresses.get(i).filter(|a| !a.is_empty()) {
                    Some(address) => format!("{name} {address}\n"),
                    None => format!("{name}\n"),
                },
            )
            .collect(),
    )
}

/// The whole command line for `program`, quoted for a POSIX shell.
pub fn command_line(program: Program, dir: &str, draft: &Draft) -> String {
    let head = match program {
        Program::M1studio => "m1studio configure",
        Program::Tpaexec => "tpaexec configure",
    };
    let mut line = head.to_string();
    for arg in command_args(dir, draft) {
        // An m1studio option that tpaexec does not have: its config.yml carries the setting.
        if program == Program::Tpaexec && arg == option_name(Opt::Synchronous) {
            continue;
        }
        line.push(' ');
        line.push_str(&quote(&arg));
    }
    line
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+@,%~".contains(c))
        && !arg.starts_with('~');
    if plain {
        arg.to_string()
    } else {
        shlex::try_quote(arg).map_or_else(
            |_| format!("'{}'", arg.replace('\0', "")),
            |q| q.into_owned(),
        )
    }
}

/// The help text of `configure --architecture M1`, grouped as in the architecture's documentation.
pub fn configure_help() -> String {
    let mut text = String::from(
        "Usage: m1studio configure DIR --architecture M1 [OPTIONS]\n\n\
         Writes DIR/config.yml for an M1 cluster: a primary, a streaming replica, replicas cascaded\n\
         from that replica, a Barman backup server and a failover manager. The cluster is named\n\
         after the last part of DIR.\n",
    );
    for (group, title) in [
        (
            Group::Mandatory,
            "Mandatory options (one flavour with its version, and one failover manager)",
        ),
        (Group::Additional, "Additional options"),
        (Group::Command, "Command options"),
    ] {
        let _ = write!(text, "\n{title}:\n");
        for o in OPTIONS.iter().filter(|o| o.group == group) {
            let mut names = o.names.join(", ");
            if let Some(value) = o.value {
                names = format!("{names} {value}");
            }
            let default = o
                .default
                .map(|d| format!(" [default: {d}]"))
                .unwrap_or_default();
            let _ = writeln!(text, "  {names:<44} {}{default}", o.help);
        }
    }
    let _ = write!(
        text,
        "\nExample:\n  m1studio configure ~/clusters/m1 --architecture M1 --platform docker --postgresql 15 --failover-manager repmgr\n"
    );
    text
}
