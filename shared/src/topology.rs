//! The topology: the instances a design has, numbered in a fixed order (primary, replica,
//! cascaded replicas, Barman, etcd, HAProxy), with their names, locations, roles, upstreams and backups.

use crate::hostnames::default_hostname;
use crate::net;
use crate::spec::{Design, FailoverManager, PlatformSpec};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What an instance does. An instance may have several roles (Barman and witness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The Postgres primary.
    Primary,
    /// A streaming replica (the first one, or a cascaded one).
    Replica,
    /// The Barman backup server.
    Barman,
    /// A failover-manager witness (on the Barman node).
    Witness,
    /// A member of the etcd cluster (Patroni's DCS).
    Etcd,
    /// An HAProxy load balancer.
    Haproxy,
}

impl Role {
    /// Every role, in TPA's spelling order.
    pub const ALL: &'static [Role] = &[
        Role::Primary,
        Role::Replica,
        Role::Barman,
        Role::Witness,
        Role::Etcd,
        Role::Haproxy,
    ];

    /// The role as TPA writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Barman => "barman",
            Role::Witness => "witness",
            Role::Etcd => "etcd",
            Role::Haproxy => "haproxy",
        }
    }

    /// The role TPA writes as `text`.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.as_str() == text)
    }

    /// Whether the role runs Postgres (and so can be an upstream).
    pub fn is_postgres(self) -> bool {
        matches!(self, Role::Primary | Role::Replica)
    }
}

/// What kind of node an instance is, for the diagram and the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Node 1.
    Primary,
    /// Node 2, streaming from the primary.
    Replica,
    /// A replica streaming from node 2.
    CascadedReplica,
    /// The Barman server (perhaps also a witness).
    Barman,
    /// An etcd member.
    Etcd,
    /// An HAProxy node.
    Haproxy,
}

impl Kind {
    /// The kind's kebab-case name, as labels, CSS classes and JSON write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Primary => "primary",
            Kind::Replica => "replica",
            Kind::CascadedReplica => "cascaded-replica",
            Kind::Barman => "barman",
            Kind::Etcd => "etcd",
            Kind::Haproxy => "haproxy",
        }
    }

    /// Whether the node is one of the cluster's Postgres servers (the witness's Postgres only
    /// watches, and is not counted).
    pub fn is_postgres(self) -> bool {
        matches!(self, Kind::Primary | Kind::Replica | Kind::CascadedReplica)
    }
}

/// One instance of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The node number, from 1.
    pub node: u32,
    /// The host name.
    pub name: String,
    /// The location's name.
    pub location: String,
    /// What kind of node it is.
    pub kind: Kind,
    /// Its roles, as config.yml lists them.
    pub roles: Vec<Role>,
    /// The instance it streams from (or, for a witness, the one it watches).
    pub upstream: Option<String>,
    /// The Barman instance that backs it up.
    pub backup: Option<String>,
    /// Its address: the one the platform assigns (docker), or the existing host's (bare, where
    /// given).
    pub ip_address: Option<IpAddr>,
    /// For HAProxy nodes: the Postgres instances behind it.
    pub backends: Vec<String>,
}

impl Instance {
    /// Whether the instance has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the instance runs a Postgres server: the primary, the replicas, and a witness.
    pub fn runs_postgres(&self) -> bool {
        self.roles.iter().any(|r| r.is_postgres()) || self.has(Role::Witness)
    }
}

/// Every instance of a design, in node order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// The instances, node 1 first.
    pub instances: Vec<Instance>,
}

impl Topology {
    /// The instances of one kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(move |i| i.kind == kind)
    }

    /// The instance named `name`.
    pub fn get(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }
}

/// Lays out the instances of `design` as the M1 architecture does.
pub fn topology(design: &Design) -> Topology {
    let count = design.instance_count();
    let name = |node: u32| match design.hostnames() {
        Some(names) => names[(node - 1) as usize].clone(),
        None => default_hostname(node),
    };
    let [main, dr] = design.locations().clone();
    let mut instances = Vec::with_capacity(count as usize);
    let mut add = |kind: Kind, location: &str, roles: Vec<Role>| {
        let node = instances.len() as u32 + 1;
        instances.push(Instance {
            node,
            name: name(node),
            location: location.to_string(),
            kind,
            roles,
            upstream: None,
            backup: None,
            ip_address: None,
            backends: Vec::new(),
        });
    };
    add(Kind::Primary, &main, vec![Role::Primary]);
    add(Kind::Replica, &main, vec![Role::Replica]);
    for _ in 0..design.cascaded_replicas() {
        add(Kind::CascadedReplica, &dr, vec![Role::Replica]);
    }
    let barman_roles = if design.witness() {
        vec![Role::Barman, Role::Witness]
    } else {
        vec![Role::Barman]
    };
    add(Kind::Barman, &dr, barman_roles);
    if design.failover() == FailoverManager::Patroni {
        for _ in 0..3 {
            add(Kind::Etcd, &main, vec![Role::Etcd]);
        }
    }
    if design.haproxy() {
        for _ in 0..2 {
            add(Kind::Haproxy, &main, vec![Role::Haproxy]);
        }
    }

    let primary = instances[0].name.clone();
    let replica = instances[1].name.clone();
    let postgres: Vec<String> = instances
        .iter()
        .filter(|i| i.roles.iter().any(|r| r.is_postgres()))
        .map(|i| i.name.clone())
        .collect();
    let barman = instances
        .iter()
        .find(|i| i.kind == Kind::Barman)
        .map(|i| i.name.clone());
    for instance in &mut instances {
        match instance.kind {
            Kind::Primary => instance.backup = barman.clone(),
            Kind::Replica => instance.upstream = Some(primary.clone()),
            Kind::CascadedReplica => instance.upstream = Some(replica.clone()),
            Kind::Barman if instance.has(Role::Witness) => {
                instance.upstream = Some(primary.clone());
            }
            Kind::Haproxy => instance.backends = postgres.clone(),
            _ => {}
        }
    }
    if let (PlatformSpec::Docker, Some(network)) = (design.platform(), design.network())
        && let Some(addresses) = net::docker_addresses(network, count)
    {
        for (instance, address) in instances.iter_mut().zip(addresses) {
            instance.ip_address = Some(IpAddr::V4(address));
        }
    }
    if let (PlatformSpec::Bare, Some(addresses)) = (design.platform(), design.addresses()) {
        for (instance, address) in instances.iter_mut().zip(addresses) {
            instance.ip_address = *address;
        }
    }
    Topology { instances }
}
