//! The fields of a design as a user edits them: one row each, naming the draft's field as
//! diagnostics name it, its `configure` option, its link key, and when it applies. `Draft::set`
//! edits a draft through this table and drops whatever no longer applies, so that the designer
//! holds no rule of its own; tests tie every row to the link encoder and the command line.

use crate::cmdline::Opt;
use crate::spec::{Draft, FailoverManager, Flavour, Platform};

/// A field of the design, as the designer's form edits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The cluster's name.
    Name,
    /// The Postgres flavour.
    Flavour,
    /// The Postgres major version.
    Version,
    /// The failover manager.
    Failover,
    /// Patroni's configuration store.
    Dcs,
    /// EDB Postgres Advanced Server's Oracle-compatible mode: `on`, `off`, or empty.
    Redwood,
    /// The platform.
    Platform,
    /// The AWS region.
    Region,
    /// The EC2 instance type.
    InstanceType,
    /// The operating system.
    Distribution,
    /// Its version.
    OsVersion,
    /// How many cascaded replicas.
    Cascaded,
    /// HAProxy in front of Patroni: `on` or `off`.
    Haproxy,
    /// Synchronous replication to the first replica: `on` or `off`.
    Synchronous,
    /// The first location's name.
    FirstLocation,
    /// The second location's name.
    SecondLocation,
    /// The owner tag.
    Owner,
    /// The address range.
    Network,
}

/// One field's description.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// Which field.
    pub field: Field,
    /// The draft's field, as diagnostics name it in their `path`.
    pub path: &'static str,
    /// Its `configure` option (its names and help are in `cmdline::OPTIONS`); the name is the
    /// cluster directory's, not an option.
    pub option: Option<Opt>,
    /// Its key in share links.
    pub link_key: &'static str,
    /// Whether it applies to a draft: one that does not apply is dropped from the draft.
    pub applies: fn(&Draft) -> bool,
}

fn always(_: &Draft) -> bool {
    true
}

fn on_aws(draft: &Draft) -> bool {
    platform(draft) == Some(Platform::Aws) || draft.platform.is_none()
}

fn with_patroni(draft: &Draft) -> bool {
    draft.failover_manager.as_deref() == Some(FailoverManager::Patroni.as_str())
}

fn with_epas(draft: &Draft) -> bool {
    draft.postgres_flavour.as_deref() == Some(Flavour::Epas.as_str())
}

fn not_on_bare(draft: &Draft) -> bool {
    platform(draft) != Some(Platform::Bare)
}

/// Docker nodes are built from Debian's packages: another distribution does not apply there.
fn distribution_applies(draft: &Draft) -> bool {
    platform(draft) != Some(Platform::Docker)
        || draft.distribution.as_deref().is_none_or(|d| d == "Debian")
}

fn platform(draft: &Draft) -> Option<Platform> {
    draft.platform.as_deref().and_then(Platform::parse)
}

const fn spec(
    field: Field,
    path: &'static str,
    option: Option<Opt>,
    link_key: &'static str,
    applies: fn(&Draft) -> bool,
) -> FieldSpec {
    FieldSpec {
        field,
        path,
        option,
        link_key,
        applies,
    }
}

/// Every field, in the form's order.
pub const FIELDS: &[FieldSpec] = &[
    spec(Field::Name, "cluster_name", None, "name", always),
    spec(
        Field::Flavour,
        "postgres_flavour",
        Some(Opt::PostgresFlavour),
        "flavour",
        always,
    ),
    spec(
        Field::Version,
        "postgres_version",
        Some(Opt::PostgresVersion),
        "version",
        always,
    ),
    spec(
        Field::Failover,
        "failover_manager",
        Some(Opt::FailoverManager),
        "fm",
        always,
    ),
    spec(
        Field::Dcs,
        "patroni_dcs",
        Some(Opt::PatroniDcs),
        "dcs",
        with_patroni,
    ),
    spec(
        Field::Redwood,
        "redwood",
        Some(Opt::Redwood),
        "redwood",
        with_epas,
    ),
    spec(
        Field::Platform,
        "platform",
        Some(Opt::Platform),
        "platform",
        always,
    ),
    spec(Field::Region, "region", Some(Opt::Region), "region", on_aws),
    spec(
        Field::InstanceType,
        "instance_type",
        Some(Opt::InstanceType),
        "type",
        on_aws,
    ),
    spec(
        Field::Distribution,
        "distribution",
        Some(Opt::Distribution),
        "os",
        distribution_applies,
    ),
    spec(
        Field::OsVersion,
        "os_version",
        Some(Opt::OsVersion),
        "osv",
        distribution_applies,
    ),
    spec(
        Field::Cascaded,
        "num_cascaded_replicas",
        Some(Opt::NumCascadedReplicas),
        "n",
        always,
    ),
    spec(
        Field::Haproxy,
        "enable_haproxy",
        Some(Opt::EnableHaproxy),
        "haproxy",
        // It stays when Patroni is left, so that the user sees why it needs Patroni.
        always,
    ),
    spec(
        Field::Synchronous,
        "synchronous",
        Some(Opt::Synchronous),
        "sync",
        always,
    ),
    spec(
        Field::FirstLocation,
        "location_names[0]",
        Some(Opt::LocationNames),
        "loc",
        always,
    ),
    spec(
        Field::SecondLocation,
        "location_names[1]",
        Some(Opt::LocationNames),
        "loc",
        always,
    ),
    spec(Field::Owner, "owner", Some(Opt::Owner), "owner", always),
    spec(
        Field::Network,
        "network",
        Some(Opt::Network),
        "net",
        not_on_bare,
    ),
];

impl Field {
    /// The field's description.
    pub fn spec(self) -> &'static FieldSpec {
        FIELDS
            .iter()
            .find(|s| s.field == self)
            .unwrap_or(&FIELDS[0])
    }

    /// Whether the field applies to `draft`.
    pub fn applies(self, draft: &Draft) -> bool {
        (self.spec().applies)(draft)
    }
}

/// An empty text means "not given", so the default applies.
fn given(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// `on` (or `true`, `1`, `yes`) is true; anything else is false.
fn switched_on(value: &str) -> bool {
    matches!(value.trim(), "on" | "true" | "1" | "yes")
}

impl Draft {
    /// Sets `field` to `value`, as a user typed or chose it (empty text: the default), then drops
    /// every field that no longer applies (an AWS region after leaving aws, a DCS after leaving
    /// Patroni, a Redwood mode after leaving EPAS, a distribution other than Debian on docker).
    pub fn set(&mut self, field: Field, value: &str) {
        match field {
            Field::Name => self.cluster_name = value.trim().to_string(),
            Field::Flavour => self.postgres_flavour = given(value),
            Field::Version => self.postgres_version = given(value),
            Field::Failover => self.failover_manager = given(value),
            Field::Dcs => self.patroni_dcs = given(value),
            Field::Redwood => self.redwood = given(value).map(|v| switched_on(&v)),
            Field::Platform => self.platform = given(value),
            Field::Region => self.region = given(value),
            Field::InstanceType => self.instance_type = given(value),
            Field::Distribution => {
                self.distribution = given(value);
                // Each distribution has versions of its own.
                self.os_version = None;
            }
            Field::OsVersion => self.os_version = given(value),
            // An emptied count stays empty, and is shown as an error rather than defaulted.
            Field::Cascaded => self.num_cascaded_replicas = Some(value.trim().to_string()),
            Field::Haproxy => self.enable_haproxy = switched_on(value),
            Field::Synchronous => self.synchronous = switched_on(value),
            Field::FirstLocation | Field::SecondLocation => {
                let at = usize::from(field == Field::SecondLocation);
                let mut names = self.location_names_or_default();
                names.resize(2, String::new());
                let old = std::mem::replace(&mut names[at], value.trim().to_string());
                // The nodes a config.yml placed there stay there, under the new name.
                if let Some(placement) = &mut self.placement {
                    for location in placement.iter_mut().filter(|l| **l == old) {
                        location.clone_from(&names[at]);
                    }
                }
                self.location_names = Some(names);
            }
            Field::Owner => self.owner = given(value),
            Field::Network => self.network = given(value),
        }
        // A config.yml's placement names a location for each of its nodes: with other nodes,
        // the design returns to the M1 layout.
        if matches!(field, Field::Cascaded | Field::Failover | Field::Haproxy) {
            self.placement = None;
        }
        self.drop_what_does_not_apply();
    }

    fn drop_what_does_not_apply(&mut self) {
        for spec in FIELDS {
            if (spec.applies)(self) {
                continue;
            }
            match spec.field {
                Field::Dcs => self.patroni_dcs = None,
                Field::Redwood => self.redwood = None,
                Field::Region => self.region = None,
                Field::InstanceType => self.instance_type = None,
                Field::Distribution | Field::OsVersion => {
                    self.distribution = None;
                    self.os_version = None;
                }
                Field::Network => self.network = None,
                _ => {}
            }
        }
    }
}
