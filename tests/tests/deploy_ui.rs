//! The designer's deploy flow in a real headless Chromium against the real server and a real
//! Docker engine: refused designs show their diagnostics, then a design is deployed with
//! progress per node, its live status is drawn on the diagram, the primary is killed from the
//! page and the timeline shows the failover, and the cluster is destroyed; then a deployment is
//! stopped and destroyed while under way.

use anyhow::{Context as _, Result};
use fantoccini::Locator;
use m1studio::target::docker::DockerExecutor;
use m1studio_e2e::page::{count, eval, open, wait_for, wait_for_within};
use m1studio_e2e::{
    Browser, Server, destroy_on_failure, docker_or_skip, http_get, lost_only_in_flight,
};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_design_is_deployed_watched_broken_and_destroyed_from_the_page() -> Result<()> {
    let Some(docker) = docker_or_skip("the deploy flow in the browser").await? else {
        return Ok(());
    };
    let server = Server::start()?;
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    let cluster = format!("ui{}", std::process::id() % 100000);
    let executor = DockerExecutor::new(docker, &cluster);

    let result = destroy_on_failure(&executor, async {
        // A design the runner cannot deploy: the page lists why, and nothing is created.
        open(c, &format!("{}#v=2&name={cluster}&pg=16&fm=repmgr&platform=docker", server.url())).await?;
        wait_for(c, "document.querySelector('#deploy-button') !== null && !document.querySelector('#deploy-button').disabled").await?;
        c.find(Locator::Id("deploy-button")).await?.click().await?;
        wait_for(c, "document.querySelector('#deploy-error [data-code=\"deploy-unsupported\"]') !== null").await?;
        let error = c.find(Locator::Id("deploy-error")).await?.text().await?;
        assert!(error.contains("apt repository"), "{error}");
        assert!(executor.containers().await?.is_empty());

        // A bare design goes to its hosts over SSH, which this server was not given the means
        // for: it refuses with the platform's diagnostic, and nothing is created.
        open(c, &format!("{}#v=2&name={cluster}&pg=15&fm=repmgr&platform=bare", server.url())).await?;
        wait_for(c, "document.querySelector('#deploy-button') !== null && !document.querySelector('#deploy-button').disabled").await?;
        c.find(Locator::Id("deploy-button")).await?.click().await?;
        wait_for(c, "document.querySelector('#deploy-error [data-code=\"deploy-unsupported\"]') !== null").await?;
        let error = c.find(Locator::Id("deploy-error")).await?.text().await?;
        assert!(error.contains("--ssh-key"), "{error}");
        assert!(executor.containers().await?.is_empty());

        // The real design: progress per node, then running.
        open(c, &format!("{}#v=2&name={cluster}&pg=15&fm=repmgr&platform=docker&net=10.214.0.0%2F24", server.url())).await?;
        wait_for(c, "document.querySelector('#deploy-button') !== null && !document.querySelector('#deploy-button').disabled").await?;
        c.find(Locator::Id("deploy-button")).await?.click().await?;
        wait_for_within(c, "document.querySelector('#deploy-progress tr.done') !== null", Duration::from_secs(300)).await?;
        assert_eq!(count(c, "#deploy-progress tbody tr").await?, 4, "a row per node");
        wait_for(c, "document.querySelector('#deploy-phase') !== null").await?;
        wait_for_within(c, "document.querySelector('#deployment[data-state=running]') !== null", Duration::from_secs(120)).await?;

        // Live status on the diagram: the primary, two standbys, Barman.
        wait_for(c, "document.querySelector('#live-diagram[data-primary=kestrel]') !== null && document.querySelectorAll('#live-diagram .live-standby').length === 2").await?;
        let read_write = c.find(Locator::Id("conn-read-write")).await?.text().await?;
        assert!(read_write.contains("10.214.0.2:5432,10.214.0.3:5432,10.214.0.5:5432") && read_write.contains("target_session_attrs=read-write"), "{read_write}");

        // Kill the primary from the page (Barman left behind); the diagram and the timeline
        // follow the failover, and the drill's report counts the writes.
        c.find(Locator::Id("retarget-after")).await?.click().await?;
        wait_for(c, "document.getElementById('retarget-after').checked === false").await?;
        c.find(Locator::Id("kill-primary")).await?.click().await?;
        wait_for(c, "document.getElementById('timeline').innerText.includes('killed the primary kestrel')").await?;
        wait_for_within(c, "document.getElementById('timeline').innerText.includes('quartz is the new primary')", Duration::from_secs(60)).await?;
        wait_for_within(c, "document.querySelector('#live-diagram[data-primary=quartz]') !== null", Duration::from_secs(20)).await?;
        wait_for(c, "document.querySelector('#live-diagram .node.is-down[data-name=kestrel]') !== null").await?;
        wait_for_within(c, "document.querySelector('#drill-report[data-finished=true]') !== null", Duration::from_secs(60)).await?;
        let lost = c.find(Locator::Id("report-lost")).await?.text().await?;
        lost_only_in_flight(&lost)?;
        let acknowledged = c.find(Locator::Id("report-acknowledged")).await?.text().await?;
        assert!(acknowledged.parse::<u64>().is_ok_and(|n| n > 0), "{acknowledged}");
        // The drill drawn: acknowledged writes before and after, the fault and the resumption
        // marked, the outage shaded.
        for selector in ["#drill-chart svg rect.ack", "#drill-chart svg line[data-kind=fault]", "#drill-chart svg line[data-kind=writes_resumed]", "#drill-chart svg rect.outage"] {
            assert!(count(c, selector).await? >= 1, "{selector}");
        }
        wait_for(c, "document.querySelector('.start-node[data-node=kestrel]') !== null").await?;

        // Barman still points at the old primary: the page says so, and one button fixes it.
        wait_for_within(c, "document.querySelector('#retarget-button') !== null", Duration::from_secs(20)).await?;
        c.find(Locator::Id("retarget-button")).await?.click().await?;
        wait_for_within(c, "document.getElementById('timeline').innerText.includes('Barman backs up quartz')", Duration::from_secs(180)).await?;
        wait_for_within(c, "document.querySelector('#barman-warning') === null", Duration::from_secs(20)).await?;

        // Stop the cascaded replica and start it again: it streams once more.
        wait_for(c, "document.querySelector('.stop-node[data-node=karma]') !== null").await?;
        c.find(Locator::Css(".stop-node[data-node=karma]")).await?.click().await?;
        wait_for_within(c, "document.querySelector('#live-diagram .node.is-down[data-name=karma]') !== null", Duration::from_secs(30)).await?;
        wait_for_within(
            c,
            "document.querySelector('.start-node[data-node=karma]') !== null",
            Duration::from_secs(30),
        )
        .await?;
        c.find(Locator::Css(".start-node[data-node=karma]")).await?.click().await?;
        wait_for_within(c, "document.querySelector('#live-diagram [data-name=karma] .live-standby') !== null", Duration::from_secs(60)).await?;

        // The password never shows on the page.
        let id = eval(c, "document.getElementById('deployment').dataset.id").await?;
        let id = id.as_str().context("the deployment's id")?;
        let (_, credentials) = http_get(server.addr, &format!("/api/deployments/{id}/credentials"))?;
        let credentials: serde_json::Value = serde_json::from_str(&credentials)?;
        let password = credentials["password"].as_str().context("password")?;
        let page = eval(c, "document.documentElement.outerHTML + location.href").await?;
        assert!(!page.as_str().unwrap_or_default().contains(password), "the page never shows the password");

        // Destroy from the page.
        // Destroying asks first; keeping it changes nothing, confirming destroys.
        c.find(Locator::Id("destroy-button")).await?.click().await?;
        c.find(Locator::Id("destroy-kept")).await?.click().await?;
        c.find(Locator::Id("destroy-button")).await?.click().await?;
        c.find(Locator::Id("destroy-confirmed")).await?.click().await?;
        wait_for_within(c, "document.querySelector('#deployment[data-state=destroyed]') !== null", Duration::from_secs(60)).await?;
        assert!(executor.containers().await?.is_empty(), "nothing of the cluster is left");

        // A deployment under way is stopped and destroyed from the page too.
        wait_for(c, "document.querySelector('#deploy-button') !== null && !document.querySelector('#deploy-button').disabled").await?;
        c.find(Locator::Id("deploy-button")).await?.click().await?;
        wait_for_within(c, "document.querySelector('#deployment[data-state=deploying]') !== null && document.querySelector('#deploy-progress tr.done') !== null", Duration::from_secs(120)).await?;
        let label = c.find(Locator::Id("destroy-button")).await?.text().await?;
        assert_eq!(label, "Stop and destroy");
        c.find(Locator::Id("destroy-button")).await?.click().await?;
        c.find(Locator::Id("destroy-confirmed")).await?.click().await?;
        wait_for_within(c, "document.querySelector('#deployment[data-state=destroyed]') !== null", Duration::from_secs(60)).await?;
        assert!(executor.containers().await?.is_empty(), "nothing of the stopped deployment is left");
        anyhow::Ok(())
    })
    .await;
    browser.close().await;
    result
}
