//! The live state of the nodes that run no Postgres: each etcd member's view of its quorum, and
//! where each HAProxy sends its clients. Both are asked of the service, inside its container.

use crate::engine::{Executor, argv};
use m1studio_shared::api::{Route, ServiceStatus};
use m1studio_shared::plan::{ETCD_CLIENT_PORT, HAPROXY_FRONTENDS, HAPROXY_STATS_PORT};
use std::time::Duration;

/// How long a probe may take before the service counts as not answering.
const PROBE: Duration = Duration::from_secs(4);

/// What etcd member `node` says of itself and its quorum.
pub async fn etcd(executor: &impl Executor, node: &str) -> ServiceStatus {
    let command = argv(&[
        "etcdctl",
        &format!("--endpoints=http://127.0.0.1:{ETCD_CLIENT_PORT}"),
        "--command-timeout=2s",
        "-w",
        "json",
        "endpoint",
        "status",
    ]);
    match tokio::time::timeout(PROBE, executor.run(node, &command, "etcd", None)).await {
        Ok(Ok(output)) if output.code == 0 => etcd_from_json(&output.stdout),
        _ => not_answering("etcd"),
    }
}

/// Where HAProxy on `node` sends clients now, from its statistics page on the node's loopback.
pub async fn haproxy(executor: &impl Executor, node: &str) -> ServiceStatus {
    // A fixed program: no user string is part of it.
    let program = format!(
        "import sys, urllib.request\nsys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{HAPROXY_STATS_PORT}/stats;csv', timeout=2).read().decode())"
    );
    let command = argv(&["python3", "-c", &program]);
    match tokio::time::timeout(PROBE, executor.run(node, &command, "haproxy", None)).await {
        Ok(Ok(output)) if output.code == 0 => haproxy_from_csv(&output.stdout),
        _ => not_answering("HAProxy"),
    }
}

fn not_answering(service: &str) -> ServiceStatus {
    ServiceStatus {
        healthy: false,
        summary: format!("{service} not answering"),
        leader: None,
        routes: Vec::new(),
    }
}

/// Reads `etcdctl -w json endpoint status`: the member leads when the quorum's leader is
/// itself, and a leader of 0 means the quorum is lost.
pub fn etcd_from_json(text: &str) -> ServiceStatus {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(_) => return not_answering("etcd"),
    };
    let status = &value[0]["Status"];
    let member = status["header"]["member_id"].as_u64();
    let leader = status["leader"].as_u64().unwrap_or(0);
    match member {
        None => not_answering("etcd"),
        Some(_) if leader == 0 => ServiceStatus {
            healthy: false,
            summary: "no quorum".into(),
            leader: Some(false),
            routes: Vec::new(),
        },
        Some(member) => ServiceStatus {
            healthy: true,
            summary: if member == leader {
                "etcd leader".into()
            } else {
                "etcd follower".into()
            },
            leader: Some(member == leader),
            routes: Vec::new(),
        },
    }
}

/// Reads HAProxy's CSV statistics: for each frontend of the plan, the servers whose checks
/// pass. Healthy when the read-write frontend has exactly one.
pub fn haproxy_from_csv(text: &str) -> ServiceStatus {
    let mut lines = text.lines();
    let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
        return not_answering("HAProxy");
    };
    let columns: Vec<&str> = header.split(',').collect();
    let column = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(proxy), Some(server), Some(state)) =
        (column("pxname"), column("svname"), column("status"))
    else {
        return not_answering("HAProxy");
    };
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let routes: Vec<Route> = HAPROXY_FRONTENDS
        .iter()
        .map(|(frontend, port, _)| Route {
            port: *port,
            up: rows
                .iter()
                .filter(|r| r.get(proxy) == Some(frontend))
                .filter(|r| !matches!(r.get(server), Some(&("FRONTEND" | "BACKEND"))))
                .filter(|r| r.get(state).is_some_and(|s| s.starts_with("UP")))
                .filter_map(|r| r.get(server).map(|s| s.to_string()))
                .collect(),
        })
        .collect();
    let writers = &routes[0].up;
    let summary = match &writers[..] {
        [] => "no leader to send writes to".to_string(),
        [one] => format!("rw → {one}"),
        many => format!("rw → {} (more than one)", many.join(", ")),
    };
    ServiceStatus {
        healthy: writers.len() == 1,
        summary,
        leader: None,
        routes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_members_say_whether_they_lead_and_whether_there_is_a_quorum() {
        let status = |member: u64, leader: u64| {
            format!(
                r#"[{{"Endpoint":"http://127.0.0.1:2379","Status":{{"header":{{"cluster_id":17,"member_id":{member},"revision":9,"raft_term":2}},"version":"3.4.23","dbSize":20480,"leader":{leader},"raftIndex":12,"raftTerm":2}}}}]"#
            )
        };
        let leader = etcd_from_json(&status(
            18_446_744_073_709_551_000,
            18_446_744_073_709_551_000,
        ));
        assert_eq!((leader.healthy, leader.leader), (true, Some(true)));
        assert_eq!(leader.summary, "etcd leader");
        let follower = etcd_from_json(&status(5, 7));
        assert_eq!((follower.healthy, follower.leader), (true, Some(false)));
        let alone = etcd_from_json(&status(5, 0));
        assert_eq!(
            (alone.healthy, alone.summary.as_str()),
            (false, "no quorum")
        );
        assert_eq!(
            etcd_from_json("Error: context deadline exceeded").summary,
            "etcd not answering"
        );
    }

    #[test]
    fn haproxy_routes_are_the_servers_whose_checks_pass() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n\
            stats,FRONTEND,,,0,1,200,1,0,0,0,0,0,,,,,OPEN,\n\
            primary,FRONTEND,,,0,1,200,3,0,0,0,0,0,,,,,OPEN,\n\
            primary,kestrel,0,0,0,1,,3,0,0,,0,,0,0,0,0,UP,1\n\
            primary,heron,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1\n\
            primary,BACKEND,0,0,0,1,20,3,0,0,0,0,,0,0,0,0,UP,1\n\
            replicas,FRONTEND,,,0,0,200,0,0,0,0,0,0,,,,,OPEN,\n\
            replicas,kestrel,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1\n\
            replicas,heron,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/2,1\n\
            replicas,BACKEND,0,0,0,0,20,0,0,0,0,0,,0,0,0,0,UP,1\n";
        let status = haproxy_from_csv(csv);
        assert!(status.healthy);
        assert_eq!(status.summary, "rw → kestrel");
        assert_eq!(status.routes_text(), "5432 → kestrel; 5433 → heron");
        assert_eq!(
            status.routes,
            [
                Route {
                    port: 5432,
                    up: vec!["kestrel".into()]
                },
                Route {
                    port: 5433,
                    up: vec!["heron".into()]
                },
            ]
        );
        let none = haproxy_from_csv(&csv.replace(
            "primary,kestrel,0,0,0,1,,3,0,0,,0,,0,0,0,0,UP",
            "primary,kestrel,0,0,0,1,,3,0,0,,0,,0,0,0,0,DOWN",
        ));
        assert!(!none.healthy);
        assert_eq!(none.summary, "no leader to send writes to");
        assert!(!haproxy_from_csv("<html>").healthy);
    }
}
