//! Accepting connections: HTTP/1 and HTTP/2, plain or over TLS, with the limits that keep slow
//! or many clients from holding the server (a cap on connections, a time to send the request's
//! headers, a time to finish the TLS handshake), and a shutdown on SIGTERM or Ctrl-C that ends
//! the event streams, lets answers under way finish for a few seconds, then stops.

use super::{AppState, app};
use anyhow::{Context as _, Result};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// A certificate and its private key, in PEM files, for serving HTTPS.
pub struct Tls {
    /// The certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// What one server lets its clients hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more wait in the system's backlog until one closes.
    pub connections: usize,
    /// How long a client has to send a request's headers (and, on a kept-alive connection,
    /// the next request's) before its connection is closed.
    pub headers: Duration,
    /// How long a client has to finish the TLS handshake.
    pub handshake: Duration,
    /// How long answers under way may go on once the server is told to stop.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections: 512,
            headers: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            grace: Duration::from_secs(3),
        }
    }
}

/// Resolves once the process is told to stop: SIGTERM or Ctrl-C (SIGINT).
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// The TLS acceptor for `tls`'s files, with HTTP/2 and HTTP/1.1 offered.
fn acceptor(tls: &Tls) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    // One process-wide choice of cryptography; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let advice = "give a PEM certificate chain and its PEM private key";
    let chain = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .with_context(|| format!("--tls-cert {}: {advice}", tls.cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "--tls-cert {}: no certificate in it; {advice}",
            tls.cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("--tls-key {}: {advice}", tls.key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "--tls-cert {} / --tls-key {}: {advice}, that belong together",
                tls.cert.display(),
                tls.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves the app over `state` on `listen` (over TLS with `tls`) until SIGTERM or Ctrl-C, or
/// until `stop` is cancelled, printing the address it listens on.
pub async fn serve(
    listen: SocketAddr,
    state: AppState,
    tls: Option<Tls>,
    limits: Limits,
    stop: CancellationToken,
) -> Result<()> {
    let acceptor = tls.as_ref().map(acceptor).transpose()?;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen}: is another server using that port? choose another with --listen")
    })?;
    let bound = listener.local_addr()?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    println!("m1studio designer at {scheme}://{bound}/");
    let stopping = state.stopping.clone();
    let router = app(state);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.connections.max(1)));
    let told = {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = stop_signal() => {}
                () = stop.cancelled() => {}
            }
        }
    };
    tokio::pin!(told);
    loop {
        let permit = tokio::select! {
            () = &mut told => break,
            permit = open.clone().acquire_owned() => permit?,
        };
        let (stream, peer) = tokio::select! {
            () = &mut told => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // the server goes on.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let handshake = limits.handshake;
        tokio::spawn(async move {
            let _permit = permit;
            let served = match acceptor {
                None => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(handshake, acceptor.accept(stream)).await
                    else {
                        tracing::debug!("{peer}: no TLS handshake within {handshake:?}");
                        return;
                    };
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
            };
            if let Err(e) = served {
                tracing::debug!("{peer}: {e}");
            }
        });
    }
    drop(listener);
    // Event streams end, idle connections close, answers under way get `grace` to finish.
    stopping.cancel();
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("connections still open after {:?} are closed", limits.grace);
    }
    Ok(())
}
