//! Joining a workshop: the trainer's link opens the page at `#join=CODE`; the attendee gives a
//! name and gets a token of their own, which the page keeps for this tab.

use crate::browser;
use crate::components::api::{ATTENDEE_KEY, Api, Refusal, TOKEN_KEY};
use m1studio_shared::api::{JoinRequest, Joined, NAME_LIMIT};
use yew::prelude::*;

/// The join code in a fragment `join=CODE`, if that is what it is.
pub fn join_code(fragment: &str) -> Option<String> {
    fragment
        .trim_start_matches('#')
        .strip_prefix("join=")
        .map(|code| code.trim().to_string())
}

/// Props of the join form.
#[derive(Properties, PartialEq)]
pub struct JoinProps {
    /// The code of the trainer's link.
    pub code: AttrValue,
    /// Called with the attendee's name once joined.
    pub joined: Callback<String>,
}

/// The join form.
#[component]
pub fn Join(props: &JoinProps) -> Html {
    let name = use_state(String::new);
    let refusal = use_state(|| None::<Refusal>);
    let busy = use_state(|| false);
    let on_name = {
        let name = name.clone();
        Callback::from(move |e: InputEvent| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            name.set(input.value());
        })
    };
    let on_submit = {
        let (name, refusal, busy, code, joined) = (
            name.clone(),
            refusal.clone(),
            busy.clone(),
            props.code.to_string(),
            props.joined.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let request = JoinRequest {
                code: code.clone(),
                name: (*name).clone(),
            };
            let Ok(body) = serde_json::to_string(&request) else {
                return;
            };
            let (refusal, busy, joined) = (refusal.clone(), busy.clone(), joined.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                let answer = Api { token: None }
                    .call::<Joined>("POST", "/api/join", Some(body))
                    .await;
                busy.set(false);
                match answer {
                    Ok(welcome) => {
                        browser::session_set(TOKEN_KEY, &welcome.token);
                        browser::session_set(ATTENDEE_KEY, &welcome.attendee.name);
                        refusal.set(None);
                        joined.emit(welcome.attendee.name);
                    }
                    Err(why) => refusal.set(Some(why)),
                }
            });
        })
    };
    html! {
        <main class="join" id="join">
            <h1>{ "m1studio workshop" }</h1>
            <p>{ "Give the name the room knows you by. You get your own clusters, which only you and the trainer see." }</p>
            <form onsubmit={on_submit}>
                <label for="join-name">{ "Your name" }</label>
                <input id="join-name" type="text" maxlength={(NAME_LIMIT * 2).to_string()} autocomplete="nickname" value={(*name).clone()} oninput={on_name}/>
                <button type="submit" id="join-button" disabled={*busy}>{ "Join" }</button>
            </form>
            if let Some(why) = &*refusal {
                <p class="error" role="alert" id="join-error" data-status={why.status.to_string()}>{ why.message.clone() }</p>
            }
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_link_carries_its_code_and_a_design_link_does_not() {
        assert_eq!(join_code("#join=ab12cd"), Some("ab12cd".into()));
        assert_eq!(join_code("join=ab12cd"), Some("ab12cd".into()));
        assert_eq!(join_code("v=1&name=m1"), None);
        assert_eq!(join_code(""), None);
    }
}
