//! The field table: each row's link key and option are the ones the link encoder and the
//! command line really write, each row's path is the one diagnostics name, and `Draft::set`
//! drops what no longer applies.

use m1studio_shared::cmdline::{self, OPTIONS, Program};
use m1studio_shared::field::{FIELDS, Field};
use m1studio_shared::{Draft, link, validate};

/// A value for `field` that is not its default, on a draft where it applies.
fn edited(field: Field) -> Draft {
    let mut draft = Draft::starter();
    let value = match field {
        Field::Name => "lab",
        Field::Flavour => "epas",
        Field::Version => "16",
        Field::Failover => "patroni",
        Field::Dcs => "consul",
        Field::Redwood => "on",
        Field::Platform => "bare",
        Field::Region => "us-east-2",
        Field::InstanceType => "r6i.xlarge",
        Field::Distribution => "Ubuntu",
        Field::OsVersion => "11",
        Field::Cascaded => "3",
        Field::Haproxy | Field::Synchronous => "on",
        Field::FirstLocation => "north",
        Field::SecondLocation => "south",
        Field::Owner => "jane",
        Field::Network => "10.9.0.0/24",
    };
    match field {
        Field::Dcs | Field::Haproxy => draft.set(Field::Failover, "patroni"),
        Field::Redwood => draft.set(Field::Flavour, "epas"),
        Field::Region | Field::InstanceType | Field::Distribution => {
            draft.set(Field::Platform, "aws")
        }
        _ => {}
    }
    draft.set(field, value);
    assert!(field.applies(&draft), "{field:?} applies where it was set");
    draft
}

#[test]
fn every_field_has_one_row_and_every_row_is_written_where_it_says() {
    let all = [
        Field::Name,
        Field::Flavour,
        Field::Version,
        Field::Failover,
        Field::Dcs,
        Field::Redwood,
        Field::Platform,
        Field::Region,
        Field::InstanceType,
        Field::Distribution,
        Field::OsVersion,
        Field::Cascaded,
        Field::Haproxy,
        Field::Synchronous,
        Field::FirstLocation,
        Field::SecondLocation,
        Field::Owner,
        Field::Network,
    ];
    assert_eq!(FIELDS.len(), all.len());
    for field in all {
        assert_eq!(
            FIELDS.iter().filter(|s| s.field == field).count(),
            1,
            "{field:?}"
        );
        let spec = field.spec();
        let draft = edited(field);
        // Links: the row's key carries it (the flavour and version travel as `epas=16` where both
        // are given, and as their own keys otherwise).
        let mut alone = Draft::default();
        alone.set(
            field,
            match field {
                Field::Flavour => "epas",
                Field::Version => "16",
                _ => "",
            },
        );
        let text = link::encode(&draft);
        let keys: Vec<String> = form_urlencoded::parse(text.as_bytes())
            .map(|(k, _)| k.into_owned())
            .chain(
                form_urlencoded::parse(link::encode(&alone).as_bytes())
                    .map(|(k, _)| k.into_owned()),
            )
            .collect();
        assert!(
            keys.iter().any(|k| k == spec.link_key),
            "{field:?}: {} not in {text}",
            spec.link_key
        );
        // Command lines: the row's option is written, by its canonical name.
        if let Some(opt) = spec.option {
            let names = OPTIONS
                .iter()
                .find(|o| o.opt == opt)
                .expect("an option")
                .names;
            let line = cmdline::command_line(Program::M1studio, "lab", &draft);
            let written = names.iter().any(|n| line.contains(n))
                || (field == Field::Flavour && line.contains("--edb-postgres-advanced"))
                || (field == Field::Version && line.contains(" 16"))
                || (field == Field::Failover && line.contains("--enable-patroni"));
            assert!(written, "{field:?}: none of {names:?} in {line}");
        }
        // Diagnostics name the field by the row's path.
        let mut wrong = draft.clone();
        let bad = match field {
            Field::Cascaded => Some("many"),
            Field::Network => Some("not a network"),
            Field::Version => Some("7"),
            Field::Failover => Some("heartbeat"),
            Field::Platform => Some("mainframe"),
            Field::Region => Some("mars-1"),
            Field::Name => Some("Not A Name!"),
            _ => None,
        };
        if let Some(bad) = bad {
            wrong.set(field, bad);
            let (_, diagnostics) = validate(&wrong);
            assert!(
                diagnostics
                    .iter()
                    .any(|d| d.path == spec.path && d.is_error()),
                "{field:?}: no error at {} in {diagnostics:?}",
                spec.path
            );
        }
    }
}

#[test]
fn what_no_longer_applies_is_dropped() {
    let mut draft = Draft::starter();
    draft.set(Field::Platform, "aws");
    draft.set(Field::Region, "us-east-2");
    draft.set(Field::InstanceType, "m6i.large");
    draft.set(Field::Platform, "bare");
    assert_eq!((draft.region, draft.instance_type), (None, None));

    let mut draft = Draft::starter();
    draft.set(Field::Failover, "patroni");
    draft.set(Field::Dcs, "etcd");
    draft.set(Field::Haproxy, "on");
    draft.set(Field::Failover, "repmgr");
    assert_eq!(draft.patroni_dcs, None);
    assert!(
        draft.enable_haproxy,
        "HAProxy stays, so that its error shows"
    );

    let mut draft = Draft::starter();
    draft.set(Field::Flavour, "epas");
    draft.set(Field::Redwood, "on");
    assert_eq!(draft.redwood, Some(true));
    draft.set(Field::Flavour, "postgresql");
    assert_eq!(draft.redwood, None);

    // Docker nodes are Debian: another distribution goes with its version.
    let mut draft = Draft::starter();
    draft.set(Field::Platform, "aws");
    draft.set(Field::Distribution, "Ubuntu");
    draft.set(Field::OsVersion, "22.04");
    draft.set(Field::Platform, "docker");
    assert_eq!((draft.distribution, draft.os_version), (None, None));

    let mut draft = Draft::starter();
    draft.set(Field::Network, "10.1.0.0/24");
    draft.set(Field::Platform, "bare");
    assert_eq!(draft.network, None);
}

#[test]
fn empty_text_means_the_default_and_locations_are_edited_one_at_a_time() {
    let mut draft = Draft::starter();
    draft.set(Field::Owner, "jane");
    draft.set(Field::Owner, "  ");
    assert_eq!(draft.owner, None);
    draft.set(Field::Cascaded, "");
    assert_eq!(
        draft.num_cascaded_replicas.as_deref(),
        Some(""),
        "an emptied count is an error, not a default"
    );
    draft.set(Field::SecondLocation, " west ");
    assert_eq!(
        draft.location_names,
        Some(vec!["main".to_string(), "west".to_string()])
    );
}

#[test]
fn a_config_yml_s_placement_follows_renamed_locations_and_goes_with_other_nodes() {
    let text = include_str!("fixtures/tpa/legacy-docker-patroni-haproxy-c1.yml");
    let (draft, _) = m1studio_shared::config::read(text);
    let mut draft = draft.unwrap();
    draft.set(Field::FirstLocation, "east");
    let placement = draft.placement.clone().unwrap();
    assert_eq!(placement[2], "east", "Barman stays in the first location");
    assert_eq!(placement[3], "dr");
    let (design, found) = m1studio_shared::validate(&draft);
    assert!(design.is_some(), "{found:?}");
    // Another number of cascaded replicas: other nodes, so the M1 layout.
    draft.set(Field::Cascaded, "0");
    assert_eq!(draft.placement, None);
    let (design, found) = m1studio_shared::validate(&draft);
    assert!(design.is_some(), "{found:?}");
}
