//! The right-hand column: the link notice, the summary of problems, the diagram, the outputs
//! and the share bar.

use crate::browser;
use crate::components::field::diagnostic_items;
use crate::state::{Action, NoticeSource};
use crate::view::View;
use m1studio_shared::{Diagnostic, Severity};
use std::rc::Rc;
use yew::prelude::*;

/// Props of a panel that only reads the view.
#[derive(Properties, PartialEq)]
pub struct ViewProps {
    /// What the design derives to.
    pub view: Rc<View>,
}

/// Props of the notice about a link or an opened config.yml.
#[derive(Properties, PartialEq)]
pub struct NoticeProps {
    /// What the link or file had that could not be used, or that leaves the M1 layout.
    pub notices: Vec<Diagnostic>,
    /// Where they come from.
    pub source: NoticeSource,
    /// Where "dismiss" goes.
    pub dispatch: Callback<Action>,
}

/// Says what an opened link had that was ignored, so a broken link never opens silently; and
/// what an opened config.yml had outside the M1 layout, or why it could not be opened.
#[component]
pub fn LinkNotice(props: &NoticeProps) -> Html {
    if props.notices.is_empty() {
        return html! {};
    }
    let dismiss = props.dispatch.reform(|_| Action::DismissNotices);
    html! {
        <section class="notice" role="alert" id="link-notice">
            <h2>{ match props.source {
                NoticeSource::Link => "This link was opened with changes",
                NoticeSource::Config => "config.yml was opened as this design",
                NoticeSource::ConfigRefused => "config.yml could not be opened: the design is unchanged",
            } }</h2>
            <ul>{ diagnostic_items(&props.notices) }</ul>
            <button type="button" class="secondary" onclick={dismiss}>{ "Dismiss" }</button>
        </section>
    }
}

/// Every problem and explanation at once, errors first.
#[component]
pub fn Summary(props: &ViewProps) -> Html {
    let view = &props.view;
    let (errors, warnings) = (view.count(Severity::Error), view.count(Severity::Warning));
    let headline = match (errors, warnings) {
        (0, 0) => "The design is valid".to_string(),
        (0, w) => format!(
            "The design is valid, with {w} warning{}",
            if w == 1 { "" } else { "s" }
        ),
        (e, _) => format!("{e} problem{} to fix", if e == 1 { "" } else { "s" }),
    };
    html! {
        <section class={classes!("summary", if errors > 0 { "invalid" } else { "valid" })} aria-labelledby="summary-title">
            <h2 id="summary-title">{ headline }</h2>
            <ul id="diagnostics">{ diagnostic_items(&view.diagnostics) }</ul>
        </section>
    }
}

/// The topology diagram, redrawn on every change, with a download.
#[component]
pub fn Diagram(props: &ViewProps) -> Html {
    let view = &props.view;
    let Some(svg) = view.svg.clone() else {
        return html! {
            <section class="diagram empty" aria-labelledby="diagram-heading">
                <h2 id="diagram-heading">{ "Topology" }</h2>
                <p>{ "Fix the errors above to see the topology." }</p>
            </section>
        };
    };
    let name = view
        .configured
        .as_ref()
        .map(|c| c.design.cluster_name().to_string())
        .unwrap_or_default();
    let download = {
        let svg = svg.clone();
        Callback::from(move |_| {
            let _ = browser::download(&format!("{name}-topology.svg"), "image/svg+xml", &svg);
        })
    };
    html! {
        <section class="diagram" aria-labelledby="diagram-heading">
            <div class="panel-head">
                <h2 id="diagram-heading">{ "Topology" }</h2>
                <button type="button" class="secondary" onclick={download}>{ "Download SVG" }</button>
            </div>
            <div id="diagram" class="diagram-canvas">{ Html::from_html_unchecked(AttrValue::from(svg)) }</div>
        </section>
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Tab {
    Config,
    M1studio,
    Tpaexec,
    Nodes,
    Plan,
}

/// A node's files as one text, each under a header naming its path, owner and mode.
fn node_files_text(plan: &m1studio_shared::plan::Plan, node: &str) -> String {
    plan.files_of(node)
        .iter()
        .map(|f| {
            format!(
                "# ==> {} ({}, {:o})\n{}\n",
                f.path, f.owner, f.mode, f.content
            )
        })
        .collect()
}

/// The generated outputs, each with a copy and a download button.
#[component]
pub fn Outputs(props: &ViewProps) -> Html {
    let view = &props.view;
    let tab = use_state(|| Tab::Config);
    let copied = use_state(|| None::<String>);
    let node = use_state(|| 0usize);
    let plan = view.plan.clone();
    let plan_ok = plan.as_ref().and_then(|p| p.as_ref().ok());
    let node_names: Vec<String> = plan_ok
        .map(|p| p.nodes.iter().map(|n| n.node.clone()).collect())
        .unwrap_or_default();
    let node_name = node_names
        .get(*node)
        .or(node_names.first())
        .cloned()
        .unwrap_or_default();
    let not_deployable = plan
        .as_ref()
        .and_then(|p| p.as_ref().err())
        .map(|problems| {
            problems
                .iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("\n")
        });
    let (text, file, mime): (Option<String>, String, &str) = match *tab {
        Tab::Config => (
            view.configured.as_ref().map(|c| c.config_yml.clone()),
            "config.yml".into(),
            "application/yaml",
        ),
        Tab::M1studio => (
            Some(view.m1studio_script()),
            "configure-m1studio.sh".into(),
            "text/x-shellscript",
        ),
        Tab::Tpaexec => (
            Some(view.tpaexec_script()),
            "configure-tpaexec.sh".into(),
            "text/x-shellscript",
        ),
        Tab::Nodes => (
            plan_ok
                .map(|p| node_files_text(p, &node_name))
                .or(not_deployable.clone()),
            format!("{node_name}-files.txt"),
            "text/plain",
        ),
        Tab::Plan => (
            plan_ok.map(|p| p.describe()).or(not_deployable.clone()),
            "deployment-plan.txt".into(),
            "text/plain",
        ),
    };
    let on_node = {
        let node = node.clone();
        Callback::from(move |e: Event| {
            let index = e
                .target_unchecked_into::<web_sys::HtmlSelectElement>()
                .selected_index();
            node.set(usize::try_from(index).unwrap_or_default());
        })
    };
    let tab_button = |which: Tab, id: &'static str, label: &'static str| {
        let set = {
            let tab = tab.clone();
            let copied = copied.clone();
            Callback::from(move |_| {
                tab.set(which);
                copied.set(None);
            })
        };
        html! {
            <button type="button" role="tab" id={id} aria-selected={(*tab == which).to_string()} aria-controls="output-panel" onclick={set}>{ label }</button>
        }
    };
    let copy = {
        let text = text.clone().unwrap_or_default();
        let copied = copied.clone();
        Callback::from(move |_| {
            let text = text.clone();
            let copied = copied.clone();
            wasm_bindgen_futures::spawn_local(async move {
                copied.set(Some(match browser::copy(&text).await {
                    Ok(()) => "Copied".to_string(),
                    Err(why) => format!("Not copied: {why}; select the text and copy it"),
                }));
            });
        })
    };
    let download = {
        // config.yml leaves with a vault of its own, as tpaexec configure gives each directory.
        let text = match *tab {
            Tab::Config => view.config_download(browser::random_uuid().as_deref()),
            _ => text.clone(),
        }
        .unwrap_or_default();
        let file = file.clone();
        Callback::from(move |_| {
            let _ = browser::download(&file, mime, &text);
        })
    };
    let hostnames = view.hostnames_file.clone().filter(|_| *tab != Tab::Config).map(|names| {
        let on = Callback::from(move |_| {
            let _ = browser::download(m1studio_shared::cmdline::HOSTNAMES_FILE, "text/plain", &names);
        });
        html! { <button type="button" class="secondary" onclick={on}>{ "Download hostnames.txt" }</button> }
    });
    html! {
        <section class="outputs" aria-labelledby="outputs-heading">
            <div class="panel-head">
                <h2 id="outputs-heading">{ "Output" }</h2>
                <div class="actions">
                    <button type="button" class="secondary" onclick={copy} disabled={text.is_none()} id="copy-output">{ "Copy" }</button>
                    <button type="button" class="secondary" onclick={download} disabled={text.is_none()}>{ format!("Download {file}") }</button>
                    { hostnames }
                </div>
            </div>
            <div role="tablist" aria-label="Outputs" class="tabs">
                { tab_button(Tab::Config, "tab-config", "config.yml") }
                { tab_button(Tab::M1studio, "tab-m1studio", "m1studio configure") }
                { tab_button(Tab::Tpaexec, "tab-tpaexec", "tpaexec configure") }
                { tab_button(Tab::Nodes, "tab-nodes", "Node files") }
                { tab_button(Tab::Plan, "tab-plan", "Deployment plan") }
            </div>
            if *tab == Tab::Nodes && !node_names.is_empty() {
                <div class="field node-select">
                    <label for="node-select">{ "Node" }</label>
                    <select id="node-select" onchange={on_node}>
                        { for node_names.iter().map(|name| html! { <option value={name.clone()} selected={*name == node_name}>{ name.clone() }</option> }) }
                    </select>
                </div>
            }
            <p class="status" aria-live="polite">{ (*copied).clone().unwrap_or_default() }</p>
            <div id="output-panel" role="tabpanel">
                if let Some(text) = text {
                    <pre tabindex="0"><code id="output-text">{ text }</code></pre>
                } else {
                    <p>{ "Fix the errors above to generate the output." }</p>
                }
            </div>
        </section>
    }
}

/// The share bar: the link to this design, and a button that copies it.
#[component]
pub fn Share(props: &ViewProps) -> Html {
    let url = format!("{}#{}", browser::base_url(), props.view.link);
    let status = use_state(String::new);
    let copy = {
        let url = url.clone();
        let status = status.clone();
        Callback::from(move |_| {
            let url = url.clone();
            let status = status.clone();
            wasm_bindgen_futures::spawn_local(async move {
                status.set(match browser::copy(&url).await {
                    Ok(()) => "Link copied".to_string(),
                    Err(why) => format!("Not copied: {why}; select the link and copy it"),
                });
            });
        })
    };
    html! {
        <div class="share">
            <label for="share-link">{ "Link to this design" }</label>
            <input id="share-link" type="text" readonly=true value={url}/>
            <button type="button" id="copy-link" onclick={copy}>{ "Copy link" }</button>
            <span class="status" aria-live="polite">{ (*status).clone() }</span>
        </div>
    }
}
