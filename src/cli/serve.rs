//! `rebuy serve` (the Postgres wire-protocol server) and `rebuy user add`.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::Done;
use crate::server::{AuthMode, Role, ServerConfig};
use crate::storage::{TableKind, Warehouse};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default from rebuy.toml, else 127.0.0.1:5433).
    #[arg(long)]
    pub listen: Option<String>,
    /// Configuration file (default: rebuy.toml in the data directory).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Fill an empty data directory with demo data first; without configured users, allow
    /// password-less logins on loopback (trust).
    #[arg(long)]
    pub demo: bool,
    /// Number of demo orders when --demo has to generate them.
    #[arg(long, default_value_t = 200_000, requires = "demo")]
    pub demo_orders: u64,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (or replace its password and role). The password is read from the
    /// REBUY_PASSWORD environment variable or, failing that, from the first line of stdin.
    Add {
        name: String,
        #[arg(long, value_enum, default_value = "analyst")]
        role: Role,
        /// Configuration file (default: rebuy.toml in the data directory).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// `rebuy.toml` beside the data of a local warehouse, else in the working directory.
pub fn default_config_path(warehouse: &Warehouse) -> PathBuf {
    warehouse
        .local_dir()
        .map(|d| d.join("rebuy.toml"))
        .unwrap_or_else(|| PathBuf::from("rebuy.toml"))
}

pub async fn run_user(warehouse: &Warehouse, command: UserCommand) -> anyhow::Result<Done> {
    match command {
        UserCommand::Add { name, role, config } => {
            let path = config.unwrap_or_else(|| default_config_path(warehouse));
            let password = match std::env::var("REBUY_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    if std::io::stdin().is_terminal() {
                        eprint!("password for {name}: ");
                    }
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("cannot read the password from stdin")?;
                    line.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            if password.is_empty() {
                anyhow::bail!("empty password: give one in REBUY_PASSWORD or on stdin");
            }
            crate::server::config::add_user(&path, &name, role, &password)?;
            println!(
                "user {name} ({}) written to {}",
                role.name(),
                path.display()
            );
            Ok(Done::Ok)
        }
    }
}

pub async fn run(warehouse: &Warehouse, args: ServeArgs) -> anyhow::Result<Done> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| default_config_path(warehouse));
    // Read once: the server's sections and the export jobs come from the same text.
    let file = crate::config::ConfigFile::load(&path)?;
    let mut config = ServerConfig::from_file(&file)?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if args.demo {
        if warehouse.version(TableKind::Orders).await?.is_none() {
            eprintln!("empty data directory: generating demo data first");
            // A history that ends today, so that "who is slipping" has an answer right away.
            let end = chrono::Utc::now().date_naive();
            let start = end
                .checked_sub_months(chrono::Months::new(42))
                .unwrap_or(end);
            super::demo::run(
                warehouse,
                super::demo::DemoArgs {
                    orders: args.demo_orders,
                    seed: 42,
                    start,
                    end,
                    inputs: None,
                    input_format: crate::demo::InputFormat::Parquet,
                    no_ingest: false,
                },
            )
            .await?;
        }
        let loopback = config.listen_addr()?.ip().is_loopback();
        if loopback && !config.users.iter().any(|u| u.password.is_some()) {
            config.server.auth = AuthMode::Trust;
        }
    }
    // The customer summary follows the orders (after an upgrade, or an ingest whose
    // summary step failed); the views compute from orders while it lags.
    if let Err(e) = crate::summary::refresh(warehouse).await {
        tracing::warn!("customer summary not updated (views read orders): {e}");
    }
    // Export jobs are checked before anything listens or runs.
    let exports = crate::export::ExportConfig::from_file(&file)?;
    crate::export::check_jobs(warehouse, &exports.jobs).await?;
    config.exports = exports.jobs.clone();
    let clock = crate::export::schedule::clock_from_env()?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let scheduler = tokio::spawn(crate::export::schedule::run_schedule(
        warehouse.clone(),
        exports.jobs,
        clock,
        async move {
            let _ = stop_rx.changed().await;
        },
    ));
    let listen_text = config.server.listen.clone();
    let grace = config.server.shutdown_grace_secs;
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    let served = crate::server::serve(
        warehouse.clone(),
        config,
        |running| {
            eprintln!(
                "rebuy serving {} on {} (psql -h {} -p {} -U analyst rebuy)",
                warehouse.root(),
                running.addr,
                running.addr.ip(),
                running.addr.port()
            );
        },
        shutdown,
    )
    .await;
    // Exports under way may finish within the same grace as queries; past it the process ends
    // and they are recorded as interrupted at the next start (their slots stay as they were).
    if tokio::time::timeout(std::time::Duration::from_secs(grace), scheduler)
        .await
        .is_err()
    {
        tracing::warn!("exports still running after {grace} s: stopping anyway");
    }
    served.with_context(|| format!("serving on {listen_text}"))?;
    Ok(Done::Ok)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
