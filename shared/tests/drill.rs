//! Drills as data: the checks, the promotion target, the faults' plans, and the observer,
//! replayed over status sequences shaped as real drills go (kill, isolation with fencing, etcd
//! quorum lost and kept, switchover, no promotion), and over drills recorded from real runs
//! (`fixtures/drills/*.jsonl`, one observation a line, as the runner logs them).

use m1studio_shared::api::{
    ClusterStatus, Drill, DrillReport, Machine, NodeStatus, PostgresRole, Signal,
};
use m1studio_shared::drill::{
    self, Break, ETCD_QUORUM, Next, Observation, Observer, Undo, Write, check, fault,
    promotion_target, refused_for_now, replay,
};
use m1studio_shared::plan::Profile;
use m1studio_shared::{Code, Configured, Draft, Kind, configure};

fn configured(manager: &str, cascaded: u32, synchronous: bool) -> Configured {
    let mut draft = Draft::starter();
    draft.failover_manager = Some(manager.into());
    draft.num_cascaded_replicas = Some(cascaded.to_string());
    draft.synchronous = synchronous;
    configure(&draft).0.expect("a valid design")
}

fn names(c: &Configured, kind: Kind) -> Vec<String> {
    c.topology.of_kind(kind).map(|i| i.name.clone()).collect()
}

/// A status where `roles` says each Postgres node's role and upstream; other nodes run.
fn status(c: &Configured, roles: &[(&str, PostgresRole, Option<&str>)]) -> ClusterStatus {
    let nodes: Vec<NodeStatus> = c
        .topology
        .instances
        .iter()
        .map(|i| {
            let role = roles.iter().find(|(n, _, _)| *n == i.name);
            NodeStatus {
                name: i.name.clone(),
                designed: i.kind,
                machine: if role.is_some_and(|(_, r, _)| *r == PostgresRole::Down) {
                    Machine::Exited
                } else {
                    Machine::Running
                },
                postgres: role
                    .map(|(_, r, _)| *r)
                    .or(i.kind.is_postgres().then_some(PostgresRole::Down)),
                timeline: Some(1),
                lag_bytes: Some(0),
                upstream: role.and_then(|(_, _, u)| u.map(str::to_string)),
                service: None,
            }
        })
        .collect();
    let primaries: Vec<&NodeStatus> = nodes
        .iter()
        .filter(|n| n.postgres == Some(PostgresRole::Primary))
        .collect();
    ClusterStatus {
        primary: (primaries.len() == 1).then(|| primaries[0].name.clone()),
        nodes,
        barman: None,
    }
}

fn write(id: u64, started_ms: i64, finished_ms: i64, by: Option<&str>) -> Write {
    Write {
        id,
        started_ms,
        finished_ms,
        ok: by.is_some(),
        by: by.map(str::to_string),
    }
}

fn seen(at_ms: i64, status: Option<ClusterStatus>, writes: Vec<Write>) -> Observation {
    Observation::Status {
        at_ms,
        status,
        writes,
    }
}

fn kinds(report: &DrillReport) -> Vec<Signal> {
    report.timeline.iter().map(|m| m.kind).collect()
}

fn moment(report: &DrillReport, kind: Signal) -> &m1studio_shared::api::Moment {
    report
        .timeline
        .iter()
        .find(|m| m.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} in {report:#?}"))
}

#[test]
fn a_killed_primary_is_detected_replaced_and_measured() {
    use PostgresRole::{Down, Primary, Standby};
    let c = configured("repmgr", 1, false);
    let [old, new] = [&c.topology.instances[0].name, &c.topology.instances[1].name];
    let cascaded = &names(&c, Kind::CascadedReplica)[0];
    let kill = Drill::KillPrimary {
        retarget_barman: false,
    };
    let fault = fault(&kill, &c, old).unwrap();
    assert_eq!(fault.action, Break::Kill(old.clone()));
    let mut observer = Observer::new(fault, 1, 1_000);
    let before = vec![
        write(1, -950, -930, Some(old)),
        write(2, -40, -20, Some(old)),
        write(3, 5, 2_005, None),
    ];
    let down = status(
        &c,
        &[
            (old, Down, None),
            (new, Standby, None),
            (cascaded, Standby, Some(new)),
        ],
    );
    assert_eq!(observer.see(seen(450, Some(down), before)), Next::Poll);
    let promoted = status(
        &c,
        &[
            (old, Down, None),
            (new, Primary, None),
            (cascaded, Standby, Some(new)),
        ],
    );
    let refused = vec![write(4, 2_105, 4_105, None)];
    assert_eq!(
        observer.see(seen(5_400, Some(promoted.clone()), refused)),
        Next::Poll
    );
    let resumed = vec![
        write(5, 5_500, 5_530, Some(new)),
        write(6, 5_530, 5_560, Some(new)),
    ];
    assert_eq!(
        observer.see(seen(5_900, Some(promoted.clone()), resumed)),
        Next::Poll
    );
    assert_eq!(
        observer.see(seen(6_400, Some(promoted.clone()), vec![])),
        Next::Poll
    );
    assert_eq!(
        observer.see(seen(6_900, Some(promoted), vec![])),
        Next::Finish,
        "settled for a second"
    );
    assert_eq!(observer.survivor().as_deref(), Some(new.as_str()));
    let present = [1, 2, 5, 6].into_iter().collect();
    let report = observer.finish(6_900, Some(&present));
    assert_eq!(
        kinds(&report),
        [
            Signal::Fault,
            Signal::WritesRefused,
            Signal::Detected,
            Signal::Promoted,
            Signal::WritesResumed,
            Signal::Settled
        ]
    );
    assert_eq!(report.new_primary.as_deref(), Some(new.as_str()));
    assert_eq!(
        report.rto_ms,
        Some(5_530),
        "from the fault to the first write the new primary acknowledged"
    );
    assert_eq!(
        report.outage_ms,
        Some(5_530),
        "no write acknowledged since the fault"
    );
    assert_eq!((report.writes_acknowledged, report.writes_failed), (4, 2));
    assert_eq!((report.writes_lost, report.rpo_ms), (Some(0), Some(0)));
    assert_eq!(
        moment(&report, Signal::WritesRefused).after_ms,
        5,
        "timed by the write, not the watcher"
    );
    assert_eq!(
        moment(&report, Signal::WritesResumed).node.as_deref(),
        Some(new.as_str())
    );
    assert!(report.finished && report.note.is_none(), "{report:#?}");
}

#[test]
fn an_asynchronous_loss_says_how_far_before_the_fault_it_reaches() {
    use PostgresRole::{Down, Primary, Standby};
    let c = configured("repmgr", 0, false);
    let [old, new] = [&c.topology.instances[0].name, &c.topology.instances[1].name];
    let report = replay(
        fault(
            &Drill::KillPrimary {
                retarget_barman: false,
            },
            &c,
            old,
        )
        .unwrap(),
        1,
        &[
            seen(
                500,
                Some(status(&c, &[(old, Down, None), (new, Standby, None)])),
                vec![
                    write(1, -30, -12, Some(old)),
                    write(2, -12, -4, Some(old)),
                    write(3, -4, 3_000, None),
                ],
            ),
            seen(
                4_000,
                Some(status(&c, &[(old, Down, None), (new, Primary, None)])),
                vec![write(4, 3_100, 3_120, Some(new))],
            ),
            seen(
                5_100,
                Some(status(&c, &[(old, Down, None), (new, Primary, None)])),
                vec![],
            ),
            Observation::Finished {
                at_ms: 5_100,
                writes: vec![],
                present: Some(vec![1, 4]),
            },
        ],
    );
    assert_eq!(
        report.writes_lost,
        Some(1),
        "row 2 never reached the standby"
    );
    assert_eq!(report.rpo_ms, Some(4));
    assert_eq!(report.outage_ms, Some(3_120));
    assert!(
        report
            .loss()
            .unwrap()
            .contains("up to 4 ms before the fault")
    );
}

#[test]
fn an_isolated_primary_replaced_meanwhile_is_fenced_before_it_comes_back() {
    use PostgresRole::{Primary, Standby};
    let c = configured("repmgr", 1, true);
    let [old, new] = [&c.topology.instances[0].name, &c.topology.instances[1].name];
    let cascaded = &names(&c, Kind::CascadedReplica)[0];
    let isolate = Drill::IsolatePrimary {
        seconds: 30,
        retarget_barman: false,
    };
    let mut observer = Observer::new(fault(&isolate, &c, old).unwrap(), 1, 0);
    // Cut off, the old primary still says it is one: that is no detection.
    let cut = status(
        &c,
        &[
            (old, Primary, None),
            (new, Primary, None),
            (cascaded, Standby, Some(new)),
        ],
    );
    observer.see(seen(
        400,
        Some(status(
            &c,
            &[
                (old, Primary, None),
                (new, Standby, Some(old)),
                (cascaded, Standby, Some(new)),
            ],
        )),
        vec![write(1, 0, 5_000, None)],
    ));
    observer.see(seen(
        12_000,
        Some(cut.clone()),
        vec![write(2, 11_000, 11_020, Some(new))],
    ));
    assert_eq!(observer.undo_due(29_999), None);
    assert_eq!(
        observer.see(seen(14_000, Some(cut.clone()), vec![])),
        Next::Poll,
        "not before the primary is back"
    );
    assert_eq!(
        observer.undo_due(30_000),
        Some(Undo::Reconnect {
            node: old.clone(),
            fence_beside: Some(new.clone())
        })
    );
    observer.see(Observation::Fenced {
        at_ms: 30_100,
        outcome: Ok(()),
    });
    observer.see(Observation::Undone { at_ms: 30_300 });
    assert_eq!(observer.undo_due(31_000), None, "undone once");
    let fenced = status(
        &c,
        &[
            (old, PostgresRole::Down, None),
            (new, Primary, None),
            (cascaded, Standby, Some(new)),
        ],
    );
    assert_eq!(
        observer.see(seen(30_800, Some(fenced), vec![])),
        Next::Finish
    );
    let report = observer.finish(30_800, Some(&[2].into_iter().collect()));
    assert!(!kinds(&report).contains(&Signal::Detected), "{report:#?}");
    assert_eq!(
        moment(&report, Signal::Fenced).node.as_deref(),
        Some(old.as_str())
    );
    assert_eq!(moment(&report, Signal::FaultUndone).after_ms, 30_300);
    assert_eq!(report.rto_ms, Some(11_020));
    assert_eq!(report.writes_lost, Some(0));
}

#[test]
fn with_patroni_an_isolated_leader_is_never_fenced_by_the_runner() {
    let c = configured("patroni", 1, false);
    let old = &c.topology.instances[0].name;
    let new = &c.topology.instances[1].name;
    let isolate = Drill::IsolatePrimary {
        seconds: 10,
        retarget_barman: false,
    };
    let mut observer = Observer::new(fault(&isolate, &c, old).unwrap(), 1, 0);
    observer.see(seen(
        9_000,
        Some(status(
            &c,
            &[
                (old, PostgresRole::Standby, None),
                (new, PostgresRole::Primary, None),
            ],
        )),
        vec![],
    ));
    assert_eq!(
        observer.undo_due(10_000),
        Some(Undo::Reconnect {
            node: old.clone(),
            fence_beside: None
        }),
        "a Patroni leader that cannot renew its key demotes itself"
    );
}

#[test]
fn two_etcd_members_stopped_lose_the_quorum_and_nothing_fails_over() {
    use PostgresRole::{Primary, Standby};
    let c = configured("patroni", 1, false);
    let [old, replica] = [&c.topology.instances[0].name, &c.topology.instances[1].name];
    let cascaded = &names(&c, Kind::CascadedReplica)[0];
    let etcd = names(&c, Kind::Etcd);
    let drill = Drill::StopEtcd {
        count: 2,
        seconds: 30,
    };
    let planned = fault(&drill, &c, old).unwrap();
    assert_eq!(planned.action, Break::StopMembers(etcd[..2].to_vec()));
    assert!(
        planned.description.contains("no quorum"),
        "{}",
        planned.description
    );
    let mut observer = Observer::new(planned, 3, 0);
    let normal = status(
        &c,
        &[
            (old, Primary, None),
            (replica, Standby, Some(old)),
            (cascaded, Standby, Some(replica)),
        ],
    );
    let demoted = status(
        &c,
        &[
            (old, Standby, None),
            (replica, Standby, Some(old)),
            (cascaded, Standby, Some(replica)),
        ],
    );
    observer.see(seen(
        500,
        Some(normal.clone()),
        vec![write(1, 0, 20, Some(old))],
    ));
    observer.see(seen(
        11_000,
        Some(demoted.clone()),
        vec![write(2, 10_500, 15_500, None)],
    ));
    assert_eq!(
        observer.see(seen(29_000, Some(demoted), vec![])),
        Next::Poll
    );
    assert_eq!(
        observer.undo_due(30_000),
        Some(Undo::StartMembers(etcd[..2].to_vec()))
    );
    observer.see(Observation::Undone { at_ms: 30_500 });
    observer.see(seen(
        33_000,
        Some(normal.clone()),
        vec![write(3, 32_800, 32_830, Some(old))],
    ));
    assert_eq!(
        observer.see(seen(34_000, Some(normal.clone()), vec![])),
        Next::Poll
    );
    assert_eq!(
        observer.see(seen(35_600, Some(normal), vec![])),
        Next::Finish,
        "5 s after etcd is back"
    );
    assert_eq!(
        observer.survivor().as_deref(),
        Some(old.as_str()),
        "the old leader carried on"
    );
    let report = observer.finish(35_600, Some(&[1, 3].into_iter().collect()));
    assert_eq!(report.new_primary, None);
    assert_eq!(
        moment(&report, Signal::Detected).node.as_deref(),
        Some(old.as_str())
    );
    assert_eq!(
        report.rto_ms,
        Some(32_830),
        "writes resumed once the quorum was back"
    );
    assert!(
        report.note.as_deref().unwrap().starts_with("no failover"),
        "{report:#?}"
    );
    assert!(!kinds(&report).contains(&Signal::Promoted));
}

#[test]
fn one_etcd_member_stopped_keeps_the_quorum_and_no_write_is_refused() {
    let c = configured("patroni", 0, false);
    let old = &c.topology.instances[0].name;
    let planned = fault(
        &Drill::StopEtcd {
            count: 1,
            seconds: 5,
        },
        &c,
        old,
    )
    .unwrap();
    assert!(
        planned
            .description
            .contains(&format!("quorum ({ETCD_QUORUM}) holds"))
    );
    let report = replay(
        planned,
        1,
        &[
            seen(
                500,
                Some(status(&c, &[(old, PostgresRole::Primary, None)])),
                vec![write(1, 0, 10, Some(old))],
            ),
            Observation::Undone { at_ms: 5_000 },
            seen(
                5_500,
                Some(status(&c, &[(old, PostgresRole::Primary, None)])),
                vec![write(2, 5_100, 5_110, Some(old))],
            ),
            Observation::Finished {
                at_ms: 10_100,
                writes: vec![],
                present: Some(vec![1, 2]),
            },
        ],
    );
    assert_eq!(
        (report.rto_ms, report.outage_ms),
        (Some(0), Some(0)),
        "untouched"
    );
    assert!(
        report
            .note
            .as_deref()
            .unwrap()
            .contains("stayed the leader"),
        "{report:#?}"
    );
}

#[test]
fn a_switchover_ends_with_the_command_and_the_witness_follows() {
    use PostgresRole::{Primary, Standby};
    let c = configured("repmgr", 1, false);
    let [old, new] = [&c.topology.instances[0].name, &c.topology.instances[1].name];
    let cascaded = &names(&c, Kind::CascadedReplica)[0];
    // From the replica back to the primary: the cascaded replicas stay with the replica, so
    // siblings do not follow, and the witness is registered again.
    let back = fault(
        &Drill::Switchover {
            to: Some(old.clone()),
            retarget_barman: false,
        },
        &c,
        new,
    )
    .unwrap();
    let Break::Switchover {
        node,
        argv,
        witness,
    } = &back.action
    else {
        panic!("{back:?}")
    };
    assert_eq!(node, old);
    assert!(!argv.contains(&"--siblings-follow".to_string()), "{argv:?}");
    let barman = &names(&c, Kind::Barman)[0];
    assert_eq!(
        witness.as_ref(),
        c.topology
            .get(barman)
            .filter(|b| b.has(m1studio_shared::Role::Witness))
            .map(|_| (barman.clone(), old.clone()))
            .as_ref()
    );
    // From the primary: its standbys follow the new one.
    let planned = fault(
        &Drill::Switchover {
            to: None,
            retarget_barman: false,
        },
        &c,
        old,
    )
    .unwrap();
    let Break::Switchover {
        node,
        argv,
        witness,
    } = &planned.action
    else {
        panic!("{planned:?}")
    };
    assert_eq!((node, witness), (new, &None));
    assert!(argv.contains(&"--siblings-follow".to_string()), "{argv:?}");
    let mut observer = Observer::new(planned, 2, 0);
    let after = status(
        &c,
        &[
            (old, Standby, Some(new)),
            (new, Primary, None),
            (cascaded, Standby, Some(new)),
        ],
    );
    observer.see(seen(
        1_500,
        Some(status(
            &c,
            &[
                (old, Standby, None),
                (new, Standby, None),
                (cascaded, Standby, Some(new)),
            ],
        )),
        vec![write(1, 200, 1_400, None)],
    ));
    observer.see(seen(
        2_000,
        Some(after.clone()),
        vec![write(2, 1_900, 1_920, Some(new))],
    ));
    assert_eq!(
        observer.see(seen(3_100, Some(after.clone()), vec![])),
        Next::Poll,
        "the command has not ended"
    );
    observer.see(Observation::SwitchoverEnded {
        at_ms: 3_200,
        outcome: Ok((0, "NOTICE: switchover was successful".into())),
    });
    assert_eq!(observer.see(seen(3_600, Some(after), vec![])), Next::Finish);
    let report = observer.finish(3_600, Some(&[2].into_iter().collect()));
    assert_eq!(
        moment(&report, Signal::Detected).what,
        format!("{old} stepped down")
    );
    assert_eq!(
        kinds(&report)
            .iter()
            .filter(|k| **k == Signal::SwitchoverFinished)
            .count(),
        1
    );
    assert_eq!(report.writes_lost, Some(0));
}

#[test]
fn a_failed_switchover_command_is_a_typed_moment_with_its_last_words() {
    let c = configured("patroni", 0, false);
    let old = &c.topology.instances[0].name;
    let planned = fault(
        &Drill::Switchover {
            to: None,
            retarget_barman: false,
        },
        &c,
        old,
    )
    .unwrap();
    let report = replay(
        planned,
        1,
        &[
            Observation::SwitchoverEnded {
                at_ms: 900,
                outcome: Ok((1, "Error: no candidate".into())),
            },
            Observation::Finished {
                at_ms: 1_000,
                writes: vec![],
                present: None,
            },
        ],
    );
    let failed = moment(&report, Signal::SwitchoverFailed);
    assert!(
        failed.what.contains("(1): Error: no candidate"),
        "{failed:?}"
    );
}

#[test]
fn without_a_promotion_the_drill_ends_at_its_limit_and_says_why() {
    let c = configured("repmgr", 0, true);
    let old = &c.topology.instances[0].name;
    let new = &c.topology.instances[1].name;
    let mut observer = Observer::new(
        fault(
            &Drill::StopPrimary {
                retarget_barman: false,
            },
            &c,
            old,
        )
        .unwrap(),
        1,
        0,
    );
    let stuck = status(
        &c,
        &[
            (old, PostgresRole::Down, None),
            (new, PostgresRole::Standby, None),
        ],
    );
    assert_eq!(
        observer.see(seen(149_999, Some(stuck.clone()), vec![])),
        Next::Poll
    );
    assert_eq!(
        observer.see(seen(drill::WATCH_MS, Some(stuck), vec![])),
        Next::Finish
    );
    assert_eq!(observer.survivor(), None, "nothing to count rows on");
    let report = observer.finish(drill::WATCH_MS, None);
    let note = report.note.unwrap();
    assert!(
        note.starts_with("no other node took over within 150 s"),
        "{note}"
    );
    assert!(
        note.contains("only the synchronous standby may be promoted"),
        "{note}"
    );
    assert_eq!(report.writes_lost, None);
}

#[test]
fn moments_are_taken_once_each() {
    let c = configured("repmgr", 0, false);
    let old = &c.topology.instances[0].name;
    let mut observer = Observer::new(
        fault(
            &Drill::KillPrimary {
                retarget_barman: false,
            },
            &c,
            old,
        )
        .unwrap(),
        1,
        0,
    );
    let first = observer.take_moments();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].kind, first[0].node.as_deref()),
        (Signal::Fault, Some(old.as_str()))
    );
    assert!(observer.take_moments().is_empty());
    observer.see(seen(
        500,
        Some(status(&c, &[(old, PostgresRole::Down, None)])),
        vec![],
    ));
    assert_eq!(
        observer
            .take_moments()
            .iter()
            .map(|m| m.kind)
            .collect::<Vec<_>>(),
        [Signal::Detected]
    );
}

#[test]
fn every_problem_of_a_drill_is_reported_together_with_its_field() {
    // The codes' text is stable once released.
    assert_eq!(Code::DrillInvalid.as_str(), "drill-invalid");
    assert_eq!(Code::DrillNotNow.as_str(), "drill-not-now");
    let repmgr = configured("repmgr", 1, false);
    let old = repmgr.topology.instances[0].name.clone();
    let healthy = status(&repmgr, &[(&old, PostgresRole::Primary, None)]);
    let problems = check(
        &Drill::StopEtcd {
            count: 1,
            seconds: 30,
        },
        &repmgr,
        &healthy,
    );
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].path.as_str(), problems[0].code),
        ("action", Code::DrillInvalid)
    );

    let patroni = configured("patroni", 1, false);
    let leader = patroni.topology.instances[0].name.clone();
    let healthy = status(&patroni, &[(&leader, PostgresRole::Primary, None)]);
    let problems = check(
        &Drill::StopEtcd {
            count: 3,
            seconds: 1,
        },
        &patroni,
        &healthy,
    );
    let paths: Vec<&str> = problems.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["count", "seconds"], "{problems:#?}");
    assert!(!refused_for_now(&problems));

    let problems = check(
        &Drill::IsolatePrimary {
            seconds: 4,
            retarget_barman: false,
        },
        &patroni,
        &healthy,
    );
    assert!(
        problems[0].message.contains("5 to 600 seconds"),
        "{problems:#?}"
    );

    let cascaded = names(&repmgr, Kind::CascadedReplica)[0].clone();
    let healthy = status(&repmgr, &[(&old, PostgresRole::Primary, None)]);
    let problems = check(
        &Drill::Switchover {
            to: Some(cascaded),
            retarget_barman: false,
        },
        &repmgr,
        &healthy,
    );
    assert!(
        problems[0].message.contains("never promotes"),
        "{problems:#?}"
    );

    // The replica does not stream from the primary now: that is for now, not for ever.
    let problems = check(
        &Drill::Switchover {
            to: None,
            retarget_barman: false,
        },
        &repmgr,
        &healthy,
    );
    assert!(refused_for_now(&problems), "{problems:#?}");

    let nobody = status(&repmgr, &[]);
    let problems = check(
        &Drill::KillPrimary {
            retarget_barman: false,
        },
        &repmgr,
        &nobody,
    );
    assert!(
        refused_for_now(&problems)
            && problems[0]
                .message
                .contains("no single node accepts writes")
    );

    let problems = check(&Drill::Start { node: old.clone() }, &repmgr, &healthy);
    assert_eq!(
        (problems[0].code, problems[0].message.as_str()),
        (
            Code::DrillNotNow,
            format!("{old} is already running").as_str()
        )
    );
    let problems = check(
        &Drill::Start {
            node: "nowhere".into(),
        },
        &repmgr,
        &healthy,
    );
    assert!(problems[0].message.contains("use one of"), "{problems:#?}");
    let problems = check(&Drill::StopNode { node: old.clone() }, &repmgr, &healthy);
    assert!(
        problems[0].message.contains("stop-primary"),
        "{problems:#?}"
    );
}

#[test]
fn existing_hosts_are_never_broken_but_can_switch_over() {
    let mut draft = Draft::starter();
    draft.platform = Some("bare".into());
    let c = configure(&draft).0.expect("a bare design");
    let [primary, replica] = [0, 1].map(|i| c.topology.instances[i].name.clone());
    let now = status(
        &c,
        &[
            (&primary, PostgresRole::Primary, None),
            (&replica, PostgresRole::Standby, Some(&primary)),
        ],
    );
    let breaking = [
        Drill::KillPrimary {
            retarget_barman: false,
        },
        Drill::StopPrimary {
            retarget_barman: true,
        },
        Drill::IsolatePrimary {
            seconds: 20,
            retarget_barman: false,
        },
        Drill::StopNode {
            node: replica.clone(),
        },
        Drill::Start {
            node: replica.clone(),
        },
    ];
    for drill in breaking {
        let problems = check(&drill, &c, &now);
        assert_eq!(problems.len(), 1, "{drill:?}: {problems:?}");
        assert_eq!(
            (problems[0].path.as_str(), problems[0].code),
            ("action", Code::DrillInvalid),
            "{drill:?}"
        );
        assert!(
            !refused_for_now(&problems),
            "{drill:?} is wrong for the design, not for the moment"
        );
    }
    let switchover = Drill::Switchover {
        to: None,
        retarget_barman: true,
    };
    assert_eq!(
        check(&switchover, &c, &now),
        vec![],
        "a switchover is a command, not a break"
    );
    assert_eq!(check(&Drill::RetargetBarman, &c, &now), vec![]);
    // The same drills on containers are allowed.
    let docker = configured("repmgr", 1, false);
    let [p, r] = [0, 1].map(|i| docker.topology.instances[i].name.clone());
    let now = status(
        &docker,
        &[
            (&p, PostgresRole::Primary, None),
            (&r, PostgresRole::Standby, Some(&p)),
        ],
    );
    assert_eq!(
        check(
            &Drill::KillPrimary {
                retarget_barman: false
            },
            &docker,
            &now
        ),
        vec![]
    );
}

#[test]
fn the_chart_counts_each_write_in_the_step_its_answer_came() {
    use m1studio_shared::drill::write_series;
    assert_eq!(write_series(&[]), None);
    let writes = [
        write(1, -1050, -1001, Some("a")),
        write(2, -40, -1, Some("a")),
        write(3, 0, 0, None),
        write(4, 10, 99, None),
        write(5, 150, 250, None),
        write(6, 900, 1234, Some("b")),
    ];
    let series = write_series(&writes).unwrap();
    assert_eq!((series.from_ms, series.step_ms), (-1100, 100));
    assert_eq!(series.acknowledged.len(), 24, "from -1100 to 1299");
    assert_eq!(series.acknowledged[0], 1, "-1001 is in [-1100, -1000)");
    assert_eq!(series.acknowledged[10], 1, "-1 is in [-100, 0)");
    assert_eq!(series.refused[11], 2, "0 and 99 are in [0, 100)");
    assert_eq!(series.refused[13], 1, "250 is in [200, 300)");
    assert_eq!(series.acknowledged[23], 1, "1234 is in [1200, 1300)");
    assert_eq!(
        series.acknowledged.iter().sum::<u32>() + series.refused.iter().sum::<u32>(),
        6
    );
}

#[test]
fn m1_promotes_the_primary_s_replica_and_never_a_cascaded_one() {
    let c = configured("repmgr", 3, false);
    let [primary, replica] = [&c.topology.instances[0].name, &c.topology.instances[1].name];
    assert_eq!(
        promotion_target(&c, primary, None).as_deref(),
        Some(replica.as_str())
    );
    assert_eq!(
        promotion_target(&c, replica, None).as_deref(),
        Some(primary.as_str())
    );
    assert_eq!(
        promotion_target(&c, primary, Some("x")).as_deref(),
        Some("x"),
        "asked for, checked apart"
    );
}

#[test]
fn a_node_comes_back_as_m1_says() {
    let c = configured("repmgr", 1, false);
    let [old, new] = [&c.topology.instances[0].name, &c.topology.instances[1].name];
    assert_eq!(
        drill::comeback(&c, Kind::Primary, old, Some(new), false),
        drill::Comeback::Rejoin {
            primary: new.clone()
        },
        "an old primary never starts beside the new one"
    );
    assert_eq!(
        drill::comeback(&c, Kind::Primary, old, Some(new), true),
        drill::Comeback::Services(vec!["postgres", "repmgrd", "sshd"])
    );
    let p = configured("patroni", 1, false);
    assert_eq!(
        drill::comeback(&p, Kind::Primary, old, Some(new), false),
        drill::Comeback::Services(vec!["patroni"]),
        "Patroni rejoins its node itself"
    );
    let rejoin = drill::rejoin(&c, old, new, Profile::Fast);
    let nodes: Vec<&str> = rejoin
        .phases
        .iter()
        .flat_map(|p| p.steps.iter().map(|s| s.node.as_str()))
        .collect();
    assert_eq!(
        nodes,
        [
            old.as_str(),
            new.as_str(),
            old.as_str(),
            old.as_str(),
            old.as_str(),
            old.as_str()
        ],
        "a checkpoint on the new primary between"
    );
    // Rejoined, the old primary is the standby a failover would promote: its repmgrd checks
    // as often as the profile says before it starts (as the primary it checked every 5 s).
    let argvs: Vec<Vec<String>> = rejoin
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match &s.action {
            m1studio_shared::plan::Action::Run { argv, .. } => Some(argv.clone()),
            _ => None,
        })
        .collect();
    let interval = argvs
        .iter()
        .position(|a| a[0] == "sed")
        .expect("the interval is set");
    assert!(
        argvs[interval]
            .contains(&"s/^monitor_interval_secs=.*/monitor_interval_secs=1/".to_string()),
        "{:?}",
        argvs[interval]
    );
    let started = rejoin
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .position(|s| matches!(&s.action, m1studio_shared::plan::Action::Start { service } if service == "repmgrd"))
        .expect("repmgrd starts");
    let set = rejoin
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .position(|s| s.title.starts_with("check the primary as often"))
        .expect("the interval step");
    assert!(set < started, "set before repmgrd starts");
    assert!(
        drill::rejoin(&c, old, new, Profile::Safe)
            .phases
            .iter()
            .flat_map(|p| &p.steps)
            .any(|s| matches!(&s.action, m1studio_shared::plan::Action::Run { argv, .. } if argv.iter().any(|a| a.ends_with("monitor_interval_secs=2/"))))
    );

    // A switchover makes the old primary that standby too: it checks as often, and its
    // repmgrd rereads its configuration. Patroni needs nothing.
    let after = drill::after_switchover(&c, old, Profile::Fast).expect("a plan for repmgr");
    let steps: Vec<(&str, Vec<String>)> = after
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match &s.action {
            m1studio_shared::plan::Action::Run { argv, .. } => {
                Some((s.node.as_str(), argv.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps.iter().all(|(node, _)| *node == old.as_str()));
    assert_eq!(steps[0].1[0], "sed");
    assert_eq!(steps[1].1[1..], ["hup".to_string(), "repmgrd".to_string()]);
    assert!(drill::after_switchover(&p, old, Profile::Fast).is_none());
}

/// Drills recorded from real runs: the runner's debug log (`RUST_LOG=m1studio::drill=debug`),
/// one observation a line, with the drill and the report it gave in the first two lines.
#[test]
#[allow(clippy::disallowed_methods)] // reads the recorded fixtures
fn recorded_drills_replay_to_the_report_they_gave() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drills");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        let expected: DrillReport = serde_json::from_str(lines.next().unwrap()).unwrap();
        let observations: Vec<Observation> =
            lines.map(|l| serde_json::from_str(l).unwrap()).collect();
        let mut draft = Draft::starter();
        draft.failover_manager = header["fm"].as_str().map(str::to_string);
        draft.num_cascaded_replicas = header["n"].as_u64().map(|n| n.to_string());
        draft.synchronous = header["sync"].as_bool().unwrap_or(false);
        draft.enable_haproxy = header["haproxy"].as_bool().unwrap_or(false);
        let c = configure(&draft).0.unwrap();
        let drill: Drill = serde_json::from_value(header["drill"].clone()).unwrap();
        let planned = fault(&drill, &c, &expected.target).unwrap();
        let mut got = replay(planned, expected.number, &observations);
        got.fault_ms = expected.fault_ms;
        // The chart's series came after these recordings: it counts the same writes.
        let series = got
            .writes_over_time
            .take()
            .expect("a drill with writes has a chart");
        let sum = |column: &[u32]| column.iter().map(|&c| u64::from(c)).sum::<u64>();
        assert_eq!(sum(&series.acknowledged), expected.writes_acknowledged);
        assert_eq!(sum(&series.refused), expected.writes_failed);
        assert_eq!(got, expected, "{}", path.display());
        replayed += 1;
    }
    assert!(replayed >= 1, "no recorded drill in {}", dir.display());
}

#[test]
fn the_room_sees_the_primary_and_the_standbys_furthest_behind() {
    use m1studio_shared::api::{Live, bytes_text};
    let c = configured("repmgr", 2, false);
    let [kestrel, quartz, karma, quarry] = ["kestrel", "quartz", "karma", "quarry"];
    let mut healthy = status(
        &c,
        &[
            (kestrel, PostgresRole::Primary, None),
            (quartz, PostgresRole::Standby, Some(kestrel)),
            (karma, PostgresRole::Standby, Some(quartz)),
            (quarry, PostgresRole::Standby, Some(quartz)),
        ],
    );
    for node in &mut healthy.nodes {
        node.lag_bytes = match node.name.as_str() {
            "karma" => Some(24_576),
            "quartz" => Some(512),
            "kestrel" => None,
            _ => Some(0),
        };
    }
    let live = Live::of(&healthy, 3);
    assert_eq!(live.primary.as_deref(), Some(kestrel));
    assert_eq!((live.standbys, live.of), (3, 3));
    assert_eq!(live.lag_bytes, Some(24_576));
    assert_eq!(live.age_secs, 3);
    assert_eq!(live.summary(), "kestrel · 3/3 standbys · lag 24 kB");

    // The primary killed: no primary, one standby fewer, and what the others say.
    let failed = status(
        &c,
        &[
            (kestrel, PostgresRole::Down, None),
            (quartz, PostgresRole::Standby, Some(kestrel)),
            (karma, PostgresRole::Standby, Some(quartz)),
        ],
    );
    let live = Live::of(&failed, 0);
    assert_eq!(live.primary, None);
    assert_eq!((live.standbys, live.of), (2, 3));
    assert_eq!(live.summary(), "no primary · 2/3 standbys · lag 0 B");

    assert_eq!(bytes_text(999), "999 B");
    assert_eq!(bytes_text(1_000), "1 kB");
    assert_eq!(bytes_text(3_456_789), "3.4 MB");
}
