//! The store's own tests.
use super::*;

fn record(id: &str, cluster: &str) -> Record {
    Record::new(id, cluster, Draft::starter())
}

#[test]
fn work_under_way_belongs_to_a_process_while_it_gives_signs_of_life() {
    let store = Store::in_memory().unwrap();
    let mut deploying = record("d1", "m1");
    deploying.state = DeploymentState::Deploying;
    deploying.process = Some("p1".into());
    store.insert(&deploying, &[]).unwrap();
    assert_eq!(
        store.live_owner(&deploying, now_ms()).unwrap(),
        None,
        "a process that never said it lives owns nothing"
    );
    store.heartbeat("p1", 4242).unwrap();
    assert_eq!(store.live_owner(&deploying, now_ms()).unwrap(), Some(4242));
    let later = now_ms() + PRESUMED_DEAD.as_millis() as u64 + 1;
    assert_eq!(
        store.live_owner(&deploying, later).unwrap(),
        None,
        "silent for too long: taken for dead"
    );
    store
        .set_state("d1", DeploymentState::Failed, Some((Failure::Step, "no")))
        .unwrap();
    let failed = store.get("d1").unwrap().unwrap();
    assert_eq!(failed.failure, Some(Failure::Step));
    assert_eq!(failed.process, None, "finished work has no process");
    store.forget_process("p1").unwrap();
}

#[test]
fn the_store_s_directory_and_secret_files_are_their_owner_s_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("made").join("m1studio.db");
    Store::open(&path).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&path), 0o600);
    // A file of secrets others can read is refused, and so is a link in its place.
    let secrets = dir.path().join("secrets.json");
    write_private(&secrets, "{}").unwrap();
    assert_eq!(mode(&secrets), 0o600);
    check_private(&secrets).unwrap();
    assert!(
        write_private(&secrets, "{}").is_err(),
        "never over an existing file"
    );
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = check_private(&secrets).unwrap_err().to_string();
    assert!(refused.contains("chmod 600"), "{refused}");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&secrets, &link).unwrap();
    assert!(
        check_private(&link)
            .unwrap_err()
            .to_string()
            .contains("symbolic link")
    );
}

#[test]
fn a_file_store_keeps_deployments_events_and_secrets_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("m1studio.db");
    {
        let store = Store::open(&path).unwrap();
        store
            .insert(&record("d1", "m1"), &[("postgres", "s3cret")])
            .unwrap();
        store
            .append("d1", EventKind::Phase, None, "write files", None, None)
            .unwrap();
        let second = store
            .append(
                "d1",
                EventKind::Finished,
                Some("kestrel"),
                "initdb",
                Some("1.2 s"),
                Some(Signal::Rejoined),
            )
            .unwrap();
        assert_eq!(second.seq, 2);
        store
            .set_state("d1", DeploymentState::Running, None)
            .unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the store holds passwords");
    }
    let store = Store::open(&path).unwrap();
    let got = store.get("d1").unwrap().unwrap();
    assert_eq!(got.state, DeploymentState::Running);
    assert_eq!(got.draft, Draft::starter());
    let events = store.events("d1", 1).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Finished);
    assert_eq!(events[0].signal, Some(Signal::Rejoined), "signals are kept");
    assert_eq!(events[0].node.as_deref(), Some("kestrel"));
    assert_eq!(
        store.secrets("d1").unwrap(),
        vec![("postgres".to_string(), "s3cret".to_string())]
    );
}

#[test]
fn one_live_deployment_per_cluster_name_and_destroyed_ones_forget_their_passwords() {
    let store = Store::in_memory().unwrap();
    store
        .insert(&record("d1", "m1"), &[("postgres", "x")])
        .unwrap();
    match store.insert(&record("d2", "m1"), &[]) {
        Err(InsertError::Conflict(existing)) => assert_eq!(existing.id, "d1"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    store
        .set_state("d1", DeploymentState::Destroyed, None)
        .unwrap();
    assert!(store.secrets("d1").unwrap().is_empty());
    store.insert(&record("d2", "m1"), &[]).unwrap();
    assert_eq!(store.list().unwrap().len(), 2);
    assert_eq!(store.live_by_cluster("", "m1").unwrap().unwrap().id, "d2");
}

#[test]
fn deployments_made_before_tpas_numbering_keep_theirs() {
    use m1studio_shared::spec::Numbering;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m1studio.db");
    // A store as the version before wrote it: five migrations, one deployment.
    let mut connection = Connection::open(&path).unwrap();
    for migration in &MIGRATIONS[..5] {
        connection.execute_batch(migration).unwrap();
    }
    connection.pragma_update(None, "user_version", 5).unwrap();
    let old = serde_json::to_string(&Draft::starter()).unwrap();
    let tx = connection.transaction().unwrap();
    tx.execute(
        "INSERT INTO deployments (id, cluster, state, profile, draft, created_ms, updated_ms) VALUES ('d1', 'm1', 'running', 'fast', ?1, 1, 1)",
        [&old],
    )
    .unwrap();
    tx.commit().unwrap();
    drop(connection);
    let store = Store::open(&path).unwrap();
    let before = store.get("d1").unwrap().unwrap();
    assert_eq!(before.draft.numbering, Numbering::BarmanLast);
    let configured = m1studio_shared::configure(&before.draft).0.unwrap();
    let barman = configured
        .topology
        .of_kind(m1studio_shared::Kind::Barman)
        .next()
        .unwrap();
    assert_eq!(
        (barman.node, barman.name.as_str()),
        (4, "karma"),
        "the cluster keeps its Barman, its name and its number"
    );
    // A new deployment is numbered as TPA does.
    store.insert(&record("d2", "m2"), &[]).unwrap();
    assert_eq!(
        store.get("d2").unwrap().unwrap().draft.numbering,
        Numbering::Tpa
    );
}

#[test]
fn a_store_from_a_newer_version_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m1studio.db");
    let connection = Connection::open(&path).unwrap();
    connection.pragma_update(None, "user_version", 99).unwrap();
    drop(connection);
    let err = format!("{:#}", Store::open(&path).unwrap_err());
    assert!(err.contains("newer m1studio"), "{err}");
}

#[test]
fn a_store_path_that_is_not_a_store_is_refused_and_left_as_it_is() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "precious\n").unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refusal = |path: &std::path::Path| match Store::open(path) {
        Ok(_) => panic!("{} was opened as a store", path.display()),
        Err(e) => format!("{e:#}"),
    };
    let err = refusal(&other);
    assert!(err.contains("not an m1studio store"), "{err}");
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&other, &link).unwrap();
    let err = refusal(&link);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "precious\n");
    assert_eq!(
        std::fs::metadata(&other).unwrap().permissions().mode() & 0o777,
        0o644,
        "its mode is untouched"
    );
    // A new store is its owner's alone from its first byte, and opens again.
    let new = dir.path().join("m1studio.db");
    Store::open(&new).unwrap();
    assert_eq!(
        std::fs::metadata(&new).unwrap().permissions().mode() & 0o777,
        0o600
    );
    Store::open(&new).unwrap();
}
