//! Command line: `rebuy demo | ingest | query | tables | serve | user | export`. One file per sub-command.
//!
//! Exit codes: 0 success; 1 failure (nothing was changed); 2 usage error; 3 ingest committed
//! but some rows were rejected (see the rejects file).

mod demo;
mod export;
mod ingest;
mod query;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::storage::Warehouse;

#[derive(Debug, Parser)]
#[command(
    name = "rebuy",
    version,
    about = "Repurchase analytics warehouse: ingest order histories, ask in SQL"
)]
pub struct Cli {
    /// Data directory: a local folder or an object-store URL (s3://bucket/prefix, gs://, az://, file://).
    #[arg(long, global = true, env = "REBUY_DATA", default_value = "./data")]
    pub data: String,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a realistic, deterministic store history and ingest it.
    Demo(demo::DemoArgs),
    /// Validate and load orders, customers, fx_rates or marketing_spend from CSV, Parquet or
    /// NDJSON files.
    Ingest(ingest::IngestArgs),
    /// Run SQL over the warehouse.
    Query(query::QueryArgs),
    /// List the stored tables with their version and row count.
    Tables,
    /// Serve the warehouse over the PostgreSQL wire protocol (psql, BI tools, drivers).
    Serve(serve::ServeArgs),
    /// Manage the users who may log in to `rebuy serve`.
    #[command(subcommand)]
    User(serve::UserCommand),
    /// Run or list the segment exports declared as [[export]] in rebuy.toml.
    #[command(subcommand)]
    Export(export::ExportCommand),
}

/// Outcome of a command that is not a plain failure.
pub enum Done {
    Ok,
    /// Committed, but rows were rejected.
    WithRejects,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    // Queries are planned and run on these threads; a statement at the depth limit needs a
    // deep stack in the planner's recursive passes (see `limits`).
    // File reads go through the blocking pool (object_store's local files, Delta logs). Its
    // default of 512 threads, each keeping its allocator cache for 10 s, let a server under
    // steady ingests and queries grow by hundreds of MB; a pool of a few per core does the
    // same work in turn.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::limits::STACK_BYTES)
        .max_blocking_threads((4 * cores).max(16))
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(run(cli));
    // A fit still running past the shutdown grace is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(Done::Ok) => ExitCode::SUCCESS,
        Ok(Done::WithRejects) => ExitCode::from(3),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "rebuy=info,off",
        1 => "rebuy=debug,warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REBUY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

pub async fn run(cli: Cli) -> anyhow::Result<Done> {
    let warehouse = Warehouse::open(&cli.data)?;
    match cli.command {
        Command::Demo(args) => demo::run(&warehouse, args).await,
        Command::Ingest(args) => ingest::run(&warehouse, args).await,
        Command::Query(args) => query::run(&warehouse, args).await,
        Command::Serve(args) => serve::run(&warehouse, args).await,
        Command::User(command) => serve::run_user(&warehouse, command).await,
        Command::Export(command) => export::run(&warehouse, command).await,
        Command::Tables => {
            // Counts the tables only: no view is needed.
            let no_views = crate::views::Selection::Only(Vec::new());
            let ctx = crate::session::build_session_with(&warehouse, &no_views).await?;
            let mut out = String::new();
            for kind in crate::storage::TableKind::ALL {
                let version = warehouse.version(kind).await?;
                let rows = ctx
                    .sql(&format!("SELECT COUNT(*) FROM {}", kind.name()))
                    .await?
                    .collect()
                    .await?;
                let n = rows
                    .first()
                    .and_then(|b| {
                        b.column(0)
                            .as_any()
                            .downcast_ref::<datafusion::arrow::array::Int64Array>()
                            .map(|a| a.value(0))
                    })
                    .unwrap_or(0);
                let v = version.map_or("-".to_string(), |v| v.to_string());
                out.push_str(&format!(
                    "{:<15} version {:>4}  {:>12} rows\n",
                    kind.name(),
                    v,
                    n
                ));
            }
            print!("{out}");
            Ok(Done::Ok)
        }
    }
}
