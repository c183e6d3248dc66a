//! Measures the designer in headless Chromium: navigation to a usable page, and the time from
//! an edit to the page showing it with 32 cascaded replicas. Run by `cargo xtask bench`.

use anyhow::{Context as _, Result, bail};
use fantoccini::{Client, Locator};
use m1studio_e2e::{Browser, Server};
use std::time::{Duration, Instant};

async fn number(client: &Client, expression: &str) -> Result<f64> {
    let started = Instant::now();
    loop {
        let value = client
            .execute(&format!("return ({expression});"), vec![])
            .await?;
        if let Some(n) = value
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .or_else(|| value.as_f64())
        {
            return Ok(n);
        }
        if started.elapsed() > Duration::from_secs(15) {
            bail!("{expression} never became a number");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn report(what: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: median {:.1} ms, p90 {:.1} ms, max {:.1} ms over {} runs",
        at(0.5),
        at(0.9),
        at(1.0),
        samples.len()
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let server = Server::start()?;
    let browser = Browser::start()
        .await?
        .context("the benchmark needs Chromium and chromedriver")?;
    let c = &browser.client;

    let mut loads = Vec::new();
    for _ in 0..10 {
        c.goto("about:blank").await?;
        c.goto(&server.url()).await?;
        loads.push(number(c, "document.documentElement.getAttribute('data-ready-ms')").await?);
    }
    report("navigation to usable page", loads);

    let cascaded = c.find(Locator::Id("cascaded")).await?;
    cascaded.clear().await?;
    cascaded.send_keys("32").await?;
    let grown = "document.querySelectorAll('#diagram .node.cascaded-replica').length";
    while number(c, grown).await? < 32.0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut renders = Vec::new();
    for i in 0..40 {
        c.execute(
            "document.documentElement.removeAttribute('data-render-ms')",
            vec![],
        )
        .await?;
        let owner = c.find(Locator::Id("owner")).await?;
        owner
            .send_keys(&((b'a' + (i % 26) as u8) as char).to_string())
            .await?;
        renders.push(number(c, "document.documentElement.getAttribute('data-render-ms')").await?);
    }
    report("edit to rendered page, 32 cascaded replicas", renders);
    let value = c
        .execute(
            "return document.querySelectorAll('#diagram .node').length",
            vec![],
        )
        .await?;
    if value != 35 {
        bail!("expected 35 nodes on the diagram, found {value}");
    }
    browser.close().await;
    Ok(())
}
