//! `rebuy serve`: the warehouse over the PostgreSQL wire protocol, so that psql, BI tools,
//! notebooks and JDBC programs use it as they would use PostgreSQL.
//!
//! - [`config`]: `rebuy.toml`'s `[server]` section and users (SCRAM hashes only).
//! - [`shared`]: the session over the latest data snapshot, shared by all connections and
//!   rebuilt when an ingest commits.
//! - [`conn`]: one connection's session and how its statements run (read-only for analysts,
//!   memory pool, statement timeout, cancel, streamed results).
//! - [`handler`]: the pgwire protocol handlers; [`pgcompat`]: the PostgreSQL catalog and
//!   functions clients expect; [`errors`]: SQLSTATE codes; [`settings`]: SET/SHOW parameters.

mod asyncpg;
pub mod config;
mod conn;
mod errors;
mod handler;
mod pgcompat;
mod rewrite;
mod settings;
mod shared;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use config::{AuthMode, ConfigError, Role, ServerConfig};
pub use pgcompat::version_string;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    #[error(transparent)]
    View(#[from] crate::views::ViewError),
    #[error("setting up pg_catalog: {0}")]
    Catalog(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error(
        "refusing to listen on {0} without authentication: trust is allowed on loopback only; add users with `rebuy user add` and use auth = \"scram\""
    )]
    TrustOffLoopback(SocketAddr),
    #[error(
        "no users are configured: add one with `rebuy user add NAME --role analyst`, or (loopback only) set auth = \"trust\" in [server]"
    )]
    NoUsers,
    #[error("internal lock poisoned")]
    Poisoned,
}

/// A running server's address and a way to stop it.
pub struct Running {
    pub addr: SocketAddr,
}

/// Serves until SIGTERM/ctrl-c (or `shutdown` resolves), then lets running queries finish
/// for up to `shutdown_grace_secs`.
pub async fn serve(
    warehouse: crate::storage::Warehouse,
    config: ServerConfig,
    on_listening: impl FnOnce(Running),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let addr = config.listen_addr()?;
    let trust = config.server.auth == AuthMode::Trust;
    if trust && !addr.ip().is_loopback() {
        return Err(ServeError::TrustOffLoopback(addr));
    }
    if !trust && !config.users.iter().any(|u| u.password.is_some()) {
        return Err(ServeError::NoUsers);
    }
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let shared = shared::Shared::open(warehouse, config.clone()).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(
        addr = %local,
        auth = if trust { "trust" } else { "scram" },
        tls = tls.is_some(),
        "listening"
    );
    on_listening(Running { addr: local });
    let limit = Arc::new(Semaphore::new(config.server.max_connections.max(1)));
    let idle = Duration::from_secs(config.server.idle_timeout_secs.max(1));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many connections");
            tokio::spawn(handler::refuse_connection(
                socket,
                "53300",
                "sorry, too many clients already",
            ));
            continue;
        };
        let conn = conn::ConnState::new(shared.clone());
        let handlers = Arc::new(handler::Handlers::new(conn.clone(), trust));
        let tls = tls.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let session = pgwire::tokio::process_socket(socket, tls, handlers);
            let watchdog = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(500).min(idle)).await;
                    if conn.idle_for().is_some_and(|d| d >= idle) {
                        tracing::info!(conn = conn.id, %peer, "idle session closed");
                        break;
                    }
                }
            };
            tokio::select! {
                r = session => if let Err(e) = r {
                    tracing::debug!(conn = conn.id, %peer, "connection ended: {e}");
                },
                _ = watchdog => {}
            }
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
        });
    }
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let deadline = tokio::time::Instant::now() + grace;
    tracing::info!(
        running = shared.running_queries.load(Ordering::SeqCst),
        "shutting down: no new connections; waiting for running queries"
    );
    while shared.running_queries.load(Ordering::SeqCst) > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!("stopped");
    Ok(())
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<pgwire::tokio::TlsAcceptor, ServeError> {
    use pgwire::tokio::tokio_rustls::rustls;
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| ServeError::Tls(format!("cannot read {}: {e}", p.display())))
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "{}: no certificate found",
            cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| ServeError::Tls(format!("{}: {e}", key.display())))?
        .ok_or_else(|| ServeError::Tls(format!("{}: no private key found", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}
