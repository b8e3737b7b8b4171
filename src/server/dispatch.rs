//! The dispatcher: one statement of a connection to the hook that answers it (settings,
//! transactions, cursors, COPY) or to DataFusion. Hooks depend on the connection, never the
//! reverse; this file is the only one that knows them all.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::Statement;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::types::format::FormatOptions;

use super::conn::{ConnState, Session, values_is_empty};
use super::encode::pg_fields;
use super::hooks::{copy, cursor, set, txn};
use super::statement::{Kind, Prepared, check_allowed, is_read, statement_word};
use crate::server::errors::{self, pg_error};

/// Runs one statement and returns the response to send. `plan` is the extended protocol's
/// prepared plan (parameters already bound) and `session` the snapshot it was checked
/// against; the simple protocol plans here, in the current snapshot.
pub async fn run<C>(
    conn: &Arc<ConnState>,
    client: &mut C,
    p: &Prepared,
    session: Option<Session>,
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
    conn.start_statement();
    check_allowed(conn.identity().1, p)?;
    match &p.kind {
        Kind::Set => set::run_set(conn, client, p).await,
        Kind::Reset => set::run_reset(conn, client, p).await,
        Kind::Show(name) => set::run_show(conn, name).await,
        Kind::Begin => {
            txn::begin(conn);
            Ok(Response::TransactionStart(Tag::new("BEGIN")))
        }
        Kind::Commit => {
            txn::end(conn).await;
            Ok(Response::TransactionEnd(Tag::new("COMMIT")))
        }
        Kind::Rollback => {
            txn::end(conn).await;
            Ok(Response::TransactionEnd(Tag::new("ROLLBACK")))
        }
        Kind::Declare => cursor::declare(conn, p, plan, params).await,
        Kind::Fetch { cursor, moving } => {
            cursor::fetch(conn, client, p, cursor, *moving, format).await
        }
        Kind::Close => cursor::close(conn, p),
        Kind::NoOp(tag) => Ok(Response::Execution(Tag::new(tag))),
        Kind::CopyOut => copy::run_copy_out(conn, p, client).await,
        Kind::AsyncpgTypes => Err(pg_error(
            errors::FEATURE_NOT_SUPPORTED,
            "asyncpg's type introspection runs over the extended protocol only",
        )),
        Kind::DataFusionText => {
            let Some(statement) = &p.df else {
                return Ok(Response::EmptyQuery);
            };
            let session = conn.current().await?;
            let plan = conn
                .guarded(async {
                    session
                        .state
                        .statement_to_plan(statement.as_ref().clone())
                        .await
                        .map_err(errors::from_datafusion)
                })
                .await?;
            conn.check_plan(&plan)?;
            let stream = conn.execute(&session, plan, true).await?;
            conn.drain(stream).await?;
            Ok(Response::Execution(Tag::new("OK")))
        }
        Kind::Plan => {
            let Some(statement) = &p.statement else {
                return Ok(Response::EmptyQuery);
            };
            // One snapshot for planning and running.
            let session = match session {
                Some(s) => s,
                None => conn.current().await?,
            };
            let plan = match plan {
                Some(plan) => {
                    conn.check_plan(&plan)?;
                    plan
                }
                None => conn.plan_in(&session, statement, &[]).await?,
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
            ) && is_read(statement);
            let declared = crate::server::encode::declared_columns(&plan);
            let stream = conn.execute(&session, plan, true).await?;
            if !is_query {
                let rows = conn.drain(stream).await?;
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
            let format_options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
            Ok(Response::Query(super::respond::encode(
                conn,
                stream,
                format,
                format_options,
                Some(&declared),
            )?))
        }
    }
}

/// The columns a statement returns (RowDescription for Describe).
pub fn result_fields(
    conn: &ConnState,
    p: &Prepared,
    format: &Format,
) -> PgWireResult<Vec<FieldInfo>> {
    match (&p.kind, &p.plan) {
        (
            Kind::Fetch {
                cursor,
                moving: false,
            },
            _,
        ) => match conn.cursors.lock().ok().and_then(|c| c.schema(cursor)) {
            Some((schema, binary, declared)) => pg_fields(
                &schema,
                if binary {
                    &Format::UnifiedBinary
                } else {
                    format
                },
                None,
                Some(&declared),
            ),
            None => Ok(vec![]),
        },
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
                vec![Field::new(
                    set::show_column_name(name),
                    DataType::Utf8,
                    false,
                )]
            };
            arrow_pg::datatypes::arrow_schema_to_pg_fields(&Schema::new(column), format, None)
        }
        _ => Ok(vec![]),
    }
}
