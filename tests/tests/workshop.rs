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
        let link = format!("v=1&name={cluster}&pg=15&fm=repmgr&platform=docker");
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

        // The trainer's room: three seats, each with its running cluster.
        let (status, room) = call_as(server.addr, Some(&trainer), "GET", "/api/room", None)?;
        ensure!(status == 200, "{room}");
        let seats = room["attendees"].as_array().context("seats")?;
        ensure!(seats.len() == 3, "{room}");
        for seat in seats {
            ensure!(seat["deployments"][0]["state"] == "running", "{seat}");
        }
        Ok(ids)
    }
    .await;
    // The trainer destroys every cluster, whatever happened.
    let (_, all) = call_as(server.addr, Some(&trainer), "GET", "/api/deployments", None)?;
    for deployment in all.as_array().into_iter().flatten() {
        if let Some(id) = deployment["id"].as_str() {
            let (status, body) = call_as(
                server.addr,
                Some(&trainer),
                "DELETE",
                &format!("/api/deployments/{id}"),
                None,
            )?;
            ensure!(status == 200, "the trainer destroys {id}: {body}");
        }
    }
    let ids = outcome?;
    ensure!(ids.len() == 3);
    let left = m1studio::target::found_clusters().await?;
    ensure!(
        !left
            .iter()
            .any(|c| c.name.starts_with(&format!("{cluster}-"))),
        "nothing of the workshop's clusters is left: {:?}",
        left.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
    drop(docker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
