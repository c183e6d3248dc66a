//! What a plan is made of: files, readiness, actions, steps in lanes, phases, and the plan itself,
//! with the small constructors the plan's parts build steps with.

use super::*;

/// A file to write on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    /// Its absolute path.
    pub path: String,
    /// Its owner (user and group of the same name).
    pub owner: String,
    /// Its permission bits.
    pub mode: u32,
    /// Its text, with `${secret:NAME}` where a password goes.
    pub content: String,
}

/// What the plan waits for before going on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Readiness {
    /// Postgres accepts connections on the node.
    PostgresReady,
    /// A query, run on the node as postgres, returns `expect` (as text).
    Query {
        /// The SQL.
        sql: String,
        /// The expected single value.
        expect: String,
    },
    /// A command exits 0.
    CommandSucceeds {
        /// The command.
        argv: Vec<String>,
        /// The user it runs as.
        user: String,
    },
}

/// One thing to do on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Write the node's files.
    WriteFiles,
    /// Run a command, as an argument vector; never through a shell.
    Run {
        /// The program and its arguments.
        argv: Vec<String>,
        /// The user it runs as.
        user: String,
        /// What to write to its standard input (where secrets go, never into `argv`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stdin: Option<String>,
    },
    /// Run a command whose failure is harmless (stopping what may not run), as an argument
    /// vector; its exit code does not stop the plan.
    Attempt {
        /// The program and its arguments.
        argv: Vec<String>,
        /// The user it runs as.
        user: String,
    },
    /// Start a supervised service.
    Start {
        /// The service's name.
        service: String,
    },
    /// Wait until the step titled `title` of node `node`, in another lane of the same phase,
    /// has finished: a lane that needs another node ready first begins with it. It costs the
    /// nodes nothing, where polling from the node would start a client every time.
    After {
        /// The other step's node.
        node: String,
        /// The other step's title.
        title: String,
    },
    /// Wait until something holds, up to `timeout_secs`.
    Wait {
        /// What must hold.
        until: Readiness,
        /// How long to wait at most.
        timeout_secs: u32,
    },
}

/// A step: an action on a node, with a title people understand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The node's name.
    pub node: String,
    /// What the step does.
    pub title: String,
    /// How.
    pub action: Action,
    /// The lane it runs in, beside the node's own, where a node does two things at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<String>,
    /// How long it may take, in seconds, where its action's usual limit is not enough (steps
    /// that copy a database's data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
}

/// How long a command may run before it is stopped, unless its step says otherwise.
pub const COMMAND_LIMIT_SECS: u32 = 300;

/// How long writing a node's files or starting a service may take.
pub const QUICK_LIMIT_SECS: u32 = 120;

/// How long a step that copies a database's data (a clone, a backup, a restore) may take.
pub const COPY_LIMIT_SECS: u32 = 4 * 3600;

/// How much longer than its own time a wait may take before it is stopped: its checks run
/// inside the node, under its own `timeout`, and this is what the round trip may add.
pub const WAIT_MARGIN_SECS: u32 = 30;

impl Step {
    /// How long the step may take before it is stopped and counted as failed, in seconds:
    /// its own limit where it has one, a wait its time and a margin, a command
    /// [`COMMAND_LIMIT_SECS`], files and services [`QUICK_LIMIT_SECS`]. `None` for a step that
    /// waits for another lane's, which has its own limit.
    pub fn time_limit(&self) -> Option<u32> {
        if let Some(secs) = self.timeout_secs {
            return Some(secs);
        }
        match &self.action {
            Action::Run { .. } | Action::Attempt { .. } => Some(COMMAND_LIMIT_SECS),
            Action::WriteFiles | Action::Start { .. } => Some(QUICK_LIMIT_SECS),
            Action::Wait { timeout_secs, .. } => Some(timeout_secs + WAIT_MARGIN_SECS),
            Action::After { .. } => None,
        }
    }

    /// The step, allowed `secs` seconds.
    pub fn within(mut self, secs: u32) -> Step {
        self.timeout_secs = Some(secs);
        self
    }

    /// The lane the step runs in: its node's name, or the node's name and its own lane.
    pub fn lane_key(&self) -> String {
        match &self.lane {
            Some(lane) => format!("{} ({lane})", self.node),
            None => self.node.clone(),
        }
    }
}

/// A phase: steps that may run at the same time. Phases run one after the other; within a
/// phase, the steps of one lane (a node, or one of a node's named lanes) run in order, and
/// lanes run at the same time. A lane that needs another node to be ready first begins by
/// waiting for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// What the phase achieves.
    pub title: String,
    /// Its steps.
    pub steps: Vec<Step>,
}

/// The files of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFiles {
    /// The node's name.
    pub node: String,
    /// Its files.
    pub files: Vec<File>,
}

/// Everything a deployment does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The cluster's name.
    pub cluster: String,
    /// The files of each node, node 1 first.
    pub nodes: Vec<NodeFiles>,
    /// What to do, in order.
    pub phases: Vec<Phase>,
}

impl Plan {
    /// `nodes` in the order the plan needs them: grouped by the first phase with a step on
    /// them other than writing their files, earliest first, and within a phase the nodes whose
    /// lane begins by waiting for another node's step after the others; nodes it never needs
    /// come last. Containers can start wave by wave, so that the first ones get the machine to
    /// themselves.
    pub fn start_order<'a>(&self, nodes: impl IntoIterator<Item = &'a str>) -> Vec<Vec<String>> {
        let first_need = |node: &str| {
            self.phases.iter().enumerate().find_map(|(at, phase)| {
                let first = phase
                    .steps
                    .iter()
                    .find(|s| s.node == node && !matches!(s.action, Action::WriteFiles))?;
                Some((at, matches!(first.action, Action::After { .. })))
            })
        };
        let mut waves: Vec<((usize, bool), Vec<String>)> = Vec::new();
        for node in nodes {
            let at = first_need(node).unwrap_or((usize::MAX, true));
            match waves.iter_mut().find(|(w, _)| *w == at) {
                Some((_, wave)) => wave.push(node.to_string()),
                None => waves.push((at, vec![node.to_string()])),
            }
        }
        waves.sort_by_key(|(at, _)| *at);
        waves.into_iter().map(|(_, wave)| wave).collect()
    }

    /// The files of node `name`.
    pub fn files_of(&self, name: &str) -> &[File] {
        self.nodes
            .iter()
            .find(|n| n.node == name)
            .map_or(&[], |n| n.files.as_slice())
    }

    /// The plan as text, for people: phases, steps and commands, without any secret.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, phase) in self.phases.iter().enumerate() {
            let _ = writeln!(out, "{}. {}", i + 1, phase.title);
            for step in &phase.steps {
                let how = match &step.action {
                    Action::WriteFiles => format!("{} files", self.files_of(&step.node).len()),
                    Action::Run {
                        argv,
                        user,
                        stdin: None,
                    } => format!("as {user}: {}", argv.join(" ")),
                    Action::Run {
                        argv,
                        user,
                        stdin: Some(input),
                    } => {
                        format!("as {user}: {} <<< {input}", argv.join(" "))
                    }
                    Action::Attempt { argv, user } => {
                        format!("as {user}, may fail: {}", argv.join(" "))
                    }
                    Action::Start { service } => format!("start {service}"),
                    Action::After { node, title } => format!("after [{node}] {title}"),
                    Action::Wait {
                        until,
                        timeout_secs,
                    } => format!("wait up to {timeout_secs} s for {until:?}"),
                };
                let _ = writeln!(out, "   [{}] {}: {how}", step.lane_key(), step.title);
            }
        }
        out
    }
}

pub(super) fn secret(name: &str) -> String {
    format!("${{secret:{name}}}")
}

/// Where the SCRAM verifier of the password `name` goes, for `CREATE ROLE … PASSWORD`: the
/// executor computes it with few iterations, since the cluster's passwords are random (a
/// client proves the password in every connection, and repmgrd connects every second).
pub(super) fn verifier(name: &str) -> String {
    format!("${{scram:{name}}}")
}

pub(super) fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

pub(super) fn step(node: &str, title: &str, action: Action) -> Step {
    Step {
        node: node.to_string(),
        title: title.to_string(),
        action,
        lane: None,
        timeout_secs: None,
    }
}

/// Starts supervisord's program `service` on `node`.
pub(super) fn start(node: &str, service: &str) -> Step {
    step(
        node,
        &format!("start {service}"),
        Action::Start {
            service: service.into(),
        },
    )
}

/// `steps` in their node's lane named `lane`.
pub(super) fn in_lane(lane: &str, steps: Vec<Step>) -> Vec<Step> {
    steps
        .into_iter()
        .map(|s| Step {
            lane: Some(lane.to_string()),
            ..s
        })
        .collect()
}

pub(super) fn run(node: &str, title: &str, user: &str, parts: &[&str]) -> Step {
    step(
        node,
        title,
        Action::Run {
            argv: argv(parts),
            user: user.to_string(),
            stdin: None,
        },
    )
}

pub(super) fn wait(node: &str, title: &str, until: Readiness, timeout_secs: u32) -> Step {
    step(
        node,
        title,
        Action::Wait {
            until,
            timeout_secs,
        },
    )
}

pub(super) fn file(path: &str, owner: &str, mode: u32, content: String) -> File {
    File {
        path: path.to_string(),
        owner: owner.to_string(),
        mode,
        content,
    }
}
