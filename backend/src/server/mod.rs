//! `m1studio serve`: the designer (embedded in release builds) with an SPA fallback, a health
//! check, and a JSON API under `/api`. It listens on loopback unless told otherwise, and then
//! only with a token.

use crate::runner::{Caller, Problem, Runner};
use axum::extract::{OriginalUri, State};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::StreamExt as _;
use m1studio_shared::api::{
    DeployRequest, Deployment, DeploymentEvent, Drill, ErrorBody, ErrorDetail,
};
use m1studio_shared::{Diagnostic, Draft, Instance, has_errors, link};
use rust_embed::Embed;

mod guard;
mod listen;
mod workshop;

pub use listen::{Limits, Tls, serve};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
pub use workshop::Workshop;

/// The designer as built by Trunk. Release builds carry it inside the binary; debug builds read
/// the folder at run time.
#[derive(Embed)]
#[folder = "../dist"]
#[allow_missing = true]
struct Designer;

/// What every request can see.
#[derive(Clone, Default)]
pub struct AppState {
    /// The token `/api` requires, if any.
    pub token: Option<Arc<str>>,
    /// The runner behind `/api/deployments`; without one, those routes say so.
    pub runner: Option<Runner>,
    /// The host names the server answers to besides loopback's (`--allowed-host`, and the
    /// address it listens on), lower case.
    pub allowed_hosts: Arc<[String]>,
    /// The workshop the server runs, if it runs one.
    pub workshop: Option<Arc<Workshop>>,
    /// Cancelled when the server stops: event streams end with it.
    pub stopping: tokio_util::sync::CancellationToken,
    /// The event streams that may be followed at once.
    pub followers: Followers,
}

/// The event streams (`Accept: text/event-stream`) that may be open at once, all deployments
/// together: each holds a connection and a subscription for as long as a page is open.
#[derive(Clone)]
pub struct Followers(Arc<tokio::sync::Semaphore>);

impl Followers {
    /// At most `n` streams at once.
    pub fn new(n: usize) -> Followers {
        Followers(Arc::new(tokio::sync::Semaphore::new(n.max(1))))
    }
}

impl Default for Followers {
    fn default() -> Followers {
        Followers::new(256)
    }
}

/// The server's routes.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/designs/check", post(check_design))
        .route(
            "/deployments",
            get(list_deployments).post(create_deployment),
        )
        .route(
            "/deployments/{id}",
            get(get_deployment).delete(destroy_deployment),
        )
        .route("/deployments/{id}/events", get(deployment_events))
        .route("/deployments/{id}/status", get(deployment_status))
        .route(
            "/deployments/{id}/drills",
            get(deployment_drills).post(deployment_drill),
        )
        .route("/deployments/{id}/credentials", get(deployment_credentials))
        .route("/openapi.json", get(openapi))
        .route("/room", get(workshop::room))
        .route("/room/end", post(workshop::end))
        .route("/scenarios", post(workshop::run_scenario))
        .route("/scenarios/presets", get(workshop::scenario_presets))
        .route("/scenarios/{id}", get(workshop::scenario_results))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            guard::authenticate,
        ))
        // Joining needs no token: it gives one.
        .route("/join", post(workshop::join))
        .fallback(api_not_found);
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api", api)
        .fallback(designer)
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .with_state(state)
}

/// Why `listen` is refused with `token`, if it is: anything but loopback needs a token.
pub fn listen_problem(listen: SocketAddr, token: Option<&str>) -> Option<String> {
    let exposed = !listen.ip().is_loopback();
    match token {
        Some(token) if token.len() < 16 => Some(
            "the token is shorter than 16 characters: use a long random one, for example from `openssl rand -hex 24`".into(),
        ),
        None if exposed => Some(format!(
            "--listen {listen} makes the server reachable from other machines, which needs a token: set --token or M1STUDIO_TOKEN, or listen on 127.0.0.1"
        )),
        _ => None,
    }
}

async fn healthz() -> String {
    format!("ok m1studio {}\n", env!("CARGO_PKG_VERSION"))
}

/// An error as JSON: `{"error": {"message": …}}`, with its status.
pub struct ApiError {
    status: StatusCode,
    message: String,
    diagnostics: Vec<Diagnostic>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                message: self.message,
                diagnostics: self.diagnostics,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

async fn api_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no API at {}: see /api/openapi.json", uri.path()),
        diagnostics: Vec::new(),
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> ApiError {
        let status = match &problem {
            Problem::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Problem::BadRequest(_) | Problem::Refused { now: false, .. } => StatusCode::BAD_REQUEST,
            Problem::Refused { now: true, .. } => StatusCode::CONFLICT,
            Problem::NotFound(_) => StatusCode::NOT_FOUND,
            Problem::Conflict(_) => StatusCode::CONFLICT,
            Problem::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Problem::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &problem {
            // What failed inside stays in the server's log: a client gets a reference to it.
            Problem::Internal(e) => {
                let reference = reference();
                tracing::error!(reference = %reference, "{e:#}");
                format!(
                    "the server failed to answer; its log says why, under reference {reference}"
                )
            }
            _ => problem.to_string(),
        };
        let diagnostics = match problem {
            Problem::Invalid(diagnostics) | Problem::Refused { diagnostics, .. } => diagnostics,
            _ => Vec::new(),
        };
        ApiError {
            status,
            message,
            diagnostics,
        }
    }
}

/// A short random reference that ties an answer to a line of the server's log.
fn reference() -> String {
    crate::random_hex(4).unwrap_or_default()
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        Problem::Internal(e).into()
    }
}

/// A JSON body, or a 400 that says what is wrong with it.
fn body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
    expected: &str,
) -> Result<T, ApiError> {
    body.map(|Json(t)| t).map_err(|rejection| ApiError {
        status: StatusCode::BAD_REQUEST,
        message: format!("{}: send JSON {expected}", rejection.body_text()),
        diagnostics: Vec::new(),
    })
}

fn runner(state: &AppState) -> Result<&Runner, ApiError> {
    state.runner.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "this server runs no deployments".into(),
        diagnostics: Vec::new(),
    })
}

async fn list_deployments(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<Deployment>>, ApiError> {
    Ok(Json(runner(&state)?.list_as(&caller)?))
}

async fn create_deployment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Result<Json<DeployRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let request = body(
        request,
        "with one of draft, link or config_yml, and optionally profile (demo or production)",
    )?;
    let deployment = runner(&state)?.submit_as(&caller, request).await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

async fn get_deployment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Deployment>, ApiError> {
    let runner = runner(&state)?;
    Ok(Json(runner.view(&runner.get_as(&caller, &id)?)))
}

async fn destroy_deployment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Deployment>, ApiError> {
    let runner = runner(&state)?;
    runner.get_as(&caller, &id)?;
    Ok(Json(runner.destroy(&id).await?.0))
}

/// Which events to send.
#[derive(Deserialize)]
struct EventsQuery {
    /// Only events with a greater number.
    #[serde(default)]
    after: u64,
    /// For JSON: wait up to this many seconds (at most 30) for a first new event.
    #[serde(default)]
    wait: u64,
}

/// The events of a deployment: as JSON (optionally waiting for new ones), or, when the client
/// accepts `text/event-stream`, as server-sent events that go on as they happen.
async fn deployment_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let runner = runner(&state)?;
    runner.get_as(&caller, &id)?;
    let accepts_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(query.after);
    if i64::try_from(resume).is_err() || i64::try_from(query.after).is_err() {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "after: {} is past every event number (at most {}): give the number of the last event seen, or 0",
                resume.max(query.after),
                i64::MAX
            ),
            diagnostics: Vec::new(),
        });
    }
    if accepts_stream {
        let Ok(permit) = state.followers.0.clone().try_acquire_owned() else {
            let mut refused = ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "too many event streams are open on this server: close pages that follow deployments, or read events without Accept: text/event-stream (GET …/events?after=N&wait=30)".into(),
                diagnostics: Vec::new(),
            }
            .into_response();
            refused
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            return Ok(refused);
        };
        let stream = runner
            .follow(&id, resume)
            .take_until(state.stopping.clone().cancelled_owned())
            .map(move |event| {
                let _held = &permit;
                SseEvent::default()
                    .id(event.seq.to_string())
                    .event(format!("{:?}", event.kind).to_lowercase())
                    .json_data(&event)
            });
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let mut events: Vec<DeploymentEvent> = runner.store().events(&id, query.after)?;
    if events.is_empty() && query.wait > 0 {
        let wait = std::time::Duration::from_secs(query.wait.min(30));
        let mut stream = Box::pin(runner.follow(&id, query.after));
        if let Ok(Some(first)) = tokio::time::timeout(wait, stream.next()).await {
            events.push(first);
            events.extend(runner.store().events(&id, events[0].seq)?);
        }
    }
    Ok(Json(events).into_response())
}

async fn deployment_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<m1studio_shared::api::ClusterStatus>, ApiError> {
    let runner = runner(&state)?;
    runner.get_as(&caller, &id)?;
    Ok(Json(runner.status(&id).await?))
}

async fn deployment_drill(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    request: Result<Json<Drill>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<m1studio_shared::api::DrillStarted>), ApiError> {
    let drill = body(
        request,
        r#"such as {"action": "kill-primary"}, {"action": "stop-primary"}, {"action": "start", "node": NAME} or {"action": "retarget-barman"}"#,
    )?;
    let runner = runner(&state)?;
    runner.get_as(&caller, &id)?;
    let started = runner.drill(&id, drill).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

async fn deployment_drills(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Vec<m1studio_shared::api::DrillReport>>, ApiError> {
    let runner = runner(&state)?;
    runner.get_as(&caller, &id)?;
    Ok(Json(runner.store().reports(&id)?))
}

async fn deployment_credentials(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let runner = runner(&state)?;
    runner.get_as(&caller, &id)?;
    let (user, password) = runner.credentials(&id)?;
    Ok(Json(
        serde_json::json!({ "user": user, "password": password }),
    ))
}

async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

/// A design to check: a draft, a share link, or a config.yml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The design as a draft.
    #[serde(default)]
    pub draft: Option<Draft>,
    /// The design as share-link text.
    #[serde(default)]
    pub link: Option<String>,
    /// The design as a config.yml.
    #[serde(default)]
    pub config_yml: Option<String>,
}

/// What the model says about a design.
#[derive(Serialize)]
pub struct CheckResponse {
    /// Whether it has no errors.
    pub valid: bool,
    /// Every diagnostic.
    pub diagnostics: Vec<Diagnostic>,
    /// Its share link text.
    pub link: String,
    /// Its config.yml, when valid.
    pub config_yml: Option<String>,
    /// Its instances, when valid.
    pub instances: Vec<Instance>,
    /// The design as the designer's fields (with a config.yml's vault, which links leave out),
    /// when it could be read.
    pub draft: Option<m1studio_shared::Draft>,
}

async fn check_design(
    request: Result<Json<CheckRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CheckResponse>, ApiError> {
    let request = body(request, "with one of draft, link or config_yml")?;
    let read = crate::off_workers(move || {
        m1studio_shared::api::read_design(
            request.draft.as_ref(),
            request.link.as_deref(),
            request.config_yml.as_deref(),
        )
    })
    .await?;
    let Some((draft, configured, diagnostics)) = read else {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "give exactly one of draft, link or config_yml".into(),
            diagnostics: Vec::new(),
        });
    };
    let valid = configured.is_some() && !has_errors(&diagnostics);
    Ok(Json(CheckResponse {
        valid,
        diagnostics,
        // No link for a design too large for one (its diagnostics say why): a link that would
        // not open is of no use, and it would be most of the answer.
        link: draft
            .as_ref()
            .map(link::encode)
            .filter(|l| l.len() <= link::MAX_LINK_LEN)
            .unwrap_or_default(),
        config_yml: configured.as_ref().map(|c| c.config_yml.clone()),
        instances: configured.map(|c| c.topology.instances).unwrap_or_default(),
        draft,
    }))
}

/// A file of the designer; any other path without an extension gets the app (it routes itself).
/// The encoding to send a file in, of those it was compressed in at build time: brotli, then
/// gzip, where `accept` (the request's `Accept-Encoding`) takes them.
fn encoding(accept: &str) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    let takes = move |coding: &str| {
        accept.split(',').any(|part| {
            let mut fields = part.split(';');
            let name = fields.next().unwrap_or_default().trim();
            let refused = fields.any(|f| {
                f.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            name.eq_ignore_ascii_case(coding) && !refused
        })
    };
    [("br", ".br"), ("gzip", ".gz")]
        .into_iter()
        .filter(move |(coding, _)| takes(coding))
}

async fn designer(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (file, name) = match Designer::get(path).filter(|_| !path.is_empty()) {
        Some(file) => (Some(file), path),
        None if !path.rsplit('/').next().unwrap_or_default().contains('.') => {
            (Designer::get("index.html"), "index.html")
        }
        None => (None, path),
    };
    let Some(file) = file else {
        let message = if Designer::get("index.html").is_none() {
            "the designer is not built: run `cargo xtask run` (or `trunk build --release`) and start m1studio serve again\n"
        } else {
            "not found\n"
        };
        let status = if Designer::get("index.html").is_none() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::NOT_FOUND
        };
        return (status, message).into_response();
    };
    let cache = if name == "index.html" {
        "no-cache"
    } else {
        "public, max-age=31536000, immutable"
    };
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The file as compressed at build time, when the browser takes that.
    let compressed = encoding(accept).find_map(|(coding, suffix)| {
        Designer::get(&format!("{name}{suffix}")).map(|f| (coding, f))
    });
    let mime = file.metadata.mimetype().to_string();
    let (data, coding) = match compressed {
        Some((coding, compressed)) => (compressed.data.into_owned(), Some(coding)),
        None => (file.data.into_owned(), None),
    };
    let mut response = data.into_response();
    let headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(&mime) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(coding) = coding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, ErrorBody) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn what_failed_inside_stays_in_the_log_and_the_client_gets_a_reference() {
        let inside = anyhow::anyhow!("cannot open /var/lib/m1studio/secret.db: disk I/O error");
        let (status, body) = body_of(Problem::Internal(inside).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !body.error.message.contains("secret.db"),
            "{}",
            body.error.message
        );
        assert!(
            !body.error.message.contains("I/O"),
            "{}",
            body.error.message
        );
        assert!(
            body.error.message.contains("under reference "),
            "{}",
            body.error.message
        );
        assert!(body.error.diagnostics.is_empty());
    }

    #[tokio::test]
    async fn a_refused_drill_keeps_its_diagnostics_and_its_status_says_whether_to_retry() {
        use m1studio_shared::Code;
        let now = Diagnostic::error("node", Code::DrillNotNow, "kestrel is already running");
        let (status, body) = body_of(
            Problem::Refused {
                now: true,
                diagnostics: vec![now.clone()],
            }
            .into(),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body.error.diagnostics, vec![now]);
        let bad = Diagnostic::error("count", Code::DrillInvalid, "3 is out of range");
        let (status, body) = body_of(
            Problem::Refused {
                now: false,
                diagnostics: vec![bad.clone()],
            }
            .into(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body.error.message, "count: 3 is out of range");
        assert_eq!(body.error.diagnostics, vec![bad]);
    }
}
