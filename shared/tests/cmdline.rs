//! The configure command line: aliases and `--option=value`, the help, and the equivalent
//! `m1studio` and `tpaexec` lines, which parse back into the same design.

mod common;

use m1studio_shared::cmdline::{
    OPTIONS, Program, command_line, configure_help, hostnames_file, parse_command_line,
};

#[test]
fn aliases_and_inline_values_mean_the_same_design() {
    let long = common::parse("m1 --architecture M1 --edb-postgres-advanced 16 --redwood --failover-manager efm --distribution Debian").0;
    let short = common::parse("m1 -a=M1 --epas=16 --redwood --enable-efm --os Debian").0;
    assert_eq!(long.draft, short.draft);
    let flavour = common::parse(
        "m1 -a M1 --postgres-flavour epas --postgres-version 16 --redwood --enable-efm --os Debian",
    )
    .0;
    assert_eq!(long.draft, flavour.draft);
}

#[test]
fn the_cluster_name_is_the_last_part_of_the_directory() {
    assert_eq!(
        common::parse("~/clusters/m1/ -a M1").0.draft.cluster_name,
        "m1"
    );
    assert_eq!(common::parse("m1 -a M1").0.dir.as_deref(), Some("m1"));
}

#[test]
fn help_lists_every_option_with_its_default_in_groups() {
    let help = configure_help();
    let mandatory = help.find("Mandatory options").unwrap();
    let additional = help.find("Additional options").unwrap();
    assert!(mandatory < additional);
    for option in OPTIONS {
        for name in option.names {
            assert!(help.contains(name), "{name} missing from the help");
        }
        if let Some(default) = option.default {
            assert!(
                help.contains(&format!("[default: {default}]")),
                "default of {} missing",
                option.names[0]
            );
        }
    }
    assert!(help[mandatory..additional].contains("--failover-manager"));
    assert!(help[additional..].contains("--num-cascaded-replicas N"));
    assert!(common::parse("-a M1 --help").0.help);
}

#[test]
fn rendered_lines_quote_what_a_shell_would_split() {
    let (invocation, _) = common::parse(
        "m1 -a M1 --postgresql 15 --enable-repmgr --owner \"Jane O'Neil\" --platform docker",
    );
    let line = command_line(Program::M1studio, "m1", &invocation.draft);
    assert_eq!(
        line,
        r#"m1studio configure m1 --architecture M1 --postgresql 15 --failover-manager repmgr --platform docker --owner "Jane O'Neil""#
    );
    let tpa = command_line(Program::Tpaexec, "~/clusters/m1", &invocation.draft);
    assert!(
        tpa.starts_with("tpaexec configure '~/clusters/m1' --architecture M1"),
        "{tpa}"
    );
}

#[test]
fn rendered_lines_parse_back_into_the_same_design() {
    for line in [
        "m1 -a M1 --postgresql 15 --enable-repmgr",
        "lab -a M1 --pgextended 17 --enable-patroni --enable-haproxy --platform docker --num-cascaded-replicas 4 --network 192.168.7.0/24",
        "prod -a M1 --epas 16 --no-redwood --enable-efm --region us-west-2 --instance-type r6i.xlarge --os Ubuntu --os-version 22.04 --location-names a b --owner 'x y'",
        "edge -a M1 --postgresql 18 --enable-repmgr --platform bare --hostnames-from four.txt",
    ] {
        let (invocation, problems) = common::parse(line);
        assert!(problems.is_empty(), "{problems:?}");
        for program in [Program::M1studio, Program::Tpaexec] {
            let rendered = command_line(program, &invocation.draft.cluster_name, &invocation.draft);
            let file = hostnames_file(&invocation.draft);
            let mut read = |path: &str| match (&file, path) {
                (Some(text), "hostnames.txt") => Ok(text.clone()),
                _ => Err("no such file".to_string()),
            };
            let (back, problems) = parse_command_line(&rendered, &mut read);
            assert!(problems.is_empty(), "{rendered}: {problems:?}");
            assert_eq!(
                back.draft.normalized(),
                invocation.draft.normalized(),
                "{rendered}"
            );
        }
    }
}

#[test]
fn synchronous_replication_is_an_m1studio_option_left_out_of_tpaexec_lines() {
    let (invocation, problems) = common::parse(
        "m1 -a M1 --postgresql 15 --enable-repmgr --platform docker --synchronous-replication",
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert!(invocation.draft.synchronous);
    let ours = command_line(Program::M1studio, "m1", &invocation.draft);
    assert!(ours.contains("--synchronous-replication"), "{ours}");
    let (back, problems) = parse_command_line(&ours, &mut common::files);
    assert!(problems.is_empty() && back.draft.synchronous, "{ours}");
    let theirs = command_line(Program::Tpaexec, "m1", &invocation.draft);
    assert!(!theirs.contains("synchronous"), "{theirs}");
}

#[test]
fn a_pasted_line_may_continue_over_several_lines() {
    let line = "tpaexec configure ~/clusters/m1 \\\n  --architecture M1 \\\n  --platform aws --region eu-west-1 --instance-type t3.micro \\\n  --distribution Debian \\\n  --postgresql 14 \\\n  --failover-manager repmgr";
    let (invocation, problems) = parse_command_line(line, &mut common::files);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(invocation.draft.cluster_name, "m1");
    assert_eq!(invocation.draft.postgres_version.as_deref(), Some("14"));
}

#[test]
fn lines_that_are_not_configure_commands_are_refused() {
    for line in [
        "rm -rf / configure",
        "m1studio deploy m1",
        "tpaexec configure 'unterminated",
        "",
    ] {
        let (_, problems) = parse_command_line(line, &mut common::files);
        assert_eq!(problems.len(), 1, "{line}");
        assert_eq!(problems[0].code.as_str(), "command-line-invalid");
    }
}
