//! A workshop on one server: attendees join with the trainer's code and get a token of their
//! own (kept only as a hash), see and act on their own deployments only, and the trainer sees the
//! room.

use super::{ApiError, AppState, body, runner};
use crate::random_hex;
use crate::runner::Caller;
use crate::store::{Attendee, InsertError, now_ms};
use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use m1studio_shared::api::{
    AttendeeView, DeploymentState, JoinRequest, Joined, Live, Room, RoomSeat, name_problem,
};
use sha2::Digest as _;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many joins the server takes in `JOIN_WINDOW`, whoever sends them.
const JOINS_PER_WINDOW: usize = 30;
const JOIN_WINDOW: Duration = Duration::from_secs(10);

/// A workshop the server runs.
#[derive(Debug)]
pub struct Workshop {
    /// Its name.
    pub name: String,
    /// The code of its join link.
    code: String,
    /// The trainer's token.
    trainer_token: String,
    /// How many attendees may join.
    pub max_attendees: usize,
    /// When the latest joins came, for the rate limit.
    joins: Mutex<VecDeque<Instant>>,
}

/// What a workshop keeps between two starts of the server: its join code and the trainer's
/// token, in a file readable by its owner only.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    code: String,
    trainer_token: String,
}

/// How a token is stored: its SHA-256, in hex.
pub(crate) fn token_hash(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Workshop {
    /// The workshop `name`, with the code and trainer token kept in `file` (made on the first
    /// start, mode 0600); `trainer_token` overrides the kept token (from the environment).
    pub fn open(
        name: &str,
        file: &Path,
        trainer_token: Option<String>,
        max_attendees: usize,
    ) -> anyhow::Result<Workshop> {
        let kept = if file.exists() {
            crate::store::check_private(file)?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            serde_json::from_str::<Kept>(&text)
                .with_context(|| format!("{} is not a workshop's file", file.display()))?
        } else {
            let kept = Kept {
                code: random_hex(6)?,
                trainer_token: random_hex(24)?,
            };
            crate::store::write_private(file, &serde_json::to_string_pretty(&kept)?)?;
            kept
        };
        Ok(Workshop {
            name: name.to_string(),
            code: kept.code,
            trainer_token: trainer_token.unwrap_or(kept.trainer_token),
            max_attendees,
            joins: Mutex::new(VecDeque::new()),
        })
    }

    /// The code of the join link.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Who `token` is: the trainer, one of the workshop's attendees, or nobody.
    pub(super) fn caller(&self, state: &AppState, token: &str) -> Option<Caller> {
        if super::guard::same(token.as_bytes(), self.trainer_token.as_bytes()) {
            return Some(Caller::Operator);
        }
        let attendee = state
            .runner
            .as_ref()?
            .store()
            .attendee_by_token(&token_hash(token))
            .ok()??;
        (attendee.workshop == self.name).then_some(Caller::Attendee(attendee.id))
    }

    /// Whether another join may come now.
    fn admit_join(&self) -> bool {
        let mut joins = crate::lock(&self.joins);
        let now = Instant::now();
        while joins
            .front()
            .is_some_and(|at| now.duration_since(*at) > JOIN_WINDOW)
        {
            joins.pop_front();
        }
        if joins.len() >= JOINS_PER_WINDOW {
            return false;
        }
        joins.push_back(now);
        true
    }
}

fn refused(status: StatusCode, message: String) -> ApiError {
    ApiError {
        status,
        message,
        diagnostics: Vec::new(),
    }
}

/// `POST /api/join`: an attendee joins with the trainer's code and a name, and gets a token.
pub(super) async fn join(
    State(state): State<AppState>,
    request: Result<Json<JoinRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Joined>), ApiError> {
    let Some(workshop) = state.workshop.clone() else {
        return Err(refused(
            StatusCode::NOT_FOUND,
            "this server runs no workshop: there is nothing to join".into(),
        ));
    };
    let request = body(request, r#"{"code": CODE, "name": NAME}"#)?;
    if !workshop.admit_join() {
        return Err(refused(
            StatusCode::TOO_MANY_REQUESTS,
            "too many joins at once: wait a few seconds and join again".into(),
        ));
    }
    if !super::guard::same(request.code.trim().as_bytes(), workshop.code.as_bytes()) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            format!(
                "code: this is not the join code of workshop {} (a mistyped or old link): ask the trainer for the link",
                workshop.name
            ),
        ));
    }
    if let Some(problem) = name_problem(&request.name) {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("name: {}", problem.message),
            diagnostics: vec![problem],
        });
    }
    let runner = runner(&state)?;
    let store = runner.store();
    let joined = store.attendees(&workshop.name)?.len();
    if joined >= workshop.max_attendees {
        return Err(refused(
            StatusCode::CONFLICT,
            format!(
                "workshop {} is full: {joined} of {} attendees have joined; ask the trainer for a seat",
                workshop.name, workshop.max_attendees
            ),
        ));
    }
    let name = request.name.trim().to_string();
    let token = random_hex(24)?;
    let attendee = Attendee {
        id: random_hex(3)?,
        workshop: workshop.name.clone(),
        name: name.clone(),
        joined_ms: now_ms(),
    };
    match store.add_attendee(&attendee, &token_hash(&token)) {
        Ok(()) => {}
        Err(InsertError::Taken | InsertError::Conflict(_)) => {
            return Err(refused(
                StatusCode::CONFLICT,
                format!(
                    "name: someone called {name} has joined already: add an initial or a surname"
                ),
            ));
        }
        Err(InsertError::Other(e)) => return Err(e.into()),
    }
    tracing::info!(workshop = %workshop.name, attendee = %attendee.id, "{name} joined");
    Ok((
        StatusCode::CREATED,
        Json(Joined {
            token,
            attendee: AttendeeView {
                id: attendee.id,
                name,
                workshop: workshop.name.clone(),
            },
        }),
    ))
}

/// `GET /api/room`: every attendee with their deployments and last drill, for the trainer.
pub(super) async fn room(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Room>, ApiError> {
    let Some(workshop) = state.workshop.clone() else {
        return Err(refused(
            StatusCode::NOT_FOUND,
            "this server runs no workshop: start it with --workshop NAME".into(),
        ));
    };
    if caller != Caller::Operator {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "the room is the trainer's: attendees see their own deployments at GET /api/deployments"
                .into(),
        ));
    }
    let runner = runner(&state)?;
    let store = runner.store();
    let mut attendees = Vec::new();
    for attendee in store.attendees(&workshop.name)? {
        let caller = Caller::Attendee(attendee.id.clone());
        let deployments = runner.list_as(&caller)?;
        let mut last_reports = Vec::new();
        let mut live = Vec::new();
        for deployment in &deployments {
            if let Some(report) = store.reports(&deployment.id)?.pop() {
                last_reports.push((deployment.id.clone(), report));
            }
            if deployment.state == DeploymentState::Running
                && let Some((age, status)) = runner.status_seen(&deployment.id)
            {
                live.push((deployment.id.clone(), Live::of(&status, age.as_secs())));
            }
        }
        attendees.push(RoomSeat {
            attendee: AttendeeView {
                id: attendee.id,
                name: attendee.name,
                workshop: attendee.workshop,
            },
            deployments,
            last_reports,
            live,
        });
    }
    Ok(Json(Room {
        workshop: workshop.name.clone(),
        attendees,
    }))
}

/// `POST /api/room/end`: ends the workshop: destroys every cluster its attendees made (and
/// nothing else), then forgets the attendees, whose tokens stop working.
pub(super) async fn end(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, ApiError> {
    trainer_only(&caller)?;
    let Some(workshop) = state.workshop.clone() else {
        return Err(refused(
            StatusCode::NOT_FOUND,
            "this server runs no workshop: there is nothing to end".into(),
        ));
    };
    let runner = runner(&state)?;
    let mut destroyed = 0;
    let mut kept = Vec::new();
    for attendee in runner.store().attendees(&workshop.name)? {
        for deployment in runner.list_as(&Caller::Attendee(attendee.id.clone()))? {
            if deployment.state == m1studio_shared::api::DeploymentState::Destroyed {
                continue;
            }
            match runner.destroy(&deployment.id).await {
                Ok(_) => destroyed += 1,
                Err(problem) => kept.push(format!("{}: {problem}", deployment.id)),
            }
        }
    }
    if !kept.is_empty() {
        return Err(refused(
            StatusCode::CONFLICT,
            format!(
                "the workshop goes on: {} cluster(s) could not be destroyed yet (try again once they stand): {}",
                kept.len(),
                kept.join("; ")
            ),
        ));
    }
    let attendees = runner.store().remove_attendees(&workshop.name)?;
    tracing::info!(workshop = %workshop.name, "ended: {destroyed} clusters destroyed, {attendees} attendees forgotten");
    Ok(Json(
        serde_json::json!({ "destroyed": destroyed, "attendees": attendees }),
    ))
}

/// A scenario to run: a YAML file's text, or a preset's name.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScenarioRequest {
    #[serde(default)]
    yaml: Option<String>,
    #[serde(default)]
    preset: Option<String>,
}

fn trainer_only(caller: &Caller) -> Result<(), ApiError> {
    if *caller == Caller::Operator {
        Ok(())
    } else {
        Err(refused(
            StatusCode::FORBIDDEN,
            "scenarios are the trainer's: attendees see their steps on their own clusters".into(),
        ))
    }
}

/// `POST /api/scenarios`: runs a scenario on every running cluster, and answers with the run's
/// id and its results so far.
pub(super) async fn run_scenario(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Result<Json<ScenarioRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    trainer_only(&caller)?;
    let request = body(request, r#"{"preset": NAME} or {"yaml": TEXT}"#)?;
    let scenario = match (request.yaml, request.preset) {
        (Some(yaml), None) => m1studio_shared::scenario::read(&yaml),
        (None, Some(preset)) => m1studio_shared::scenario::preset(&preset).map_err(|d| vec![d]),
        _ => {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "give exactly one of yaml (a scenario file's text) or preset (a preset's name)"
                    .into(),
            ));
        }
    }
    .map_err(|diagnostics| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: diagnostics
            .iter()
            .map(|d| format!("{}: {}", d.path, d.message))
            .collect::<Vec<_>>()
            .join("\n"),
        diagnostics,
    })?;
    let runner = runner(&state)?;
    let names: std::collections::HashMap<String, String> = match &state.workshop {
        Some(workshop) => runner
            .store()
            .attendees(&workshop.name)?
            .into_iter()
            .map(|a| (a.id, a.name))
            .collect(),
        None => std::collections::HashMap::new(),
    };
    let deployments: Vec<(String, String)> = runner
        .list()?
        .into_iter()
        .filter(|d| d.state == m1studio_shared::api::DeploymentState::Running)
        .map(|d| {
            let name = names.get(&d.owner).cloned().unwrap_or_default();
            (d.id, name)
        })
        .collect();
    let id = runner.run_scenario(scenario, deployments)?;
    let results = runner.scenario_results(&id)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "id": id, "results": results })),
    ))
}

/// How to send a scenario's results.
#[derive(serde::Deserialize)]
pub(super) struct ResultsQuery {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/scenarios/{id}`: a run's results, as JSON or (`?format=csv`) CSV.
pub(super) async fn scenario_results(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::Query(query): axum::extract::Query<ResultsQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    trainer_only(&caller)?;
    let results = runner(&state)?.scenario_results(&id)?;
    match query.format.as_deref() {
        None | Some("json") => Ok(Json(results).into_response()),
        Some("csv") => Ok((
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"scenario-results.csv\"",
                ),
            ],
            m1studio_shared::scenario::csv(&results),
        )
            .into_response()),
        Some(other) => Err(refused(
            StatusCode::BAD_REQUEST,
            format!("format: {other} is not one of json or csv"),
        )),
    }
}

/// `GET /api/scenarios/presets`: the built-in scenarios.
pub(super) async fn scenario_presets() -> Json<Vec<m1studio_shared::scenario::Scenario>> {
    Json(m1studio_shared::scenario::presets())
}
