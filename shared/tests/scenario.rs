//! Scenarios: read from YAML with every problem named, the presets, and their results as CSV.

use m1studio_shared::api::Drill;
use m1studio_shared::scenario::{self, OLD_PRIMARY, ResultRow, Results, StepResult};

#[test]
fn a_scenario_file_reads_into_timed_drills() {
    let text = "name: failover and back\nsteps:\n  - at: 0\n    action: kill-primary\n    retarget_barman: true\n  - at: 60\n    action: start\n    node: old-primary\n  - at: 90\n    action: switchover\n    retarget_barman: true\n";
    let read = scenario::read(text).expect("a valid scenario");
    assert_eq!(read.name, "failover and back");
    assert_eq!(read.steps.len(), 3);
    assert_eq!(
        read.steps[0].drill,
        Drill::KillPrimary {
            retarget_barman: true
        }
    );
    assert_eq!(read.steps[1].at, 60);
    assert_eq!(
        scenario::resolve(&read.steps[1].drill, Some("kestrel")),
        Drill::Start {
            node: "kestrel".into()
        }
    );
    assert_eq!(read, scenario::preset("failover and back").unwrap());
}

#[test]
fn every_problem_of_a_scenario_is_named_at_once() {
    let text = "name: ''\nsteps:\n  - at: 90\n    action: kill-primary\n  - at: 30\n    action: switchover\n  - at: 4000\n    action: switchover\n  - at: 10\n    action: reboot-the-moon\n";
    let problems = scenario::read(text).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        ["name", "steps[1].at", "steps[2].at", "steps[3]"],
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .all(|d| d.code.as_str() == "scenario-invalid" && d.is_error())
    );
    assert!(problems[1].message.contains("order they start"));
    assert!(problems[2].message.contains("3600"));
    // Not YAML at all, no steps, too many, too long, unknown keys.
    for bad in [
        "{{{",
        "name: x\nsteps: []\n",
        &format!(
            "name: x\nsteps:\n{}",
            "  - at: 0\n    action: kill-primary\n".repeat(21)
        ),
        &"x".repeat(20_000),
        "name: x\nsteps: []\ncolour: red\n",
    ] {
        let problems = scenario::read(bad).unwrap_err();
        assert!(!problems.is_empty(), "{bad}");
    }
    let unknown = scenario::preset("take a nap").unwrap_err();
    assert_eq!(unknown.path, "preset");
    assert!(unknown.message.contains("kill the primary"));
}

#[test]
fn results_export_as_csv_a_row_per_step() {
    let results = Results {
        scenario: scenario::preset("failover and back").unwrap(),
        finished: true,
        rows: vec![ResultRow {
            deployment: "d1".into(),
            attendee: "Ada \"the first\"".into(),
            steps: vec![
                StepResult {
                    started_after_ms: 3,
                    rto_ms: Some(4100),
                    writes_lost: Some(0),
                    error: None,
                },
                StepResult {
                    started_after_ms: 60_010,
                    rto_ms: None,
                    writes_lost: None,
                    error: None,
                },
            ],
        }],
    };
    let csv = scenario::csv(&results);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "attendee,deployment,step,action,started_after_ms,rto_ms,writes_lost,error"
    );
    assert_eq!(
        lines[1],
        "\"Ada \"\"the first\"\"\",\"d1\",1,kill-primary,3,4100,0,\"\""
    );
    assert_eq!(
        lines[2],
        "\"Ada \"\"the first\"\"\",\"d1\",2,start,60010,,,\"\""
    );
    assert_eq!(OLD_PRIMARY, "old-primary");
}
