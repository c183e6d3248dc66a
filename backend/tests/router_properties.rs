//! The router under arbitrary requests: any method, path, query, headers and body, with and
//! without a token, loopback or not. Nothing panics, and nothing is answered with a 500.

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use m1studio::server::{AppState, app};
use proptest::prelude::*;
use tower::ServiceExt as _;

/// Pieces that reach real handlers, mixed with anything.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("api".to_string()),
        Just("deployments".to_string()),
        Just("d1".to_string()),
        Just("events".to_string()),
        Just("status".to_string()),
        Just("drills".to_string()),
        Just("credentials".to_string()),
        Just("designs".to_string()),
        Just("check".to_string()),
        Just("room".to_string()),
        Just("join".to_string()),
        Just("scenarios".to_string()),
        Just("presets".to_string()),
        Just("openapi.json".to_string()),
        Just("healthz".to_string()),
        Just("trainer".to_string()),
        Just("index.html".to_string()),
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just("%ff%fe".to_string()),
        "[a-zA-Z0-9._~%-]{0,12}",
    ]
}

fn request() -> impl Strategy<Value = (String, String, String, Vec<(String, String)>, Vec<u8>)> {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("DELETE".to_string()),
        Just("PUT".to_string()),
        Just("PATCH".to_string()),
        Just("OPTIONS".to_string()),
        Just("HEAD".to_string()),
        "[A-Z]{1,8}",
    ];
    let path = prop::collection::vec(segment(), 0..6).prop_map(|s| format!("/{}", s.join("/")));
    let query = prop_oneof![
        Just(String::new()),
        Just("?after=18446744073709551615".to_string()),
        Just("?after=-1&wait=99999999999".to_string()),
        Just("?format=csv".to_string()),
        "\\?[a-z=&0-9%]{0,20}",
    ];
    let header = (
        prop_oneof![
            Just("content-type".to_string()),
            Just("accept".to_string()),
            Just("authorization".to_string()),
            Just("origin".to_string()),
            Just("host".to_string()),
            Just("last-event-id".to_string()),
            Just("accept-encoding".to_string()),
            Just("sec-fetch-site".to_string()),
            "[a-z-]{1,12}",
        ],
        prop_oneof![
            Just("application/json".to_string()),
            Just("text/event-stream".to_string()),
            Just("Bearer 0123456789abcdef-secret".to_string()),
            Just("Bearer ".to_string()),
            Just("http://127.0.0.1:8080".to_string()),
            Just("127.0.0.1:8080".to_string()),
            Just("evil.example".to_string()),
            Just("cross-site".to_string()),
            Just("br, gzip;q=0".to_string()),
            Just("18446744073709551616".to_string()),
            "[ -~]{0,24}",
        ],
    );
    let body = prop_oneof![
        Just(Vec::new()),
        Just(br#"{"link": "v=1"}"#.to_vec()),
        Just(br#"{"draft": {"hostnames": ["a", "a", "B_"]}}"#.to_vec()),
        Just(br#"{"config_yml": "x: [[[[[[[[["}"#.to_vec()),
        Just(br#"{"action": "kill-primary"}"#.to_vec()),
        Just(br#"{"code": "x", "name": ""}"#.to_vec()),
        Just(br#"{"yaml": "steps: []"}"#.to_vec()),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    (
        method,
        path,
        query,
        prop::collection::vec(header, 0..5),
        body,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn no_request_panics_the_router_or_gets_a_500((method, path, query, headers, body) in request(), token in any::<bool>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // A runner that queues nothing: no request here can start a real deployment.
        let runner = m1studio::runner::Runner::with(
            m1studio::store::Store::in_memory().unwrap(),
            m1studio::runner::Settings { max_queued: 0, ..m1studio::runner::Settings::default() },
        );
        let state = AppState {
            runner: Some(runner),
            token: token.then(|| "0123456789abcdef-secret".into()),
            ..AppState::default()
        };
        let Ok(method) = Method::from_bytes(method.as_bytes()) else { return Ok(()); };
        let mut builder = Request::builder().method(method).uri(format!("{path}{query}"));
        let mut has_host = false;
        for (name, value) in &headers {
            has_host |= name == "host";
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !has_host {
            builder = builder.header("host", "127.0.0.1:8080");
        }
        let Ok(request) = builder.body(Body::from(body)) else { return Ok(()); };
        let status = runtime.block_on(async {
            let response = app(state).oneshot(request).await.unwrap();
            let status = response.status();
            // Event streams never end by themselves: a first piece is enough.
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(200),
                to_bytes(response.into_body(), 1 << 20),
            ).await;
            status
        });
        prop_assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
