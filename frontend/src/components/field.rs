//! A labelled control with its hint and the diagnostics about it, tied together for screen readers.

use m1studio_shared::Diagnostic;
use yew::prelude::*;

/// What a field shows around its control.
#[derive(Properties, PartialEq)]
pub struct FieldProps {
    /// The control's id; the label points at it.
    pub id: AttrValue,
    /// The label text.
    pub label: AttrValue,
    /// A short explanation under the control.
    #[prop_or_default]
    pub hint: Option<AttrValue>,
    /// The diagnostics about this field.
    pub diagnostics: Vec<Diagnostic>,
    /// The control.
    pub children: Html,
}

/// The id of the element that describes control `id` (its hint and diagnostics).
pub fn described_by(id: &str) -> String {
    format!("{id}-hint {id}-diag")
}

/// The diagnostics as a list, each marked with its severity.
pub fn diagnostic_items(diagnostics: &[Diagnostic]) -> Html {
    diagnostics
        .iter()
        .map(|d| {
            html! {
                <li class={classes!("diag", d.severity.as_str())} data-code={d.code.as_str()}>
                    <span class="severity">{ d.severity.as_str() }</span>
                    <span class="message">{ d.message.clone() }</span>
                </li>
            }
        })
        .collect()
}

/// A labelled control.
#[component]
pub fn Field(props: &FieldProps) -> Html {
    let id = &props.id;
    let worst = props.diagnostics.iter().map(|d| d.severity).min();
    html! {
        <div class={classes!("field", worst.map(|s| format!("has-{}", s.as_str())))}>
            <label for={id.clone()}>{ props.label.clone() }</label>
            { props.children.clone() }
            <p class="hint" id={format!("{id}-hint")}>{ props.hint.clone().unwrap_or_default() }</p>
            <ul class="field-diagnostics" id={format!("{id}-diag")} aria-live="polite">
                { diagnostic_items(&props.diagnostics) }
            </ul>
        </div>
    }
}
