//! The topology: the instances a design has, numbered in TPA's order (primary, replica, Barman,
//! cascaded replicas, etcd, HAProxy), with their names, locations, roles, upstreams and backups.

use crate::hostnames::default_hostname;
use crate::net;
use crate::spec::{Design, FailoverManager, Numbering, PlatformSpec};
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

impl Kind {
    /// The location the M1 layout gives the kind: 0 for the first (the primary, its replica,
    /// etcd and HAProxy), 1 for the second (the cascaded replicas and Barman, as the M1 document
    /// says; TPA v23.31 puts Barman in the first).
    pub fn m1_location(self) -> usize {
        match self {
            Kind::CascadedReplica | Kind::Barman => 1,
            Kind::Primary | Kind::Replica | Kind::Etcd | Kind::Haproxy => 0,
        }
    }

    /// Why the M1 layout puts the kind where it does, for a node a config.yml placed elsewhere.
    pub fn m1_reason(self) -> &'static str {
        match self {
            Kind::Primary | Kind::Replica => {
                "the primary and its replica share the first location, so that failing over to the replica keeps the cluster where its clients are"
            }
            Kind::CascadedReplica => {
                "the cascaded replicas keep a copy in the disaster-recovery location"
            }
            Kind::Barman => {
                "the M1 document keeps Barman with the cascaded replicas, so that the backups survive the loss of the first location"
            }
            Kind::Etcd => {
                "the M1 layout keeps etcd's quorum beside the primary, so that a lost link to the second location never stops failover"
            }
            Kind::Haproxy => "the M1 layout keeps HAProxy beside the primary and its clients",
        }
    }
}

/// The kind of each node, in node order: TPA's numbering, primary 1, replica 2, Barman 3, the
/// cascaded replicas from 4, then etcd's three members (Patroni) and the two HAProxy nodes.
pub fn node_kinds(failover: FailoverManager, cascaded: u32, haproxy: bool) -> Vec<Kind> {
    node_kinds_in(Numbering::Tpa, failover, cascaded, haproxy)
}

/// The kind of each node, in node order, numbered as `numbering` says.
pub fn node_kinds_in(
    numbering: Numbering,
    failover: FailoverManager,
    cascaded: u32,
    haproxy: bool,
) -> Vec<Kind> {
    let mut kinds = vec![Kind::Primary, Kind::Replica];
    let replicas = (0..cascaded).map(|_| Kind::CascadedReplica);
    match numbering {
        Numbering::Tpa => {
            kinds.push(Kind::Barman);
            kinds.extend(replicas);
        }
        Numbering::BarmanLast => {
            kinds.extend(replicas);
            kinds.push(Kind::Barman);
        }
    }
    if failover == FailoverManager::Patroni {
        kinds.extend([Kind::Etcd; 3]);
    }
    if haproxy {
        kinds.extend([Kind::Haproxy; 2]);
    }
    kinds
}

/// How many of `kinds` (in node order) each location holds: where `placement` puts them, or
/// where the M1 layout does.
pub fn location_counts(kinds: &[Kind], placement: Option<&[usize]>) -> [u32; 2] {
    let mut counts = [0; 2];
    for (at, kind) in kinds.iter().enumerate() {
        let location = placement
            .and_then(|p| p.get(at).copied())
            .unwrap_or(kind.m1_location());
        counts[location.min(1)] += 1;
    }
    counts
}

/// Lays out the instances of `design` as the M1 architecture does, in TPA's node order, each in
/// the location the design's placement gives it (by default, the M1 layout's).
pub fn topology(design: &Design) -> Topology {
    let count = design.instance_count();
    let name = |node: u32| match design.hostnames() {
        Some(names) => names[(node - 1) as usize].clone(),
        None => default_hostname(node),
    };
    let locations = design.locations();
    let kinds = design.node_kinds();
    let mut instances: Vec<Instance> = Vec::with_capacity(count as usize);
    for (at, kind) in kinds.into_iter().enumerate() {
        let node = at as u32 + 1;
        let location = design
            .placement()
            .and_then(|p| p.get(at).copied())
            .unwrap_or(kind.m1_location());
        let roles = match kind {
            Kind::Primary => vec![Role::Primary],
            Kind::Replica | Kind::CascadedReplica => vec![Role::Replica],
            Kind::Barman if design.witness() => vec![Role::Barman, Role::Witness],
            Kind::Barman => vec![Role::Barman],
            Kind::Etcd => vec![Role::Etcd],
            Kind::Haproxy => vec![Role::Haproxy],
        };
        instances.push(Instance {
            node,
            name: name(node),
            location: locations[location.min(1)].clone(),
            kind,
            roles,
            upstream: None,
            backup: None,
            ip_address: None,
            backends: Vec::new(),
        });
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
            // repmgr's witness watches the primary; EFM's has no upstream.
            Kind::Barman
                if instance.has(Role::Witness) && design.failover() != FailoverManager::Efm =>
            {
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
