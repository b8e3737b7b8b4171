//! One client connection: its session (settings, `rebuy.as_of`, …), its role, and how a
//! statement is run for it: SET/SHOW/transactions answered here, writes refused for analysts,
//! everything else planned and executed by DataFusion under the connection's time and memory
//! limits; `respond.rs` streams the results batch by batch.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};
use tokio::sync::Notify;

use super::config::Role;
use super::encode::{pg_to_arrow, sql_type_name};
use super::errors::{self, pg_error};
use super::held::HeldKind;
use super::settings::Settings;
use super::shared::Shared;

/// A connection's session at one data snapshot, with the planning state and task context its
/// statements share. `SessionContext::state()` copies every function and option map; done for
/// each step of a statement (to plan, to execute, for the task) it cost more than planning
/// `SELECT 1` itself. Execution still copies the state once, for its own `now()`.
#[derive(Clone)]
pub struct Session {
    /// The data snapshot (see [`super::shared::Base`]).
    pub generation: u64,
    pub ctx: SessionContext,
    pub state: Arc<SessionState>,
    pub task: Arc<TaskContext>,
}

impl Session {
    fn of(generation: u64, ctx: SessionContext) -> Self {
        let state = ctx.state();
        let task = Arc::new(TaskContext::from(&state));
        Session {
            generation,
            ctx,
            state: Arc::new(state),
            task,
        }
    }
}

pub struct ConnState {
    pub shared: Arc<Shared>,
    pub id: u64,
    session: Mutex<Option<Session>>,
    pub settings: Arc<Mutex<Settings>>,
    canceled: AtomicBool,
    cancel_notify: Notify,
    busy: AtomicUsize,
    last_active: Mutex<Instant>,
    identity: Mutex<Option<(String, Role)>>,
    /// The statement being run, logged when its last row is sent (or at once if it has none).
    pending_log: Mutex<Option<(String, Instant)>>,
    /// Set to stop the running statement where awaiting cannot: in the fits (see
    /// [`crate::functions::stop`]); `stop_reason` says why, for the 57014 message.
    stop: crate::functions::stop::Stop,
    stop_reason: Mutex<&'static str>,
    /// Sets `stop` when the statement timeout passes, even while a fit blocks this task.
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Held while logging in (bounds connections that never authenticate), then exchanged
    /// for a session slot (bounds `max_connections`).
    startup_permit: Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    session_slot: Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    /// What the client keeps on the server between messages: named prepared statements
    /// (their SQL's size) and named portals (their parameters' size).
    held: Mutex<super::held::Held>,
    /// Open cursors (see [`super::held::Cursors`]).
    pub cursors: Mutex<super::held::Cursors>,
    /// Whether a transaction block is open, and the `SET LOCAL` values to undo at its end.
    pub(super) txn: Mutex<Txn>,
}

#[derive(Default)]
pub(super) struct Txn {
    pub(super) open: bool,
    /// Setting name and the value before the first `SET LOCAL` of it.
    pub(super) restore: Vec<(String, Option<String>)>,
}

impl ConnState {
    pub fn new(
        shared: Arc<Shared>,
        startup_permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Arc<Self> {
        let mut settings = Settings::new();
        if shared.config.server.statement_timeout_ms > 0 {
            settings.set_default(
                "statement_timeout",
                shared.config.server.statement_timeout_ms.to_string(),
            );
        }
        Arc::new(ConnState {
            id: shared.next_conn_id(),
            shared,
            session: Mutex::new(None),
            settings: Arc::new(Mutex::new(settings)),
            canceled: AtomicBool::new(false),
            cancel_notify: Notify::new(),
            busy: AtomicUsize::new(0),
            last_active: Mutex::new(Instant::now()),
            identity: Mutex::new(None),
            pending_log: Mutex::new(None),
            stop: crate::functions::stop::Stop::new(),
            stop_reason: Mutex::new("user request"),
            timer: Mutex::new(None),
            startup_permit: Mutex::new(startup_permit),
            session_slot: Mutex::new(None),
            held: Mutex::new(super::held::Held::default()),
            cursors: Mutex::new(super::held::Cursors::default()),
            txn: Mutex::new(Txn::default()),
        })
    }

    /// Counts a named statement or portal the client is about to keep (see
    /// [`super::held`]); false when it would pass the limits.
    pub fn hold(&self, kind: HeldKind, name: &str, bytes: usize) -> bool {
        self.held
            .lock()
            .is_ok_and(|mut held| held.hold(kind, name, bytes))
    }

    pub fn release(&self, kind: HeldKind, name: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.release(kind, name);
        }
    }

    /// Takes one of the server's `max_connections` session slots for this login, giving back
    /// the startup permit; false when none is free.
    pub fn take_session_slot(&self) -> bool {
        let Ok(permit) = self.shared.sessions.clone().try_acquire_owned() else {
            return false;
        };
        if let Ok(mut slot) = self.session_slot.lock() {
            *slot = Some(permit);
        }
        if let Ok(mut p) = self.startup_permit.lock() {
            p.take();
        }
        true
    }

    /// Whether the connection finished logging in.
    pub fn authenticated(&self) -> bool {
        self.session_slot.lock().is_ok_and(|s| s.is_some())
    }

    /// Stops the running statement, if any, for `reason` (57014 "canceling statement due to
    /// <reason>"): a cancel request, the client's disconnection, the server's shutdown.
    pub fn stop_for(&self, reason: &'static str) {
        if self.is_busy() {
            if let Ok(mut r) = self.stop_reason.lock() {
                *r = reason;
            }
            self.stop.set();
            self.canceled.store(true, Ordering::SeqCst);
            self.cancel_notify.notify_waiters();
        }
    }

    fn stop_reason(&self) -> &'static str {
        self.stop_reason.lock().map_or("user request", |r| *r)
    }

    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst) > 0
    }

    /// The statement timeout in force: the session's, under the server's maximum.
    pub(super) fn statement_timeout(&self) -> Option<Duration> {
        self.settings()
            .statement_timeout_within(self.shared.config.server.max_statement_timeout_ms)
    }

    /// Starts a statement: clears what stopped the previous one and arms the timer that stops
    /// this one at its timeout.
    pub(super) fn start_statement(self: &Arc<Self>) {
        self.canceled.store(false, Ordering::SeqCst);
        self.stop.begin_statement();
        let timer = self.statement_timeout().map(|t| {
            let conn = Arc::downgrade(self);
            tokio::spawn(async move {
                tokio::time::sleep(t).await;
                if let Some(conn) = conn.upgrade() {
                    conn.stop_for("statement timeout");
                }
            })
        });
        if let Ok(mut slot) = self.timer.lock()
            && let Some(old) = std::mem::replace(&mut *slot, timer)
        {
            old.abort();
        }
    }

    /// A stopped statement's error says why it stopped, whatever part of it noticed.
    pub(super) fn stopped_or(&self, e: PgWireError) -> PgWireError {
        if self.stop.is_set() {
            errors::canceled(self.stop_reason())
        } else {
            e
        }
    }

    /// Remembers the statement about to run, for its log line.
    pub fn begin_log(&self, sql: &str) {
        if let Ok(mut p) = self.pending_log.lock() {
            *p = Some((sql.chars().take(300).collect(), Instant::now()));
        }
    }

    /// Logs the statement now unless its rows are still to be streamed (then the stream logs).
    pub fn end_log(&self, error: Option<&PgWireError>) {
        let pending = self.pending_log.lock().ok().and_then(|mut p| p.take());
        if let Some((sql, started)) = pending {
            self.log_line(&sql, started, None, error.map(error_text));
        }
    }

    fn log_line(&self, sql: &str, started: Instant, rows: Option<usize>, error: Option<String>) {
        let (user, _) = self.identity();
        let ms = (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
        match error {
            None => tracing::info!(conn = self.id, user, ms, rows, sql, "query"),
            Some(error) => {
                tracing::info!(conn = self.id, user, ms, rows, sql, error, "query failed")
            }
        }
    }

    pub fn cancel(&self) {
        self.stop_for("user request");
    }

    pub fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return None;
        }
        self.last_active.lock().ok().map(|t| t.elapsed())
    }

    pub fn touch(&self) {
        if let Ok(mut t) = self.last_active.lock() {
            *t = Instant::now();
        }
    }

    /// The logged-in user and role (known once startup finished).
    pub fn set_identity(&self, user: &str) {
        let role = self
            .shared
            .config
            .user(user)
            .map(|u| u.role)
            .unwrap_or(Role::Analyst);
        if let Ok(mut id) = self.identity.lock() {
            *id = Some((user.to_string(), role));
        }
    }

    pub fn identity(&self) -> (String, Role) {
        self.identity
            .lock()
            .ok()
            .and_then(|i| i.clone())
            .unwrap_or_else(|| ("unknown".to_string(), Role::Analyst))
    }

    pub(super) fn settings(&self) -> Settings {
        self.settings.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// This connection's DataFusion session at the latest data snapshot, keeping its settings.
    pub async fn session(&self) -> PgWireResult<SessionContext> {
        Ok(self.current().await?.ctx)
    }

    /// [`Self::session`] with the state its statements are planned and run with.
    pub async fn current(&self) -> PgWireResult<Session> {
        self.shared
            .refresh_if_changed()
            .await
            .map_err(|e| pg_error(errors::INTERNAL_ERROR, e.to_string()))?;
        let base = self.shared.base();
        let config = {
            let guard = self
                .session
                .lock()
                .map_err(|_| pg_error(errors::INTERNAL_ERROR, "session lock poisoned"))?;
            if let Some(session) = guard.as_ref()
                && session.generation == base.generation
            {
                return Ok(session.clone());
            }
            match guard.as_ref() {
                Some(old) => old.ctx.copied_config(),
                None => base.ctx.copied_config(),
            }
        };
        let base_state = base.ctx.state();
        let limit = self.shared.config.server.query_memory_mb.max(16) * 1024 * 1024;
        let runtime = RuntimeEnvBuilder::from_runtime_env(base_state.runtime_env())
            .with_memory_pool(Arc::new(super::memory::Share::new(
                self.shared.memory.clone(),
                limit,
            )))
            .build_arc()
            .map_err(errors::from_datafusion)?;
        let (_, role) = self.identity();
        let catalogs =
            super::catalog::private_catalogs(base_state.catalog_list(), role == Role::Analyst)
                .await
                .map_err(errors::from_datafusion)?;
        let state = SessionStateBuilder::new_from_existing(base_state)
            .with_config(config)
            .with_runtime_env(runtime)
            .with_catalog_list(catalogs)
            .with_optimizer_rule(Arc::new(crate::functions::stop::StopFits {
                stop: self.stop.clone(),
            }))
            .build();
        let ctx = SessionContext::new_with_state(state);
        let (user, _) = self.identity();
        super::pgcompat::register_connection_functions(&ctx, &user, self.settings.clone());
        // No one value may be larger than the query's whole memory share.
        crate::functions::caps::register(
            &ctx,
            limit.min(crate::functions::caps::DEFAULT_MAX_BYTES),
        );
        let session = Session::of(base.generation, ctx);
        if let Ok(mut guard) = self.session.lock() {
            *guard = Some(session.clone());
        }
        Ok(session)
    }

    /// Takes up an engine option just set in the session (see [`Session`]: its state is a copy).
    pub fn options_changed(&self) {
        if let Ok(mut guard) = self.session.lock()
            && let Some(session) = guard.as_mut()
        {
            *session = Session::of(session.generation, session.ctx.clone());
        }
    }

    /// Refuses a plan the user's role may not run (see [`super::access`]).
    pub fn check_plan(&self, plan: &LogicalPlan) -> PgWireResult<()> {
        let (_, role) = self.identity();
        let rules = super::access::FileRules {
            config: &self.shared.config,
            data_dir: self.shared.warehouse.local_dir(),
        };
        super::access::check_plan(plan, role, &rules)
    }

    /// Plans a statement of kind [`Kind::Plan`], with parameter types from the client if given.
    pub async fn plan(
        &self,
        statement: &Statement,
        param_types: &[Option<Type>],
    ) -> PgWireResult<LogicalPlan> {
        let session = self.current().await?;
        self.plan_in(&session, statement, param_types).await
    }

    /// [`Self::plan`] at a snapshot the caller already holds (and runs the plan in).
    pub async fn plan_in(
        &self,
        session: &Session,
        statement: &Statement,
        param_types: &[Option<Type>],
    ) -> PgWireResult<LogicalPlan> {
        let state = &session.state;
        // Types for $1..$n: the client's, else a cast written around the placeholder.
        let casts = super::params::placeholder_casts(statement);
        let count = casts.0.max(param_types.len());
        let types: Vec<Option<String>> = (0..count)
            .map(|i| {
                param_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .and_then(|t| pg_to_arrow(&t))
                    .map(|t| sql_type_name(&t))
                    .or_else(|| casts.1.get(&(i + 1)).cloned())
            })
            .collect();
        let planned = if count > 0 && types.iter().all(Option::is_some) {
            let sql = format!(
                "PREPARE rebuy_typed({}) AS {statement}",
                types.into_iter().flatten().collect::<Vec<_>>().join(", ")
            );
            let plan = state.create_logical_plan(&sql).await;
            match plan {
                Ok(LogicalPlan::Statement(datafusion::logical_expr::Statement::Prepare(p))) => {
                    Ok(p.input.as_ref().clone())
                }
                Ok(other) => Ok(other),
                Err(_) => {
                    state
                        .statement_to_plan(DfStatement::Statement(Box::new(statement.clone())))
                        .await
                }
            }
        } else {
            state
                .statement_to_plan(DfStatement::Statement(Box::new(statement.clone())))
                .await
        };
        let plan = planned.map_err(errors::from_datafusion)?;
        self.check_plan(&plan)?;
        Ok(plan)
    }

    /// Runs `fut` as a query of this connection: counted as busy (and as running, so a
    /// shutdown waits for it: an eager start runs a whole aggregate before any row is encoded),
    /// stopped by a cancel request or the statement timeout.
    pub(super) async fn guarded<T>(
        &self,
        fut: impl std::future::Future<Output = PgWireResult<T>>,
    ) -> PgWireResult<T> {
        let deadline = self
            .statement_timeout()
            .map(|t| tokio::time::Instant::now() + t);
        self.busy.fetch_add(1, Ordering::SeqCst);
        let _busy = Busy(&self.busy);
        self.shared.running_queries.fetch_add(1, Ordering::SeqCst);
        let _running = Busy(&self.shared.running_queries);
        self.until_stopped(fut, deadline)
            .await?
            .map_err(|e| self.stopped_or(e))
    }

    /// Awaits `fut` unless a cancel request arrives or `deadline` passes first (57014).
    pub(super) async fn until_stopped<T>(
        &self,
        fut: impl std::future::Future<Output = T>,
        deadline: Option<tokio::time::Instant>,
    ) -> PgWireResult<T> {
        let cancel = self.cancel_notify.notified();
        tokio::pin!(cancel);
        cancel.as_mut().enable();
        if self.canceled.swap(false, Ordering::SeqCst) {
            return Err(errors::canceled(self.stop_reason()));
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = fut => Ok(r),
            _ = cancel => {
                self.canceled.store(false, Ordering::SeqCst);
                Err(errors::canceled(self.stop_reason()))
            }
            _ = sleep => Err(errors::canceled("statement timeout")),
        }
    }

    /// Runs `plan` on the query threads. `eager` waits for the first batch (and takes what
    /// follows at once) before returning, so a small result crosses threads once.
    pub(super) async fn execute(
        &self,
        session: &Session,
        plan: LogicalPlan,
        eager: bool,
    ) -> PgWireResult<SendableRecordBatchStream> {
        let (start, batches) = super::runtime::run_on_query_threads(session.clone(), plan, eager);
        let start = self
            .guarded(async {
                start.await.map_err(|_| {
                    pg_error(errors::INTERNAL_ERROR, "the query ended before it started")
                })?
            })
            .await?;
        Ok(batches_as_stream(start, batches))
    }

    pub(super) async fn drain(&self, mut stream: SendableRecordBatchStream) -> PgWireResult<usize> {
        self.guarded(async move {
            let mut rows = 0usize;
            let mut count_column = None;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(errors::from_datafusion)?;
                if batch.num_columns() == 1 && batch.schema().field(0).name() == "count" {
                    count_column =
                        datafusion::arrow::compute::cast(batch.column(0), &DataType::Int64)
                            .ok()
                            .and_then(|a| {
                                a.as_any()
                                    .downcast_ref::<datafusion::arrow::array::Int64Array>()
                                    .map(|a| a.value(0) as usize)
                            });
                }
                rows += batch.num_rows();
            }
            Ok(count_column.unwrap_or(rows))
        })
        .await
    }

    /// Counts the connection (and the server) busy with a response until the guard is dropped,
    /// which also writes the statement's log line.
    pub(super) fn begin_response(self: &Arc<Self>) -> ResponseGuard {
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.shared.running_queries.fetch_add(1, Ordering::SeqCst);
        ResponseGuard {
            conn: self.clone(),
            log: self.pending_log.lock().ok().and_then(|mut p| p.take()),
            rows: 0,
            error: None,
        }
    }
}

/// The batches a query's task sends, as the stream the encoders read.
fn batches_as_stream(
    start: super::runtime::Start,
    batches: tokio::sync::mpsc::Receiver<datafusion::error::Result<RecordBatch>>,
) -> SendableRecordBatchStream {
    let rest = futures::stream::unfold((batches, start.done), |(mut rx, done)| async move {
        if done {
            return None;
        }
        rx.recv().await.map(|item| (item, (rx, false)))
    });
    let stream = futures::stream::iter(start.first).chain(rest);
    Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(start.schema, stream))
}

pub(super) fn error_text(e: &PgWireError) -> String {
    match e {
        PgWireError::UserError(info) => format!("{} {}", info.code, info.message),
        other => other.to_string(),
    }
}

struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response in progress (see [`ConnState::begin_response`]): the rows sent and the error
/// that ended it go into the statement's log line.
pub(super) struct ResponseGuard {
    conn: Arc<ConnState>,
    log: Option<(String, Instant)>,
    pub(super) rows: usize,
    pub(super) error: Option<String>,
}

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        if let Some((sql, started)) = self.log.take() {
            let error = self.error.take();
            self.conn.log_line(&sql, started, Some(self.rows), error);
        }
        self.conn.busy.fetch_sub(1, Ordering::SeqCst);
        self.conn
            .shared
            .running_queries
            .fetch_sub(1, Ordering::SeqCst);
        self.conn.touch();
    }
}

pub(super) fn values_is_empty(values: &ParamValues) -> bool {
    match values {
        ParamValues::List(l) => l.is_empty(),
        ParamValues::Map(m) => m.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    /// A connection's session is freed when the connection moves to a newer snapshot or
    /// ends: nothing registered in it may hold it.
    #[tokio::test]
    async fn a_connection_session_is_freed_when_dropped() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/fixture/warehouse");
        let warehouse = crate::storage::Warehouse::open(dir).unwrap();
        let shared = super::Shared::open(warehouse, Default::default())
            .await
            .unwrap();
        let conn = super::ConnState::new(shared, None);
        conn.set_identity("analyst");
        let ctx = conn.session().await.unwrap();
        ctx.sql("SELECT current_setting('TimeZone'), count(*) FROM orders")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let weak = ctx.state_weak_ref();
        drop(ctx);
        drop(conn);
        assert!(
            weak.upgrade().is_none(),
            "the connection's session keeps itself"
        );
    }
}
