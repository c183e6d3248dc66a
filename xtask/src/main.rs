//! Project automation, in Rust: `cargo xtask run`, `test`, `bench` and `fuzz`.
//! Each step says what it runs, and tools that are missing are installed first.

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "\
Usage: cargo xtask <command>

Commands:
  run [ARGS…]        build and run m1studio (default: configure an example cluster into target/example)
  test               every check and test: formatting, clippy, unit, snapshot, property and CLI tests,
                     the shared crate on wasm32, and a short fuzzing run
  bench              the criterion benchmarks of the model
  fuzz [SECONDS]     fuzz the link decoder, the config.yml reader and the command-line parser
                     (SECONDS each, default 60; needs a nightly toolchain and cargo-fuzz)
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = root();
    std::env::set_current_dir(&root).context("cannot enter the workspace")?;
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(),
        Some("bench") => cargo(&["bench", "-p", "m1studio-shared", "--bench", "model"]),
        Some("fuzz") => {
            let seconds = args
                .get(1)
                .map_or(Ok(60), |s| s.parse::<u32>())
                .context("SECONDS must be a whole number")?;
            fuzz(seconds)
        }
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other}\n\n{USAGE}"),
    }
}

/// The workspace root: the parent of this crate.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn step(title: &str) {
    eprintln!("\n==> {title}");
}

/// Runs `program args`, failing with the command line when it fails.
fn exec(program: &str, args: &[&str]) -> Result<()> {
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot start {program}: is it installed?"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    eprintln!("    ({} s)", started.elapsed().as_secs());
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    exec("cargo", args)
}

/// Runs `cargo args` (a test run), echoing its output, and adds up the passed and failed
/// tests of every `test result:` line.
fn cargo_test(args: &[&str]) -> Result<(u64, u64)> {
    use std::io::{BufRead as _, BufReader};
    let started = Instant::now();
    let mut child = Command::new("cargo")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start cargo")?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("cannot read the test output")?;
            println!("{line}");
            if let Some(result) = line.strip_prefix("test result: ") {
                for part in result.split([';', '.']) {
                    let mut words = part.split_whitespace();
                    match (
                        words.next().and_then(|n| n.parse::<u64>().ok()),
                        words.next(),
                    ) {
                        (Some(n), Some("passed")) => passed += n,
                        (Some(n), Some("failed")) => failed += n,
                        _ => {}
                    }
                }
            }
        }
    }
    let status = child.wait().context("cargo did not finish")?;
    if !status.success() {
        println!("tests: {passed} passed, {failed} failed");
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    eprintln!("    ({} s)", started.elapsed().as_secs());
    Ok((passed, failed))
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
        .unwrap_or(false);
    if !installed {
        step("installing the wasm32-unknown-unknown target");
        exec("rustup", &["target", "add", "wasm32-unknown-unknown"])?;
    }
    Ok(())
}

fn run(args: &[String]) -> Result<()> {
    step("building m1studio");
    cargo(&["build", "--release", "-p", "m1studio"])?;
    let binary = root().join("target/release/m1studio");
    let example: Vec<String> = [
        "configure",
        "target/example/m1",
        "--architecture",
        "M1",
        "--postgresql",
        "15",
        "--failover-manager",
        "repmgr",
        "--platform",
        "docker",
        "--force",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let args = if args.is_empty() { &example[..] } else { args };
    step(&format!("m1studio {}", args.join(" ")));
    let status = Command::new(binary)
        .args(args)
        .status()
        .context("cannot start m1studio")?;
    if !status.success() {
        bail!("m1studio exited with {status}");
    }
    Ok(())
}

fn test() -> Result<()> {
    let started = Instant::now();
    step("formatting (cargo fmt --check)");
    cargo(&["fmt", "--all", "--check"])?;
    step("lints (cargo clippy -D warnings)");
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    step("the shared crate builds for wasm32-unknown-unknown");
    ensure_wasm_target()?;
    cargo(&[
        "build",
        "-p",
        "m1studio-shared",
        "--target",
        "wasm32-unknown-unknown",
    ])?;
    step("tests (cargo test --workspace)");
    let (passed, failed) = cargo_test(&["test", "--workspace"])?;
    step("fuzzing smoke run (20 s a target)");
    fuzz(20)?;
    eprintln!("\nall checks passed in {} s", started.elapsed().as_secs());
    println!("tests: {passed} passed, {failed} failed");
    Ok(())
}

/// The fuzz targets, each with its seed folder.
const FUZZ_TARGETS: &[&str] = &["link_decode", "config_read", "command_line"];

fn fuzz(seconds: u32) -> Result<()> {
    if !succeeds("cargo", &["+nightly", "--version"]) {
        step("installing the nightly toolchain for fuzzing");
        exec(
            "rustup",
            &["toolchain", "install", "nightly", "--profile", "minimal"],
        )?;
    }
    if !succeeds("cargo", &["fuzz", "--version"]) {
        step("installing cargo-fuzz");
        cargo(&["install", "--locked", "cargo-fuzz"])?;
    }
    for target in FUZZ_TARGETS {
        step(&format!("fuzzing {target} for {seconds} s"));
        // cargo-fuzz runs the target from fuzz/, so the folders are given whole.
        let corpus = root().join("fuzz/corpus").join(target);
        let seeds = root().join("fuzz/seeds").join(target);
        std::fs::create_dir_all(&corpus).context("cannot create the fuzz corpus folder")?;
        let time = format!("-max_total_time={seconds}");
        let (corpus, seeds) = (corpus.display().to_string(), seeds.display().to_string());
        exec(
            "cargo",
            &[
                "+nightly",
                "fuzz",
                "run",
                target,
                &corpus,
                &seeds,
                "--",
                &time,
                "-max_len=4096",
            ],
        )?;
    }
    Ok(())
}
