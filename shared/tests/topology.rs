//! The layout of the instances: TPA's node order (Barman 3, the cascaded replicas from 4), names,
//! locations, roles, upstreams, backups, the witness rule, etcd and HAProxy.

mod common;

use m1studio_shared::{Kind, Role, configure};

/// The instances of the design `line` describes, one `node name location roles [upstream] [backup]` line each.
fn layout(line: &str) -> Vec<String> {
    let (invocation, problems) = common::parse(line);
    assert!(problems.is_empty(), "{problems:?}");
    let (configured, diagnostics) = configure(&invocation.draft);
    let configured = configured.unwrap_or_else(|| panic!("{line}: {diagnostics:?}"));
    configured
        .topology
        .instances
        .iter()
        .map(|i| {
            let roles: Vec<&str> = i.roles.iter().map(|r| r.as_str()).collect();
            let mut text = format!("{} {} {} {}", i.node, i.name, i.location, roles.join("+"));
            if let Some(up) = &i.upstream {
                text += &format!(" up={up}");
            }
            if let Some(backup) = &i.backup {
                text += &format!(" backup={backup}");
            }
            if !i.backends.is_empty() {
                text += &format!(" backends={}", i.backends.join(","));
            }
            text
        })
        .collect()
}

fn check(line: &str, expected: &[&str]) {
    assert_eq!(layout(line), expected, "for: configure {line}");
}

const REPMGR: &str = "m1 -a M1 --postgresql 15 --failover-manager repmgr --platform docker";
const PATRONI: &str = "m1 -a M1 --postgresql 15 --failover-manager patroni --platform docker";

#[test]
fn default_layout_follows_the_seed() {
    check(
        REPMGR,
        &[
            "1 kestrel main primary backup=uplift",
            "2 quartz main replica up=kestrel",
            "3 uplift dr barman",
            "4 karma dr replica up=quartz",
        ],
    );
}

#[test]
fn no_cascaded_replicas_makes_barman_a_witness() {
    check(
        &format!("{REPMGR} --num-cascaded-replicas 0"),
        &[
            "1 kestrel main primary backup=uplift",
            "2 quartz main replica up=kestrel",
            "3 uplift dr barman+witness up=kestrel",
        ],
    );
}

#[test]
fn witness_follows_the_parity_of_postgres_nodes() {
    for n in 0..=32u32 {
        let lines = layout(&format!("{REPMGR} --num-cascaded-replicas {n}"));
        // TPA's numbering: Barman is always node 3.
        let barman = &lines[2];
        assert!(
            barman.starts_with("3 ") && barman.contains("barman"),
            "{barman}"
        );
        let even = (n + 2) % 2 == 0;
        assert_eq!(barman.contains("barman+witness"), even, "n={n}: {barman}");
        assert_eq!(lines.len() as u32, n + 3);
    }
}

#[test]
fn efm_uses_the_witness_rule_too() {
    let lines =
        layout("m1 -a M1 --postgresql 15 --enable-efm --platform docker --num-cascaded-replicas 2");
    // EFM's witness votes, and follows no upstream (TPA writes it as efm-witness).
    assert_eq!(lines[2], "3 uplift dr barman+witness", "{lines:?}");
}

#[test]
fn patroni_adds_three_etcd_nodes_in_the_first_location_and_no_witness() {
    check(
        &format!("{PATRONI} --num-cascaded-replicas 0"),
        &[
            "1 kestrel main primary backup=uplift",
            "2 quartz main replica up=kestrel",
            "3 uplift dr barman",
            "4 karma main etcd",
            "5 quarry main etcd",
            "6 unison main etcd",
        ],
    );
}

#[test]
fn haproxy_adds_two_nodes_whose_backends_are_the_postgres_nodes() {
    check(
        &format!("{PATRONI} --enable-haproxy --location-names east west"),
        &[
            "1 kestrel east primary backup=uplift",
            "2 quartz east replica up=kestrel",
            "3 uplift west barman",
            "4 karma west replica up=quartz",
            "5 quarry east etcd",
            "6 unison east etcd",
            "7 kingdom east etcd",
            "8 quiver east haproxy backends=kestrel,quartz,karma",
            "9 upland east haproxy backends=kestrel,quartz,karma",
        ],
    );
}

#[test]
fn cascaded_replicas_all_stream_from_node_two() {
    let (invocation, _) = common::parse(&format!(
        "{PATRONI} --enable-haproxy --num-cascaded-replicas 32"
    ));
    let configured = configure(&invocation.draft).0.unwrap();
    let topology = &configured.topology;
    assert_eq!(topology.instances.len(), 32 + 3 + 3 + 2);
    let replica = topology.of_kind(Kind::Replica).next().unwrap().name.clone();
    assert_eq!(topology.of_kind(Kind::CascadedReplica).count(), 32);
    assert!(
        topology
            .of_kind(Kind::CascadedReplica)
            .all(|i| i.upstream.as_deref() == Some(&replica) && i.location == "dr")
    );
    let numbers: Vec<u32> = topology.instances.iter().map(|i| i.node).collect();
    assert_eq!(numbers, (1..=40).collect::<Vec<_>>());
    assert!(
        topology
            .instances
            .iter()
            .filter(|i| i.has(Role::Witness))
            .count()
            == 0
    );
}

#[test]
fn hostnames_from_a_file_replace_the_default_names() {
    check(
        &format!("{REPMGR} --hostnames-from four.txt"),
        &[
            "1 alpha main primary backup=charlie",
            "2 bravo main replica up=alpha",
            "3 charlie dr barman",
            "4 delta dr replica up=bravo",
        ],
    );
}

#[test]
fn docker_instances_get_addresses_after_the_gateway() {
    let (invocation, _) = common::parse(&format!("{REPMGR} --network 192.168.5.0/24"));
    let configured = configure(&invocation.draft).0.unwrap();
    let addresses: Vec<String> = configured
        .topology
        .instances
        .iter()
        .map(|i| i.ip_address.unwrap().to_string())
        .collect();
    assert_eq!(
        addresses,
        ["192.168.5.2", "192.168.5.3", "192.168.5.4", "192.168.5.5"]
    );
}

#[test]
fn the_same_inputs_give_the_same_layout() {
    let line = format!("{PATRONI} --enable-haproxy --num-cascaded-replicas 5");
    assert_eq!(layout(&line), layout(&line));
}
