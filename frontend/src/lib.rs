//! The M1 designer in the browser: every rule comes from `m1studio-shared`, compiled to
//! WebAssembly. The state, the view model and the diagram are pure and tested natively.

pub mod app;
pub mod browser;
pub mod chart;
pub mod components;
pub mod diagram;
pub mod state;
pub mod text;
pub mod view;

/// Starts the designer in the page's body.
pub fn run() {
    yew::Renderer::<app::App>::new().render();
}
