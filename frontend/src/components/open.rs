//! Opening a config.yml in the designer: dropped, chosen or pasted. The server that serves the
//! page reads it with the shared crate's reader (kept out of the page's WebAssembly, whose size
//! a room of attendees loads at once); TPA's own files open as their design, with the reader's
//! warnings shown above it, and the link follows.

use crate::browser;
use crate::components::api::{Api, TOKEN_KEY};
use crate::state::Action;
use m1studio_shared::config::MAX_CONFIG_BYTES;
use m1studio_shared::{Diagnostic, Draft};
use serde::Deserialize;
use yew::prelude::*;

/// Props of the config.yml opener.
#[derive(Properties, PartialEq)]
pub struct OpenProps {
    /// Where the opened file goes.
    pub dispatch: Callback<Action>,
}

/// What `POST /api/designs/check` answers, of what the opener uses.
#[derive(Deserialize)]
struct Checked {
    diagnostics: Vec<Diagnostic>,
    draft: Option<Draft>,
}

/// Has the server read `text`, then opens what it read; says why not when it cannot.
fn open_text(
    text: String,
    name: String,
    dispatch: Callback<Action>,
    status: UseStateHandle<String>,
) {
    let api = Api {
        token: browser::session_get(TOKEN_KEY),
    };
    wasm_bindgen_futures::spawn_local(async move {
        let body = serde_json::json!({ "config_yml": text }).to_string();
        match api.call::<Checked>("POST", "/api/designs/check", Some(body)).await {
            Ok(checked) => {
                status.set(if checked.draft.is_some() {
                    format!("Opened {name}")
                } else {
                    format!("{name} has errors: see above")
                });
                dispatch.emit(Action::OpenRead(Box::new(checked.draft), checked.diagnostics));
            }
            // Not reached, or a plain static host without m1studio's API.
            Err(refusal) if matches!(refusal.status, 0 | 404 | 405) => status.set(
                "Not opened: config.yml is read by the m1studio server (m1studio serve), which this page cannot reach; open the design's link instead".to_string(),
            ),
            Err(refusal) => status.set(format!("Not opened: {}", refusal.message)),
        }
    });
}

/// A drop zone, a file chooser and a text box for a config.yml.
#[component]
pub fn OpenConfig(props: &OpenProps) -> Html {
    let text = use_state(String::new);
    let status = use_state(String::new);
    let open = {
        let text = text.clone();
        let dispatch = props.dispatch.clone();
        let status = status.clone();
        Callback::from(move |_| {
            open_text(
                (*text).clone(),
                "the text".to_string(),
                dispatch.clone(),
                status.clone(),
            )
        })
    };
    // A chosen or dropped file opens at once.
    let read = {
        let dispatch = props.dispatch.clone();
        let status = status.clone();
        let text = text.clone();
        move |file: web_sys::File| {
            let dispatch = dispatch.clone();
            let status = status.clone();
            let text = text.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match browser::file_text(&file, MAX_CONFIG_BYTES).await {
                    Ok(content) => {
                        text.set(content.clone());
                        open_text(content, file.name(), dispatch, status);
                    }
                    Err(why) => status.set(format!("Not opened: {why}")),
                }
            });
        }
    };
    let on_choose = {
        let read = read.clone();
        Callback::from(move |e: Event| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            if let Some(file) = input.files().and_then(|f| f.get(0)) {
                read(file);
            }
        })
    };
    let on_drop = Callback::from(move |e: DragEvent| {
        e.prevent_default();
        if let Some(file) = e
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|f| f.get(0))
        {
            read(file);
        }
    });
    let on_drag_over = Callback::from(|e: DragEvent| e.prevent_default());
    let on_input = {
        let text = text.clone();
        Callback::from(move |e: InputEvent| {
            let area: web_sys::HtmlTextAreaElement = e.target_unchecked_into();
            text.set(area.value());
        })
    };
    html! {
        <section class="open-config" aria-label="Open a config.yml">
        <details id="open-config">
            <summary>{ "Open a config.yml" }</summary>
            <div class="drop-zone" ondrop={on_drop} ondragover={on_drag_over}>
                <p class="hint">{ "Drop a config.yml here (TPA's own, or one m1studio wrote), choose it, or paste it. It opens as a design, with a warning for everything outside the M1 layout." }</p>
                <label for="open-config-file">{ "config.yml file" }</label>
                <input type="file" id="open-config-file" accept=".yml,.yaml,text/yaml" onchange={on_choose}/>
                <label for="open-config-text">{ "or its text" }</label>
                <textarea id="open-config-text" rows="8" spellcheck="false" value={(*text).clone()} oninput={on_input}/>
                <button type="button" id="open-config-button" onclick={open} disabled={text.trim().is_empty()}>{ "Open this config.yml" }</button>
                <p class="status" id="open-config-status" aria-live="polite">{ (*status).clone() }</p>
            </div>
        </details>
        </section>
    }
}
