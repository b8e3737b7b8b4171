//! `COPY … TO STDOUT` in PostgreSQL's text and CSV layouts (psql's `\copy`).

use datafusion::sql::sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};
use futures::StreamExt;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{CopySource, Statement};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyResponse, Response};
use pgwire::types::format::FormatOptions;

use crate::server::conn::ConnState;
use crate::server::encode::{pg_fields, row_fields};
use crate::server::errors::{self, pg_error};
use crate::server::statement::Prepared;

/// COPY's text or CSV layout.
#[derive(Debug, Clone)]
pub struct CopySpec {
    pub csv: bool,
    pub header: bool,
    pub delimiter: u8,
    pub null: String,
}

impl CopySpec {
    pub fn from_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> PgWireResult<Self> {
        let mut spec = CopySpec {
            csv: false,
            header: false,
            delimiter: b'\t',
            null: "\\N".into(),
        };
        let mut delimiter = None;
        let mut null = None;
        for o in options {
            match o {
                CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                    "csv" => spec.csv = true,
                    "text" => spec.csv = false,
                    other => {
                        return Err(pg_error(
                            errors::FEATURE_NOT_SUPPORTED,
                            format!("COPY format \"{other}\" is not supported (text or csv)"),
                        ));
                    }
                },
                CopyOption::Header(h) => spec.header = *h,
                CopyOption::Delimiter(c) => delimiter = Some(*c),
                CopyOption::Null(n) => null = Some(n.clone()),
                _ => {}
            }
        }
        for o in legacy {
            match o {
                CopyLegacyOption::Csv(csv_options) => {
                    spec.csv = true;
                    if csv_options
                        .iter()
                        .any(|c| matches!(c, CopyLegacyCsvOption::Header))
                    {
                        spec.header = true;
                    }
                }
                CopyLegacyOption::Binary => {
                    return Err(pg_error(
                        errors::FEATURE_NOT_SUPPORTED,
                        "COPY BINARY is not supported (text or csv)",
                    ));
                }
                CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
                CopyLegacyOption::Null(n) => null = Some(n.clone()),
                CopyLegacyOption::Header => spec.header = true,
                _ => {}
            }
        }
        if spec.csv {
            spec.delimiter = b',';
            spec.null = String::new();
        }
        if let Some(d) = delimiter {
            spec.delimiter = d as u8;
        }
        if let Some(n) = null {
            spec.null = n;
        }
        Ok(spec)
    }

    pub fn line(&self, fields: &[Option<Vec<u8>>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            match f {
                None => out.extend_from_slice(self.null.as_bytes()),
                Some(v) if self.csv => {
                    let needs_quotes = v.is_empty()
                        || v.iter()
                            .any(|b| *b == self.delimiter || matches!(*b, b'"' | b'\n' | b'\r'));
                    if needs_quotes {
                        out.push(b'"');
                        for b in v {
                            if *b == b'"' {
                                out.push(b'"');
                            }
                            out.push(*b);
                        }
                        out.push(b'"');
                    } else {
                        out.extend_from_slice(v);
                    }
                }
                Some(v) => {
                    for b in v {
                        match *b {
                            b'\\' => out.extend_from_slice(b"\\\\"),
                            b'\n' => out.extend_from_slice(b"\\n"),
                            b'\r' => out.extend_from_slice(b"\\r"),
                            b'\t' => out.extend_from_slice(b"\\t"),
                            c if c == self.delimiter => {
                                out.push(b'\\');
                                out.push(c);
                            }
                            c => out.push(c),
                        }
                    }
                }
            }
        }
        out.push(b'\n');
        out
    }
}

pub fn copy_lines(
    rows: impl futures::Stream<Item = PgWireResult<DataRow>> + Send + 'static,
    spec: CopySpec,
) -> impl futures::Stream<Item = PgWireResult<pgwire::messages::copy::CopyData>> + Send + 'static {
    rows.map(move |row| {
        row.map(|r| pgwire::messages::copy::CopyData::new(spec.line(&row_fields(&r)).into()))
    })
}

pub async fn run_copy_out<C>(
    conn: &Arc<ConnState>,
    p: &Prepared,
    client: &C,
) -> PgWireResult<Response>
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
    let parsed = crate::server::statement::parse(&sql)?;
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
    let session = conn.current().await?;
    let plan = conn.plan_in(&session, statement, &[]).await?;
    let stream = conn.execute(&session, plan, true).await?;
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
    let data = copy_lines(super::super::respond::rows(conn, stream, fields), spec);
    let head =
        futures::stream::iter(header.map(|h| Ok(pgwire::messages::copy::CopyData::new(h.into()))));
    Ok(Response::CopyOut(CopyResponse::new(
        0,
        columns,
        head.chain(data),
    )))
}
