//! What stands between a request and the API: the host and origin checks against other sites,
//! the headers that keep the designer from being framed or running foreign code, and who the
//! caller is (the token: the server's own, a workshop's trainer's, or an attendee's).

use super::{ApiError, AppState, Designer};
use crate::runner::Caller;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The host names every server answers to: loopback's.
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// The host of a `Host` header or an origin's authority, lower case, without its port.
fn host_name(authority: &str) -> String {
    let authority = authority.trim().to_ascii_lowercase();
    if authority.starts_with('[') {
        // [::1]:8080
        return authority
            .split_once(']')
            .map_or(authority.clone(), |(name, _)| format!("{name}]"));
    }
    authority
        .rsplit_once(':')
        .map_or(authority.clone(), |(name, _)| name.to_string())
}

/// Refuses what another site could make a browser send (DNS rebinding, cross-site writes), and
/// tells browsers never to frame the designer nor to run anything but its own code.
pub(super) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let known = host.as_deref().map(host_name).is_some_and(|name| {
        LOOPBACK_HOSTS.contains(&name.as_str()) || state.allowed_hosts.contains(&name)
    });
    if !known {
        return ApiError {
            status: StatusCode::MISDIRECTED_REQUEST,
            message: format!(
                "this server does not answer to the host {:?}: open it as http://127.0.0.1 or http://localhost, or start it with --allowed-host NAME for the name you use",
                host.unwrap_or_default()
            ),
            diagnostics: Vec::new(),
        }
        .into_response();
    }
    let safe = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe {
        // A browser names the page that sends a request; only the server's own may change things.
        let origin = headers
            .get(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or("null"));
        let same = origin.is_none_or(|origin| {
            origin
                .split_once("://")
                .is_some_and(|(_, authority)| Some(authority) == host.as_deref())
        });
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|site| site == "cross-site" || site == "same-site");
        if !same || cross_site {
            return ApiError {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "{} from {} refused: only the designer this server serves may change deployments",
                    request.method(),
                    origin.unwrap_or("another site")
                ),
                diagnostics: Vec::new(),
            }
            .into_response();
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(policy) = HeaderValue::from_str(content_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// The designer's Content-Security-Policy: its own scripts (the one inline script Trunk writes
/// into index.html by its hash) and WebAssembly, calls to this server only, and never framed.
fn content_policy() -> &'static str {
    static POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let inline = Designer::get("index.html")
            .map(|file| inline_script_hashes(&String::from_utf8_lossy(&file.data)))
            .unwrap_or_default();
        format!(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{inline}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    });
    &POLICY
}

/// ` 'sha256-…'` for each inline script of `html`.
fn inline_script_hashes(html: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let Some(open_end) = rest[start..].find('>') else {
            break;
        };
        let tag = &rest[start..start + open_end];
        let body_start = start + open_end + 1;
        let Some(close) = rest[body_start..].find("</script>") else {
            break;
        };
        let body = &rest[body_start..body_start + close];
        if !tag.contains("src=") {
            let digest = sha2::Sha256::digest(body.as_bytes());
            out.push_str(&format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ));
        }
        rest = &rest[body_start + close..];
    }
    out
}

/// Compares without stopping at the first difference, so timing says nothing about the token.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request carries.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Tells who calls `/api` (as a `Caller` the handlers receive), or answers 401: in a workshop,
/// the trainer or an attendee by their token; otherwise the server's own user, with its token
/// where it has one.
pub(super) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let given = bearer(request.headers());
    let caller = match (&state.workshop, &state.token) {
        (Some(workshop), _) => given.and_then(|token| workshop.caller(&state, token)),
        (None, Some(token)) => given
            .filter(|given| same(given.as_bytes(), token.as_bytes()))
            .map(|_| Caller::Operator),
        (None, None) => Some(Caller::Operator),
    };
    let Some(caller) = caller else {
        let message = if state.workshop.is_some() {
            "this workshop needs your token: join with the trainer's link (POST /api/join), then send the header Authorization: Bearer TOKEN"
        } else {
            "this server needs its token: send the header Authorization: Bearer TOKEN"
        };
        return ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
            diagnostics: Vec::new(),
        }
        .into_response();
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}
