//! The trainer's room, at `/trainer`: every attendee and their clusters, live (state, network,
//! the last drill's recovery time and lost writes), and the means to destroy any of them.

use crate::browser;
use crate::components::api::{Api, Refusal, TOKEN_KEY};
use m1studio_shared::api::{Deployment, DeploymentState, DrillReport, Room};
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
            report.rto_ms.map_or_else(
                || "never".into(),
                |ms| format!("{:.1} s", ms as f64 / 1000.0)
            ),
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
    let needs_token = refusal.as_ref().is_some_and(|r| r.status == 401);
    let row = |name: &str, d: &Deployment, report: Option<&DrillReport>| {
        let asking = confirming.as_deref() == Some(d.id.as_str());
        html! {
            <tr data-id={d.id.clone()} data-state={d.state.as_str()}>
                <th scope="row">{ name.to_string() }</th>
                <td>{ d.cluster.clone() }</td>
                <td class="state">{ d.state.as_str() }</td>
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
            if let Some(room) = &*room {
                <p id="room-summary">{ format!("Workshop {}: {} attendees", room.workshop, room.attendees.len()) }</p>
                <table class="room" id="room">
                    <thead><tr><th>{ "Attendee" }</th><th>{ "Cluster" }</th><th>{ "State" }</th><th>{ "Network" }</th><th>{ "Last drill" }</th><th></th></tr></thead>
                    { for room.attendees.iter().map(|seat| {
                        let name = seat.attendee.name.as_str();
                        html! {
                            <tbody class="seat" data-attendee={seat.attendee.id.clone()}>
                                if seat.deployments.is_empty() {
                                    <tr><th scope="row">{ name.to_string() }</th><td colspan="5" class="hint">{ "no cluster yet" }</td></tr>
                                }
                                { for seat.deployments.iter().map(|d| {
                                    let report = seat.last_reports.iter().find(|(id, _)| *id == d.id).map(|(_, r)| r);
                                    row(name, d, report)
                                }) }
                            </tbody>
                        }
                    }) }
                </table>
            }
        </main>
    }
}
