//! The real `m1studio` binary: configure writes config.yml or nothing, check reads it back.

use std::path::Path;
use std::process::{Command, Output};

fn m1studio(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_m1studio"))
        .args(args)
        .current_dir(cwd)
        .env_remove("M1STUDIO_URL")
        .output()
        .expect("the binary runs")
}

/// Configures the starter design (PostgreSQL 15, repmgr, docker) as cluster m1 in `dir`.
fn configure_starter(dir: &Path) {
    let args = [
        "configure",
        "m1",
        "-a",
        "M1",
        "--postgresql",
        "15",
        "--enable-repmgr",
        "--platform",
        "docker",
    ];
    let out = m1studio(&args, dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn configure_writes_config_yml_and_prints_the_share_link() {
    let tmp = tempfile::tempdir().unwrap();
    let out = m1studio(
        &[
            "configure",
            "clusters/m1",
            "--architecture",
            "M1",
            "--postgresql",
            "15",
            "--failover-manager",
            "repmgr",
            "--platform",
            "docker",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("wrote clusters/m1/config.yml (4 instances)"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("share: http://127.0.0.1:8080/#v=2&name=m1&pg=15&fm=repmgr&platform=docker"),
        "{stdout}"
    );
    let config = std::fs::read_to_string(tmp.path().join("clusters/m1/config.yml")).unwrap();
    assert!(
        config.starts_with("---\narchitecture: M1\ncluster_name: m1\n"),
        "{config}"
    );
    let entries: Vec<_> = std::fs::read_dir(tmp.path().join("clusters/m1"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1, "only config.yml is left behind");
    // A fresh vault for a new directory, kept when the directory is configured again.
    let vault = |config: &str| {
        config
            .lines()
            .find_map(|l| l.strip_prefix("vault_name: "))
            .map(str::to_string)
            .expect("a vault_name")
    };
    let first = vault(&config);
    assert_eq!(first.len(), 36, "{first}");
    let again = m1studio(
        &[
            "configure",
            "clusters/m1",
            "--architecture",
            "M1",
            "--postgresql",
            "15",
            "--failover-manager",
            "patroni",
            "--platform",
            "docker",
            "--force",
        ],
        tmp.path(),
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    let config = std::fs::read_to_string(tmp.path().join("clusters/m1/config.yml")).unwrap();
    assert_eq!(vault(&config), first, "re-configuring keeps the vault");
    assert!(config.contains("failover_manager: patroni"), "{config}");
    let other = m1studio(
        &[
            "configure",
            "clusters/m2",
            "-a",
            "M1",
            "--postgresql",
            "15",
            "--enable-repmgr",
            "--platform",
            "docker",
        ],
        tmp.path(),
    );
    assert!(other.status.success());
    let config = std::fs::read_to_string(tmp.path().join("clusters/m2/config.yml")).unwrap();
    assert_ne!(vault(&config), first, "each directory has its own");
}

#[test]
fn check_reads_a_file_tpaexec_wrote_as_a_design_and_gives_its_link() {
    let tmp = tempfile::tempdir().unwrap();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tests/fixtures/tpa/legacy-docker-repmgr-c1.yml");
    let out = m1studio(&["check", &file.display().to_string()], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stderr.contains(
            "warning[placement-differs] instances[2].location: node 3 (barman) is in 'main'"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("warning[config-role-ignored]"), "{stderr}");
    assert!(
        stdout.contains("is a valid M1 configuration (0 errors, 5 warnings)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("same as, but with every node in the M1 layout's location: m1studio configure legacy-docker-repmgr-c1 --architecture M1 --postgresql 14 --failover-manager repmgr --platform docker --hostnames-from hostnames.txt"),
        "{stdout}"
    );
    assert!(stdout.contains("&at=0001"), "{stdout}");
}

#[test]
fn a_tpaexec_command_line_pasted_into_configure_works_with_notes_or_says_what_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    // As the architecture's documentation writes it, with TPA's own extras.
    let out = m1studio(
        &[
            "configure",
            "m1",
            "--architecture",
            "M1",
            "--platform",
            "aws",
            "--region",
            "eu-west-1",
            "--instance-type",
            "t3.micro",
            "--distribution",
            "Debian",
            "--postgresql",
            "14",
            "--failover-manager",
            "repmgr",
            "--no-git",
            "--keyring-backend",
            "legacy",
            "--barman-volume-size",
            "64",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "info[option-ignored] options: --no-git is tpaexec's, and changes nothing here"
        ),
        "{stderr}"
    );
    let config = std::fs::read_to_string(tmp.path().join("m1/config.yml")).unwrap();
    assert!(config.contains("keyring_backend: legacy\n"), "{config}");
    assert!(
        config.contains("      volume_for: barman_data\n    volume_size: 64\n"),
        "{config}"
    );
    // What m1studio cannot honour is refused, with the reason, and nothing is written.
    let out = m1studio(
        &[
            "configure",
            "m2",
            "-a",
            "M1",
            "--postgresql",
            "14",
            "--enable-repmgr",
            "--enable-pem",
            "--install-from-source",
            "postgres",
            "repmgr",
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "error[option-unsupported] options: --enable-pem cannot be honoured by m1studio"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("--install-from-source cannot be honoured by m1studio: m1studio installs every component from packages"),
        "{stderr}"
    );
    assert!(!tmp.path().join("m2").exists(), "nothing was written");
}

#[test]
fn configure_reports_every_problem_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = m1studio(
        &[
            "configure",
            "m1",
            "-a",
            "M1",
            "--postgresql",
            "99",
            "--enable-haproxy",
            "--platform",
            "docker",
            "--region",
            "eu-west-1",
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    for expected in [
        "error[version-out-of-range] postgres_version: Postgres version 99 is not supported",
        "error[failover-manager-missing] failover_manager:",
        "error[haproxy-needs-patroni] enable_haproxy: HAProxy can only be enabled together with Patroni (--failover-manager patroni)",
        "error[aws-only-option] region: --region applies only to --platform aws",
        "nothing was written (4 errors, 0 warnings)",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !tmp.path().join("m1").exists(),
        "nothing is created on error"
    );
}

#[test]
fn configure_refuses_a_non_empty_directory_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("m1")).unwrap();
    std::fs::write(tmp.path().join("m1/notes.txt"), "mine").unwrap();
    let args = [
        "configure",
        "m1",
        "-a",
        "M1",
        "--postgresql",
        "15",
        "--enable-patroni",
        "--enable-haproxy",
    ];
    let out = m1studio(&args, tmp.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("m1 exists and is not empty: choose a new directory, or add --force"),
        "{}",
        text(&out.stderr)
    );
    assert!(!tmp.path().join("m1/config.yml").exists());
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = m1studio(&forced, tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(tmp.path().join("m1/config.yml").exists());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("m1/notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn configure_help_lists_the_options_grouped_with_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let out = m1studio(&["configure", "--architecture", "M1", "--help"], tmp.path());
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("Mandatory options"), "{help}");
    assert!(help.contains("Additional options"));
    assert!(help.contains("--num-cascaded-replicas N"));
    assert!(help.contains("[default: eu-west-1]"));
    assert!(help.contains("--edb-postgres-extended, --pgextended, --edbpge VERSION"));
}

#[test]
fn configure_reads_hostnames_from_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("names"), "one\ntwo\nthree\nfour\n").unwrap();
    let out = m1studio(
        &[
            "configure",
            "m1",
            "-a",
            "M1",
            "--postgresql",
            "15",
            "--enable-repmgr",
            "--hostnames-from",
            "names",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = std::fs::read_to_string(tmp.path().join("m1/config.yml")).unwrap();
    assert!(config.contains("Name: four\n"), "{config}");
    let out = m1studio(
        &[
            "configure",
            "m2",
            "-a",
            "M1",
            "--postgresql",
            "15",
            "--enable-repmgr",
            "--hostnames-from",
            "nope",
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot read the --hostnames-from file 'nope'"));
}

#[test]
fn check_reads_back_what_configure_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let out = m1studio(
        &[
            "configure",
            "lab",
            "-a",
            "M1",
            "--postgresql",
            "17",
            "--enable-patroni",
            "--enable-haproxy",
            "--platform",
            "docker",
            "--num-cascaded-replicas",
            "2",
        ],
        tmp.path(),
    );
    assert!(out.status.success());
    let out = m1studio(&["check", "lab"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("lab/config.yml is a valid M1 configuration (0 errors, 0 warnings)"),
        "{stdout}"
    );
    assert!(stdout.contains("same as: m1studio configure lab --architecture M1 --postgresql 17 --failover-manager patroni --platform docker --num-cascaded-replicas 2 --enable-haproxy"), "{stdout}");
}

#[test]
fn check_reports_a_broken_topology_with_places_in_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    configure_starter(tmp.path());
    let path = tmp.path().join("m1/config.yml");
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("backup: uplift", "backup: quartz")
        .replace("upstream: kestrel", "upstream: ghost");
    std::fs::write(&path, config).unwrap();
    let out = m1studio(&["check", "m1/config.yml"], tmp.path());
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error[config-backup-not-barman] instances[0].backup"),
        "{stderr}"
    );
    assert!(stderr.contains("error[config-upstream-unknown] instances[1].upstream: instance 'quartz' has upstream 'ghost', but no instance has that Name"), "{stderr}");
    assert!(
        stderr.contains("has problems (2 errors, 0 warnings)"),
        "{stderr}"
    );
}

#[test]
fn check_of_a_missing_file_says_what_to_give() {
    let tmp = tempfile::tempdir().unwrap();
    let out = m1studio(&["check", "nowhere"], tmp.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("nowhere does not exist: give a cluster directory that holds a config.yml")
    );
}

#[test]
fn unknown_commands_fail_with_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let out = m1studio(&["conjure"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unrecognized subcommand 'conjure'"));
}

#[test]
fn serve_refuses_to_listen_beyond_loopback_without_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_m1studio"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("M1STUDIO_TOKEN")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("needs a token"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plan_shows_files_and_steps_with_placeholders_for_passwords() {
    let tmp = tempfile::tempdir().unwrap();
    configure_starter(tmp.path());
    let out = m1studio(&["plan", "m1", "--profile", "fast"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("# ==> kestrel:/etc/repmgr.conf (postgres, 644)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("reconnect_attempts=1\n"),
        "the demo profile"
    );
    assert!(
        stdout.contains("3. Clone the replica, quartz, from the primary, and the cascaded replicas from quartz once it is registered, all at once; start Barman on uplift and back up kestrel"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "[karma] quartz is registered: after [quartz] the registration reached the standby"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("[uplift (check)] barman check is green"),
        "{stdout}"
    );
    assert!(stdout.contains("${secret:repmgr}"));
    let out = m1studio(&["plan", "m1", "--json"], tmp.path());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(plan["nodes"].as_array().unwrap().len(), 4);
}

#[test]
fn plan_shows_patroni_and_refuses_what_cannot_be_deployed_yet() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(
        m1studio(
            &[
                "configure",
                "p",
                "-a",
                "M1",
                "--postgresql",
                "15",
                "--enable-patroni",
                "--platform",
                "docker"
            ],
            tmp.path()
        )
        .status
        .success()
    );
    let out = m1studio(&["plan", "p"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("start etcd") && text(&out.stdout).contains("start patroni"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        m1studio(
            &[
                "configure",
                "e",
                "-a",
                "M1",
                "--epas",
                "16",
                "--redwood",
                "--enable-repmgr",
                "--platform",
                "docker"
            ],
            tmp.path()
        )
        .status
        .success()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_m1studio"))
        .args(["plan", "e"])
        .current_dir(tmp.path())
        .env_remove("EDB_SUBSCRIPTION_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("set EDB_SUBSCRIPTION_TOKEN"),
        "{}",
        text(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_m1studio"))
        .args(["plan", "e"])
        .current_dir(tmp.path())
        .env("EDB_SUBSCRIPTION_TOKEN", "a-token")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("error[deploy-unsupported]"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_scenario_is_checked_before_it_runs_and_needs_running_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m1studio.db");
    let db = db.to_str().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "name: ''\nsteps:\n  - at: 30\n    action: kill-primary\n  - at: 10\n    action: fly\n",
    )
    .unwrap();
    let out = m1studio(&["--db", db, "scenario", "run", "bad.yml"], dir.path());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for path in ["name", "steps[1]"] {
        assert!(
            said.contains(&format!("error[scenario-invalid] {path}:")),
            "{said}"
        );
    }
    assert!(said.contains("nothing was run"), "{said}");
    let out = m1studio(
        &["--db", db, "scenario", "run", "--preset", "nap"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[scenario-invalid] preset:"));
    // A valid preset, but no cluster runs in this store.
    let out = m1studio(
        &[
            "--db",
            db,
            "scenario",
            "run",
            "--preset",
            "kill the primary",
        ],
        dir.path(),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("no cluster is running"), "{said}");
}

#[test]
fn the_server_speaks_https_with_the_certificate_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl makes a test certificate (Debian's openssl package)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_m1studio"))
        .args(["--db", dir.path().join("m1studio.db").to_str().unwrap()])
        .args([
            "serve",
            "--listen",
            &listen,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let curl = |url: &str, extra: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert", cert.to_str().unwrap()])
            .args(extra)
            .arg(url)
            .output()
            .expect("curl runs (Debian's curl package)")
    };
    let mut answer = None;
    for _ in 0..100 {
        let out = curl(&format!("https://127.0.0.1:{port}/healthz"), &[]);
        if out.status.success() {
            answer = Some(String::from_utf8_lossy(&out.stdout).into_owned());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let plain = curl(&format!("http://127.0.0.1:{port}/healthz"), &[]);
    let headers = curl(
        &format!("https://localhost:{port}/api/deployments"),
        &["-D", "-", "-o", "/dev/null"],
    );
    let _ = server.kill();
    let _ = server.wait();
    let answer = answer.expect("an answer over HTTPS, its certificate checked");
    assert!(answer.starts_with("ok m1studio "), "{answer}");
    assert!(
        !plain.status.success() || !String::from_utf8_lossy(&plain.stdout).starts_with("ok"),
        "no plain HTTP on the TLS port"
    );
    let headers = String::from_utf8_lossy(&headers.stdout).to_lowercase();
    assert!(
        headers.starts_with("http/") && headers.contains(" 200"),
        "{headers}"
    );
    assert!(headers.contains("x-frame-options: deny"), "{headers}");
}

#[test]
fn image_build_refuses_versions_it_cannot_build_before_touching_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let out = m1studio(
        &[
            "image",
            "build",
            "--postgresql",
            "9,15",
            "--failover-manager",
            "repmgr,heartbeat",
        ],
        dir.path(),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("error[version-out-of-range] postgres_version:"),
        "{said}"
    );
    assert!(said.contains("failover_manager:"), "{said}");
    assert!(said.contains("nothing was built"), "{said}");
}

#[test]
fn configure_never_writes_through_a_link_left_in_the_cluster_directory() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("lab");
    std::fs::create_dir_all(&cluster).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, cluster.join(".config.yml.partial")).unwrap();
    let out = m1studio(
        &[
            "configure",
            "lab",
            "-a",
            "M1",
            "--postgresql",
            "15",
            "--enable-repmgr",
            "--platform",
            "docker",
            "--force",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "the link's target is untouched"
    );
    assert!(
        std::fs::read_to_string(cluster.join("config.yml"))
            .unwrap()
            .contains("cluster_name: lab")
    );
    assert!(!cluster.join(".config.yml.partial").exists());
}
