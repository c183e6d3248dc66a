//! Several processes writing one store at once, as a server and the command line do: every
//! event is kept, numbered without a gap or a repeat.

use m1studio::store::{Record, Store};
use m1studio_shared::api::{DeploymentState, EventKind};
use std::process::Command;

/// When set, this test binary is one of the writers: it appends this many events.
const WRITER: &str = "M1STUDIO_TEST_STORE_WRITER";
const EACH: usize = 200;
const WRITERS: usize = 6;

/// The writers' part: run by the test below in processes of their own.
#[test]
fn writer() {
    let (Ok(db), Ok(name)) = (std::env::var(WRITER), std::env::var("WRITER_NAME")) else {
        return; // Not started as a writer: the test below starts this one.
    };
    let store = Store::open(std::path::Path::new(&db)).unwrap();
    for i in 0..EACH {
        store
            .append(
                "d1",
                EventKind::Progress,
                None,
                &format!("{name} {i}"),
                None,
                None,
            )
            .unwrap();
    }
}

#[test]
fn events_from_several_processes_at_once_are_all_kept_in_one_numbering() {
    if std::env::var(WRITER).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m1studio.db");
    let store = Store::open(&db).unwrap();
    let record = Record {
        state: DeploymentState::Deploying,
        ..Record::new("d1", "m1", m1studio_shared::Draft::starter())
    };
    store.insert(&record, &[]).unwrap();
    let me = std::env::current_exe().unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            Command::new(&me)
                .args(["--exact", "writer", "--nocapture"])
                .env(WRITER, &db)
                .env("WRITER_NAME", format!("w{w}"))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut writer in writers {
        let status = writer.wait().unwrap();
        assert!(status.success(), "a writer failed: {status}");
    }
    let events = store.events("d1", 0).unwrap();
    assert_eq!(events.len(), WRITERS * EACH, "every event is kept");
    let numbers: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=(WRITERS * EACH) as u64).collect();
    assert_eq!(
        numbers, expected,
        "numbered 1, 2, 3 … without a gap or a repeat"
    );
    for w in 0..WRITERS {
        let mine: Vec<usize> = events
            .iter()
            .filter_map(|e| e.title.strip_prefix(&format!("w{w} ")))
            .map(|i| i.parse().unwrap())
            .collect();
        assert_eq!(
            mine,
            (0..EACH).collect::<Vec<_>>(),
            "writer {w}'s, in its order"
        );
    }
}
