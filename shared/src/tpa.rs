//! What `tpaexec configure --architecture M1` (TPA v23.31) writes differently from the design
//! shown, given the same options: where it places Barman, etcd and HAProxy, the roles it adds to
//! Barman, and its host names. Pure: the designer's "tpaexec configure" tab and its tests use it.

use crate::spec::Design;
use crate::topology::{Kind, Topology};

/// The location (0: the first, 1: the second) TPA v23.31 gives a node of `kind` numbered
/// `node`: the primary, its replica and Barman in the first, the cascaded replicas in the
/// second, and etcd and HAProxy alternating, even node numbers in the first.
pub fn tpa_location(kind: Kind, node: u32) -> usize {
    match kind {
        Kind::Primary | Kind::Replica | Kind::Barman => 0,
        Kind::CascadedReplica => 1,
        Kind::Etcd | Kind::Haproxy => usize::from(node % 2 == 1),
    }
}

/// TPA's roles for the Barman node that m1studio reads but does not deploy.
pub const TPA_BARMAN_EXTRA_ROLES: [&str; 2] = ["log-server", "monitoring-server"];

/// One sentence for each way the file `tpaexec configure` writes for the design's options would
/// differ from the design shown, for a reader who runs the line.
pub fn tpa_differences(design: &Design, topology: &Topology) -> Vec<String> {
    let locations = design.locations();
    let mut out = Vec::new();
    for instance in &topology.instances {
        let theirs = &locations[tpa_location(instance.kind, instance.node)];
        if *theirs == instance.location {
            continue;
        }
        let why = if instance.location == locations[instance.kind.m1_location()] {
            format!(": {}", instance.kind.m1_reason())
        } else {
            String::new()
        };
        out.push(format!(
            "TPA puts {} ({}, node {}) in '{theirs}'; this design has it in '{}'{why}",
            instance.name,
            instance.kind.as_str(),
            instance.node,
            instance.location
        ));
    }
    if let Some(barman) = topology.of_kind(Kind::Barman).next() {
        out.push(format!(
            "TPA also gives {} the roles {} and {}, which m1studio does not deploy",
            barman.name, TPA_BARMAN_EXTRA_ROLES[0], TPA_BARMAN_EXTRA_ROLES[1]
        ));
    }
    if design.hostnames().is_none() {
        out.push(
            "TPA draws its host names at random from its word list; give --hostnames-from to keep these"
                .to_string(),
        );
    }
    out
}
