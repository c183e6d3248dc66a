//! A workshop on the real server and a real Docker engine: three attendees join with the
//! trainer's code and deploy the same link at once; all three clusters run side by side on
//! networks of their own, each attendee sees only their own (anyone else's is not found, whatever
//! the method), and the trainer sees the room and destroys everything.

use anyhow::{Context as _, Result, bail, ensure};
use m1studio_e2e::rest::call_as;
use m1studio_e2e::{Server, docker_or_skip};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The workshop's join code and the trainer's token, from the file the server keeps them in.
fn kept(dir: &std::path::Path, name: &str) -> Result<(String, String)> {
    let file = dir.join(format!("workshop-{name}.json"));
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
    Ok((
        kept["code"].as_str().context("code")?.to_string(),
        kept["trainer_token"].as_str().context("token")?.to_string(),
    ))
}

/// Waits until every deployment of `ids` is running, each seen with its owner's token.
fn all_running(server: &Server, ids: &[(String, String)], within: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for (id, token) in ids {
            let (status, deployment) = call_as(
                server.addr,
                Some(token),
                "GET",
                &format!("/api/deployments/{id}"),
                None,
            )?;
            ensure!(status == 200, "{deployment}");
            match deployment["state"].as_str() {
                Some("running") => {}
                Some("failed") => bail!("deployment {id} failed: {deployment}"),
                _ => waiting.push(id.clone()),
            }
        }
        if waiting.is_empty() {
            eprintln!("all running after {:.1} s", started.elapsed().as_secs_f64());
            return Ok(());
        }
        ensure!(
            started.elapsed() < within,
            "not running after {within:?}: {waiting:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_attendees_deploy_the_same_link_at_once_and_each_sees_only_their_own() -> Result<()> {
    let Some(docker) = docker_or_skip("the workshop test").await? else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("m1studio-e2e-workshop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let server = Server::start_with(
        &dir.join("m1studio.db"),
        &["--workshop", "lab", "--address-pool", "10.150.0.0/16"],
        3,
    )?;
    let (code, trainer) = kept(&dir, "lab")?;
    let cluster = format!("ws{}", std::process::id() % 100000);
    let outcome = async {
        let mut attendees = Vec::new();
        for name in ["Ada", "Grace", "Linus"] {
            let (status, joined) = call_as(
                server.addr,
                None,
                "POST",
                "/api/join",
                Some(json!({ "code": code, "name": name })),
            )?;
            ensure!(status == 201, "{joined}");
            attendees.push((
                joined["attendee"]["id"].as_str().context("id")?.to_string(),
                joined["token"].as_str().context("token")?.to_string(),
            ));
        }
        // The trainer's link, the default design: the same for all three, at once.
        let link = format!("v=2&name={cluster}&pg=15&fm=repmgr&platform=docker");
        let addr = server.addr;
        let submitted: Vec<Result<(u16, Value)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = attendees
                .iter()
                .map(|(_, token)| {
                    let link = link.clone();
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
        let mut networks = Vec::new();
        for ((_, token), answer) in attendees.iter().zip(submitted) {
            let (status, deployment) = answer?;
            ensure!(status == 202, "{deployment}");
            ensure!(
                deployment["cluster"] == cluster.as_str(),
                "the design keeps its name: {deployment}"
            );
            ensure!(
                deployment["link"] == link.as_str(),
                "and its link: {deployment}"
            );
            networks.push(
                deployment["network"]
                    .as_str()
                    .context("a network from the pool")?
                    .to_string(),
            );
            ids.push((
                deployment["id"].as_str().context("id")?.to_string(),
                token.clone(),
            ));
        }
        networks.sort();
        networks.dedup();
        ensure!(
            networks.len() == 3,
            "three networks of their own: {networks:?}"
        );
        ensure!(
            networks.iter().all(|n| n.starts_with("10.150.")),
            "{networks:?}"
        );
        all_running(&server, &ids, Duration::from_secs(420))?;

        // Each sees only their own; B asks for A's in every way and is told it does not exist.
        for (id, token) in &ids {
            let (_, mine) = call_as(server.addr, Some(token), "GET", "/api/deployments", None)?;
            let listed: Vec<&str> = mine
                .as_array()
                .context("a list")?
                .iter()
                .filter_map(|d| d["id"].as_str())
                .collect();
            ensure!(listed == [id.as_str()], "{listed:?}");
        }
        let (a, b) = (&ids[0].0, &ids[1].1);
        for (method, path, body) in [
            ("GET", format!("/api/deployments/{a}"), None),
            ("GET", format!("/api/deployments/{a}/status"), None),
            ("GET", format!("/api/deployments/{a}/credentials"), None),
            (
                "POST",
                format!("/api/deployments/{a}/drills"),
                Some(json!({ "action": "kill-primary" })),
            ),
            ("DELETE", format!("/api/deployments/{a}"), None),
        ] {
            let (status, body) = call_as(server.addr, Some(b), method, &path, body)?;
            ensure!(
                status == 404,
                "{method} {path} by another attendee: {status} {body}"
            );
        }
        let (status, deployment) = call_as(
            server.addr,
            Some(&ids[0].1),
            "GET",
            &format!("/api/deployments/{a}"),
            None,
        )?;
        ensure!(
            status == 200 && deployment["state"] == "running",
            "{deployment}"
        );
        let (status, live) = call_as(
            server.addr,
            Some(&ids[0].1),
            "GET",
            &format!("/api/deployments/{a}/status"),
            None,
        )?;
        ensure!(status == 200 && live["primary"].is_string(), "{live}");

        // The trainer runs a scenario on every cluster at once: one row per attendee, each with
        // its recovery time; each attendee's events show the step.
        let (status, refused) = call_as(
            server.addr,
            Some(b),
            "POST",
            "/api/scenarios",
            Some(json!({ "preset": "kill the primary" })),
        )?;
        ensure!(status == 403, "an attendee runs no scenario: {refused}");
        // The trainer runs it from the command line, against the server: the token comes from
        // the environment, and the results are the server's.
        let work = std::env::temp_dir();
        let scenario_run = |token: Option<&str>| -> Result<std::process::Output> {
            let mut command = std::process::Command::new(m1studio_e2e::binary()?);
            command
                .args([
                    "scenario",
                    "run",
                    "--preset",
                    "kill the primary",
                    "--server",
                ])
                .arg(format!("http://{}", server.addr))
                .env_remove("M1STUDIO_TOKEN")
                .current_dir(&work);
            if let Some(token) = token {
                command.env("M1STUDIO_TOKEN", token);
            }
            Ok(command.output()?)
        };
        let without_token = scenario_run(None)?;
        let said = String::from_utf8_lossy(&without_token.stderr);
        ensure!(
            !without_token.status.success() && said.contains("M1STUDIO_TOKEN"),
            "without a token, the command says how to give it: {said}"
        );
        let ran = scenario_run(Some(&trainer))?;
        let (out, err) = (
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr),
        );
        ensure!(ran.status.success(), "scenario run --server: {out}\n{err}");
        ensure!(
            out.lines()
                .filter(|l| l.contains("writes back after"))
                .count()
                == 3,
            "a row per attendee: {out}"
        );
        let run_id = err
            .lines()
            .find_map(|l| l.strip_prefix("scenario ")?.split_whitespace().next())
            .context("the run's id")?
            .to_string();
        let (status, results) = call_as(
            server.addr,
            Some(&trainer),
            "GET",
            &format!("/api/scenarios/{run_id}"),
            None,
        )?;
        ensure!(status == 200 && results["finished"] == true, "{results}");
        let rows = results["rows"].as_array().context("rows")?;
        ensure!(rows.len() == 3, "{results}");
        for row in rows {
            let step = &row["steps"][0];
            ensure!(step["error"].is_null(), "{row}");
            ensure!(
                step["rto_ms"]
                    .as_u64()
                    .is_some_and(|ms| ms > 0 && ms < 60_000),
                "a recovery time: {row}"
            );
            ensure!(
                ["Ada", "Grace", "Linus"].contains(&row["attendee"].as_str().unwrap_or_default()),
                "{row}"
            );
        }
        let (status, csv) = m1studio_e2e::http_as(
            server.addr,
            "GET",
            &format!("/api/scenarios/{run_id}?format=csv"),
            None,
            Some(&trainer),
        )?;
        ensure!(status == 200 && csv.lines().count() == 4, "{csv}");
        for (id, token) in &ids {
            let (_, events) = call_as(
                server.addr,
                Some(token),
                "GET",
                &format!("/api/deployments/{id}/events"),
                None,
            )?;
            ensure!(
                events
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["signal"] == "scenario_step"),
                "{id} shows the step"
            );
        }

        // The trainer's room: three seats, each with its running cluster, its primary (the
        // replica, promoted by the scenario's kill) and its standbys, read in the background.
        let started = Instant::now();
        loop {
            let (status, room) = call_as(server.addr, Some(&trainer), "GET", "/api/room", None)?;
            ensure!(status == 200, "{room}");
            let seats = room["attendees"].as_array().context("seats")?;
            ensure!(seats.len() == 3, "{room}");
            let mut seen = 0;
            for seat in seats {
                ensure!(seat["deployments"][0]["state"] == "running", "{seat}");
                let live = &seat["live"][0][1];
                if live["primary"] == "quartz" && live["of"] == 2 {
                    seen += 1;
                }
            }
            if seen == 3 {
                break;
            }
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the room shows each primary: {room}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        Ok(ids)
    }
    .await;
    // The trainer ends the workshop: every cluster it made goes, and the attendees' tokens stop
    // working. Whatever happened above, nothing is left behind.
    let (status, ended) = call_as(server.addr, Some(&trainer), "POST", "/api/room/end", None)?;
    if status != 200 {
        let (_, all) = call_as(server.addr, Some(&trainer), "GET", "/api/deployments", None)?;
        for deployment in all.as_array().into_iter().flatten() {
            if let Some(id) = deployment["id"].as_str() {
                let _ = call_as(
                    server.addr,
                    Some(&trainer),
                    "DELETE",
                    &format!("/api/deployments/{id}"),
                    None,
                );
            }
        }
    }
    let ids = outcome?;
    ensure!(
        status == 200 && ended["destroyed"] == 3 && ended["attendees"] == 3,
        "{status} {ended}"
    );
    let (status, _) = call_as(
        server.addr,
        Some(&ids[0].1),
        "GET",
        "/api/deployments",
        None,
    )?;
    ensure!(status == 401, "an ended workshop's token opens nothing");
    let prefix = format!("m1studio-{cluster}-");
    let left = m1studio::target::found_clusters().await?;
    ensure!(
        !left
            .iter()
            .any(|c| c.name.starts_with(&format!("{cluster}-"))),
        "no container of the workshop is left: {:?}",
        left.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
    let networks = m1studio::target::networks_in_use().await?;
    ensure!(
        !networks.iter().any(|(name, _)| name.starts_with(&prefix)),
        "no network is left: {networks:?}"
    );
    let volumes = docker
        .list_volumes(None::<m1studio::target::docker::ListVolumesOptions>)
        .await?
        .volumes
        .unwrap_or_default();
    ensure!(
        !volumes.iter().any(|v| v.name.starts_with(&prefix)),
        "no volume is left"
    );
    drop(docker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Types `text` into the input `id`.
async fn type_into(client: &fantoccini::Client, id: &str, text: &str) -> Result<()> {
    let input = client.find(fantoccini::Locator::Id(id)).await?;
    input.clear().await?;
    input.send_keys(text).await?;
    Ok(())
}

#[tokio::test]
async fn the_join_link_and_the_trainer_s_room_work_in_the_browser() -> Result<()> {
    use fantoccini::Locator;
    use m1studio_e2e::page::{eval, wait_for};
    let dir = std::env::temp_dir().join(format!("m1studio-e2e-join-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let server = Server::start_with(&dir.join("m1studio.db"), &["--workshop", "class"], 1)?;
    let Some(browser) = m1studio_e2e::Browser::start().await? else {
        return Ok(());
    };
    let (code, trainer) = kept(&dir, "class")?;
    let c = &browser.client;

    // The trainer's link: a name, then the designer, as that attendee.
    c.goto("about:blank").await?;
    c.goto(&format!("{}#join={code}", server.url())).await?;
    wait_for(c, "document.getElementById('join-name') !== null").await?;
    type_into(c, "join-name", "Ada").await?;
    c.find(Locator::Id("join-button")).await?.click().await?;
    wait_for(c, "document.getElementById('attendee') !== null && document.querySelector('.app[data-ready]') !== null").await?;
    let attendee = eval(c, "document.getElementById('attendee').innerText").await?;
    ensure!(
        attendee.as_str().is_some_and(|t| t.contains("Ada")),
        "{attendee}"
    );
    ensure!(
        eval(c, "location.hash")
            .await?
            .as_str()
            .is_some_and(|h| !h.contains("join=")),
        "the code leaves the address bar"
    );
    let token = eval(c, "sessionStorage.getItem('m1studio-token')").await?;
    ensure!(
        token.as_str().is_some_and(|t| t.len() >= 32),
        "the page keeps its token: {token}"
    );
    // The attendee's own deployments: none yet, and the API answers with their token.
    let (status, mine) = call_as(server.addr, token.as_str(), "GET", "/api/deployments", None)?;
    ensure!(status == 200 && mine == json!([]), "{mine}");

    // The same name again, and a wrong code: each says what is wrong, on the page.
    c.goto("about:blank").await?;
    c.goto(&format!("{}#join={code}", server.url())).await?;
    wait_for(c, "document.getElementById('join-name') !== null").await?;
    type_into(c, "join-name", "ada").await?;
    c.find(Locator::Id("join-button")).await?.click().await?;
    wait_for(c, "document.getElementById('join-error') !== null").await?;
    ensure!(eval(c, "document.getElementById('join-error').dataset.status").await? == json!("409"));
    c.goto("about:blank").await?;
    c.goto(&format!("{}#join=not-the-code", server.url()))
        .await?;
    wait_for(c, "document.getElementById('join-name') !== null").await?;
    type_into(c, "join-name", "Grace").await?;
    c.find(Locator::Id("join-button")).await?.click().await?;
    wait_for(c, "document.getElementById('join-error') !== null").await?;
    ensure!(eval(c, "document.getElementById('join-error').dataset.status").await? == json!("403"));
    c.goto("about:blank").await?;
    c.goto(&format!("{}#join={code}", server.url())).await?;
    wait_for(c, "document.getElementById('join-name') !== null").await?;
    type_into(c, "join-name", "Grace").await?;
    c.find(Locator::Id("join-button")).await?.click().await?;
    wait_for(c, "document.getElementById('attendee') !== null").await?;

    // The room: an attendee's token does not open it; the trainer's does, and lists both.
    c.goto(&format!("{}trainer", server.url())).await?;
    wait_for(c, "document.getElementById('trainer-error') !== null").await?;
    ensure!(
        eval(c, "document.getElementById('trainer-error').dataset.status").await? == json!("403")
    );
    eval(c, "sessionStorage.clear() || true").await?;
    c.refresh().await?;
    wait_for(c, "document.getElementById('trainer-token-input') !== null").await?;
    type_into(c, "trainer-token-input", &trainer).await?;
    c.find(Locator::Css("#trainer-token button"))
        .await?
        .click()
        .await?;
    wait_for(
        c,
        "document.querySelectorAll('#room tbody.seat').length === 2",
    )
    .await?;
    let names = eval(
        c,
        "[...document.querySelectorAll('#room tbody.seat th')].map(t => t.innerText).join(',')",
    )
    .await?;
    ensure!(names == json!("Ada,Grace"), "{names}");

    // Ada deploys a cluster; the room shows its primary, and the trainer runs a scenario on it
    // from the page: the results table fills in with its recovery time.
    if m1studio_e2e::docker_or_skip("the room's scenario in the browser")
        .await?
        .is_some()
    {
        let ada = token.as_str().context("Ada's token")?;
        let (status, created) = call_as(
            server.addr,
            Some(ada),
            "POST",
            "/api/deployments",
            Some(json!({ "link": "v=2&name=m1&pg=15&fm=repmgr&platform=docker&n=0" })),
        )?;
        ensure!(status == 202, "{created}");
        let id = created["id"].as_str().context("an id")?.to_string();
        let outcome = async {
            let started = Instant::now();
            loop {
                let (_, deployment) = call_as(
                    server.addr,
                    Some(ada),
                    "GET",
                    &format!("/api/deployments/{id}"),
                    None,
                )?;
                if deployment["state"] == "running" {
                    break;
                }
                ensure!(
                    deployment["state"] != "failed" && started.elapsed() < Duration::from_secs(240),
                    "Ada's cluster does not run: {deployment}"
                );
                std::thread::sleep(Duration::from_secs(1));
            }
            m1studio_e2e::page::wait_for_within(
                c,
                &format!("document.querySelector('#room tr[data-id=\"{id}\"] td.live[data-primary=\"kestrel\"]') !== null"),
                Duration::from_secs(30),
            )
            .await?;
            eval(
                c,
                "(() => { const s = document.getElementById('scenario-preset'); s.value = 'kill the primary'; s.dispatchEvent(new Event('change')); return true; })()",
            )
            .await?;
            c.find(Locator::Id("scenario-run")).await?.click().await?;
            m1studio_e2e::page::wait_for_within(
                c,
                "document.querySelector('#scenario-results[data-finished=\"true\"]') !== null",
                Duration::from_secs(180),
            )
            .await?;
            let row = eval(
                c,
                "[...document.querySelectorAll('#scenario-results tbody tr')].map(r => r.innerText).join('|')",
            )
            .await?;
            let row = row.as_str().unwrap_or_default().to_string();
            ensure!(
                row.starts_with("Ada") && row.contains(" s, ") && row.contains(" lost") && !row.contains('|'),
                "one row, Ada's, with its recovery time: {row}"
            );
            // The room follows the failover: the replica is the primary now.
            m1studio_e2e::page::wait_for_within(
                c,
                &format!("document.querySelector('#room tr[data-id=\"{id}\"] td.live[data-primary=\"quartz\"]') !== null"),
                Duration::from_secs(30),
            )
            .await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        let (status, destroyed) = call_as(
            server.addr,
            Some(ada),
            "DELETE",
            &format!("/api/deployments/{id}"),
            None,
        )?;
        outcome?;
        ensure!(status == 200, "{destroyed}");
    }
    browser.close().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attendee_s_share_is_kept_and_a_cluster_whose_time_is_up_is_destroyed() -> Result<()> {
    let Some(_docker) = docker_or_skip("the workshop expiry test").await? else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("m1studio-e2e-expiry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let server = Server::start_with(
        &dir.join("m1studio.db"),
        &[
            "--workshop",
            "short",
            "--per-attendee",
            "1",
            "--cluster-ttl",
            "45s",
            "--address-pool",
            "10.151.0.0/16",
        ],
        1,
    )?;
    let (code, trainer) = kept(&dir, "short")?;
    let (status, joined) = call_as(
        server.addr,
        None,
        "POST",
        "/api/join",
        Some(json!({ "code": code, "name": "Ada" })),
    )?;
    ensure!(status == 201, "{joined}");
    let token = joined["token"].as_str().context("token")?.to_string();
    let cluster = format!("ttl{}", std::process::id() % 100000);
    let deploy = |name: &str| {
        call_as(
            server.addr,
            Some(&token),
            "POST",
            "/api/deployments",
            Some(
                json!({ "link": format!("v=1&name={name}&pg=15&fm=repmgr&platform=docker&n=0"), "profile": "fast" }),
            ),
        )
    };
    let outcome = async {
        let (status, deployment) = deploy(&cluster)?;
        ensure!(status == 202, "{deployment}");
        let id = deployment["id"].as_str().context("id")?.to_string();
        let expires = deployment["expires_ms"]
            .as_u64()
            .context("it says when it expires")?;
        ensure!(expires.saturating_sub(deployment["created_ms"].as_u64().unwrap_or(0)) == 45_000);
        // A second cluster is beyond this attendee's share of one.
        let (status, refused) = deploy(&format!("{cluster}b"))?;
        ensure!(status == 409, "{refused}");
        ensure!(
            refused["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("1 of your 1 clusters")),
            "{refused}"
        );
        all_running(
            &server,
            &[(id.clone(), token.clone())],
            Duration::from_secs(300),
        )?;
        // Its time runs out: the server destroys it, and nothing of it is left.
        let started = Instant::now();
        loop {
            let (_, now) = call_as(
                server.addr,
                Some(&token),
                "GET",
                &format!("/api/deployments/{id}"),
                None,
            )?;
            if now["state"] == "destroyed" {
                break;
            }
            ensure!(
                started.elapsed() < Duration::from_secs(120),
                "not destroyed after its time: {now}"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
        let left = m1studio::target::found_clusters().await?;
        ensure!(
            !left.iter().any(|c| c.name.starts_with(&cluster)),
            "{:?}",
            left.iter().map(|c| &c.name).collect::<Vec<_>>()
        );
        // With it gone, the share is free again.
        let (status, again) = deploy(&format!("{cluster}c"))?;
        ensure!(status == 202, "{again}");
        Ok(())
    }
    .await;
    let (_, all) = call_as(server.addr, Some(&trainer), "GET", "/api/deployments", None)?;
    for deployment in all.as_array().into_iter().flatten() {
        if let (Some(id), false) = (
            deployment["id"].as_str(),
            deployment["state"] == "destroyed",
        ) {
            // One still under way is destroyed once it stands.
            let started = Instant::now();
            loop {
                let (status, _) = call_as(
                    server.addr,
                    Some(&trainer),
                    "DELETE",
                    &format!("/api/deployments/{id}"),
                    None,
                )?;
                if status == 200 || started.elapsed() > Duration::from_secs(300) {
                    break;
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
    outcome?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn six_default_designs_deployed_at_once_on_one_server_all_run() -> Result<()> {
    let Some(_docker) = docker_or_skip("the address pool test").await? else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("m1studio-e2e-six-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // The one-person server: no workshop, no token, the default pool.
    let server = Server::start_with(&dir.join("m1studio.db"), &[], 6)?;
    let stamp = std::process::id() % 100000;
    let names: Vec<String> = (0..6).map(|i| format!("six{stamp}x{i}")).collect();
    let addr = server.addr;
    let answers: Vec<Result<(u16, Value)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                scope.spawn(move || {
                    call_as(
                        addr,
                        None,
                        "POST",
                        "/api/deployments",
                        Some(json!({ "link": format!("v=1&name={name}&pg=15&fm=repmgr&platform=docker"), "profile": "fast" })),
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
    for answer in answers {
        let (status, deployment) = answer?;
        ensure!(status == 202, "{deployment}");
        ids.push((
            deployment["id"].as_str().context("id")?.to_string(),
            String::new(),
        ));
    }
    let outcome = all_running(&server, &ids, Duration::from_secs(600));
    // An explicit network that one of them uses is refused before anything is created, naming it.
    let (_, first) = call_as(
        addr,
        None,
        "GET",
        &format!("/api/deployments/{}", ids[0].0),
        None,
    )?;
    let taken = first["network"]
        .as_str()
        .context("a network from the pool")?
        .to_string();
    let (status, refused) = call_as(
        addr,
        None,
        "POST",
        "/api/deployments",
        Some(
            json!({ "link": format!("v=1&name=six{stamp}y&pg=15&fm=repmgr&platform=docker&net={}", taken.replace('/', "%2F")), "profile": "fast" }),
        ),
    )?;
    for (id, _) in &ids {
        let _ = call_as(
            addr,
            None,
            "DELETE",
            &format!("/api/deployments/{id}"),
            None,
        );
    }
    outcome?;
    ensure!(status == 422, "{refused}");
    let diagnostic = &refused["error"]["diagnostics"][0];
    ensure!(
        diagnostic["code"] == "network-taken" && diagnostic["path"] == "network",
        "{refused}"
    );
    ensure!(
        diagnostic["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("cluster six{stamp}x0"))),
        "{refused}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
