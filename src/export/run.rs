//! One run of an export job: query at an as-of date, leave out personal columns and (for
//! outreach) customers without marketing consent, write the files under a temporary prefix,
//! then publish them into the slot `<prefix>/<job>/dt=YYYY-MM-DD/` with the `_SUCCESS`
//! manifest last.
//!
//! Publishing: on `file://` destinations the finished folder is renamed into place, so the
//! slot appears (or is replaced) in one step. Object stores have no folder rename: there the
//! old manifest is removed first, the files are moved in (each object appears whole, as
//! uploads only become visible when complete), and the new `_SUCCESS` is written last, so a
//! slot with a `_SUCCESS` is always complete and consistent with it. Temporary files live
//! under `<prefix>/_rebuy_tmp/<job>/<run>/`, outside every slot.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, BooleanArray, LargeStringArray, RecordBatch, StringArray, StringViewArray,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use super::ExportError;
use super::config::{ExportJob, Format, PERSONAL_COLUMNS};
use super::runs::{self, RunEvent, Status};
use super::store::Destination;
use crate::storage::{TableKind, Warehouse};

/// Why a run happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    CatchUp,
    Manual,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::CatchUp => "catch-up",
            Trigger::Manual => "manual",
        }
    }
}

/// The job's query, ready to run, with what was decided about columns and consent.
pub struct Prepared {
    pub df: DataFrame,
    pub sql: String,
    pub left_out: Vec<String>,
    /// Customers who consented, for outreach jobs.
    pub consent: Option<HashSet<String>>,
    pub snapshot: BTreeMap<&'static str, Option<u64>>,
}

/// Plans the job's query at `as_of` (this is also the start-up check: unknown views, SQL
/// errors and outreach jobs without `customer_id` fail here). `load_consent` reads the
/// consenting customers too.
pub async fn prepare(
    warehouse: &Warehouse,
    job: &ExportJob,
    as_of: NaiveDate,
    load_consent: bool,
) -> Result<Prepared, ExportError> {
    let query_err = |source| ExportError::Query {
        job: job.name.clone(),
        source: Box::new(source),
    };
    let mut snapshot = BTreeMap::new();
    for kind in TableKind::ALL {
        snapshot.insert(kind.name(), warehouse.version(kind).await?);
    }
    let ctx: SessionContext = crate::session::build_session(warehouse).await?;
    ctx.sql(&format!("SET rebuy.as_of = '{as_of}'"))
        .await
        .map_err(query_err)?;
    let sql = job.source.sql();
    if let super::config::Source::View(v) = &job.source
        && !ctx.table_exist(v.as_str()).map_err(query_err)?
    {
        return Err(ExportError::Invalid {
            job: job.name.clone(),
            message: format!("unknown view or table '{v}'"),
        });
    }
    let df = ctx.sql(&sql).await.map_err(query_err)?;
    if matches!(
        df.logical_plan(),
        LogicalPlan::Ddl(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_)
    ) {
        return Err(ExportError::Invalid {
            job: job.name.clone(),
            message: "`sql` must be a query (SELECT …)".into(),
        });
    }
    let mut keep = Vec::new();
    let mut left_out = Vec::new();
    for column in df.schema().columns() {
        let personal = PERSONAL_COLUMNS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&column.name));
        if personal && !job.allow_personal.allows(&column.name) {
            left_out.push(column.name.clone());
        } else {
            keep.push(Expr::Column(column));
        }
    }
    if keep.is_empty() {
        return Err(ExportError::Invalid {
            job: job.name.clone(),
            message: "every column of the result is personal data left out".into(),
        });
    }
    let df = if left_out.is_empty() {
        df
    } else {
        df.select(keep).map_err(query_err)?
    };
    let consent = if job.needs_consent() {
        if df
            .schema()
            .field_with_unqualified_name("customer_id")
            .is_err()
        {
            return Err(ExportError::Invalid {
                job: job.name.clone(),
                message: "purpose \"marketing\" needs a customer_id column in the result, \
                          to export only customers who consented"
                    .into(),
            });
        }
        if load_consent {
            Some(consenting_customers(&ctx).await.map_err(query_err)?)
        } else {
            Some(HashSet::new())
        }
    } else {
        None
    };
    Ok(Prepared {
        df,
        sql,
        left_out,
        consent,
        snapshot,
    })
}

/// Customers whose current record says they consented (a withdrawal counts at once, also
/// for past as-of dates); customers without a record have not consented.
async fn consenting_customers(
    ctx: &SessionContext,
) -> Result<HashSet<String>, datafusion::error::DataFusionError> {
    let batches = ctx
        .sql("SELECT CAST(customer_id AS VARCHAR) FROM customers WHERE marketing_consent IS TRUE")
        .await?
        .collect()
        .await?;
    let mut out = HashSet::new();
    for b in &batches {
        let c = b.column(0);
        for i in 0..c.len() {
            if let Some(v) = text_at(c.as_ref(), i) {
                out.insert(v.to_string());
            }
        }
    }
    Ok(out)
}

fn text_at(a: &dyn Array, i: usize) -> Option<&str> {
    if a.is_null(i) {
        return None;
    }
    if let Some(s) = a.as_any().downcast_ref::<StringArray>() {
        Some(s.value(i))
    } else if let Some(s) = a.as_any().downcast_ref::<StringViewArray>() {
        Some(s.value(i))
    } else {
        a.as_any()
            .downcast_ref::<LargeStringArray>()
            .map(|s| s.value(i))
    }
}

/// What a finished run wrote.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub rows: u64,
    pub excluded: u64,
    pub files: Vec<(String, u64, u64)>,
    pub bytes: u64,
}

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub slot: NaiveDate,
    pub as_of: NaiveDate,
    pub trigger: Trigger,
}

fn running_jobs() -> &'static Mutex<HashSet<String>> {
    static RUNNING: std::sync::OnceLock<Mutex<HashSet<String>>> = std::sync::OnceLock::new();
    RUNNING.get_or_init(|| Mutex::new(HashSet::new()))
}

struct JobLock(String);

impl JobLock {
    fn take(job: &str) -> Option<JobLock> {
        let mut running = running_jobs().lock().ok()?;
        running
            .insert(job.to_string())
            .then(|| JobLock(job.to_string()))
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        if let Ok(mut running) = running_jobs().lock() {
            running.remove(&self.0);
        }
    }
}

/// Runs `job` for one slot, retrying transient failures with backoff, and records the run
/// in `export_runs`. Returns the final record (its status says whether it succeeded).
pub async fn run_job(
    warehouse: &Warehouse,
    job: &ExportJob,
    request: RunRequest,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<RunEvent, ExportError> {
    let _lock =
        JobLock::take(&job.name).ok_or_else(|| ExportError::AlreadyRunning(job.name.clone()))?;
    let dest = Destination::open(job)?;
    let started_at = now();
    let run_id = format!(
        "{}-{}-{}-{:04x}",
        job.name,
        request.slot.format("%Y%m%d"),
        started_at.format("%Y%m%dT%H%M%S%.3fZ"),
        rand::random::<u16>()
    );
    run_recorded(warehouse, job, &dest, request, run_id, started_at, &now).await
}

async fn run_recorded(
    warehouse: &Warehouse,
    job: &ExportJob,
    dest: &Destination,
    request: RunRequest,
    run_id: String,
    started_at: DateTime<Utc>,
    now: &impl Fn() -> DateTime<Utc>,
) -> Result<RunEvent, ExportError> {
    let slot_url = format!(
        "{}/{}/dt={}/",
        job.destination.as_str().trim_end_matches('/'),
        job.name,
        request.slot
    );
    let mut event = RunEvent {
        run_id: run_id.clone(),
        job: job.name.clone(),
        slot: request.slot,
        as_of: request.as_of,
        trigger: request.trigger.name().to_string(),
        status: Status::Running,
        started_at,
        finished_at: None,
        attempts: 0,
        rows: 0,
        rows_excluded: 0,
        bytes: 0,
        files: 0,
        destination: slot_url,
        error: None,
        host: runs::host_name(),
        pid: std::process::id() as i32,
    };
    runs::append(warehouse, std::slice::from_ref(&event)).await?;
    tracing::info!(job = %job.name, run = %run_id, slot = %request.slot, trigger = request.trigger.name(), "export started");
    let mut attempt = 0u32;
    // Other processes (an operator's manual run during the scheduled one) wait their turn: the
    // job's lock is taken by the first attempt that reaches the store.
    let mut store_lock: Option<super::lock::JobLock> = None;
    let result = loop {
        attempt += 1;
        event.attempts = attempt as i32;
        let locked = match &store_lock {
            Some(_) => Ok(()),
            None => super::lock::JobLock::take(dest, &job.name, &run_id, now())
                .await
                .map(|l| store_lock = Some(l)),
        };
        let outcome = match locked {
            Ok(()) => attempt_once(warehouse, job, dest, &request, &run_id, started_at, now).await,
            Err(e) => Err(e),
        };
        let tmp = dest.path(&["_rebuy_tmp", &job.name, &run_id]);
        match outcome {
            Ok(written) => break Ok(written),
            Err(e) => {
                remove_prefix(dest, &tmp).await;
                if e.is_transient() && attempt <= job.retries {
                    let wait = job
                        .retry_backoff_ms
                        .saturating_mul(1u64 << (attempt - 1).min(10))
                        .min(60_000);
                    tracing::warn!(job = %job.name, attempt, "export attempt failed, retrying in {wait} ms: {e}");
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    continue;
                }
                break Err(e);
            }
        }
    };
    if let Some(lock) = store_lock {
        lock.release(dest).await;
    }
    event.finished_at = Some(now());
    match result {
        Ok(w) => {
            event.status = Status::Succeeded;
            event.rows = w.rows as i64;
            event.rows_excluded = w.excluded as i64;
            event.bytes = w.bytes as i64;
            event.files = w.files.len() as i32;
            tracing::info!(job = %job.name, run = %run_id, rows = w.rows, excluded = w.excluded, bytes = w.bytes, "export published to {}", event.destination);
        }
        Err(e) => {
            event.status = Status::Failed;
            event.error = Some(e.to_string());
            tracing::error!(job = %job.name, run = %run_id, attempts = attempt, "export failed: {e}");
        }
    }
    runs::append(warehouse, std::slice::from_ref(&event)).await?;
    Ok(event)
}

async fn attempt_once(
    warehouse: &Warehouse,
    job: &ExportJob,
    dest: &Destination,
    request: &RunRequest,
    run_id: &str,
    started_at: DateTime<Utc>,
    now: &impl Fn() -> DateTime<Utc>,
) -> Result<Written, ExportError> {
    // Leftovers of runs that were killed are never published; clear them first. This run
    // holds the job's lock, so no other staging folder of the job belongs to a live run.
    remove_prefix(dest, &dest.path(&["_rebuy_tmp", &job.name])).await;
    let prepared = prepare(warehouse, job, request.as_of, true).await?;
    let tmp = dest.path(&["_rebuy_tmp", &job.name, run_id]);
    let schema: SchemaRef = Arc::new(prepared.df.schema().as_arrow().clone());
    let stream = prepared
        .df
        .clone()
        .execute_stream()
        .await
        .map_err(|source| ExportError::Query {
            job: job.name.clone(),
            source: Box::new(source),
        })?;
    let written = write_files(
        job,
        dest,
        &tmp,
        schema.clone(),
        stream,
        prepared.consent.as_ref(),
    )
    .await?;
    let manifest = manifest(
        job,
        request,
        run_id,
        &prepared,
        &schema,
        &written,
        started_at,
        now(),
    );
    publish(job, dest, &tmp, request.slot, &written, manifest).await?;
    Ok(written)
}

/// Streams the result into files of at most `max_rows_per_file` rows under `tmp`.
async fn write_files(
    job: &ExportJob,
    dest: &Destination,
    tmp: &Path,
    schema: SchemaRef,
    mut stream: datafusion::physical_plan::SendableRecordBatchStream,
    consent: Option<&HashSet<String>>,
) -> Result<Written, ExportError> {
    let mut written = Written::default();
    let mut file: Option<(FileWriter, String, u64)> = None;
    let customer_col = schema.index_of("customer_id").ok();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|source| ExportError::Query {
            job: job.name.clone(),
            source: Box::new(source),
        })?;
        let batch = match (consent, customer_col) {
            (Some(ok), Some(c)) => {
                let ids = batch.column(c);
                let mask: BooleanArray = (0..batch.num_rows())
                    .map(|i| Some(text_at(ids.as_ref(), i).is_some_and(|id| ok.contains(id))))
                    .collect();
                let kept = filter_record_batch(&batch, &mask)
                    .map_err(|e| write_err(job, "filtering for consent", e))?;
                written.excluded += (batch.num_rows() - kept.num_rows()) as u64;
                kept
            }
            _ => batch,
        };
        let mut offset = 0;
        while offset < batch.num_rows() {
            if file.is_none() {
                let name = format!("part-{:05}.{}", written.files.len(), job.format.extension());
                let path = tmp.clone().join(name.as_str());
                let w = FileWriter::new(job, dest.store.clone(), path, schema.clone())?;
                file = Some((w, name, 0));
            }
            let Some((w, _, rows)) = file.as_mut() else {
                break;
            };
            let room = job.max_rows_per_file.saturating_sub(*rows).max(1) as usize;
            let take = room.min(batch.num_rows() - offset);
            w.write(&batch.slice(offset, take), job).await?;
            *rows += take as u64;
            offset += take;
            if *rows >= job.max_rows_per_file
                && let Some((w, name, rows)) = file.take()
            {
                let bytes = w.finish(job).await?;
                written.rows += rows;
                written.bytes += bytes;
                written.files.push((name, rows, bytes));
            }
        }
    }
    if file.is_none() && written.files.is_empty() {
        // An empty result still gets one file, so consumers see the schema.
        let name = format!("part-00000.{}", job.format.extension());
        let path = tmp.clone().join(name.as_str());
        let w = FileWriter::new(job, dest.store.clone(), path, schema.clone())?;
        file = Some((w, name, 0));
    }
    if let Some((w, name, rows)) = file.take() {
        let bytes = w.finish(job).await?;
        written.rows += rows;
        written.bytes += bytes;
        written.files.push((name, rows, bytes));
    }
    Ok(written)
}

fn write_err(job: &ExportJob, what: &str, e: impl std::fmt::Display) -> ExportError {
    ExportError::Write {
        job: job.name.clone(),
        what: what.to_string(),
        message: e.to_string(),
        transient: false,
    }
}

/// Writes one data file with bounded memory (multipart upload of 10 MiB parts).
enum FileWriter {
    Parquet(Box<AsyncArrowWriter<BufWriter>>),
    Csv {
        out: BufWriter,
        header: bool,
        bytes: u64,
    },
}

impl FileWriter {
    fn new(
        job: &ExportJob,
        store: Arc<dyn ObjectStore>,
        path: Path,
        schema: SchemaRef,
    ) -> Result<Self, ExportError> {
        let out = BufWriter::with_capacity(store, path, 10 * 1024 * 1024);
        Ok(match job.format {
            Format::Parquet => {
                let props = datafusion::parquet::file::properties::WriterProperties::builder()
                    .set_compression(datafusion::parquet::basic::Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(256 * 1024))
                    .build();
                let w = AsyncArrowWriter::try_new(out, schema, Some(props))
                    .map_err(|e| write_err(job, "starting a Parquet file", e))?;
                FileWriter::Parquet(Box::new(w))
            }
            Format::Csv => FileWriter::Csv {
                out,
                header: true,
                bytes: 0,
            },
        })
    }

    async fn write(&mut self, batch: &RecordBatch, job: &ExportJob) -> Result<(), ExportError> {
        match self {
            FileWriter::Parquet(w) => w
                .write(batch)
                .await
                .map_err(|e| store_or_write(job, "writing Parquet", e)),
            FileWriter::Csv { out, header, bytes } => {
                let mut buf = Vec::new();
                {
                    let mut w = datafusion::arrow::csv::WriterBuilder::new()
                        .with_header(*header)
                        .build(&mut buf);
                    w.write(batch)
                        .map_err(|e| write_err(job, "writing CSV", e))?;
                }
                *header = false;
                *bytes += buf.len() as u64;
                out.write_all(&buf)
                    .await
                    .map_err(|e| io_transient(job, "uploading CSV", e))
            }
        }
    }

    /// Completes the upload; returns the file's size.
    async fn finish(self, job: &ExportJob) -> Result<u64, ExportError> {
        match self {
            FileWriter::Parquet(mut w) => {
                w.finish()
                    .await
                    .map_err(|e| store_or_write(job, "uploading Parquet", e))?;
                Ok(w.bytes_written() as u64)
            }
            FileWriter::Csv { mut out, bytes, .. } => {
                out.shutdown()
                    .await
                    .map_err(|e| io_transient(job, "uploading CSV", e))?;
                Ok(bytes)
            }
        }
    }
}
fn io_transient(job: &ExportJob, what: &str, e: std::io::Error) -> ExportError {
    ExportError::Write {
        job: job.name.clone(),
        what: what.to_string(),
        message: e.to_string(),
        transient: true,
    }
}

/// Parquet errors that came from the store are transient (network, store down).
fn store_or_write(
    job: &ExportJob,
    what: &str,
    e: datafusion::parquet::errors::ParquetError,
) -> ExportError {
    let transient = matches!(e, datafusion::parquet::errors::ParquetError::External(_));
    ExportError::Write {
        job: job.name.clone(),
        what: what.to_string(),
        message: e.to_string(),
        transient,
    }
}

#[allow(clippy::too_many_arguments)]
fn manifest(
    job: &ExportJob,
    request: &RunRequest,
    run_id: &str,
    prepared: &Prepared,
    schema: &SchemaRef,
    written: &Written,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
) -> serde_json::Value {
    let query_sha256 = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        prepared.sql.as_bytes(),
    ));
    serde_json::json!({
        "job": job.name,
        "run_id": run_id,
        "slot": request.slot.to_string(),
        "as_of": request.as_of.to_string(),
        "trigger": request.trigger.name(),
        "format": job.format.extension(),
        "purpose": job.purpose,
        "rows": written.rows,
        "rows_excluded_no_consent": written.excluded,
        "consent_filtered": prepared.consent.is_some(),
        "columns_left_out": prepared.left_out,
        "bytes": written.bytes,
        "files": written.files.iter().map(|(name, rows, bytes)| serde_json::json!({"path": name, "rows": rows, "bytes": bytes})).collect::<Vec<_>>(),
        "schema": schema.fields().iter().map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()})).collect::<Vec<_>>(),
        "snapshot": prepared.snapshot,
        "query": prepared.sql,
        "query_sha256": query_sha256,
        "started_at": started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "finished_at": finished_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "rebuy_version": env!("CARGO_PKG_VERSION"),
    })
}

/// Moves the finished files into the slot, `_SUCCESS` last.
async fn publish(
    job: &ExportJob,
    dest: &Destination,
    tmp: &Path,
    slot: NaiveDate,
    written: &Written,
    manifest: serde_json::Value,
) -> Result<(), ExportError> {
    let slot_dir = format!("dt={slot}");
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| write_err(job, "writing the manifest", e))?;
    let store_err = |what: &'static str| {
        let job = job.name.clone();
        move |source: object_store::Error| ExportError::Store {
            job: job.clone(),
            what,
            source,
        }
    };
    if let Some(root) = &dest.local_root {
        // The manifest goes into the finished folder, which then replaces the slot at once.
        dest.store
            .put(&tmp.clone().join("_SUCCESS"), PutPayload::from(body))
            .await
            .map_err(store_err("writing the manifest"))?;
        let tmp_dir = root
            .join("_rebuy_tmp")
            .join(&job.name)
            .join(tmp.filename().unwrap_or_default());
        let job_dir = root.join(&job.name);
        let slot_path = job_dir.join(&slot_dir);
        let io = |what: &'static str| {
            let job = job.name.clone();
            move |e: std::io::Error| ExportError::Write {
                job: job.clone(),
                what: what.into(),
                message: e.to_string(),
                transient: true,
            }
        };
        std::fs::create_dir_all(&job_dir).map_err(io("creating the job folder"))?;
        if let Some((name, _, _)) = written
            .files
            .iter()
            .find(|(name, _, _)| !tmp_dir.join(name).is_file())
        {
            return Err(io("checking the files before publishing")(
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{name} is missing from the finished folder"),
                ),
            ));
        }
        let old = tmp_dir.with_extension("replaced");
        let had_old = slot_path.exists();
        if had_old {
            std::fs::rename(&slot_path, &old).map_err(io("moving the previous export aside"))?;
        }
        if let Err(e) = std::fs::rename(&tmp_dir, &slot_path) {
            if had_old {
                let _ = std::fs::rename(&old, &slot_path);
            }
            return Err(io("publishing the slot")(e));
        }
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        // Leave no empty scratch folders behind (they stay while another run uses them).
        if let Some(job_tmp) = tmp_dir.parent() {
            let _ = std::fs::remove_dir(job_tmp);
            if let Some(all_tmp) = job_tmp.parent() {
                let _ = std::fs::remove_dir(all_tmp);
            }
        }
        return Ok(());
    }
    let slot_path = dest.path(&[&job.name, &slot_dir]);
    let success = slot_path.clone().join("_SUCCESS");
    let existing: Vec<Path> = dest
        .store
        .list(Some(&slot_path))
        .map(|m| m.map(|m| m.location))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(store_err("listing the slot"))?;
    if existing.contains(&success) {
        dest.store
            .delete(&success)
            .await
            .map_err(store_err("removing the old manifest"))?;
    }
    let mut new_names = HashSet::new();
    for (name, _, _) in &written.files {
        let to = slot_path.clone().join(name.as_str());
        dest.store
            .rename(&tmp.clone().join(name.as_str()), &to)
            .await
            .map_err(store_err("moving a file into the slot"))?;
        new_names.insert(to);
    }
    for stale in existing
        .iter()
        .filter(|p| **p != success && !new_names.contains(*p))
    {
        dest.store
            .delete(stale)
            .await
            .map_err(store_err("removing a file of the previous export"))?;
    }
    // `_SUCCESS` promises every file it lists: each one is looked up in the slot first.
    for file in &new_names {
        dest.store
            .head(file)
            .await
            .map_err(store_err("checking a file before publishing"))?;
    }
    dest.store
        .put(&success, PutPayload::from(body))
        .await
        .map_err(store_err("writing the manifest"))?;
    remove_prefix(dest, tmp).await;
    Ok(())
}

/// Best-effort removal of everything under `prefix`.
async fn remove_prefix(dest: &Destination, prefix: &Path) {
    if let Some(root) = &dest.local_root {
        let rel: Vec<String> = prefix
            .prefix_match(&dest.prefix)
            .map(|parts| parts.map(|p| p.as_ref().to_string()).collect())
            .unwrap_or_default();
        if !rel.is_empty() {
            let dir = rel.iter().fold(root.clone(), |d, p| d.join(p));
            let _ = std::fs::remove_dir_all(dir);
        }
        return;
    }
    let found: Vec<_> = dest.store.list(Some(prefix)).collect().await;
    for meta in found.into_iter().flatten() {
        let _ = dest.store.delete(&meta.location).await;
    }
}
