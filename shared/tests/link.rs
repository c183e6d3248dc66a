//! Share links: fixtures made by earlier versions keep opening, tampered links open with a
//! notice naming what was ignored, and garbage never panics.

mod common;

use m1studio_shared::cmdline::{Program, command_line};
use m1studio_shared::link::{decode, encode, url};
use m1studio_shared::{Draft, Severity, configure};

/// The fixture lines of `text`: a link, and the command line of the design it must open as.
fn fixtures(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| line.split_once('\t').expect("LINK<tab>COMMAND"))
        .collect()
}

#[test]
fn links_of_version_1_keep_opening_as_the_same_design() {
    let mut count = 0;
    for (link, expected) in fixtures(include_str!("fixtures/links-v1.txt")) {
        let (draft, diagnostics) = decode(link);
        // Version 1 numbered Barman after the cascaded replicas: where that moves a node, an
        // explanation says so, and nothing else is said.
        assert!(
            diagnostics
                .iter()
                .all(|d| d.code.as_str() == "link-renumbered" && d.severity == Severity::Info),
            "{link}: {diagnostics:?}"
        );
        let renumbered = !link.contains("&n=0");
        assert_eq!(diagnostics.len(), usize::from(renumbered), "{link}");
        assert_eq!(
            command_line(Program::M1studio, &draft.cluster_name, &draft),
            expected,
            "{link}"
        );
        // This version writes the same design as a version 2 link, which opens without a notice.
        let again = encode(&draft);
        assert!(again.starts_with("v=2&"), "{again}");
        let (back, notices) = decode(&again);
        assert!(notices.is_empty(), "{again}: {notices:?}");
        assert_eq!(back, draft.normalized());
        count += 1;
    }
    assert!(count >= 5);
    // The hosts keep their roles: the fourth host of this link was Barman in version 1.
    let (draft, diagnostics) = decode(
        "v=1&name=edge&pge=15&fm=repmgr&platform=bare&host=alpha&host=bravo&host=charlie&host=delta",
    );
    let configured = configure(&draft).0.unwrap();
    let barman = configured
        .topology
        .of_kind(m1studio_shared::Kind::Barman)
        .next()
        .unwrap();
    assert_eq!((barman.node, barman.name.as_str()), (3, "delta"));
    assert!(diagnostics[0].message.contains("Barman is still 'delta'"));
    // With the default names, the notice names Barman's new and old names.
    let (_, diagnostics) = decode("v=1&name=m1&pg=15&fm=repmgr&platform=docker&n=2");
    assert!(
        diagnostics[0]
            .message
            .contains("Barman is now 'uplift' (node 3, it was 'quarry')"),
        "{}",
        diagnostics[0].message
    );
    // Addresses move with their hosts.
    let (draft, _) = decode(
        "v=1&name=p&pg=15&fm=repmgr&platform=bare&ip=192.0.2.1&ip=192.0.2.2&ip=192.0.2.3&ip=192.0.2.4",
    );
    assert_eq!(
        draft.addresses.unwrap(),
        ["192.0.2.1", "192.0.2.2", "192.0.2.4", "192.0.2.3"]
    );
}

#[test]
fn links_of_version_2_keep_opening_as_the_same_design() {
    let mut count = 0;
    for (link, expected) in fixtures(include_str!("fixtures/links-v2.txt")) {
        let (draft, diagnostics) = decode(link);
        assert!(diagnostics.is_empty(), "{link}: {diagnostics:?}");
        assert_eq!(
            command_line(Program::M1studio, &draft.cluster_name, &draft),
            expected,
            "{link}"
        );
        assert_eq!(encode(&draft), link, "this version writes the same link");
        count += 1;
    }
    assert!(count >= 5);
}

#[test]
fn a_placement_read_from_a_tpa_file_travels_in_the_link() {
    let text = include_str!("fixtures/tpa/legacy-docker-patroni-haproxy-c1.yml");
    let (draft, _) = m1studio_shared::config::read(text);
    let draft = draft.unwrap();
    let link = encode(&draft);
    assert!(link.contains("&at=000110101"), "{link}");
    assert!(
        !link.contains("vault"),
        "the vault belongs to the directory: {link}"
    );
    let (back, diagnostics) = decode(&link);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let mut expected = draft.normalized();
    expected.vault_name = None;
    assert_eq!(back, expected);
}

#[test]
fn the_starter_design_has_a_short_readable_link() {
    let link = encode(&Draft::starter());
    assert_eq!(link, "v=2&name=m1&pg=15&fm=repmgr&platform=docker");
    assert_eq!(
        url("http://127.0.0.1:8080/", &Draft::starter()),
        format!("http://127.0.0.1:8080/#{link}")
    );
}

#[test]
fn defaults_are_left_out_of_links() {
    let (invocation, _) = common::parse(
        "m1 -a M1 --postgresql 15 --enable-repmgr --platform aws --region eu-west-1 --instance-type t3.micro --num-cascaded-replicas 1 --location-names main dr --network 10.33.0.0/16 --distribution Debian --os-version 12",
    );
    assert_eq!(encode(&invocation.draft), "v=2&name=m1&pg=15&fm=repmgr");
}

#[test]
fn links_round_trip_through_urls() {
    let (invocation, _) = common::parse(
        "lab -a M1 --epas 17 --no-redwood --enable-patroni --enable-haproxy --synchronous-replication --platform docker --owner 'A & B=C #1' --location-names east west",
    );
    assert!(invocation.draft.synchronous);
    let link = url("https://designer.example/", &invocation.draft);
    let (draft, diagnostics) = decode(&link);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(draft, invocation.draft.normalized());
}

#[test]
fn existing_hosts_addresses_travel_in_links() {
    let (invocation, problems) = common::parse(
        "prod -a M1 --postgresql 15 --enable-repmgr --platform bare --hostnames-from hosts.txt",
    );
    assert!(problems.is_empty(), "{problems:?}");
    let link = encode(&invocation.draft);
    assert!(
        link.ends_with("&ip=192.0.2.10&ip=192.0.2.11&ip=2001%3Adb8%3A%3A12&ip=192.0.2.13"),
        "{link}"
    );
    let (draft, diagnostics) = decode(&link);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(draft, invocation.draft.normalized());
    // A host without an address keeps its place.
    let (draft, _) = decode("v=1&name=prod&pg=15&fm=repmgr&platform=bare&ip=&ip=192.0.2.11");
    assert_eq!(draft.addresses.unwrap(), ["", "192.0.2.11"]);
}

/// Decodes `link` and checks the warnings and errors it gives (`severity code path`).
fn check(link: &str, expected: &[&str]) -> Draft {
    let (draft, diagnostics) = decode(link);
    assert_eq!(
        common::summary(&diagnostics, &[Severity::Error, Severity::Warning]),
        expected,
        "{link}"
    );
    draft
}

#[test]
fn tampered_links_open_with_a_notice_of_what_was_ignored() {
    let draft = check(
        "v=1&name=m1&pg=15&fm=repmgr&color=red",
        &["warning link-parameter-unknown link.color"],
    );
    assert_eq!(draft.failover_manager.as_deref(), Some("repmgr"));
    check(
        "v=1&pg=15&fm=repmgr&fm=patroni",
        &["warning link-parameter-ignored link.fm"],
    );
    check(
        "v=1&pg=15&epas=16",
        &["warning link-parameter-ignored link.epas"],
    );
    check(
        "v=1&pg=15&haproxy=maybe",
        &["warning link-parameter-ignored link.haproxy"],
    );
    check(
        &format!("v=1&owner={}", "x".repeat(300)),
        &["warning link-parameter-ignored link.owner"],
    );
    check("name=m1&pg=15", &["warning link-version-missing link.v"]);
    check("v=9&name=m1", &["error link-version-unsupported link.v"]);
    check(&"v=1&".repeat(5000), &["error link-too-long link"]);
}

#[test]
fn a_tampered_value_reaches_validation_and_is_explained_there() {
    let (draft, _) = decode("v=1&name=m1&pg=15&fm=repmgr&platform=docker&n=999");
    let (configured, diagnostics) = configure(&draft);
    assert!(configured.is_none());
    assert!(
        diagnostics
            .iter()
            .any(|d| d.code.as_str() == "cascaded-replicas-out-of-range")
    );
}

#[test]
fn an_empty_link_is_an_empty_draft_without_notices() {
    let (draft, diagnostics) = decode("");
    assert!(diagnostics.is_empty());
    assert_eq!(draft.architecture.as_deref(), Some("M1"));
    assert_eq!(draft.failover_manager, None);
}

#[test]
fn garbage_never_panics() {
    for text in [
        "%",
        "%zz&&==&",
        "#?#?",
        "v=%FF%FE",
        "\u{0}\u{1}",
        "v=1&loc=&host=",
        "&&&",
        "====",
        "v=1&n=%F0%9F%92%A9",
    ] {
        let _ = decode(text);
    }
}
