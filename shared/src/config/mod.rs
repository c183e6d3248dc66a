//! config.yml: rendering a design as TPA's cluster configuration, byte for byte the same for the
//! same design and laid out as TPA writes it (keys sorted, a blank line between sections), and
//! reading one back ([`read`]: written by us, by `tpaexec configure`, or by hand) into a draft.

mod read;
mod yaml;

pub use read::{MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, read, vault_name_of};

use crate::spec::{Design, Distribution, FailoverManager, PlatformSpec};
use crate::topology::{Role, Topology};
use serde::Serialize;
use std::collections::BTreeMap;

/// The AMI name pattern for a distribution version on aws.
pub(crate) fn ami_name(distribution: &Distribution, version: &str) -> String {
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
pub(crate) fn docker_image(distribution: &Distribution, version: &str) -> String {
    format!("tpa/{}:{version}", distribution.name.to_ascii_lowercase())
}

/// The user TPA logs in as on an aws instance of `distribution`: each AMI's own.
fn aws_user(distribution: &Distribution) -> &'static str {
    match distribution.name {
        "Debian" => "admin",
        "Ubuntu" => "ubuntu",
        "Rocky" => "rocky",
        _ => "ec2-user",
    }
}

// Every mapping below lists its keys in alphabetical order, as TPA writes them.

#[derive(Serialize)]
struct Head<'a> {
    architecture: &'a str,
    cluster_name: &'a str,
    cluster_tags: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct Vault<'a> {
    keyring_backend: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault_name: Option<&'a str>,
}

#[derive(Serialize)]
struct PlatformKeys<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cluster_rules: Vec<Rule>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    docker_networks: Vec<DockerNetwork<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ec2_ami: Option<Ami>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ec2_instance_reachability: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    ec2_vpc: BTreeMap<&'a str, Vpc>,
}

#[derive(Serialize)]
struct DockerNetwork<'a> {
    ipam_config: Vec<Subnet>,
    name: &'a str,
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
struct Vars<'a> {
    cluster_vars: ClusterVars<'a>,
}

#[derive(Serialize)]
struct ClusterVars<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    apt_repository_list: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    edb_repositories: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epas_redwood_compat: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etcd_location: Option<&'a str>,
    failover_manager: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    patroni_conf_settings: Option<PatroniConf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postgres_conf_settings: Option<BTreeMap<&'static str, String>>,
    postgres_flavour: &'static str,
    postgres_version: String,
    preferred_python_version: &'static str,
    use_volatile_subscriptions: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    yum_repository_list: Option<Vec<&'static str>>,
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
struct Locations<'a> {
    locations: Vec<Location<'a>>,
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
struct Defaults<'a> {
    instance_defaults: InstanceDefaults<'a>,
}

#[derive(Serialize)]
struct InstanceDefaults<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    default_volumes: Vec<Volume>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os_version: Option<&'a str>,
    platform: &'static str,
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    instance_type: Option<&'a str>,
    vars: BTreeMap<&'static str, &'static str>,
}

/// An EBS volume, as TPA describes it.
#[derive(Serialize)]
struct Volume {
    device_name: &'static str,
    encrypted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    vars: Option<BTreeMap<&'static str, &'static str>>,
    volume_size: u32,
    volume_type: &'static str,
}

impl Volume {
    fn new(device_name: &'static str, volume_for: Option<&'static str>, size: u32) -> Volume {
        Volume {
            device_name,
            encrypted: true,
            vars: volume_for.map(|v| BTreeMap::from([("volume_for", v)])),
            volume_size: size,
            volume_type: "gp2",
        }
    }
}

#[derive(Serialize)]
struct Instances<'a> {
    instances: Vec<InstanceYml<'a>>,
}

#[derive(Serialize)]
struct InstanceYml<'a> {
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    location: &'a str,
    node: u32,
    role: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vars: Option<InstanceVars<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<Volume>,
}

#[derive(Serialize)]
struct InstanceVars<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    etcd_location: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    haproxy_backend_servers: Vec<&'a str>,
}

/// One top-level section as YAML text (empty when it has no key).
fn section<T: Serialize>(value: &T) -> String {
    match yaml::to_string(value) {
        Ok(text) if text.trim() != "{}" => text,
        _ => String::new(),
    }
}

/// Renders `design` (laid out as `topology`) as a TPA-compatible config.yml, laid out as TPA
/// writes it: keys sorted inside every mapping, and a blank line between top-level sections.
pub fn render(design: &Design, topology: &Topology) -> String {
    let name = design.cluster_name();
    let network = design.network();
    let [main, dr] = design.locations();
    let mut cluster_tags = BTreeMap::new();
    if let Some(owner) = design.owner() {
        cluster_tags.insert("Owner", owner);
    }
    let head = Head {
        architecture: crate::spec::ARCHITECTURE,
        cluster_name: name,
        cluster_tags,
    };
    let vault = Vault {
        keyring_backend: design.keyring_backend(),
        vault_name: design.vault_name(),
    };
    // EDB's repositories: the enterprise one for EDB's servers; PostgreSQL with EFM needs only
    // the standard one, with the distribution's own lists emptied of PGDG (and EPEL on yum).
    let edb = design.needs_edb_subscription();
    let edb_repositories = match (edb, design.flavour().is_edb()) {
        (false, _) => Vec::new(),
        (true, true) => vec!["enterprise"],
        (true, false) => vec!["standard"],
    };
    let patroni = design.failover() == FailoverManager::Patroni;
    let cluster_vars = ClusterVars {
        apt_repository_list: edb.then(Vec::new),
        edb_repositories,
        epas_redwood_compat: design.redwood(),
        etcd_location: patroni.then_some(main.as_str()),
        failover_manager: design.failover().as_str(),
        patroni_conf_settings: (design.synchronous() && patroni).then_some(PatroniConf {
            bootstrap: PatroniBootstrap {
                dcs: PatroniDcs {
                    synchronous_mode: true,
                },
            },
        }),
        postgres_conf_settings: (design.synchronous() && !patroni).then(|| {
            BTreeMap::from([(
                "synchronous_standby_names",
                synchronous_standby_names(topology),
            )])
        }),
        postgres_flavour: design.flavour().as_str(),
        postgres_version: design.version().to_string(),
        preferred_python_version: "python3",
        use_volatile_subscriptions: design.volatile_subscriptions(),
        yum_repository_list: edb.then(|| vec!["EPEL"]),
    };
    let mut locations: Vec<Location> = [main, dr]
        .into_iter()
        .map(|name| Location {
            name,
            az: None,
            region: None,
            subnet: None,
        })
        .collect();
    let mut platform = PlatformKeys {
        cluster_rules: Vec::new(),
        docker_networks: Vec::new(),
        ec2_ami: None,
        ec2_instance_reachability: None,
        ec2_vpc: BTreeMap::new(),
    };
    let mut defaults = InstanceDefaults {
        default_volumes: Vec::new(),
        image: None,
        os: None,
        os_version: None,
        platform: design.platform().platform().as_str(),
        instance_type: None,
        vars: BTreeMap::from([("ansible_user", "root")]),
    };
    let distribution = design.distribution();
    let os_version = design.os_version();
    let [root_size, postgres_size, barman_size] = design.volume_sizes();
    // Docker addresses are written where the network was chosen (TPA writes none by default).
    let mut docker_addresses = false;
    match design.platform() {
        PlatformSpec::Docker => {
            if let Some(network) = network
                && network.to_string() != crate::spec::DEFAULT_NETWORK
            {
                docker_addresses = true;
                platform.docker_networks.push(DockerNetwork {
                    ipam_config: vec![Subnet {
                        subnet: network.to_string(),
                    }],
                    name,
                });
            }
            defaults.image = Some(docker_image(distribution, os_version));
        }
        PlatformSpec::Aws {
            region,
            instance_type,
        } => {
            platform.ec2_ami = Some(Ami {
                name: ami_name(distribution, os_version),
                owner: distribution.ami_owner,
            });
            platform.ec2_instance_reachability = Some("public");
            platform.cluster_rules.push(Rule {
                cidr_ip: "0.0.0.0/0".into(),
                from_port: 22,
                proto: "tcp",
                to_port: 22,
            });
            if let Some(network) = network {
                platform.ec2_vpc.insert(
                    region,
                    Vpc {
                        name: name.to_string(),
                        cidr: network.to_string(),
                    },
                );
                let subnets = crate::net::aws_subnets(network, design.instances_per_location());
                for (i, location) in locations.iter_mut().enumerate() {
                    location.az = Some(format!("{region}{}", ['a', 'b'][i]));
                    location.region = Some(region);
                    location.subnet = subnets.map(|s| s[i].to_string());
                }
                // Every port between the cluster's own subnets, as TPA opens them.
                for subnet in subnets.into_iter().flatten() {
                    platform.cluster_rules.push(Rule {
                        cidr_ip: subnet.to_string(),
                        from_port: 0,
                        proto: "tcp",
                        to_port: 65535,
                    });
                }
            }
            defaults.default_volumes = vec![
                Volume::new("root", None, root_size),
                Volume::new("/dev/sdf", Some("postgres_data"), postgres_size),
            ];
            defaults.instance_type = Some(instance_type);
            defaults.vars.insert("ansible_user", aws_user(distribution));
        }
        PlatformSpec::Bare => {
            defaults.os = Some(distribution.name);
            defaults.os_version = Some(os_version);
        }
    }
    let aws = matches!(design.platform(), PlatformSpec::Aws { .. });
    let instances = topology
        .instances
        .iter()
        .map(|i| {
            let etcd = i.has(Role::Etcd);
            let vars = (etcd || !i.backends.is_empty()).then(|| InstanceVars {
                etcd_location: etcd.then_some(main.as_str()),
                haproxy_backend_servers: i.backends.iter().map(String::as_str).collect(),
            });
            let volumes = if aws && i.has(Role::Barman) {
                vec![Volume::new("/dev/sdf", Some("barman_data"), barman_size)]
            } else {
                Vec::new()
            };
            let address = match design.platform() {
                PlatformSpec::Docker if !docker_addresses => None,
                _ => i.ip_address,
            };
            InstanceYml {
                name: &i.name,
                backup: i.backup.as_deref(),
                ip_address: address.map(|a| a.to_string()),
                location: &i.location,
                node: i.node,
                role: i
                    .roles
                    .iter()
                    .map(|r| match r {
                        Role::Witness if design.failover() == FailoverManager::Efm => "efm-witness",
                        r => r.as_str(),
                    })
                    .collect(),
                upstream: i.upstream.as_deref(),
                vars,
                volumes,
            }
        })
        .collect();
    let sections = [
        section(&head),
        section(&vault),
        section(&platform),
        section(&Vars { cluster_vars }),
        section(&Locations { locations }),
        section(&Defaults {
            instance_defaults: defaults,
        }),
        section(&Instances { instances }),
    ];
    let body: Vec<String> = sections.into_iter().filter(|s| !s.is_empty()).collect();
    format!("---\n{}", body.join("\n"))
}
