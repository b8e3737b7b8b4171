//! The one way SQL text becomes statements, for `rebuy query` and `rebuy serve` alike, so that
//! the same SQL gives the same answer over both.
//!
//! Text is bounded ([`crate::limits`]), parsed with the PostgreSQL dialect (with PostgreSQL's
//! grouping of `IS DISTINCT FROM`, [`dialect`]), and each statement
//! is given PostgreSQL's result shape: column names as PostgreSQL figures them
//! ([`names`]), integer literals typed `int4` ([`literals`]), and scalar subqueries that may be
//! NULL ([`subqueries`]). None changes a value: they change what a column is called, how wide
//! its integers are on the wire, and that an empty subquery is NULL rather than an error. Everything a
//! client-specific catalog query needs lives with the server (`server/rewrite/`), applied only
//! to statements that read the catalogs.

pub mod dialect;
pub mod literals;
pub mod names;
pub mod subqueries;

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::parser::ParserError;
use futures::StreamExt;

/// Separates a result column's PostgreSQL name from the suffix that keeps it distinct inside
/// the engine (PostgreSQL allows `SELECT NULL, NULL`; DataFusion wants distinct names). A
/// control character no one types in an identifier; [`output_name`] drops it and what follows.
pub const NAME_MARK: char = '\u{1f}';

/// The name a client sees for a result column named `internal` by the engine.
pub fn output_name(internal: &str) -> &str {
    internal.split(NAME_MARK).next().unwrap_or(internal)
}

/// `schema` with the names clients see, when any differs from the engine's.
pub fn output_schema(schema: &SchemaRef) -> Option<SchemaRef> {
    if !schema.fields().iter().any(|f| f.name().contains(NAME_MARK)) {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_name(output_name(f.name())))
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// `stream` with the names clients see (see [`output_schema`]).
pub fn with_output_names(stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
    let Some(schema) = output_schema(&stream.schema()) else {
        return stream;
    };
    let renamed = schema.clone();
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        stream.map(move |batch| {
            batch.and_then(|b| {
                RecordBatch::try_new(renamed.clone(), b.columns().to_vec())
                    .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))
            })
        }),
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(transparent)]
    Limits(#[from] crate::limits::LimitError),
    #[error("syntax error: {0}")]
    Parse(#[from] ParserError),
}

impl SqlError {
    /// The SQLSTATE PostgreSQL gives for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SqlError::Limits(e) => e.sqlstate(),
            SqlError::Parse(ParserError::RecursionLimitExceeded) => "54001",
            SqlError::Parse(_) => "42601",
        }
    }
}

/// Parses `text` (one or more statements) the way both front ends do. DataFusion's own
/// statements (`CREATE EXTERNAL TABLE`, `COPY … TO 'file'`, `EXPLAIN`) stay as DataFusion parses
/// them; plain SQL statements are shaped by [`shape`].
pub fn parse(text: &str) -> Result<Vec<DfStatement>, SqlError> {
    crate::limits::check_statement_text(text)?;
    let statements = DFParser::parse_sql_with_dialect(text, &dialect::RebuyDialect::default())
        .map_err(|e| match e {
            DataFusionError::SQL(p, _) => SqlError::Parse(*p),
            other => SqlError::Parse(ParserError::ParserError(other.to_string())),
        })?;
    Ok(statements
        .into_iter()
        .map(|mut s| {
            shape_df(&mut s);
            s
        })
        .collect())
}

/// Parses plain SQL statements (no DataFusion extensions) with the PostgreSQL dialect,
/// unshaped: the server decides first whether a statement reads the catalogs. The caller has
/// checked the text against [`crate::limits`] (the server does before anything else).
pub fn parse_plain(text: &str) -> Result<Vec<Statement>, SqlError> {
    Ok(datafusion::sql::sqlparser::parser::Parser::parse_sql(
        &dialect::RebuyDialect::default(),
        text,
    )?)
}

/// Gives a statement PostgreSQL's result shape: names, then literal types and nullable
/// scalar subqueries (the names are figured from the expressions as written).
pub fn shape(statement: &mut Statement) {
    names::name_like_postgres(statement);
    literals::type_integer_literals(statement);
    subqueries::nullable_scalar_subqueries(statement);
}

/// Only the names of [`shape`], for a caller that rewrites the statement's expressions before
/// shaping it (the server's catalog rewrites): the names stay those of the SQL as written.
pub fn name_columns(statement: &mut Statement) {
    names::name_like_postgres(statement);
}

fn shape_df(statement: &mut DfStatement) {
    match statement {
        DfStatement::Statement(s) => shape(s),
        DfStatement::Explain(e) => shape_df(&mut e.statement),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_drop_the_distinguishing_suffix() {
        assert_eq!(output_name("count"), "count");
        assert_eq!(output_name(&format!("?column?{NAME_MARK}2")), "?column?");
    }

    #[test]
    fn errors_carry_postgres_codes() {
        assert_eq!(parse("SELEC 1").unwrap_err().sqlstate(), "42601");
        let deep = format!("SELECT {}1{}", "(".repeat(2_000), ")".repeat(2_000));
        assert_eq!(parse(&deep).unwrap_err().sqlstate(), "54001");
    }
}
