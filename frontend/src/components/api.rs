//! Calls to the server's API, with the page's token: what they answer, or what was refused and
//! why (the API's one error body, with its diagnostics).

use crate::browser;
use m1studio_shared::Diagnostic;
use m1studio_shared::api::ErrorBody;

/// Where the page keeps its token (the server's, the trainer's or an attendee's), for this tab.
pub const TOKEN_KEY: &str = "m1studio-token";

/// Where the page keeps the name its attendee joined a workshop with.
pub const ATTENDEE_KEY: &str = "m1studio-attendee";

/// What the API refused, and why.
#[derive(Clone, PartialEq, Default)]
pub struct Refusal {
    /// The HTTP status, or 0 where the server was not reached.
    pub status: u16,
    /// What it said.
    pub message: String,
    /// Every diagnostic it gave.
    pub diagnostics: Vec<Diagnostic>,
}

/// Everything the loops and buttons need to call the API.
#[derive(Clone)]
pub struct Api {
    /// The token the calls carry.
    pub token: Option<String>,
}

impl Api {
    /// Calls `method path` with `body`: the answer, read as `T`, or why not.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<T, Refusal> {
        let answer = browser::api(method, path, body.as_deref(), self.token.as_deref())
            .await
            .map_err(|message| Refusal {
                status: 0,
                message,
                diagnostics: Vec::new(),
            })?;
        let status = answer.status;
        if (200..300).contains(&status) {
            return serde_json::from_str(&answer.text).map_err(|e| Refusal {
                status,
                message: format!("the server answered {path} with something unexpected: {e}"),
                diagnostics: Vec::new(),
            });
        }
        match serde_json::from_str::<ErrorBody>(&answer.text) {
            Ok(body) => Err(Refusal {
                status,
                message: body.error.message,
                diagnostics: body.error.diagnostics,
            }),
            Err(_) => Err(Refusal {
                status,
                message: format!("{path} answered {status}"),
                diagnostics: Vec::new(),
            }),
        }
    }
}
