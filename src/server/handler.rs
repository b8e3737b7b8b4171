//! The pgwire side: one [`Handlers`] per connection, wiring startup (SCRAM or loopback trust),
//! the simple and extended query protocols, cancel requests and error classification to the
//! connection's [`ConnState`].

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, Response,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ErrorHandler, PgWireConnectionState, PgWireServerHandlers,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::extendedquery::{Bind, Close, Execute, Parse};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::conn::{self, ConnState, Kind, Prepared};
use super::errors;
use super::scram;
use super::settings::PG_VERSION;
use super::shared::Shared;

pub struct Handlers {
    conn: Arc<ConnState>,
    query: Arc<QueryHandler>,
    startup: Arc<Startup>,
}

/// How logins are checked, shared by all connections.
#[derive(Clone)]
pub struct LoginPolicy {
    pub trust: bool,
    pub require_tls: bool,
    /// tls-server-end-point data of the server certificate, when TLS is configured.
    pub certificate_binding: Option<Arc<Vec<u8>>>,
    /// Key of the mock verifiers unknown users meet.
    pub mock_secret: Arc<Vec<u8>>,
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

fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = PG_VERSION.to_string();
    p.is_superuser = false;
    p.search_path = "\"$user\", public".to_string();
    p.time_zone = "UTC".to_string();
    p.date_style = "ISO, MDY".to_string();
    p
}

/// Gives each connection a backend key and remembers it for cancel requests.
struct KeyGenerator {
    conn: Arc<ConnState>,
}

impl PidSecretKeyGenerator for KeyGenerator {
    fn generate(&self, client: &dyn ClientInfo) -> (i32, pgwire::messages::startup::SecretKey) {
        let (pid, key) = RandomPidSecretKeyGenerator::default().generate(client);
        self.conn
            .shared
            .register_cancel_key(pid, key.to_bytes().to_vec(), &self.conn);
        (pid, key)
    }
}

/// Where a login stands.
enum Sasl {
    Initial,
    /// AuthenticationSASL sent, waiting for the client-first message.
    Offered {
        plus: bool,
    },
    /// Server-first sent, waiting for the client-final message.
    Challenged {
        user: String,
        exchange: Box<scram::Exchange>,
    },
}

/// Logins: TLS required or not, then trust (loopback) or SCRAM against stored verifiers.
/// A login is admitted only into a free session slot (`max_connections`).
struct Startup {
    conn: Arc<ConnState>,
    params: Arc<DefaultServerParameterProvider>,
    keys: Arc<KeyGenerator>,
    policy: LoginPolicy,
    state: tokio::sync::Mutex<Sasl>,
}

fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(pgwire::error::ErrorInfo::new(
        "FATAL".to_string(),
        code.to_string(),
        message.into(),
    )))
}

impl Startup {
    fn refuse_login(&self, user: &str, why: &str) -> PgWireError {
        tracing::warn!(conn = self.conn.id, user, "login refused: {why}");
        fatal(
            errors::INVALID_PASSWORD,
            format!("password authentication failed for user \"{user}\""),
        )
    }

    async fn admit<C>(&self, client: &mut C, user: &str, auth: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !self.conn.take_session_slot() {
            tracing::warn!(
                conn = self.conn.id,
                user,
                "login refused: too many connections"
            );
            return Err(fatal(
                errors::TOO_MANY_CONNECTIONS,
                "sorry, too many clients already",
            ));
        }
        self.conn.set_identity(user);
        let (pid, key) = self.keys.generate(client);
        client.set_pid_and_secret_key(pid, key);
        pgwire::api::auth::finish_authentication(client, self.params.as_ref()).await?;
        tracing::info!(
            conn = self.conn.id,
            user,
            auth,
            tls = client.is_secure(),
            "connected"
        );
        Ok(())
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        use pgwire::messages::startup::Authentication;
        let mut state = self.state.lock().await;
        let current = std::mem::replace(&mut *state, Sasl::Initial);
        match (message, current) {
            (PgWireFrontendMessage::Startup(ref startup), Sasl::Initial) => {
                pgwire::api::auth::protocol_negotiation(client, startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                let user = client
                    .metadata()
                    .get("user")
                    .cloned()
                    .ok_or(PgWireError::UserNameRequired)?;
                if self.policy.require_tls && !client.is_secure() {
                    tracing::warn!(conn = self.conn.id, user, "login refused: no TLS");
                    return Err(fatal(
                        errors::INVALID_AUTHORIZATION,
                        "this server requires TLS: connect with sslmode=require",
                    ));
                }
                if self.policy.trust {
                    return self.admit(client, &user, "trust").await;
                }
                let plus = client.is_secure() && self.policy.certificate_binding.is_some();
                let mut mechanisms = Vec::new();
                if plus {
                    mechanisms.push(scram::SCRAM_SHA_256_PLUS.to_string());
                }
                mechanisms.push(scram::SCRAM_SHA_256.to_string());
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        mechanisms,
                    )))
                    .await?;
                *state = Sasl::Offered { plus };
                Ok(())
            }
            (PgWireFrontendMessage::PasswordMessageFamily(msg), Sasl::Offered { plus }) => {
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let initial = msg.into_sasl_initial_response()?;
                let data = initial.data.as_deref().unwrap_or_default();
                let first = scram::parse_client_first(data)
                    .map_err(|e| self.refuse_login(&user, &e.to_string()))?;
                let binding: &[u8] = match (initial.auth_method.as_str(), &first.binding) {
                    (scram::SCRAM_SHA_256_PLUS, scram::Binding::Bound(kind))
                        if plus && kind == scram::TLS_SERVER_END_POINT =>
                    {
                        self.policy
                            .certificate_binding
                            .as_deref()
                            .map(Vec::as_slice)
                            .unwrap_or_default()
                    }
                    (scram::SCRAM_SHA_256, scram::Binding::None) => &[],
                    (scram::SCRAM_SHA_256, scram::Binding::ClientCould) if !plus => &[],
                    (method, b) => {
                        return Err(self.refuse_login(
                            &user,
                            &format!("mechanism {method} with channel binding {b:?} not allowed"),
                        ));
                    }
                };
                let known = self
                    .conn
                    .shared
                    .config
                    .user(&user)
                    .and_then(|u| u.password.as_deref())
                    .and_then(|p| super::config::StoredPassword::parse(p).ok())
                    .map(|p| p.verifier().clone());
                let (verifier, is_known) = match known {
                    Some(v) => (v, true),
                    None => (scram::mock_verifier(&self.policy.mock_secret, &user), false),
                };
                let (exchange, server_first) = scram::Exchange::start(
                    &first,
                    verifier,
                    is_known,
                    &scram::random_nonce(),
                    binding,
                );
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLContinue(server_first.into_bytes().into()),
                    ))
                    .await?;
                *state = Sasl::Challenged {
                    user,
                    exchange: Box::new(exchange),
                };
                Ok(())
            }
            (
                PgWireFrontendMessage::PasswordMessageFamily(msg),
                Sasl::Challenged { user, exchange },
            ) => {
                let response = msg.into_sasl_response()?;
                let server_final = exchange
                    .finish(&response.data)
                    .map_err(|e| self.refuse_login(&user, &e.to_string()))?;
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLFinal(server_final.into_bytes().into()),
                    ))
                    .await?;
                self.admit(client, &user, "scram").await
            }
            _ => Err(fatal("08P01", "unexpected message during authentication")),
        }
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
        let statements = self.conn.parse(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for p in &statements {
            self.conn.begin_log(&p.sql);
            let result = self
                .conn
                .run(client, p, None, None, &Format::UnifiedText)
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
        let mut statements = self.conn.parse(sql)?;
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
        self.conn.check_allowed(&p)?;
        if let (Kind::Plan, Some(statement)) = (&p.kind, &p.statement) {
            p.plan = Some(self.conn.plan(statement, types).await?);
        }
        Ok(Some(p))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        if matches!(stmt.kind, Kind::AsyncpgTypes) {
            return Ok(super::asyncpg::parameter_types());
        }
        match &stmt.plan {
            Some(plan) => Ok(conn::parameter_types(plan)?
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
        conn::result_fields(stmt, column_format.unwrap_or(&Format::UnifiedText))
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
            let params = match &p.plan {
                Some(plan) => {
                    let types = conn::parameter_types(plan)?;
                    let inferred: Vec<Option<&datafusion::arrow::datatypes::DataType>> =
                        types.iter().map(|(d, _)| d.as_ref()).collect();
                    let wire: Vec<Option<&Type>> = types.iter().map(|(_, t)| Some(t)).collect();
                    Some(
                        datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters_with_server_types(
                            portal, &inferred, &wire,
                        )?,
                    )
                }
                None => None,
            };
            self.conn
                .run(
                    client,
                    p,
                    p.plan.clone(),
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
                .hold(conn::HeldKind::Statement, &name, message.query.len())
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
            && !self.conn.hold(conn::HeldKind::Portal, portal_name, bytes)
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
                self.conn.release(conn::HeldKind::Statement, name);
                client.portal_store().rm_statement(name);
            }
            TARGET_TYPE_BYTE_PORTAL => {
                self.conn.release(conn::HeldKind::Portal, name);
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
            Some(plan) => conn::parameter_types(plan)?
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
        let fields = conn::result_fields(p, &Format::UnifiedText)?;
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
        let fields =
            conn::result_fields(&portal.statement.statement, &portal.result_column_format)?;
        Ok(DescribePortalResponse::new(fields))
    }
}

fn too_much_held(what: &str) -> PgWireError {
    errors::pg_error(
        "53400",
        format!(
            "too many {what} kept on this connection (at most {} of each, {} MiB in all): \
             close some",
            conn::MAX_HELD_OBJECTS,
            conn::MAX_HELD_BYTES >> 20
        ),
    )
}

/// Sends a FATAL error to a client that is refused before startup finishes, then closes.
pub async fn refuse_connection(mut socket: tokio::net::TcpStream, code: &str, message: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let read_packet = async |socket: &mut tokio::net::TcpStream| -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        socket.read_exact(&mut len).await.ok()?;
        let n = u32::from_be_bytes(len) as usize;
        if !(8..=10_000).contains(&n) {
            return None;
        }
        let mut body = vec![0u8; n - 4];
        socket.read_exact(&mut body).await.ok()?;
        Some(body)
    };
    let work = async {
        let mut first = read_packet(&mut socket).await?;
        // SSLRequest / GSSENCRequest: answer "no", then read the real startup packet.
        while first.len() == 4
            && matches!(
                u32::from_be_bytes([first[0], first[1], first[2], first[3]]),
                80877103 | 80877104
            )
        {
            socket.write_all(b"N").await.ok()?;
            first = read_packet(&mut socket).await?;
        }
        let mut body = Vec::new();
        for (tag, value) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', code),
            (b'M', message),
        ] {
            body.push(tag);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = vec![b'E'];
        msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        msg.extend_from_slice(&body);
        socket.write_all(&msg).await.ok()?;
        socket.flush().await.ok()
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), work).await;
}
