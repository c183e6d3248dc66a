//! The deploy area: deploys the design through the server's API, shows each node's progress,
//! then the live cluster drawn on its diagram, drills (kill the primary, start a node again),
//! a timeline of what happened, connection strings, and destroy.

use crate::browser;
use crate::components::api::{Api, Refusal, TOKEN_KEY};
use crate::components::field::diagnostic_items;
use crate::diagram;
use crate::view::View;
use m1studio_shared::api::{
    ClusterStatus, Deployment, DeploymentEvent, DeploymentState, Drill, DrillReport, EventKind,
    Machine, PostgresRole, Signal,
};
use m1studio_shared::plan::Profile;
use m1studio_shared::{Kind, configure, link};
use std::cell::Cell;
use std::rc::Rc;
use yew::prelude::*;

/// Props of the deploy area.
#[derive(Properties, PartialEq)]
pub struct DeployProps {
    /// The design being edited.
    pub view: Rc<View>,
}

#[derive(Clone, PartialEq)]
enum Server {
    Checking,
    Reachable(String),
    Unreachable,
}

/// The events seen so far.
#[derive(Default, PartialEq)]
struct Events(Vec<DeploymentEvent>);

enum EventsAction {
    Clear,
    Append(Vec<DeploymentEvent>),
}

impl Reducible for Events {
    type Action = EventsAction;
    fn reduce(self: Rc<Self>, action: EventsAction) -> Rc<Self> {
        match action {
            EventsAction::Clear => Rc::new(Events::default()),
            EventsAction::Append(new) => {
                let last = self.0.last().map_or(0, |e| e.seq);
                let mut events = self.0.clone();
                events.extend(new.into_iter().filter(|e| e.seq > last));
                Rc::new(Events(events))
            }
        }
    }
}

/// An answer whose content does not matter.
type Ignored = serde::de::IgnoredAny;

/// The password of a deployment.
#[derive(serde::Deserialize)]
struct Credentials {
    password: String,
}

/// What the designer sends to deploy: its link, which carries the whole design.
#[derive(serde::Serialize)]
struct Request<'a> {
    link: &'a str,
    profile: Profile,
}

/// Follows deployment `id` until `generation` moves on: its events (long polling) and, once
/// it has containers, its live status every two seconds.
fn follow(
    api: Api,
    id: String,
    generation: Rc<Cell<u32>>,
    deployment: UseStateHandle<Option<Deployment>>,
    events: UseReducerHandle<Events>,
    status: UseStateHandle<Option<ClusterStatus>>,
    reports: UseStateHandle<Vec<DrillReport>>,
) {
    let mine = generation.get();
    {
        let (api, id, generation, deployment) = (
            api.clone(),
            id.clone(),
            generation.clone(),
            deployment.clone(),
        );
        wasm_bindgen_futures::spawn_local(async move {
            let mut after = 0;
            while generation.get() == mine {
                let path = format!("/api/deployments/{id}/events?after={after}&wait=20");
                match api.call::<Vec<DeploymentEvent>>("GET", &path, None).await {
                    Ok(new) if generation.get() == mine => {
                        let changed = new.iter().any(|e| e.kind == EventKind::State);
                        if let Some(last) = new.last() {
                            after = last.seq;
                        }
                        events.dispatch(EventsAction::Append(new));
                        if changed
                            && let Ok(fresh) = api
                                .call::<Deployment>("GET", &format!("/api/deployments/{id}"), None)
                                .await
                        {
                            let done = fresh.state == DeploymentState::Destroyed;
                            deployment.set(Some(fresh));
                            if done {
                                return;
                            }
                        }
                    }
                    Ok(_) => return,
                    Err(_) => browser::sleep(2000).await,
                }
            }
        });
    }
    wasm_bindgen_futures::spawn_local(async move {
        while generation.get() == mine {
            let path = format!("/api/deployments/{id}/status");
            if let Ok(live) = api.call::<ClusterStatus>("GET", &path, None).await
                && generation.get() == mine
            {
                status.set(Some(live));
            }
            let path = format!("/api/deployments/{id}/drills");
            if let Ok(list) = api.call::<Vec<DrillReport>>("GET", &path, None).await
                && generation.get() == mine
                && *reports != list
            {
                reports.set(list);
            }
            browser::sleep(2000).await;
        }
    });
}

/// The deploy area.
#[component]
pub fn Deploy(props: &DeployProps) -> Html {
    let server = use_state(|| Server::Checking);
    let token = use_state(|| browser::session_get(TOKEN_KEY));
    let needs_token = use_state(|| false);
    let token_text = use_state(String::new);
    // The profile chosen, or none: the platform's default, as the preview shows it.
    let profile = use_state(|| None::<Profile>);
    let platform = props
        .view
        .configured
        .as_ref()
        .map_or(m1studio_shared::Platform::Docker, |c| {
            c.design.platform().platform()
        });
    let bare = platform == m1studio_shared::Platform::Bare;
    let chosen = profile.unwrap_or(Profile::for_platform(platform));
    let deployment = use_state(|| None::<Deployment>);
    let events = use_reducer(Events::default);
    let status = use_state(|| None::<ClusterStatus>);
    let reports = use_state(Vec::<DrillReport>::new);
    let retarget_after = use_state(|| true);
    let refusal = use_state(|| None::<Refusal>);
    let busy = use_state(|| false);
    let copied = use_state(|| None::<String>);
    let generation = use_mut_ref(|| Rc::new(Cell::new(0u32)));
    let generation: Rc<Cell<u32>> = generation.borrow().clone();
    let api = Api {
        token: (*token).clone(),
    };
    let cluster_name = props
        .view
        .configured
        .as_ref()
        .map(|c| c.design.cluster_name().to_string());

    // Attaches to a deployment and follows it.
    let attach = {
        let (api, generation, deployment, events, status, reports) = (
            api.clone(),
            generation.clone(),
            deployment.clone(),
            events.clone(),
            status.clone(),
            reports.clone(),
        );
        Callback::from(move |found: Deployment| {
            generation.set(generation.get() + 1);
            events.dispatch(EventsAction::Clear);
            status.set(None);
            reports.set(Vec::new());
            let id = found.id.clone();
            deployment.set(Some(found));
            follow(
                api.clone(),
                id,
                generation.clone(),
                deployment.clone(),
                events.clone(),
                status.clone(),
                reports.clone(),
            );
        })
    };

    // Is the server there, and does it already run this cluster?
    {
        let (server, needs_token, attach, api) = (
            server.clone(),
            needs_token.clone(),
            attach.clone(),
            api.clone(),
        );
        let cluster_name = cluster_name.clone();
        use_effect_with((*token).clone(), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                let Some(version) = browser::server_version().await else {
                    server.set(Server::Unreachable);
                    return;
                };
                server.set(Server::Reachable(version));
                match api
                    .call::<Vec<Deployment>>("GET", "/api/deployments", None)
                    .await
                {
                    Ok(list) => {
                        needs_token.set(false);
                        if let Some(found) = list.into_iter().find(|d| {
                            d.state != DeploymentState::Destroyed
                                && Some(&d.cluster) == cluster_name.as_ref()
                        }) {
                            attach.emit(found);
                        }
                    }
                    Err(refusal) if refusal.status == 401 => needs_token.set(true),
                    Err(_) => {}
                }
            });
        });
    }
    // Stop following when the area goes away.
    {
        let generation = generation.clone();
        use_effect_with((), move |_| move || generation.set(generation.get() + 1));
    }

    let deploy = {
        let (api, refusal, busy, attach) =
            (api.clone(), refusal.clone(), busy.clone(), attach.clone());
        let link_text = props.view.link.clone();
        Callback::from(move |_: MouseEvent| {
            let request = Request {
                link: &link_text,
                profile: chosen,
            };
            let Ok(body) = serde_json::to_string(&request) else {
                return;
            };
            let (api, refusal, busy, attach) =
                (api.clone(), refusal.clone(), busy.clone(), attach.clone());
            busy.set(true);
            refusal.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                match api
                    .call::<Deployment>("POST", "/api/deployments", Some(body))
                    .await
                {
                    Ok(created) => attach.emit(created),
                    Err(why) => refusal.set(Some(why)),
                }
                busy.set(false);
            });
        })
    };

    let act = |method: &'static str, path_of: fn(&str) -> String, body: Option<String>| {
        let (api, refusal, deployment, busy) = (
            api.clone(),
            refusal.clone(),
            deployment.clone(),
            busy.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let Some(id) = deployment.as_ref().map(|d| d.id.clone()) else {
                return;
            };
            let (api, refusal, busy, body) =
                (api.clone(), refusal.clone(), busy.clone(), body.clone());
            busy.set(true);
            refusal.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(why) = api.call::<Ignored>(method, &path_of(&id), body).await {
                    refusal.set(Some(why));
                }
                busy.set(false);
            });
        })
    };
    let kill_primary = act(
        "POST",
        |id| format!("/api/deployments/{id}/drills"),
        serde_json::to_string(&Drill::KillPrimary {
            retarget_barman: *retarget_after,
        })
        .ok(),
    );
    let isolate_primary = act(
        "POST",
        |id| format!("/api/deployments/{id}/drills"),
        serde_json::to_string(&Drill::IsolatePrimary {
            seconds: 30,
            retarget_barman: *retarget_after,
        })
        .ok(),
    );
    let switchover = act(
        "POST",
        |id| format!("/api/deployments/{id}/drills"),
        serde_json::to_string(&Drill::Switchover {
            to: None,
            retarget_barman: *retarget_after,
        })
        .ok(),
    );
    let stop_etcd = |count: u32| {
        act(
            "POST",
            |id| format!("/api/deployments/{id}/drills"),
            serde_json::to_string(&Drill::StopEtcd { count, seconds: 30 }).ok(),
        )
    };
    let (stop_etcd_one, stop_etcd_two) = (stop_etcd(1), stop_etcd(2));
    let retarget = act(
        "POST",
        |id| format!("/api/deployments/{id}/drills"),
        serde_json::to_string(&Drill::RetargetBarman).ok(),
    );
    let on_retarget_after = {
        let retarget_after = retarget_after.clone();
        Callback::from(move |e: Event| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            retarget_after.set(input.checked());
        })
    };
    // Destroying asks first: the page shows what goes, and a second button does it.
    let confirming = use_state(|| false);
    let destroy = {
        let (confirming, go) = (
            confirming.clone(),
            act("DELETE", |id| format!("/api/deployments/{id}"), None),
        );
        Callback::from(move |e: MouseEvent| {
            confirming.set(false);
            go.emit(e);
        })
    };
    let ask = {
        let confirming = confirming.clone();
        Callback::from(move |_: MouseEvent| confirming.set(true))
    };
    let keep = {
        let confirming = confirming.clone();
        Callback::from(move |_: MouseEvent| confirming.set(false))
    };

    let use_token = {
        let (token, token_text) = (token.clone(), token_text.clone());
        Callback::from(move |_: MouseEvent| {
            browser::session_set(TOKEN_KEY, &token_text);
            token.set(Some((*token_text).clone()));
        })
    };
    let on_token_input = {
        let token_text = token_text.clone();
        Callback::from(move |e: InputEvent| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            token_text.set(input.value());
        })
    };
    let on_profile = {
        let profile = profile.clone();
        Callback::from(move |e: Event| {
            let select: web_sys::HtmlSelectElement = e.target_unchecked_into();
            profile.set(Profile::parse(&select.value()));
        })
    };

    // Where this design deploys, when not on the server's Docker engine.
    let elsewhere = props
        .view
        .configured
        .as_ref()
        .and_then(|c| m1studio_shared::api::server_refusal(&c.design, true));
    let (class, text) = match &*server {
        Server::Checking => ("checking", "Looking for the m1studio server…".to_string()),
        Server::Reachable(version) if elsewhere.is_some() => (
            "reachable",
            format!("Connected to the m1studio server {version}."),
        ),
        Server::Reachable(version) => (
            "reachable",
            format!(
                "Connected to the m1studio server {version}: this design can be deployed to its Docker engine."
            ),
        ),
        Server::Unreachable => (
            "unreachable",
            "The m1studio server isn't reachable, so this design cannot be deployed from here. Start it with `m1studio serve` and open the designer from it.".to_string(),
        ),
    };
    let reachable = matches!(*server, Server::Reachable(_));
    let live_deployment = deployment
        .as_ref()
        .filter(|d| d.state != DeploymentState::Destroyed);
    let can_deploy = reachable
        && !*needs_token
        && !*busy
        && props.view.configured.is_some()
        && elsewhere.is_none()
        && live_deployment.is_none();

    let token_form = if *needs_token {
        html! {
            <div class="token" id="token-form">
                <label for="token-input">{ "This server needs its token (see `m1studio serve --token`)" }</label>
                <input id="token-input" type="password" autocomplete="off" value={(*token_text).clone()} oninput={on_token_input}/>
                <button type="button" onclick={use_token}>{ "Use token" }</button>
            </div>
        }
    } else {
        html! {}
    };
    let refusal_html = match &*refusal {
        Some(r) => html! {
            <div class="deploy-error" role="alert" id="deploy-error">
                <p>{ r.message.lines().next().unwrap_or_default().to_string() }</p>
                if !r.diagnostics.is_empty() {
                    <ul>{ diagnostic_items(&r.diagnostics) }</ul>
                }
            </div>
        },
        None => html! {},
    };
    let manager = props
        .view
        .configured
        .as_ref()
        .map_or(m1studio_shared::FailoverManager::Repmgr, |c| {
            c.design.failover()
        });
    let controls = if reachable && live_deployment.is_none() {
        html! {
            <div class="deploy-controls">
                <label for="deploy-profile">{ "Failover timing" }</label>
                <select id="deploy-profile" onchange={on_profile}>
                    { for Profile::ALL.iter().map(|p| html! {
                        <option value={p.as_str()} selected={chosen == *p}>{ p.explain(manager) }</option>
                    }) }
                </select>
                <button type="button" id="deploy-button" disabled={!can_deploy} onclick={deploy}>{ if bare { "Deploy to the hosts" } else { "Deploy to Docker" } }</button>
                if let Some(elsewhere) = &elsewhere {
                    <p class="hint" id="deploy-elsewhere">{ elsewhere.message.clone() }</p>
                }
            </div>
        }
    } else {
        html! {}
    };

    let body = match &*deployment {
        Some(d) => deployment_view(
            d,
            &events.0,
            status.as_ref(),
            *busy,
            Drills {
                kill_primary,
                isolate_primary,
                switchover,
                stop_etcd_one,
                stop_etcd_two,
                retarget,
                retarget_after: *retarget_after,
                on_retarget_after,
                reports: &reports,
            },
            Destroying {
                ask,
                confirming: *confirming,
                destroy,
                keep,
            },
            start_buttons(&api, d, status.as_ref(), &refusal, &busy),
            copy_password(&api, d, &copied),
            copied.as_deref(),
        ),
        None => html! {},
    };
    html! {
        <section class="deploy" aria-labelledby="deploy-heading">
            <h2 id="deploy-heading">{ "Deploy" }</h2>
            <p id="deploy-status" class={classes!("server", class)}>{ text }</p>
            { token_form }
            { controls }
            { refusal_html }
            { body }
        </section>
    }
}

/// Per node: "Start … again" for a stopped one, "Stop …" for a running standby or Barman.
fn start_buttons(
    api: &Api,
    deployment: &Deployment,
    status: Option<&ClusterStatus>,
    refusal: &UseStateHandle<Option<Refusal>>,
    busy: &UseStateHandle<bool>,
) -> Html {
    let Some(status) = status.filter(|_| deployment.state == DeploymentState::Running) else {
        return html! {};
    };
    status
        .nodes
        .iter()
        .filter(|n| n.machine != Machine::Missing && n.postgres != Some(PostgresRole::Primary))
        .map(|n| {
            let (api, refusal, busy) = (api.clone(), refusal.clone(), busy.clone());
            let disabled = *busy;
            let (id, node) = (deployment.id.clone(), n.name.clone());
            let stopped = n.machine != Machine::Running;
            let drill = if stopped {
                Drill::Start { node: node.clone() }
            } else {
                Drill::StopNode { node: node.clone() }
            };
            let onclick = Callback::from(move |_: MouseEvent| {
                let body = serde_json::to_string(&drill).unwrap_or_default();
                let (api, refusal, busy, id) =
                    (api.clone(), refusal.clone(), busy.clone(), id.clone());
                busy.set(true);
                wasm_bindgen_futures::spawn_local(async move {
                    let path = format!("/api/deployments/{id}/drills");
                    if let Err(why) = api.call::<Ignored>("POST", &path, Some(body)).await {
                        refusal.set(Some(why));
                    }
                    busy.set(false);
                });
            });
            let (class, text) = if stopped {
                ("secondary start-node", format!("Start {node} again"))
            } else {
                ("secondary stop-node", format!("Stop {node}"))
            };
            html! {
                <button type="button" class={class} data-node={node.clone()} disabled={disabled} {onclick}>{ text }</button>
            }
        })
        .collect()
}

/// Copies the postgres password to the clipboard without ever showing it.
fn copy_password(
    api: &Api,
    deployment: &Deployment,
    copied: &UseStateHandle<Option<String>>,
) -> Callback<MouseEvent> {
    let (api, copied, id) = (api.clone(), copied.clone(), deployment.id.clone());
    Callback::from(move |_: MouseEvent| {
        let (api, copied, id) = (api.clone(), copied.clone(), id.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let path = format!("/api/deployments/{id}/credentials");
            let outcome = match api.call::<Credentials>("GET", &path, None).await {
                Ok(credentials) => match browser::copy(&credentials.password).await {
                    Ok(()) => "The password of postgres is on the clipboard.".to_string(),
                    Err(e) => e,
                },
                Err(why) => why.message,
            };
            copied.set(Some(outcome));
        });
    })
}

/// The drill buttons and what the drills measured.
struct Drills<'a> {
    kill_primary: Callback<MouseEvent>,
    isolate_primary: Callback<MouseEvent>,
    switchover: Callback<MouseEvent>,
    stop_etcd_one: Callback<MouseEvent>,
    stop_etcd_two: Callback<MouseEvent>,
    retarget: Callback<MouseEvent>,
    retarget_after: bool,
    on_retarget_after: Callback<Event>,
    reports: &'a [DrillReport],
}

/// The latest drill's report: recovery time, writes, loss, and its timeline.
fn report_view(report: &DrillReport) -> Html {
    let rto = report
        .rto_ms
        .map_or_else(|| "not yet".to_string(), crate::text::seconds);
    let lost = report.loss().unwrap_or_else(|| "being counted".to_string());
    html! {
        <div class="drill-report" id="drill-report" data-finished={report.finished.to_string()}>
            <h4>{ format!("Drill {}: {} {}", report.number, report.action, report.target) }</h4>
            <dl>
                <dt>{ "Writes resumed after" }</dt><dd id="report-rto">{ rto }</dd>
                <dt>{ "Clients could not write for" }</dt><dd id="report-outage">{ report.outage_ms.map_or_else(|| "not yet".to_string(), crate::text::seconds) }</dd>
                <dt>{ "New primary" }</dt><dd>{ report.new_primary.clone().unwrap_or_else(|| "none yet".into()) }</dd>
                <dt>{ "Writes acknowledged" }</dt><dd id="report-acknowledged">{ report.writes_acknowledged }</dd>
                <dt>{ "Writes refused during the outage" }</dt><dd>{ report.writes_failed }</dd>
                <dt>{ "Acknowledged writes lost" }</dt><dd id="report-lost">{ lost }</dd>
            </dl>
            if let Some(note) = &report.note {
                <p class="warning">{ note.clone() }</p>
            }
            if let Some(svg) = crate::chart::drill_chart(report) {
                <div class="drill-chart" id="drill-chart">
                    { Html::from_html_unchecked(AttrValue::from(svg.clone())) }
                    <button type="button" class="secondary" id="chart-download" onclick={
                        let name = format!("drill-{}-{}.svg", report.number, report.action);
                        Callback::from(move |_: MouseEvent| {
                            let _ = browser::download(&name, "image/svg+xml", &svg);
                        })
                    }>{ "Download the chart (SVG)" }</button>
                </div>
            }
            <ol class="timeline">
                { for report.timeline.iter().map(|m| html! {
                    <li><span class="at">{ format!("{} s", crate::text::signed(m.after_ms as f64 / 1000.0, 1)) }</span><span class="what">{ m.what.clone() }</span></li>
                }) }
            </ol>
        </div>
    }
}

fn seconds_between(from: u64, to: u64) -> String {
    format!("+{}", crate::text::seconds(to.saturating_sub(from)))
}

/// The destroy button, and the question it asks first.
struct Destroying {
    /// Asks.
    ask: Callback<MouseEvent>,
    /// Whether the question is shown.
    confirming: bool,
    /// Destroys.
    destroy: Callback<MouseEvent>,
    /// Keeps the cluster.
    keep: Callback<MouseEvent>,
}

#[allow(clippy::too_many_arguments)]
fn deployment_view(
    d: &Deployment,
    events: &[DeploymentEvent],
    status: Option<&ClusterStatus>,
    busy: bool,
    drills: Drills<'_>,
    destroying: Destroying,
    start_buttons: Html,
    copy_password: Callback<MouseEvent>,
    copied: Option<&str>,
) -> Html {
    let state = d.state.as_str();
    let phase = events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::Phase)
        .map(|e| {
            format!(
                "Phase {}: {}",
                e.detail.clone().unwrap_or_default(),
                e.title
            )
        });
    // Before any phase: the node image being built, its latest stage and how long it has taken.
    let image_build = if phase.is_none() {
        let building: Vec<&DeploymentEvent> = events
            .iter()
            .filter(|e| e.signal == Some(Signal::ImageBuild))
            .collect();
        match (building.first(), building.last()) {
            (Some(first), Some(last)) => Some(format!(
                "Building the node image, once for every later deployment: {} ({} s)",
                last.detail.clone().unwrap_or_else(|| last.title.clone()),
                crate::text::fixed(last.at_ms.saturating_sub(first.at_ms) as f64 / 1000.0, 0)
            )),
            _ => None,
        }
    } else {
        None
    };
    // Each node's latest step.
    let rows: Html = d
        .instances
        .iter()
        .map(|i| {
            let (step, mark) = node_step(events, &i.name);
            html! {
                <tr data-node={i.name.clone()} class={mark}>
                    <td class="node-name">{ i.name.clone() }</td>
                    <td>{ i.kind.as_str() }</td>
                    <td class="step">{ step }</td>
                    <td class="mark">{ mark }</td>
                </tr>
            }
        })
        .collect();
    let failure = events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::Failed)
        .map(|e| {
            html! {
                <pre class="failure" id="deploy-failure">{ format!("{} on {}: {}\n{}", e.title, e.node.clone().unwrap_or_default(), "failed", e.detail.clone().unwrap_or_default()) }</pre>
            }
        });
    let live = status.and_then(|status| {
        let (draft, _) = link::decode(&d.link);
        let configured = configure(&draft).0?;
        Some(diagram::live_svg(
            &configured.design,
            &configured.topology,
            status,
        ))
    });
    let first_drill = events
        .iter()
        .find(|e| e.kind == EventKind::Drill)
        .map(|e| e.at_ms);
    let timeline: Html = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::State | EventKind::Drill | EventKind::Observed | EventKind::Failed
            )
        })
        .map(|e| {
            let at = seconds_between(
                first_drill.filter(|f| *f <= e.at_ms).unwrap_or(d.created_ms),
                e.at_ms,
            );
            let kind = match e.kind {
                EventKind::State => "state",
                EventKind::Drill => "drill",
                EventKind::Observed => "observed",
                _ => "failed",
            };
            html! {
                <li class={kind} data-kind={kind}>
                    <span class="at">{ at }</span>
                    <span class="what">{ e.title.clone() }</span>
                    if let Some(detail) = e.detail.as_ref().filter(|_| e.kind != EventKind::Failed) {
                        <span class="detail">{ format!(" ({detail})") }</span>
                    }
                </li>
            }
        })
        .collect();
    let running = d.state == DeploymentState::Running;
    let has_primary = status.is_some_and(|s| s.primary.is_some());
    let has_etcd = d.instances.iter().any(|i| i.kind == Kind::Etcd);
    let barman_warning = status
        .and_then(|s| s.barman.as_ref())
        .and_then(|b| b.warning.clone());
    let primary_now = status
        .and_then(|s| {
            s.nodes
                .iter()
                .find(|n| n.postgres == Some(PostgresRole::Primary))
        })
        .map(|n| n.name.clone());
    html! {
        <div class="deployment" id="deployment" data-state={state} data-id={d.id.clone()}>
            <h3>
                { format!("Cluster {} ", d.cluster) }
                <span id="deployment-state" class={classes!("state", state)}>{ state }</span>
            </h3>
            if let Some(position) = d.queue_position {
                <p class="queued" id="deployment-queued">{ match d.queue_wait_secs {
                    Some(secs) => format!("Waiting for a free slot: number {position} in the queue, about {secs} s."),
                    None => format!("Waiting for a free slot: number {position} in the queue."),
                } }</p>
            }
            if let Some(error) = &d.error {
                <p class="error" id="deployment-error">{ error.clone() }</p>
            }
            if let Some(building) = image_build.filter(|_| !running) {
                <p class="phase" id="image-build">{ building }</p>
            }
            if let Some(phase) = phase.filter(|_| !running) {
                <p class="phase" id="deploy-phase">{ phase }</p>
            }
            if !running {
                <table class="progress" id="deploy-progress">
                    <thead><tr><th>{ "Node" }</th><th>{ "Kind" }</th><th>{ "Step" }</th><th></th></tr></thead>
                    <tbody>{ rows }</tbody>
                </table>
            }
            { failure.unwrap_or_default() }
            if let Some(svg) = live {
                <div id="live-diagram" class="diagram-canvas live-diagram" data-primary={primary_now.unwrap_or_default()}>
                    { Html::from_html_unchecked(AttrValue::from(svg)) }
                </div>
            }
            if let Some(warning) = barman_warning {
                <p class="warning" id="barman-warning">
                    { warning }
                    if running && has_primary {
                        <button type="button" class="secondary" id="retarget-button" disabled={busy} onclick={drills.retarget}>{ "Point Barman at the primary" }</button>
                    }
                </p>
            }
            <div class="drills">
                if running {
                    <button type="button" id="kill-primary" class="danger" disabled={busy || !has_primary} onclick={drills.kill_primary}>{ "Kill the primary" }</button>
                    <button type="button" id="isolate-primary" class="danger" disabled={busy || !has_primary} onclick={drills.isolate_primary}>{ "Cut the primary off for 30 s" }</button>
                    <button type="button" id="switchover" disabled={busy || !has_primary} onclick={drills.switchover} title="A planned handover to the first replica: the primary stops cleanly and becomes its standby">{ "Switch over" }</button>
                    if has_etcd {
                        <button type="button" id="stop-etcd-one" class="danger" disabled={busy || !has_primary} onclick={drills.stop_etcd_one} title="Two of three members are still a quorum: nothing should change">{ "Stop 1 etcd member for 30 s" }</button>
                        <button type="button" id="stop-etcd-two" class="danger" disabled={busy || !has_primary} onclick={drills.stop_etcd_two} title="No quorum: Patroni cannot keep or elect a leader, so writes stop and no failover happens">{ "Stop 2 etcd members for 30 s" }</button>
                    }
                    <label class="inline">
                        <input type="checkbox" id="retarget-after" checked={drills.retarget_after} onchange={drills.on_retarget_after}/>
                        { "then point Barman at the new primary" }
                    </label>
                }
                { start_buttons }
                if d.state != DeploymentState::Destroyed && !destroying.confirming {
                    <button type="button" id="destroy-button" class="secondary" disabled={busy} onclick={destroying.ask}>{ if d.state == DeploymentState::Deploying { "Stop and destroy" } else { "Destroy" } }</button>
                }
                if d.state != DeploymentState::Destroyed && destroying.confirming {
                    <span class="confirm" id="destroy-confirm" role="alertdialog" aria-label="Confirm destroying the cluster">
                        { format!("Destroy cluster {} and all its data? ", d.cluster) }
                        <button type="button" id="destroy-confirmed" class="danger" disabled={busy} onclick={destroying.destroy}>{ "Destroy it" }</button>
                        <button type="button" id="destroy-kept" class="secondary" onclick={destroying.keep}>{ "Keep it" }</button>
                    </span>
                }
            </div>
            if let Some(left) = d.expires_ms.filter(|_| d.state != DeploymentState::Destroyed).map(|at| at as f64 - browser::epoch_ms()).filter(|left| *left < 10.0 * 60_000.0) {
                <p class="warning" id="expiry" role="status">{ format!("This cluster is destroyed in {} min, when its time is up: keep what you need.", (left.max(0.0) / 60_000.0).ceil()) }</p>
            }
            if running {
                <div class="connections" id="connections">
                    <h4>{ "Connect" }</h4>
                    <p>{ "Writes, wherever the primary is:" }</p>
                    <code id="conn-read-write">{ d.connections.read_write.clone() }</code>
                    <p>{ "Reads, from a standby when one is up:" }</p>
                    <code id="conn-read-only">{ d.connections.read_only.clone() }</code>
                    <p>
                        <button type="button" class="secondary" id="copy-password" onclick={copy_password}>{ "Copy the postgres password" }</button>
                        if let Some(copied) = copied {
                            <span class="copied">{ copied.to_string() }</span>
                        }
                    </p>
                </div>
            }
            { drills.reports.last().map(report_view).unwrap_or_default() }
            <h4>{ "Timeline" }</h4>
            <ol class="timeline" id="timeline">{ timeline }</ol>
        </div>
    }
}

/// Node `node`'s row in the progress table: its latest step and a mark (`waiting`, `working`,
/// `done` or `failed`). A node that does two things at once (Barman backs up while `barman
/// check` runs) is working while either is under way.
fn node_step(events: &[DeploymentEvent], node: &str) -> (String, &'static str) {
    let steps: Vec<&DeploymentEvent> = events
        .iter()
        .filter(|e| {
            e.node.as_deref() == Some(node)
                && matches!(
                    e.kind,
                    EventKind::Started | EventKind::Finished | EventKind::Failed
                )
        })
        .collect();
    // A step is under way while it has started more often than it has ended: two lanes may
    // run steps of the same title.
    let count = |started: bool, title: &str| {
        steps
            .iter()
            .filter(|e| (e.kind == EventKind::Started) == started && e.title == title)
            .count()
    };
    let under_way = steps
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::Started && count(true, &e.title) > count(false, &e.title));
    match (steps.last(), under_way) {
        (Some(e), _) if e.kind == EventKind::Failed => (e.title.clone(), "failed"),
        (_, Some(e)) => (e.title.clone(), "working"),
        (Some(e), None) => (e.title.clone(), "done"),
        (None, None) => ("waiting".to_string(), "waiting"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, node: &str, title: &str) -> DeploymentEvent {
        DeploymentEvent {
            seq: 0,
            at_ms: 0,
            kind,
            node: Some(node.into()),
            title: title.into(),
            detail: None,
            signal: None,
        }
    }

    #[test]
    fn a_node_is_working_while_any_of_its_lanes_is() {
        use EventKind::{Failed, Finished, Started};
        let mut events = vec![
            event(Started, "karma", "a WAL file is archived"),
            event(Started, "karma", "a WAL file is archived"),
            event(Finished, "karma", "a WAL file is archived"),
            event(Started, "karma", "take the first backup"),
            event(Finished, "karma", "a WAL file is archived"),
            event(Started, "karma", "barman check is green"),
            event(Finished, "karma", "barman check is green"),
        ];
        // The check finished last, but the backup is still under way.
        assert_eq!(
            node_step(&events, "karma"),
            ("take the first backup".to_string(), "working")
        );
        events.push(event(Finished, "karma", "take the first backup"));
        assert_eq!(
            node_step(&events, "karma"),
            ("take the first backup".to_string(), "done")
        );
        events.push(event(Started, "karma", "back up kestrel"));
        events.push(event(Failed, "karma", "back up kestrel"));
        assert_eq!(
            node_step(&events, "karma"),
            ("back up kestrel".to_string(), "failed")
        );
        assert_eq!(
            node_step(&events, "quartz"),
            ("waiting".to_string(), "waiting")
        );
    }
}
