//! Expensive input against the real server: a design with 155,003 host names (5,000 of them
//! invalid, 3 repeated), a config.yml nested 100,000 deep in brackets, and one nested 100,000
//! deep in block lists, each sent twice at once to `/api/designs/check`, while a prober asks
//! `/healthz` every 10 ms. Prints each answer's time and size, and the probes' latencies.
//! Run by `cargo xtask bench-input`.

use anyhow::{Result, ensure};
use m1studio_e2e::{Server, http_as};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("m1studio-bench-input-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let server = Server::start_with(&dir.join("m1studio.db"), &[], 2)?;
    let mut names: Vec<String> = (0..150_000).map(|i| format!("h{i}")).collect();
    names.extend((0..5_000).map(|i| format!("BAD_{i}")));
    names.extend((0..3).map(|i| format!("h{i}")));
    let hosts = json!({ "draft": {
        "architecture": "M1", "cluster_name": "m1", "platform": "docker",
        "postgres_version": "15", "failover_manager": "repmgr", "hostnames": names,
    }})
    .to_string();
    let brackets = json!({ "config_yml": format!(
        "cluster_name: m1\narchitecture: M1\nx: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    )})
    .to_string();
    let blocks = json!({ "config_yml": format!(
        "cluster_name: m1\narchitecture: M1\nx:\n{}a\n",
        "- ".repeat(100_000)
    )})
    .to_string();
    let addr = server.addr;
    let done = Arc::new(AtomicBool::new(false));
    let probes = Arc::new(Mutex::new(Vec::<f64>::new()));
    let prober = {
        let (done, probes) = (done.clone(), probes.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                if http_as(addr, "GET", "/healthz", None, None).is_ok_and(|(s, _)| s == 200) {
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    if let Ok(mut probes) = probes.lock() {
                        probes.push(ms);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let inputs = [
        ("155,003 host names", hosts),
        ("config.yml, 100,000 brackets deep", brackets),
        ("config.yml, 100,000 block lists deep", blocks),
    ];
    let answers: Vec<_> = inputs
        .iter()
        .flat_map(|(what, body)| [(what, body), (what, body)])
        .map(|(what, body)| {
            let (what, body) = (what.to_string(), body.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let answer = http_as(addr, "POST", "/api/designs/check", Some(&body), None);
                (what, started.elapsed(), answer)
            })
        })
        .collect();
    for answer in answers {
        let (what, took, answer) = answer
            .join()
            .map_err(|_| anyhow::anyhow!("a request thread panicked"))?;
        let (status, body) = match answer {
            Ok(answer) => answer,
            Err(e) => {
                println!(
                    "{what}: no answer after {:.0} ms ({e})",
                    took.as_secs_f64() * 1000.0
                );
                continue;
            }
        };
        ensure!(status == 200, "{what}: {status} {body}");
        let diagnostics = serde_json::from_str::<serde_json::Value>(&body)?["diagnostics"]
            .as_array()
            .map_or(0, Vec::len);
        println!(
            "{what}: answered in {:.0} ms, {} bytes, {diagnostics} diagnostics",
            took.as_secs_f64() * 1000.0,
            body.len()
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    let _ = prober.join();
    let mut probes = probes.lock().map(|p| p.clone()).unwrap_or_default();
    probes.sort_by(f64::total_cmp);
    let at = |p: f64| probes[((probes.len() as f64 - 1.0) * p).round() as usize];
    ensure!(!probes.is_empty(), "no probe answered");
    println!(
        "/healthz meanwhile: {} probes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        probes.len(),
        at(0.5),
        at(0.99),
        probes[probes.len() - 1]
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
