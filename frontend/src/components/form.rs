//! The design form: every option of `configure`, grouped as people think about them, each with
//! the diagnostics `shared` gives about it. Options that do not apply say why.

use crate::components::field::{Field, described_by};
use crate::state::Action;
use crate::view::View;
use m1studio_shared::Field as F;
use m1studio_shared::spec::{
    AWS_REGIONS, DEFAULT_NETWORK, DISTRIBUTIONS, Distribution, MAX_CASCADED_REPLICAS, VERSIONS,
    default_os_version,
};
use m1studio_shared::{Diagnostic, Draft, FailoverManager, Flavour, Platform};
use std::rc::Rc;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

/// What the form needs.
#[derive(Properties, PartialEq)]
pub struct FormProps {
    /// The design being edited.
    pub draft: Draft,
    /// The host names as typed.
    pub hostnames_text: AttrValue,
    /// What it derives to.
    pub view: Rc<View>,
    /// Where edits go.
    pub dispatch: Callback<Action>,
}

fn diags(view: &View, path: &str) -> Vec<Diagnostic> {
    view.about(path).cloned().collect()
}

fn on_select(dispatch: &Callback<Action>, field: F) -> Callback<Event> {
    dispatch.reform(move |e: Event| {
        Action::Set(
            field,
            e.target_unchecked_into::<HtmlSelectElement>().value(),
        )
    })
}

fn on_input(dispatch: &Callback<Action>, field: F) -> Callback<InputEvent> {
    dispatch.reform(move |e: InputEvent| {
        Action::Set(field, e.target_unchecked_into::<HtmlInputElement>().value())
    })
}

/// `<option>`s for `(value, text)` pairs, with `current` selected.
fn options(items: &[(String, String)], current: &str) -> Html {
    items
        .iter()
        .map(|(value, text)| html! { <option value={value.clone()} selected={value == current}>{ text.clone() }</option> })
        .collect()
}

/// The design form.
#[component]
pub fn DesignForm(props: &FormProps) -> Html {
    let FormProps {
        draft,
        hostnames_text,
        view,
        dispatch,
    } = props;
    let flavour = draft.postgres_flavour.clone().unwrap_or_default();
    let failover = draft.failover_manager.clone().unwrap_or_default();
    let platform = draft
        .platform
        .clone()
        .unwrap_or_else(|| Platform::Aws.as_str().to_string());
    let patroni = F::Dcs.applies(draft);
    let aws = F::Region.applies(draft);

    let flavours: Vec<(String, String)> = Flavour::ALL
        .iter()
        .map(|f| (f.as_str().into(), f.title().into()))
        .collect();
    let versions: Vec<(String, String)> =
        VERSIONS.map(|v| (v.to_string(), v.to_string())).collect();
    let managers: Vec<(String, String)> = FailoverManager::ALL
        .iter()
        .map(|m| {
            let text = match m {
                FailoverManager::Repmgr => "repmgr",
                FailoverManager::Patroni => "Patroni (with etcd)",
                FailoverManager::Efm => "EDB Failover Manager (EFM)",
            };
            (m.as_str().into(), text.into())
        })
        .collect();
    let platforms: Vec<(String, String)> = vec![
        (
            "docker".into(),
            "Docker (containers on this machine)".into(),
        ),
        ("aws".into(), "AWS (EC2 instances)".into()),
        ("bare".into(), "Bare hosts (over SSH)".into()),
    ];
    let platform_enum = Platform::parse(&platform).unwrap_or(Platform::Aws);
    let distributions: Vec<(String, String)> = DISTRIBUTIONS
        .iter()
        .filter(|d| !d.versions_on(platform_enum).is_empty())
        .map(|d| (d.name.into(), d.name.into()))
        .collect();
    let distribution = draft
        .distribution
        .clone()
        .unwrap_or_else(|| "Debian".into());
    let os_versions: Vec<(String, String)> = Distribution::find(&distribution)
        .map(|d| {
            d.versions_on(platform_enum)
                .iter()
                .map(|v| (v.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let os_version = draft
        .os_version
        .clone()
        .unwrap_or_else(|| default_os_version(&distribution).into());
    let regions: Vec<(String, String)> = AWS_REGIONS
        .iter()
        .map(|r| (r.to_string(), r.to_string()))
        .collect();
    let locations = draft.location_names_or_default();
    let location = |i: usize| locations.get(i).cloned().unwrap_or_default();

    let redwood_value = match draft.redwood {
        Some(true) => "redwood",
        Some(false) => "postgres",
        None => "",
    };
    let on_redwood = dispatch.reform(|e: Event| {
        let mode = match e
            .target_unchecked_into::<HtmlSelectElement>()
            .value()
            .as_str()
        {
            "redwood" => "on",
            "postgres" => "off",
            _ => "",
        };
        Action::Set(F::Redwood, mode.into())
    });
    let switch = |field: F| {
        dispatch.reform(move |e: Event| {
            let on = e.target_unchecked_into::<HtmlInputElement>().checked();
            Action::Set(field, if on { "on" } else { "off" }.into())
        })
    };
    let on_haproxy = switch(F::Haproxy);
    let on_synchronous = switch(F::Synchronous);
    let synchronous_hint = if draft.synchronous {
        diags(view, "synchronous")
            .first()
            .map(|d| d.message.clone())
            .unwrap_or_default()
    } else {
        "Off: commits return before a standby has them, so a failover can lose the last few."
            .to_string()
    };
    let haproxy_hint = if patroni {
        "Two HAProxy nodes send traffic to the leader, checked through Patroni's REST API."
    } else {
        "Needs Patroni: HAProxy finds the leader through Patroni's REST API."
    };
    let cascaded = draft
        .num_cascaded_replicas
        .clone()
        .unwrap_or_else(|| "1".into());
    let on_hosts = dispatch.reform(|e: InputEvent| {
        Action::Hostnames(e.target_unchecked_into::<HtmlTextAreaElement>().value())
    });
    let instances = view.configured.as_ref().map(|c| c.topology.instances.len());

    html! {
        <form class="design-form" onsubmit={Callback::from(|e: SubmitEvent| e.prevent_default())} aria-label="Cluster design">
            <fieldset>
                <legend>{ "Postgres" }</legend>
                <Field id="flavour" label="Flavour" diagnostics={diags(view, "postgres_flavour")}>
                    <select id="flavour" onchange={on_select(dispatch, F::Flavour)} aria-describedby={described_by("flavour")}>
                        if flavour.is_empty() { <option value="" selected=true>{ "choose a flavour" }</option> }
                        { options(&flavours, &flavour) }
                    </select>
                </Field>
                <Field id="version" label="Major version" diagnostics={diags(view, "postgres_version")}>
                    <select id="version" onchange={on_select(dispatch, F::Version)} aria-describedby={described_by("version")}>
                        if draft.postgres_version.is_none() { <option value="" selected=true>{ "choose a version" }</option> }
                        { options(&versions, draft.postgres_version.as_deref().unwrap_or_default()) }
                    </select>
                </Field>
                if flavour == Flavour::Epas.as_str() || draft.redwood.is_some() {
                    <Field id="redwood" label="Compatibility mode" hint={AttrValue::from("EDB Postgres Advanced Server runs in Oracle-compatible (Redwood) mode or in PostgreSQL mode.")} diagnostics={diags(view, "redwood")}>
                        <select id="redwood" onchange={on_redwood} aria-describedby={described_by("redwood")}>
                            <option value="" selected={redwood_value.is_empty()}>{ "choose a mode" }</option>
                            <option value="redwood" selected={redwood_value == "redwood"}>{ "Redwood (Oracle-compatible)" }</option>
                            <option value="postgres" selected={redwood_value == "postgres"}>{ "PostgreSQL mode" }</option>
                        </select>
                    </Field>
                }
            </fieldset>

            <fieldset>
                <legend>{ "Failover" }</legend>
                <Field id="failover" label="Failover manager" diagnostics={diags(view, "failover_manager")}>
                    <select id="failover" onchange={on_select(dispatch, F::Failover)} aria-describedby={described_by("failover")}>
                        if failover.is_empty() { <option value="" selected=true>{ "choose a failover manager" }</option> }
                        { options(&managers, &failover) }
                    </select>
                </Field>
                <Field id="dcs" label="Configuration store (DCS)" hint={AttrValue::from(if patroni { "etcd is the only choice: three etcd nodes hold Patroni's quorum." } else { "Applies to Patroni only." })} diagnostics={diags(view, "patroni_dcs")}>
                    <select id="dcs" disabled={!patroni} aria-describedby={described_by("dcs")}>
                        <option value="etcd" selected=true>{ "etcd" }</option>
                    </select>
                </Field>
                <div class={classes!("field", "checkbox", (view.about("enable_haproxy").count() > 0).then_some("has-error"))}>
                    <input type="checkbox" id="haproxy" checked={draft.enable_haproxy} onchange={on_haproxy} aria-describedby={described_by("haproxy")}/>
                    <label for="haproxy">{ "Add two HAProxy nodes" }</label>
                    <p class="hint" id="haproxy-hint">{ haproxy_hint }</p>
                    <ul class="field-diagnostics" id="haproxy-diag" aria-live="polite">
                        { crate::components::field::diagnostic_items(&diags(view, "enable_haproxy")) }
                    </ul>
                </div>
                <div class="field checkbox">
                    <input type="checkbox" id="synchronous" checked={draft.synchronous} onchange={on_synchronous} aria-describedby="synchronous-hint"/>
                    <label for="synchronous">{ "Synchronous replication" }</label>
                    <p class="hint" id="synchronous-hint">{ synchronous_hint }</p>
                </div>
            </fieldset>

            <fieldset>
                <legend>{ "Topology" }</legend>
                <Field id="name" label="Cluster name" hint={AttrValue::from("Lowercase letters, digits and '-'; also the cluster directory's name.")} diagnostics={diags(view, "cluster_name")}>
                    <input id="name" type="text" value={draft.cluster_name.clone()} oninput={on_input(dispatch, F::Name)} aria-describedby={described_by("name")} autocomplete="off" spellcheck="false"/>
                </Field>
                <Field id="cascaded" label="Cascaded replicas" hint={AttrValue::from(format!("Replicas streaming from the first replica, in the second location (0 to {MAX_CASCADED_REPLICAS})."))} diagnostics={diags(view, "num_cascaded_replicas")}>
                    <input id="cascaded" type="number" min="0" max={MAX_CASCADED_REPLICAS.to_string()} value={cascaded} oninput={on_input(dispatch, F::Cascaded)} aria-describedby={described_by("cascaded")}/>
                </Field>
                <div class="pair">
                    <Field id="location-a" label="Primary's location" diagnostics={diags(view, "location_names[0]")}>
                        <input id="location-a" type="text" value={location(0)} oninput={on_input(dispatch, F::FirstLocation)} aria-describedby={described_by("location-a")} autocomplete="off"/>
                    </Field>
                    <Field id="location-b" label="Disaster-recovery location" diagnostics={diags(view, "location_names[1]")}>
                        <input id="location-b" type="text" value={location(1)} oninput={on_input(dispatch, F::SecondLocation)} aria-describedby={described_by("location-b")} autocomplete="off"/>
                    </Field>
                </div>
                <ul class="field-diagnostics" aria-live="polite">
                    { crate::components::field::diagnostic_items(&view.diagnostics.iter().filter(|d| d.path == "location_names").cloned().collect::<Vec<_>>()) }
                </ul>
                <Field id="hostnames" label="Host names (optional)" hint={AttrValue::from(match instances { Some(n) => format!("One a line, in node order; this design has {n} instances. Leave empty for the designer's names."), None => "One a line, in node order. Leave empty for the designer's names.".to_string() })} diagnostics={diags(view, "hostnames")}>
                    <textarea id="hostnames" rows="3" value={hostnames_text.clone()} oninput={on_hosts} aria-describedby={described_by("hostnames")} spellcheck="false"/>
                </Field>
            </fieldset>

            <fieldset>
                <legend>{ "Platform" }</legend>
                <Field id="platform" label="Platform" diagnostics={diags(view, "platform")}>
                    <select id="platform" onchange={on_select(dispatch, F::Platform)} aria-describedby={described_by("platform")}>
                        { options(&platforms, &platform) }
                    </select>
                </Field>
                if aws {
                    <div class="pair">
                        <Field id="region" label="AWS region" diagnostics={diags(view, "region")}>
                            <select id="region" onchange={on_select(dispatch, F::Region)} aria-describedby={described_by("region")}>
                                { options(&regions, draft.region.as_deref().unwrap_or(m1studio_shared::spec::DEFAULT_REGION)) }
                            </select>
                        </Field>
                        <Field id="instance-type" label="Instance type" diagnostics={diags(view, "instance_type")}>
                            <input id="instance-type" type="text" value={draft.instance_type.clone().unwrap_or_else(|| m1studio_shared::spec::DEFAULT_INSTANCE_TYPE.into())} oninput={on_input(dispatch, F::InstanceType)} aria-describedby={described_by("instance-type")} autocomplete="off"/>
                        </Field>
                    </div>
                } else {
                    <p class="hint not-applicable">{ "Region and instance type apply to AWS only." }</p>
                }
                <div class="pair">
                    <Field id="distribution" label="Operating system" hint={AttrValue::from(if platform_enum == Platform::Docker { "Docker nodes are built from Debian's packages." } else { "" })} diagnostics={diags(view, "distribution")}>
                        <select id="distribution" onchange={on_select(dispatch, F::Distribution)} aria-describedby={described_by("distribution")}>
                            { options(&distributions, &distribution) }
                        </select>
                    </Field>
                    <Field id="os-version" label="Version" diagnostics={diags(view, "os_version")}>
                        <select id="os-version" onchange={on_select(dispatch, F::OsVersion)} aria-describedby={described_by("os-version")}>
                            { options(&os_versions, &os_version) }
                        </select>
                    </Field>
                </div>
                if platform_enum == Platform::Bare {
                    <p class="hint not-applicable">{ "Network: bare hosts keep their own addresses; give each after its host's name in a --hostnames-from file, or as its ip_address in config.yml." }</p>
                } else {
                    <Field id="network" label="Network (CIDR)" diagnostics={diags(view, "network")}>
                        <input id="network" type="text" value={draft.network.clone().unwrap_or_else(|| DEFAULT_NETWORK.into())} oninput={on_input(dispatch, F::Network)} aria-describedby={described_by("network")} autocomplete="off" spellcheck="false"/>
                    </Field>
                }
                <Field id="owner" label="Owner tag" hint={AttrValue::from("Optional: who the cluster belongs to.")} diagnostics={diags(view, "owner")}>
                    <input id="owner" type="text" value={draft.owner.clone().unwrap_or_default()} oninput={on_input(dispatch, F::Owner)} aria-describedby={described_by("owner")} autocomplete="off"/>
                </Field>
            </fieldset>
        </form>
    }
}
