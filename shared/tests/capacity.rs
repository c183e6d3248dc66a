//! What clusters cost a host, and how many it admits: sums over designs, the host's budget,
//! refusals that say what is full, and the queue's wait.

use m1studio_shared::capacity::{
    Cost, Host, TYPICAL_DEPLOY_SECS, cluster_cost, estimated_wait_secs, node_cost, refusal,
};
use m1studio_shared::{Draft, FailoverManager, Kind, configure};

fn cost_of(manager: &str, cascaded: u32, haproxy: bool) -> Cost {
    let mut draft = Draft::starter();
    draft.failover_manager = Some(manager.into());
    draft.num_cascaded_replicas = Some(cascaded.to_string());
    draft.enable_haproxy = haproxy;
    let configured = configure(&draft).0.expect("a valid design");
    cluster_cost(&configured.topology, configured.design.failover())
}

/// The machine the numbers were measured on.
const REFERENCE: Host = Host {
    cores: 2,
    memory_mib: 24 * 1024,
};

#[test]
fn a_cluster_costs_what_its_nodes_cost() {
    let repmgr = FailoverManager::Repmgr;
    let default = cost_of("repmgr", 1, false);
    assert_eq!(
        default,
        [
            Kind::Primary,
            Kind::Replica,
            Kind::Barman,
            Kind::CascadedReplica
        ]
        .into_iter()
        .map(|k| node_cost(k, repmgr))
        .sum()
    );
    // Each cascaded replica adds its own cost, and Patroni's etcd and HAProxy cost more.
    let more = cost_of("repmgr", 4, false);
    assert_eq!(
        more.idle_cpu_ms - default.idle_cpu_ms,
        3 * node_cost(Kind::CascadedReplica, repmgr).idle_cpu_ms
    );
    let patroni = cost_of("patroni", 1, true);
    assert!(patroni.memory_mib > default.memory_mib, "{patroni:?}");
    assert!(patroni.idle_cpu_ms > default.idle_cpu_ms, "{patroni:?}");
    // Every node kind costs something to keep and to deploy.
    for manager in [FailoverManager::Repmgr, FailoverManager::Patroni] {
        for kind in [
            Kind::Primary,
            Kind::Replica,
            Kind::CascadedReplica,
            Kind::Barman,
            Kind::Etcd,
            Kind::Haproxy,
        ] {
            let cost = node_cost(kind, manager);
            assert!(cost.memory_mib > 0 && cost.idle_cpu_ms > 0 && cost.deploy_cpu_ms > 0);
        }
    }
}

#[test]
fn a_host_holds_what_three_quarters_of_its_memory_and_cpu_hold() {
    let default = cost_of("repmgr", 1, false);
    let holds = REFERENCE.holds(default);
    let by_cpu = usize::try_from(1500 / default.idle_cpu_ms).unwrap();
    let by_memory = usize::try_from(24 * 1024 * 3 / 4 / default.memory_mib).unwrap();
    assert_eq!(holds, by_cpu.min(by_memory));
    // A small machine still holds one.
    let small = Host {
        cores: 1,
        memory_mib: 256,
    };
    assert_eq!(small.holds(default), 1);
    assert_eq!(REFERENCE.parallel(), 4);
    assert_eq!(small.parallel(), 2);
}

#[test]
fn a_full_host_says_what_is_full_and_what_to_do() {
    let default = cost_of("repmgr", 1, false);
    let holds = REFERENCE.holds(default);
    let live = |n: usize| (0..n).map(|_| default).sum::<Cost>();
    assert_eq!(
        refusal(&REFERENCE, live(holds - 1), holds - 1, default),
        None
    );
    let why = refusal(&REFERENCE, live(holds), holds, default).expect("full");
    assert!(why.contains(&format!("holds {holds} clusters")), "{why}");
    assert!(why.contains("destroy one, or ask the trainer"), "{why}");
    // Memory is named when memory is what runs out.
    let roomy_cpu = Host {
        cores: 64,
        memory_mib: 2048,
    };
    let why = refusal(&roomy_cpu, live(10), 10, default).expect("no memory left");
    assert!(why.contains("MiB of memory"), "{why}");
}

#[test]
fn a_queued_deployment_waits_for_the_rounds_ahead_of_it() {
    // Next in line with two slots: half of a deployment, the one ahead being half done.
    assert_eq!(estimated_wait_secs(1, 2, 20), 10);
    assert_eq!(estimated_wait_secs(2, 2, 20), 10);
    assert_eq!(estimated_wait_secs(3, 2, 20), 30);
    assert_eq!(estimated_wait_secs(5, 1, 20), 90);
    assert_eq!(estimated_wait_secs(1, 0, 21), 11);
    // Before any deployment here, the wait is counted in the usual deployment.
    assert_eq!(
        estimated_wait_secs(3, 2, TYPICAL_DEPLOY_SECS),
        TYPICAL_DEPLOY_SECS + TYPICAL_DEPLOY_SECS.div_ceil(2)
    );
}
