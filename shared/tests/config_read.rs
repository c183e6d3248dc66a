//! Reading a config.yml back: TPA's topology checks, type and syntax errors with their place in
//! the file, and warnings where a hand-edited file leaves the M1 layout.

mod common;

use m1studio_shared::{Severity, config, configure};

/// The config.yml of a docker design with three cascaded replicas, on a network of its own (so
/// that the file gives addresses): kestrel (primary), quartz (replica), uplift (Barman, node 3),
/// then karma, quarry and unison (the cascaded replicas).
fn base() -> String {
    let (invocation, _) = common::parse(
        "m1 -a M1 --postgresql 15 --enable-repmgr --platform docker --num-cascaded-replicas 3 --network 10.44.0.0/16",
    );
    configure(&invocation.draft).0.unwrap().config_yml
}

/// Reads `text` and checks exactly the errors and warnings (`severity code path`) it gives.
fn check(text: &str, expected: &[&str]) {
    let (draft, diagnostics) = config::read(text);
    let found = common::summary(&diagnostics, &[Severity::Error, Severity::Warning]);
    let mut expected: Vec<String> = expected.iter().map(|e| e.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected, "for:\n{text}");
    let has_errors = expected.iter().any(|e| e.starts_with("error"));
    assert_eq!(
        draft.is_none(),
        has_errors,
        "a draft comes back exactly when there is no error"
    );
}

/// `base()` with one edit.
fn edited(from: &str, to: &str) -> String {
    let text = base();
    assert!(text.contains(from), "{from:?} not in the base config");
    text.replacen(from, to, 1)
}

#[test]
fn our_own_output_reads_back_clean() {
    check(&base(), &[]);
}

#[test]
fn synchronous_replication_is_written_for_each_manager_and_read_back() {
    for (line, written) in [
        (
            "m1 -a M1 --postgresql 15 --enable-repmgr --platform docker --synchronous-replication",
            "synchronous_standby_names: ANY 1 (\"kestrel\", \"quartz\", \"karma\")",
        ),
        (
            "m1 -a M1 --postgresql 15 --enable-patroni --platform docker --synchronous-replication",
            "synchronous_mode: true",
        ),
    ] {
        let (invocation, _) = common::parse(line);
        let text = configure(&invocation.draft).0.unwrap().config_yml;
        assert!(text.contains(written), "{written} is not in\n{text}");
        let (draft, diagnostics) = config::read(&text);
        assert!(
            diagnostics.iter().all(|d| d.severity == Severity::Info),
            "{diagnostics:?}"
        );
        assert!(draft.unwrap().synchronous, "{line}");
    }
    let (draft, _) = config::read(&base());
    assert!(!draft.unwrap().synchronous);
}

#[test]
fn exactly_one_primary() {
    check(
        &edited("  - replica\n  upstream: kestrel", "  - primary"),
        &["error config-primary-count instances"],
    );
    check(
        &edited("  - primary\n", "  - replica\n"),
        &["error config-primary-count instances"],
    );
}

#[test]
fn upstreams_name_existing_postgres_instances() {
    check(
        &edited("upstream: kestrel", "upstream: nowhere"),
        &["error config-upstream-unknown instances[1].upstream"],
    );
    check(
        &edited("upstream: kestrel", "upstream: uplift"),
        &["error config-upstream-unknown instances[1].upstream"],
    );
}

#[test]
fn upstreams_form_no_cycle() {
    let text = edited("  - primary\n", "  - primary\n  upstream: quartz\n");
    let (_, diagnostics) = config::read(&text);
    assert!(
        diagnostics.iter().any(
            |d| d.code.as_str() == "config-upstream-cycle" && d.path == "instances[0].upstream"
        ),
        "{diagnostics:?}"
    );
}

#[test]
fn backups_name_a_barman_instance() {
    check(
        &edited("backup: uplift", "backup: quartz"),
        &["error config-backup-not-barman instances[0].backup"],
    );
}

#[test]
fn witnesses_have_an_upstream() {
    let text = edited("  - barman\n", "  - barman\n  - witness\n");
    check(
        &text,
        &["error config-witness-no-upstream instances[2].upstream"],
    );
}

#[test]
fn names_and_node_numbers_are_unique() {
    let (_, diagnostics) = config::read(&edited("Name: quartz", "Name: kestrel"));
    assert!(
        diagnostics
            .iter()
            .any(|d| d.code.as_str() == "config-duplicate-name" && d.path == "instances[1].Name"),
        "{diagnostics:?}"
    );
    check(
        &edited("node: 2", "node: 1"),
        &["error config-duplicate-node instances[1].node"],
    );
}

#[test]
fn roles_and_locations_are_known() {
    check(
        &edited("  - barman\n", "  - backup-server\n"),
        &[
            "error config-role-unknown instances[2].role[0]",
            "error config-backup-not-barman instances[0].backup",
        ],
    );
    check(
        &edited("location: dr", "location: moon"),
        &["error config-location-unknown instances[2].location"],
    );
}

#[test]
fn syntax_types_and_missing_keys_are_reported_with_their_place() {
    let (_, diagnostics) = config::read("architecture: M1\ninstances: [\n");
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].code.as_str(), "config-syntax");
    assert!(
        diagnostics[0].message.contains("line"),
        "{}",
        diagnostics[0].message
    );
    check(
        "- just\n- a list\n",
        &["error config-wrong-type config.yml"],
    );
    check(
        &edited("cluster_tags: {}", "cluster_tags: [a]"),
        &["error config-wrong-type cluster_tags"],
    );
    check(
        &edited("node: 4", "node: four"),
        &["error config-wrong-type instances[3].node"],
    );
    check(
        &base().replace("architecture: M1\n", ""),
        &[
            "error config-missing-key architecture",
            "error architecture-missing architecture",
        ],
    );
    check(
        &edited("ip_address: 10.44.0.2", "ip_address: 10.44.0.999"),
        &["error config-wrong-type instances[0].ip_address"],
    );
}

#[test]
fn design_rules_apply_with_paths_in_the_file() {
    check(
        &edited("failover_manager: repmgr", "failover_manager: pacemaker"),
        &["error failover-manager-unknown cluster_vars.failover_manager"],
    );
    check(
        &edited("postgres_version: '15'", "postgres_version: 9"),
        &["error version-out-of-range cluster_vars.postgres_version"],
    );
    check(
        &edited("subnet: 10.44.0.0/16", "subnet: 10.44.0.0/30"),
        &["error network-too-small docker_networks[0].ipam_config[0].subnet"],
    );
    check(
        &edited("Name: quartz", "Name: Quartz_2").replace("upstream: quartz", "upstream: Quartz_2"),
        &["error hostname-invalid instances[1].Name"],
    );
}

#[test]
fn leaving_the_m1_layout_is_a_warning() {
    check(
        &edited("location: dr", "location: main"),
        &["warning placement-differs instances[2].location"],
    );
    check(
        &edited("upstream: quartz", "upstream: kestrel"),
        &["warning config-layout-differs instances[3]"],
    );
    let text = edited(
        "  - barman\n",
        "  - barman\n  - witness\n  upstream: kestrel\n",
    );
    check(
        &text,
        &[
            "warning config-layout-differs instances[2]",
            "warning config-layout-differs instances[2]",
        ],
    );
    check(
        &edited("  image: tpa/debian:12", "  image: tpa/fedora:40"),
        &["warning distribution-unsupported instance_defaults.image"],
    );
}

#[test]
fn hand_written_tpa_config_with_extra_keys_reads() {
    let text = "---\narchitecture: M1\ncluster_name: lab\ncluster_vars:\n  postgres_flavour: postgresql\n  postgres_version: 17\n  failover_manager: patroni\n  preferred_python_version: python3\nlocations:\n- Name: main\n- Name: dr\ninstance_defaults:\n  platform: bare\ninstances:\n- {node: 1, Name: one, location: main, role: primary, backup: three}\n- {node: 2, Name: two, location: main, role: [replica], upstream: one}\n- {node: 3, Name: three, location: dr, role: [barman]}\n- {node: 4, Name: four, location: main, role: [etcd]}\n- {node: 5, Name: five, location: main, role: [etcd]}\n- {node: 6, Name: six, location: main, role: [etcd]}\n";
    check(text, &[]);
    let draft = config::read(text).0.unwrap();
    assert_eq!(draft.num_cascaded_replicas.as_deref(), Some("0"));
    assert_eq!(draft.hostnames.as_ref().unwrap()[0], "one");
}

#[test]
fn the_addresses_of_existing_hosts_are_read_in_node_order() {
    let (invocation, _) = common::parse("m1 -a M1 --postgresql 15 --enable-repmgr --platform bare");
    let text = configure(&invocation.draft).0.unwrap().config_yml;
    assert_eq!(
        config::read(&text).0.unwrap().addresses,
        None,
        "configure gives none"
    );
    let text = text
        .replace(
            "- Name: kestrel\n",
            "- Name: kestrel\n  ip_address: 192.0.2.10\n",
        )
        .replace(
            "- Name: uplift\n",
            "- Name: uplift\n  ip_address: 2001:db8::2\n",
        );
    let draft = config::read(&text).0.unwrap();
    assert_eq!(
        draft.addresses.unwrap(),
        ["192.0.2.10", "", "2001:db8::2", ""],
        "a host without an address keeps its place"
    );
    // One that is not an address is named; two hosts on one address too.
    check(
        &text.replace("192.0.2.10", "not-an-address"),
        &["error config-wrong-type instances[0].ip_address"],
    );
    check(
        &text.replace("2001:db8::2", "192.0.2.10"),
        &["error address-duplicate instances[2].ip_address"],
    );
}

#[test]
fn a_file_nested_100000_deep_or_over_a_mebibyte_is_refused_at_once_with_the_place() {
    let deep = format!(
        "cluster_name: m1\narchitecture: M1\nx: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (draft, found) = m1studio_shared::config::read(&deep);
    assert!(draft.is_none());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].code.as_str(), "config-too-deep");
    assert!(
        found[0].message.contains("line 3, column 68"),
        "{}",
        found[0].message
    );
    // Block nesting stops at the parser's own limit, as quickly.
    let block = format!("cluster_name: m1\nx:\n{}a\n", "- ".repeat(100_000));
    let (_, found) = m1studio_shared::config::read(&block);
    assert_eq!(found[0].code, m1studio_shared::Code::ConfigSyntax);
    let large = format!("cluster_name: m1\n#{}\n", "x".repeat(1 << 20));
    let (_, found) = m1studio_shared::config::read(&large);
    assert_eq!(found[0].code.as_str(), "config-too-large");
    assert!(
        found[0].message.contains("1024 KiB"),
        "{}",
        found[0].message
    );
    // Brackets in quotes and comments are text, not nesting.
    let quoted = format!(
        "cluster_name: m1\na: '{}'\nb: \"{}\"\n# {}\n",
        "[".repeat(100),
        "{".repeat(100),
        "[".repeat(100)
    );
    let (_, found) = m1studio_shared::config::read(&quoted);
    assert!(
        found
            .iter()
            .all(|d| d.code != m1studio_shared::Code::ConfigTooDeep),
        "{found:?}"
    );
}
