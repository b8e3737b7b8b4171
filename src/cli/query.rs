//! `rebuy query "SQL"` / `rebuy query -f file.sql`: runs one or more statements and prints the
//! result of each as a table (default), CSV or JSON.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use datafusion::arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use futures::StreamExt;

use super::Done;
use crate::session::build_session_with;
use crate::storage::Warehouse;
use crate::views::Selection;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL to run (several statements separated by ';' are run in order).
    #[arg(conflicts_with = "file", required_unless_present = "file")]
    pub sql: Option<String>,
    /// Read the SQL from this file.
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// A failed statement, with where in the SQL text it went wrong when that can be told.
#[derive(Debug, thiserror::Error)]
#[error("{message}{}", .position.map(|(l, c)| format!(" (at line {l}, column {c})")).unwrap_or_default())]
pub struct QueryError {
    pub message: String,
    pub position: Option<(usize, usize)>,
}

pub async fn run(warehouse: &Warehouse, args: QueryArgs) -> anyhow::Result<Done> {
    let sql = match (&args.sql, &args.file) {
        (Some(s), _) => s.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read SQL file {}", f.display()))?,
        (None, None) => anyhow::bail!("give the SQL as an argument or with -f FILE"),
    };
    // The same bounds as the server's, before anything recursive reads the text.
    // The same bounds, parser and result shape as the server's (see crate::sql).
    let statements = crate::sql::parse(&sql).map_err(|e| match e {
        crate::sql::SqlError::Parse(p) => locate(&sql, DataFusionError::from(p)),
        other => QueryError {
            message: other.to_string(),
            position: None,
        },
    })?;
    let ctx = build_session_with(warehouse, &Selection::for_sql(&sql)).await?;
    if statements.is_empty() {
        anyhow::bail!("no SQL statement given");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for statement in statements {
        let state = ctx.state();
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| locate(&sql, e))?;
        let df = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| locate(&sql, e))?;
        let stream = df.execute_stream().await.map_err(|e| locate(&sql, e))?;
        let mut stream = crate::sql::with_output_names(stream);
        if stream.schema().fields().is_empty() {
            // SET and other statements without a result: nothing to print.
            while let Some(b) = stream.next().await {
                b.map_err(|e| locate(&sql, e))?;
            }
            continue;
        }
        match args.format {
            OutputFormat::Table => {
                let mut batches: Vec<RecordBatch> = Vec::new();
                let schema = stream.schema();
                while let Some(b) = stream.next().await {
                    batches.push(b.map_err(|e| locate(&sql, e))?);
                }
                if batches.is_empty() {
                    batches.push(RecordBatch::new_empty(schema));
                }
                let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?;
                writeln!(out, "{table}")?;
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
            }
            OutputFormat::Csv => {
                // Formatting is most of the time of a large result: batches are formatted on
                // the blocking pool, a few at a time, and written in order.
                let schema = stream.schema();
                let mut pending = std::collections::VecDeque::new();
                let mut header = true;
                while let Some(b) = stream.next().await {
                    let batch = b.map_err(|e| locate(&sql, e))?;
                    let with_header = std::mem::replace(&mut header, false);
                    pending.push_back(tokio::task::spawn_blocking(move || {
                        csv_bytes(&batch, with_header)
                    }));
                    if pending.len() >= CSV_BATCHES_AHEAD
                        && let Some(oldest) = pending.pop_front()
                    {
                        out.write_all(&oldest.await??)?;
                    }
                }
                for task in pending {
                    out.write_all(&task.await??)?;
                }
                if header {
                    // No rows: the header alone, as PostgreSQL's COPY ... CSV HEADER prints.
                    out.write_all(&csv_bytes(&RecordBatch::new_empty(schema), true)?)?;
                }
            }
            OutputFormat::Json => {
                let mut writer = datafusion::arrow::json::ArrayWriter::new(&mut out);
                while let Some(b) = stream.next().await {
                    writer.write(&b.map_err(|e| locate(&sql, e))?)?;
                }
                writer.finish()?;
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    Ok(Done::Ok)
}

/// How many batches may be in formatting at once (`--format csv`).
const CSV_BATCHES_AHEAD: usize = 4;

/// One batch as CSV text, with the header line first when asked.
fn csv_bytes(
    batch: &RecordBatch,
    header: bool,
) -> Result<Vec<u8>, datafusion::arrow::error::ArrowError> {
    let mut bytes = Vec::with_capacity(batch.get_array_memory_size() / 2);
    let mut writer = datafusion::arrow::csv::WriterBuilder::new()
        .with_header(header)
        .build(&mut bytes);
    writer.write(batch)?;
    drop(writer);
    Ok(bytes)
}

/// Turns an engine error into a [`QueryError`], finding the position of the offending name in
/// the SQL text when the engine does not give one.
pub fn locate(sql: &str, e: DataFusionError) -> QueryError {
    let message = e.strip_backtrace().to_string();
    if message.contains("Line: ") {
        // The parser already says where.
        return QueryError {
            message,
            position: None,
        };
    }
    if message.contains("found: EOF") {
        // The statement ended early: point just past its last character.
        let trimmed = sql.trim_end();
        let line = trimmed.matches('\n').count() + 1;
        let col = trimmed.len() - trimmed.rfind('\n').map_or(0, |p| p + 1) + 1;
        return QueryError {
            message,
            position: Some((line, col)),
        };
    }
    let name = extract_quoted_name(&message);
    let position = name.and_then(|n| find_word(sql, &n));
    QueryError { message, position }
}

fn extract_quoted_name(message: &str) -> Option<String> {
    for marker in [
        "No field named ",
        "table '",
        "Invalid function '",
        "function '",
    ] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            let rest = rest.trim_start_matches(['"', '\'']);
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            let name = rest[..end].trim_end_matches('.');
            // Qualified names: keep the last part (what the user most likely typed).
            let last = name.rsplit('.').next().unwrap_or(name);
            if !last.is_empty() {
                return Some(last.to_string());
            }
        }
    }
    None
}

/// 1-based line and column of the first whole-word, case-insensitive occurrence of `word`.
fn find_word(sql: &str, word: &str) -> Option<(usize, usize)> {
    let lower = sql.to_lowercase();
    let w = word.to_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&w) {
        let at = from + i;
        let before = lower[..at].chars().next_back();
        let after = lower[at + w.len()..].chars().next();
        let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !is_word(before) && !is_word(after) {
            let line = sql[..at].matches('\n').count() + 1;
            let col = at - sql[..at].rfind('\n').map_or(0, |p| p + 1) + 1;
            return Some((line, col));
        }
        from = at + w.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_as_words() {
        assert_eq!(
            find_word("SELECT x\nFROM ordersx, orders", "orders"),
            Some((2, 15))
        );
        assert_eq!(find_word("select amountt from t", "AMOUNTT"), Some((1, 8)));
        assert_eq!(
            extract_quoted_name("Schema error: No field named amountt. Valid fields are ..."),
            Some("amountt".into())
        );
        assert_eq!(
            extract_quoted_name("Error during planning: table 'rebuy.public.ordrs' not found"),
            Some("ordrs".into())
        );
    }
}
