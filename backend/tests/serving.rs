//! The server as a process: what slow or many clients can hold, and how it stops.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `m1studio serve` on `port` with `extra` options, its store in `dir`, once it answers.
fn serve(dir: &std::path::Path, port: u16, extra: &[&str]) -> Child {
    let mut server = Command::new(env!("CARGO_BIN_EXE_m1studio"))
        .args(["--db", dir.join("m1studio.db").to_str().unwrap()])
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if get(port, "/healthz").is_ok_and(|a| a.contains("ok m1studio")) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = server.kill();
    let _ = server.wait();
    panic!("the server did not answer on port {port}");
}

/// The whole answer to `GET path`, over a new connection.
fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Sends SIGTERM to `child`.
fn terminate(child: &Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits up to `limit` for `child` to exit.
fn exited_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn clients_that_never_finish_their_headers_are_cut_off_and_cannot_crowd_others_out() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = serve(
        dir.path(),
        port,
        &["--max-connections", "16", "--header-timeout", "2"],
    );
    // Forty clients, more than the server holds at once, each sending half a request.
    let mut slow: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .unwrap();
            stream
        })
        .collect();
    // The first sixteen are cut off once their time to send headers is out; each read ends
    // (closed, or an answer saying the request timed out) rather than waiting for ever.
    let waiting = slow.split_off(16);
    let mut cut = 0;
    for mut stream in slow {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut buffer = Vec::new();
        match stream.read_to_end(&mut buffer) {
            Ok(_) => cut += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => cut += 1,
            Err(e) => panic!("a slow client was still held: {e}"),
        }
    }
    assert_eq!(cut, 16);
    // Others still get answers while the rest of the slow ones wait their turn.
    let answer = get(port, "/healthz").expect("an answer beside slow clients");
    assert!(answer.contains("ok m1studio"), "{answer}");
    drop(waiting);
    terminate(&server);
    assert!(
        exited_within(&mut server, Duration::from_secs(10)).is_some(),
        "the server stops on SIGTERM"
    );
}

#[test]
fn sigterm_stops_the_server_within_seconds_even_with_event_streams_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m1studio.db");
    {
        let store = m1studio::store::Store::open(&db).unwrap();
        let record = m1studio::store::Record {
            state: m1studio_shared::api::DeploymentState::Running,
            ..m1studio::store::Record::new("d1", "m1", m1studio_shared::Draft::starter())
        };
        store.insert(&record, &[]).unwrap();
    }
    let port = free_port();
    let mut server = serve(dir.path(), port, &[]);
    // Three pages following the deployment's events.
    let streams: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(
                stream,
                "GET /api/deployments/d1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut head = [0u8; 64];
            let n = stream.read(&mut head).unwrap();
            let head = String::from_utf8_lossy(&head[..n]).into_owned();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            stream
        })
        .collect();
    terminate(&server);
    let status = exited_within(&mut server, Duration::from_secs(10))
        .expect("the server stops within seconds of SIGTERM, streams and all");
    assert!(status.success(), "{status}");
    for mut stream in streams {
        let mut rest = Vec::new();
        // The stream ends: the server closed it.
        let _ = stream.read_to_end(&mut rest);
    }
}

#[test]
fn a_starting_server_takes_over_only_the_work_of_processes_that_stopped() {
    use m1studio_shared::api::{DeploymentState, Failure};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m1studio.db");
    let store = m1studio::store::Store::open(&db).unwrap();
    let deploying = |id: &str, cluster: &str, process: &str| m1studio::store::Record {
        state: DeploymentState::Deploying,
        process: Some(process.into()),
        ..m1studio::store::Record::new(id, cluster, m1studio_shared::Draft::starter())
    };
    // One deployment under way in a process that lives, one in a process long silent.
    store
        .insert(&deploying("live", "m1", "alive"), &[])
        .unwrap();
    store.insert(&deploying("gone", "m2", "dead"), &[]).unwrap();
    // The live one is this test's own process.
    let alive = std::process::id();
    store.heartbeat("alive", alive).unwrap();
    let port = free_port();
    let mut server = serve(dir.path(), port, &[]);
    let live = store.get("live").unwrap().unwrap();
    let gone = store.get("gone").unwrap().unwrap();
    // The command line, from a third process, leaves the live one's work alone too.
    let configure = Command::new(env!("CARGO_BIN_EXE_m1studio"))
        .args(["configure", "m1", "-a", "M1", "--postgresql", "15"])
        .args(["--enable-repmgr", "--platform", "docker"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(configure.status.success());
    let destroy = Command::new(env!("CARGO_BIN_EXE_m1studio"))
        .args(["--db", db.to_str().unwrap(), "destroy", "m1"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(live.state, DeploymentState::Deploying, "{live:?}");
    assert_eq!(gone.state, DeploymentState::Failed);
    assert_eq!(gone.failure, Some(Failure::Interrupted));
    let said = String::from_utf8_lossy(&destroy.stderr);
    assert!(!destroy.status.success(), "{said}");
    assert!(
        said.contains(&format!("another m1studio process (pid {alive})")),
        "{said}"
    );
    assert_eq!(
        store.get("live").unwrap().unwrap().state,
        DeploymentState::Deploying
    );
}
