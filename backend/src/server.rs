//! `m1studio serve`: the designer (embedded in release builds) with an SPA fallback, a health
//! check, and a JSON API under `/api`. It listens on loopback unless told otherwise, and then
//! only with a token.

use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use m1studio_shared::{Diagnostic, Draft, Instance, config, configure, has_errors, link};
use rust_embed::Embed;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

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
}

/// The server's routes.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/designs/check", post(check_design))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .fallback(api_not_found);
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api", api)
        .fallback(designer)
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

/// Serves `app` on `listen` until Ctrl-C, printing where.
pub async fn serve(listen: SocketAddr, state: AppState) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}; is another server using that port? choose another with --listen"))?;
    let bound = listener.local_addr()?;
    println!("m1studio designer at http://{bound}/");
    if Designer::get("index.html").is_none() {
        eprintln!(
            "warning: the designer is not built: run `cargo xtask run` (or `trunk build --release`) first"
        );
    }
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn healthz() -> String {
    format!("ok m1studio {}\n", env!("CARGO_PKG_VERSION"))
}

/// An error as JSON: `{"error": {"message": …}}`, with its status.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

async fn api_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no API at {}: see /api/designs/check", uri.path()),
    }
}

/// Compares without stopping at the first difference, so timing says nothing about the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|given| same(given.as_bytes(), token.as_bytes())) {
        next.run(request).await
    } else {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "this server needs its token: send the header Authorization: Bearer TOKEN"
                .into(),
        }
        .into_response()
    }
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
}

async fn check_design(
    body: Result<Json<CheckRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CheckResponse>, ApiError> {
    let Json(request) = body.map_err(|rejection| ApiError {
        status: StatusCode::BAD_REQUEST,
        message: format!(
            "{}: send JSON with one of draft, link or config_yml",
            rejection.body_text()
        ),
    })?;
    // A config.yml comes back already validated, with paths in the file.
    let (draft, mut diagnostics, validated) =
        match (request.draft, request.link, request.config_yml) {
            (Some(draft), None, None) => (Some(draft), Vec::new(), false),
            (None, Some(text), None) => {
                let (draft, notices) = link::decode(&text);
                (Some(draft), notices, false)
            }
            (None, None, Some(text)) => {
                let (draft, diagnostics) = config::read(&text);
                (draft, diagnostics, true)
            }
            _ => {
                return Err(ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    message: "give exactly one of draft, link or config_yml".into(),
                });
            }
        };
    let configured = draft.as_ref().and_then(|draft| {
        let (configured, validation) = configure(draft);
        if !validated {
            diagnostics.extend(validation);
        }
        configured
    });
    let valid = configured.is_some() && !has_errors(&diagnostics);
    Ok(Json(CheckResponse {
        valid,
        diagnostics,
        link: draft.as_ref().map(link::encode).unwrap_or_default(),
        config_yml: configured.as_ref().map(|c| c.config_yml.clone()),
        instances: configured.map(|c| c.topology.instances).unwrap_or_default(),
    }))
}

/// A file of the designer; any other path without an extension gets the app (it routes itself).
async fn designer(uri: Uri) -> Response {
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
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
