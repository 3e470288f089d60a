//! Serving the node over HTTPS with mutual TLS (rustls, aws-lc-rs).
//!
//! With a `[tls]` section in the node's configuration ([`TlsConfig`]) the
//! node presents `cert_file`/`key_file` and *requires* every client (the
//! gateway, or any other router) to present a certificate issued by
//! `client_ca_file`; a client without one fails the TLS handshake before
//! any HTTP is read. Mutual TLS authenticates the calling machine; the
//! caseworker is still authenticated by the bearer token on every request,
//! exactly as without TLS.
//!
//! [`serve`] is the TLS counterpart of `axum::serve`: it accepts
//! connections, completes each handshake within [`HANDSHAKE_TIMEOUT`],
//! serves HTTP/1.1 and HTTP/2, and on shutdown stops accepting and drains
//! open connections for at most [`DRAIN_TIMEOUT`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::net::TcpListener;

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest open connections are given to finish on shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The `[tls]` section of a node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain the node presents; it must name the node's
    /// `tls_identity` from the federation file.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1) of that certificate.
    pub key_file: PathBuf,
    /// PEM CA certificate(s) that issue the certificates of the clients
    /// allowed to connect (the gateway's). Clients without one are refused.
    pub client_ca_file: PathBuf,
}

pub use exchange_service::tls::TlsError;

impl TlsConfig {
    /// The rustls server configuration: this certificate, client
    /// certificates required and checked against `client_ca_file`.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        exchange_service::tls::server_config(&self.cert_file, &self.key_file, &self.client_ca_file)
    }
}

/// HTTPS for the survivor portal: a certificate browsers trust, and no
/// client certificates (survivors have none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalTlsConfig {
    /// PEM certificate chain the portal presents.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate.
    pub key_file: PathBuf,
}

impl PortalTlsConfig {
    /// The rustls server configuration: this certificate, no client auth.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        exchange_service::tls::server_config_without_client_auth(&self.cert_file, &self.key_file)
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, then
/// drains open connections (at most [`DRAIN_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning.
                        tracing::warn!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                // Who connected, for handlers that need it (the portal's
                // limit of sign-in attempts per client), as axum's own
                // server gives it.
                let service = TowerToHyperService::new(tower::Layer::layer(
                    &axum::Extension(axum::extract::ConnectInfo(peer)),
                    router.clone(),
                ));
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(err)) => {
                            tracing::info!(%peer, error = %err, "TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(err) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(%peer, error = %err, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish in time and were closed");
    }
    Ok(())
}
