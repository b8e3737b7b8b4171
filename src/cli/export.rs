//! `rebuy export run NAME [--as-of DATE]` and `rebuy export list`.

use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Subcommand;

use super::Done;
use crate::export::runs::{self, Status};
use crate::export::schedule;
use crate::export::{ExportConfig, RunRequest, Trigger};
use crate::storage::Warehouse;

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Run one export job now (its slot is the as-of date: today in the job's time zone,
    /// unless --as-of is given). Exits with 1 when the run failed.
    Run {
        name: String,
        /// The as-of date (and slot) to export, YYYY-MM-DD.
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// Configuration file (default: rebuy.toml in the data directory).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List the export jobs with their last and next run.
    List {
        /// Configuration file (default: rebuy.toml in the data directory).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub async fn run(warehouse: &Warehouse, command: ExportCommand) -> anyhow::Result<Done> {
    let clock = schedule::clock_from_env()?;
    match command {
        ExportCommand::Run {
            name,
            as_of,
            config,
        } => {
            let path = config.unwrap_or_else(|| super::serve::default_config_path(warehouse));
            let config = ExportConfig::load(&path)?;
            let job = config
                .job(&name)
                .ok_or_else(|| crate::export::ExportError::UnknownJob(name.clone()))
                .with_context(|| format!("jobs are read from {}", path.display()))?;
            crate::export::check_jobs(warehouse, std::slice::from_ref(job)).await?;
            runs::mark_interrupted(warehouse, clock.now()).await?;
            let day = as_of.unwrap_or_else(|| schedule::slot_of(job, clock.now()));
            let request = RunRequest {
                slot: day,
                as_of: day,
                trigger: Trigger::Manual,
            };
            let event =
                crate::export::run::run_job(warehouse, job, request, || clock.now()).await?;
            match event.status {
                Status::Succeeded => {
                    println!(
                        "export {}: {} rows ({} left out for lack of marketing consent) in {} file(s), {} bytes, published to {} (run {}, {} attempt(s))",
                        event.job,
                        event.rows,
                        event.rows_excluded,
                        event.files,
                        event.bytes,
                        event.destination,
                        event.run_id,
                        event.attempts
                    );
                    Ok(Done::Ok)
                }
                _ => anyhow::bail!(
                    "export {} failed after {} attempt(s): {} (nothing was published for dt={})",
                    event.job,
                    event.attempts,
                    event.error.unwrap_or_default(),
                    event.slot
                ),
            }
        }
        ExportCommand::List { config } => {
            let path = config.unwrap_or_else(|| super::serve::default_config_path(warehouse));
            let config = ExportConfig::load(&path)?;
            if config.jobs.is_empty() {
                println!("no export jobs in {}", path.display());
                return Ok(Done::Ok);
            }
            let now = clock.now();
            runs::mark_interrupted(warehouse, now).await?;
            let history = runs::latest(warehouse, "true").await?;
            println!(
                "{:<20} {:<16} {:<18} {:<10} {:<40} {:<48} next run",
                "job", "schedule", "timezone", "purpose", "destination", "last run"
            );
            for job in &config.jobs {
                let last = history
                    .iter()
                    .filter(|e| e.job == job.name)
                    .max_by_key(|e| e.started_at)
                    .map(|e| {
                        format!(
                            "{} {} dt={} {} rows",
                            e.status.name(),
                            e.finished_at
                                .unwrap_or(e.started_at)
                                .format("%Y-%m-%d %H:%M:%SZ"),
                            e.slot,
                            e.rows
                        )
                    })
                    .unwrap_or_else(|| "never".to_string());
                let next = job
                    .schedule
                    .as_ref()
                    .and_then(|s| schedule::next_after(s, now))
                    .map(|t| {
                        format!(
                            "{} ({})",
                            t.format("%Y-%m-%d %H:%M:%SZ"),
                            t.with_timezone(&job.timezone).format("%Y-%m-%d %H:%M %Z")
                        )
                    })
                    .unwrap_or_else(|| "manual only".to_string());
                println!(
                    "{:<20} {:<16} {:<18} {:<10} {:<40} {:<48} {}",
                    job.name,
                    job.schedule.as_ref().map_or("-", |s| s.text.as_str()),
                    job.timezone.name(),
                    job.purpose,
                    job.destination.as_str(),
                    last,
                    next
                );
            }
            Ok(Done::Ok)
        }
    }
}
