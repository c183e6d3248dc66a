//! The few browser facilities the designer uses: the address bar, the clipboard, downloads,
//! a clock for render timings, and the one request it makes (is the server there?).

use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;

fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

/// The text after `#` in the address bar.
pub fn fragment() -> String {
    window()
        .and_then(|w| w.location().hash().ok())
        .map(|h| h.trim_start_matches('#').to_string())
        .unwrap_or_default()
}

/// The path of the page's address (`/`, `/trainer`).
pub fn path() -> String {
    window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default()
}

/// The page's address without its fragment.
pub fn base_url() -> String {
    window()
        .and_then(|w| w.location().href().ok())
        .map(|href| href.split('#').next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// Replaces the current history entry's fragment, so the address bar always holds the design
/// without adding an entry a keystroke.
pub fn replace_fragment(link: &str) {
    if let Some(history) = window().and_then(|w| w.history().ok()) {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("#{link}")));
    }
}

/// Calls `task` whenever the address bar's fragment changes, until the returned listener is
/// dropped.
pub fn on_hash_change(task: impl Fn() + 'static) -> HashListener {
    let closure = wasm_bindgen::closure::Closure::<dyn Fn()>::new(task);
    if let Some(window) = window() {
        let _ =
            window.add_event_listener_with_callback("hashchange", closure.as_ref().unchecked_ref());
    }
    HashListener { closure }
}

/// A `hashchange` listener, removed when dropped.
pub struct HashListener {
    closure: wasm_bindgen::closure::Closure<dyn Fn()>,
}

impl Drop for HashListener {
    fn drop(&mut self) {
        if let Some(window) = window() {
            let _ = window.remove_event_listener_with_callback(
                "hashchange",
                self.closure.as_ref().unchecked_ref(),
            );
        }
    }
}

/// Sets an attribute of the page's root element (where benchmarks read timings).
pub fn set_root_attribute(name: &str, value: &str) {
    if let Some(root) = window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute(name, value);
    }
}

/// Runs `task` once, `milliseconds` from now.
pub fn after(milliseconds: i32, task: impl FnOnce() + 'static) {
    let task = wasm_bindgen::closure::Closure::once_into_js(task);
    if let Some(window) = window() {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
            task.unchecked_ref(),
            milliseconds,
        );
    }
}

/// Copies `text` to the clipboard; `Err` with a reason when the browser refuses.
pub async fn copy(text: &str) -> Result<(), String> {
    let clipboard = window().ok_or("no window")?.navigator().clipboard();
    JsFuture::from(clipboard.write_text(text))
        .await
        .map(|_| ())
        .map_err(|_| "the browser refused the clipboard".to_string())
}

/// Offers `text` as a file called `name`.
pub fn download(name: &str, mime: &str, text: &str) -> Result<(), JsValue> {
    let document = window().and_then(|w| w.document()).ok_or("no document")?;
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let anchor: web_sys::HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    web_sys::Url::revoke_object_url(&url)?;
    Ok(())
}

/// The text of a file the user chose or dropped, read up to `limit` bytes (a larger file is
/// refused before it is read).
pub async fn file_text(file: &web_sys::File, limit: usize) -> Result<String, String> {
    let size = file.size();
    if size > limit as f64 {
        return Err(format!(
            "{} is {} KiB, more than the {} KiB a config.yml can be",
            file.name(),
            (size / 1024.0).round(),
            limit / 1024
        ));
    }
    JsFuture::from(file.text())
        .await
        .ok()
        .and_then(|text| text.as_string())
        .ok_or_else(|| format!("the browser could not read {}", file.name()))
}

/// A fresh random UUID from the browser's cryptography (for a cluster directory's vault).
pub fn random_uuid() -> Option<String> {
    window()?.crypto().ok().map(|c| c.random_uuid())
}

/// Milliseconds since the page started.
pub fn now() -> f64 {
    window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Milliseconds since 1970, as the browser's clock says.
pub fn epoch_ms() -> f64 {
    js_sys::Date::now()
}

/// Whether the m1studio server that may have served this page answers its health check,
/// with its version when it does.
pub async fn server_version() -> Option<String> {
    let window = window()?;
    let response = JsFuture::from(window.fetch_with_str("/healthz"))
        .await
        .ok()?;
    let response: web_sys::Response = response.dyn_into().ok()?;
    if !response.ok() {
        return None;
    }
    let text = JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()?;
    text.strip_prefix("ok m1studio ")
        .map(|v| v.trim().to_string())
}

/// An answer of the m1studio API: the HTTP status and the body's text.
pub struct ApiAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub text: String,
}

/// Calls the m1studio API of the server that served this page, with the token when there is
/// one. `Err` when the server cannot be reached at all.
pub async fn api(
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Result<ApiAnswer, String> {
    let window = window().ok_or("no window")?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(|_| "no headers")?;
    let _ = headers.set("Accept", "application/json");
    if let Some(body) = body {
        let _ = headers.set("Content-Type", "application/json");
        init.set_body(&JsValue::from_str(body));
    }
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        let _ = headers.set("Authorization", &format!("Bearer {token}"));
    }
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(path, &init)
        .map_err(|_| format!("cannot make a request to {path}"))?;
    let response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| "the m1studio server cannot be reached".to_string())?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| "not a response")?;
    let text = JsFuture::from(response.text().map_err(|_| "no body")?)
        .await
        .ok()
        .and_then(|t| t.as_string())
        .unwrap_or_default();
    Ok(ApiAnswer {
        status: response.status(),
        text,
    })
}

/// Waits `milliseconds`.
pub async fn sleep(milliseconds: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = window() {
            let _ = window
                .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, milliseconds);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// A value kept for this tab only (the API token), if set.
pub fn session_get(key: &str) -> Option<String> {
    window()?.session_storage().ok()??.get_item(key).ok()?
}

/// Keeps `value` for this tab only.
pub fn session_set(key: &str, value: &str) {
    if let Some(storage) = window().and_then(|w| w.session_storage().ok().flatten()) {
        let _ = storage.set_item(key, value);
    }
}
