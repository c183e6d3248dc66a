//! Share links: fixtures made by earlier versions keep opening, tampered links open with a
//! notice naming what was ignored, and garbage never panics.

mod common;

use m1studio_shared::cmdline::{Program, command_line};
use m1studio_shared::link::{decode, encode, url};
use m1studio_shared::{Draft, Severity, configure};

#[test]
fn links_of_version_1_keep_opening_as_the_same_design() {
    let fixtures = include_str!("fixtures/links-v1.txt");
    let mut count = 0;
    for line in fixtures
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (link, expected) = line.split_once('\t').expect("LINK<tab>COMMAND");
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
fn the_starter_design_has_a_short_readable_link() {
    let link = encode(&Draft::starter());
    assert_eq!(link, "v=1&name=m1&pg=15&fm=repmgr&platform=docker");
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
    assert_eq!(encode(&invocation.draft), "v=1&name=m1&pg=15&fm=repmgr");
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
