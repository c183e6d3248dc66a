//! config.yml for the matrix of designs (failover manager × platform × cascaded replicas ×
//! HAProxy), each a reviewed snapshot; and each one reads back into the same design.

mod common;

use m1studio_shared::{config, configure};

fn line(fm: &str, platform: &str, n: u32, haproxy: bool) -> String {
    let mut line = format!(
        "m1-{fm}-{platform}-{n} -a M1 --postgresql 15 --failover-manager {fm} --platform {platform} --num-cascaded-replicas {n} --owner trainer"
    );
    if haproxy {
        line += " --enable-haproxy";
    }
    line
}

fn matrix() -> Vec<(String, String)> {
    let mut designs = Vec::new();
    for fm in ["repmgr", "patroni", "efm"] {
        for platform in ["aws", "docker", "bare"] {
            for n in [0, 1, 2, 5] {
                for haproxy in [false, true] {
                    if haproxy && fm != "patroni" {
                        continue;
                    }
                    let name = format!(
                        "{fm}-{platform}-n{n}{}",
                        if haproxy { "-haproxy" } else { "" }
                    );
                    designs.push((name, line(fm, platform, n, haproxy)));
                }
            }
        }
    }
    designs
}

#[test]
fn config_yml_matrix_matches_the_snapshots() {
    for (name, line) in matrix() {
        let (invocation, problems) = common::parse(&line);
        assert!(problems.is_empty(), "{problems:?}");
        let (configured, diagnostics) = configure(&invocation.draft);
        let configured = configured.unwrap_or_else(|| panic!("{line}: {diagnostics:?}"));
        insta::assert_snapshot!(name, configured.config_yml, &line);
    }
}

#[test]
fn config_yml_matrix_reads_back_to_the_same_file() {
    for (_, line) in matrix() {
        let (invocation, _) = common::parse(&line);
        let first = configure(&invocation.draft).0.unwrap().config_yml;
        let (draft, diagnostics) = config::read(&first);
        let draft = draft.unwrap_or_else(|| panic!("{line}: {diagnostics:?}"));
        assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:?}");
        assert_eq!(draft.normalized(), invocation.draft.normalized(), "{line}");
        let second = configure(&draft).0.unwrap().config_yml;
        assert_eq!(first, second, "{line}");
    }
}

#[test]
fn edb_aws_design_with_every_option_matches_its_snapshot() {
    let line = "prod/edb-m1 -a M1 --epas 17 --redwood --enable-efm --region us-east-2 --instance-type m6i.large \
                --distribution RedHat --os-version 9 --num-cascaded-replicas 2 --location-names london paris \
                --owner 'Ops Team' --network 10.40.0.0/20 --hostnames-from eight.txt";
    let (invocation, problems) = common::parse(line);
    assert!(problems.is_empty(), "{problems:?}");
    let configured = configure(&invocation.draft).0.unwrap();
    insta::assert_snapshot!("efm-epas-aws-every-option", configured.config_yml, line);
    let (draft, diagnostics) = config::read(&configured.config_yml);
    assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:?}");
    assert_eq!(
        configure(&draft.unwrap()).0.unwrap().config_yml,
        configured.config_yml
    );
}
