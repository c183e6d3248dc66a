//! Every rule of the M1 architecture, one row each: a command line, and exactly the errors and
//! warnings (or explanations) it must produce.

mod common;

use common::{diagnostics, summary};
use m1studio_shared::{Code, Draft, Severity};

const BASE: &str = "m1 -a M1 --postgresql 15 --failover-manager repmgr --platform docker";

/// Checks that `line` gives exactly the `expected` errors and warnings (`severity code path`).
fn check(line: &str, expected: &[&str]) {
    let found = summary(&diagnostics(line), &[Severity::Error, Severity::Warning]);
    let mut expected: Vec<String> = expected.iter().map(|e| e.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected, "for: configure {line}");
}

/// Checks that `line` gives exactly the `expected` explanations (`info code path`).
fn check_notes(line: &str, expected: &[&str]) {
    let found = summary(&diagnostics(line), &[Severity::Info]);
    let mut expected: Vec<String> = expected.iter().map(|e| e.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected, "for: configure {line}");
}

fn message(line: &str, code: Code) -> String {
    diagnostics(line)
        .into_iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| panic!("no {code} for {line}"))
        .message
}

#[test]
fn the_starter_design_is_clean() {
    check(BASE, &[]);
}

#[test]
fn architecture_is_required_and_must_be_m1() {
    check(
        "m1 --postgresql 15 --enable-repmgr --platform docker",
        &["error architecture-missing architecture"],
    );
    check(
        "m1 -a M2 --postgresql 15 --enable-repmgr --platform docker",
        &["error architecture-unsupported architecture"],
    );
    assert!(
        message(
            "m1 -a BDR --postgresql 15 --enable-repmgr",
            Code::ArchitectureUnsupported
        )
        .contains("M1 is the only supported architecture")
    );
}

#[test]
fn cluster_name_is_a_dns_label() {
    check(
        "clusters/My_Cluster -a M1 --postgresql 15 --enable-repmgr --platform docker",
        &["error cluster-name-invalid cluster_name"],
    );
    check(
        "~/clusters/m1-prod/ -a M1 --postgresql 15 --enable-repmgr --platform docker",
        &[],
    );
    assert!(message("My_Cluster -a M1", Code::ClusterNameInvalid).contains("'my-cluster'"));
}

#[test]
fn flavour_is_required_once_and_known() {
    check(
        "m1 -a M1 --enable-repmgr --platform docker",
        &[
            "error flavour-missing postgres_flavour",
            "error version-missing postgres_version",
        ],
    );
    check(
        "m1 -a M1 --postgresql 15 --edb-postgres-extended 15 --enable-repmgr --platform docker",
        &["error flavour-conflict postgres_flavour"],
    );
    check(
        "m1 -a M1 --postgres-flavour mysql --postgres-version 15 --enable-repmgr --platform docker",
        &["error flavour-unknown postgres_flavour"],
    );
    check(
        "m1 -a M1 --postgres-flavour postgresql --postgres-version 15 --enable-repmgr --platform docker",
        &[],
    );
    check(
        "m1 -a M1 --pgextended 15 --enable-repmgr --platform docker",
        &[],
    );
    check(
        "m1 -a M1 --edbpge 16 --enable-repmgr --platform docker",
        &[],
    );
}

#[test]
fn version_is_required_and_in_range() {
    check(
        "m1 -a M1 --postgres-flavour postgresql --enable-repmgr --platform docker",
        &["error version-missing postgres_version"],
    );
    check(
        "m1 -a M1 --postgresql fifteen --enable-repmgr --platform docker",
        &["error version-invalid postgres_version"],
    );
    check(
        "m1 -a M1 --postgresql 9 --enable-repmgr --platform docker",
        &["error version-out-of-range postgres_version"],
    );
    // TPA v23.31 configures 10 too: accepted, past its end of life.
    check(
        "m1 -a M1 --postgresql 10 --enable-repmgr --platform docker",
        &["warning version-end-of-life postgres_version"],
    );
    check(
        "m1 -a M1 --postgresql 19 --enable-repmgr --platform docker",
        &["error version-out-of-range postgres_version"],
    );
    check(
        "m1 -a M1 --postgresql 18 --enable-repmgr --platform docker",
        &[],
    );
    check(
        "m1 -a M1 --postgresql 11 --enable-repmgr --platform docker",
        &["warning version-end-of-life postgres_version"],
    );
    check(
        "m1 -a M1 --postgresql 14 --enable-repmgr --platform docker",
        &["warning version-end-of-life postgres_version"],
    );
    check(
        "m1 -a M1 --postgresql 15 --postgres-version 16 --enable-repmgr --platform docker",
        &["error option-repeated postgres_version"],
    );
}

#[test]
fn failover_manager_is_required_once_and_known() {
    check(
        "m1 -a M1 --postgresql 15 --platform docker",
        &["error failover-manager-missing failover_manager"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-efm --enable-repmgr --platform docker",
        &["error failover-manager-conflict failover_manager"],
    );
    check(
        "m1 -a M1 --postgresql 15 --failover-manager patroni --enable-repmgr --platform docker",
        &["error failover-manager-conflict failover_manager"],
    );
    check(
        "m1 -a M1 --postgresql 15 --failover-manager pacemaker --platform docker",
        &["error failover-manager-unknown failover_manager"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-patroni --platform docker",
        &[],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-efm --platform docker",
        &[],
    );
    assert!(
        message(
            "m1 -a M1 --postgresql 15 --enable-efm --enable-repmgr",
            Code::FailoverManagerConflict
        )
        .contains("--enable-repmgr conflicts with --enable-efm")
    );
}

#[test]
fn haproxy_needs_patroni() {
    check(
        &format!("{BASE} --enable-haproxy"),
        &["error haproxy-needs-patroni enable_haproxy"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-patroni --enable-haproxy --platform docker",
        &[],
    );
    assert_eq!(
        message(
            &format!("{BASE} --enable-haproxy"),
            Code::HaproxyNeedsPatroni
        ),
        "HAProxy can only be enabled together with Patroni (--failover-manager patroni)"
    );
}

#[test]
fn dcs_needs_patroni_and_is_etcd() {
    check(
        &format!("{BASE} --patroni-dcs etcd"),
        &["error dcs-needs-patroni patroni_dcs"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-patroni --patroni-dcs consul --platform docker",
        &["error dcs-unsupported patroni_dcs"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-patroni --patroni-dcs etcd --platform docker",
        &[],
    );
}

#[test]
fn redwood_is_for_epas_and_required_there() {
    check(
        "m1 -a M1 --epas 16 --enable-efm --platform docker",
        &["error redwood-missing redwood"],
    );
    check(
        "m1 -a M1 --epas 16 --enable-efm --redwood --platform docker",
        &[],
    );
    check(
        "m1 -a M1 --edb-postgres-advanced 16 --enable-efm --no-redwood --platform docker",
        &[],
    );
    check(
        &format!("{BASE} --redwood"),
        &["error redwood-needs-epas redwood"],
    );
    check(
        &format!("{BASE} --no-redwood"),
        &["error redwood-needs-epas redwood"],
    );
    check(
        "m1 -a M1 --epas 16 --enable-efm --redwood --no-redwood --platform docker",
        &["error redwood-conflict redwood"],
    );
}

#[test]
fn repmgr_refuses_old_epas() {
    check(
        "m1 -a M1 --epas 13 --enable-repmgr --redwood --platform docker",
        &[
            "error repmgr-epas-too-old failover_manager",
            "warning version-end-of-life postgres_version",
        ],
    );
    check(
        "m1 -a M1 --epas 14 --enable-repmgr --redwood --platform docker",
        &["warning version-end-of-life postgres_version"],
    );
    check(
        "m1 -a M1 --epas 13 --enable-efm --redwood --platform docker",
        &["warning version-end-of-life postgres_version"],
    );
}

#[test]
fn platform_options_apply_where_they_belong() {
    check("m1 -a M1 --postgresql 15 --enable-repmgr", &[]);
    check(
        "m1 -a M1 --postgresql 15 --enable-repmgr --platform vmware",
        &["error platform-unknown platform"],
    );
    check(
        &format!("{BASE} --region eu-west-2"),
        &["error aws-only-option region"],
    );
    check(
        &format!("{BASE} --instance-type t3.large"),
        &["error aws-only-option instance_type"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-repmgr --platform bare --region us-east-1",
        &["error aws-only-option region"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-repmgr --region eu-westt-1",
        &["error region-unknown region"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-repmgr --region us-east-2 --instance-type m6i.large",
        &[],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-repmgr --instance-type large",
        &["error instance-type-invalid instance_type"],
    );
    assert!(
        message(
            "m1 -a M1 --postgresql 15 --enable-repmgr --region eu-wset-1",
            Code::RegionUnknown
        )
        .contains("did you mean eu-west-1?")
    );
}

#[test]
fn distribution_must_be_one_the_platform_provides() {
    check(
        "m1 -a M1 --postgresql 15 --enable-repmgr --distribution Rocky --os-version 9",
        &[],
    );
    check("m1 -a M1 --postgresql 15 --enable-repmgr --os Ubuntu", &[]);
    check(
        &format!("{BASE} --distribution Rocky"),
        &["error distribution-unsupported distribution"],
    );
    check(
        &format!("{BASE} --distribution Gentoo"),
        &["error distribution-unsupported distribution"],
    );
    check(
        &format!("{BASE} --os-version 10"),
        &["error os-version-unsupported os_version"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-repmgr --platform bare --distribution RedHat --os-version 7",
        &["error os-version-unsupported os_version"],
    );
}

#[test]
fn cascaded_replicas_are_a_bounded_count() {
    check(&format!("{BASE} --num-cascaded-replicas 0"), &[]);
    check(&format!("{BASE} --num-cascaded-replicas 32"), &[]);
    check(
        &format!("{BASE} --num-cascaded-replicas 33"),
        &["error cascaded-replicas-out-of-range num_cascaded_replicas"],
    );
    check(
        &format!("{BASE} --num-cascaded-replicas -1"),
        &["error cascaded-replicas-invalid num_cascaded_replicas"],
    );
    check(
        &format!("{BASE} --num-cascaded-replicas two"),
        &["error cascaded-replicas-invalid num_cascaded_replicas"],
    );
    assert!(
        message(
            &format!("{BASE} --num-cascaded-replicas 40"),
            Code::CascadedReplicasOutOfRange
        )
        .contains("limit of 32")
    );
}

#[test]
fn location_names_are_two_valid_distinct_names() {
    check(&format!("{BASE} --location-names london paris"), &[]);
    check(
        &format!("{BASE} --location-names london"),
        &["error location-names-count location_names"],
    );
    check(
        &format!("{BASE} --location-names a b c"),
        &["error location-names-count location_names"],
    );
    check(
        &format!("{BASE} --location-names main Main"),
        &["error location-name-duplicate location_names[1]"],
    );
    check(
        &format!("{BASE} --location-names main 'd r'"),
        &["error location-name-invalid location_names[1]"],
    );
    check(
        &format!("{BASE} --location-names 1st dr"),
        &["error location-name-invalid location_names[0]"],
    );
}

#[test]
fn owner_and_network_are_checked() {
    check(&format!("{BASE} --owner 'Jane Doe'"), &[]);
    check(
        &format!("{BASE} --owner ''"),
        &["error owner-invalid owner"],
    );
    check(&format!("{BASE} --network 192.168.10.0/24"), &[]);
    check(
        &format!("{BASE} --network 10.33.0.0/33"),
        &["error network-invalid network"],
    );
    check(
        &format!("{BASE} --network 10.33.1.5/16"),
        &["error network-invalid network"],
    );
    check(
        &format!("{BASE} --network 8.8.8.0/24"),
        &["warning network-not-private network"],
    );
    check(&format!("{BASE} --network 10.0.0.0/29"), &[]);
    check(
        &format!("{BASE} --network 10.0.0.0/29 --num-cascaded-replicas 3"),
        &["error network-too-small network"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-repmgr --network 10.0.0.0/27 --num-cascaded-replicas 12",
        &["error network-too-small network"],
    );
    check(
        "m1 -a M1 --postgresql 15 --enable-repmgr --platform bare --network 10.0.0.0/24",
        &["error network-not-on-bare network"],
    );
}

#[test]
fn hostnames_cover_every_instance_once() {
    check(&format!("{BASE} --hostnames-from four.txt"), &[]);
    check(
        &format!("{BASE} --hostnames-from four.txt --num-cascaded-replicas 2"),
        &["error hostnames-too-few hostnames"],
    );
    check(
        &format!("{BASE} --hostnames-from bad.txt"),
        &[
            "error hostname-invalid hostnames[1]",
            "error hostname-duplicate hostnames[2]",
        ],
    );
    check(
        &format!("{BASE} --hostnames-from missing.txt"),
        &["error hostnames-file-unreadable hostnames"],
    );
    check_notes(
        &format!("{BASE} --hostnames-from eight.txt"),
        &[
            "info async-data-loss failover_manager",
            "info hostnames-extra hostnames",
        ],
    );
}

#[test]
fn existing_hosts_addresses_come_with_their_names() {
    let bare = "m1 -a M1 --postgresql 15 --failover-manager repmgr --platform bare";
    check(&format!("{bare} --hostnames-from hosts.txt"), &[]);
    check(
        &format!("{bare} --hostnames-from badhosts.txt"),
        &[
            "error address-invalid addresses[1]",
            "error address-duplicate addresses[2]",
        ],
    );
    // Other platforms give their instances addresses of their own: the file's are ignored.
    check(
        &format!("{BASE} --hostnames-from hosts.txt"),
        &["warning addresses-not-on-platform addresses[0]"],
    );
    let (invocation, _) = common::parse(&format!("{bare} --hostnames-from hosts.txt"));
    let configured = m1studio_shared::configure(&invocation.draft)
        .0
        .expect("a valid design");
    let placed: Vec<String> = configured
        .topology
        .instances
        .iter()
        .map(|i| format!("{} {}", i.name, i.ip_address.unwrap()))
        .collect();
    assert_eq!(
        placed,
        [
            "alpha 192.0.2.10",
            "bravo 192.0.2.11",
            "charlie 2001:db8::12",
            "delta 192.0.2.13"
        ]
    );
    // config.yml carries them, reads back to the same draft, and renders the same again.
    assert!(
        configured
            .config_yml
            .contains("  ip_address: 2001:db8::12\n")
    );
    let (read, diagnostics) = m1studio_shared::config::read(&configured.config_yml);
    assert!(
        diagnostics.iter().all(|d| d.severity == Severity::Info),
        "{diagnostics:?}"
    );
    let read = read.expect("the file reads back");
    assert_eq!(read.addresses, invocation.draft.addresses);
    assert_eq!(
        m1studio_shared::configure(&read).0.unwrap().config_yml,
        configured.config_yml
    );
    // The equivalent command line's hostnames file gives them back.
    let file = m1studio_shared::cmdline::hostnames_file(&invocation.draft).unwrap();
    assert_eq!(
        file,
        "alpha 192.0.2.10\nbravo 192.0.2.11\ncharlie 2001:db8::12\ndelta 192.0.2.13\n"
    );
}

#[test]
fn unknown_and_incomplete_options_are_named() {
    check(
        &format!("{BASE} --num-cascade-replicas 2"),
        &["error option-unknown options"],
    );
    check(
        &format!("{BASE} --platform"),
        &["error option-value-missing options"],
    );
    check(
        &format!("{BASE} --enable-haproxy=yes"),
        &["error option-unknown options"],
    );
    check(
        &format!("{BASE} --platform aws"),
        &["error option-repeated platform"],
    );
    check(
        &format!("{BASE} extra"),
        &["error argument-unexpected cluster_dir"],
    );
    check(
        "-a M1 --postgresql 15 --enable-repmgr --platform docker",
        &[
            "error cluster-dir-missing cluster_dir",
            "error cluster-name-invalid cluster_name",
        ],
    );
    assert!(
        message(
            &format!("{BASE} --num-cascade-replicas 2"),
            Code::OptionUnknown
        )
        .contains("did you mean --num-cascaded-replicas?")
    );
    assert!(
        message(&format!("{BASE} --platform"), Code::OptionValueMissing)
            .contains("--platform needs a value (PLATFORM)")
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = diagnostics(
        "My_Cluster -a M2 --postgresql 99 --enable-haproxy --platform docker --region x --num-cascaded-replicas 99 --network nope",
    );
    let errors: Vec<Code> = found
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.code)
        .collect();
    for code in [
        Code::ArchitectureUnsupported,
        Code::ClusterNameInvalid,
        Code::VersionOutOfRange,
        Code::FailoverManagerMissing,
        Code::HaproxyNeedsPatroni,
        Code::AwsOnlyOption,
        Code::CascadedReplicasOutOfRange,
        Code::NetworkInvalid,
    ] {
        assert!(errors.contains(&code), "{code} missing from {errors:?}");
    }
}

#[test]
fn synchronous_replication_explains_its_trade_off_for_each_manager() {
    check_notes(
        &format!("{BASE} --synchronous-replication"),
        &["info synchronous-trade-off synchronous"],
    );
    assert!(
        message(
            &format!("{BASE} --synchronous-replication"),
            Code::SynchronousTradeOff
        )
        .contains("commits wait")
    );
    let patroni =
        "m1 -a M1 --postgresql 15 --enable-patroni --platform docker --synchronous-replication";
    let patroni = message(patroni, Code::SynchronousTradeOff);
    assert!(patroni.contains("Patroni turns it off"), "{patroni}");
    assert!(patroni.contains("/sync key) may be promoted"), "{patroni}");
    assert!(message(BASE, Code::AsyncDataLoss).contains("--synchronous-replication"));
}

#[test]
fn witness_rule_is_explained_when_it_applies() {
    let async_note = "info async-data-loss failover_manager";
    let witness = "info witness-on-barman num_cascaded_replicas";
    check_notes(BASE, &[async_note]);
    check_notes(
        &format!("{BASE} --num-cascaded-replicas 0"),
        &[async_note, witness],
    );
    check_notes(
        &format!("{BASE} --num-cascaded-replicas 2"),
        &[async_note, witness],
    );
    check_notes(
        "m1 -a M1 --postgresql 15 --enable-efm --platform docker --num-cascaded-replicas 0",
        &[
            async_note,
            witness,
            "info edb-token-needed failover_manager",
        ],
    );
}

#[test]
fn patroni_explains_the_etcd_quorum_instead_of_a_witness() {
    let line = "m1 -a M1 --postgresql 15 --enable-patroni --platform docker --num-cascaded-replicas 0 --location-names east west";
    check_notes(
        line,
        &[
            "info async-data-loss failover_manager",
            "info etcd-quorum failover_manager",
        ],
    );
    assert!(
        message(line, Code::EtcdQuorum).contains("losing location 'east' stops automatic failover")
    );
}

#[test]
fn edb_software_says_it_needs_a_token() {
    let line = "m1 -a M1 --epas 16 --redwood --enable-efm --platform docker";
    check_notes(
        line,
        &[
            "info async-data-loss failover_manager",
            "info edb-token-needed postgres_flavour",
        ],
    );
    assert!(message(line, Code::EdbTokenNeeded).contains("EDB_SUBSCRIPTION_TOKEN"));
}

#[test]
fn a_bare_design_deploys_only_where_every_host_has_an_address() {
    let (configured, _) = m1studio_shared::configure(&Draft {
        platform: Some("bare".into()),
        ..Draft::starter()
    });
    let configured = configured.expect("a bare design without addresses is a valid design");
    let missing = m1studio_shared::api::bare_hosts(&configured.topology).unwrap_err();
    let paths: Vec<&str> = missing.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        (0..configured.topology.instances.len())
            .map(|i| format!("instances[{i}].ip_address"))
            .collect::<Vec<_>>()
    );
    assert!(
        missing
            .iter()
            .all(|d| d.code == Code::DeployUnsupported && d.is_error())
    );
    // A server without SSH access says how to give it; one with it accepts the design.
    let refusal = m1studio_shared::api::server_refusal(&configured.design, false).unwrap();
    assert_eq!(
        (refusal.path.as_str(), refusal.code),
        ("platform", Code::DeployUnsupported)
    );
    assert!(refusal.message.contains("--ssh-key"));
    assert_eq!(
        m1studio_shared::api::server_refusal(&configured.design, true),
        None
    );
}

#[test]
fn an_attendee_s_name_is_one_a_room_can_read() {
    use m1studio_shared::api::name_problem;
    for good in [
        "Ada",
        "  Grace Hopper ",
        "Zoë O'Neil-Smith",
        &"x".repeat(40),
    ] {
        assert_eq!(name_problem(good), None, "{good}");
    }
    for bad in ["", "   ", &"x".repeat(41), "tab\there", &"é".repeat(200)] {
        let d = name_problem(bad).expect(bad);
        assert_eq!(
            (d.path.as_str(), d.code.as_str()),
            ("name", "name-invalid"),
            "{bad}"
        );
    }
}

#[test]
fn a_network_another_cluster_uses_is_named_with_it() {
    let mine: ipnet::Ipv4Net = "10.33.0.0/16".parse().unwrap();
    let theirs: ipnet::Ipv4Net = "10.33.4.0/24".parse().unwrap();
    let d = m1studio_shared::api::network_taken(mine, "lab", theirs);
    assert_eq!(
        (d.path.as_str(), d.code.as_str()),
        ("network", "network-taken")
    );
    assert!(
        d.is_error() && d.message.contains("cluster lab") && d.message.contains("10.33.4.0/24")
    );
    let full = m1studio_shared::api::pool_full("10.9.0.0/23".parse().unwrap());
    assert_eq!(full.code, Code::NetworkTaken);
    assert!(full.message.contains("--address-pool"));
}

#[test]
#[allow(clippy::disallowed_methods)] // reads the test files themselves
fn every_code_is_produced_by_some_row_here_or_by_the_link_and_config_tests() {
    // A new code without a rule test shows up here first.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rules.rs"))
        .unwrap()
        + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/link.rs")).unwrap()
        + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/config_read.rs"))
            .unwrap()
        + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmdline.rs"))
            .unwrap()
        + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/plan.rs")).unwrap()
        + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tpa.rs")).unwrap()
        + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/drill.rs")).unwrap()
        + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenario.rs"))
            .unwrap()
        // The hosts' own checks run over SSH, in the deployment test on prepared hosts.
        + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/tests/bare.rs"))
            .unwrap();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !text.contains(&format!(" {c} ")) && !text.contains(&format!("\"{c}\"")))
        .collect();
    assert!(missing.is_empty(), "codes without a test: {missing:?}");
}

#[test]
fn a_list_of_150000_host_names_is_checked_in_one_pass_with_twenty_messages_of_each_kind() {
    let mut names: Vec<String> = (0..150_000).map(|i| format!("h{i}")).collect();
    names.extend((0..5_000).map(|i| format!("BAD_{i}")));
    names.extend((0..3).map(|i| format!("h{i}")));
    let draft = Draft {
        hostnames: Some(names),
        ..Draft::starter()
    };
    let (design, found) = m1studio_shared::validate(&draft);
    assert!(design.is_none());
    let of = |code: Code| found.iter().filter(|d| d.code == code).collect::<Vec<_>>();
    let invalid = of(Code::HostnameInvalid);
    assert_eq!(
        invalid.len(),
        m1studio_shared::diag::SAME_KIND_SHOWN + 1,
        "twenty, then a count"
    );
    let count = invalid.last().unwrap();
    assert!(count.message.contains("and 4980 more"), "{}", count.message);
    assert_eq!(
        count.path, "hostnames[150020]",
        "where the ones left out begin"
    );
    let duplicates = of(Code::HostnameDuplicate);
    assert_eq!(duplicates.len(), 3, "every repeated name, each once");
    assert_eq!(duplicates[0].path, "hostnames[155000]");
}

#[test]
fn tpa_options_that_change_the_file_are_honoured_and_checked() {
    const AWS: &str = "m1 -a M1 --postgresql 15 --enable-repmgr";
    check(&format!("{AWS} --keyring-backend legacy"), &[]);
    check(
        &format!("{AWS} --keyring-backend vault"),
        &["error keyring-backend-unknown keyring_backend"],
    );
    check(
        &format!("{AWS} --root-volume-size 40 --postgres-volume-size 100 --barman-volume-size 500"),
        &[],
    );
    check(
        &format!("{AWS} --postgres-volume-size big --barman-volume-size 0"),
        &[
            "error volume-size-invalid volume_sizes.postgres",
            "error volume-size-invalid volume_sizes.barman",
        ],
    );
    check(
        &format!("{BASE} --barman-volume-size 64"),
        &["error aws-only-option volume_sizes.barman"],
    );
    check(&format!("{AWS} --use-volatile-subscriptions"), &[]);
    check(&format!("{AWS} --regions us-east-1"), &[]);
    check(
        &format!("{AWS} --regions us-east-1 us-west-2"),
        &["error option-unsupported region"],
    );
}

#[test]
fn tpa_options_that_change_nothing_get_a_note_and_the_others_are_refused_with_the_reason() {
    let line = format!("{BASE} --no-git -v --no-shuffle-subnets --hostnames-sorted-by word");
    check(&line, &[]);
    let notes: Vec<_> = diagnostics(&line)
        .into_iter()
        .filter(|d| d.code.as_str() == "option-ignored")
        .collect();
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert!(
        notes[0].message.starts_with("--no-git is tpaexec's"),
        "{}",
        notes[0].message
    );
    check(
        &format!("{BASE} --enable-pem --extra-packages vim htop --os-image tpa/rocky:8"),
        &[
            "error option-unsupported options",
            "error option-unsupported options",
            "error option-unsupported options",
        ],
    );
    let pem = message(&format!("{BASE} --enable-pem"), Code::OptionUnsupported);
    assert!(pem.contains("does not deploy a PEM server"), "{pem}");
    // The values of a refused option are its own, not a second cluster directory.
    check(
        "m1 -a M1 --epas 15 --no-redwood-compat --enable-repmgr --platform docker",
        &[],
    );
    // Every option of TPA's help is either m1studio's own or known as TPA's.
    let help = include_str!("fixtures/tpa-configure-help.txt");
    for word in help.split_whitespace() {
        let name = word.trim_end_matches(',');
        if name.starts_with("--") && name.len() > 2 {
            let name = name.split('=').next().unwrap_or(name);
            assert!(
                m1studio_shared::cmdline::find_option(name).is_some()
                    || m1studio_shared::cmdline::find_tpa_option(name).is_some(),
                "{name} from tpaexec's help is unknown"
            );
        }
    }
}

#[test]
fn a_placement_from_a_config_yml_moves_nodes_with_a_warning_each() {
    let draft = |placement: &[&str]| Draft {
        placement: Some(placement.iter().map(|p| p.to_string()).collect()),
        ..Draft::starter()
    };
    // The starter: primary, replica, Barman, one cascaded replica.
    let (design, found) = m1studio_shared::validate(&draft(&["main", "main", "main", "dr"]));
    let found = summary(&found, &[Severity::Error, Severity::Warning]);
    assert_eq!(found, ["warning placement-differs placement[2]"]);
    let design = design.unwrap();
    assert_eq!(design.placement(), Some(&[0, 0, 0, 1][..]));
    let (design, found) = m1studio_shared::validate(&draft(&["main", "main", "dr", "dr"]));
    assert!(summary(&found, &[Severity::Error, Severity::Warning]).is_empty());
    assert_eq!(
        design.unwrap().placement(),
        None,
        "the M1 layout is no placement"
    );
    let (_, found) = m1studio_shared::validate(&draft(&["main", "moon", "dr", "dr"]));
    assert_eq!(
        summary(&found, &[Severity::Error, Severity::Warning]),
        ["error placement-invalid placement[1]"]
    );
    let (_, found) = m1studio_shared::validate(&draft(&["main", "main"]));
    assert_eq!(
        summary(&found, &[Severity::Error, Severity::Warning]),
        ["error placement-invalid placement"]
    );
}

#[test]
fn a_vault_name_is_a_uuid() {
    let draft = |vault: &str| Draft {
        vault_name: Some(vault.to_string()),
        ..Draft::starter()
    };
    let (design, _) = m1studio_shared::validate(&draft("8F4D20E7-034A-4B4C-9B0C-94A7B510587F"));
    assert_eq!(
        design.unwrap().vault_name(),
        Some("8f4d20e7-034a-4b4c-9b0c-94a7b510587f")
    );
    let (_, found) = m1studio_shared::validate(&draft("vault"));
    assert_eq!(
        summary(&found, &[Severity::Error, Severity::Warning]),
        ["error vault-name-invalid vault_name"]
    );
}

#[test]
fn each_location_s_network_holds_the_nodes_placed_there() {
    // 18 nodes: 7 in the first location and 11 in the second fit a /27 in two /28s; all 18 in
    // the first do not.
    let draft = |placement: Option<Vec<String>>| Draft {
        platform: Some("aws".into()),
        failover_manager: Some("patroni".into()),
        enable_haproxy: true,
        num_cascaded_replicas: Some("10".into()),
        network: Some("10.0.0.0/27".into()),
        placement,
        ..Draft::starter()
    };
    let (design, found) = m1studio_shared::validate(&draft(None));
    assert!(design.is_some(), "{found:?}");
    let (design, found) = m1studio_shared::validate(&draft(Some(vec!["main".into(); 18])));
    assert!(design.is_none());
    assert!(
        summary(&found, &[Severity::Error])
            .contains(&"error network-too-small network".to_string()),
        "{found:?}"
    );
}
