//! Cursors: `DECLARE c [BINARY] [NO SCROLL] CURSOR [WITH | WITHOUT HOLD] FOR query`, then
//! `FETCH [n | ALL | NEXT | FORWARD n] FROM c`, `MOVE …` and `CLOSE c | ALL`. psycopg's and
//! psycopg2's named cursors (Superset, pandas `chunksize`) read large results this way.
//!
//! A cursor (kept in `super::super::held`) holds the query's running stream and at most the
//! rest of one batch, so reading a large result in steps holds one batch's memory, not the
//! result's. Cursors only scan forward (a `NO SCROLL` cursor in PostgreSQL's terms): going
//! back would mean keeping every row.

use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::sqlparser::ast::{FetchDirection, Value};
use pgwire::error::{PgWireError, PgWireResult};

use crate::server::held::Cursor;

use crate::server::errors::{self, pg_error};

/// How many rows a FETCH or MOVE direction asks for (None: all), or the error for a direction
/// a forward-only cursor cannot go.
pub fn rows_wanted(direction: &FetchDirection) -> PgWireResult<Option<usize>> {
    let count = |v: &Value| -> PgWireResult<Option<usize>> {
        match v {
            Value::Number(n, _) => match n.parse::<i64>() {
                Ok(k) if k >= 0 => Ok(Some(k as usize)),
                Ok(_) => Err(backwards()),
                Err(_) => Err(pg_error(
                    errors::SYNTAX_ERROR,
                    format!("FETCH count must be an integer, not {n}"),
                )),
            },
            other => Err(pg_error(
                errors::SYNTAX_ERROR,
                format!("FETCH count must be an integer, not {other}"),
            )),
        }
    };
    match direction {
        FetchDirection::Next => Ok(Some(1)),
        FetchDirection::Count { limit } => count(&limit.value),
        FetchDirection::Forward { limit: Some(limit) } => count(&limit.value),
        FetchDirection::Forward { limit: None } => Ok(Some(1)),
        FetchDirection::All | FetchDirection::ForwardAll => Ok(None),
        _ => Err(backwards()),
    }
}

fn backwards() -> PgWireError {
    pg_error(
        "55000",
        "cursor can only scan forward (rebuy's cursors are NO SCROLL): declare it again to read from the start",
    )
}

use std::sync::Arc;

use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{CloseCursor, Statement};
use pgwire::api::portal::Format;
use pgwire::api::results::{Response, Tag};

use crate::server::conn::ConnState;
use crate::server::statement::Prepared;

/// `DECLARE name … CURSOR FOR query`: starts the query and keeps its stream.
pub async fn declare(
    conn: &Arc<ConnState>,
    p: &Prepared,
    plan: Option<LogicalPlan>,
    params: Option<&ParamValues>,
) -> PgWireResult<Response> {
    let Some(Statement::Declare { stmts }) = &p.statement else {
        return Err(pg_error(
            errors::SYNTAX_ERROR,
            "DECLARE needs a cursor and a query",
        ));
    };
    let (Some(d), Some(query)) = (stmts.first(), p.query_to_plan()) else {
        return Err(pg_error(
            errors::SYNTAX_ERROR,
            "DECLARE needs a cursor and a query",
        ));
    };
    let name = d.names.first().map(|n| n.value.clone()).unwrap_or_default();
    if d.scroll == Some(true) {
        return Err(pg_error(
            errors::FEATURE_NOT_SUPPORTED,
            "SCROLL cursors are not supported: rebuy's cursors read forward only (NO SCROLL)",
        ));
    }
    let in_block = super::txn::in_transaction(conn);
    if d.hold != Some(true) && !in_block {
        return Err(pg_error(
            "25P01",
            "DECLARE CURSOR can only be used in transaction blocks",
        ));
    }
    if conn
        .cursors
        .lock()
        .map(|c| c.schema(&name).is_some())
        .unwrap_or(false)
    {
        return Err(pg_error(
            "42P03",
            format!("cursor \"{name}\" already exists"),
        ));
    }
    let plan = match plan {
        Some(plan) => plan,
        None => conn.plan(&query, &[]).await?,
    };
    let plan = match params {
        Some(values) if !matches!(values, ParamValues::List(l) if l.is_empty()) => plan
            .replace_params_with_values(values)
            .map_err(errors::from_datafusion)?,
        _ => plan,
    };
    let declared = crate::server::encode::declared_columns(&plan);
    let session = conn.current().await?;
    let stream = conn.execute(&session, plan, false).await?;
    let schema = stream.schema();
    let hold = d.hold == Some(true) || !in_block;
    let cursor = Cursor::new(schema, stream, d.binary == Some(true), hold, declared);
    conn.cursors
        .lock()
        .map_err(|_| pg_error(errors::INTERNAL_ERROR, "cursor lock poisoned"))?
        .declare(&name, cursor)?;
    Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
}

/// `FETCH n FROM name` (rows sent, tag `FETCH n`) or `MOVE n FROM name` (tag `MOVE n`).
pub async fn fetch<C>(
    conn: &Arc<ConnState>,
    client: &C,
    p: &Prepared,
    name: &str,
    moving: bool,
    format: &Format,
) -> PgWireResult<Response>
where
    C: pgwire::api::ClientInfo,
{
    let Some(Statement::Fetch { direction, .. }) = &p.statement else {
        return Err(pg_error(errors::SYNTAX_ERROR, "FETCH needs a cursor"));
    };
    let wanted = rows_wanted(direction)?;
    let mut cursor = conn
        .cursors
        .lock()
        .map_err(|_| pg_error(errors::INTERNAL_ERROR, "cursor lock poisoned"))?
        .check_out(name)?;
    let taken = conn.guarded(cursor.take(wanted)).await;
    let (schema, binary, declared) = (
        cursor.schema.clone(),
        cursor.binary,
        cursor.declared.clone(),
    );
    if let Ok(mut c) = conn.cursors.lock() {
        c.check_in(name, cursor);
    }
    let batches = taken?;
    if moving {
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        return Ok(Response::Execution(Tag::new("MOVE").with_rows(rows)));
    }
    let format = if binary {
        &Format::UnifiedBinary
    } else {
        format
    };
    let stream: SendableRecordBatchStream = Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
        ),
    );
    let options = Arc::new(pgwire::types::format::FormatOptions::from_client_metadata(
        client.metadata(),
    ));
    let mut response =
        super::super::respond::encode(conn, stream, format, options, Some(&declared))?;
    response.set_command_tag("FETCH");
    Ok(Response::Query(response))
}

/// `CLOSE name` / `CLOSE ALL`.
pub fn close(conn: &ConnState, p: &Prepared) -> PgWireResult<Response> {
    let mut cursors = conn
        .cursors
        .lock()
        .map_err(|_| pg_error(errors::INTERNAL_ERROR, "cursor lock poisoned"))?;
    match &p.statement {
        Some(Statement::Close {
            cursor: CloseCursor::Specific { name },
        }) => cursors.close(&name.value)?,
        _ => cursors.close_all(),
    }
    Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
}
