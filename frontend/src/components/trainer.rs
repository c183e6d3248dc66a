//! The trainer's room, at `/trainer`: every attendee and their clusters, live (state, network,
//! the last drill's recovery time and lost writes), and the means to destroy any of them.

use crate::browser;
use crate::components::api::{Api, Refusal, TOKEN_KEY};
use m1studio_shared::api::{Deployment, DeploymentState, DrillReport, Live, Room};
use m1studio_shared::scenario::{Results, Scenario};
use std::cell::Cell;
use std::rc::Rc;
use yew::prelude::*;

/// How often the room is read again, in milliseconds.
const REFRESH_MS: i32 = 3000;

/// The last drill's recovery time and lost writes, as a cell says them.
fn drill_text(report: Option<&DrillReport>) -> String {
    match report {
        None => "no drill yet".into(),
        Some(report) => format!(
            "{}: writes back after {}, {} lost",
            report.action,
            report
                .rto_ms
                .map_or_else(|| "never".into(), crate::text::seconds),
            report.loss().unwrap_or_else(|| "not counted".into())
        ),
    }
}

/// The room.
#[component]
pub fn Trainer() -> Html {
    let token = use_state(|| browser::session_get(TOKEN_KEY));
    let token_text = use_state(String::new);
    let room = use_state(|| None::<Room>);
    let refusal = use_state(|| None::<Refusal>);
    let confirming = use_state(|| None::<String>);
    let stop = use_mut_ref(|| Rc::new(Cell::new(false)));
    {
        let (token, room, refusal, stop) = (
            token.clone(),
            room.clone(),
            refusal.clone(),
            stop.borrow().clone(),
        );
        use_effect_with((*token).clone(), move |current| {
            let api = Api {
                token: current.clone(),
            };
            let stopped = stop.clone();
            wasm_bindgen_futures::spawn_local(async move {
                while !stopped.get() {
                    match api.call::<Room>("GET", "/api/room", None).await {
                        Ok(now) => {
                            room.set(Some(now));
                            refusal.set(None);
                        }
                        Err(why) => {
                            let done = matches!(why.status, 401 | 403 | 404);
                            refusal.set(Some(why));
                            if done {
                                break;
                            }
                        }
                    }
                    browser::sleep(REFRESH_MS).await;
                }
            });
            let _ = &token;
            move || stop.set(true)
        });
    }
    let on_token_text = {
        let token_text = token_text.clone();
        Callback::from(move |e: InputEvent| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            token_text.set(input.value());
        })
    };
    let use_token = {
        let (token, token_text, stop) = (token.clone(), token_text.clone(), stop.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            browser::session_set(TOKEN_KEY, &token_text);
            *stop.borrow_mut() = Rc::new(Cell::new(false));
            token.set(Some((*token_text).clone()));
        })
    };
    let destroy = |id: String| {
        let (token, confirming, refusal) = ((*token).clone(), confirming.clone(), refusal.clone());
        Callback::from(move |_: MouseEvent| {
            if confirming.as_deref() != Some(id.as_str()) {
                confirming.set(Some(id.clone()));
                return;
            }
            confirming.set(None);
            let (api, id, refusal) = (
                Api {
                    token: token.clone(),
                },
                id.clone(),
                refusal.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!("/api/deployments/{id}");
                if let Err(why) = api
                    .call::<serde::de::IgnoredAny>("DELETE", &path, None)
                    .await
                {
                    refusal.set(Some(why));
                }
            });
        })
    };
    let ending = use_state(|| false);
    let end = {
        let (token, ending, refusal) = ((*token).clone(), ending.clone(), refusal.clone());
        Callback::from(move |_: MouseEvent| {
            if !*ending {
                ending.set(true);
                return;
            }
            ending.set(false);
            let (api, refusal) = (
                Api {
                    token: token.clone(),
                },
                refusal.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(why) = api
                    .call::<serde::de::IgnoredAny>("POST", "/api/room/end", None)
                    .await
                {
                    refusal.set(Some(why));
                }
            });
        })
    };
    let needs_token = refusal.as_ref().is_some_and(|r| r.status == 401);
    let scenarios = html! { <Scenarios token={(*token).clone()} refusal={refusal.clone()}/> };
    let row = |name: &str, d: &Deployment, report: Option<&DrillReport>, live: Option<&Live>| {
        let asking = confirming.as_deref() == Some(d.id.as_str());
        html! {
            <tr data-id={d.id.clone()} data-state={d.state.as_str()}>
                <th scope="row">{ name.to_string() }</th>
                <td>{ d.cluster.clone() }</td>
                <td class="state">{ d.state.as_str() }</td>
                <td class="live" data-primary={live.and_then(|l| l.primary.clone()).unwrap_or_default()}>
                    { live.map(Live::summary).unwrap_or_default() }
                </td>
                <td>{ d.network.clone().unwrap_or_default() }</td>
                <td class="drill">
                    { drill_text(report) }
                    if let Some(svg) = report.and_then(crate::chart::drill_chart) {
                        <div class="room-chart">{ Html::from_html_unchecked(AttrValue::from(svg)) }</div>
                    }
                </td>
                <td>
                    if d.state != DeploymentState::Destroyed {
                        <button type="button" class={if asking { "danger" } else { "secondary" }} onclick={destroy(d.id.clone())}>
                            { if asking { "Destroy it" } else { "Destroy" } }
                        </button>
                    }
                </td>
            </tr>
        }
    };
    html! {
        <main class="trainer" id="trainer">
            <h1>{ "The room" }</h1>
            if needs_token {
                <form onsubmit={use_token} id="trainer-token">
                    <label for="trainer-token-input">{ "The trainer's token (from the file the server named when it started)" }</label>
                    <input id="trainer-token-input" type="password" autocomplete="off" value={(*token_text).clone()} oninput={on_token_text}/>
                    <button type="submit">{ "Open the room" }</button>
                </form>
            } else if let Some(why) = refusal.as_ref() {
                <p class="error" role="alert" id="trainer-error" data-status={why.status.to_string()}>{ why.message.clone() }</p>
            }
            { scenarios }
            if let Some(room) = &*room {
                <p id="room-summary">{ format!("Workshop {}: {} attendees", room.workshop, room.attendees.len()) }</p>
                <button type="button" id="end-workshop" class={if *ending { "danger" } else { "secondary" }} onclick={end}>
                    { if *ending { "Destroy every attendee's cluster and end the workshop" } else { "End the workshop" } }
                </button>
                <table class="room" id="room">
                    <thead><tr><th>{ "Attendee" }</th><th>{ "Cluster" }</th><th>{ "State" }</th><th>{ "Primary and standbys" }</th><th>{ "Network" }</th><th>{ "Last drill" }</th><th></th></tr></thead>
                    { for room.attendees.iter().map(|seat| {
                        let name = seat.attendee.name.as_str();
                        html! {
                            <tbody class="seat" data-attendee={seat.attendee.id.clone()}>
                                if seat.deployments.is_empty() {
                                    <tr><th scope="row">{ name.to_string() }</th><td colspan="6" class="hint">{ "no cluster yet" }</td></tr>
                                }
                                { for seat.deployments.iter().map(|d| {
                                    let report = seat.last_reports.iter().find(|(id, _)| *id == d.id).map(|(_, r)| r);
                                    let live = seat.live.iter().find(|(id, _)| *id == d.id).map(|(_, l)| l);
                                    row(name, d, report, live)
                                }) }
                            </tbody>
                        }
                    }) }
                </table>
            }
        </main>
    }
}

/// A step's outcome, as a cell of the results says it.
fn step_text(step: &m1studio_shared::scenario::StepResult) -> String {
    if let Some(error) = &step.error {
        return format!("failed: {error}");
    }
    match (step.rto_ms, step.writes_lost) {
        (Some(rto), lost) => format!(
            "{}, {} lost",
            crate::text::seconds(rto),
            lost.map_or_else(|| "?".into(), |l| l.to_string())
        ),
        (None, _) => "done".into(),
    }
}

/// The scenarios: pick a preset, run it on every running cluster, and read the results as
/// they come, with CSV and JSON downloads.
#[derive(Properties, PartialEq)]
struct ScenariosProps {
    token: Option<String>,
    refusal: UseStateHandle<Option<Refusal>>,
}

#[component]
fn Scenarios(props: &ScenariosProps) -> Html {
    let presets = use_state(Vec::<Scenario>::new);
    let chosen = use_state(String::new);
    let results = use_state(|| None::<(String, Results)>);
    {
        let (presets, chosen, token) = (presets.clone(), chosen.clone(), props.token.clone());
        use_effect_with(props.token.clone(), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                let api = Api { token };
                if let Ok(list) = api
                    .call::<Vec<Scenario>>("GET", "/api/scenarios/presets", None)
                    .await
                {
                    if let Some(first) = list.first() {
                        chosen.set(first.name.clone());
                    }
                    presets.set(list);
                }
            });
        });
    }
    let on_choose = {
        let chosen = chosen.clone();
        Callback::from(move |e: Event| {
            let select: web_sys::HtmlSelectElement = e.target_unchecked_into();
            chosen.set(select.value());
        })
    };
    let run = {
        let (chosen, results, token, refusal) = (
            chosen.clone(),
            results.clone(),
            props.token.clone(),
            props.refusal.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let body = serde_json::json!({ "preset": *chosen }).to_string();
            let (results, api, refusal) = (
                results.clone(),
                Api {
                    token: token.clone(),
                },
                refusal.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                #[derive(serde::Deserialize)]
                struct Started {
                    id: String,
                    results: Results,
                }
                let started = match api
                    .call::<Started>("POST", "/api/scenarios", Some(body))
                    .await
                {
                    Ok(started) => started,
                    Err(why) => return refusal.set(Some(why)),
                };
                let id = started.id;
                results.set(Some((id.clone(), started.results)));
                loop {
                    browser::sleep(2000).await;
                    let path = format!("/api/scenarios/{id}");
                    match api.call::<Results>("GET", &path, None).await {
                        Ok(now) => {
                            let finished = now.finished;
                            results.set(Some((id.clone(), now)));
                            if finished {
                                break;
                            }
                        }
                        Err(why) => return refusal.set(Some(why)),
                    }
                }
            });
        })
    };
    let download = |format: &'static str| {
        let (results, token) = (results.clone(), props.token.clone());
        Callback::from(move |_: MouseEvent| {
            let Some((id, current)) = (*results).clone() else {
                return;
            };
            let api = Api {
                token: token.clone(),
            };
            wasm_bindgen_futures::spawn_local(async move {
                let text = if format == "csv" {
                    let path = format!("/api/scenarios/{id}?format=csv");
                    match browser::api("GET", &path, None, api.token.as_deref()).await {
                        Ok(answer) => answer.text,
                        Err(_) => return,
                    }
                } else {
                    serde_json::to_string_pretty(&current).unwrap_or_default()
                };
                let mime = if format == "csv" {
                    "text/csv"
                } else {
                    "application/json"
                };
                let _ = browser::download(&format!("scenario-{id}.{format}"), mime, &text);
            });
        })
    };
    html! {
        <section class="scenarios" id="scenarios">
            <h2>{ "Scenario" }</h2>
            <label for="scenario-preset">{ "Run on every running cluster at once:" }</label>
            <select id="scenario-preset" onchange={on_choose}>
                { for presets.iter().map(|p| {
                    let steps: Vec<String> = p.steps.iter().map(|s| format!("t+{} {}", s.at, s.drill.name())).collect();
                    html! { <option value={p.name.clone()} selected={*chosen == p.name}>{ format!("{} ({})", p.name, steps.join("; ")) }</option> }
                }) }
            </select>
            <button type="button" id="scenario-run" onclick={run}>{ "Run" }</button>
            if let Some((_, results)) = &*results {
                <table class="room" id="scenario-results" data-finished={results.finished.to_string()}>
                    <thead><tr><th>{ "Attendee" }</th>{ for results.scenario.steps.iter().map(|s| html! { <th>{ format!("t+{} {}", s.at, s.drill.name()) }</th> }) }</tr></thead>
                    <tbody>
                        { for results.rows.iter().map(|row| html! {
                            <tr data-deployment={row.deployment.clone()}>
                                <th scope="row">{ if row.attendee.is_empty() { row.deployment.clone() } else { row.attendee.clone() } }</th>
                                { for (0..results.scenario.steps.len()).map(|i| html! {
                                    <td>{ row.steps.get(i).map(step_text).unwrap_or_else(|| "…".into()) }</td>
                                }) }
                            </tr>
                        }) }
                    </tbody>
                </table>
                <button type="button" class="secondary" id="scenario-csv" onclick={download("csv")}>{ "Download CSV" }</button>
                <button type="button" class="secondary" id="scenario-json" onclick={download("json")}>{ "Download JSON" }</button>
            }
        </section>
    }
}
