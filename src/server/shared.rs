//! What all connections share: the warehouse, the query session over its latest committed
//! snapshot (rebuilt when `rebuy ingest` commits), the cancel-key registry and counters.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use datafusion::prelude::SessionContext;

use super::ServeError;
use super::config::ServerConfig;
use super::conn::ConnState;
use crate::storage::{TableKind, Warehouse};

/// The session every connection starts from, at one data snapshot.
pub struct Base {
    pub ctx: SessionContext,
    pub generation: u64,
}

/// What tells that the data changed: the transaction-log folders' modification times for a
/// local warehouse, the table versions for an object store.
#[derive(Debug, Clone, PartialEq)]
enum Marker {
    Local(Vec<Option<SystemTime>>),
    Versions(Vec<Option<u64>>),
}

pub struct Shared {
    pub warehouse: Warehouse,
    pub config: ServerConfig,
    base: RwLock<Arc<Base>>,
    marker: Mutex<(Marker, Instant)>,
    refresh: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    cancel_keys: Mutex<HashMap<(i32, Vec<u8>), Weak<ConnState>>>,
    pub running_queries: AtomicUsize,
    pub connections: AtomicUsize,
    next_conn: AtomicU64,
    /// Slots of logged-in sessions (`max_connections`).
    pub sessions: Arc<tokio::sync::Semaphore>,
    /// The memory all queries share (`memory_mb`).
    pub memory: Arc<dyn datafusion::execution::memory_pool::MemoryPool>,
}

impl Shared {
    pub async fn open(warehouse: Warehouse, config: ServerConfig) -> Result<Arc<Self>, ServeError> {
        let marker = read_marker(&warehouse).await?;
        let ctx = build(&warehouse, &config).await?;
        let sessions = Arc::new(tokio::sync::Semaphore::new(
            config.server.max_connections.max(1),
        ));
        let memory = super::memory::server_pool(config.server.memory_mb);
        Ok(Arc::new(Shared {
            sessions,
            memory,
            warehouse,
            config,
            base: RwLock::new(Arc::new(Base { ctx, generation: 0 })),
            marker: Mutex::new((marker, Instant::now())),
            refresh: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            cancel_keys: Mutex::new(HashMap::new()),
            running_queries: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
        }))
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub fn base(&self) -> Arc<Base> {
        match self.base.read() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes new commits visible: a local warehouse is checked on every call (a few `stat`s),
    /// an object store at most every `refresh_secs`.
    pub async fn refresh_if_changed(&self) -> Result<(), ServeError> {
        let due = {
            let guard = self.marker.lock().map_err(|_| ServeError::Poisoned)?;
            self.warehouse.local_dir().is_some()
                || guard.1.elapsed() >= Duration::from_secs(self.config.server.refresh_secs)
        };
        if !due {
            return Ok(());
        }
        let now = read_marker(&self.warehouse).await?;
        {
            let mut guard = self.marker.lock().map_err(|_| ServeError::Poisoned)?;
            guard.1 = Instant::now();
            if guard.0 == now {
                return Ok(());
            }
        }
        let _one_at_a_time = self.refresh.lock().await;
        let now = read_marker(&self.warehouse).await?;
        if self.marker.lock().map_err(|_| ServeError::Poisoned)?.0 == now {
            return Ok(());
        }
        let ctx = build(&self.warehouse, &self.config).await?;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut b) = self.base.write() {
            *b = Arc::new(Base { ctx, generation });
        }
        if let Ok(mut m) = self.marker.lock() {
            *m = (now, Instant::now());
        }
        tracing::info!(generation, "new data committed: tables refreshed");
        Ok(())
    }

    pub fn register_cancel_key(&self, pid: i32, key: Vec<u8>, conn: &Arc<ConnState>) {
        if let Ok(mut m) = self.cancel_keys.lock() {
            m.retain(|_, c| c.strong_count() > 0);
            m.insert((pid, key), Arc::downgrade(conn));
        }
    }

    /// Stops every running statement (the shutdown grace ran out).
    pub fn stop_all(&self, reason: &'static str) {
        let conns: Vec<Arc<ConnState>> = self
            .cancel_keys
            .lock()
            .map(|m| m.values().filter_map(Weak::upgrade).collect())
            .unwrap_or_default();
        for conn in conns {
            conn.stop_for(reason);
        }
    }

    pub fn cancel(&self, pid: i32, key: &[u8]) {
        let conn = self
            .cancel_keys
            .lock()
            .ok()
            .and_then(|m| m.get(&(pid, key.to_vec())).and_then(Weak::upgrade));
        if let Some(conn) = conn {
            conn.cancel();
        }
    }
}

async fn read_marker(warehouse: &Warehouse) -> Result<Marker, ServeError> {
    if let Some(dir) = warehouse.local_dir() {
        let times = watched()
            .map(|name| {
                let log: PathBuf = dir.join(name).join("_delta_log");
                std::fs::metadata(&log).and_then(|m| m.modified()).ok()
            })
            .collect();
        return Ok(Marker::Local(times));
    }
    let mut versions = Vec::new();
    for name in watched() {
        versions.push(
            warehouse
                .existing_table_named(name)
                .await?
                .and_then(|t| t.version()),
        );
    }
    Ok(Marker::Versions(versions))
}

/// The tables whose commits make the server refresh: the warehouse, the customer summary
/// (written just after an orders commit) and the export record.
fn watched() -> impl Iterator<Item = &'static str> {
    TableKind::ALL
        .iter()
        .map(|k| k.name())
        .chain([crate::summary::TABLE, crate::export::runs::TABLE])
}

/// The base session, with the configured export destinations' stores registered so that
/// admins' `COPY … TO 's3://…'` reaches them (and only them).
async fn build(warehouse: &Warehouse, config: &ServerConfig) -> Result<SessionContext, ServeError> {
    let ctx = super::pgcompat::build_base(warehouse).await?;
    for (url, store) in config.export_stores() {
        ctx.runtime_env().register_object_store(&url, store);
    }
    Ok(ctx)
}
