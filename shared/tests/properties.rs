//! Properties over generated designs: validation never panics, every valid design renders and
//! reads back to the same file, and links and command lines round-trip.

use m1studio_shared::cmdline::{Program, command_line, hostnames_file, parse_command_line};
use m1studio_shared::{Draft, config, configure, link, validate};
use proptest::option;
use proptest::prelude::*;

/// Values that are right, near misses, and nonsense.
fn text(good: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    option::of(prop_oneof![
        4 => proptest::sample::select(good).prop_map(str::to_string),
        1 => "[a-zA-Z0-9 ./_-]{0,12}",
    ])
}

fn drafts() -> impl Strategy<Value = Draft> {
    (
        (
            prop_oneof![
                Just("m1".to_string()),
                "[a-z][a-z0-9-]{0,10}",
                "[ -~]{0,12}"
            ],
            option::of(prop_oneof![3 => Just("M1".to_string()), 1 => "[A-Z0-9]{1,3}"]),
            text(&["postgresql", "epas", "pgextended"]),
            text(&["11", "13", "15", "16", "17", "18", "19"]),
            text(&["repmgr", "patroni", "efm"]),
            text(&["aws", "docker", "bare"]),
            text(&["eu-west-1", "us-east-2", "ap-south-1"]),
            text(&["t3.micro", "m6i.large"]),
            any::<bool>(),
        ),
        (
            text(&["Debian", "Ubuntu", "Rocky", "RedHat"]),
            text(&["11", "12", "13", "9", "22.04"]),
            option::of(prop_oneof![
                (0u32..40).prop_map(|n| n.to_string()),
                "[0-9a-z-]{1,3}"
            ]),
            any::<bool>(),
            text(&["etcd", "consul"]),
            option::of(any::<bool>()),
            option::of(proptest::collection::vec("[a-z][a-z0-9-]{0,6}", 0..4)),
            option::of("[a-zA-Z '&=#]{1,16}"),
            text(&[
                "10.33.0.0/16",
                "192.168.0.0/24",
                "10.0.0.0/29",
                "10.0.0.1/24",
            ]),
            option::of(proptest::collection::vec("[a-z]{1,8}", 0..12)),
            option::of(proptest::collection::vec(
                prop_oneof![
                    Just(String::new()),
                    "192\\.0\\.2\\.[0-9]{1,2}",
                    "2001:db8::[0-9a-f]{1,3}",
                    "[a-z.]{1,6}"
                ],
                0..12,
            )),
        ),
        (
            option::of(proptest::collection::vec(
                prop_oneof![
                    Just("main".to_string()),
                    Just("dr".to_string()),
                    Just("x".to_string())
                ],
                0..12,
            )),
            text(&["system", "legacy", "vault"]),
            text(&["8f4d20e7-034a-4b4c-9b0c-94a7b510587f", "not-a-uuid"]),
            any::<bool>(),
            text(&["16", "0", "64", "big"]),
            text(&["32", "100"]),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (name, arch, flavour, version, fm, platform, region, itype, synchronous),
                (os, osv, n, haproxy, dcs, redwood, locs, owner, net, hosts, addresses),
                (placement, keyring, vault, volatile, root, barman, barman_last),
            )| Draft {
                cluster_name: name,
                architecture: arch,
                postgres_flavour: flavour,
                postgres_version: version,
                failover_manager: fm,
                platform,
                region,
                instance_type: itype,
                distribution: os,
                os_version: osv,
                num_cascaded_replicas: n,
                enable_haproxy: haproxy,
                synchronous,
                patroni_dcs: dcs,
                redwood,
                location_names: locs,
                owner,
                network: net,
                hostnames: hosts,
                addresses,
                placement,
                keyring_backend: keyring,
                vault_name: vault,
                volatile_subscriptions: volatile,
                volume_sizes: m1studio_shared::spec::VolumeSizes {
                    root,
                    postgres: None,
                    barman,
                },
                numbering: if barman_last {
                    m1studio_shared::spec::Numbering::BarmanLast
                } else {
                    m1studio_shared::spec::Numbering::Tpa
                },
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn validation_never_panics_and_is_deterministic(draft in drafts()) {
        let (design, diagnostics) = validate(&draft);
        let again = validate(&draft);
        prop_assert_eq!(&diagnostics, &again.1);
        prop_assert_eq!(design.is_some(), !m1studio_shared::has_errors(&diagnostics));
    }

    #[test]
    fn every_valid_design_renders_and_reads_back_to_the_same_file(draft in drafts()) {
        if let (Some(configured), _) = configure(&draft) {
            let (back, diagnostics) = config::read(&configured.config_yml);
            prop_assert!(diagnostics.iter().all(|d| !d.is_error()), "{:?}", diagnostics);
            let back = back.unwrap();
            let again = configure(&back).0.unwrap();
            prop_assert_eq!(&configured.config_yml, &again.config_yml);
            prop_assert_eq!(&configured.design, &again.design);
        }
    }

    #[test]
    fn links_round_trip(draft in drafts()) {
        let text = link::encode(&draft);
        let (back, diagnostics) = link::decode(&text);
        prop_assert!(diagnostics.is_empty(), "{} {:?}", text, diagnostics);
        let mut expected = draft.normalized();
        if let Some(names) = &mut expected.location_names { names.retain(|n| !n.is_empty()); }
        // The vault belongs to the cluster directory, not to the design: links leave it out.
        expected.vault_name = None;
        prop_assert_eq!(back.normalized(), expected);
    }

    #[test]
    fn command_lines_round_trip(draft in drafts()) {
        prop_assume!(!draft.cluster_name.is_empty() && !draft.cluster_name.contains(['/', '\\']) && !draft.cluster_name.starts_with('-'));
        prop_assume!(draft.location_names.as_ref().is_none_or(|l| !l.is_empty()));
        for value in [&draft.region, &draft.instance_type, &draft.distribution, &draft.os_version, &draft.num_cascaded_replicas, &draft.patroni_dcs, &draft.owner, &draft.network, &draft.postgres_version, &draft.postgres_flavour, &draft.failover_manager, &draft.platform, &draft.architecture, &draft.keyring_backend, &draft.volume_sizes.root, &draft.volume_sizes.barman] {
            prop_assume!(value.as_ref().is_none_or(|v| !v.is_empty() && !v.starts_with('-') && !v.contains('=')));
        }
        let line = command_line(Program::M1studio, &draft.cluster_name, &draft);
        let file = hostnames_file(&draft);
        let mut read = |_: &str| file.clone().ok_or_else(|| "no file".to_string());
        let (back, problems) = parse_command_line(&line, &mut read);
        prop_assert!(problems.is_empty(), "{} {:?}", line, problems);
        let mut expected = draft.normalized();
        if let Some(hosts) = &mut expected.hostnames { hosts.retain(|h| !h.trim().is_empty()); }
        // No option of configure places nodes off the M1 layout (only a config.yml does), and
        // the vault belongs to the cluster directory.
        expected.placement = None;
        expected.vault_name = None;
        expected.numbering = m1studio_shared::spec::Numbering::Tpa;
        prop_assert_eq!(back.draft.normalized(), expected, "{}", line);
    }

    #[test]
    fn the_link_decoder_never_panics(text in "[ -~]{0,200}") {
        let _ = link::decode(&text);
    }

    #[test]
    fn the_config_reader_never_panics(text in "[ -~\n]{0,300}") {
        let _ = config::read(&text);
    }

    #[test]
    fn the_config_reader_never_panics_on_damaged_configs(cut in 0usize..2000, junk in "[ -~\n]{0,20}") {
        let yml = configure(&Draft::starter()).0.unwrap().config_yml;
        let cut = cut.min(yml.len());
        let _ = config::read(&format!("{}{}{}", &yml[..cut], junk, &yml[cut..]));
    }
}
