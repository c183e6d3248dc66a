//! The import rules of ARCHITECTURE.md, enforced rather than trusted: where each outside
//! world may be touched from.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every file under `dir` (relative to the workspace) that mentions one of `words`, outside
/// the files `allowed`.
fn offenders(dir: &str, words: &[&str], allowed: &[&str]) -> Vec<String> {
    let root = root();
    sources(&root.join(dir))
        .into_iter()
        .filter_map(|path| {
            let relative = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if allowed.contains(&relative.as_str()) {
                return None;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let hits: Vec<&str> = words.iter().copied().filter(|w| text.contains(w)).collect();
            (!hits.is_empty()).then(|| format!("{relative}: {}", hits.join(", ")))
        })
        .collect()
}

#[test]
fn only_the_docker_target_and_the_agent_speak_to_the_engine() {
    let found = offenders(
        "backend/src",
        &["bollard"],
        &[
            "backend/src/target/docker/mod.rs",
            "backend/src/target/docker/destroy.rs",
            "backend/src/target/image.rs",
            "backend/src/agent.rs",
        ],
    );
    assert!(
        found.is_empty(),
        "bollard outside the Docker target: {found:?}"
    );
}

#[test]
fn the_runner_names_no_target() {
    // The runner carries out plans and drills on a `Target`; which machines those are (Docker's
    // containers, hosts over SSH) is the target's business.
    let found = offenders(
        "backend/src/runner",
        &[
            "DockerExecutor",
            "SshExecutor",
            "target::docker",
            "target::ssh",
            "bollard",
        ],
        &[],
    );
    assert!(found.is_empty(), "the runner names a target: {found:?}");
}

#[test]
fn no_backend_file_is_a_room_of_its_own() {
    // Past this, a file holds more than one concern: split it by what it does.
    const MOST_LINES: usize = 800;
    let long: Vec<String> = sources(&root().join("backend/src"))
        .into_iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            (lines > MOST_LINES).then(|| format!("{}: {lines} lines", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MOST_LINES} lines: {long:?}");
}

#[test]
fn the_shared_crate_knows_no_runtime_server_engine_or_browser() {
    let found = offenders(
        "shared/src",
        &[
            "tokio",
            "axum",
            "bollard",
            "rusqlite",
            "web_sys",
            "js_sys",
            "std::process",
            "std::net::Tcp",
        ],
        &[],
    );
    assert!(found.is_empty(), "IO in the shared crate: {found:?}");
}

#[test]
fn only_browser_rs_calls_browser_apis() {
    // Components name element types for Yew's event casts and spawn futures; everything that
    // reaches the browser itself (window, fetch, storage, clipboard, timers) is in browser.rs.
    let found = offenders(
        "frontend/src",
        &[
            "js_sys",
            "gloo",
            "web_sys::window",
            "window()",
            "web_sys::Request",
            "Storage",
            "Clipboard",
        ],
        &["frontend/src/browser.rs"],
    );
    assert!(
        found.is_empty(),
        "browser APIs outside browser.rs: {found:?}"
    );
}

#[test]
fn the_runner_decides_no_drill_itself() {
    // Which node is promoted, what a drill may do and what its moments mean live in
    // `m1studio_shared::drill`: the runner never reads a moment back from its sentence.
    let found = offenders(
        "backend/src/runner",
        &[
            ".what.starts_with",
            ".what.contains",
            "title.starts_with",
            "title.contains",
            "ends_with(\"follow",
        ],
        &[],
    );
    assert!(found.is_empty(), "decisions read from sentences: {found:?}");
}
