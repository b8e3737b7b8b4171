//! The pgwire side: one [`Handlers`] per connection, wiring startup ([`super::startup`]), the
//! simple and extended query protocols, cancel requests and error classification to the
//! connection's [`ConnState`].

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, Response,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ErrorHandler, PgWireConnectionState, PgWireServerHandlers, Type,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::extendedquery::{Bind, Close, Execute, Parse};

use super::conn::{ConnState, Session};
use super::errors;
use super::held;
use super::shared::Shared;
use super::startup::{KeyGenerator, LoginPolicy, Sasl, Startup, parameters};
use super::statement::{self, Kind, Prepared};

pub struct Handlers {
    conn: Arc<ConnState>,
    query: Arc<QueryHandler>,
    startup: Arc<Startup>,
}

impl Handlers {
    pub fn new(conn: Arc<ConnState>, policy: &LoginPolicy) -> Self {
        let params = Arc::new(parameters());
        let keys = Arc::new(KeyGenerator { conn: conn.clone() });
        let startup = Startup {
            conn: conn.clone(),
            params,
            keys,
            policy: policy.clone(),
            state: tokio::sync::Mutex::new(Sasl::Initial),
        };
        Handlers {
            query: Arc::new(QueryHandler {
                conn: conn.clone(),
                parser: Arc::new(Parser { conn: conn.clone() }),
            }),
            startup: Arc::new(startup),
            conn,
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.query.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.query.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(Errors {
            conn: self.conn.clone(),
        })
    }
    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::new(Cancel {
            shared: self.conn.shared.clone(),
        })
    }
}

struct Cancel {
    shared: Arc<Shared>,
}

#[async_trait]
impl CancelHandler for Cancel {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.shared
            .cancel(request.pid, &request.secret_key.to_bytes());
    }
}

struct Errors {
    conn: Arc<ConnState>,
}

impl ErrorHandler for Errors {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        errors::classify(error);
        let (user, _) = self.conn.identity();
        tracing::debug!(conn = self.conn.id, user, "error sent: {error}");
    }
}

pub struct QueryHandler {
    conn: Arc<ConnState>,
    parser: Arc<Parser>,
}

pub struct Parser {
    conn: Arc<ConnState>,
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.conn.touch();
        let statements = statement::parse(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for p in &statements {
            self.conn.begin_log(&p.sql);
            let result = super::dispatch::run(
                &self.conn,
                client,
                p,
                None,
                None,
                None,
                &Format::UnifiedText,
            )
            .await;
            self.conn.end_log(result.as_ref().err());
            match result {
                Ok(r) => responses.push(r),
                Err(mut e) => {
                    errors::classify(&mut e);
                    // Earlier statements' results are sent, then the error ends the batch.
                    if responses.is_empty() {
                        return Err(e);
                    }
                    responses.push(Response::Error(Box::new(error_info(e))));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

fn error_info(e: PgWireError) -> pgwire::error::ErrorInfo {
    match e {
        PgWireError::UserError(info) => *info,
        other => pgwire::error::ErrorInfo::new(
            "ERROR".into(),
            errors::INTERNAL_ERROR.into(),
            other.to_string(),
        ),
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = statement::parse(sql)?;
        if statements.is_empty() {
            return Ok(None);
        }
        if statements.len() > 1 {
            return Err(errors::pg_error(
                errors::SYNTAX_ERROR,
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let mut p = statements.remove(0);
        statement::check_allowed(self.conn.identity().1, &p)?;
        if let Some(statement) = p.query_to_plan() {
            let session = self.conn.current().await?;
            p.planned_at = session.generation;
            p.plan = Some(self.conn.plan_in(&session, &statement, types).await?);
        }
        Ok(Some(p))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        if matches!(stmt.kind, Kind::AsyncpgTypes) {
            return Ok(super::asyncpg::parameter_types());
        }
        match &stmt.plan {
            Some(plan) => Ok(super::params::parameter_types(plan)?
                .into_iter()
                .map(|(_, t)| t)
                .collect()),
            None => Ok(vec![]),
        }
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        super::dispatch::result_fields(
            &self.conn,
            stmt,
            column_format.unwrap_or(&Format::UnifiedText),
        )
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.conn.touch();
        let p = &portal.statement.statement;
        if matches!(p.kind, Kind::AsyncpgTypes) {
            let binary = matches!(
                portal.parameter_format.format_for(0),
                pgwire::api::results::FieldFormat::Binary
            );
            let value = portal.parameters.first().cloned().flatten();
            let oids = super::asyncpg::decode_oids(value.as_deref(), binary)?;
            return super::asyncpg::response(&oids, &portal.result_column_format)
                .map(Response::Query);
        }
        self.conn.begin_log(&p.sql);
        let result = async {
            let (plan, session) = self.current_plan(portal).await?;
            let params = match &plan {
                Some(plan) => {
                    let types = super::params::parameter_types(plan)?;
                    let inferred: Vec<Option<&datafusion::arrow::datatypes::DataType>> =
                        types.iter().map(|(d, _)| d.as_ref()).collect();
                    let wire: Vec<Option<&Type>> = types.iter().map(|(_, t)| Some(t)).collect();
                    Some(
                        arrow_pg::datatypes::df::deserialize_parameters_with_server_types(
                            portal, &inferred, &wire,
                        )?,
                    )
                }
                None => None,
            };
            super::dispatch::run(
                &self.conn,
                client,
                p,
                Some(session),
                plan,
                params.as_ref(),
                &portal.result_column_format,
            )
            .await
        }
        .await;
        self.conn.end_log(result.as_ref().err());
        result
    }

    /// As pgwire's, with a bound on the named statements a connection keeps.
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        let name = message
            .name
            .clone()
            .unwrap_or_else(|| pgwire::api::DEFAULT_NAME.to_owned());
        if name != pgwire::api::DEFAULT_NAME
            && !self
                .conn
                .hold(held::HeldKind::Statement, &name, message.query.len())
        {
            return Err(too_much_held("prepared statements"));
        }
        let parser = self.query_parser();
        match StoredStatement::parse(client, &message, parser).await? {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client
            .send(PgWireBackendMessage::ParseComplete(
                pgwire::messages::extendedquery::ParseComplete::new(),
            ))
            .await?;
        Ok(())
    }

    /// As pgwire's, with named portals counted like named statements.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        use pgwire::api::store::Entry;
        let statement_name = message
            .statement_name
            .as_deref()
            .unwrap_or(pgwire::api::DEFAULT_NAME);
        let portal_name = message
            .portal_name
            .as_deref()
            .unwrap_or(pgwire::api::DEFAULT_NAME);
        let bytes: usize = message
            .parameters
            .iter()
            .map(|p| p.as_ref().map_or(0, |b| b.len()))
            .sum();
        if portal_name != pgwire::api::DEFAULT_NAME
            && !self.conn.hold(held::HeldKind::Portal, portal_name, bytes)
        {
            return Err(too_much_held("portals"));
        }
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(errors::pg_error(
                        "08P01",
                        format!(
                            "bind message supplies {} parameters, but prepared statement \
                             {statement_name:?} requires 0",
                            message.parameters.len()
                        ),
                    ));
                }
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .send(PgWireBackendMessage::BindComplete(
                pgwire::messages::extendedquery::BindComplete::new(),
            ))
            .await?;
        Ok(())
    }

    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        use pgwire::messages::extendedquery::{
            CloseComplete, TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
        };
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                self.conn.release(held::HeldKind::Statement, name);
                client.portal_store().rm_statement(name);
            }
            TARGET_TYPE_BYTE_PORTAL => {
                self.conn.release(held::HeldKind::Portal, name);
                client.portal_store().rm_portal(name);
            }
            _ => {}
        }
        client
            .send(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    /// pgwire collects a portal's rows before sending them when the client sets no row limit;
    /// here such a portal streams straight to the socket (bounded memory for any result size).
    /// Executes with a row limit, or of a portal already started, take pgwire's path.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        use pgwire::api::portal::PortalExecutionState;
        use pgwire::api::store::Entry;
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(p)) => p,
            _ => return self._on_execute(client, message).await,
        };
        let fresh = matches!(*portal.state().lock().await, PortalExecutionState::Initial);
        if message.max_rows != 0 || !fresh {
            return self._on_execute(client, message).await;
        }
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let mut status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        let response =
            <Self as ExtendedQueryHandler>::do_query(self, client, portal.as_ref(), 0).await;
        *portal.state().lock().await = PortalExecutionState::Finished;
        let outcome = match response {
            Ok(Response::Query(results)) => {
                pgwire::api::query::send_query_response(client, results, false).await
            }
            Ok(Response::EmptyQuery) => client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    pgwire::messages::response::EmptyQueryResponse::new(),
                ))
                .await
                .map_err(PgWireError::from),
            Ok(Response::Execution(tag)) => {
                pgwire::api::query::send_execution_response(client, tag).await
            }
            Ok(Response::TransactionStart(tag)) => {
                status = status.to_in_transaction_state();
                pgwire::api::query::send_execution_response(client, tag).await
            }
            Ok(Response::TransactionEnd(tag)) => {
                status = status.to_idle_state();
                pgwire::api::query::send_execution_response(client, tag).await
            }
            Ok(Response::Error(e)) => {
                status = status.to_error_state();
                client
                    .send(PgWireBackendMessage::ErrorResponse((*e).into()))
                    .await
                    .map_err(PgWireError::from)
            }
            Ok(Response::CopyOut(copy)) => {
                pgwire::api::copy::send_copy_out_response(client, copy).await
            }
            Ok(_) => Err(errors::pg_error(
                errors::FEATURE_NOT_SUPPORTED,
                "COPY FROM is not supported",
            )),
            Err(e) => Err(e),
        };
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        outcome
    }

    /// As pgwire's, and a portal named after an open cursor is that cursor (psycopg 3 asks
    /// for a named cursor's columns with Describe Portal).
    async fn on_describe<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Describe,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == pgwire::messages::extendedquery::TARGET_TYPE_BYTE_PORTAL
            && let Some(name) = message.name.as_deref()
            && client.portal_store().get_portal(name).is_none()
            && let Some((schema, binary, declared)) =
                self.conn.cursors.lock().ok().and_then(|c| c.schema(name))
        {
            let format = if binary {
                Format::UnifiedBinary
            } else {
                Format::UnifiedText
            };
            let fields = super::encode::pg_fields(&schema, &format, None, Some(&declared))?;
            pgwire::api::query::send_describe_response(
                client,
                &DescribePortalResponse::new(fields),
            )
            .await?;
            return Ok(());
        }
        self._on_describe(client, message).await
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let p = &target.statement;
        let params = match &p.plan {
            None if matches!(p.kind, Kind::AsyncpgTypes) => super::asyncpg::parameter_types(),
            Some(plan) => super::params::parameter_types(plan)?
                .into_iter()
                .enumerate()
                .map(|(i, (_, t))| {
                    target
                        .parameter_types
                        .get(i)
                        .cloned()
                        .flatten()
                        .unwrap_or(t)
                })
                .collect(),
            None => vec![],
        };
        let fields = super::dispatch::result_fields(&self.conn, p, &Format::UnifiedText)?;
        Ok(DescribeStatementResponse::new(params, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = super::dispatch::result_fields(
            &self.conn,
            &portal.statement.statement,
            &portal.result_column_format,
        )?;
        Ok(DescribePortalResponse::new(fields))
    }
}

impl QueryHandler {
    /// The portal's plan, made again if data was committed since its statement was prepared.
    async fn current_plan(
        &self,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<(Option<datafusion::logical_expr::LogicalPlan>, Session)> {
        let p = &portal.statement.statement;
        // The snapshot the plan is checked against is the one it runs in: a refresh between
        // the two would run a plan of the old tables over the new ones.
        let session = self.conn.current().await?;
        let Some(plan) = &p.plan else {
            return Ok((None, session));
        };
        let generation = session.generation;
        if generation == p.planned_at {
            return Ok((Some(plan.clone()), session));
        }
        let kept = p.replanned.lock().ok().and_then(|r| r.clone());
        if let Some((_, kept)) = kept.filter(|(at, _)| *at == generation) {
            return Ok((Some(kept), session));
        }
        let Some(statement) = p.query_to_plan() else {
            return Ok((Some(plan.clone()), session));
        };
        let fresh = self
            .conn
            .plan_in(&session, &statement, &portal.statement.parameter_types)
            .await?;
        // The client holds the row and parameter descriptions of the first plan; PostgreSQL
        // refuses a re-plan that changes them rather than send rows that do not match.
        if !same_shape(plan, &fresh)? {
            return Err(errors::pg_error(
                errors::FEATURE_NOT_SUPPORTED,
                "cached plan must not change result type",
            ));
        }
        if let Ok(mut r) = p.replanned.lock() {
            *r = Some((generation, fresh.clone()));
        }
        Ok((Some(fresh), session))
    }
}

/// Whether two plans of one statement give the client the same columns and parameters.
fn same_shape(
    a: &datafusion::logical_expr::LogicalPlan,
    b: &datafusion::logical_expr::LogicalPlan,
) -> PgWireResult<bool> {
    let types = |p| -> PgWireResult<Vec<pgwire::api::Type>> {
        Ok(super::params::parameter_types(p)?
            .into_iter()
            .map(|(_, t)| t)
            .collect())
    };
    let columns = |p: &datafusion::logical_expr::LogicalPlan| {
        p.schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect::<Vec<_>>()
    };
    Ok(columns(a) == columns(b) && types(a)? == types(b)?)
}

fn too_much_held(what: &str) -> PgWireError {
    errors::pg_error(
        "53400",
        format!(
            "too many {what} kept on this connection (at most {} of each, {} MiB in all): \
             close some",
            held::MAX_HELD_OBJECTS,
            held::MAX_HELD_BYTES >> 20
        ),
    )
}
