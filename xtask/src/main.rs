//! Project automation, in Rust: `cargo xtask run`, `test`, `bench` and `fuzz`.
//! Each step says what it runs, and tools that are missing are installed first.

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "\
Usage: cargo xtask <command>

Commands:
  run [ARGS…]        build the designer and m1studio (release), then run `m1studio serve`
                     (or `m1studio ARGS…`); installs Trunk, wasm-bindgen and wasm-opt when missing
  dist               build the designer into dist/ only
  test               every check and test: formatting, clippy, unit, snapshot, property, CLI and
                     browser tests, the shared crate on wasm32, and a short fuzzing run
  bench              the model's criterion benchmarks, the designer's bundle size, load and render times
  bench-deploy       deploy times (1 and 8 cascaded replicas) and every drill's recovery on Docker
  bench-deploy kills N MANAGER
                     N kills of a synchronous repmgr or patroni cluster's primary: rows lost
  bench-deploy deploys N
                     N deployments each of the default design and of 8 cascaded replicas
  bench-deploy bare N
                     N deployments of the default design over SSH on fresh prepared hosts
  bench-deploy idle N [patroni]
                     N idle default clusters (or Patroni with HAProxy) side by side: CPU per
                     second and memory each, and each node's CPU to deploy, by its kind
  bench-workshop N   N attendees through the HTTP API of a release server: join, deploy the same
                     link, a two-step scenario, destroy; /healthz and status latencies throughout
  bench-input        expensive designs and config.yml files against a release server: each
                     answer's time and size, and /healthz's latency meanwhile
  fuzz [SECONDS]     fuzz the link decoder, the config.yml reader and the command-line parser
                     (SECONDS each, default 60; needs a nightly toolchain and cargo-fuzz)
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = root();
    std::env::set_current_dir(&root).context("cannot enter the workspace")?;
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("dist") => build_designer(),
        Some("test") => test(),
        Some("bench") => bench(),
        Some("bench-workshop") => {
            let count = args.get(1).map_or("10", String::as_str);
            against_release_server("workshop-bench", &[count])
        }
        Some("bench-input") => against_release_server("input-bench", &[]),
        Some("bench-deploy") => {
            let mut command = vec![
                "run",
                "--release",
                "-p",
                "m1studio-e2e",
                "--bin",
                "deploy-bench",
                "--",
            ];
            command.extend(args[1..].iter().map(String::as_str));
            cargo(&command)
        }
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
    build_designer()?;
    step("building m1studio (release, with the designer inside)");
    cargo(&["build", "--release", "-p", "m1studio"])?;
    let binary = root().join("target/release/m1studio");
    let serve = ["serve".to_string()];
    let args = if args.is_empty() { &serve[..] } else { args };
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

/// The tool versions Trunk must find, read from Trunk.toml (the one place they are written).
fn tool_version(key: &str) -> Result<String> {
    let text =
        std::fs::read_to_string(root().join("Trunk.toml")).context("cannot read Trunk.toml")?;
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .with_context(|| format!("Trunk.toml has no {key}"))
}

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where this project keeps tools installed from npm.
fn tools_bin() -> PathBuf {
    root().join("target/tools/node_modules/.bin")
}

/// Installs the exact Trunk, wasm-bindgen and wasm-opt this build needs, when they are missing,
/// and returns a PATH that finds them first.
fn ensure_web_tools() -> Result<std::ffi::OsString> {
    ensure_wasm_target()?;
    const TRUNK: &str = "0.21.14";
    if !output_of("trunk", &["--version"]).is_some_and(|v| v.contains(TRUNK)) {
        step(&format!("installing Trunk {TRUNK} (once; several minutes)"));
        cargo(&["install", "--locked", "trunk", "--version", TRUNK])?;
    }
    let bindgen = tool_version("wasm_bindgen")?;
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap_or_default();
    if !lock.contains(&format!("name = \"wasm-bindgen\"\nversion = \"{bindgen}\"")) {
        bail!(
            "Cargo.lock's wasm-bindgen differs from Trunk.toml's wasm_bindgen = \"{bindgen}\": make them equal (and the pin in frontend/Cargo.toml)"
        );
    }
    if !output_of("wasm-bindgen", &["--version"]).is_some_and(|v| v.contains(&bindgen)) {
        step(&format!("installing wasm-bindgen-cli {bindgen} (once)"));
        cargo(&["install", "wasm-bindgen-cli", "--version", &bindgen])?;
    }
    let opt = tool_version("wasm_opt")?;
    let opt_number = opt.trim_start_matches("version_");
    let wasm_opt = tools_bin().join("wasm-opt");
    let have = output_of(&wasm_opt.display().to_string(), &["--version"]);
    if !have.is_some_and(|v| v.contains(&format!("version {opt_number}"))) {
        step(&format!(
            "installing wasm-opt (binaryen {opt_number}) from npm into target/tools"
        ));
        let prefix = root().join("target/tools");
        std::fs::create_dir_all(&prefix)?;
        exec(
            "npm",
            &[
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                &prefix.display().to_string(),
                &format!("binaryen@{opt_number}.0.0"),
            ],
        )?;
    }
    let mut paths = vec![tools_bin()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    Ok(std::env::join_paths(paths)?)
}

/// Builds the designer into dist/ with Trunk, using only the tools installed here.
fn build_designer() -> Result<()> {
    let path = ensure_web_tools()?;
    step("building the designer (trunk build --release)");
    let started = Instant::now();
    let status = Command::new("trunk")
        .args(["build", "--release", "--offline"])
        .env("PATH", path)
        .status()
        .context("cannot start trunk")?;
    if !status.success() {
        bail!("trunk build failed ({status})");
    }
    eprintln!("    ({} s)", started.elapsed().as_secs());
    precompress(&root().join("dist"))
}

/// Writes each text and WebAssembly file of `dir` also compressed, as `NAME.br` (brotli, best)
/// and `NAME.gz` (gzip, best), for the server to send to browsers that accept them.
fn precompress(dir: &std::path::Path) -> Result<()> {
    step("compressing the designer's files (brotli and gzip, once at build time)");
    let started = Instant::now();
    let (mut raw, mut brotli_total) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let compressible = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "wasm" | "js" | "css" | "html" | "svg"));
        if !compressible {
            continue;
        }
        let data = std::fs::read(&path)?;
        let mut brotli = Vec::new();
        let params = brotli::enc::BrotliEncoderParams {
            quality: 11,
            lgwin: 22,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut data.as_slice(), &mut brotli, &params)?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gzip, &data)?;
        let gzip = gzip.finish()?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        std::fs::write(dir.join(format!("{name}.br")), &brotli)?;
        std::fs::write(dir.join(format!("{name}.gz")), &gzip)?;
        raw += data.len();
        brotli_total += brotli.len();
    }
    eprintln!(
        "    {} KB, {} KB with brotli ({:.1} s)",
        raw / 1024,
        brotli_total / 1024,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The sizes of the designer's WebAssembly, raw and gzipped.
fn bundle_size() -> Result<(u64, u64)> {
    let wasm = std::fs::read_dir(root().join("dist"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .context("dist/ has no .wasm: build the designer first")?;
    let raw = std::fs::metadata(&wasm)?.len();
    let gz = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(&wasm)
        .output()
        .context("cannot run gzip")?;
    Ok((raw, gz.stdout.len() as u64))
}

fn bench() -> Result<()> {
    step("model benchmarks (criterion)");
    cargo(&["bench", "-p", "m1studio-shared", "--bench", "model"])?;
    build_designer()?;
    let (raw, gz) = bundle_size()?;
    step("designer bundle");
    println!(
        "designer wasm: {} KB raw, {} KB gzipped",
        raw / 1024,
        gz / 1024
    );
    step("designer load and render times (headless Chromium)");
    cargo(&[
        "run",
        "--release",
        "-p",
        "m1studio-e2e",
        "--bin",
        "ui-bench",
    ])
}

/// Builds the release server, then runs the bench program `bench` of the e2e crate against it,
/// with `args`.
fn against_release_server(bench: &str, args: &[&str]) -> Result<()> {
    step("the release server (cargo build --release -p m1studio)");
    cargo(&["build", "--release", "-p", "m1studio"])?;
    let status = Command::new("cargo")
        .args([
            "run",
            "--release",
            "-p",
            "m1studio-e2e",
            "--bin",
            bench,
            "--",
        ])
        .args(args)
        .env("M1STUDIO_BIN", root().join("target/release/m1studio"))
        .status()
        .context("cannot start cargo")?;
    if !status.success() {
        bail!("{bench} failed ({status})");
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
    build_designer()?;
    step("tests (cargo test --workspace)");
    let (passed, failed) = cargo_test(&["test", "--workspace"])?;
    step("the release binary carries the designer");
    cargo(&["build", "--release", "-p", "m1studio"])?;
    release_embeds_designer()?;
    step("fuzzing smoke run (20 s a target)");
    fuzz(20)?;
    eprintln!("\nall checks passed in {} s", started.elapsed().as_secs());
    println!("tests: {passed} passed, {failed} failed");
    Ok(())
}

/// Checks that every file of dist/ is inside the release binary, byte for byte, so that the
/// binary alone serves the designer.
fn release_embeds_designer() -> Result<()> {
    let binary = std::fs::read(root().join("target/release/m1studio"))
        .context("reading the release binary")?;
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("dist"))?.flatten() {
        let content = std::fs::read(entry.path())?;
        let probe = &content[..content.len().min(4096)];
        if !binary.windows(probe.len()).any(|w| w == probe) {
            bail!(
                "the release binary does not contain {}: rebuild it after building the designer",
                entry.path().display()
            );
        }
        checked += 1;
    }
    if checked == 0 {
        bail!("dist/ is empty: build the designer first");
    }
    eprintln!("    all {checked} files of dist/ are inside target/release/m1studio");
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
