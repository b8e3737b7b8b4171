//! One client connection: its session (settings, `rebuy.as_of`, …), its role, and how a
//! statement is run for it: SET/SHOW/transactions answered here, writes refused for analysts,
//! everything else planned and executed by DataFusion under the connection's time and memory
//! limits, with results streamed batch by batch.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    ContextModifier, CopySource, CopyTarget, Expr, Reset, Set, Statement,
};
use futures::StreamExt;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;
use tokio::sync::Notify;

use super::config::Role;
use super::copy::{CopySpec, copy_lines};
use super::encode::{
    canonical_time_zone, pg_fields, pg_to_arrow, sql_type_name, to_wire_batch, trim_fractions,
    zoned_as_text,
};
use super::errors::{self, pg_error};
use super::held::HeldKind;
use super::settings::Settings;
use super::shared::Shared;

/// Building the parser parses its token rewrite tables: done once.
static PARSER: std::sync::LazyLock<
    datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser,
> = std::sync::LazyLock::new(
    datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser::new,
);

pub struct ConnState {
    pub shared: Arc<Shared>,
    pub id: u64,
    session: Mutex<Option<(u64, SessionContext)>>,
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
    /// Open cursors (see [`super::cursor`]).
    pub cursors: Mutex<super::cursor::Cursors>,
    /// Whether a transaction block is open, and the `SET LOCAL` values to undo at its end.
    txn: Mutex<Txn>,
}

#[derive(Default)]
struct Txn {
    open: bool,
    /// Setting name and the value before the first `SET LOCAL` of it.
    restore: Vec<(String, Option<String>)>,
}

/// What a statement turns into before it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Planned by DataFusion (queries, and for admins DDL/DML).
    Plan,
    Set,
    Show(String),
    Begin,
    Commit,
    Rollback,
    /// Accepted and ignored, answered with this command tag.
    NoOp(&'static str),
    CopyOut,
    /// DataFusion-only syntax (CREATE EXTERNAL TABLE, COPY ... TO 'path'): admins only.
    DataFusionText,
    /// asyncpg's type-introspection query, answered by [`super::asyncpg`].
    AsyncpgTypes,
    Reset,
    /// `DECLARE … CURSOR FOR query`: the query is planned (with its parameters) as a query.
    Declare,
    /// `FETCH` (or `MOVE`, which counts rows without sending them) from a cursor.
    Fetch { cursor: String, moving: bool },
    Close,
}

/// A parsed statement, as kept for the extended protocol.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: String,
    pub statement: Option<Statement>,
    pub kind: Kind,
    pub plan: Option<LogicalPlan>,
    /// [`Kind::DataFusionText`]: the statement as parsed once, with the PostgreSQL dialect
    /// whatever the session's `datafusion.sql_parser.dialect`; the same parse is checked and
    /// run.
    pub df: Option<Box<DfStatement>>,
}

impl Prepared {
    /// The query DataFusion plans for this statement: the statement itself, or a cursor's.
    pub fn query_to_plan(&self) -> Option<Statement> {
        match (&self.kind, &self.statement) {
            (Kind::Plan, Some(s)) => Some(s.clone()),
            (Kind::Declare, Some(Statement::Declare { stmts })) => stmts
                .first()
                .and_then(|d| d.for_query.clone())
                .map(Statement::Query),
            _ => None,
        }
    }
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
            cursors: Mutex::new(super::cursor::Cursors::default()),
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
    fn statement_timeout(&self) -> Option<Duration> {
        self.settings()
            .statement_timeout_within(self.shared.config.server.max_statement_timeout_ms)
    }

    /// Starts a statement: clears what stopped the previous one and arms the timer that stops
    /// this one at its timeout.
    fn start_statement(self: &Arc<Self>) {
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
    fn stopped_or(&self, e: PgWireError) -> PgWireError {
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
            if let Some((generation, ctx)) = guard.as_ref()
                && *generation == base.generation
            {
                return Ok(ctx.clone());
            }
            match guard.as_ref() {
                Some((_, old)) => old.copied_config(),
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
        if let Ok(mut guard) = self.session.lock() {
            *guard = Some((base.generation, ctx.clone()));
        }
        Ok(ctx)
    }

    /// Parses SQL text into statements with the PostgreSQL-compatible parser. Text only
    /// DataFusion understands (CREATE EXTERNAL TABLE, COPY TO a path) comes back as one
    /// [`Kind::DataFusionText`] statement.
    pub fn parse(&self, sql: &str) -> PgWireResult<Vec<Prepared>> {
        if super::asyncpg::is_introspection(sql) {
            return Ok(vec![Prepared {
                sql: "asyncpg type introspection".to_string(),
                statement: None,
                kind: Kind::AsyncpgTypes,
                plan: None,
                df: None,
            }]);
        }
        if let Some(fetch) = move_as_fetch(sql) {
            let mut prepared = self.parse(&fetch)?;
            for p in prepared.iter_mut() {
                if let Kind::Fetch { moving, .. } = &mut p.kind {
                    *moving = true;
                }
            }
            return Ok(prepared);
        }
        // Analyst SQL is parsed as `rebuy query` parses it; a catalog statement again with the
        // catalog-compatible parser, and then rewritten for the engine (see super::rewrite).
        let parsed = match crate::sql::parse_plain(sql) {
            Ok(statements) => {
                let single = statements.len() == 1;
                Ok(statements
                    .into_iter()
                    .map(|s| {
                        if !super::rewrite::reads_catalog(&s) {
                            return s;
                        }
                        // The client's own text when it sent one statement (the compatible
                        // parser reads spellings the printed AST no longer has).
                        let text = if single { sql.to_string() } else { s.to_string() };
                        match PARSER.parse(&super::rewrite::drop_regproc_casts(&text)) {
                            Ok(mut again) if again.len() == 1 => again.remove(0),
                            _ => s,
                        }
                    })
                    .collect::<Vec<_>>())
            }
            Err(plain) => PARSER
                .parse(&super::rewrite::drop_regproc_casts(sql))
                .map_err(|_| plain),
        };
        match parsed {
            Ok(statements) => Ok(statements
                .into_iter()
                .map(|mut s| {
                    if super::rewrite::reads_catalog(&s) {
                        super::rewrite::rewrite(&mut s);
                    }
                    crate::sql::shape(&mut s);
                    s
                })
                .map(|s| Prepared {
                    sql: s.to_string(),
                    kind: classify(&s),
                    statement: Some(s),
                    plan: None,
                    df: None,
                })
                .collect()),
            Err(plain_err) => {
                let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
                if let Ok(mut df) =
                    datafusion::sql::parser::DFParser::parse_sql_with_dialect(sql, &dialect)
                    && df.len() == 1
                    && matches!(
                        df.front(),
                        Some(
                            DfStatement::CreateExternalTable(_)
                                | DfStatement::CopyTo(_)
                                | DfStatement::Explain(_)
                        )
                    )
                {
                    return Ok(vec![Prepared {
                        sql: sql.to_string(),
                        statement: None,
                        kind: Kind::DataFusionText,
                        plan: None,
                        df: df.pop_front().map(Box::new),
                    }]);
                }
                Err(pg_error(plain_err.sqlstate(), plain_err.to_string()))
            }
        }
    }

    /// Refuses what the user's role may not do.
    pub fn check_allowed(&self, p: &Prepared) -> PgWireResult<()> {
        let (_, role) = self.identity();
        if role == Role::Admin {
            return Ok(());
        }
        let refused = |what: &str| {
            Err(pg_error(
                errors::READ_ONLY_TRANSACTION,
                format!("cannot execute {what} in a read-only transaction (role analyst)"),
            ))
        };
        match (&p.kind, &p.statement) {
            (Kind::DataFusionText, _) => Err(pg_error(
                errors::INSUFFICIENT_PRIVILEGE,
                "permission denied: reading or writing files and URLs needs the admin role",
            )),
            (Kind::Plan, Some(s)) => match s {
                Statement::Query(_)
                | Statement::Explain { .. }
                | Statement::ExplainTable { .. }
                | Statement::ShowTables { .. }
                | Statement::ShowColumns { .. }
                | Statement::ShowFunctions { .. } => Ok(()),
                Statement::Copy { .. } => Err(pg_error(
                    errors::INSUFFICIENT_PRIVILEGE,
                    "permission denied: COPY to or from a file needs the admin role",
                )),
                other => refused(&statement_word(other)),
            },
            _ => Ok(()),
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
        let ctx = self.session().await?;
        let state = ctx.state();
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

    /// Runs one statement and returns the response to send. `plan` is the extended protocol's
    /// prepared plan (parameters already bound); the simple protocol plans here.
    pub async fn run<C>(
        self: &Arc<Self>,
        client: &mut C,
        p: &Prepared,
        plan: Option<LogicalPlan>,
        params: Option<&ParamValues>,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: pgwire::api::ClientInfo
            + futures::Sink<pgwire::messages::PgWireBackendMessage>
            + Unpin
            + Send,
        PgWireError: From<<C as futures::Sink<pgwire::messages::PgWireBackendMessage>>::Error>,
    {
        // A cancel request that arrived between statements is for nothing that runs now.
        self.start_statement();
        self.check_allowed(p)?;
        match &p.kind {
            Kind::Set => self.run_set(client, p).await,
            Kind::Reset => self.run_reset(client, p).await,
            Kind::Show(name) => self.run_show(name).await,
            Kind::Begin => {
                if let Ok(mut t) = self.txn.lock() {
                    t.open = true;
                }
                Ok(Response::TransactionStart(Tag::new("BEGIN")))
            }
            Kind::Commit => {
                self.end_transaction().await;
                Ok(Response::TransactionEnd(Tag::new("COMMIT")))
            }
            Kind::Rollback => {
                self.end_transaction().await;
                Ok(Response::TransactionEnd(Tag::new("ROLLBACK")))
            }
            Kind::Declare => super::cursor::declare(self, p, plan, params).await,
            Kind::Fetch { cursor, moving } => {
                super::cursor::fetch(self, client, p, cursor, *moving, format).await
            }
            Kind::Close => super::cursor::close(self, p),
            Kind::NoOp(tag) => Ok(Response::Execution(Tag::new(tag))),
            Kind::CopyOut => self.run_copy_out(p, client).await,
            Kind::AsyncpgTypes => Err(pg_error(
                errors::FEATURE_NOT_SUPPORTED,
                "asyncpg's type introspection runs over the extended protocol only",
            )),
            Kind::DataFusionText => {
                let Some(statement) = &p.df else {
                    return Ok(Response::EmptyQuery);
                };
                let ctx = self.session().await?;
                let state = ctx.state();
                let plan = self
                    .guarded(async {
                        state
                            .statement_to_plan(statement.as_ref().clone())
                            .await
                            .map_err(errors::from_datafusion)
                    })
                    .await?;
                self.check_plan(&plan)?;
                let stream = self.execute(&ctx, plan).await?;
                self.drain(stream).await?;
                Ok(Response::Execution(Tag::new("OK")))
            }
            Kind::Plan => {
                let Some(statement) = &p.statement else {
                    return Ok(Response::EmptyQuery);
                };
                let plan = match plan {
                    Some(plan) => {
                        self.check_plan(&plan)?;
                        plan
                    }
                    None => self.plan(statement, &[]).await?,
                };
                let plan = match params {
                    Some(values) if !values_is_empty(values) => plan
                        .replace_params_with_values(values)
                        .map_err(errors::from_datafusion)?,
                    _ => plan,
                };
                let is_query = !matches!(
                    plan,
                    LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_)
                ) && matches!(
                    statement,
                    Statement::Query(_)
                        | Statement::Explain { .. }
                        | Statement::ExplainTable { .. }
                        | Statement::ShowTables { .. }
                        | Statement::ShowColumns { .. }
                        | Statement::ShowFunctions { .. }
                );
                let declared = super::encode::declared_columns(&plan);
                let ctx = self.session().await?;
                let stream = self.execute(&ctx, plan).await?;
                if !is_query {
                    let rows = self.drain(stream).await?;
                    let word = statement_word(statement);
                    let tag = match statement {
                        Statement::Insert(_) => Tag::new("INSERT").with_oid(0).with_rows(rows),
                        Statement::Update { .. } | Statement::Delete(_) => {
                            Tag::new(&word).with_rows(rows)
                        }
                        _ => Tag::new(&word),
                    };
                    return Ok(Response::Execution(tag));
                }
                let format_options =
                    Arc::new(FormatOptions::from_client_metadata(client.metadata()));
                Ok(Response::Query(self.encode(
                    stream,
                    format,
                    format_options,
                    Some(&declared),
                )?))
            }
        }
    }

    /// Runs `fut` as a query of this connection: counted as busy, stopped by a cancel request
    /// or the statement timeout.
    pub(super) async fn guarded<T>(
        &self,
        fut: impl std::future::Future<Output = PgWireResult<T>>,
    ) -> PgWireResult<T> {
        let deadline = self
            .statement_timeout()
            .map(|t| tokio::time::Instant::now() + t);
        self.busy.fetch_add(1, Ordering::SeqCst);
        let _busy = Busy(&self.busy);
        self.until_stopped(fut, deadline)
            .await?
            .map_err(|e| self.stopped_or(e))
    }

    /// Awaits `fut` unless a cancel request arrives or `deadline` passes first (57014).
    async fn until_stopped<T>(
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

    pub(super) async fn execute(
        &self,
        ctx: &SessionContext,
        plan: LogicalPlan,
    ) -> PgWireResult<SendableRecordBatchStream> {
        let (schema, batches) = super::runtime::run_on_query_threads(ctx.clone(), plan);
        let schema = self
            .guarded(async {
                schema.await.map_err(|_| {
                    pg_error(errors::INTERNAL_ERROR, "the query ended before it started")
                })?
            })
            .await?;
        Ok(batches_as_stream(schema, batches))
    }

    async fn drain(&self, mut stream: SendableRecordBatchStream) -> PgWireResult<usize> {
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

    /// Streams `stream` to the client: the first batch is computed under the cancel/timeout
    /// guard (that is where aggregations do their work); later batches check both as they go.
    pub(super) fn encode(
        self: &Arc<Self>,
        stream: SendableRecordBatchStream,
        format: &Format,
        options: Arc<FormatOptions>,
        declared: Option<&[bool]>,
    ) -> PgWireResult<QueryResponse> {
        let fields = Arc::new(pg_fields(&stream.schema(), format, Some(options), declared)?);
        Ok(QueryResponse::new(
            fields.clone(),
            self.rows(stream, fields),
        ))
    }

    /// Encoded rows of `stream`; the connection counts as busy until the stream is dropped.
    fn rows(
        self: &Arc<Self>,
        stream: SendableRecordBatchStream,
        fields: Arc<Vec<FieldInfo>>,
    ) -> futures::stream::BoxStream<'static, PgWireResult<DataRow>> {
        let conn = self.clone();
        let settings = self.settings();
        let deadline = self
            .statement_timeout()
            .map(|t| tokio::time::Instant::now() + t);
        // timestamptz values are shown in the session's TimeZone, as PostgreSQL does.
        let time_zone: Option<Arc<str>> = settings
            .get("TimeZone")
            .and_then(canonical_time_zone)
            .map(Arc::from);
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.shared.running_queries.fetch_add(1, Ordering::SeqCst);
        let guard = BusyGuard {
            conn: self.clone(),
            log: self.pending_log.lock().ok().and_then(|mut p| p.take()),
            rows: 0,
            error: None,
        };
        let batches =
            futures::stream::unfold((stream, guard, false), move |(mut stream, guard, done)| {
                let conn = conn.clone();
                async move {
                    if done {
                        return None;
                    }
                    let next = conn.until_stopped(stream.next(), deadline).await;
                    let mut guard = guard;
                    match next {
                        Ok(None) => None,
                        Ok(Some(Ok(batch))) => match to_wire_batch(batch) {
                            Ok(b) => {
                                guard.rows += b.num_rows();
                                Some((Ok(b), (stream, guard, false)))
                            }
                            Err(e) => {
                                guard.error = Some(error_text(&e));
                                Some((Err(e), (stream, guard, true)))
                            }
                        },
                        Ok(Some(Err(e))) => {
                            let e = conn.stopped_or(errors::from_datafusion(e));
                            guard.error = Some(error_text(&e));
                            Some((Err(e), (stream, guard, true)))
                        }
                        Err(e) => {
                            guard.error = Some(error_text(&e));
                            Some((Err(e), (stream, guard, true)))
                        }
                    }
                }
            });
        let numeric_binary_columns: Vec<usize> = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.format() == pgwire::api::results::FieldFormat::Binary
                    && *f.datatype() == Type::NUMERIC
            })
            .map(|(i, _)| i)
            .collect();
        // PostgreSQL prints `12:34:56` and `12:34:56.5`, not `12:34:56.000000`.
        let time_columns: Vec<usize> = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.format() == pgwire::api::results::FieldFormat::Text
                    && matches!(
                        *f.datatype(),
                        Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::TIME | Type::TIMETZ
                    )
            })
            .map(|(i, _)| i)
            .collect();
        let zoned_text_columns: Vec<usize> = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.format() == pgwire::api::results::FieldFormat::Text
                    && *f.datatype() == Type::TIMESTAMPTZ
            })
            .map(|(i, _)| i)
            .collect();
        batches
            .flat_map(move |batch| {
                let items: Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> =
                    match batch
                        .and_then(|b| zoned_as_text(b, &zoned_text_columns, time_zone.as_deref()))
                    {
                        Ok(b) => datafusion_postgres::arrow_pg::datatypes::encode_recordbatch(
                            fields.clone(),
                            b,
                        ),
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    };
                futures::stream::iter(items)
            })
            .map(move |row| match row {
                Ok(r) if !time_columns.is_empty() => Ok(trim_fractions(r, &time_columns)),
                other => other,
            })
            .map(move |row| match row {
                Ok(r) if !numeric_binary_columns.is_empty() => {
                    Ok(super::numeric::binary_columns(r, &numeric_binary_columns))
                }
                other => other,
            })
            .boxed()
    }

    async fn run_set<C>(&self, client: &mut C, p: &Prepared) -> PgWireResult<Response>
    where
        C: futures::Sink<pgwire::messages::PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as futures::Sink<pgwire::messages::PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        let Some(Statement::Set(set)) = &p.statement else {
            return Ok(Response::Execution(Tag::new("SET")));
        };
        let (name, value, local) = match set {
            Set::SingleAssignment {
                variable,
                values,
                scope,
                ..
            } => (
                variable.to_string(),
                values.iter().map(value_text).collect::<Vec<_>>().join(", "),
                matches!(scope, Some(ContextModifier::Local)),
            ),
            Set::SetTimeZone { value, local } => {
                ("TimeZone".to_string(), value_text(value), *local)
            }
            Set::SetNames { charset_name, .. } => {
                ("client_encoding".to_string(), charset_name.to_string(), false)
            }
            _ => return Ok(Response::Execution(Tag::new("SET"))),
        };
        if local && !self.remember_for_transaction(&name).await? {
            // PostgreSQL warns and changes nothing outside a transaction block.
            return Ok(Response::Execution(Tag::new("SET")));
        }
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("rebuy.") || lower.starts_with("datafusion.") {
            self.set_engine_option(&name, &value).await?;
            return Ok(Response::Execution(Tag::new("SET")));
        }
        let value = super::settings::checked_value(&name, &value)
            .map_err(|(code, message)| pg_error(code, message))?;
        let report = {
            let mut settings = self
                .settings
                .lock()
                .map_err(|_| pg_error(errors::INTERNAL_ERROR, "settings lock poisoned"))?;
            if value.eq_ignore_ascii_case("default") {
                settings.reset(&name)
            } else {
                settings.set(&name, value)
            }
            .map(|display| {
                (
                    display.clone(),
                    settings.get(&display).unwrap_or("").to_string(),
                )
            })
        };
        if let Some((display, value)) = report {
            client
                .send(pgwire::messages::PgWireBackendMessage::ParameterStatus(
                    pgwire::messages::startup::ParameterStatus::new(display, value),
                ))
                .await?;
        }
        Ok(Response::Execution(Tag::new("SET")))
    }

    /// Sets a `rebuy.*` or `datafusion.*` option in this connection's session.
    async fn set_engine_option(&self, name: &str, value: &str) -> PgWireResult<()> {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("datafusion.") {
            super::settings::check_datafusion_option(name, value)
                .map_err(|(code, message)| pg_error(code, message))?;
        }
        let ctx = self.session().await?;
        let value = if value.eq_ignore_ascii_case("default") {
            self.base_option(&lower).unwrap_or_default()
        } else {
            value.to_string()
        };
        ctx.state_ref()
            .write()
            .config_mut()
            .options_mut()
            .set(&lower, &value)
            .map_err(|e| {
                pg_error(
                    errors::INVALID_PARAMETER_VALUE,
                    format!("invalid value for parameter \"{name}\": {}", first_line(&e)),
                )
            })
    }

    /// The server's value of an engine option, which RESET returns to.
    fn base_option(&self, key: &str) -> Option<String> {
        self.shared
            .base()
            .ctx
            .state()
            .config_options()
            .entries()
            .into_iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
            .and_then(|e| e.value)
    }

    /// `RESET name` / `RESET ALL`.
    async fn run_reset<C>(&self, client: &mut C, p: &Prepared) -> PgWireResult<Response>
    where
        C: futures::Sink<pgwire::messages::PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as futures::Sink<pgwire::messages::PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        let Some(Statement::Reset(reset)) = &p.statement else {
            return Ok(Response::Execution(Tag::new("RESET")));
        };
        let names: Vec<String> = match &reset.reset {
            Reset::ALL => {
                let ctx = self.session().await?;
                let engine: Vec<String> = ctx
                    .state()
                    .config_options()
                    .entries()
                    .into_iter()
                    .filter(|e| e.key.starts_with("rebuy."))
                    .map(|e| e.key)
                    .collect();
                for key in engine {
                    self.set_engine_option(&key, "default").await?;
                }
                let mut settings = self
                    .settings
                    .lock()
                    .map_err(|_| pg_error(errors::INTERNAL_ERROR, "settings lock poisoned"))?;
                settings.reset_all()
            }
            Reset::ConfigurationParameter(name) => {
                let name = name.to_string();
                let lower = name.to_ascii_lowercase();
                if lower.starts_with("rebuy.") || lower.starts_with("datafusion.") {
                    self.set_engine_option(&name, "default").await?;
                    vec![]
                } else {
                    let mut settings = self.settings.lock().map_err(|_| {
                        pg_error(errors::INTERNAL_ERROR, "settings lock poisoned")
                    })?;
                    settings.reset(&name).into_iter().collect()
                }
            }
        };
        let reports: Vec<(String, String)> = {
            let settings = self.settings();
            names
                .into_iter()
                .map(|n| {
                    let v = settings.get(&n).unwrap_or("").to_string();
                    (n, v)
                })
                .collect()
        };
        for (name, value) in reports {
            client
                .send(pgwire::messages::PgWireBackendMessage::ParameterStatus(
                    pgwire::messages::startup::ParameterStatus::new(name, value),
                ))
                .await?;
        }
        Ok(Response::Execution(Tag::new("RESET")))
    }

    pub(super) fn in_transaction(&self) -> bool {
        self.txn.lock().map(|t| t.open).unwrap_or(false)
    }

    /// Before a `SET LOCAL`: remembers the setting's value to restore at the end of the
    /// transaction; false outside a transaction block.
    async fn remember_for_transaction(&self, name: &str) -> PgWireResult<bool> {
        let ctx = self.session().await?;
        let current = super::pgcompat::setting_value(&ctx, &self.settings(), name);
        let mut txn = self
            .txn
            .lock()
            .map_err(|_| pg_error(errors::INTERNAL_ERROR, "transaction lock poisoned"))?;
        if !txn.open {
            return Ok(false);
        }
        if !txn.restore.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            txn.restore.push((name.to_string(), current));
        }
        Ok(true)
    }

    /// COMMIT or ROLLBACK: `SET LOCAL` values are undone, cursors without HOLD close.
    async fn end_transaction(&self) {
        let restore = match self.txn.lock() {
            Ok(mut t) => {
                t.open = false;
                std::mem::take(&mut t.restore)
            }
            Err(_) => vec![],
        };
        for (name, value) in restore {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("rebuy.") || lower.starts_with("datafusion.") {
                let _ = self
                    .set_engine_option(&name, value.as_deref().unwrap_or("default"))
                    .await;
            } else if let Ok(mut settings) = self.settings.lock() {
                match value {
                    Some(v) => {
                        settings.set(&name, v);
                    }
                    None => {
                        settings.reset(&name);
                    }
                }
            }
        }
        if let Ok(mut cursors) = self.cursors.lock() {
            cursors.end_transaction();
        }
    }

    async fn run_show(&self, name: &str) -> PgWireResult<Response> {
        let ctx = self.session().await?;
        let settings = self.settings();
        if name.eq_ignore_ascii_case("all") {
            let mut rows: Vec<(String, String)> = settings
                .all()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            for e in ctx.state().config_options().entries() {
                if e.key.starts_with("rebuy.") {
                    rows.push((e.key.clone(), e.value.clone().unwrap_or_default()));
                }
            }
            let names: ArrayRef =
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.0)));
            let values: ArrayRef =
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.1)));
            let schema = Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("setting", DataType::Utf8, false),
            ]));
            let batch = RecordBatch::try_new(schema, vec![names, values])
                .map_err(|e| pg_error(errors::INTERNAL_ERROR, e.to_string()))?;
            return self.batch_response(batch);
        }
        let value = super::pgcompat::setting_value(&ctx, &settings, name).ok_or_else(|| {
            pg_error(
                errors::UNDEFINED_OBJECT,
                format!("unrecognized configuration parameter \"{name}\""),
            )
        })?;
        let column = show_column_name(name);
        let schema = Arc::new(Schema::new(vec![Field::new(
            &column,
            DataType::Utf8,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec![value])) as ArrayRef],
        )
        .map_err(|e| pg_error(errors::INTERNAL_ERROR, e.to_string()))?;
        self.batch_response(batch)
    }

    pub(super) fn batch_response(&self, batch: RecordBatch) -> PgWireResult<Response> {
        let fields = Arc::new(
            datafusion_postgres::arrow_pg::datatypes::arrow_schema_to_pg_fields(
                &batch.schema(),
                &Format::UnifiedText,
                None,
            )?,
        );
        let rows: Vec<_> =
            datafusion_postgres::arrow_pg::datatypes::encode_recordbatch(fields.clone(), batch)
                .collect();
        Ok(Response::Query(QueryResponse::new(
            fields,
            futures::stream::iter(rows),
        )))
    }

    async fn run_copy_out<C>(self: &Arc<Self>, p: &Prepared, client: &C) -> PgWireResult<Response>
    where
        C: pgwire::api::ClientInfo,
    {
        let Some(Statement::Copy {
            source,
            options,
            legacy_options,
            ..
        }) = &p.statement
        else {
            return Err(pg_error(errors::FEATURE_NOT_SUPPORTED, "unsupported COPY"));
        };
        let spec = CopySpec::from_options(options, legacy_options)?;
        let sql = match source {
            CopySource::Query(q) => q.to_string(),
            CopySource::Table {
                table_name,
                columns,
            } => {
                let cols = if columns.is_empty() {
                    "*".to_string()
                } else {
                    columns
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!("SELECT {cols} FROM {table_name}")
            }
        };
        let parsed = self.parse(&sql)?;
        let Some(inner) = parsed.into_iter().next() else {
            return Err(pg_error(
                errors::SYNTAX_ERROR,
                "COPY needs a query or a table",
            ));
        };
        let Some(statement) = &inner.statement else {
            return Err(pg_error(
                errors::SYNTAX_ERROR,
                "COPY needs a query or a table",
            ));
        };
        let plan = self.plan(statement, &[]).await?;
        let ctx = self.session().await?;
        let stream = self.execute(&ctx, plan).await?;
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let fields = Arc::new(pg_fields(
            &stream.schema(),
            &Format::UnifiedText,
            Some(options),
            None,
        )?);
        let columns = fields.len();
        let header = spec.header.then(|| {
            let names: Vec<Option<Vec<u8>>> = fields
                .iter()
                .map(|f| Some(f.name().as_bytes().to_vec()))
                .collect();
            spec.line(&names)
        });
        let data = copy_lines(self.rows(stream, fields), spec);
        let head = futures::stream::iter(
            header.map(|h| Ok(pgwire::messages::copy::CopyData::new(h.into()))),
        );
        Ok(Response::CopyOut(CopyResponse::new(
            0,
            columns,
            head.chain(data),
        )))
    }
}

/// The batches a query's task sends, as the stream the encoders read.
fn batches_as_stream(
    schema: SchemaRef,
    batches: tokio::sync::mpsc::Receiver<datafusion::error::Result<RecordBatch>>,
) -> SendableRecordBatchStream {
    let stream = futures::stream::unfold(batches, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, stream))
}

fn error_text(e: &PgWireError) -> String {
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

struct BusyGuard {
    conn: Arc<ConnState>,
    log: Option<(String, Instant)>,
    rows: usize,
    error: Option<String>,
}

impl Drop for BusyGuard {
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

/// `MOVE …` as the `FETCH …` whose rows it counts (the SQL parser knows only FETCH).
fn move_as_fetch(sql: &str) -> Option<String> {
    let trimmed = sql.trim_start();
    let word = trimmed.get(..4)?;
    let after = trimmed[4..].chars().next()?;
    (word.eq_ignore_ascii_case("move") && after.is_whitespace())
        .then(|| format!("FETCH{}", &trimmed[4..]))
}

fn values_is_empty(values: &ParamValues) -> bool {
    match values {
        ParamValues::List(l) => l.is_empty(),
        ParamValues::Map(m) => m.is_empty(),
    }
}

fn first_line(e: &DataFusionError) -> String {
    let s = e.find_root().to_string();
    s.lines().next().unwrap_or_default().to_string()
}

fn value_text(e: &Expr) -> String {
    match e {
        Expr::Value(v) => v.clone().into_string().unwrap_or_else(|| v.to_string()),
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string().trim_matches('\'').to_string(),
    }
}

fn show_column_name(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "time zone" | "timezone" => "TimeZone".into(),
        "datestyle" => "DateStyle".into(),
        "intervalstyle" => "IntervalStyle".into(),
        "transaction isolation level" => "transaction_isolation".into(),
        other => other.to_string(),
    }
}

/// How a statement is handled (see [`Kind`]).
pub fn classify(s: &Statement) -> Kind {
    match s {
        Statement::Set(_) => Kind::Set,
        Statement::Reset(_) => Kind::Reset,
        Statement::Declare { stmts }
            if stmts.len() == 1
                && stmts[0].for_query.is_some()
                && stmts[0].names.len() == 1 =>
        {
            Kind::Declare
        }
        Statement::Fetch { name, into: None, .. } => Kind::Fetch {
            cursor: name.value.clone(),
            moving: false,
        },
        Statement::Close { .. } => Kind::Close,
        Statement::ShowVariable { variable } => {
            let parts: Vec<String> = variable.iter().map(|v| v.value.clone()).collect();
            let dotted = parts.first().is_some_and(|f| {
                f.eq_ignore_ascii_case("rebuy") || f.eq_ignore_ascii_case("datafusion")
            });
            Kind::Show(parts.join(if dotted { "." } else { " " }))
        }
        Statement::StartTransaction { .. } => Kind::Begin,
        Statement::Commit { .. } => Kind::Commit,
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Kind::NoOp("ROLLBACK"),
        Statement::Rollback { .. } => Kind::Rollback,
        Statement::Savepoint { .. } => Kind::NoOp("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => Kind::NoOp("RELEASE"),
        Statement::Discard { .. } => Kind::NoOp("DISCARD ALL"),
        Statement::Deallocate { .. } => Kind::NoOp("DEALLOCATE"),
        Statement::Copy {
            to: true,
            target: CopyTarget::Stdout,
            ..
        } => Kind::CopyOut,
        _ => Kind::Plan,
    }
}

/// The command word PostgreSQL uses in tags and messages ("CREATE TABLE", "INSERT", …).
fn statement_word(s: &Statement) -> String {
    match s {
        Statement::Insert(_) => "INSERT".into(),
        Statement::Update { .. } => "UPDATE".into(),
        Statement::Delete(_) => "DELETE".into(),
        Statement::CreateTable(_) => "CREATE TABLE".into(),
        Statement::CreateView { .. } => "CREATE VIEW".into(),
        Statement::CreateSchema { .. } => "CREATE SCHEMA".into(),
        Statement::Drop { object_type, .. } => format!("DROP {object_type}"),
        Statement::Truncate { .. } => "TRUNCATE TABLE".into(),
        Statement::AlterTable { .. } => "ALTER TABLE".into(),
        other => other
            .to_string()
            .split_whitespace()
            .take(1)
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase(),
    }
}

/// Parameter types of a plan, in `$1, $2, …` order; unknown ones as text.
pub fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<(Option<DataType>, Type)>> {
    let types = plan
        .get_parameter_types()
        .map_err(errors::from_datafusion)?;
    let mut entries: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(k, v)| {
            k.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|n| (n, v))
        })
        .collect();
    entries.sort_by_key(|(n, _)| *n);
    let max = entries.last().map(|(n, _)| *n).unwrap_or(0);
    let mut out = vec![(None, Type::TEXT); max];
    for (n, dt) in entries {
        if n == 0 {
            continue;
        }
        let pg = dt
            .as_ref()
            .and_then(|d| datafusion_postgres::arrow_pg::datatypes::into_pg_type(d).ok())
            .unwrap_or(Type::TEXT);
        out[n - 1] = (dt, pg);
    }
    Ok(out)
}

/// The columns a statement returns (RowDescription for Describe).
pub fn result_fields(
    conn: &ConnState,
    p: &Prepared,
    format: &Format,
) -> PgWireResult<Vec<FieldInfo>> {
    match (&p.kind, &p.plan) {
        (Kind::Fetch { cursor, moving: false }, _) => {
            match conn.cursors.lock().ok().and_then(|c| c.schema(cursor)) {
                Some((schema, binary, declared)) => pg_fields(
                    &schema,
                    if binary { &Format::UnifiedBinary } else { format },
                    None,
                    Some(&declared),
                ),
                None => Ok(vec![]),
            }
        }
        (Kind::Declare, _) => Ok(vec![]),
        (Kind::Plan, Some(plan)) => {
            if matches!(
                plan,
                LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_)
            ) {
                return Ok(vec![]);
            }
            pg_fields(
                &Arc::new(plan.schema().as_arrow().clone()),
                format,
                None,
                Some(&super::encode::declared_columns(plan)),
            )
        }
        (Kind::AsyncpgTypes, _) => Ok(super::asyncpg::fields(format)),
        (Kind::Show(name), _) => {
            let column = if name.eq_ignore_ascii_case("all") {
                vec![
                    Field::new("name", DataType::Utf8, false),
                    Field::new("setting", DataType::Utf8, false),
                ]
            } else {
                vec![Field::new(show_column_name(name), DataType::Utf8, false)]
            };
            datafusion_postgres::arrow_pg::datatypes::arrow_schema_to_pg_fields(
                &Schema::new(column),
                format,
                None,
            )
        }
        _ => Ok(vec![]),
    }
}
