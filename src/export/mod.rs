//! Segment exports to object storage: jobs declared as `[[export]]` in `rebuy.toml`, run on a
//! cron schedule by `rebuy serve` or at once by `rebuy export run`, published atomically per
//! slot with a `_SUCCESS` manifest, filtered for marketing consent, recorded in `export_runs`.
//!
//! - [`config`]: the job declarations and their checks.
//! - [`store`]: a destination URL as an object_store client.
//! - [`run`]: one run: query, consent, files, manifest, publish, retries.
//! - [`runs`]: the `export_runs` record.
//! - [`schedule`]: cron in a time zone, the clock, missed slots.

pub mod config;
pub mod lock;
pub mod run;
pub mod runs;
pub mod schedule;
pub mod store;

use std::path::PathBuf;

pub use config::{ExportConfig, ExportJob};
pub use run::{RunRequest, Trigger};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: export {}: {message}", job.as_deref().unwrap_or("configuration"))]
    Config {
        path: PathBuf,
        job: Option<String>,
        message: String,
    },
    #[error("export {job}: destination {url}: {message}")]
    Destination {
        job: String,
        url: String,
        message: String,
    },
    #[error("no export job named '{0}' in the configuration")]
    UnknownJob(String),
    #[error("export {job}: {source}")]
    Query {
        job: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    #[error("export {job}: {message}")]
    Invalid { job: String, message: String },
    #[error("export {job}: {what}: {source}")]
    Store {
        job: String,
        what: &'static str,
        #[source]
        source: object_store::Error,
    },
    #[error("export {job}: {what}: {message}")]
    Write {
        job: String,
        what: String,
        message: String,
        transient: bool,
    },
    #[error("export {0} is already running")]
    AlreadyRunning(String),
    #[error("export runs record: {0}")]
    Log(String),
    #[error("{0}")]
    Clock(String),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
}

impl ExportError {
    /// Whether trying again may help: the store was unreachable or answered with a server
    /// error. Query, configuration and permission errors are not retried.
    pub fn is_transient(&self) -> bool {
        match self {
            ExportError::Store { source, .. } => matches!(
                source,
                object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }
            ),
            ExportError::Write { transient, .. } => *transient,
            _ => false,
        }
    }
}

/// Plans every job's query against the warehouse: an unknown view, a SQL error or an
/// outreach job without `customer_id` is reported with the job's name before anything runs.
pub async fn check_jobs(
    warehouse: &crate::storage::Warehouse,
    jobs: &[ExportJob],
) -> Result<(), ExportError> {
    let today = chrono::Utc::now().date_naive();
    for job in jobs {
        run::prepare(warehouse, job, today, false).await?;
    }
    Ok(())
}
