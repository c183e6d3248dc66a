//! config.yml: rendering a design as TPA's cluster configuration, byte for byte the same for the
//! same design, and reading one back (written by us or edited by hand) into a draft, with TPA's topology checks.

use crate::diag::{Code, Diagnostic, has_errors};
use crate::hostnames::default_hostname;
use crate::spec::{
    DISTRIBUTIONS, Design, Distribution, Draft, FailoverManager, Platform, PlatformSpec,
};
use crate::topology::{Role, Topology, topology};
use crate::validate::validate;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use yaml_serde::{Mapping, Value};

/// The AMI name pattern for a distribution version on aws.
fn ami_name(distribution: &Distribution, version: &str) -> String {
    match distribution.name {
        "Debian" => format!("debian-{version}-amd64-*"),
        "Ubuntu" => format!("ubuntu/images/hvm-ssd*/ubuntu-*-{version}-amd64-server-*"),
        "RedHat" => format!("RHEL-{version}.*_HVM-*-x86_64-*"),
        "Rocky" => format!("Rocky-{version}-EC2-Base*"),
        "AlmaLinux" => format!("AlmaLinux OS {version}.*"),
        other => format!("{}-{version}-*", other.to_ascii_lowercase()),
    }
}

/// The container image a distribution version runs as on docker.
fn docker_image(distribution: &Distribution, version: &str) -> String {
    format!("tpa/{}:{version}", distribution.name.to_ascii_lowercase())
}

#[derive(Serialize)]
struct ConfigYml<'a> {
    architecture: &'a str,
    cluster_name: &'a str,
    cluster_tags: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    docker_networks: Vec<DockerNetwork<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ec2_ami: Option<Ami>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ec2_instance_reachability: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    ec2_vpc: BTreeMap<&'a str, Vpc>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cluster_rules: Vec<Rule>,
    cluster_vars: ClusterVars,
    locations: Vec<Location<'a>>,
    instance_defaults: InstanceDefaults<'a>,
    instances: Vec<InstanceYml<'a>>,
}

#[derive(Serialize)]
struct DockerNetwork<'a> {
    name: &'a str,
    ipam_config: Vec<Subnet>,
}

#[derive(Serialize)]
struct Subnet {
    subnet: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Ami {
    name: String,
    owner: &'static str,
}

#[derive(Serialize)]
struct Vpc {
    #[serde(rename = "Name")]
    name: String,
    cidr: String,
}

#[derive(Serialize)]
struct Rule {
    cidr_ip: String,
    from_port: u16,
    proto: &'static str,
    to_port: u16,
}

#[derive(Serialize)]
struct ClusterVars {
    edb_repositories: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epas_redwood_compat: Option<bool>,
    failover_manager: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    patroni_conf_settings: Option<PatroniConf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patroni_dcs: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postgres_conf_settings: Option<BTreeMap<&'static str, String>>,
    postgres_flavour: &'static str,
    postgres_version: String,
}

/// Patroni settings for synchronous replication: `bootstrap.dcs.synchronous_mode`.
#[derive(Serialize)]
struct PatroniConf {
    bootstrap: PatroniBootstrap,
}

#[derive(Serialize)]
struct PatroniBootstrap {
    dcs: PatroniDcs,
}

#[derive(Serialize)]
struct PatroniDcs {
    synchronous_mode: bool,
}

/// The `synchronous_standby_names` of a synchronous design: any one of the Postgres nodes
/// streaming directly from the primary of the moment (the first replica, or after a failover
/// the standbys of the new primary).
pub fn synchronous_standby_names(topology: &Topology) -> String {
    let names: Vec<String> = topology
        .instances
        .iter()
        .filter(|i| i.kind.is_postgres())
        .map(|i| format!("\"{}\"", i.name))
        .collect();
    format!("ANY 1 ({})", names.join(", "))
}

#[derive(Serialize)]
struct Location<'a> {
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    az: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subnet: Option<String>,
}

#[derive(Serialize)]
struct InstanceDefaults<'a> {
    platform: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    instance_type: Option<&'a str>,
    vars: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct InstanceYml<'a> {
    node: u32,
    #[serde(rename = "Name")]
    name: &'a str,
    location: &'a str,
    role: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    vars: BTreeMap<&'static str, Vec<&'a str>>,
}

/// Renders `design` (laid out as `topology`) as a TPA-compatible config.yml.
pub fn render(design: &Design, topology: &Topology) -> String {
    let name = design.cluster_name();
    let platform = design.platform().platform();
    let network = design.network();
    let [main, dr] = design.locations();
    let mut cluster_tags = BTreeMap::new();
    if let Some(owner) = design.owner() {
        cluster_tags.insert("Owner", owner);
    }
    let edb_repositories = if design.needs_edb_subscription() {
        vec!["enterprise"]
    } else {
        Vec::new()
    };
    let mut config = ConfigYml {
        architecture: crate::spec::ARCHITECTURE,
        cluster_name: name,
        cluster_tags,
        docker_networks: Vec::new(),
        ec2_ami: None,
        ec2_instance_reachability: None,
        ec2_vpc: BTreeMap::new(),
        cluster_rules: Vec::new(),
        cluster_vars: ClusterVars {
            edb_repositories,
            epas_redwood_compat: design.redwood(),
            failover_manager: design.failover().as_str(),
            patroni_conf_settings: (design.synchronous()
                && design.failover() == FailoverManager::Patroni)
                .then_some(PatroniConf {
                    bootstrap: PatroniBootstrap {
                        dcs: PatroniDcs {
                            synchronous_mode: true,
                        },
                    },
                }),
            patroni_dcs: (design.failover() == FailoverManager::Patroni).then_some("etcd"),
            postgres_conf_settings: (design.synchronous()
                && design.failover() != FailoverManager::Patroni)
                .then(|| {
                    BTreeMap::from([(
                        "synchronous_standby_names",
                        synchronous_standby_names(topology),
                    )])
                }),
            postgres_flavour: design.flavour().as_str(),
            postgres_version: design.version().to_string(),
        },
        locations: vec![main, dr]
            .into_iter()
            .map(|name| Location {
                name,
                az: None,
                region: None,
                subnet: None,
            })
            .collect(),
        instance_defaults: InstanceDefaults {
            platform: platform.as_str(),
            image: None,
            os: None,
            os_version: None,
            instance_type: None,
            vars: BTreeMap::new(),
        },
        instances: Vec::new(),
    };
    let distribution = design.distribution();
    let os_version = design.os_version();
    match design.platform() {
        PlatformSpec::Docker => {
            if let Some(network) = network {
                config.docker_networks.push(DockerNetwork {
                    name,
                    ipam_config: vec![Subnet {
                        subnet: network.to_string(),
                    }],
                });
            }
            config.instance_defaults.image = Some(docker_image(distribution, os_version));
        }
        PlatformSpec::Aws {
            region,
            instance_type,
        } => {
            config.ec2_ami = Some(Ami {
                name: ami_name(distribution, os_version),
                owner: distribution.ami_owner,
            });
            config.ec2_instance_reachability = Some("public");
            if let Some(network) = network {
                config.ec2_vpc.insert(
                    region,
                    Vpc {
                        name: name.to_string(),
                        cidr: network.to_string(),
                    },
                );
                config.cluster_rules = vec![
                    Rule {
                        cidr_ip: "0.0.0.0/0".into(),
                        from_port: 22,
                        proto: "tcp",
                        to_port: 22,
                    },
                    Rule {
                        cidr_ip: network.to_string(),
                        from_port: 0,
                        proto: "tcp",
                        to_port: 65535,
                    },
                ];
                let counts = design.instances_per_location();
                let subnets = crate::net::aws_subnets(network, counts);
                for (i, location) in config.locations.iter_mut().enumerate() {
                    location.az = Some(format!("{region}{}", ['a', 'b'][i]));
                    location.region = Some(region);
                    location.subnet = subnets.map(|s| s[i].to_string());
                }
            }
            config.instance_defaults.instance_type = Some(instance_type);
            config
                .instance_defaults
                .vars
                .insert("ansible_user", "admin");
        }
        PlatformSpec::Bare => {
            config.instance_defaults.os = Some(distribution.name);
            config.instance_defaults.os_version = Some(os_version);
        }
    }
    config.instances = topology
        .instances
        .iter()
        .map(|i| {
            let mut vars = BTreeMap::new();
            if !i.backends.is_empty() {
                vars.insert(
                    "haproxy_backend_servers",
                    i.backends.iter().map(String::as_str).collect(),
                );
            }
            InstanceYml {
                node: i.node,
                name: &i.name,
                location: &i.location,
                role: i.roles.iter().map(|r| r.as_str()).collect(),
                upstream: i.upstream.as_deref(),
                backup: i.backup.as_deref(),
                ip_address: i.ip_address.map(|a| a.to_string()),
                vars,
            }
        })
        .collect();
    let body = yaml_serde::to_string(&config).unwrap_or_default();
    format!("---\n{body}")
}

/// One instance as read from a config.yml.
#[derive(Debug, Clone)]
struct ReadInstance {
    index: usize,
    node: u32,
    name: String,
    location: String,
    roles: BTreeSet<Role>,
    upstream: Option<String>,
    backups: Vec<String>,
    /// Its `ip_address`, where it is one.
    address: Option<String>,
}

/// The largest config.yml read, in bytes: TPA's own are a few KiB.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The deepest nesting of lists and mappings read: TPA's files nest six levels at most.
pub const MAX_CONFIG_DEPTH: usize = 64;

/// Where `text` first nests flow collections (`[…]`, `{…}`) more than `max` deep, as a line
/// and a column from 1, found in one pass that skips quoted strings and comments. The YAML
/// parser's own limit stops deep block nesting at once, but takes seconds to reach it through
/// 100,000 brackets.
fn too_deep(text: &str, max: usize) -> Option<(usize, usize)> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut escaped = false;
    let mut previous = '\n';
    for c in text.chars() {
        column += 1;
        if c == '\n' {
            (line, column, comment) = (line + 1, 0, false);
            // A plain scalar or a flow collection may go on, but a quoted one keeps its quote.
            previous = c;
            continue;
        }
        if comment {
            continue;
        }
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' if !previous.is_alphanumeric() => quote = Some(c),
                '#' if previous.is_whitespace() => comment = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > max {
                        return Some((line, column));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        previous = c;
    }
    None
}

/// Reads a config.yml back into a draft. Checks the topology as TPA does (exactly one primary,
/// upstreams that exist and form no cycle, backups on a barman, witnesses with an upstream),
/// validates the design it describes, and warns where the instances differ from the M1 layout.
/// Paths in the diagnostics are paths in the file.
pub fn read(text: &str) -> (Option<Draft>, Vec<Diagnostic>) {
    let mut reader = Reader { out: Vec::new() };
    let draft = reader.read(text);
    let draft = draft.filter(|_| !has_errors(&reader.out));
    (draft, crate::diag::cap_repeats(reader.out))
}

struct Reader {
    out: Vec<Diagnostic>,
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl Reader {
    fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        self.out.push(Diagnostic::error(
            path,
            Code::ConfigWrongType,
            format!(
                "{path} must be {expected}, but it is {}: fix it in config.yml",
                kind_of(found)
            ),
        ));
    }

    fn missing(&mut self, path: &str, what: &str) {
        self.out.push(Diagnostic::error(
            path,
            Code::ConfigMissingKey,
            format!("config.yml has no {path}: add {what}"),
        ));
    }

    /// A scalar as text (strings, numbers and booleans), or a type error.
    fn scalar(&mut self, map: &Mapping, key: &str, path: &str) -> Option<String> {
        match map.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.wrong_type(path, "a single value", other);
                None
            }
        }
    }

    fn mapping<'v>(&mut self, map: &'v Mapping, key: &str, path: &str) -> Option<&'v Mapping> {
        match map.get(key)? {
            Value::Mapping(m) => Some(m),
            other => {
                self.wrong_type(path, "a mapping", other);
                None
            }
        }
    }

    fn sequence<'v>(&mut self, map: &'v Mapping, key: &str, path: &str) -> Option<&'v [Value]> {
        match map.get(key)? {
            Value::Sequence(s) => Some(s),
            other => {
                self.wrong_type(path, "a list", other);
                None
            }
        }
    }

    /// A string or a list of strings.
    fn names(&mut self, map: &Mapping, key: &str, path: &str) -> Vec<String> {
        match map.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        self.wrong_type(&format!("{path}[{i}]"), "a name", other);
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.wrong_type(path, "a name or a list of names", other);
                Vec::new()
            }
        }
    }

    fn read(&mut self, text: &str) -> Option<Draft> {
        if text.len() > MAX_CONFIG_BYTES {
            self.out.push(Diagnostic::error(
                "config.yml",
                Code::ConfigTooLarge,
                format!(
                    "config.yml is {} KiB, more than the {} KiB m1studio reads (a cluster's config.yml is a few KiB): give the cluster's own config.yml",
                    text.len() / 1024,
                    MAX_CONFIG_BYTES / 1024
                ),
            ));
            return None;
        }
        if let Some((line, column)) = too_deep(text, MAX_CONFIG_DEPTH) {
            self.out.push(Diagnostic::error(
                "config.yml",
                Code::ConfigTooDeep,
                format!(
                    "config.yml nests lists and mappings more than {MAX_CONFIG_DEPTH} deep at line {line}, column {column}; a cluster's config.yml nests a few levels: give the cluster's own config.yml"
                ),
            ));
            return None;
        }
        let root: Value = match yaml_serde::from_str(text) {
            Ok(value) => value,
            Err(err) => {
                let place = err
                    .location()
                    .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
                    .unwrap_or_default();
                self.out.push(Diagnostic::error(
                    "config.yml",
                    Code::ConfigSyntax,
                    format!("config.yml is not valid YAML{place}: {err}; fix the syntax there"),
                ));
                return None;
            }
        };
        let Value::Mapping(root) = root else {
            self.wrong_type("config.yml", "a mapping of settings", &root);
            return None;
        };
        let mut draft = Draft {
            architecture: self.scalar(&root, "architecture", "architecture"),
            ..Draft::default()
        };
        if draft.architecture.is_none() {
            self.missing("architecture", "architecture: M1");
        }
        match self.scalar(&root, "cluster_name", "cluster_name") {
            Some(name) => draft.cluster_name = name,
            None => self.missing("cluster_name", "cluster_name: with the cluster's name"),
        }
        if let Some(tags) = self.mapping(&root, "cluster_tags", "cluster_tags") {
            draft.owner = self.scalar(tags, "Owner", "cluster_tags.Owner");
        }
        match self.mapping(&root, "cluster_vars", "cluster_vars") {
            Some(vars) => {
                draft.postgres_flavour =
                    self.scalar(vars, "postgres_flavour", "cluster_vars.postgres_flavour");
                draft.postgres_version =
                    self.scalar(vars, "postgres_version", "cluster_vars.postgres_version");
                draft.failover_manager =
                    self.scalar(vars, "failover_manager", "cluster_vars.failover_manager");
                draft.patroni_dcs = self.scalar(vars, "patroni_dcs", "cluster_vars.patroni_dcs");
                // Synchronous replication, as m1studio writes it for each failover manager.
                let postgres_sync = vars
                    .get("postgres_conf_settings")
                    .and_then(Value::as_mapping)
                    .is_some_and(|m| m.contains_key("synchronous_standby_names"));
                let patroni_sync = vars
                    .get("patroni_conf_settings")
                    .and_then(|v| v.get("bootstrap"))
                    .and_then(|v| v.get("dcs"))
                    .and_then(|v| v.get("synchronous_mode"))
                    .and_then(Value::as_bool)
                    == Some(true);
                draft.synchronous = postgres_sync || patroni_sync;
                draft.redwood = match self
                    .scalar(
                        vars,
                        "epas_redwood_compat",
                        "cluster_vars.epas_redwood_compat",
                    )
                    .as_deref()
                {
                    None => None,
                    Some("true") => Some(true),
                    Some("false") => Some(false),
                    Some(other) => {
                        self.out.push(Diagnostic::error(
                            "cluster_vars.epas_redwood_compat",
                            Code::ConfigWrongType,
                            format!("cluster_vars.epas_redwood_compat must be true or false, not '{other}'"),
                        ));
                        None
                    }
                };
            }
            None => self.missing(
                "cluster_vars",
                "cluster_vars: with postgres_flavour, postgres_version and failover_manager",
            ),
        }
        let location_names = self.locations(&root, &mut draft);
        self.platform(&root, &mut draft);
        let instances = self.instances(&root, &location_names);
        if let Some(instances) = &instances {
            self.derive_layout(instances, &mut draft);
        }
        let (design, diagnostics) = validate(&draft);
        self.out
            .extend(diagnostics.into_iter().map(|d| remap(d, &draft)));
        if let (Some(design), Some(instances), false) = (design, instances, has_errors(&self.out)) {
            self.compare_layout(&topology(&design), &instances);
        }
        Some(draft)
    }

    fn locations(&mut self, root: &Mapping, draft: &mut Draft) -> Vec<String> {
        let Some(items) = self.sequence(root, "locations", "locations") else {
            if !root.contains_key("locations") {
                self.missing("locations", "locations: with the two locations' names");
            }
            return Vec::new();
        };
        let mut names = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("locations[{i}]");
            let Value::Mapping(map) = item else {
                self.wrong_type(&path, "a mapping with Name", item);
                continue;
            };
            match self.scalar(map, "Name", &format!("{path}.Name")) {
                Some(name) => names.push(name),
                None => self.missing(&format!("{path}.Name"), "the location's Name"),
            }
            if i == 0 {
                draft.region = self.scalar(map, "region", &format!("{path}.region"));
            }
        }
        draft.location_names = Some(names.clone());
        names
    }

    fn platform(&mut self, root: &Mapping, draft: &mut Draft) {
        let Some(defaults) = self.mapping(root, "instance_defaults", "instance_defaults") else {
            self.missing("instance_defaults", "instance_defaults: with platform");
            return;
        };
        draft.platform = self.scalar(defaults, "platform", "instance_defaults.platform");
        if draft.platform.is_none() {
            self.missing(
                "instance_defaults.platform",
                "platform: aws, docker or bare",
            );
        }
        match draft.platform.as_deref().and_then(Platform::parse) {
            Some(Platform::Docker) => {
                let image = self.scalar(defaults, "image", "instance_defaults.image");
                if let Some(image) = image {
                    self.distribution_from(&image, "instance_defaults.image", draft, |d, v| {
                        docker_image(d, v)
                    });
                }
                if let Some(networks) = self.sequence(root, "docker_networks", "docker_networks") {
                    draft.network = networks
                        .first()
                        .and_then(|n| n.get("ipam_config"))
                        .and_then(|c| c.get(0))
                        .and_then(|c| c.get("subnet"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
            }
            Some(Platform::Aws) => {
                draft.instance_type = self.scalar(defaults, "type", "instance_defaults.type");
                if let Some(ami) = self.mapping(root, "ec2_ami", "ec2_ami")
                    && let Some(name) = self.scalar(ami, "Name", "ec2_ami.Name")
                {
                    self.distribution_from(&name, "ec2_ami.Name", draft, ami_name);
                }
                if let Some(vpc) = self.mapping(root, "ec2_vpc", "ec2_vpc")
                    && let Some((region, body)) = vpc.iter().next()
                {
                    if draft.region.is_none() {
                        draft.region = region.as_str().map(str::to_string);
                    }
                    draft.network = body.get("cidr").and_then(Value::as_str).map(str::to_string);
                }
            }
            Some(Platform::Bare) => {
                draft.distribution = self.scalar(defaults, "os", "instance_defaults.os");
                draft.os_version =
                    self.scalar(defaults, "os_version", "instance_defaults.os_version");
            }
            None => {}
        }
    }

    /// Finds the distribution whose rendered image or AMI name is `name`.
    fn distribution_from(
        &mut self,
        name: &str,
        path: &str,
        draft: &mut Draft,
        render: impl Fn(&Distribution, &str) -> String,
    ) {
        for distribution in DISTRIBUTIONS {
            for version in distribution
                .versions
                .iter()
                .chain(distribution.docker_versions)
            {
                if render(distribution, version) == name {
                    draft.distribution = Some(distribution.name.to_string());
                    draft.os_version = Some((*version).to_string());
                    return;
                }
            }
        }
        self.out.push(Diagnostic::warning(
            path,
            Code::DistributionUnsupported,
            format!(
                "{path} '{name}' is not an image this tool knows: the design assumes Debian 12"
            ),
        ));
    }

    fn instances(&mut self, root: &Mapping, locations: &[String]) -> Option<Vec<ReadInstance>> {
        let Some(items) = self.sequence(root, "instances", "instances") else {
            if !root.contains_key("instances") {
                self.missing("instances", "instances: with the cluster's instances");
            }
            return None;
        };
        let mut instances = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let path = format!("instances[{index}]");
            let Value::Mapping(map) = item else {
                self.wrong_type(&path, "a mapping", item);
                continue;
            };
            let name = self.scalar(map, "Name", &format!("{path}.Name"));
            let node = match map.get("node") {
                Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                Some(other) => {
                    self.wrong_type(&format!("{path}.node"), "a node number", other);
                    None
                }
                None => None,
            };
            let location = self.scalar(map, "location", &format!("{path}.location"));
            let mut roles = BTreeSet::new();
            for (r, role) in self
                .names(map, "role", &format!("{path}.role"))
                .iter()
                .enumerate()
            {
                match Role::parse(role) {
                    Some(role) => {
                        roles.insert(role);
                    }
                    None => self.out.push(Diagnostic::error(
                        format!("{path}.role[{r}]"),
                        Code::ConfigRoleUnknown,
                        format!(
                            "{path}.role has the unknown role '{role}': M1 instances have the roles primary, replica, barman, witness, etcd and haproxy"
                        ),
                    )),
                }
            }
            let upstream = self
                .names(map, "upstream", &format!("{path}.upstream"))
                .into_iter()
                .next();
            let backups = self.names(map, "backup", &format!("{path}.backup"));
            let mut address = None;
            if let Some(Value::String(text)) = map.get("ip_address") {
                match text.parse::<std::net::IpAddr>() {
                    Ok(ip) => address = Some(ip.to_string()),
                    Err(_) => self.out.push(Diagnostic::error(
                        format!("{path}.ip_address"),
                        Code::ConfigWrongType,
                        format!("{path}.ip_address '{text}' is not an IP address"),
                    )),
                }
            }
            let (Some(name), Some(node), Some(location)) = (name, node, location) else {
                for (key, what) in [
                    ("Name", "the host name"),
                    ("node", "the node number"),
                    ("location", "the location's name"),
                ] {
                    if !map.contains_key(key) {
                        self.missing(&format!("{path}.{key}"), what);
                    }
                }
                continue;
            };
            if !locations.is_empty() && !locations.contains(&location) {
                self.out.push(Diagnostic::error(
                    format!("{path}.location"),
                    Code::ConfigLocationUnknown,
                    format!(
                        "{path}.location names '{location}', which is not in locations: use {}",
                        crate::spec::or_list(
                            &locations.iter().map(String::as_str).collect::<Vec<_>>()
                        )
                    ),
                ));
            }
            instances.push(ReadInstance {
                index,
                node,
                name,
                location,
                roles,
                upstream,
                backups,
                address,
            });
        }
        instances.sort_by_key(|i| i.node);
        self.check_topology(&instances);
        Some(instances)
    }

    /// TPA's checks: unique names and nodes, exactly one primary, upstreams that exist and run
    /// Postgres, no cycles, backups on barman instances, witnesses with an upstream.
    fn check_topology(&mut self, instances: &[ReadInstance]) {
        let by_name: BTreeMap<&str, &ReadInstance> =
            instances.iter().map(|i| (i.name.as_str(), i)).collect();
        let mut names = BTreeSet::new();
        let mut nodes = BTreeSet::new();
        for i in instances {
            let path = format!("instances[{}]", i.index);
            if !names.insert(i.name.as_str()) {
                self.out.push(Diagnostic::error(
                    format!("{path}.Name"),
                    Code::ConfigDuplicateName,
                    format!(
                        "two instances are named '{}': every instance needs its own Name",
                        i.name
                    ),
                ));
            }
            if !nodes.insert(i.node) {
                self.out.push(Diagnostic::error(
                    format!("{path}.node"),
                    Code::ConfigDuplicateNode,
                    format!(
                        "two instances have node {}: every instance needs its own node number",
                        i.node
                    ),
                ));
            }
            if let Some(upstream) = &i.upstream {
                match by_name.get(upstream.as_str()) {
                    Some(up) if up.roles.iter().any(|r| r.is_postgres()) => {}
                    Some(_) => self.out.push(Diagnostic::error(
                        format!("{path}.upstream"),
                        Code::ConfigUpstreamUnknown,
                        format!("instance '{}' has upstream '{upstream}', which does not run Postgres: name a primary or replica", i.name),
                    )),
                    None => self.out.push(Diagnostic::error(
                        format!("{path}.upstream"),
                        Code::ConfigUpstreamUnknown,
                        format!("instance '{}' has upstream '{upstream}', but no instance has that Name", i.name),
                    )),
                }
            }
            for backup in &i.backups {
                if !by_name
                    .get(backup.as_str())
                    .is_some_and(|b| b.roles.contains(&Role::Barman))
                {
                    self.out.push(Diagnostic::error(
                        format!("{path}.backup"),
                        Code::ConfigBackupNotBarman,
                        format!("instance '{}' has backup '{backup}', which is not an instance with the barman role", i.name),
                    ));
                }
            }
            if i.roles.contains(&Role::Witness) && i.upstream.is_none() {
                self.out.push(Diagnostic::error(
                    format!("{path}.upstream"),
                    Code::ConfigWitnessNoUpstream,
                    format!(
                        "witness '{}' has no upstream: set upstream to the primary's Name",
                        i.name
                    ),
                ));
            }
        }
        let primaries = instances
            .iter()
            .filter(|i| i.roles.contains(&Role::Primary))
            .count();
        if primaries != 1 {
            self.out.push(Diagnostic::error(
                "instances",
                Code::ConfigPrimaryCount,
                format!("config.yml has {primaries} instances with the primary role: it needs exactly one"),
            ));
        }
        for start in instances {
            let mut seen = BTreeSet::from([start.name.as_str()]);
            let mut at = start;
            while let Some(next) = at.upstream.as_deref().and_then(|u| by_name.get(u)) {
                if !seen.insert(next.name.as_str()) {
                    if next.name == start.name {
                        self.out.push(Diagnostic::error(
                            format!("instances[{}].upstream", start.index),
                            Code::ConfigUpstreamCycle,
                            format!("the upstreams of '{}' lead back to itself: break the cycle so that every chain ends at the primary", start.name),
                        ));
                    }
                    break;
                }
                at = next;
            }
        }
    }

    /// Sets the draft's counts and names from the instances.
    fn derive_layout(&self, instances: &[ReadInstance], draft: &mut Draft) {
        // M1 has exactly one replica of the primary; every other replica is a cascaded one.
        let replicas = instances
            .iter()
            .filter(|i| i.roles.contains(&Role::Replica))
            .count();
        draft.num_cascaded_replicas = Some(replicas.saturating_sub(1).to_string());
        draft.enable_haproxy = instances.iter().any(|i| i.roles.contains(&Role::Haproxy));
        let names: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
        let defaults = (1..=names.len() as u32).map(default_hostname);
        if !names.iter().cloned().eq(defaults) {
            draft.hostnames = Some(names);
        }
        // Existing hosts' addresses; elsewhere the platform gives them.
        if draft.platform.as_deref() == Some("bare")
            && instances.iter().any(|i| i.address.is_some())
        {
            draft.addresses = Some(
                instances
                    .iter()
                    .map(|i| i.address.clone().unwrap_or_default())
                    .collect(),
            );
        }
    }

    /// Warns where the instances differ from the M1 layout of the design they describe.
    fn compare_layout(&mut self, expected: &Topology, found: &[ReadInstance]) {
        if expected.instances.len() != found.len() {
            self.out.push(Diagnostic::warning(
                "instances",
                Code::ConfigLayoutDiffers,
                format!(
                    "config.yml has {} instances where the M1 layout of this design has {}",
                    found.len(),
                    expected.instances.len()
                ),
            ));
        }
        for (want, have) in expected.instances.iter().zip(found) {
            let path = format!("instances[{}]", have.index);
            let want_roles: BTreeSet<Role> = want.roles.iter().copied().collect();
            let mut differ = |what: &str, have_text: String, want_text: String| {
                self.out.push(Diagnostic::warning(
                    path.clone(),
                    Code::ConfigLayoutDiffers,
                    format!(
                        "instance '{}' (node {}) has {what} {have_text} where the M1 layout has {want_text}",
                        have.name, have.node
                    ),
                ));
            };
            let show = |v: Option<&str>| v.map_or("none".to_string(), |v| format!("'{v}'"));
            let roles =
                |r: &BTreeSet<Role>| r.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
            if want_roles != have.roles {
                differ(
                    "roles",
                    format!("[{}]", roles(&have.roles)),
                    format!("[{}]", roles(&want_roles)),
                );
            }
            if want.location != have.location {
                differ(
                    "location",
                    format!("'{}'", have.location),
                    format!("'{}'", want.location),
                );
            }
            if want.upstream != have.upstream {
                differ(
                    "upstream",
                    show(have.upstream.as_deref()),
                    show(want.upstream.as_deref()),
                );
            }
            if want.backup.iter().cloned().collect::<Vec<_>>() != have.backups {
                differ(
                    "backup",
                    show(have.backups.first().map(String::as_str)),
                    show(want.backup.as_deref()),
                );
            }
        }
    }
}

/// Rewrites a validation diagnostic's path (a draft field) to the place in config.yml that holds it.
fn remap(mut diagnostic: Diagnostic, draft: &Draft) -> Diagnostic {
    let aws = draft.platform.as_deref() == Some(Platform::Aws.as_str());
    let head = diagnostic
        .path
        .split('[')
        .next()
        .unwrap_or_default()
        .to_string();
    let tail = diagnostic.path[head.len()..].to_string();
    let place = match head.as_str() {
        "postgres_flavour" | "postgres_version" | "failover_manager" | "patroni_dcs" => {
            format!("cluster_vars.{head}")
        }
        "redwood" => "cluster_vars.epas_redwood_compat".into(),
        "platform" => "instance_defaults.platform".into(),
        "instance_type" => "instance_defaults.type".into(),
        "region" => "locations[0].region".into(),
        "distribution" | "os_version" => match draft.platform.as_deref() {
            Some("docker") => "instance_defaults.image".into(),
            Some("bare") => format!(
                "instance_defaults.{}",
                if head == "distribution" {
                    "os"
                } else {
                    "os_version"
                }
            ),
            _ => "ec2_ami.Name".into(),
        },
        "num_cascaded_replicas" | "enable_haproxy" | "hostnames" | "addresses" => {
            "instances".into()
        }
        "location_names" => "locations".into(),
        "owner" => "cluster_tags.Owner".into(),
        "network" if aws => "ec2_vpc".into(),
        "network" => "docker_networks[0].ipam_config[0].subnet".into(),
        _ => diagnostic.path.clone(),
    };
    diagnostic.path = match head.as_str() {
        "hostnames" if !tail.is_empty() => format!("instances{tail}.Name"),
        "addresses" if !tail.is_empty() => format!("instances{tail}.ip_address"),
        "location_names" if !tail.is_empty() => format!("locations{tail}.Name"),
        _ => place,
    };
    diagnostic
}
