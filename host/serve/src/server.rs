//! The TCP side of `spinfer up`: accept, optionally terminate TLS (rustls), speak HTTP/1.1 with
//! hyper, hand each request to `App::handle` with where it came from, stop gracefully when told.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Connection;
use crate::app::App;

/// A TLS server configuration from PEM files, as `spin up --tls-cert --tls-key` takes them.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} is not a PEM private key", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and the key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The largest request line plus header block read (hyper's smallest allowed buffer is 8 KiB);
/// past it the client gets 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header fields a request may carry; past it the client gets 431.
pub const MAX_HEADERS: usize = 64;

/// How long in-flight requests may take to finish once shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves; then stops accepting (new connections are refused), lets
/// in-flight requests finish and closes idle keep-alive connections, then ends the app's
/// instances, all within [`SHUTDOWN_GRACE`]. With `tls`, every connection is HTTPS.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            },
        };
        // Without it small responses wait for Nagle's algorithm (p90 ≈ 47 ms measured).
        stream.set_nodelay(true).ok();
        let app = app.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            match acceptor {
                None => {
                    serve_connection(
                        app,
                        stream,
                        Connection {
                            client: peer,
                            scheme: "http",
                        },
                        watcher,
                    )
                    .await
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        let connection = Connection {
                            client: peer,
                            scheme: "https",
                        };
                        serve_connection(app, stream, connection, watcher).await
                    }
                    Err(e) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                },
            }
        });
    }
    drop(listener);
    tracing::info!(
        "shutting down: no new connections; waiting up to {} s for {} open ones",
        SHUTDOWN_GRACE.as_secs(),
        graceful.count()
    );
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    if tokio::time::timeout_at(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the grace period were cut off");
    }
    // Instances end here, each through its worker, rather than be cancelled with the runtime.
    if tokio::time::timeout_at(deadline, app.stop_instances())
        .await
        .is_err()
    {
        tracing::warn!(
            "{} instances still running after the grace period were cut off",
            app.instances_live()
        );
    }
    Ok(())
}

async fn serve_connection<S>(app: Arc<App>, stream: S, connection: Connection, watcher: Watcher)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let read_timeout = app.read_timeout;
    let service = hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
        let app = app.clone();
        request.extensions_mut().insert(connection);
        async move { Ok::<_, Infallible>(app.handle(request).await) }
    });
    let serving = http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        // A client that dribbles its headers is cut off instead of holding the connection.
        .header_read_timeout(read_timeout)
        // The request line and headers must fit this buffer (hyper's default is ~400 KB).
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(serving).await {
        tracing::debug!(peer = %connection.client, "connection ended: {e}");
    }
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}
