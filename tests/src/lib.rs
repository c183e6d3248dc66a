//! Fixtures for end-to-end tests: the real `m1studio serve`, a plain static file server, and a
//! headless Chromium driven through chromedriver. Each cleans up after itself when dropped.

use anyhow::{Context as _, Result, bail};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Whether this run is CI's, where a missing browser is a failure rather than a skip.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Runs `body`, a test's work on the cluster of `executor`. Whether it fails with an error or
/// a panic (a failed `assert!`), the cluster is destroyed before the failure goes on, so that a
/// failed test leaves no network or container behind to trouble the next one.
pub async fn destroy_on_failure<T>(
    executor: &m1studio::target::docker::DockerExecutor,
    body: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    use futures_util::FutureExt as _;
    match std::panic::AssertUnwindSafe(body).catch_unwind().await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            let _ = executor.destroy().await;
            Err(err)
        }
        Err(panic) => {
            let _ = executor.destroy().await;
            std::panic::resume_unwind(panic)
        }
    }
}

/// The local Docker engine; without one, `None` after saying loudly that `what` did not run,
/// except on CI, where it is an error.
pub async fn docker_or_skip(what: &str) -> Result<Option<m1studio::target::docker::Docker>> {
    match m1studio::target::docker::connect().await {
        Ok(docker) => Ok(Some(docker)),
        Err(err) if !on_ci() => {
            eprintln!("\n!!! SKIPPED: no Docker engine ({err:#}); {what} did not run !!!\n");
            Ok(None)
        }
        Err(err) => Err(err).context("CI must have a Docker engine"),
    }
}

/// A free port on loopback.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The `m1studio` binary: `M1STUDIO_BIN`, or a debug build made once for this test process.
pub fn binary() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Ok(path) = std::env::var("M1STUDIO_BIN") {
        return Ok(PathBuf::from(path));
    }
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "m1studio"])
                .current_dir(root())
                .status()
                .map_err(|e| format!("cannot run cargo build: {e}"))?;
            if !status.success() {
                return Err(format!("cargo build -p m1studio failed: {status}"));
            }
            let target = std::env::var("CARGO_TARGET_DIR")
                .map_or_else(|_| root().join("target"), PathBuf::from);
            Ok(target.join("debug").join("m1studio"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Runs the real binary with `args` in `dir`, with its store in `dir` too.
pub fn m1studio(args: &[&str], dir: &Path) -> Result<std::process::Output> {
    Ok(Command::new(binary()?)
        .args(args)
        .current_dir(dir)
        .env("M1STUDIO_DB", dir.join("m1studio.db"))
        .output()?)
}

/// Runs `m1studio configure NAME -a M1` in `dir` for a repmgr design on Docker with
/// PostgreSQL 15 on `network`, followed by `extra` options.
pub fn configure_repmgr_on_docker(
    name: &str,
    network: &str,
    extra: &[&str],
    dir: &Path,
) -> Result<std::process::Output> {
    let mut options = vec![
        "--enable-repmgr",
        "--platform",
        "docker",
        "--network",
        network,
    ];
    options.extend_from_slice(extra);
    configure_pg15(name, &options, dir)
}

/// `m1studio configure NAME -a M1 --postgresql 15` with `options`, in `dir`.
pub fn configure_pg15(name: &str, options: &[&str], dir: &Path) -> Result<std::process::Output> {
    let mut args = vec!["configure", name, "-a", "M1", "--postgresql", "15"];
    args.extend_from_slice(options);
    m1studio(&args, dir)
}

/// One plain HTTP GET on loopback: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    http(addr, "GET", path, None)
}

/// One plain HTTP request on loopback, with an optional JSON body: the status code and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> Result<(u16, String)> {
    http_as(addr, method, path, json, None)
}

/// `http`, with `token` as the bearer token when given.
pub fn http_as(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
    token: Option<&str>,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(40)))?;
    let body = json.unwrap_or_default();
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} was not ready after {} s", timeout.as_secs())
}

/// A running `m1studio serve` on a free loopback port.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts the real binary with a store of its own, and waits for its health check; checks
    /// that it serves the designer.
    pub fn start() -> Result<Server> {
        let db = std::env::temp_dir().join(format!(
            "m1studio-e2e-{}-{}.db",
            std::process::id(),
            free_port()?
        ));
        Server::start_with_store(&db)
    }

    /// Starts the real binary on the store `db`. It runs one deployment at a time, so that
    /// a second one waits in the queue.
    pub fn start_with_store(db: &Path) -> Result<Server> {
        Server::start_with(db, &[], 1)
    }

    /// Starts the real binary on the store `db` with `extra` options, running `parallel`
    /// deployments at once.
    pub fn start_with(db: &Path, extra: &[&str], parallel: usize) -> Result<Server> {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let child = Command::new(binary()?)
            .args(["serve", "--listen", &addr.to_string()])
            .args(extra)
            .env("M1STUDIO_DB", db)
            .env("M1STUDIO_PARALLEL", parallel.to_string())
            .env_remove("M1STUDIO_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start m1studio serve")?;
        let server = Server { child, addr };
        wait_until("m1studio serve", Duration::from_secs(20), || {
            http_get(addr, "/healthz").is_ok_and(|(status, _)| status == 200)
        })?;
        let (status, body) = http_get(addr, "/")?;
        if status != 200 || !body.contains("m1studio") {
            bail!(
                "m1studio serve does not serve the designer ({status}): build it first with `cargo xtask test` or `trunk build --release`\n{body}"
            );
        }
        Ok(server)
    }

    /// The designer's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops the server as a service manager would (SIGTERM), and returns how long it took to
    /// exit, or an error if it had not within `limit`.
    pub fn stop(mut self, limit: std::time::Duration) -> Result<std::time::Duration> {
        let started = std::time::Instant::now();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -TERM failed");
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "the server exited with {status} on SIGTERM"
                );
                return Ok(started.elapsed());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        anyhow::bail!("the server had not stopped {limit:?} after SIGTERM")
    }

    /// Kills the server at once, as a crash would.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain static file server for dist/, with no health check and no API: any static host.
pub struct StaticHost {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StaticHost {
    /// Serves `dir` on a free loopback port, from a thread of its own.
    pub fn start(dir: PathBuf) -> Result<StaticHost> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = serve_file(stream, &dir);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(StaticHost { addr, stop })
    }

    /// The site's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for StaticHost {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn serve_file(mut stream: TcpStream, dir: &Path) -> Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = [0u8; 4096];
    let n = stream.read(&mut request)?;
    let request = String::from_utf8_lossy(&request[..n]);
    let path = request
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split(['?', '#'])
        .next()
        .unwrap_or("/");
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() || relative.contains("..") {
        "index.html"
    } else {
        relative
    };
    let (status, body) = match std::fs::read(dir.join(relative)) {
        Ok(body) => ("200 OK", body),
        Err(_) => ("404 Not Found", b"not found".to_vec()),
    };
    let mime = match relative.rsplit('.').next() {
        Some("html") => "text/html",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    Ok(())
}

/// A headless Chromium under chromedriver.
pub struct Browser {
    driver: Child,
    profile: PathBuf,
    /// The WebDriver session.
    pub client: fantoccini::Client,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium. Without them this is `Ok(None)` and says so
    /// loudly, except on CI, where it is an error.
    pub async fn start() -> Result<Option<Browser>> {
        let chromium = std::env::var_os("CHROME")
            .map(PathBuf::from)
            .or_else(|| find_program(&["chromium", "chromium-browser", "google-chrome"]));
        let driver = find_program(&["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let message = "Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)";
            if on_ci() {
                bail!("{message}: browser tests cannot be skipped on CI");
            }
            eprintln!("\n!!! SKIPPED: {message}; this browser test did not run !!!\n");
            return Ok(None);
        };
        let port = free_port()?;
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start chromedriver")?;
        let profile =
            std::env::temp_dir().join(format!("m1studio-chromium-{}-{port}", std::process::id()));
        let mut browser_guard = DriverGuard(Some(driver));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        wait_until("chromedriver", Duration::from_secs(20), || {
            TcpStream::connect(addr).is_ok()
        })?;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = fantoccini::ClientBuilder::native()
            .capabilities(capabilities)
            .connect(&format!("http://{addr}"))
            .await
            .context("cannot start a Chromium session")?;
        let driver = browser_guard.0.take().context("chromedriver is gone")?;
        Ok(Some(Browser {
            driver,
            profile,
            client,
        }))
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Kills chromedriver if the session never started.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reading and waiting on a page in the browser.
pub mod page {
    use anyhow::{Context as _, Result, bail};
    use fantoccini::Client;
    use serde_json::Value;
    use std::time::{Duration, Instant};

    /// Runs JavaScript `expression` and returns its value.
    pub async fn eval(client: &Client, expression: &str) -> Result<Value> {
        Ok(client
            .execute(&format!("return ({expression});"), vec![])
            .await?)
    }

    /// Waits until JavaScript `condition` is true.
    pub async fn wait_for(client: &Client, condition: &str) -> Result<()> {
        wait_for_within(client, condition, Duration::from_secs(15)).await
    }

    /// Waits up to `within` until JavaScript `condition` is true.
    pub async fn wait_for_within(client: &Client, condition: &str, within: Duration) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < within {
            if eval(client, condition).await? == Value::Bool(true) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let body = eval(client, "document.body.innerText")
            .await
            .unwrap_or_default();
        bail!(
            "timed out waiting for `{condition}`; the page shows:\n{}",
            body.as_str().unwrap_or_default()
        )
    }

    /// How many elements match `selector`.
    pub async fn count(client: &Client, selector: &str) -> Result<u64> {
        eval(
            client,
            &format!("document.querySelectorAll({selector:?}).length"),
        )
        .await?
        .as_u64()
        .context("a count")
    }

    /// Loads `url` afresh (a full load, even where only the fragment differs) and waits for the app.
    pub async fn open(client: &Client, url: &str) -> Result<()> {
        client.goto("about:blank").await?;
        client.goto(url).await?;
        wait_for(
            client,
            "document.querySelector('.app[data-ready]') !== null",
        )
        .await
    }
}

/// The most a kill of the primary may lose with asynchronous replication: the writes
/// acknowledged in the instant before it, which the standby had not yet received. A loss
/// reaching back a second or more would mean a lagging standby or a failover that dropped data.
pub const ASYNCHRONOUS_LOSS_MS: u64 = 1000;

/// Checks a kill drill's loss as the CLI and the page word it (`DrillReport::loss`): none, or
/// with asynchronous replication only the writes of the instant before the kill.
pub fn lost_only_in_flight(loss: &str) -> Result<()> {
    if loss.starts_with("0 (") {
        return Ok(());
    }
    let reach = loss
        .split_once("(replication is asynchronous: writes acknowledged up to ")
        .and_then(|(_, rest)| rest.split_once(" ms before the fault"))
        .and_then(|(ms, _)| ms.parse::<u64>().ok())
        .with_context(|| {
            format!("a loss without its reach, or with synchronous replication: {loss}")
        })?;
    anyhow::ensure!(
        reach < ASYNCHRONOUS_LOSS_MS,
        "acknowledged writes lost from {reach} ms before the fault: {loss}"
    );
    Ok(())
}

/// Checks that `node` refuses a write, as a standby does, rather than take it as a second primary.
pub async fn refuses_writes(
    executor: &m1studio::target::docker::DockerExecutor,
    node: &str,
) -> Result<()> {
    use m1studio::engine::Executor as _;
    let insert = "INSERT INTO m1studio_drill_writes (id) VALUES (-1)";
    let argv = m1studio::engine::argv(&["psql", "-XAtq", "-d", "postgres", "-c", insert]);
    let output = executor.run(node, &argv, "postgres", None).await?;
    if output.code == 0 || !output.stderr.contains("read-only transaction") {
        bail!(
            "{node} did not refuse a write as a standby: exit {}, {} {}",
            output.code,
            output.stdout,
            output.stderr
        );
    }
    Ok(())
}

pub mod rest {
    use anyhow::{Context as _, Result, bail};
    use serde_json::Value;
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    pub fn call(
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        call_as(addr, None, method, path, body)
    }

    /// `call`, with `token` as the bearer token when given.
    pub fn call_as(
        addr: SocketAddr,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let (status, text) = crate::http_as(
            addr,
            method,
            path,
            body.map(|b| b.to_string()).as_deref(),
            token,
        )?;
        let value =
            serde_json::from_str(&text).with_context(|| format!("{method} {path}: {text}"))?;
        Ok((status, value))
    }

    /// A GET that must succeed: its JSON body.
    pub fn get(addr: SocketAddr, path: &str) -> Result<Value> {
        let (status, body) = call(addr, "GET", path, None)?;
        if status != 200 {
            bail!("GET {path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// Polls the deployment's events until one matches, and returns it.
    /// Waits for the `nth` event (from 1) whose signal is `signal` (`report`, `promoted`,
    /// `barman_follows`, `rejoined` …).
    pub fn wait_for_signal(
        addr: SocketAddr,
        id: &str,
        within: Duration,
        signal: &str,
        nth: usize,
    ) -> Result<Value> {
        let seen = std::cell::Cell::new(0);
        wait_for_event(addr, id, within, |e| {
            if e["signal"] == signal {
                seen.set(seen.get() + 1);
            }
            seen.get() == nth && e["signal"] == signal
        })
    }

    /// The moments of a drill report's timeline of kind `kind` (a signal's name).
    pub fn moments<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
        report["timeline"]
            .as_array()
            .map(|t| t.iter().filter(|m| m["kind"] == kind).collect())
            .unwrap_or_default()
    }

    pub fn wait_for_event(
        addr: SocketAddr,
        id: &str,
        within: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let started = Instant::now();
        let mut after = 0;
        while started.elapsed() < within {
            let (status, events) = call(
                addr,
                "GET",
                &format!("/api/deployments/{id}/events?after={after}&wait=5"),
                None,
            )?;
            assert_eq!(status, 200, "{events}");
            for event in events.as_array().context("events are a list")? {
                after = event["seq"].as_u64().context("seq")?;
                if event["kind"] == "failed"
                    || (event["kind"] == "state" && event["title"] == "failed")
                {
                    bail!("the deployment failed: {event}");
                }
                if matches(event) {
                    return Ok(event.clone());
                }
            }
        }
        bail!("no such event within {} s", within.as_secs())
    }
}

/// Existing hosts for bare designs: containers of the node image prepared as an administrator
/// prepares a machine (sshd running, a key authorised for root), and the binary run where they
/// are reachable.
pub mod hosts {
    use crate::{binary, destroy_on_failure};
    use anyhow::{Context as _, Result, ensure};
    use m1studio::engine::{Executor as _, argv};
    use m1studio::target::docker::{self, DockerExecutor};
    use m1studio_shared::plan::File;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// `m1studio ARGS` run where the Docker engine's containers are reachable: inside the engine's
    /// network namespace when it runs in one of its own (as `.ci/docker-engine` starts it).
    pub fn m1studio_near_the_engine(args: &[&str], dir: &Path) -> Result<std::process::Output> {
        let ours = std::fs::read_link("/proc/self/ns/net")?;
        let engine = std::fs::read_to_string("/var/run/docker.pid")
            .ok()
            .map(|pid| format!("/proc/{}/ns/net", pid.trim()));
        let mut command = match engine.filter(|ns| std::fs::read_link(ns).is_ok_and(|n| n != ours))
        {
            Some(ns) => {
                let mut command = Command::new("nsenter");
                command.arg(format!("--net={ns}")).arg("--").arg(binary()?);
                command
            }
            None => Command::new(binary()?),
        };
        Ok(command
            .args(args)
            .current_dir(dir)
            .env("M1STUDIO_DB", dir.join("m1studio.db"))
            .output()?)
    }

    /// What a command printed, both streams.
    pub fn said(output: &std::process::Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// Machines for the instances of `draft`, on `network`, made from the node image, each running
    /// sshd with a new key of the test's (in `dir`) authorised for root: existing hosts as an
    /// administrator prepares them. Returns them, their design as containers, and the key.
    pub async fn prepared_hosts(
        engine: docker::Docker,
        mut draft: m1studio_shared::Draft,
        network: &str,
        dir: &Path,
    ) -> Result<(DockerExecutor, m1studio_shared::Configured, PathBuf)> {
        let name = format!(
            "hosts{}{}",
            std::process::id() % 100000,
            network.split('.').nth(1).unwrap_or_default()
        );
        draft.cluster_name = name.clone();
        draft.platform = Some("docker".into());
        draft.network = Some(network.to_string());
        let hosts = m1studio_shared::configure(&draft)
            .0
            .context("the hosts' design")?;
        let image = m1studio_shared::plan::node_image(&hosts.design, None)
            .map_err(|d| anyhow::anyhow!(d.message))?;
        if !m1studio::target::image::image_exists(&engine, &image.tag).await {
            eprintln!("building the node image {}", image.tag);
            m1studio::target::image::build_image(&engine, &image, &|line| eprintln!("  {line}"))
                .await?;
        }
        let machines = DockerExecutor::new(engine, &name);
        let key = dir.join("id_ed25519");
        if !key.exists() {
            let keygen = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key)
                .output()
                .context("ssh-keygen (Debian's openssh-client)")?;
            ensure!(keygen.status.success(), "{}", said(&keygen));
        }
        let public = std::fs::read_to_string(dir.join("id_ed25519.pub"))?;
        destroy_on_failure(&machines, async {
            let authorized = File {
                path: "/root/.ssh/authorized_keys".into(),
                owner: "root".into(),
                mode: 0o600,
                content: public,
            };
            let files = hosts
                .topology
                .instances
                .iter()
                .map(|i| (i.name.clone(), vec![authorized.clone()]))
                .collect();
            machines
                .create(&hosts.topology, network, &image, &[], &files, &[])
                .await?;
            machines.all_started().await?;
            for instance in &hosts.topology.instances {
                for words in [
                    &["ssh-keygen", "-A"][..],
                    &["install", "-d", "-m", "0755", "/run/sshd"],
                    &["/usr/sbin/sshd"],
                ] {
                    let out = machines
                        .run(&instance.name, &argv(words), "root", None)
                        .await?;
                    ensure!(
                        out.code == 0,
                        "{words:?} on {}: {}",
                        instance.name,
                        out.stderr
                    );
                }
            }
            anyhow::Ok(())
        })
        .await?;
        Ok((machines, hosts, key))
    }

    /// `m1studio configure NAME` of a bare design with PostgreSQL 15 whose hosts are those of
    /// `hosts.txt` in `dir` (`hostnames_file`), with `extra` options (the failover manager…).
    pub fn configure_bare(name: &str, extra: &[&str], dir: &Path) -> Result<std::process::Output> {
        let mut options = vec!["--platform", "bare", "--hostnames-from", "hosts.txt"];
        options.extend_from_slice(extra);
        crate::configure_pg15(name, &options, dir)
    }

    /// A `--hostnames-from` file in `dir` that gives each of `hosts`' instances its address.
    pub fn hostnames_file(hosts: &m1studio_shared::Configured, dir: &Path) -> Result<()> {
        let text: String = hosts
            .topology
            .instances
            .iter()
            .map(|i| format!("{} {}\n", i.name, i.ip_address.expect("a host address")))
            .collect();
        Ok(std::fs::write(dir.join("hosts.txt"), text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use m1studio_shared::api::DrillReport;

    fn loss(writes_lost: u64, rpo_ms: u64, synchronous: bool) -> String {
        let report: DrillReport = serde_json::from_value(serde_json::json!({
            "number": 1, "action": "kill-primary", "target": "kestrel", "fault_ms": 0,
            "writes_acknowledged": 30, "writes_failed": 2, "writes_lost": writes_lost,
            "rpo_ms": rpo_ms, "synchronous": synchronous, "timeline": [], "finished": true
        }))
        .unwrap();
        report.loss().unwrap()
    }

    #[test]
    fn only_a_loss_of_the_instant_before_the_kill_passes() {
        assert!(lost_only_in_flight(&loss(0, 0, false)).is_ok());
        assert!(lost_only_in_flight(&loss(0, 0, true)).is_ok());
        assert!(lost_only_in_flight(&loss(1, 3, false)).is_ok());
        let far = lost_only_in_flight(&loss(12, 1500, false)).unwrap_err();
        assert!(
            far.to_string().contains("from 1500 ms before the fault"),
            "{far}"
        );
        // With synchronous replication nothing acknowledged may be lost at all.
        assert!(lost_only_in_flight(&loss(1, 3, true)).is_err());
        assert!(lost_only_in_flight("not counted").is_err());
    }
}
