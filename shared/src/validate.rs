//! Validation: every rule of the M1 architecture, checked at once. A draft with no errors
//! becomes a [`Design`]; every problem found is reported, never only the first.

use crate::diag::{Code, Diagnostic};
use crate::hostnames::dns_label_problem;
use crate::net;
use crate::spec::{
    AWS_REGIONS, DEFAULT_CASCADED_REPLICAS, DEFAULT_DISTRIBUTION, DEFAULT_INSTANCE_TYPE,
    DEFAULT_LOCATIONS, DEFAULT_NETWORK, DEFAULT_REGION, DISTRIBUTIONS, Dcs, Design, Distribution,
    Draft, END_OF_LIFE, FailoverManager, Flavour, MAX_CASCADED_REPLICAS, Platform, PlatformSpec,
    VERSIONS, default_os_version, or_list,
};
use ipnet::Ipv4Net;
use std::net::IpAddr;

/// Checks `draft` against every rule. Returns the design when nothing is an error, and every
/// diagnostic (errors, warnings and explanations) either way.
pub fn validate(draft: &Draft) -> (Option<Design>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let design = Checker { out: &mut out }.run(draft);
    let design = design.filter(|_| !crate::diag::has_errors(&out));
    (design, crate::diag::cap_repeats(out))
}

struct Checker<'a> {
    out: &'a mut Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, path: impl Into<String>, code: Code, message: impl Into<String>) {
        self.out.push(Diagnostic::error(path, code, message));
    }

    fn warning(&mut self, path: impl Into<String>, code: Code, message: impl Into<String>) {
        self.out.push(Diagnostic::warning(path, code, message));
    }

    fn info(&mut self, path: impl Into<String>, code: Code, message: impl Into<String>) {
        self.out.push(Diagnostic::info(path, code, message));
    }

    fn run(&mut self, draft: &Draft) -> Option<Design> {
        self.architecture(draft);
        let cluster_name = self.cluster_name(draft);
        let flavour = self.flavour(draft);
        let version = self.version(draft, flavour);
        let failover = self.failover(draft);
        self.patroni_options(draft, failover);
        let redwood = self.redwood(draft, flavour);
        if let (Some(Flavour::Epas), Some(FailoverManager::Repmgr), Some(v)) =
            (flavour, failover, version)
            && v < 14
        {
            self.error(
                    "failover_manager",
                    Code::RepmgrEpasTooOld,
                    format!(
                        "repmgr cannot manage EDB Postgres Advanced Server {v}: use version 14 or later, or --failover-manager efm or patroni"
                    ),
                );
        }
        let platform = self.platform(draft);
        let (distribution, os_version) = self.distribution(draft, platform.as_ref());
        let cascaded = self.cascaded(draft);
        let locations = self.locations(draft);
        let owner = self.owner(draft);
        let network = self.network(draft, platform.as_ref());

        let kinds = match (failover, cascaded) {
            (Some(failover), Some(cascaded)) => Some(crate::topology::node_kinds_in(
                draft.numbering,
                failover,
                cascaded,
                draft.enable_haproxy,
            )),
            _ => None,
        };
        let placement = match (&kinds, locations.as_ref()) {
            (Some(kinds), Some(locations)) => self.placement(draft, kinds, locations),
            _ => Ok(None),
        };
        let placed = placement.as_ref().ok().and_then(|p| p.as_deref());
        // Where the nodes are placed is what each location's network must hold.
        let counts = kinds
            .as_ref()
            .map(|kinds| crate::topology::location_counts(kinds, placed));
        if let (Some(counts), Ok(Some(network)), Some(platform)) =
            (counts, network, platform.as_ref())
        {
            self.capacity(network, platform.platform(), counts);
        }
        let hostnames = self.hostnames(draft, counts.map(|[a, b]| a + b));
        let addresses = self.addresses(
            draft,
            platform.as_ref().map(PlatformSpec::platform),
            counts.map(|[a, b]| a + b),
        );
        let keyring_backend = self.keyring_backend(draft);
        let vault_name = self.vault_name(draft);
        let volume_sizes = self.volume_sizes(draft, platform.as_ref());
        if let (Some(failover), Some(cascaded), Some(kinds)) = (failover, cascaded, &kinds) {
            self.explanations(
                failover,
                cascaded,
                locations.as_ref(),
                draft.synchronous,
                kinds,
                placed,
            );
        }
        if let Some(flavour) = flavour
            && (flavour.is_edb() || failover == Some(FailoverManager::Efm))
        {
            let what = match (flavour.is_edb(), failover == Some(FailoverManager::Efm)) {
                (true, true) => format!("{} and EFM come", flavour.title()),
                (true, false) => format!("{} comes", flavour.title()),
                _ => "EFM comes".to_string(),
            };
            self.info(
                    if flavour.is_edb() { "postgres_flavour" } else { "failover_manager" },
                    Code::EdbTokenNeeded,
                    format!(
                        "{what} from EDB Repos 2.0: configuring works without a subscription, but deploying needs EDB_SUBSCRIPTION_TOKEN set to your EDB subscription token"
                    ),
                );
        }

        Some(Design {
            cluster_name: cluster_name?,
            flavour: flavour?,
            version: version?,
            failover: failover?,
            platform: platform?,
            distribution: distribution?,
            os_version: os_version?,
            cascaded_replicas: cascaded?,
            haproxy: draft.enable_haproxy,
            synchronous: draft.synchronous,
            redwood,
            locations: locations?,
            owner: owner.ok()?,
            network: network.ok()?,
            hostnames: hostnames.ok()?,
            addresses: addresses.ok()?,
            placement: placement.ok()?,
            keyring_backend: keyring_backend?,
            vault_name: vault_name.ok()?,
            volatile_subscriptions: draft.volatile_subscriptions,
            volume_sizes: volume_sizes.ok()?,
            // Without a cascaded replica both orders are the same.
            numbering: if cascaded? == 0 {
                crate::spec::Numbering::Tpa
            } else {
                draft.numbering
            },
        })
    }

    /// The location of each node, from a config.yml that placed them: one known location name
    /// per node, in node order. Each node placed elsewhere than the M1 layout gets a warning with
    /// the layout's reason. A placement equal to the M1 layout is `None`.
    fn placement(
        &mut self,
        draft: &Draft,
        kinds: &[crate::topology::Kind],
        locations: &[String; 2],
    ) -> Result<Option<Vec<usize>>, ()> {
        let Some(given) = draft.placement.as_ref() else {
            return Ok(None);
        };
        if given.len() != kinds.len() {
            self.error(
                "placement",
                Code::PlacementInvalid,
                format!(
                    "the placement names the locations of {} instances, but the design has {}: give one location per instance, in node order",
                    given.len(),
                    kinds.len()
                ),
            );
            return Err(());
        }
        let mut placed = Vec::with_capacity(given.len());
        let mut bad = false;
        for (at, (name, kind)) in given.iter().zip(kinds).enumerate() {
            let Some(location) = locations.iter().position(|l| l == name) else {
                self.error(
                    format!("placement[{at}]"),
                    Code::PlacementInvalid,
                    format!(
                        "node {} is placed in '{name}', which is not one of the locations: use '{}' or '{}'",
                        at + 1,
                        locations[0],
                        locations[1]
                    ),
                );
                bad = true;
                continue;
            };
            if location != kind.m1_location() {
                self.warning(
                    format!("placement[{at}]"),
                    Code::PlacementDiffers,
                    format!(
                        "node {} ({}) is in '{name}' where the M1 layout puts it in '{}': {}",
                        at + 1,
                        kind.as_str(),
                        locations[kind.m1_location()],
                        kind.m1_reason()
                    ),
                );
            }
            placed.push(location);
        }
        if bad {
            return Err(());
        }
        let m1: Vec<usize> = kinds.iter().map(|k| k.m1_location()).collect();
        Ok((placed != m1).then_some(placed))
    }

    fn keyring_backend(&mut self, draft: &Draft) -> Option<&'static str> {
        let Some(given) = draft.keyring_backend.as_deref() else {
            return Some(crate::spec::KEYRING_BACKENDS[0]);
        };
        let found = crate::spec::KEYRING_BACKENDS
            .iter()
            .find(|b| **b == given.trim());
        if found.is_none() {
            self.error(
                "keyring_backend",
                Code::KeyringBackendUnknown,
                format!(
                    "--keyring-backend '{given}' is not one TPA knows: use {}",
                    or_list(&crate::spec::KEYRING_BACKENDS)
                ),
            );
        }
        found.copied()
    }

    /// The vault's name: a UUID, as TPA makes it.
    fn vault_name(&mut self, draft: &Draft) -> Result<Option<String>, ()> {
        let Some(given) = draft.vault_name.as_deref() else {
            return Ok(None);
        };
        let Some(uuid) = crate::spec::vault_uuid(given) else {
            self.error(
                "vault_name",
                Code::VaultNameInvalid,
                format!(
                    "vault_name '{}' is not a UUID such as 8f4d20e7-034a-4b4c-9b0c-94a7b510587f: remove it, and a new one is made",
                    given.chars().take(64).collect::<String>()
                ),
            );
            return Err(());
        };
        Ok(Some(uuid))
    }

    /// `--root-volume-size`, `--postgres-volume-size` and `--barman-volume-size`: whole GB, on
    /// aws only.
    fn volume_sizes(
        &mut self,
        draft: &Draft,
        platform: Option<&PlatformSpec>,
    ) -> Result<[u32; 3], ()> {
        let given = &draft.volume_sizes;
        let mut sizes = crate::spec::DEFAULT_VOLUME_SIZES;
        let mut bad = false;
        let aws = matches!(platform, Some(PlatformSpec::Aws { .. }));
        for (at, (value, option)) in [
            (&given.root, "root"),
            (&given.postgres, "postgres"),
            (&given.barman, "barman"),
        ]
        .into_iter()
        .enumerate()
        {
            let Some(text) = value else { continue };
            let path = format!("volume_sizes.{option}");
            if platform.is_some() && !aws {
                self.error(
                    path,
                    Code::AwsOnlyOption,
                    format!(
                        "--{option}-volume-size only applies to --platform aws, where it sizes an EBS volume: remove it"
                    ),
                );
                bad = true;
                continue;
            }
            match text.trim().parse::<u32>() {
                Ok(size) if (1..=16384).contains(&size) => sizes[at] = size,
                _ => {
                    self.error(
                        path,
                        Code::VolumeSizeInvalid,
                        format!(
                            "--{option}-volume-size '{text}' is not a size in GB from 1 to 16384: give a whole number, such as {}",
                            crate::spec::DEFAULT_VOLUME_SIZES[at]
                        ),
                    );
                    bad = true;
                }
            }
        }
        if bad { Err(()) } else { Ok(sizes) }
    }

    fn architecture(&mut self, draft: &Draft) {
        match draft.architecture.as_deref() {
            None => self.error(
                "architecture",
                Code::ArchitectureMissing,
                "--architecture is required: add --architecture M1",
            ),
            Some(crate::spec::ARCHITECTURE) => {}
            Some(other) => self.error(
                "architecture",
                Code::ArchitectureUnsupported,
                format!(
                    "unsupported architecture '{other}' in --architecture: M1 is the only supported architecture (use --architecture M1)"
                ),
            ),
        }
    }

    fn cluster_name(&mut self, draft: &Draft) -> Option<String> {
        let name = &draft.cluster_name;
        match dns_label_problem(name) {
            None => Some(name.clone()),
            Some(problem) => {
                let suggestion = suggest_label(name);
                self.error(
                    "cluster_name",
                    Code::ClusterNameInvalid,
                    format!(
                        "cluster name '{name}' (the last part of the cluster directory) {problem}: name the directory like '{suggestion}'"
                    ),
                );
                None
            }
        }
    }

    fn flavour(&mut self, draft: &Draft) -> Option<Flavour> {
        match draft.postgres_flavour.as_deref() {
            None => {
                self.error(
                    "postgres_flavour",
                    Code::FlavourMissing,
                    "no Postgres flavour chosen: add --postgresql VERSION, --edb-postgres-advanced VERSION or --edb-postgres-extended VERSION",
                );
                None
            }
            Some(text) => {
                let flavour = Flavour::parse_alias(text);
                if flavour.is_none() {
                    self.error(
                        "postgres_flavour",
                        Code::FlavourUnknown,
                        format!(
                            "unknown Postgres flavour '{text}' in --postgres-flavour: use {}",
                            Flavour::choices()
                        ),
                    );
                }
                flavour
            }
        }
    }

    fn version(&mut self, draft: &Draft, flavour: Option<Flavour>) -> Option<u32> {
        let range = format!(
            "a major version from {} to {}",
            VERSIONS.start(),
            VERSIONS.end()
        );
        let Some(text) = draft.postgres_version.as_deref() else {
            self.error(
                "postgres_version",
                Code::VersionMissing,
                "no Postgres version given: add it to the flavour option, for example --postgresql 15",
            );
            return None;
        };
        let Ok(version) = text.trim().parse::<u32>() else {
            self.error(
                "postgres_version",
                Code::VersionInvalid,
                format!("Postgres version '{text}' is not a major version number: use {range}, for example 15"),
            );
            return None;
        };
        if !VERSIONS.contains(&version) {
            self.error(
                "postgres_version",
                Code::VersionOutOfRange,
                format!("Postgres version {version} is not supported: use {range}"),
            );
            return None;
        }
        if let Some((_, when)) = END_OF_LIFE.iter().find(|(v, _)| *v == version) {
            let title = flavour.map_or("Postgres", Flavour::title);
            self.warning(
                "postgres_version",
                Code::VersionEndOfLife,
                format!(
                    "{title} {version} reached its community end of life in {when} and gets no more fixes: use 15 or later for a new cluster"
                ),
            );
        }
        Some(version)
    }

    fn failover(&mut self, draft: &Draft) -> Option<FailoverManager> {
        match draft.failover_manager.as_deref() {
            None => {
                self.error(
                    "failover_manager",
                    Code::FailoverManagerMissing,
                    "no failover manager chosen: add --failover-manager repmgr, patroni or efm (or --enable-repmgr, --enable-patroni or --enable-efm)",
                );
                None
            }
            Some(text) => {
                let failover = FailoverManager::parse(text);
                if failover.is_none() {
                    self.error(
                        "failover_manager",
                        Code::FailoverManagerUnknown,
                        format!(
                            "unknown failover manager '{text}' in --failover-manager: use {}",
                            FailoverManager::choices()
                        ),
                    );
                }
                failover
            }
        }
    }

    fn patroni_options(&mut self, draft: &Draft, failover: Option<FailoverManager>) {
        let patroni = failover == Some(FailoverManager::Patroni);
        if draft.enable_haproxy && !patroni {
            self.error(
                "enable_haproxy",
                Code::HaproxyNeedsPatroni,
                "HAProxy can only be enabled together with Patroni (--failover-manager patroni)",
            );
        }
        if let Some(dcs) = draft.patroni_dcs.as_deref() {
            if !patroni {
                self.error(
                    "patroni_dcs",
                    Code::DcsNeedsPatroni,
                    "--patroni-dcs applies only to Patroni: remove it, or use --failover-manager patroni",
                );
            }
            if Dcs::parse(dcs).is_none() {
                self.error(
                    "patroni_dcs",
                    Code::DcsUnsupported,
                    format!("unsupported DCS '{dcs}' in --patroni-dcs: etcd is the only choice (use --patroni-dcs etcd, or leave it out)"),
                );
            }
        }
    }

    fn redwood(&mut self, draft: &Draft, flavour: Option<Flavour>) -> Option<bool> {
        match (flavour, draft.redwood) {
            (Some(Flavour::Epas), None) => {
                self.error(
                    "redwood",
                    Code::RedwoodMissing,
                    "EDB Postgres Advanced Server needs its compatibility mode chosen: add --redwood (Oracle-compatible) or --no-redwood",
                );
                None
            }
            (Some(Flavour::Epas), redwood) => redwood,
            (Some(_), Some(redwood)) => {
                let flag = if redwood { "--redwood" } else { "--no-redwood" };
                self.error(
                    "redwood",
                    Code::RedwoodNeedsEpas,
                    format!("{flag} applies only to EDB Postgres Advanced Server (--edb-postgres-advanced): remove it"),
                );
                None
            }
            _ => None,
        }
    }

    fn platform(&mut self, draft: &Draft) -> Option<PlatformSpec> {
        let platform = match draft.platform.as_deref() {
            None => Platform::Aws,
            Some(text) => match Platform::parse(text) {
                Some(platform) => platform,
                None => {
                    self.error(
                        "platform",
                        Code::PlatformUnknown,
                        format!(
                            "unknown platform '{text}' in --platform: use {}",
                            Platform::choices()
                        ),
                    );
                    self.aws_only(draft, None);
                    return None;
                }
            },
        };
        if platform != Platform::Aws {
            self.aws_only(draft, Some(platform));
            return Some(match platform {
                Platform::Docker => PlatformSpec::Docker,
                _ => PlatformSpec::Bare,
            });
        }
        let region = draft
            .region
            .clone()
            .unwrap_or_else(|| DEFAULT_REGION.into());
        let mut ok = true;
        if !AWS_REGIONS.contains(&region.as_str()) {
            ok = false;
            let hint = closest(&region, AWS_REGIONS)
                .map(|near| format!(" (did you mean {near}?)"))
                .unwrap_or_default();
            self.error(
                "region",
                Code::RegionUnknown,
                format!("unknown AWS region '{region}' in --region{hint}: use a region name such as eu-west-1 or us-east-1"),
            );
        }
        let instance_type = draft
            .instance_type
            .clone()
            .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.into());
        if !is_instance_type(&instance_type) {
            ok = false;
            self.error(
                "instance_type",
                Code::InstanceTypeInvalid,
                format!("'{instance_type}' in --instance-type is not an EC2 instance type: write FAMILY.SIZE, for example t3.micro or m6i.large"),
            );
        }
        ok.then_some(PlatformSpec::Aws {
            region,
            instance_type,
        })
    }

    fn aws_only(&mut self, draft: &Draft, platform: Option<Platform>) {
        let on = platform.map_or("this platform".to_string(), |p| {
            format!("--platform {}", p.as_str())
        });
        for (path, option, given) in [
            ("region", "--region", &draft.region),
            ("instance_type", "--instance-type", &draft.instance_type),
        ] {
            if given.is_some() {
                self.error(
                    path,
                    Code::AwsOnlyOption,
                    format!("{option} applies only to --platform aws, not to {on}: remove it, or use --platform aws"),
                );
            }
        }
    }

    fn distribution(
        &mut self,
        draft: &Draft,
        platform: Option<&PlatformSpec>,
    ) -> (Option<&'static Distribution>, Option<String>) {
        let name = draft
            .distribution
            .as_deref()
            .unwrap_or(DEFAULT_DISTRIBUTION.0);
        let Some(distribution) = Distribution::find(name) else {
            let names: Vec<&str> = DISTRIBUTIONS.iter().map(|d| d.name).collect();
            self.error(
                "distribution",
                Code::DistributionUnsupported,
                format!(
                    "unknown distribution '{name}' in --distribution: use {}",
                    or_list(&names)
                ),
            );
            return (None, None);
        };
        let Some(platform) = platform.map(PlatformSpec::platform) else {
            return (Some(distribution), None);
        };
        let versions = distribution.versions_on(platform);
        if versions.is_empty() {
            let names: Vec<&str> = DISTRIBUTIONS
                .iter()
                .filter(|d| !d.versions_on(platform).is_empty())
                .map(|d| d.name)
                .collect();
            self.error(
                "distribution",
                Code::DistributionUnsupported,
                format!(
                    "--platform {} cannot provide {}: use --distribution {}",
                    platform.as_str(),
                    distribution.name,
                    or_list(&names)
                ),
            );
            return (None, None);
        }
        let version = draft
            .os_version
            .as_deref()
            .unwrap_or(default_os_version(distribution.name));
        if !versions.contains(&version) {
            self.error(
                "os_version",
                Code::OsVersionUnsupported,
                format!(
                    "{} {version} is not available on --platform {}: use --os-version {}",
                    distribution.name,
                    platform.as_str(),
                    or_list(versions)
                ),
            );
            return (Some(distribution), None);
        }
        (Some(distribution), Some(version.to_string()))
    }

    fn cascaded(&mut self, draft: &Draft) -> Option<u32> {
        let Some(text) = draft.num_cascaded_replicas.as_deref() else {
            return Some(DEFAULT_CASCADED_REPLICAS);
        };
        let range = format!("a number from 0 to {MAX_CASCADED_REPLICAS}");
        match text.trim().parse::<u32>() {
            Err(_) => {
                self.error(
                    "num_cascaded_replicas",
                    Code::CascadedReplicasInvalid,
                    format!("--num-cascaded-replicas '{text}' is not a whole number: use {range}"),
                );
                None
            }
            Ok(n) if n > MAX_CASCADED_REPLICAS => {
                self.error(
                    "num_cascaded_replicas",
                    Code::CascadedReplicasOutOfRange,
                    format!("--num-cascaded-replicas {n} is more than the limit of {MAX_CASCADED_REPLICAS}: use {range}"),
                );
                None
            }
            Ok(n) => Some(n),
        }
    }

    fn locations(&mut self, draft: &Draft) -> Option<[String; 2]> {
        let Some(names) = draft.location_names.as_ref() else {
            return Some(DEFAULT_LOCATIONS.map(String::from));
        };
        let mut ok = true;
        if names.len() != 2 {
            ok = false;
            self.error(
                "location_names",
                Code::LocationNamesCount,
                format!(
                    "--location-names takes exactly two names (the primary's location, then the disaster-recovery one), but {} given: for example --location-names main dr",
                    match names.len() {
                        0 => "none was".to_string(),
                        1 => "one was".to_string(),
                        n => format!("{n} were"),
                    }
                ),
            );
        }
        for (i, name) in names.iter().enumerate() {
            if let Some(problem) = location_problem(name) {
                ok = false;
                self.error(
                    format!("location_names[{i}]"),
                    Code::LocationNameInvalid,
                    format!("location name '{name}' in --location-names {problem}: use a name like 'main' or 'dc-2'"),
                );
            }
            if names[..i].iter().any(|n| n.eq_ignore_ascii_case(name)) {
                ok = false;
                self.error(
                    format!("location_names[{i}]"),
                    Code::LocationNameDuplicate,
                    format!("location name '{name}' is given twice in --location-names: the two locations need different names"),
                );
            }
        }
        match (ok, names.as_slice()) {
            (true, [a, b]) => Some([a.clone(), b.clone()]),
            _ => None,
        }
    }

    fn owner(&mut self, draft: &Draft) -> Result<Option<String>, ()> {
        let Some(owner) = draft.owner.as_deref() else {
            return Ok(None);
        };
        let problem = if owner.trim().is_empty() {
            Some("is empty")
        } else if owner.chars().count() > 64 {
            Some("is longer than 64 characters")
        } else if owner.chars().any(char::is_control) {
            Some("contains control characters")
        } else {
            None
        };
        match problem {
            None => Ok(Some(owner.to_string())),
            Some(problem) => {
                self.error(
                    "owner",
                    Code::OwnerInvalid,
                    format!(
                        "--owner {problem}: give a short name such as your login, or leave it out"
                    ),
                );
                Err(())
            }
        }
    }

    fn network(
        &mut self,
        draft: &Draft,
        platform: Option<&PlatformSpec>,
    ) -> Result<Option<Ipv4Net>, ()> {
        if matches!(platform, Some(PlatformSpec::Bare)) {
            if draft.network.is_some() {
                self.error(
                    "network",
                    Code::NetworkNotOnBare,
                    "--network does not apply to --platform bare, where hosts keep their own addresses: remove it, and give each host's address after its name in a --hostnames-from file (or as its ip_address in config.yml)",
                );
                return Err(());
            }
            return Ok(None);
        }
        let text = draft.network.as_deref().unwrap_or(DEFAULT_NETWORK);
        let Ok(network) = text.trim().parse::<Ipv4Net>() else {
            self.error(
                "network",
                Code::NetworkInvalid,
                format!("--network '{text}' is not an IPv4 address range: write it in CIDR form, for example 10.33.0.0/16"),
            );
            return Err(());
        };
        if network.addr() != network.network() {
            self.error(
                "network",
                Code::NetworkInvalid,
                format!(
                    "--network {network} has host bits set: use {}",
                    network.trunc()
                ),
            );
            return Err(());
        }
        if !network.network().is_private() {
            self.warning(
                "network",
                Code::NetworkNotPrivate,
                format!("--network {network} is not a private address range: use one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"),
            );
        }
        Ok(Some(network))
    }

    fn capacity(&mut self, network: Ipv4Net, platform: Platform, [a, b]: [u32; 2]) {
        let too_small = match platform {
            Platform::Docker => net::docker_addresses(network, a + b).is_none(),
            Platform::Aws => net::aws_subnets(network, [a, b]).is_none(),
            Platform::Bare => false,
        };
        if too_small {
            self.error(
                "network",
                Code::NetworkTooSmall,
                format!(
                    "--network {network} is too small for the {} instances of this design on --platform {}: use a larger range, such as /24 or bigger",
                    a + b,
                    platform.as_str()
                ),
            );
        }
    }

    fn hostnames(&mut self, draft: &Draft, needed: Option<u32>) -> Result<Option<Vec<String>>, ()> {
        let Some(names) = draft.hostnames.as_ref() else {
            return Ok(None);
        };
        let mut ok = true;
        let mut seen = std::collections::HashSet::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if let Some(problem) = dns_label_problem(name) {
                ok = false;
                self.error(
                    format!("hostnames[{i}]"),
                    Code::HostnameInvalid,
                    format!("host name '{name}' (line {} of the --hostnames-from file) {problem}: fix it in the file", i + 1),
                );
            }
            if !seen.insert(name.as_str()) {
                ok = false;
                self.error(
                    format!("hostnames[{i}]"),
                    Code::HostnameDuplicate,
                    format!("host name '{name}' appears twice in the --hostnames-from file: every instance needs its own name"),
                );
            }
        }
        if let Some(needed) = needed {
            let given = names.len();
            let needed = needed as usize;
            if given < needed {
                ok = false;
                self.error(
                    "hostnames",
                    Code::HostnamesTooFew,
                    format!(
                        "the --hostnames-from file lists {given} names but the design has {needed} instances: add {} more",
                        needed - given
                    ),
                );
            } else if given > needed {
                self.info(
                    "hostnames",
                    Code::HostnamesExtra,
                    format!("the --hostnames-from file lists {given} names; the design uses the first {needed}"),
                );
            }
        }
        if !ok {
            return Err(());
        }
        Ok(Some(
            names[..names.len().min(needed.unwrap_or(u32::MAX) as usize)].to_vec(),
        ))
    }

    /// The existing hosts' addresses, from the second column of the `--hostnames-from` file:
    /// IP addresses, each host its own, on bare designs only.
    #[allow(clippy::type_complexity)]
    fn addresses(
        &mut self,
        draft: &Draft,
        platform: Option<Platform>,
        needed: Option<u32>,
    ) -> Result<Option<Vec<Option<IpAddr>>>, ()> {
        let Some(given) = draft.addresses.as_ref() else {
            return Ok(None);
        };
        let first = given.iter().position(|a| !a.trim().is_empty());
        let Some(first) = first else {
            return Ok(None);
        };
        if let Some(platform) = platform.filter(|p| *p != Platform::Bare) {
            self.warning(
                format!("addresses[{first}]"),
                Code::AddressesNotOnPlatform,
                format!(
                    "the --hostnames-from file gives addresses (line {} has '{}'), which only bare designs use, so they are ignored: {}",
                    first + 1,
                    given[first].trim(),
                    if platform == Platform::Docker {
                        "docker designs take theirs from --network"
                    } else {
                        "AWS gives its instances theirs"
                    }
                ),
            );
            return Ok(None);
        }
        let mut ok = true;
        let mut parsed = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(given.len());
        for (i, text) in given.iter().enumerate() {
            let text = text.trim();
            if text.is_empty() {
                parsed.push(None);
                continue;
            }
            match text.parse::<IpAddr>() {
                Ok(address) => {
                    if !seen.insert(address) {
                        ok = false;
                        self.error(
                            format!("addresses[{i}]"),
                            Code::AddressDuplicate,
                            format!("address {address} (line {} of the --hostnames-from file) is given to two hosts: every instance needs a host of its own", i + 1),
                        );
                    }
                    parsed.push(Some(address));
                }
                Err(_) => {
                    ok = false;
                    parsed.push(None);
                    self.error(
                        format!("addresses[{i}]"),
                        Code::AddressInvalid,
                        format!("'{text}' (line {} of the --hostnames-from file) is not an IP address: give the host's IPv4 or IPv6 address after its name, such as 192.0.2.10", i + 1),
                    );
                }
            }
        }
        if !ok {
            return Err(());
        }
        if let Some(needed) = needed {
            parsed.truncate(needed as usize);
        }
        Ok(Some(parsed))
    }

    fn explanations(
        &mut self,
        failover: FailoverManager,
        cascaded: u32,
        locations: Option<&[String; 2]>,
        synchronous: bool,
        kinds: &[crate::topology::Kind],
        placement: Option<&[usize]>,
    ) {
        let postgres = 2 + cascaded;
        if failover.witness_for(postgres) {
            self.info(
                "num_cascaded_replicas",
                Code::WitnessOnBarman,
                format!(
                    "the cluster has {postgres} Postgres nodes, an even number, so the Barman node is also a {} witness: automatic failover then has an odd number of voters",
                    failover.title()
                ),
            );
        }
        if failover == FailoverManager::Patroni {
            // Where etcd's three members sit: by default all in the first location.
            let mut members = [0usize; 2];
            for (at, kind) in kinds.iter().enumerate() {
                if *kind == crate::topology::Kind::Etcd {
                    members[placement
                        .and_then(|p| p.get(at).copied())
                        .unwrap_or(kind.m1_location())
                        .min(1)] += 1;
                }
            }
            let names = locations.map_or(["A".to_string(), "B".to_string()], |l| l.clone());
            let (most, other) = if members[0] >= members[1] {
                (0, 1)
            } else {
                (1, 0)
            };
            let message = if members[other] == 0 {
                format!(
                    "with Patroni the quorum is kept by 3 etcd nodes in location '{}' and no witness is needed: losing location '{}' stops automatic failover",
                    names[most], names[most]
                )
            } else {
                format!(
                    "with Patroni the quorum is kept by 3 etcd nodes, {} in location '{}' and {} in '{}', and no witness is needed: losing location '{}' stops automatic failover, losing '{}' does not",
                    members[most],
                    names[most],
                    members[other],
                    names[other],
                    names[most],
                    names[other]
                )
            };
            self.info("failover_manager", Code::EtcdQuorum, message);
        }
        if !synchronous {
            self.info(
                "failover_manager",
                Code::AsyncDataLoss,
                "replication is asynchronous: on failover the new primary can miss the last transactions the old primary acknowledged (--synchronous-replication makes every commit wait for the replica)",
            );
        } else {
            let without = match failover {
                FailoverManager::Patroni => {
                    "while no standby can confirm, Patroni turns it off and commits go on unconfirmed; and only the standby Patroni names synchronous (its /sync key) may be promoted, so after a failover the old leader must rejoin and become the synchronous standby before a second failure can fail over"
                }
                _ => "while no standby can confirm, commits wait",
            };
            self.info(
                "synchronous",
                Code::SynchronousTradeOff,
                format!(
                    "replication to the first replica is synchronous: every commit waits for a standby to confirm it (one more network round trip), so a failover loses no acknowledged write; {without}"
                ),
            );
        }
    }
}

fn location_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 63 {
        Some("is longer than 63 characters")
    } else if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some("must start with a letter")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Some("may only contain letters, digits, '-' and '_'")
    } else {
        None
    }
}

/// `FAMILY.SIZE`, as in `t3.micro`, `m6i.large` or `u-6tb1.metal`.
fn is_instance_type(text: &str) -> bool {
    let Some((family, size)) = text.split_once('.') else {
        return false;
    };
    let word = |s: &str| {
        !s.is_empty()
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    word(family)
        && family.chars().any(|c| c.is_ascii_digit())
        && (word(size) || size.chars().all(|c| c.is_ascii_alphanumeric()) && !size.is_empty())
}

/// A DNS label close to `name`, for suggestions.
fn suggest_label(name: &str) -> String {
    let label: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let label = label.trim_matches('-');
    if label.is_empty() {
        "m1".to_string()
    } else {
        label.chars().take(63).collect()
    }
}

/// The candidate nearest to `text`, when it is near enough to be a typo.
pub(crate) fn closest<'a>(text: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(text, c), *c))
        .filter(|(distance, _)| *distance <= 3)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}
