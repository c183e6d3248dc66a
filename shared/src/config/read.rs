//! Reading a config.yml back into a draft: TPA's topology checks, TPA's own files (its extra
//! roles, one location, its images, its placement of Barman, etcd and HAProxy) read as designs
//! with a warning for each thing outside the M1 layout, and every path in a diagnostic a path in
//! the file.

use super::{ami_name, docker_image};
use crate::diag::{Code, Diagnostic, has_errors};
use crate::hostnames::default_hostname;
use crate::spec::{DISTRIBUTIONS, Distribution, Draft, FailoverManager, Numbering, Platform};
use crate::topology::{Kind, Role, Topology, node_kinds_in, topology};
use crate::validate::validate;
use std::collections::{BTreeMap, BTreeSet};
use yaml_serde::{Mapping, Value};

/// The `vault_name` of an existing config.yml, so that re-configuring a cluster directory keeps
/// its vault (TPA's rule). A file too large or not YAML has none.
pub fn vault_name_of(text: &str) -> Option<String> {
    if text.len() > MAX_CONFIG_BYTES || too_deep(text, MAX_CONFIG_DEPTH).is_some() {
        return None;
    }
    let root: Value = yaml_serde::from_str(text).ok()?;
    crate::spec::vault_uuid(root.get("vault_name")?.as_str()?)
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
    /// Whether its witness role is EFM's (which has no upstream).
    efm_witness: bool,
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
        draft.keyring_backend = self.scalar(&root, "keyring_backend", "keyring_backend");
        draft.vault_name = self.scalar(&root, "vault_name", "vault_name");
        draft.volatile_subscriptions = root
            .get("cluster_vars")
            .and_then(|v| v.get("use_volatile_subscriptions"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
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
        if names.len() == 1 {
            // TPA writes one location when every node of the design fits in it (EFM without
            // cascaded replicas): the design keeps M1's second location, empty.
            let second = crate::spec::DEFAULT_LOCATIONS
                .into_iter()
                .find(|d| *d != names[0])
                .unwrap_or("dr")
                .to_string();
            self.out.push(Diagnostic::warning(
                "locations",
                Code::ConfigOneLocation,
                format!(
                    "config.yml has one location, '{}', where M1 has two: the design adds '{second}' for the disaster-recovery side, and every node stays in '{}'",
                    names[0], names[0]
                ),
            ));
            names.push(second);
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
                draft.volume_sizes = volume_sizes(root, defaults);
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
        let docker = draft.platform.as_deref() == Some(Platform::Docker.as_str());
        for distribution in DISTRIBUTIONS {
            let versions = if docker {
                distribution.docker_versions
            } else {
                distribution.versions
            };
            for version in versions {
                if render(distribution, version) == name {
                    draft.distribution = Some(distribution.name.to_string());
                    draft.os_version = Some((*version).to_string());
                    return;
                }
            }
        }
        let why = if docker {
            "m1studio builds its docker nodes from Debian's packages"
        } else {
            "it is not an image m1studio knows"
        };
        self.out.push(Diagnostic::warning(
            path,
            Code::DistributionUnsupported,
            format!(
                "{path} '{name}' is not used: {why}, so the design runs Debian 12; set the distribution in the designer or with --distribution and --os-version"
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
            let mut efm_witness = false;
            for (r, role) in self
                .names(map, "role", &format!("{path}.role"))
                .iter()
                .enumerate()
            {
                match role.as_str() {
                    // EFM's witness: the node votes, and follows no upstream.
                    "efm-witness" => {
                        roles.insert(Role::Witness);
                        efm_witness = true;
                    }
                    extra if crate::tpa::TPA_BARMAN_EXTRA_ROLES.contains(&extra) => self.out.push(Diagnostic::warning(
                        format!("{path}.role[{r}]"),
                        Code::ConfigRoleIgnored,
                        format!(
                            "{path}.role '{role}' is a TPA role that m1studio does not deploy (TPA puts the cluster's {} on the Barman node); it is kept in the file for tpaexec deploy, and m1studio reads the node by its other roles",
                            if role == "log-server" { "central log server" } else { "monitoring server" }
                        ),
                    )),
                    text => match Role::parse(text) {
                        Some(role) => {
                            roles.insert(role);
                        }
                        None => self.out.push(Diagnostic::error(
                            format!("{path}.role[{r}]"),
                            Code::ConfigRoleUnknown,
                            format!(
                                "{path}.role has the unknown role '{role}': M1 instances have the roles primary, replica, barman, witness (efm-witness with EFM), etcd and haproxy"
                            ),
                        )),
                    },
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
                efm_witness,
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
            if i.roles.contains(&Role::Witness) && !i.efm_witness && i.upstream.is_none() {
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
    fn derive_layout(&mut self, instances: &[ReadInstance], draft: &mut Draft) {
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
        self.placement(instances, draft);
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

    /// Keeps where the file puts each node, when its nodes are the M1 layout's in TPA's order
    /// but some sit in another location (TPA puts Barman in the first location, and spreads etcd
    /// and HAProxy over both). Validation then warns for each moved node.
    fn placement(&mut self, instances: &[ReadInstance], draft: &mut Draft) {
        let Some(failover) = draft
            .failover_manager
            .as_deref()
            .and_then(FailoverManager::parse)
        else {
            return;
        };
        let cascaded = instances
            .iter()
            .filter(|i| i.roles.contains(&Role::Replica))
            .count()
            .saturating_sub(1) as u32;
        let Some(locations) = draft.location_names.clone() else {
            return;
        };
        let matches = |kinds: &[Kind]| {
            kinds.len() == instances.len()
                && kinds.iter().zip(instances).all(|(kind, i)| {
                    let main = match kind {
                        Kind::Primary => Role::Primary,
                        Kind::Replica | Kind::CascadedReplica => Role::Replica,
                        Kind::Barman => Role::Barman,
                        Kind::Etcd => Role::Etcd,
                        Kind::Haproxy => Role::Haproxy,
                    };
                    i.roles.contains(&main)
                })
        };
        let haproxy = draft.enable_haproxy;
        let kinds_in = |numbering| node_kinds_in(numbering, failover, cascaded, haproxy);
        // A file an earlier m1studio wrote numbers Barman after the cascaded replicas: its nodes
        // keep their numbers, so that each host keeps its role.
        let kinds = if matches(&kinds_in(Numbering::Tpa)) {
            kinds_in(Numbering::Tpa)
        } else if cascaded > 0 && matches(&kinds_in(Numbering::BarmanLast)) {
            draft.numbering = Numbering::BarmanLast;
            self.out.push(Diagnostic::warning(
                "instances",
                Code::NumberingBarmanLast,
                format!(
                    "config.yml numbers Barman {} after the cascaded replicas, as m1studio did before it numbered nodes as TPA does (Barman 3, the cascaded replicas from 4): its nodes keep their numbers, so that each host keeps its role; configure it again to number them as TPA does",
                    cascaded + 3
                ),
            ));
            kinds_in(Numbering::BarmanLast)
        } else {
            return;
        };
        if instances.iter().any(|i| !locations.contains(&i.location)) {
            return;
        }
        let m1 = kinds
            .iter()
            .map(|k| locations.get(k.m1_location()).map(String::as_str));
        if instances.iter().map(|i| Some(i.location.as_str())).ne(m1) {
            draft.placement = Some(instances.iter().map(|i| i.location.clone()).collect());
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

/// The sizes of an aws design's volumes, from `instance_defaults.default_volumes` (the root
/// volume and the Postgres data volume) and the Barman instance's `volumes`.
fn volume_sizes(root: &Mapping, defaults: &Mapping) -> crate::spec::VolumeSizes {
    let size_of = |volumes: Option<&Value>, wanted: &dyn Fn(&Value) -> bool| {
        volumes
            .and_then(Value::as_sequence)
            .and_then(|list| list.iter().find(|v| wanted(v)))
            .and_then(|v| v.get("volume_size"))
            .and_then(|s| match s {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
    };
    let volume_for = |what: &'static str| {
        move |v: &Value| {
            v.get("vars")
                .and_then(|vars| vars.get("volume_for"))
                .and_then(Value::as_str)
                == Some(what)
        }
    };
    let barman_volumes = root
        .get("instances")
        .and_then(Value::as_sequence)
        .and_then(|list| {
            list.iter().find(|i| {
                i.get("role")
                    .and_then(Value::as_sequence)
                    .is_some_and(|roles| roles.iter().any(|r| r.as_str() == Some("barman")))
            })
        })
        .and_then(|i| i.get("volumes"));
    let defaults_volumes = defaults.get("default_volumes");
    crate::spec::VolumeSizes {
        root: size_of(defaults_volumes, &|v: &Value| {
            v.get("device_name").and_then(Value::as_str) == Some("root")
        }),
        postgres: size_of(defaults_volumes, &volume_for("postgres_data")),
        barman: size_of(barman_volumes, &volume_for("barman_data")),
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
        "volume_sizes.barman" => "instances".into(),
        "volume_sizes.root" | "volume_sizes.postgres" => "instance_defaults.default_volumes".into(),
        "placement" => "instances".into(),
        "network" if aws => "ec2_vpc".into(),
        "network" => "docker_networks[0].ipam_config[0].subnet".into(),
        _ => diagnostic.path.clone(),
    };
    diagnostic.path = match head.as_str() {
        "hostnames" if !tail.is_empty() => format!("instances{tail}.Name"),
        "addresses" if !tail.is_empty() => format!("instances{tail}.ip_address"),
        "location_names" if !tail.is_empty() => format!("locations{tail}.Name"),
        "placement" if !tail.is_empty() => format!("instances{tail}.location"),
        _ => place,
    };
    diagnostic
}
