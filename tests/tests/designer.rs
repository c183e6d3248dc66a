//! The designer in a real headless Chromium, served by the real `m1studio serve`.

use anyhow::{Context as _, Result};
use fantoccini::{Client, Locator};
use m1studio_e2e::page::{count, eval, open, wait_for};
use m1studio_e2e::{Browser, Server, StaticHost, root};
use serde_json::Value;

async fn select(client: &Client, id: &str, value: &str) -> Result<()> {
    client
        .find(Locator::Id(id))
        .await?
        .select_by_value(value)
        .await?;
    Ok(())
}

async fn type_into(client: &Client, id: &str, text: &str) -> Result<()> {
    let input = client.find(Locator::Id(id)).await?;
    input.clear().await?;
    input.send_keys(text).await?;
    Ok(())
}

/// Starts the server and a browser; `None` (already reported) where no browser exists off CI.
async fn start() -> Result<Option<(Server, Browser)>> {
    let server = Server::start()?;
    Ok(Browser::start().await?.map(|browser| (server, browser)))
}

#[tokio::test]
async fn patroni_with_haproxy_draws_two_haproxy_and_three_etcd_nodes() -> Result<()> {
    let Some((server, browser)) = start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    open(c, &server.url()).await?;
    assert_eq!(count(c, "#diagram .node").await?, 4);
    select(c, "failover", "patroni").await?;
    c.find(Locator::Id("haproxy")).await?.click().await?;
    wait_for(
        c,
        "document.querySelectorAll('#diagram .node.haproxy').length === 2",
    )
    .await?;
    assert_eq!(count(c, "#diagram .node.etcd").await?, 3);
    assert_eq!(count(c, "#diagram .node").await?, 9);
    assert_eq!(
        count(c, "#diagram .badge.witness").await?,
        0,
        "Patroni has no witness"
    );
    let quorum = eval(c, "document.getElementById('failover-diag').innerText").await?;
    assert!(
        quorum.as_str().unwrap_or_default().contains("3 etcd nodes"),
        "{quorum}"
    );
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn repmgr_with_haproxy_shows_the_error_next_to_the_field() -> Result<()> {
    let Some((server, browser)) = start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    open(c, &server.url()).await?;
    c.find(Locator::Id("haproxy")).await?.click().await?;
    wait_for(
        c,
        "document.querySelector('#haproxy-diag .diag.error') !== null",
    )
    .await?;
    let text = c
        .find(Locator::Css("#haproxy-diag .diag.error"))
        .await?
        .text()
        .await?;
    assert!(
        text.contains(
            "HAProxy can only be enabled together with Patroni (--failover-manager patroni)"
        ),
        "{text}"
    );
    let summary = c.find(Locator::Id("summary-title")).await?.text().await?;
    assert_eq!(summary, "1 problem to fix");
    assert!(
        c.find(Locator::Css(".diagram.empty")).await.is_ok(),
        "no diagram for an invalid design"
    );
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn zero_cascaded_replicas_shows_the_witness_badge_and_explains_it() -> Result<()> {
    let Some((server, browser)) = start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    open(c, &server.url()).await?;
    type_into(c, "cascaded", "0").await?;
    wait_for(
        c,
        "document.querySelectorAll('#diagram .badge.witness').length === 1",
    )
    .await?;
    assert_eq!(count(c, "#diagram .node.cascaded-replica").await?, 0);
    let note = c
        .find(Locator::Css("#cascaded-diag .diag.info"))
        .await?
        .text()
        .await?;
    assert!(note.contains("2 Postgres nodes, an even number"), "{note}");
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn synchronous_replication_explains_its_trade_off_and_travels_in_the_link() -> Result<()> {
    let Some((server, browser)) = start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    open(c, &server.url()).await?;
    c.find(Locator::Id("synchronous")).await?.click().await?;
    wait_for(c, "location.hash.includes('sync=1')").await?;
    wait_for(
        c,
        "document.getElementById('synchronous-hint').innerText.includes('commits wait')",
    )
    .await?;
    select(c, "failover", "patroni").await?;
    wait_for(
        c,
        "document.getElementById('synchronous-hint').innerText.includes('Patroni turns it off') && document.getElementById('synchronous-hint').innerText.includes('may be promoted')",
    )
    .await?;
    c.find(Locator::Id("tab-nodes")).await?.click().await?;
    select(c, "node-select", "kestrel").await?;
    wait_for(
        c,
        "document.getElementById('output-text').innerText.includes('synchronous_mode: true')",
    )
    .await?;
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn a_copied_link_opens_the_same_design_in_a_fresh_page() -> Result<()> {
    let Some((server, browser)) = start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    open(c, &server.url()).await?;
    let history = eval(c, "history.length").await?;
    type_into(c, "name", "lab").await?;
    select(c, "failover", "patroni").await?;
    type_into(c, "cascaded", "3").await?;
    type_into(c, "owner", "Jane & Co").await?;
    wait_for(
        c,
        "document.querySelectorAll('#diagram .node.cascaded-replica').length === 3",
    )
    .await?;
    assert_eq!(
        eval(c, "history.length").await?,
        history,
        "edits replace the history entry"
    );
    c.find(Locator::Id("copy-link")).await?.click().await?;
    let link = c
        .find(Locator::Id("share-link"))
        .await?
        .prop("value")
        .await?
        .context("a link")?;
    assert!(
        link.contains("#v=2&name=lab&pg=15&fm=patroni&platform=docker&n=3&owner=Jane+%26+Co"),
        "{link}"
    );
    // The address bar follows within a moment (it is written at most every 120 ms).
    wait_for(c, &format!("location.href === {link:?}")).await?;
    let config = c.find(Locator::Id("output-text")).await?.text().await?;

    let window = c.new_window(false).await?;
    c.switch_to_window(window.handle).await?;
    open(c, &link).await?;
    wait_for(
        c,
        "document.querySelectorAll('#diagram .node.cascaded-replica').length === 3",
    )
    .await?;
    assert_eq!(
        c.find(Locator::Id("name"))
            .await?
            .prop("value")
            .await?
            .as_deref(),
        Some("lab")
    );
    assert_eq!(
        c.find(Locator::Id("failover"))
            .await?
            .prop("value")
            .await?
            .as_deref(),
        Some("patroni")
    );
    assert_eq!(
        c.find(Locator::Id("owner"))
            .await?
            .prop("value")
            .await?
            .as_deref(),
        Some("Jane & Co")
    );
    assert_eq!(
        c.find(Locator::Id("output-text")).await?.text().await?,
        config
    );
    assert!(
        c.find(Locator::Id("link-notice")).await.is_err(),
        "a good link opens without a notice"
    );
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn a_corrupted_link_opens_with_a_notice_not_a_blank_page() -> Result<()> {
    let Some((server, browser)) = start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    open(
        c,
        &format!(
            "{}#v=1&name=m1&pg=15&fm=repmgr&fm=efm&platform=docker&color=%ZZred&n=99",
            server.url()
        ),
    )
    .await?;
    let notice = c.find(Locator::Id("link-notice")).await?.text().await?;
    assert!(
        notice.contains("This link was opened with changes"),
        "{notice}"
    );
    assert!(notice.contains("fm was ignored"), "{notice}");
    assert!(
        notice.contains("'color' is not one this m1studio knows"),
        "{notice}"
    );
    let error = c
        .find(Locator::Css("#cascaded-diag .diag.error"))
        .await?
        .text()
        .await?;
    assert!(
        error.contains("--num-cascaded-replicas 99 is more than the limit of 32"),
        "{error}"
    );
    c.find(Locator::Css("#link-notice button"))
        .await?
        .click()
        .await?;
    wait_for(c, "document.getElementById('link-notice') === null").await?;

    open(c, &format!("{}#v=7&name=future", server.url())).await?;
    let notice = c.find(Locator::Id("link-notice")).await?.text().await?;
    assert!(
        notice.contains("which this m1studio cannot read"),
        "{notice}"
    );
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn every_control_has_a_label_and_the_outputs_switch_tabs() -> Result<()> {
    let Some((server, browser)) = start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    open(c, &server.url()).await?;
    select(c, "platform", "aws").await?;
    select(c, "flavour", "epas").await?;
    wait_for(
        c,
        "document.getElementById('redwood') !== null && document.getElementById('region') !== null",
    )
    .await?;
    let unlabelled = eval(c, "[...document.querySelectorAll('input, select')].filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.id)").await?;
    assert_eq!(unlabelled, Value::Array(vec![]), "controls without a label");
    type_into(c, "hostnames", "alpha\nbravo").await?;
    wait_for(c, "document.querySelector('#hostnames-diag .diag.error[data-code=hostnames-too-few]') !== null").await?;
    type_into(c, "hostnames", " ").await?;
    wait_for(
        c,
        "document.querySelector('#hostnames-diag .diag') === null",
    )
    .await?;
    c.find(Locator::Id("tab-tpaexec")).await?.click().await?;
    wait_for(c, "document.getElementById('output-text').innerText.startsWith('tpaexec configure m1 --architecture M1 --edb-postgres-advanced 15')").await?;
    c.find(Locator::Id("tab-m1studio")).await?.click().await?;
    wait_for(
        c,
        "document.getElementById('output-text').innerText.startsWith('m1studio configure')",
    )
    .await?;
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn the_deploy_area_knows_whether_the_server_is_there() -> Result<()> {
    let Some((server, browser)) = start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    open(c, &server.url()).await?;
    wait_for(
        c,
        "document.querySelector('#deploy-status.reachable') !== null",
    )
    .await?;

    // The same dist/ from a plain static host: the designer works, and says there is no server.
    let host = StaticHost::start(root().join("dist"))?;
    open(
        c,
        &format!(
            "{}#v=1&name=static&pg=17&fm=patroni&platform=docker&haproxy=1",
            host.url()
        ),
    )
    .await?;
    wait_for(
        c,
        "document.querySelector('#deploy-status.unreachable') !== null",
    )
    .await?;
    let status = c.find(Locator::Id("deploy-status")).await?.text().await?;
    assert!(status.contains("isn't reachable"), "{status}");
    assert_eq!(count(c, "#diagram .node.haproxy").await?, 2);
    // Without the server, a config.yml cannot be read, and the page says so.
    c.find(Locator::Css("#open-config summary"))
        .await?
        .click()
        .await?;
    c.find(Locator::Id("open-config-text"))
        .await?
        .send_keys("architecture: M1\n")
        .await?;
    c.find(Locator::Id("open-config-button"))
        .await?
        .click()
        .await?;
    wait_for(
        c,
        "document.getElementById('open-config-status').innerText.includes('read by the m1studio server')",
    )
    .await?;
    assert_eq!(
        count(c, "#diagram .node.haproxy").await?,
        2,
        "the design is unchanged"
    );
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn each_nodes_files_and_the_plan_are_shown_without_secrets() -> Result<()> {
    let Some((server, browser)) = start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    open(c, &server.url()).await?;
    c.find(Locator::Id("tab-nodes")).await?.click().await?;
    select(c, "node-select", "quartz").await?;
    wait_for(
        c,
        "document.getElementById('output-text').innerText.includes(\"node_name='quartz'\")",
    )
    .await?;
    let files = c.find(Locator::Id("output-text")).await?.text().await?;
    assert!(
        files.contains("# ==> /etc/repmgr.conf (postgres, 644)"),
        "{files}"
    );
    assert!(
        files.contains("${secret:repmgr}"),
        "passwords are placeholders: {files}"
    );
    c.find(Locator::Id("tab-plan")).await?.click().await?;
    wait_for(
        c,
        "document.getElementById('output-text').innerText.startsWith('1. Write every node')",
    )
    .await?;
    select(c, "failover", "patroni").await?;
    wait_for(
        c,
        "document.getElementById('output-text').innerText.includes('2. Start etcd on')",
    )
    .await?;
    c.find(Locator::Id("tab-nodes")).await?.click().await?;
    select(c, "node-select", "kestrel").await?;
    wait_for(
        c,
        "document.getElementById('output-text').innerText.includes('# ==> /etc/patroni/m1studio.yml')",
    )
    .await?;
    let files = c.find(Locator::Id("output-text")).await?.text().await?;
    assert!(
        files.contains("password: '${secret:replicator}'"),
        "Patroni's passwords are placeholders: {files}"
    );
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn a_tpa_config_yml_dropped_in_opens_as_its_design_with_the_link_and_tpas_differences()
-> Result<()> {
    let Some((server, browser)) = start().await? else {
        return Ok(());
    };
    let c = &browser.client;
    open(c, &server.url()).await?;
    c.find(Locator::Css("#open-config summary"))
        .await?
        .click()
        .await?;
    // The file chooser reads the file through the browser, as a drop does.
    let file = root().join("shared/tests/fixtures/tpa/legacy-docker-patroni-haproxy-c1.yml");
    c.find(Locator::Id("open-config-file"))
        .await?
        .send_keys(&file.display().to_string())
        .await?;
    wait_for(c, "document.getElementById('link-notice') !== null").await?;
    let notice = c.find(Locator::Id("link-notice")).await?.text().await?;
    assert!(
        notice.contains("config.yml was opened as this design"),
        "{notice}"
    );
    assert!(
        notice.contains("node 3 (barman) is in 'main' where the M1 layout puts it in 'dr'"),
        "{notice}"
    );
    assert!(notice.contains("'log-server' is a TPA role"), "{notice}");
    assert_eq!(
        c.find(Locator::Id("name"))
            .await?
            .prop("value")
            .await?
            .as_deref(),
        Some("legacy-docker-patroni-haproxy-c1")
    );
    assert_eq!(count(c, "#diagram .node").await?, 9);
    assert_eq!(count(c, "#diagram .node.etcd").await?, 3);
    // The link carries the design, with TPA's placement, and opens it elsewhere.
    wait_for(c, "location.href.includes('&at=000110101')").await?;
    let link = c
        .find(Locator::Id("share-link"))
        .await?
        .prop("value")
        .await?
        .context("a link")?;
    assert!(!link.contains("vault"), "{link}");
    // The tpaexec tab: TPA's own file, so only TPA's extra roles differ.
    c.find(Locator::Id("tab-tpaexec")).await?.click().await?;
    let script = c.find(Locator::Id("output-text")).await?.text().await?;
    assert!(
        script.contains("the roles log-server and monitoring-server"),
        "{script}"
    );
    assert!(!script.contains("TPA puts"), "{script}");
    // The config.yml it shows is TPA's layout, with the file's vault.
    c.find(Locator::Id("tab-config")).await?.click().await?;
    let config = c.find(Locator::Id("output-text")).await?.text().await?;
    assert!(
        config.contains(
            "keyring_backend: system\nvault_name: 793bb7ad-f7d2-4eda-8064-55ce13be439a\n"
        ),
        "{config}"
    );

    // A broken file, pasted: the design stays, and the notice says where the file is wrong.
    let area = c.find(Locator::Id("open-config-text")).await?;
    area.clear().await?;
    area.send_keys("architecture: M1\ninstances: [\n").await?;
    c.find(Locator::Id("open-config-button"))
        .await?
        .click()
        .await?;
    wait_for(
        c,
        "document.getElementById('link-notice').innerText.includes('could not be opened')",
    )
    .await?;
    let notice = c.find(Locator::Id("link-notice")).await?.text().await?;
    assert!(notice.contains("is not valid YAML at line"), "{notice}");
    assert_eq!(
        count(c, "#diagram .node").await?,
        9,
        "the design is unchanged"
    );

    // A design of its own: the tpaexec tab names where TPA would put Barman.
    open(c, &link.replace("&at=000110101", "")).await?;
    wait_for(c, "document.getElementById('tab-tpaexec') !== null").await?;
    c.find(Locator::Id("tab-tpaexec")).await?.click().await?;
    let script = c.find(Locator::Id("output-text")).await?.text().await?;
    assert!(
        script.contains("TPA puts unfurl (barman, node 3) in 'main'; this design has it in 'dr'"),
        "{script}"
    );
    browser.close().await;
    Ok(())
}
