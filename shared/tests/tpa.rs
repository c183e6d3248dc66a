//! TPA's own config.yml, both ways: every file `tpaexec configure --architecture M1` (v23.31)
//! wrote in `fixtures/tpa/` reads as a design with no error, its instances intact; and m1studio's
//! `configure` with the same options writes the same keys in the same order, and the same node
//! numbers for the same roles. The differences left are the random parts (host names, the vault's
//! name, AWS subnets) and the one the M1 document asks for: Barman in the second location.

mod common;

use m1studio_shared::{Code, Severity, config, configure};
use std::collections::BTreeMap;
use yaml_serde::Value;

/// Every TPA file, by name.
fn tpa_files() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tpa");
    #[allow(clippy::disallowed_methods)] // reads the recorded fixtures
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            #[allow(clippy::disallowed_methods)]
            let text = std::fs::read_to_string(&p).unwrap();
            (name, text)
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 33, "the 33 files of tpaexec configure");
    files
}

/// TPA's roles that m1studio reads but does not deploy.
const TPA_ONLY_ROLES: [&str; 2] = m1studio_shared::tpa::TPA_BARMAN_EXTRA_ROLES;

/// Each instance of a config.yml: node → (name, location, roles, upstream, backup).
type Layout = BTreeMap<u64, (String, String, Vec<String>, Option<String>, Option<String>)>;

fn layout(text: &str) -> Layout {
    let root: Value = yaml_serde::from_str(text).unwrap();
    let text_of = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    root["instances"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| {
            let roles = i["role"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .filter(|r| !TPA_ONLY_ROLES.contains(&r.as_str()))
                .collect();
            (
                i["node"].as_u64().unwrap(),
                (
                    text_of(i, "Name").unwrap(),
                    text_of(i, "location").unwrap(),
                    roles,
                    text_of(i, "upstream"),
                    text_of(i, "backup"),
                ),
            )
        })
        .collect()
}

/// The `configure` line TPA was given for the file called `name`
/// (`legacy-<platform>-<manager>[-haproxy]-c<N>`, or `…-pg10` for PostgreSQL 10 with one).
fn options_of(name: &str) -> String {
    let parts: Vec<&str> = name.split('-').collect();
    let (platform, manager) = (parts[1], parts[2]);
    let haproxy = parts.contains(&"haproxy");
    let last = parts[parts.len() - 1];
    let (version, cascaded) = match last.strip_prefix('c') {
        Some(n) => ("14", n),
        None => ("10", "1"),
    };
    format!(
        "{name} --architecture M1 --platform {platform} --postgresql {version} --failover-manager {manager}{} --num-cascaded-replicas {cascaded} --no-git",
        if haproxy { " --enable-haproxy" } else { "" }
    )
}

#[test]
fn every_file_tpa_writes_reads_as_a_design_with_its_instances_intact() {
    for (name, text) in tpa_files() {
        let (draft, diagnostics) = config::read(&text);
        let errors: Vec<_> = diagnostics.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        // The Barman node is in the first location, against the M1 document: said once.
        assert!(
            diagnostics
                .iter()
                .any(|d| d.code == Code::PlacementDiffers && d.path == "instances[2].location"),
            "{name}: {diagnostics:?}"
        );
        // TPA's extra roles are named, as warnings.
        assert_eq!(
            diagnostics
                .iter()
                .filter(|d| d.code == Code::ConfigRoleIgnored && d.severity == Severity::Warning)
                .count(),
            2,
            "{name}"
        );
        let draft = draft.unwrap();
        let (configured, problems) = configure(&draft);
        let configured = configured.unwrap_or_else(|| panic!("{name}: {problems:?}"));
        // The design's own instances are the file's: node, name, location, roles, upstream,
        // backup; and it writes them back the same way.
        let tpa = layout(&text);
        let ours: Layout = configured
            .topology
            .instances
            .iter()
            .map(|i| {
                let roles = i
                    .roles
                    .iter()
                    .map(|r| match (r.as_str(), name.contains("-efm-")) {
                        ("witness", true) => "efm-witness".to_string(),
                        (role, _) => role.to_string(),
                    })
                    .collect();
                (
                    u64::from(i.node),
                    (
                        i.name.clone(),
                        i.location.clone(),
                        roles,
                        i.upstream.clone(),
                        i.backup.clone(),
                    ),
                )
            })
            .collect();
        assert_eq!(ours, tpa, "{name}: the design read back");
        assert_eq!(
            layout(&configured.config_yml),
            tpa,
            "{name}: the file m1studio writes for it"
        );
        // The vault is kept.
        assert!(
            configured
                .config_yml
                .contains(&format!("vault_name: {}", draft.vault_name.unwrap())),
            "{name}"
        );
    }
}

/// Every key path of a YAML document in order (`instances[3].role`), each mapping's keys as
/// written.
fn key_paths(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Mapping(map) => {
            for (key, value) in map {
                let key = key.as_str().unwrap_or("?");
                let path = if at.is_empty() {
                    key.to_string()
                } else {
                    format!("{at}.{key}")
                };
                out.push(path.clone());
                key_paths(value, &path, out);
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                key_paths(item, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn configure_with_the_same_options_writes_tpas_keys_in_tpas_order_and_numbers_nodes_as_tpa() {
    for (name, text) in tpa_files() {
        let (invocation, notes) = common::parse(&options_of(&name));
        assert!(
            notes.iter().all(|n| n.code == Code::OptionIgnored),
            "{name}: {notes:?}"
        );
        let mut draft = invocation.draft;
        draft.vault_name = Some("8f4d20e7-034a-4b4c-9b0c-94a7b510587f".into());
        let ours = configure(&draft)
            .0
            .unwrap_or_else(|| panic!("{name}"))
            .config_yml;
        let (tpa_root, our_root): (Value, Value) = (
            yaml_serde::from_str(&text).unwrap(),
            yaml_serde::from_str(&ours).unwrap(),
        );
        let (mut tpa_keys, mut our_keys) = (Vec::new(), Vec::new());
        key_paths(&tpa_root, "", &mut tpa_keys);
        key_paths(&our_root, "", &mut our_keys);
        // The documented difference: with every node in its first location (EFM, no cascaded
        // replica), TPA writes one location, and on aws opens one subnet; M1 keeps Barman in the
        // second location, which has a subnet of its own.
        if tpa_root["locations"].as_sequence().unwrap().len() == 1 {
            our_keys
                .retain(|k| !k.starts_with("locations[1]") && !k.starts_with("cluster_rules[2]"));
        }
        assert_eq!(our_keys, tpa_keys, "{name}: keys and their order");
        // The same node numbers for the same roles; only Barman's location differs.
        let strip = |layout: Layout| -> BTreeMap<u64, Vec<String>> {
            layout
                .into_iter()
                .map(|(n, (_, _, roles, ..))| (n, roles))
                .collect()
        };
        assert_eq!(
            strip(layout(&ours)),
            strip(layout(&text)),
            "{name}: node numbers → roles"
        );
        // The text is laid out as TPA's: a blank line before each section after the first.
        let blank_before = |t: &str| -> Vec<String> {
            let lines: Vec<&str> = t.lines().collect();
            lines
                .windows(2)
                .filter(|w| w[0].is_empty())
                .map(|w| w[1].to_string())
                .collect()
        };
        assert_eq!(blank_before(&ours), blank_before(&text), "{name}: sections");
    }
}

#[test]
fn a_tpa_file_with_one_location_reads_with_the_second_added() {
    let text = tpa_files()
        .into_iter()
        .find(|(name, _)| name == "legacy-docker-efm-c0")
        .unwrap()
        .1;
    let (draft, diagnostics) = config::read(&text);
    let found = common::summary(&diagnostics, &[Severity::Warning]);
    assert!(
        found.contains(&"warning config-one-location locations".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"warning config-role-ignored instances[2].role[1]".to_string()),
        "{found:?}"
    );
    let draft = draft.unwrap();
    assert_eq!(
        draft.location_names,
        Some(vec!["main".to_string(), "dr".to_string()])
    );
    assert_eq!(
        draft.placement,
        Some(vec!["main".to_string(); 3]),
        "every node stays where TPA put it"
    );
}

#[test]
fn re_configuring_keeps_the_vault_and_a_fresh_file_has_none_to_keep() {
    for (name, text) in tpa_files() {
        let written = text
            .lines()
            .find_map(|l| l.strip_prefix("vault_name: "))
            .unwrap();
        assert_eq!(
            config::vault_name_of(&text).as_deref(),
            Some(written),
            "{name}"
        );
    }
    assert_eq!(config::vault_name_of("vault_name: nope\n"), None);
    assert_eq!(config::vault_name_of("[[[\n"), None);
}

#[test]
fn tpas_own_placement_rule_gives_every_node_of_every_file_its_location() {
    use m1studio_shared::Kind;
    use m1studio_shared::tpa::tpa_location;
    for (name, text) in tpa_files() {
        let layout = layout(&text);
        let cascaded = layout
            .values()
            .filter(|(_, _, roles, ..)| roles.iter().any(|r| r == "replica"))
            .count()
            - 1;
        let locations = ["main", "dr"];
        for (node, (_, location, roles, ..)) in &layout {
            let kind = match roles[0].as_str() {
                "primary" => Kind::Primary,
                "replica" if *node == 2 => Kind::Replica,
                "replica" => Kind::CascadedReplica,
                "barman" => Kind::Barman,
                "etcd" => Kind::Etcd,
                "haproxy" => Kind::Haproxy,
                other => panic!("{name}: role {other}"),
            };
            let node = u32::try_from(*node).unwrap();
            assert_eq!(
                locations[tpa_location(kind, node)],
                location,
                "{name}: node {node} ({kind:?}) with {cascaded} cascaded"
            );
        }
    }
}

#[test]
fn the_tpaexec_tab_says_where_tpa_would_differ() {
    use m1studio_shared::tpa::tpa_differences;
    let (invocation, _) = common::parse(
        "m1 -a M1 --postgresql 15 --enable-patroni --enable-haproxy --platform docker",
    );
    let configured = configure(&invocation.draft).0.unwrap();
    let said = tpa_differences(&configured.design, &configured.topology);
    assert_eq!(
        said,
        [
            "TPA puts uplift (barman, node 3) in 'main'; this design has it in 'dr': the M1 document keeps Barman with the cascaded replicas, so that the backups survive the loss of the first location",
            "TPA puts quarry (etcd, node 5) in 'dr'; this design has it in 'main': the M1 layout keeps etcd's quorum beside the primary, so that a lost link to the second location never stops failover",
            "TPA puts kingdom (etcd, node 7) in 'dr'; this design has it in 'main': the M1 layout keeps etcd's quorum beside the primary, so that a lost link to the second location never stops failover",
            "TPA puts upland (haproxy, node 9) in 'dr'; this design has it in 'main': the M1 layout keeps HAProxy beside the primary and its clients",
            "TPA also gives uplift the roles log-server and monitoring-server, which m1studio does not deploy",
            "TPA draws its host names at random from its word list; give --hostnames-from to keep these",
        ]
    );
    // A design read from TPA's own file keeps TPA's placement: only the roles differ.
    let text = include_str!("fixtures/tpa/legacy-docker-patroni-haproxy-c1.yml");
    let draft = config::read(text).0.unwrap();
    let configured = configure(&draft).0.unwrap();
    let said = tpa_differences(&configured.design, &configured.topology);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("log-server"), "{said:?}");
}

#[test]
fn a_file_an_earlier_m1studio_wrote_keeps_its_numbering_and_every_host_its_role() {
    use m1studio_shared::spec::Numbering;
    // Barman was node 5, after two cascaded replicas; the file gives addresses too.
    let text = include_str!("fixtures/m1studio-before-tpa-numbering.yml");
    let (draft, diagnostics) = config::read(text);
    let found = common::summary(&diagnostics, &[Severity::Error, Severity::Warning]);
    assert_eq!(
        found,
        ["warning numbering-barman-last instances"],
        "{diagnostics:?}"
    );
    assert!(
        diagnostics
            .iter()
            .any(|d| d.message.contains("numbers Barman 5 after"))
    );
    let draft = draft.unwrap();
    assert_eq!(draft.numbering, Numbering::BarmanLast);
    let configured = configure(&draft).0.unwrap();
    assert_eq!(
        layout(&configured.config_yml),
        layout(text),
        "the same node numbers, names, roles, locations, upstreams and backups"
    );
    // The addresses too (on the default network the file need not write them; the containers
    // keep them).
    let root: Value = yaml_serde::from_str(text).unwrap();
    let mut checked = 0;
    for instance in root["instances"].as_sequence().unwrap() {
        let name = instance["Name"].as_str().unwrap();
        let address = instance["ip_address"].as_str().unwrap();
        let ours = configured.topology.get(name).unwrap().ip_address.unwrap();
        assert_eq!(ours.to_string(), address, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 5);
    // Configured again, as TPA numbers them.
    let renumbered = m1studio_shared::Draft {
        numbering: Numbering::Tpa,
        hostnames: None,
        ..draft
    };
    let configured = configure(&renumbered).0.unwrap();
    assert_eq!(
        configured.topology.instances[2].kind,
        m1studio_shared::Kind::Barman
    );
}
