//! The failover profiles: how quickly repmgr and Patroni react, each profile's timings for
//! both, what it promises, and which one a deployment gets by default.

use crate::spec::FailoverManager;
use serde::{Deserialize, Serialize};

/// How often, at most, repmgrd checks a node that no failover waits for, in seconds.
pub(crate) const UNWATCHED_MONITOR_SECS: u32 = 5;

/// How quickly the failover manager reacts, and so how long a failover takes. The same names
/// serve repmgr and Patroni; each sets that manager's timings together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// For demonstrations and workshops: a failed primary is replaced in seconds, and a
    /// network hiccup of a few seconds is enough to cause a failover.
    #[serde(alias = "demo")]
    Fast,
    /// Between the two: a failover after about half a minute.
    Normal,
    /// The managers' own defaults: about a minute before a promotion, and the fewest needless
    /// failovers.
    #[default]
    #[serde(alias = "production")]
    Safe,
}

impl Profile {
    /// Every profile, fastest first.
    pub const ALL: [Profile; 3] = [Profile::Fast, Profile::Normal, Profile::Safe];

    /// The profile a design gets when none is asked for, wherever it is planned, previewed or
    /// deployed: `fast` for throwaway containers, and `safe` for existing hosts and cloud
    /// instances, where a network hiccup must not cost a failover and durability shortcuts are
    /// out of place. (`Profile::default()`, `safe`, is the same rule where no platform is known.)
    pub fn for_platform(platform: crate::spec::Platform) -> Profile {
        match platform {
            crate::spec::Platform::Docker => Profile::Fast,
            crate::spec::Platform::Bare | crate::spec::Platform::Aws => Profile::Safe,
        }
    }

    /// The profile's name, as options, links and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Normal => "normal",
            Profile::Safe => "safe",
        }
    }

    /// The profile named `text`, including the older names `demo` and `production`.
    pub fn parse(text: &str) -> Option<Profile> {
        match text {
            "fast" | "demo" => Some(Profile::Fast),
            "normal" => Some(Profile::Normal),
            "safe" | "production" => Some(Profile::Safe),
            _ => None,
        }
    }

    /// repmgr's `(reconnect_attempts, reconnect_interval, monitor_interval_secs)`.
    pub fn repmgr_timing(self) -> (u32, u32, u32) {
        match self {
            Profile::Fast => (1, 1, 1),
            Profile::Normal => (3, 5, 2),
            Profile::Safe => (6, 10, 2),
        }
    }

    /// How often repmgrd on a node checks its node and its upstream, in seconds, as the node
    /// stands: `watches_primary` when it is a standby of the primary that a failover promotes
    /// (the replica, or an old primary that rejoined or handed over), or the witness. A
    /// failover waits for such a node to see that the primary is gone, so it checks as often
    /// as the profile says. The primary itself and a cascaded replica (never promoted,
    /// priority 0) check every 5 s, or as the profile says when that is slower: each check is
    /// a new connection on both ends, most of an idle cluster's CPU. The plans that make a
    /// node a standby of the primary (a rejoin, a switchover) set its interval again.
    pub fn repmgr_monitor_secs(self, watches_primary: bool) -> u32 {
        let (_, _, monitor) = self.repmgr_timing();
        if watches_primary {
            monitor
        } else {
            monitor.max(UNWATCHED_MONITOR_SECS)
        }
    }

    /// Whether a node of `kind`, as deployed, watches the primary for a failover: the replica,
    /// and the witness on Barman's node.
    pub fn watches_primary(kind: crate::topology::Kind) -> bool {
        matches!(
            kind,
            crate::topology::Kind::Replica | crate::topology::Kind::Barman
        )
    }

    /// Patroni's `(ttl, loop_wait, retry_timeout)`. Each keeps loop_wait + 2 × retry_timeout ≤
    /// ttl, and Patroni's minimums (ttl ≥ 20, loop_wait ≥ 1, retry_timeout ≥ 3).
    pub fn patroni_timing(self) -> (u32, u32, u32) {
        match self {
            Profile::Fast => (20, 2, 5),
            Profile::Normal => (30, 10, 10),
            Profile::Safe => (60, 10, 20),
        }
    }

    /// libpq's `connect_timeout` in repmgr's conninfo, in seconds: how long one check of a dead
    /// node takes. libpq treats anything under 2 as 2.
    pub fn connect_timeout(self) -> u32 {
        2
    }

    /// The longest time from a primary's failure to a promotion with `manager`, in seconds.
    /// For Patroni the leader key must expire first (ttl), then a loop notices it.
    pub fn worst_case_failover_secs_for(self, manager: FailoverManager) -> u32 {
        match manager {
            FailoverManager::Patroni => {
                let (ttl, loop_wait, _) = self.patroni_timing();
                ttl + loop_wait
            }
            _ => {
                let (attempts, interval, monitor) = self.repmgr_timing();
                let timeout = self.connect_timeout();
                monitor + timeout + attempts * (interval + timeout) + 2 * timeout
            }
        }
    }

    /// The longest time from a primary's failure to a promotion with repmgr, in seconds.
    pub fn worst_case_failover_secs(self) -> u32 {
        self.worst_case_failover_secs_for(FailoverManager::Repmgr)
    }

    /// What the profile trades, for `manager`, in a sentence.
    pub fn explain(self, manager: FailoverManager) -> String {
        let worst = self.worst_case_failover_secs_for(manager);
        let timing = match manager {
            FailoverManager::Patroni => {
                let (ttl, loop_wait, retry) = self.patroni_timing();
                format!("ttl {ttl} s, loop_wait {loop_wait} s, retry_timeout {retry} s")
            }
            _ => {
                let (attempts, interval, monitor) = self.repmgr_timing();
                format!(
                    "{attempts} reconnect attempt{} {interval} s apart, checked every {monitor} s",
                    if attempts == 1 { "" } else { "s" }
                )
            }
        };
        let trade = match self {
            Profile::Fast => {
                "shortest outage; a pause of a few seconds (a busy host, a network blip) can also trigger a failover"
            }
            Profile::Normal => "a failover within about half a minute; short pauses are ridden out",
            Profile::Safe => {
                "the managers' defaults: the longest outage, and the fewest needless failovers"
            }
        };
        format!(
            "{}: up to {worst} s to a new primary ({timing}); {trade}",
            self.as_str()
        )
    }
}

/// What a deployment is asked for besides the design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanOptions {
    /// The failover timing.
    pub profile: Profile,
    /// Whether `EDB_SUBSCRIPTION_TOKEN` is set where the deployment runs.
    pub edb_token: bool,
}
