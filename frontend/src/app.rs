//! The designer: the form on the left; problems, diagram, outputs and deploy on the right.
//! The address bar always holds the current design.

use crate::browser;
use crate::components::deploy::Deploy;
use crate::components::form::DesignForm;
use crate::components::join::Join;
use crate::components::open::OpenConfig;
use crate::components::panels::{Diagram, LinkNotice, Outputs, Share, Summary};
use crate::components::trainer::Trainer;
use crate::state::{Action, DesignState};
use crate::view::View;
use std::rc::Rc;
use yew::prelude::*;

/// How long the address bar may lag behind the design, in milliseconds.
const URL_DELAY_MS: i32 = 120;

/// What the page shows: the designer, the form that joins a workshop (the trainer's link,
/// `#join=CODE`), or the trainer's room (`/trainer`).
#[component]
pub fn App() -> Html {
    let join = use_state(|| crate::components::join::join_code(&browser::fragment()));
    {
        // A join link opened in a page that is already open.
        let join = join.clone();
        use_effect_with((), move |_| {
            let listener = browser::on_hash_change(move || {
                if let Some(code) = crate::components::join::join_code(&browser::fragment()) {
                    join.set(Some(code));
                }
            });
            move || drop(listener)
        });
    }
    if browser::path().trim_end_matches('/') == "/trainer" {
        return html! { <Trainer/> };
    }
    if let Some(code) = (*join).clone() {
        let joined = {
            let join = join.clone();
            Callback::from(move |_: String| {
                // The designer opens on the starter design, as the trainer's link to the room
                // will give it.
                browser::replace_fragment("");
                join.set(None);
            })
        };
        return html! { <Join code={AttrValue::from(code)} {joined}/> };
    }
    html! { <Designer/> }
}

/// The designer.
#[component]
fn Designer() -> Html {
    let state = use_reducer(|| DesignState::from_link(&browser::fragment()));
    let view: Rc<View> = use_memo(state.draft.clone(), View::of);
    // When an edit was dispatched, to time how long the page takes to show it.
    let edited_at = use_mut_ref(|| None::<f64>);
    let dispatch = {
        let state = state.clone();
        let edited_at = edited_at.clone();
        Callback::from(move |action: Action| {
            *edited_at.borrow_mut() = Some(browser::now());
            state.dispatch(action);
        })
    };
    // The address bar follows the design. Browsers make history.replaceState slow when called
    // a keystroke at a time, so the latest link is written at most every URL_DELAY_MS.
    let pending_link = use_mut_ref(|| None::<String>);
    use_effect_with(view.link.clone(), move |link| {
        if let Some(started) = edited_at.borrow_mut().take() {
            browser::set_root_attribute(
                "data-render-ms",
                &crate::text::fixed(browser::now() - started, 2),
            );
        }
        let first = pending_link.borrow_mut().replace(link.clone()).is_none();
        if first {
            browser::after(URL_DELAY_MS, move || {
                if let Some(link) = pending_link.borrow_mut().take() {
                    browser::replace_fragment(&link);
                }
            });
        }
    });
    {
        // A link pasted into the address bar of an open page opens its design.
        let state = state.clone();
        use_effect_with((), move |_| {
            let listener = browser::on_hash_change(move || {
                state.dispatch(Action::OpenLink(browser::fragment()))
            });
            move || drop(listener)
        });
    }
    // When the page first became usable, for the load-time benchmark.
    use_effect_with((), |_| {
        browser::set_root_attribute("data-ready-ms", &crate::text::fixed(browser::now(), 2))
    });
    let reset = dispatch.reform(|_| Action::Reset);
    let attendee = browser::session_get(crate::components::api::ATTENDEE_KEY);
    html! {
        <div class="app" data-ready="true">
            <header class="top">
                <div class="brand">
                    <h1>{ "m1studio" }</h1>
                    <p>{ "Design an M1 PostgreSQL cluster: primary, replica, cascaded replicas, Barman and a failover manager." }</p>
                </div>
                if let Some(name) = attendee {
                    <p class="attendee" id="attendee">{ format!("In the workshop as {name}") }</p>
                }
                <div class="top-actions">
                    <Share view={view.clone()}/>
                    <button type="button" class="secondary" onclick={reset}>{ "Start over" }</button>
                </div>
            </header>
            <main class="columns">
                <section class="left" aria-label="Design">
                    <DesignForm draft={state.draft.clone()} hostnames_text={AttrValue::from(state.hostnames_text.clone())} view={view.clone()} dispatch={dispatch.clone()}/>
                </section>
                <section class="right" aria-label="Results">
                    <OpenConfig dispatch={dispatch.clone()}/>
                    <LinkNotice notices={state.notices.clone()} source={state.source} dispatch={dispatch.clone()}/>
                    <Summary view={view.clone()}/>
                    <Diagram view={view.clone()}/>
                    <Outputs view={view.clone()}/>
                    <Deploy view={view.clone()}/>
                </section>
            </main>
        </div>
    }
}
