//! `rebuy demo`: generate a store's history and ingest it like real data.

use std::io::IsTerminal;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;

use super::Done;
use crate::demo::{DemoOptions, InputFormat, generate};
use crate::ingest::{IngestOptions, ingest};
use crate::storage::{TableKind, Warehouse};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of orders to generate.
    #[arg(long, default_value_t = 200_000)]
    pub orders: u64,
    /// Random seed: the same seed gives the same history.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First day of the history.
    #[arg(long, default_value = "2023-01-01")]
    pub start: NaiveDate,
    /// Last day of the history.
    #[arg(long, default_value = "2026-06-30")]
    pub end: NaiveDate,
    /// Keep the generated input files in this folder (for other tools or benchmarks).
    #[arg(long)]
    pub inputs: Option<PathBuf>,
    /// Format of the generated input files.
    #[arg(long, value_enum, default_value = "parquet")]
    pub input_format: InputFormat,
    /// Only write the input files; do not ingest them.
    #[arg(long, requires = "inputs")]
    pub no_ingest: bool,
}

pub async fn run(warehouse: &Warehouse, args: DemoArgs) -> anyhow::Result<Done> {
    let options = DemoOptions {
        orders: args.orders,
        seed: args.seed,
        start: args.start,
        end: args.end,
        format: args.input_format,
    };
    let keep = args.inputs.is_some();
    let dir = match args.inputs {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("rebuy-demo-{}", uuid::Uuid::new_v4().simple())),
    };
    let started = std::time::Instant::now();
    let files = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || generate(&options, &dir)).await??
    };
    tracing::info!(
        "generated {} orders of {} customers in {:.1}s",
        files.orders_written,
        files.customers_written,
        started.elapsed().as_secs_f64()
    );
    let result = if args.no_ingest {
        println!("input files written to {}", dir.display());
        Ok(Done::Ok)
    } else {
        load(warehouse, &files).await
    };
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if result.is_ok() && !args.no_ingest {
        println!("demo data ready in {:.1}s", started.elapsed().as_secs_f64());
    }
    result
}

async fn load(warehouse: &Warehouse, files: &crate::demo::DemoFiles) -> anyhow::Result<Done> {
    let options = IngestOptions {
        strict: true,
        progress: std::io::stderr().is_terminal(),
    };
    for (table, path) in [
        (TableKind::FxRates, &files.fx_rates),
        (TableKind::Customers, &files.customers),
        (TableKind::Orders, &files.orders),
        (TableKind::MarketingSpend, &files.marketing_spend),
    ] {
        let report = ingest(warehouse, table, &[path.display().to_string()], &options).await?;
        println!("{report}");
    }
    Ok(Done::Ok)
}
