//! The OpenAPI 3.1 document of `/api`, served at `/api/openapi.json`. A test calls every path
//! it lists, so that the document and the router cannot drift apart.

use serde_json::{Value, json};

fn error_responses(codes: &[&str]) -> serde_json::Map<String, Value> {
    let mut responses = serde_json::Map::new();
    for code in codes {
        let description = match *code {
            "400" => "The request is malformed; the message says what to send",
            "401" => "The server needs its token (Authorization: Bearer TOKEN)",
            "403" => {
                "Refused: another site's page, a wrong join code, or an attendee asking for the trainer's view"
            }
            "404" => "No such deployment (or not yours, in a workshop)",
            "421" => {
                "The server does not answer to this Host: use 127.0.0.1, localhost, or an --allowed-host"
            }
            "429" => "Too many joins at once: wait a few seconds",
            "409" => "The cluster name is taken, or the deployment is busy",
            "422" => "The design has errors: every diagnostic, nothing created",
            "503" => {
                "The Docker engine cannot be reached, or the server is full (queued deployments, event streams); the message says what to do"
            }
            _ => "An error",
        };
        responses.insert(
            (*code).to_string(),
            json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
        );
    }
    responses
}

fn ok(code: &str, description: &str, schema: Value, errors: &[&str]) -> Value {
    let mut responses = error_responses(errors);
    responses.insert(
        code.to_string(),
        json!({ "description": description, "content": { "application/json": { "schema": schema } } }),
    );
    Value::Object(responses)
}

fn id_parameter() -> Value {
    json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" }, "description": "The deployment's identifier" }])
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The document.
pub fn document() -> Value {
    let mut document = document_as_written();
    answered_everywhere(&mut document);
    document
}

/// The document as written, before what every operation may answer.
fn document_as_written() -> Value {
    // etcd and HAProxy nodes' own account, apart so that the document's macro stays shallow.
    let service = json!({ "type": ["object", "null"], "description": "etcd and HAProxy nodes: what the service says",
        "properties": { "healthy": { "type": "boolean" }, "summary": { "type": "string" },
            "leader": { "type": ["boolean", "null"], "description": "etcd: whether this member leads the quorum" },
            "routes": { "type": "array", "description": "HAProxy: each frontend's port and the nodes it sends connections to",
                "items": { "type": "object", "properties": { "port": { "type": "integer" }, "up": { "type": "array", "items": { "type": "string" } } } } } } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "m1studio",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Design, check and deploy M1 PostgreSQL clusters: a primary, a streaming replica, cascaded replicas, Barman and a failover manager. When the server listens beyond loopback, every path needs the header Authorization: Bearer TOKEN."
        },
        "components": {
            "securitySchemes": { "token": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "properties": {
                    "message": { "type": "string", "description": "What is wrong and how to fix it" },
                    "diagnostics": { "type": "array", "items": reference("Diagnostic") } } } } },
                "Diagnostic": { "type": "object", "properties": {
                    "severity": { "enum": ["error", "warning", "info"] },
                    "code": { "type": "string", "description": "A stable code, such as deploy-unsupported" },
                    "path": { "type": "string", "description": "The field or option" },
                    "message": { "type": "string" } } },
                "Design": { "type": "object", "description": "Exactly one of draft, link and config_yml", "properties": {
                    "draft": { "type": "object", "description": "The designer's fields, as in a share link" },
                    "link": { "type": "string", "description": "The text after # of a share link" },
                    "config_yml": { "type": "string", "description": "A TPA config.yml" } } },
                "DeployRequest": { "allOf": [reference("Design"), { "type": "object", "properties": {
                    "profile": { "enum": ["fast", "normal", "safe"], "default": "fast", "description": "fast: failover in seconds; normal: about half a minute; safe: the failover manager's defaults. demo and production are accepted for fast and safe" } } }] },
                "Deployment": { "type": "object", "properties": {
                    "id": { "type": "string" }, "cluster": { "type": "string" },
                    "state": { "enum": ["queued", "deploying", "running", "failed", "destroying", "destroyed"] },
                    "profile": { "enum": ["fast", "normal", "safe"] },
                    "created_ms": { "type": "integer" }, "updated_ms": { "type": "integer" },
                    "error": { "type": ["string", "null"], "description": "Why it failed, in a sentence" },
                    "failure": { "enum": ["step", "interrupted", "destroy", "stopped", null], "description": "What kind of failure: a step of the plan, the process that ran it stopped, destroying it, or machines found stopped" },
                    "link": { "type": "string" },
                    "network": { "type": ["string", "null"], "description": "The network it got from the address pool, when its design left the network at the default" },
                    "owner": { "type": "string", "description": "In a workshop, the attendee it belongs to; empty for the server's own user and the trainer" },
                    "instances": { "type": "array", "items": { "type": "object" } },
                    "connections": { "type": "object", "properties": {
                        "read_write": { "type": "string", "description": "Multi-host, target_session_attrs=read-write" },
                        "read_only": { "type": "string" },
                        "nodes": { "type": "array", "items": { "type": "array", "prefixItems": [{ "type": "string" }, { "type": "string" }] } },
                        "password": { "type": "string", "description": "Where the password is read" } } },
                    "queue_position": { "type": ["integer", "null"] },
                    "queue_wait_secs": { "type": ["integer", "null"], "description": "About how long it waits still, while queued" } } },
                "Signal": { "description": "What a drill's moment or an event means", "enum": ["fault", "detected", "promoted", "writes_refused", "writes_resumed", "settled", "fault_undone", "fenced", "fence_failed", "switchover_finished", "switchover_failed", "witness_follows", "witness_lost", "report", "barman_follows", "rejoined", "scenario_step", "image_build", "other"] },
                "Event": { "type": "object", "properties": {
                    "seq": { "type": "integer" }, "at_ms": { "type": "integer" },
                    "kind": { "enum": ["state", "phase", "started", "finished", "failed", "progress", "drill", "observed"] },
                    "node": { "type": ["string", "null"] }, "title": { "type": "string" }, "detail": { "type": ["string", "null"] },
                    "signal": reference("Signal") } },
                "Status": { "type": "object", "properties": {
                    "primary": { "type": ["string", "null"] },
                    "nodes": { "type": "array", "items": { "type": "object", "properties": {
                        "name": { "type": "string" }, "designed": { "type": "string" },
                        "machine": { "enum": ["running", "created", "restarting", "paused", "exited", "removing", "dead", "missing", "unreachable"] },
                        "postgres": { "enum": ["primary", "standby", "down", null] },
                        "timeline": { "type": ["integer", "null"] }, "lag_bytes": { "type": ["integer", "null"] },
                        "upstream": { "type": ["string", "null"] },
                        "service": service } } },
                    "barman": { "type": ["object", "null"], "properties": {
                        "node": { "type": "string" }, "backs_up": { "type": "string" }, "check_ok": { "type": "boolean" },
                        "backups": { "type": "integer" }, "warning": { "type": ["string", "null"] } } } } },
                "Drill": { "oneOf": [
                    { "type": "object", "properties": { "action": { "const": "kill-primary" }, "retarget_barman": { "type": "boolean", "default": false } }, "required": ["action"] },
                    { "type": "object", "properties": { "action": { "const": "stop-primary" }, "retarget_barman": { "type": "boolean", "default": false } }, "required": ["action"] },
                    { "type": "object", "properties": { "action": { "const": "isolate-primary" }, "seconds": { "type": "integer", "minimum": 5, "maximum": 600, "default": 30 }, "retarget_barman": { "type": "boolean", "default": false } }, "required": ["action"] },
                    { "type": "object", "properties": { "action": { "const": "switchover" }, "to": { "type": ["string", "null"], "description": "The standby that becomes the primary; by default the first replica" }, "retarget_barman": { "type": "boolean", "default": false } }, "required": ["action"] },
                    { "type": "object", "properties": { "action": { "const": "stop-etcd" }, "count": { "type": "integer", "minimum": 1, "maximum": 2, "default": 1 }, "seconds": { "type": "integer", "minimum": 5, "maximum": 600, "default": 30 } }, "required": ["action"] },
                    { "type": "object", "properties": { "action": { "const": "stop-node" }, "node": { "type": "string" } }, "required": ["action", "node"] },
                    { "type": "object", "properties": { "action": { "const": "start" }, "node": { "type": "string" } }, "required": ["action", "node"] },
                    { "type": "object", "properties": { "action": { "const": "retarget-barman" } }, "required": ["action"] }] },
                "DrillReport": { "type": "object", "properties": {
                    "number": { "type": "integer" }, "action": { "type": "string" }, "target": { "type": "string" },
                    "fault_ms": { "type": "integer" }, "new_primary": { "type": ["string", "null"] },
                    "rto_ms": { "type": ["integer", "null"], "description": "From the fault to the first write acknowledged by the node that took over" },
                    "outage_ms": { "type": ["integer", "null"], "description": "How long no write was acknowledged: from the fault, or the last write acknowledged after it, to the first acknowledged by the node that took over (0: none refused)" },
                    "writes_acknowledged": { "type": "integer" }, "writes_failed": { "type": "integer" },
                    "writes_lost": { "type": ["integer", "null"], "description": "Acknowledged writes missing on the new primary" },
                    "rpo_ms": { "type": ["integer", "null"], "description": "From the first lost write's acknowledgement to the fault: how far back the loss reaches (0 when nothing acknowledged before the fault was lost)" },
                    "synchronous": { "type": "boolean" },
                    "timeline": { "type": "array", "items": { "type": "object", "properties": { "after_ms": { "type": "integer" }, "kind": reference("Signal"), "node": { "type": "string" }, "what": { "type": "string" } } } },
                    "finished": { "type": "boolean" }, "note": { "type": ["string", "null"] } } }
            }
        },
        "security": [{}, { "token": [] }],
        "paths": {
            "/api/designs/check": { "post": {
                "summary": "Validate a design and render its config.yml",
                "requestBody": { "required": true, "content": { "application/json": { "schema": reference("Design") } } },
                "responses": ok("200", "Every diagnostic, the link and the design's fields (draft); the config.yml and instances when valid", json!({ "type": "object" }), &["400", "401", "422"]) } },
            "/api/deployments": {
                "get": { "summary": "List deployments, newest first",
                    "responses": ok("200", "The deployments", json!({ "type": "array", "items": reference("Deployment") }), &["401"]) },
                "post": { "summary": "Deploy a design to the local Docker engine",
                    "description": "Checked completely before anything is created. Runs at once, or waits in a queue when the server's limit of parallel deployments is reached.",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": reference("DeployRequest") } } },
                    "responses": ok("202", "Accepted: queued or deploying; follow its events", reference("Deployment"), &["400", "401", "409", "422", "503"]) } },
            "/api/deployments/{id}": {
                "parameters": id_parameter(),
                "get": { "summary": "One deployment", "responses": ok("200", "The deployment", reference("Deployment"), &["401", "404"]) },
                "delete": { "summary": "Destroy a deployment: every container, volume and network of its cluster, and nothing else; a deployment on existing hosts is forgotten, and its hosts keep everything. Repeating it is harmless.",
                    "responses": ok("200", "Destroyed", reference("Deployment"), &["401", "404", "409", "503"]) } },
            "/api/deployments/{id}/events": {
                "parameters": id_parameter(),
                "get": { "summary": "A deployment's events",
                    "description": "JSON by default. With Accept: text/event-stream, server-sent events that go on as they happen (each with its number as id; Last-Event-ID resumes).",
                    "parameters": [
                        { "name": "after", "in": "query", "schema": { "type": "integer", "default": 0 }, "description": "Only events with a greater number" },
                        { "name": "wait", "in": "query", "schema": { "type": "integer", "default": 0, "maximum": 30 }, "description": "JSON only: wait this many seconds for a first new event" }],
                    "responses": ok("200", "The events, in order", json!({ "type": "array", "items": reference("Event") }), &["400", "401", "404", "503"]) } },
            "/api/deployments/{id}/status": {
                "parameters": id_parameter(),
                "get": { "summary": "Live state: each node's role, timeline, lag and upstream, etcd's quorum, where HAProxy sends clients, and Barman's",
                    "responses": ok("200", "The state", reference("Status"), &["401", "404", "503"]) } },
            "/api/deployments/{id}/drills": {
                "parameters": id_parameter(),
                "get": { "summary": "The reports of the deployment's fault drills: recovery time, writes acknowledged and lost, timeline",
                    "responses": ok("200", "The reports, in order", json!({ "type": "array", "items": reference("DrillReport") }), &["401", "404"]) },
                "post": { "summary": "Break or repair the cluster: kill or stop the primary (with a writer and a report), start a node again, point Barman at the primary",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": reference("Drill") } } },
                    "responses": ok("202", "Done or under way; the events show how the cluster reacts, and the event whose signal is `until` ends it", json!({ "type": "object", "properties": { "message": { "type": "string" }, "until": reference("Signal"), "number": { "type": "integer" } } }), &["400", "401", "404", "409", "503"]) } },
            "/api/deployments/{id}/credentials": {
                "parameters": id_parameter(),
                "get": { "summary": "The password of the postgres user, random per deployment",
                    "responses": ok("200", "The credentials", json!({ "type": "object", "properties": { "user": { "type": "string" }, "password": { "type": "string" } } }), &["401", "404"]) } },
            "/api/join": { "post": {
                "summary": "Join the server's workshop with the trainer's code and a display name; needs no token, and gives one",
                "security": [{}],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["code", "name"],
                    "properties": { "code": { "type": "string" }, "name": { "type": "string", "maxLength": 40 } } } } } },
                "responses": ok("201", "Joined: the attendee's own token, for every later call, and who they are",
                    json!({ "type": "object", "properties": { "token": { "type": "string" },
                        "attendee": { "type": "object", "properties": { "id": { "type": "string" }, "name": { "type": "string" }, "workshop": { "type": "string" } } } } }),
                    &["400", "403", "404", "409", "422", "429"]) } },
            "/api/room": { "get": {
                "summary": "The trainer's view of the workshop: every attendee, their deployments and each one's last drill report",
                "responses": ok("200", "The room", json!({ "type": "object", "properties": { "workshop": { "type": "string" },
                    "attendees": { "type": "array", "items": { "type": "object", "properties": {
                        "attendee": { "type": "object" }, "deployments": { "type": "array", "items": reference("Deployment") },
                        "last_reports": { "type": "array", "description": "Pairs of a deployment's id and its last drill report" } } } } } }),
                    &["401", "403", "404"]) } },
            "/api/room/end": { "post": {
                "summary": "End the workshop: destroy every cluster its attendees made, and nothing else; their tokens stop working",
                "responses": ok("200", "Ended", json!({ "type": "object", "properties": { "destroyed": { "type": "integer" }, "attendees": { "type": "integer" } } }), &["401", "403", "404", "409"]) } },
            "/api/scenarios": { "post": {
                "summary": "Run a scenario (timed drills) on every running cluster at once; the trainer's",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object",
                    "properties": { "yaml": { "type": "string", "description": "A scenario file's text" }, "preset": { "type": "string", "description": "A preset's name" } } } } } },
                "responses": ok("202", "Under way: the run's id and its results so far", json!({ "type": "object", "properties": { "id": { "type": "string" }, "results": { "type": "object" } } }), &["400", "401", "403", "409", "422"]) } },
            "/api/scenarios/presets": { "get": { "summary": "The built-in scenarios",
                "responses": ok("200", "The presets", json!({ "type": "array" }), &["401"]) } },
            "/api/scenarios/{id}": {
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" }, "description": "The scenario run's identifier" }],
                "get": { "summary": "A scenario run's results: a row per cluster, each step's recovery time and writes lost",
                    "parameters": [{ "name": "format", "in": "query", "schema": { "enum": ["json", "csv"], "default": "json" } }],
                    "responses": ok("200", "The results", json!({ "type": "object" }), &["400", "401", "403", "404"]) } },
            "/api/openapi.json": { "get": { "summary": "This document", "responses": ok("200", "OpenAPI 3.1", json!({ "type": "object", "required": ["openapi", "paths"] }), &[]) } }
        }
    })
}

/// What the server's guard may answer to any operation: 421 for a host it does not answer to,
/// and 403 for a change that another site's page asked for; and 503 wherever deployments are
/// involved, from a server that runs none.
fn answered_everywhere(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, operations) in paths.iter_mut() {
        let runs_deployments = ["/api/deployments", "/api/scenarios", "/api/room"]
            .iter()
            .any(|p| path.starts_with(p));
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        for (method, operation) in operations.iter_mut() {
            if method == "parameters" {
                continue;
            }
            let mut codes = vec!["421"];
            if method != "get" {
                codes.push("403");
            }
            if runs_deployments {
                codes.push("503");
            }
            if let Some(responses) = operation["responses"].as_object_mut() {
                for (code, response) in error_responses(&codes) {
                    responses.entry(code).or_insert(response);
                }
            }
        }
    }
}
