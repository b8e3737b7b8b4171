//! `COPY … TO STDOUT` in PostgreSQL's text and CSV layouts (psql's `\copy`).

use datafusion::sql::sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};
use futures::StreamExt;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use super::encode::row_fields;
use super::errors::{self, pg_error};

/// COPY's text or CSV layout.
#[derive(Debug, Clone)]
pub(super) struct CopySpec {
    pub(super) csv: bool,
    pub(super) header: bool,
    pub(super) delimiter: u8,
    pub(super) null: String,
}

impl CopySpec {
    pub(super) fn from_options(
        options: &[CopyOption],
        legacy: &[CopyLegacyOption],
    ) -> PgWireResult<Self> {
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

    pub(super) fn line(&self, fields: &[Option<Vec<u8>>]) -> Vec<u8> {
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

pub(super) fn copy_lines(
    rows: impl futures::Stream<Item = PgWireResult<DataRow>> + Send + 'static,
    spec: CopySpec,
) -> impl futures::Stream<Item = PgWireResult<pgwire::messages::copy::CopyData>> + Send + 'static {
    rows.map(move |row| {
        row.map(|r| pgwire::messages::copy::CopyData::new(spec.line(&row_fields(&r)).into()))
    })
}
