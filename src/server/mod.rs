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

mod access;
mod asyncpg;
mod catalog;
pub mod config;
mod conn;
mod dispatch;
mod encode;
mod errors;
mod handler;
mod held;
mod hooks;
mod information_schema;
mod memory;
mod numeric;
mod params;
mod pg_arrays;
mod pg_catalog;
mod pg_keys;
mod pg_proc;
mod pgcompat;
mod respond;
mod rewrite;
mod runtime;
mod scram;
mod settings;
mod shared;
mod startup;
mod statement;
mod text_rows;
mod time_text;

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
    #[error(
        "TLS is required on {0} (require_tls, on by default off loopback): set tls_cert and tls_key in [server], or require_tls = false"
    )]
    TlsRequired(SocketAddr),
    #[error(
        "{path}: cannot rewrite its password entries as SCRAM verifiers ({source}); the stored form logs in by itself, so the server does not start: make the file writable, or add the users again with `rebuy user add`"
    )]
    Migration {
        path: std::path::PathBuf,
        #[source]
        source: ConfigError,
    },
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
    mut config: ServerConfig,
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
    migrate_passwords(&mut config)?;
    for path in config::readable_by_others(&config) {
        tracing::warn!(
            path = %path.display(),
            "readable by other users of this machine: it holds secrets (chmod 600)"
        );
    }
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let require_tls = config
        .server
        .require_tls
        .unwrap_or(!addr.ip().is_loopback());
    if require_tls && tls.is_none() {
        return Err(ServeError::TlsRequired(addr));
    }
    let policy = startup::LoginPolicy {
        trust,
        require_tls,
        certificate_binding: match &config.server.tls_cert {
            Some(cert) if tls.is_some() => std::fs::read(cert)
                .ok()
                .and_then(|pem| scram::certificate_binding(&pem))
                .map(Arc::new),
            _ => None,
        },
        mock_secret: Arc::new(mock_secret(&config)),
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
    let logging_in = Arc::new(Semaphore::new(config.server.max_unauthenticated.max(1)));
    let idle = Duration::from_secs(config.server.idle_timeout_secs.max(1));
    let auth_timeout = Duration::from_secs(config.server.auth_timeout_secs.max(1));
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
        let Ok(permit) = logging_in.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many connections logging in");
            tokio::spawn(startup::refuse_connection(
                socket,
                errors::TOO_MANY_CONNECTIONS,
                "sorry, too many clients already",
            ));
            continue;
        };
        let conn = conn::ConnState::new(shared.clone(), Some(permit));
        let handlers = Arc::new(handler::Handlers::new(conn.clone(), &policy));
        let tls = tls.clone();
        let shared = shared.clone();
        let fd = raw_fd(&socket);
        tokio::spawn(async move {
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let started = tokio::time::Instant::now();
            let session = pgwire::tokio::process_socket(socket, tls, handlers);
            let watchdog = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(500).min(idle)).await;
                    if !conn.authenticated() && started.elapsed() >= auth_timeout {
                        tracing::info!(conn = conn.id, %peer, "closed: not logged in within auth_timeout_secs");
                        break;
                    }
                    if conn.idle_for().is_some_and(|d| d >= idle) {
                        tracing::info!(conn = conn.id, %peer, "idle session closed");
                        break;
                    }
                }
            };
            // Runs beside the session, not in its select: a fit blocks the session's task.
            let hangup = tokio::spawn(watch_hangup(conn.clone(), fd));
            tokio::select! {
                r = session => if let Err(e) = r {
                    tracing::debug!(conn = conn.id, %peer, "connection ended: {e}");
                },
                _ = watchdog => {}
            }
            hangup.abort();
            shared.connections.fetch_sub(1, Ordering::SeqCst);
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
    if shared.running_queries.load(Ordering::SeqCst) > 0 {
        tracing::warn!("shutdown grace over: stopping the queries still running");
        shared.stop_all("server shutdown");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Rewrites password entries of rebuy's earlier format (the SaltedPassword, which logs in by
/// itself) as verifiers in the file and in `config`; the server does not start when it cannot.
fn migrate_passwords(config: &mut ServerConfig) -> Result<(), ServeError> {
    let legacy = config.users.iter().any(|u| {
        u.password.as_deref().is_some_and(|p| {
            matches!(
                config::StoredPassword::parse(p),
                Ok(config::PasswordEntry::Legacy(_))
            )
        })
    });
    if !legacy {
        return Ok(());
    }
    let Some(path) = config.path.clone() else {
        return Ok(());
    };
    let rewritten = config::migrate_passwords(&path).map_err(|source| ServeError::Migration {
        path: path.clone(),
        source,
    })?;
    tracing::warn!(path = %path.display(), rewritten, "password entries rewritten as SCRAM verifiers");
    let reloaded = ServerConfig::load(&path).map_err(|source| ServeError::Migration {
        path: path.clone(),
        source,
    })?;
    config.users = reloaded.users;
    Ok(())
}

/// The key of unknown users' mock verifiers: derived from the stored verifiers, so it is
/// stable across restarts and known to no one without the configuration file.
fn mock_secret(config: &ServerConfig) -> Vec<u8> {
    let mut material = b"rebuy mock verifier".to_vec();
    for u in &config.users {
        material.extend_from_slice(u.name.as_bytes());
        material.push(0);
        material.extend_from_slice(u.password.as_deref().unwrap_or("").as_bytes());
        material.push(0);
    }
    scram::sha256(&material)
}

#[cfg(unix)]
fn raw_fd(socket: &tokio::net::TcpStream) -> i32 {
    std::os::fd::AsRawFd::as_raw_fd(socket)
}
#[cfg(not(unix))]
fn raw_fd(_socket: &tokio::net::TcpStream) -> i32 {
    -1
}

/// Stops the connection's running statement when its client hangs up: PostgreSQL notices a
/// closed socket only when it next writes, so a query whose client left ran to its end. The
/// socket is polled for the peer's hang-up (POLLRDHUP) without reading from it.
async fn watch_hangup(conn: Arc<conn::ConnState>, fd: i32) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if conn.is_busy() && peer_hung_up(fd) {
            tracing::info!(
                conn = conn.id,
                "client disconnected: stopping its statement"
            );
            conn.stop_for("client disconnected");
            return;
        }
    }
}

#[cfg(target_os = "linux")]
fn peer_hung_up(fd: i32) -> bool {
    if fd < 0 {
        return false;
    }
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: poll reads one pollfd we own and waits not at all. The descriptor is the
    // connection's socket while the session runs; in the moment between the session's end and
    // the watcher's abort it may already be closed (poll then reports nothing or POLLNVAL) or
    // reused, and a stop then meets a connection that runs nothing.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}
#[cfg(not(target_os = "linux"))]
fn peer_hung_up(_fd: i32) -> bool {
    false
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
