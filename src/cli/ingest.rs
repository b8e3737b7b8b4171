//! `rebuy ingest TABLE PATH_OR_URL...`

use std::io::IsTerminal;

use clap::Args;

use super::Done;
use crate::ingest::{IngestOptions, ingest};
use crate::storage::{TableKind, Warehouse};

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Table to load: orders, customers, fx_rates or marketing_spend.
    pub table: TableKind,
    /// Input files (.csv with header, .parquet, .ndjson), directories of them, or URLs
    /// (s3://, gs://, az://, file://).
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Reject the whole batch if any row is bad.
    #[arg(long)]
    pub strict: bool,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

pub async fn run(warehouse: &Warehouse, args: IngestArgs) -> anyhow::Result<Done> {
    let options = IngestOptions {
        strict: args.strict,
        progress: !args.no_progress && std::io::stderr().is_terminal(),
    };
    let report = ingest(warehouse, args.table, &args.inputs, &options).await?;
    println!("{report}");
    Ok(if report.rejected > 0 {
        Done::WithRejects
    } else {
        Done::Ok
    })
}
