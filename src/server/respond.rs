//! A result on its way to the client: RowDescription from the plan's schema, then rows
//! encoded batch by batch as the query produces them, each batch awaited under the
//! connection's cancel and timeout, in the forms PostgreSQL prints (timestamps with time zone
//! in the session's zone, no trailing zeros in seconds, exact binary numerics).

use std::sync::Arc;

use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, QueryResponse};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;

use super::conn::{ConnState, error_text};
use super::encode::{canonical_time_zone, pg_fields, to_wire_batch, trim_fractions};
use super::errors;
use super::time_text::timestamps_as_text;

/// Streams `stream` to the client: the first batch is computed under the cancel/timeout
/// guard (that is where aggregations do their work); later batches check both as they go.
pub(super) fn encode(
    conn: &Arc<ConnState>,
    stream: SendableRecordBatchStream,
    format: &Format,
    options: Arc<FormatOptions>,
    declared: Option<&[bool]>,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(pg_fields(
        &stream.schema(),
        format,
        Some(options),
        declared,
    )?);
    Ok(QueryResponse::new(
        fields.clone(),
        rows(conn, stream, fields),
    ))
}

/// Encoded rows of `stream`; the connection counts as busy until the stream is dropped.
pub(super) fn rows(
    conn: &Arc<ConnState>,
    stream: SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
) -> futures::stream::BoxStream<'static, PgWireResult<DataRow>> {
    let settings = conn.settings();
    let deadline = conn
        .statement_timeout()
        .map(|t| tokio::time::Instant::now() + t);
    // timestamptz values are shown in the session's TimeZone, as PostgreSQL does.
    let time_zone: Option<Arc<str>> = settings
        .get("TimeZone")
        .and_then(canonical_time_zone)
        .map(Arc::from);
    let guard = conn.begin_response();
    let conn = conn.clone();
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
    use pgwire::api::results::FieldFormat::{Binary, Text};
    let numeric_binary_columns =
        columns_where(&fields, |format, t| format == Binary && *t == Type::NUMERIC);
    // PostgreSQL prints `12:34:56` and `12:34:56.5`, not `12:34:56.000000`. Timestamps are
    // written that way by timestamps_as_text; times are trimmed after encoding.
    let time_columns = columns_where(&fields, |format, t| {
        format == Text && matches!(*t, Type::TIME | Type::TIMETZ)
    });
    let timestamp_text_columns = columns_where(&fields, |format, t| {
        format == Text && matches!(*t, Type::TIMESTAMP | Type::TIMESTAMPTZ)
    });
    let all_text = fields.iter().all(|f| f.format() == Text);
    batches
        .flat_map(move |batch| {
            let items: Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> = match batch
                .and_then(|b| timestamps_as_text(b, &timestamp_text_columns, time_zone.as_deref()))
            {
                Ok(b) => match all_text.then(|| super::text_rows::text_rows(&b)).flatten() {
                    Some(rows) => Box::new(rows.into_iter().map(Ok)),
                    None => arrow_pg::datatypes::encode_recordbatch(fields.clone(), b),
                },
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

/// The positions of the result columns whose format and type satisfy `wanted`.
fn columns_where(
    fields: &[FieldInfo],
    wanted: impl Fn(pgwire::api::results::FieldFormat, &Type) -> bool,
) -> Vec<usize> {
    fields
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted(f.format(), f.datatype()))
        .map(|(i, _)| i)
        .collect()
}
