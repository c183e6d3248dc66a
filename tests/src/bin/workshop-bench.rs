//! A workshop of N attendees through the HTTP API of the real server on the real Docker engine:
//! each joins with the trainer's code and deploys the trainer's link (the default design) at
//! once; once all run, the trainer runs a two-step scenario (kill the primary, then start the
//! old primary again) on every cluster; then every cluster is destroyed. Throughout, a prober
//! asks `/healthz` and one attendee's status ten times a second. Prints the time until every
//! cluster ran, the scenario's results, failures, and the probes' latencies (p50, p99, max).
//! Run by `cargo xtask bench-workshop N`.

use anyhow::{Context as _, Result, bail};
use m1studio_e2e::Server;
use m1studio_e2e::rest::call_as;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SCENARIO: &str = "name: kill and come back\nsteps:\n  - at: 0\n    action: kill-primary\n  - at: 45\n    action: start\n    node: old-primary\n";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

fn report(what: &str, samples: &Mutex<Vec<f64>>) {
    let mut samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    samples.sort_by(f64::total_cmp);
    println!(
        "{what}: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(f64::NAN)
    );
}

fn main() -> Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .context("give the number of attendees")?
        .parse()
        .context("N must be a whole number")?;
    let dir = std::env::temp_dir().join(format!("m1studio-bench-workshop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let server = Server::start_with(
        &dir.join("m1studio.db"),
        &[
            "--workshop",
            "bench",
            "--max-attendees",
            "1000",
            "--address-pool",
            "10.160.0.0/16",
            "--max-clusters",
            "200",
        ],
        count.clamp(1, 64),
    )?;
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("workshop-bench.json"))?)?;
    let code = kept["code"].as_str().context("code")?.to_string();
    let trainer = kept["trainer_token"].as_str().context("token")?.to_string();
    let addr = server.addr;

    let mut attendees = Vec::new();
    for i in 0..count {
        let (status, joined) = call_as(
            addr,
            None,
            "POST",
            "/api/join",
            Some(json!({ "code": code, "name": format!("attendee {i}") })),
        )?;
        if status != 201 {
            bail!("join {i}: {status} {joined}");
        }
        attendees.push(joined["token"].as_str().context("token")?.to_string());
    }

    // The prober: /healthz, and the first attendee's status once it has a deployment.
    let stop = Arc::new(AtomicBool::new(false));
    let health = Arc::new(Mutex::new(Vec::new()));
    let status = Arc::new(Mutex::new(Vec::new()));
    let watched = Arc::new(Mutex::new(None::<String>));
    let prober = {
        let (stop, health, status, watched, token) = (
            stop.clone(),
            health.clone(),
            status.clone(),
            watched.clone(),
            attendees[0].clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                if m1studio_e2e::http_get(addr, "/healthz").is_ok_and(|(s, _)| s == 200)
                    && let Ok(mut h) = health.lock()
                {
                    h.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                let id = watched.lock().ok().and_then(|w| w.clone());
                if let Some(id) = id {
                    let started = Instant::now();
                    if call_as(
                        addr,
                        Some(&token),
                        "GET",
                        &format!("/api/deployments/{id}/status"),
                        None,
                    )
                    .is_ok_and(|(s, _)| s == 200)
                        && let Ok(mut s) = status.lock()
                    {
                        s.push(started.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let link = "v=1&name=m1&pg=15&fm=repmgr&platform=docker";
    let started = Instant::now();
    let submitted: Vec<Result<(u16, Value)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = attendees
            .iter()
            .map(|token| {
                scope.spawn(move || {
                    call_as(
                        addr,
                        Some(token),
                        "POST",
                        "/api/deployments",
                        Some(json!({ "link": link, "profile": "fast" })),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a thread"))
            .collect()
    });
    let mut ids = Vec::new();
    let mut failures = 0;
    for (token, answer) in attendees.iter().zip(submitted) {
        let (code, deployment) = answer?;
        if code != 202 {
            eprintln!("a deployment was refused: {code} {deployment}");
            failures += 1;
            continue;
        }
        ids.push((
            deployment["id"].as_str().context("id")?.to_string(),
            token.clone(),
        ));
    }
    if let (Ok(mut w), Some((id, _))) = (watched.lock(), ids.first()) {
        *w = Some(id.clone());
    }
    let mut running_after = Vec::new();
    let mut waiting: Vec<(String, String)> = ids.clone();
    while !waiting.is_empty() && started.elapsed() < Duration::from_secs(900) {
        let mut still = Vec::new();
        for (id, token) in waiting {
            let (_, deployment) = call_as(
                addr,
                Some(&token),
                "GET",
                &format!("/api/deployments/{id}"),
                None,
            )?;
            match deployment["state"].as_str() {
                Some("running") => running_after.push(started.elapsed().as_secs_f64()),
                Some("failed") => {
                    eprintln!("deployment {id} failed: {}", deployment["error"]);
                    failures += 1;
                }
                _ => still.push((id, token)),
            }
        }
        waiting = still;
        std::thread::sleep(Duration::from_millis(500));
    }
    failures += waiting.len();
    running_after.sort_by(f64::total_cmp);
    println!(
        "{count} attendees: {} clusters running, the first after {:.1} s, all after {:.1} s",
        running_after.len(),
        running_after.first().copied().unwrap_or(f64::NAN),
        running_after.last().copied().unwrap_or(f64::NAN)
    );

    let (code, run) = call_as(
        addr,
        Some(&trainer),
        "POST",
        "/api/scenarios",
        Some(json!({ "yaml": SCENARIO })),
    )?;
    if code != 202 {
        bail!("the scenario was refused: {code} {run}");
    }
    let run_id = run["id"].as_str().context("run id")?.to_string();
    let scenario_started = Instant::now();
    let results = loop {
        let (_, results) = call_as(
            addr,
            Some(&trainer),
            "GET",
            &format!("/api/scenarios/{run_id}"),
            None,
        )?;
        if results["finished"] == true || scenario_started.elapsed() > Duration::from_secs(900) {
            break results;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let mut recoveries: Vec<f64> = Vec::new();
    for row in results["rows"].as_array().into_iter().flatten() {
        for step in row["steps"].as_array().into_iter().flatten() {
            if !step["error"].is_null() {
                eprintln!("a scenario step failed: {step}");
                failures += 1;
            }
            if let Some(ms) = step["rto_ms"].as_u64() {
                recoveries.push(ms as f64 / 1000.0);
            }
        }
    }
    recoveries.sort_by(f64::total_cmp);
    println!(
        "scenario on {} clusters in {:.1} s: writes back after {:.1} s (median), {:.1} s (max)",
        results["rows"].as_array().map_or(0, Vec::len),
        scenario_started.elapsed().as_secs_f64(),
        percentile(&recoveries, 0.5),
        recoveries.last().copied().unwrap_or(f64::NAN)
    );

    let destroying = Instant::now();
    for (id, token) in &ids {
        let (code, body) = call_as(
            addr,
            Some(token),
            "DELETE",
            &format!("/api/deployments/{id}"),
            None,
        )?;
        if code != 200 {
            eprintln!("destroy {id}: {code} {body}");
            failures += 1;
        }
    }
    println!("destroyed in {:.1} s", destroying.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    let _ = prober.join();
    report("GET /healthz throughout", &health);
    report("GET status throughout", &status);
    println!("failures: {failures}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    if failures > 0 {
        bail!("{failures} failures");
    }
    Ok(())
}
