//! `m1studio`: the command line and the server of the M1 designer.
//!
//! Every rule comes from `m1studio-shared`; this crate is where IO happens: files, sockets, the
//! store, and the executors that deploy clusters.

mod agent;
pub mod cli;
pub mod engine;
pub mod openapi;
pub mod runner;
pub mod server;
pub mod services;
pub mod store;
pub mod target;

/// `bytes` random bytes as lower-case hex: identifiers, codes and tokens.
pub(crate) fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// The value behind `mutex`, even if a thread panicked while holding it: what it guards (lists,
/// maps) stays usable.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `work` (checking a design, reading a config.yml: up to a second of CPU for the largest
/// inputs) on the blocking pool, a few at a time, so that the async workers go on answering
/// everyone else (`/healthz`, status, event streams) meanwhile.
pub(crate) async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    static AT_ONCE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);
    let _turn = AT_ONCE.acquire().await?;
    Ok(tokio::task::spawn_blocking(work).await?)
}
