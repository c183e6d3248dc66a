//! The node image's recipe (from Debian's archive, or with the server packages from the
//! PostgreSQL apt repository for versions Debian lacks), and what an existing host needs for its
//! roles: packages and free ports.

use super::{ETCD_CLIENT_PORT, HAPROXY_READ_ONLY_PORT, HAPROXY_STATS_PORT, PATRONI_PORT};
use crate::diag::{Code, Diagnostic};
use crate::spec::{Design, FailoverManager};
use crate::topology::{Instance, Kind};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The Postgres server packages of `version`: the server and repmgr.
pub(super) fn server_packages(version: u32) -> [String; 2] {
    [
        format!("postgresql-{version}"),
        format!("postgresql-{version}-repmgr"),
    ]
}

/// The Debian packages that `instance`'s roles need on an existing host (a container has them
/// all, in the node image).
pub fn host_packages(design: &Design, instance: &Instance) -> Vec<String> {
    let mut packages = vec!["supervisor".to_string(), "procps".into()];
    if instance.runs_postgres() {
        let [server, repmgr] = server_packages(design.version());
        packages.push(server);
        packages.push(match design.failover() {
            FailoverManager::Patroni => "patroni".into(),
            _ => repmgr,
        });
    }
    match instance.kind {
        Kind::Barman => packages.extend(["barman".to_string(), "barman-cli".into()]),
        Kind::Etcd => packages.extend(["etcd-server".to_string(), "etcd-client".into()]),
        Kind::Haproxy => packages.push("haproxy".into()),
        _ => {}
    }
    packages
}

/// The TCP ports that `instance`'s services listen on.
pub fn host_ports(design: &Design, instance: &Instance) -> Vec<u16> {
    let mut ports = Vec::new();
    if instance.runs_postgres() {
        ports.push(5432);
        if design.failover() == FailoverManager::Patroni {
            ports.push(PATRONI_PORT);
        }
    }
    match instance.kind {
        // Clients, then the other members.
        Kind::Etcd => ports.extend([ETCD_CLIENT_PORT, 2380]),
        Kind::Haproxy => ports.extend([5432, HAPROXY_READ_ONLY_PORT, HAPROXY_STATS_PORT]),
        _ => {}
    }
    ports
}

/// The container image every node of a docker deployment runs: Debian with the packages of
/// every role, built from Debian's archive without a registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeImage {
    /// The Debian suite.
    pub suite: String,
    /// The packages installed into it from Debian's archive.
    pub packages: Vec<String>,
    /// Where the Postgres server packages come from when Debian's archive has no such version.
    pub pgdg: Option<Pgdg>,
    /// The tag, made from the recipe's content: the same recipe always has the same tag.
    pub tag: String,
    /// Where its Postgres's programs are.
    pub bindir: String,
}

/// Where Debian's packages put the programs of Postgres `version`.
pub fn bindir(version: u32) -> String {
    format!("/usr/lib/postgresql/{version}/bin")
}

/// The PostgreSQL project's apt repository, for a version Debian's archive does not carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pgdg {
    /// The repository's address, as in `http://apt.postgresql.org/pub/repos/apt`.
    pub mirror: String,
    /// Its suite (`bookworm-pgdg`).
    pub suite: String,
    /// The packages installed from it, after the Debian ones.
    pub packages: Vec<String>,
}

/// Where each Postgres major version comes from in Debian's own archive.
pub const DEBIAN_SUITES: &[(u32, &str)] = &[
    (13, "bullseye"),
    (15, "bookworm"),
    (17, "trixie"),
    (18, "sid"),
];

/// The Debian suite an image that takes Postgres from the PostgreSQL apt repository is built on.
pub const PGDG_BASE_SUITE: &str = "bookworm";

/// The PostgreSQL apt repository's usual address, named in messages.
pub const PGDG_MIRROR: &str = "http://apt.postgresql.org/pub/repos/apt";

/// The node image for `design`, or why it cannot be built. Versions in Debian's archive come
/// from it; any other version needs `pgdg`, the address of the PostgreSQL project's apt
/// repository where it is reachable.
pub fn node_image(design: &Design, pgdg: Option<&str>) -> Result<NodeImage, Diagnostic> {
    let version = design.version();
    let server = server_packages(version);
    let (suite, pgdg) = match (DEBIAN_SUITES.iter().find(|(v, _)| *v == version), pgdg) {
        (Some((_, suite)), _) => (*suite, None),
        (None, Some(mirror)) if !mirror.trim().is_empty() => (
            PGDG_BASE_SUITE,
            Some(Pgdg {
                mirror: mirror.trim().trim_end_matches('/').to_string(),
                suite: format!("{PGDG_BASE_SUITE}-pgdg"),
                packages: server.to_vec(),
            }),
        ),
        (None, _) => {
            let known: Vec<String> = DEBIAN_SUITES
                .iter()
                .map(|(v, s)| format!("{v} ({s})"))
                .collect();
            return Err(Diagnostic::error(
                "postgres_version",
                Code::DeployUnsupported,
                format!(
                    "PostgreSQL {version} is not in Debian's archive, and containers are built from it: use {} for a docker deployment, or, where the PostgreSQL project's apt repository is reachable, set M1STUDIO_PGDG_MIRROR={PGDG_MIRROR} to build the image with it",
                    known.join(", ")
                ),
            ));
        }
    };
    let mut packages: Vec<String> = [
        "barman".to_string(),
        "barman-cli".into(),
        "patroni".into(),
        "etcd-server".into(),
        "etcd-client".into(),
        "haproxy".into(),
        "openssh-server".into(),
        "iproute2".into(),
        "procps".into(),
        "supervisor".into(),
    ]
    .into();
    if pgdg.is_some() {
        packages.push("postgresql-common".into());
    } else {
        packages.extend(server);
    }
    packages.sort();
    // The recipe's version: raise it whenever the way the image is built changes.
    let mut recipe = format!(
        "m1studio-node recipe 2\nsuite={suite}\npackages={}\n",
        packages.join(",")
    );
    if let Some(pgdg) = &pgdg {
        recipe.push_str(&format!(
            "pgdg={} {}\npgdg_packages={}\n",
            pgdg.mirror,
            pgdg.suite,
            pgdg.packages.join(",")
        ));
    }
    let digest = sha2::Sha256::digest(recipe.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let source = if pgdg.is_some() { "-pgdg" } else { "" };
    Ok(NodeImage {
        suite: suite.to_string(),
        packages,
        pgdg,
        tag: format!("m1studio-node:{suite}-pg{version}{source}-{hex}"),
        bindir: bindir(version),
    })
}
