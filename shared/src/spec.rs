//! The spec: a [`Draft`] holds what the user typed, unchecked; a [`Design`] is a draft that
//! passed validation, with every default filled in. Only designs reach the topology and the renderers.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The only architecture this model implements.
pub const ARCHITECTURE: &str = "M1";
/// The highest number of cascaded replicas a design may have.
pub const MAX_CASCADED_REPLICAS: u32 = 32;
/// The default number of cascaded replicas (TPA's).
pub const DEFAULT_CASCADED_REPLICAS: u32 = 1;
/// The default AWS region (TPA's).
pub const DEFAULT_REGION: &str = "eu-west-1";
/// The default AWS instance type (TPA's).
pub const DEFAULT_INSTANCE_TYPE: &str = "t3.micro";
/// The default address range of the cluster's network (TPA's).
pub const DEFAULT_NETWORK: &str = "10.33.0.0/16";
/// The default names of the two locations.
pub const DEFAULT_LOCATIONS: [&str; 2] = ["main", "dr"];
/// The lowest and highest Postgres major versions accepted (TPA v23.31 configures 10 too).
pub const VERSIONS: std::ops::RangeInclusive<u32> = 10..=18;
/// Major versions past their community end of life, with the month it ended.
pub const END_OF_LIFE: &[(u32, &str)] = &[
    (10, "November 2022"),
    (11, "November 2023"),
    (12, "November 2024"),
    (13, "November 2025"),
    (14, "November 2026"),
];

/// What the user asked for, exactly as given. Every field may be missing or wrong;
/// [`crate::validate`] says what is wrong with it. `None` means "the default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Draft {
    /// The cluster's name: the last path component of the cluster directory.
    pub cluster_name: String,
    /// `--architecture`; must be M1.
    pub architecture: Option<String>,
    /// `--postgres-flavour` (set by `--postgresql`, `--edb-postgres-advanced` …).
    pub postgres_flavour: Option<String>,
    /// `--postgres-version`.
    pub postgres_version: Option<String>,
    /// `--failover-manager` (set by `--enable-*` too).
    pub failover_manager: Option<String>,
    /// `--platform`; aws when missing.
    pub platform: Option<String>,
    /// `--region`; aws only.
    pub region: Option<String>,
    /// `--instance-type`; aws only.
    pub instance_type: Option<String>,
    /// `--distribution` (alias `--os`).
    pub distribution: Option<String>,
    /// `--os-version`.
    pub os_version: Option<String>,
    /// `--num-cascaded-replicas`, as typed.
    pub num_cascaded_replicas: Option<String>,
    /// `--enable-haproxy`.
    pub enable_haproxy: bool,
    /// `--synchronous-replication`: the replica confirms every commit.
    pub synchronous: bool,
    /// `--patroni-dcs`.
    pub patroni_dcs: Option<String>,
    /// `--redwood` (true) or `--no-redwood` (false).
    pub redwood: Option<bool>,
    /// `--location-names A B`.
    pub location_names: Option<Vec<String>>,
    /// `--owner`.
    pub owner: Option<String>,
    /// `--network CIDR`.
    pub network: Option<String>,
    /// Host names, in node order, from `--hostnames-from FILE`.
    pub hostnames: Option<Vec<String>>,
    /// The hosts' addresses, in node order, from the second column of `--hostnames-from FILE`
    /// (an empty one where a line gives none): where m1studio reaches the existing hosts of a
    /// bare design.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
    /// The location of each instance, in node order, where a config.yml places instances
    /// elsewhere than the M1 layout (TPA puts Barman in the first location, and spreads etcd and
    /// HAProxy over both). `None` is the M1 layout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Vec<String>>,
    /// `--keyring-backend`: where TPA keeps the cluster's vault password (`system` or `legacy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyring_backend: Option<String>,
    /// The name of the cluster's vault: a UUID made once per cluster directory and kept across
    /// re-configures. It belongs to the directory, not to the design, so links leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault_name: Option<String>,
    /// `--use-volatile-subscriptions` (always on for docker, as TPA writes it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub volatile_subscriptions: bool,
    /// `--root-volume-size`, `--postgres-volume-size` and `--barman-volume-size` in GB, as typed
    /// (aws only).
    #[serde(skip_serializing_if = "VolumeSizes::is_empty")]
    pub volume_sizes: VolumeSizes,
    /// How the nodes are numbered: as TPA numbers them, or, for a cluster deployed or a file
    /// written before m1studio did, with Barman after the cascaded replicas.
    #[serde(skip_serializing_if = "Numbering::is_tpa")]
    pub numbering: Numbering,
}

/// The order of a design's node numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Numbering {
    /// TPA's: primary 1, replica 2, Barman 3, the cascaded replicas from 4, etcd, HAProxy.
    #[default]
    Tpa,
    /// m1studio's before it numbered as TPA: the cascaded replicas from 3, then Barman. Kept for
    /// the clusters deployed and the config.yml files written then, whose nodes keep their
    /// numbers, names and addresses.
    BarmanLast,
}

impl Numbering {
    /// Whether this is TPA's numbering (the default, left out of stored drafts).
    pub fn is_tpa(&self) -> bool {
        *self == Numbering::Tpa
    }
}

/// The sizes of an aws design's EBS volumes in GB, as typed; `None` is TPA's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeSizes {
    /// The root volume of every instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The Postgres data volume of every instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<String>,
    /// Barman's backup volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barman: Option<String>,
}

impl VolumeSizes {
    /// Whether no size was given.
    pub fn is_empty(&self) -> bool {
        self.root.is_none() && self.postgres.is_none() && self.barman.is_none()
    }
}

/// TPA's volume sizes in GB: root, Postgres data, Barman's backups.
pub const DEFAULT_VOLUME_SIZES: [u32; 3] = [16, 16, 32];

/// The keyring backends `--keyring-backend` takes, the default first.
pub const KEYRING_BACKENDS: [&str; 2] = ["system", "legacy"];

impl Draft {
    /// The two locations' names as given, or the default ones.
    pub fn location_names_or_default(&self) -> Vec<String> {
        self.location_names
            .clone()
            .unwrap_or_else(|| DEFAULT_LOCATIONS.map(String::from).to_vec())
    }

    /// The design a new user starts from in the designer: PostgreSQL 15 with repmgr on Docker,
    /// with every other option at TPA's default.
    pub fn starter() -> Draft {
        Draft {
            cluster_name: "m1".into(),
            architecture: Some(ARCHITECTURE.into()),
            postgres_flavour: Some(Flavour::Postgresql.as_str().into()),
            postgres_version: Some("15".into()),
            failover_manager: Some(FailoverManager::Repmgr.as_str().into()),
            platform: Some(Platform::Docker.as_str().into()),
            ..Draft::default()
        }
    }

    /// The same draft with every value that equals its default removed, so that two drafts that
    /// mean the same design compare equal. A default is only removed where its option applies,
    /// so that normalizing never turns an invalid draft into a valid one.
    pub fn normalized(&self) -> Draft {
        let aws = matches!(self.platform.as_deref(), None | Some("aws"));
        let bare = self.platform.as_deref() == Some("bare");
        let patroni = self.failover_manager.as_deref() == Some("patroni");
        let drop_if = |value: &Option<String>, default: &str| -> Option<String> {
            value.clone().filter(|v| v != default)
        };
        let drop_where = |applies: bool, value: &Option<String>, default: &str| {
            if applies {
                drop_if(value, default)
            } else {
                value.clone()
            }
        };
        Draft {
            cluster_name: self.cluster_name.clone(),
            architecture: self.architecture.clone(),
            postgres_flavour: self.postgres_flavour.clone(),
            postgres_version: self.postgres_version.clone(),
            failover_manager: self.failover_manager.clone(),
            platform: drop_if(&self.platform, Platform::Aws.as_str()),
            region: drop_where(aws, &self.region, DEFAULT_REGION),
            instance_type: drop_where(aws, &self.instance_type, DEFAULT_INSTANCE_TYPE),
            distribution: drop_if(&self.distribution, DEFAULT_DISTRIBUTION.0),
            os_version: drop_if(
                &self.os_version,
                default_os_version(
                    self.distribution
                        .as_deref()
                        .unwrap_or(DEFAULT_DISTRIBUTION.0),
                ),
            ),
            num_cascaded_replicas: drop_if(
                &self.num_cascaded_replicas,
                &DEFAULT_CASCADED_REPLICAS.to_string(),
            ),
            enable_haproxy: self.enable_haproxy,
            synchronous: self.synchronous,
            patroni_dcs: drop_where(patroni, &self.patroni_dcs, "etcd"),
            redwood: self.redwood,
            location_names: self
                .location_names
                .clone()
                .filter(|names| names.iter().map(String::as_str).ne(DEFAULT_LOCATIONS)),
            owner: self.owner.clone(),
            network: drop_where(!bare, &self.network, DEFAULT_NETWORK),
            hostnames: self.hostnames.clone(),
            // Addresses go with host names: none past the last name given, and none past the
            // last host that has one.
            addresses: self
                .addresses
                .as_ref()
                .map(|a| {
                    let mut a: Vec<String> = match &self.hostnames {
                        Some(names) => a.iter().take(names.len()).cloned().collect(),
                        None => a.clone(),
                    };
                    while a.last().is_some_and(|last| last.trim().is_empty()) {
                        a.pop();
                    }
                    a
                })
                .filter(|a| !a.is_empty()),
            placement: self.placement.clone(),
            keyring_backend: drop_if(&self.keyring_backend, KEYRING_BACKENDS[0]),
            vault_name: self.vault_name.clone(),
            volatile_subscriptions: self.volatile_subscriptions
                && self.platform.as_deref() != Some(Platform::Docker.as_str()),
            numbering: self.numbering,
            volume_sizes: if aws {
                let [root, postgres, barman] = DEFAULT_VOLUME_SIZES.map(|s| s.to_string());
                VolumeSizes {
                    root: drop_if(&self.volume_sizes.root, &root),
                    postgres: drop_if(&self.volume_sizes.postgres, &postgres),
                    barman: drop_if(&self.volume_sizes.barman, &barman),
                }
            } else {
                self.volume_sizes.clone()
            },
        }
    }
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every value, in the order the UI lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The value as TPA writes it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// The value TPA writes as `text`.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }

            /// The accepted values, for messages: `a, b or c`.
            pub fn choices() -> String {
                crate::spec::or_list(&[$($text,)*])
            }
        }
    };
}

named_enum!(
    /// The Postgres flavour.
    Flavour {
        /// PostgreSQL, the community server.
        Postgresql => "postgresql",
        /// EDB Postgres Advanced Server.
        Epas => "epas",
        /// EDB Postgres Extended.
        Pgextended => "pgextended",
    }
);

impl Flavour {
    /// The flavour named by `--postgres-flavour`, accepting TPA's aliases.
    pub fn parse_alias(text: &str) -> Option<Flavour> {
        match text.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" => Some(Flavour::Postgresql),
            "epas" | "edb-postgres-advanced" => Some(Flavour::Epas),
            "pgextended" | "edbpge" | "edb-postgres-extended" => Some(Flavour::Pgextended),
            _ => None,
        }
    }

    /// The product's full name.
    pub fn title(self) -> &'static str {
        match self {
            Flavour::Postgresql => "PostgreSQL",
            Flavour::Epas => "EDB Postgres Advanced Server",
            Flavour::Pgextended => "EDB Postgres Extended",
        }
    }

    /// Whether the flavour needs an EDB subscription.
    pub fn is_edb(self) -> bool {
        self != Flavour::Postgresql
    }
}

named_enum!(
    /// The failover manager.
    FailoverManager {
        /// EDB Failover Manager.
        Efm => "efm",
        /// repmgr.
        Repmgr => "repmgr",
        /// Patroni, with etcd as its DCS.
        Patroni => "patroni",
    }
);

impl FailoverManager {
    /// Whether a witness on the Barman node may be needed (Patroni's quorum is etcd's).
    pub fn uses_witness(self) -> bool {
        self != FailoverManager::Patroni
    }

    /// Whether, with `postgres_nodes` Postgres nodes, the Barman node is also a witness: an
    /// even number of voters needs one more, except with Patroni, whose quorum is etcd's.
    pub fn witness_for(self, postgres_nodes: u32) -> bool {
        self.uses_witness() && postgres_nodes.is_multiple_of(2)
    }

    /// The product's name.
    pub fn title(self) -> &'static str {
        match self {
            FailoverManager::Efm => "EFM",
            FailoverManager::Repmgr => "repmgr",
            FailoverManager::Patroni => "Patroni",
        }
    }
}

named_enum!(
    /// Where the cluster's instances run.
    Platform {
        /// Amazon EC2 instances.
        Aws => "aws",
        /// Containers on a Docker engine.
        Docker => "docker",
        /// Existing hosts reached over SSH.
        Bare => "bare",
    }
);

named_enum!(
    /// The distributed configuration store for Patroni.
    Dcs {
        /// etcd, the only choice.
        Etcd => "etcd",
    }
);

/// An operating system, with the versions each platform can provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distribution {
    /// The name as `--distribution` takes it.
    pub name: &'static str,
    /// The versions on aws and bare hosts.
    pub versions: &'static [&'static str],
    /// The versions the docker platform builds images of (none: not on docker).
    pub docker_versions: &'static [&'static str],
    /// The AMI owner on aws.
    pub ami_owner: &'static str,
}

/// The default distribution and version on every platform.
pub const DEFAULT_DISTRIBUTION: (&str, &str) = ("Debian", "12");

/// The distributions the model knows.
pub const DISTRIBUTIONS: &[Distribution] = &[
    Distribution {
        name: "Debian",
        versions: &["11", "12", "13"],
        docker_versions: &["11", "12", "13"],
        ami_owner: "136693071363",
    },
    Distribution {
        name: "Ubuntu",
        versions: &["20.04", "22.04", "24.04"],
        docker_versions: &[],
        ami_owner: "099720109477",
    },
    Distribution {
        name: "RedHat",
        versions: &["8", "9"],
        docker_versions: &[],
        ami_owner: "309956199498",
    },
    Distribution {
        name: "Rocky",
        versions: &["8", "9"],
        docker_versions: &[],
        ami_owner: "792107900819",
    },
    Distribution {
        name: "AlmaLinux",
        versions: &["8", "9"],
        docker_versions: &[],
        ami_owner: "764336703387",
    },
    Distribution {
        name: "SLES",
        versions: &["15"],
        docker_versions: &[],
        ami_owner: "013907871322",
    },
];

impl Distribution {
    /// The distribution named `name`, ignoring case.
    pub fn find(name: &str) -> Option<&'static Distribution> {
        DISTRIBUTIONS
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// The versions `platform` can provide.
    pub fn versions_on(&self, platform: Platform) -> &'static [&'static str] {
        match platform {
            Platform::Docker => self.docker_versions,
            Platform::Aws | Platform::Bare => self.versions,
        }
    }
}

/// The version of `distribution` used when `--os-version` is left out: Debian 12, or the newest
/// version of any other distribution.
pub fn default_os_version(distribution: &str) -> &'static str {
    match Distribution::find(distribution) {
        Some(d) if d.name == DEFAULT_DISTRIBUTION.0 => DEFAULT_DISTRIBUTION.1,
        Some(d) => d.versions.last().copied().unwrap_or_default(),
        None => "",
    }
}

/// The AWS regions `--region` accepts.
pub const AWS_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// Where the instances run, with the options that only apply there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformSpec {
    /// Amazon EC2.
    Aws {
        /// The region.
        region: String,
        /// The instance type.
        instance_type: String,
    },
    /// A Docker engine.
    Docker,
    /// Existing hosts.
    Bare,
}

impl PlatformSpec {
    /// The platform without its options.
    pub fn platform(&self) -> Platform {
        match self {
            PlatformSpec::Aws { .. } => Platform::Aws,
            PlatformSpec::Docker => Platform::Docker,
            PlatformSpec::Bare => Platform::Bare,
        }
    }
}

/// A checked design: every value valid, every default filled in.
/// Only [`crate::validate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Design {
    pub(crate) cluster_name: String,
    pub(crate) flavour: Flavour,
    pub(crate) version: u32,
    pub(crate) failover: FailoverManager,
    pub(crate) platform: PlatformSpec,
    pub(crate) distribution: &'static Distribution,
    pub(crate) os_version: String,
    pub(crate) cascaded_replicas: u32,
    pub(crate) haproxy: bool,
    pub(crate) synchronous: bool,
    pub(crate) redwood: Option<bool>,
    pub(crate) locations: [String; 2],
    pub(crate) owner: Option<String>,
    pub(crate) network: Option<Ipv4Net>,
    pub(crate) hostnames: Option<Vec<String>>,
    pub(crate) addresses: Option<Vec<Option<std::net::IpAddr>>>,
    /// The location (0 or 1) of each instance in node order, where it differs from the M1 layout.
    pub(crate) placement: Option<Vec<usize>>,
    pub(crate) keyring_backend: &'static str,
    pub(crate) vault_name: Option<String>,
    pub(crate) volatile_subscriptions: bool,
    /// Root, Postgres data and Barman volume sizes in GB (used on aws).
    pub(crate) volume_sizes: [u32; 3],
    pub(crate) numbering: Numbering,
}

impl Design {
    /// The cluster's name.
    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }
    /// The Postgres flavour.
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }
    /// The Postgres major version.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The failover manager.
    pub fn failover(&self) -> FailoverManager {
        self.failover
    }
    /// The platform and its options.
    pub fn platform(&self) -> &PlatformSpec {
        &self.platform
    }
    /// The operating system.
    pub fn distribution(&self) -> &'static Distribution {
        self.distribution
    }
    /// The operating system's version.
    pub fn os_version(&self) -> &str {
        &self.os_version
    }
    /// How many replicas cascade from the first replica.
    pub fn cascaded_replicas(&self) -> u32 {
        self.cascaded_replicas
    }
    /// Whether two HAProxy nodes are added.
    pub fn haproxy(&self) -> bool {
        self.haproxy
    }

    /// Whether replication to the first replica is synchronous: a commit returns once the
    /// replica has it, so a failover to it loses no acknowledged write.
    pub fn synchronous(&self) -> bool {
        self.synchronous
    }
    /// EPAS's Redwood compatibility mode (EPAS only).
    pub fn redwood(&self) -> Option<bool> {
        self.redwood
    }
    /// The two locations: the primary's, then the disaster-recovery one.
    pub fn locations(&self) -> &[String; 2] {
        &self.locations
    }
    /// The owner tag.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
    /// The cluster's address range (none on bare hosts).
    pub fn network(&self) -> Option<Ipv4Net> {
        self.network
    }
    /// Explicit host names, if given.
    pub fn hostnames(&self) -> Option<&[String]> {
        self.hostnames.as_deref()
    }
    /// The existing hosts' addresses, in node order, where given (bare designs only).
    pub fn addresses(&self) -> Option<&[Option<std::net::IpAddr>]> {
        self.addresses.as_deref()
    }
    /// Where each instance sits (0: the first location, 1: the second), in node order, when a
    /// config.yml placed them elsewhere than the M1 layout.
    pub fn placement(&self) -> Option<&[usize]> {
        self.placement.as_deref()
    }
    /// Where TPA keeps the vault password: `system` or `legacy`.
    pub fn keyring_backend(&self) -> &'static str {
        self.keyring_backend
    }
    /// The cluster directory's vault name, where it has one.
    pub fn vault_name(&self) -> Option<&str> {
        self.vault_name.as_deref()
    }
    /// The same design for a cluster directory whose vault is `name` (a UUID, as TPA makes it);
    /// `None` when `name` is not one.
    pub fn with_vault_name(&self, name: &str) -> Option<Design> {
        Some(Design {
            vault_name: Some(vault_uuid(name)?),
            ..self.clone()
        })
    }
    /// Whether TPA uses volatile subscriptions (always on docker).
    pub fn volatile_subscriptions(&self) -> bool {
        self.volatile_subscriptions || self.platform.platform() == Platform::Docker
    }
    /// Root, Postgres data and Barman volume sizes in GB.
    pub fn volume_sizes(&self) -> [u32; 3] {
        self.volume_sizes
    }
    /// How the nodes are numbered.
    pub fn numbering(&self) -> Numbering {
        self.numbering
    }
    /// How many Postgres nodes (primary, replica, cascaded replicas) the design has.
    pub fn postgres_nodes(&self) -> u32 {
        2 + self.cascaded_replicas
    }
    /// Whether the Barman node is also a witness: an even number of Postgres nodes
    /// with a failover manager that votes through its nodes.
    pub fn witness(&self) -> bool {
        self.failover.witness_for(self.postgres_nodes())
    }
    /// Whether the design uses EDB subscription software.
    pub fn needs_edb_subscription(&self) -> bool {
        self.flavour.is_edb() || self.failover == FailoverManager::Efm
    }
    /// How many instances the design has.
    pub fn instance_count(&self) -> u32 {
        self.instances_per_location().iter().sum()
    }
    /// How many instances each location holds.
    pub fn instances_per_location(&self) -> [u32; 2] {
        crate::topology::location_counts(&self.node_kinds(), self.placement())
    }
    /// The kind of each node, in node order.
    pub fn node_kinds(&self) -> Vec<crate::topology::Kind> {
        crate::topology::node_kinds_in(
            self.numbering,
            self.failover,
            self.cascaded_replicas,
            self.haproxy,
        )
    }
}

/// A vault's name as TPA writes it (a hyphenated UUID, 36 characters), in lower case; `None` when
/// `text` is not one.
pub fn vault_uuid(text: &str) -> Option<String> {
    (text.len() == 36)
        .then(|| uuid::Uuid::try_parse(text).ok())
        .flatten()
        .map(|u| u.to_string())
}

/// `a, b or c`, for messages.
pub(crate) fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}
