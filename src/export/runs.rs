//! The record of export runs: a Delta table `export_run_log` in the data directory with one
//! row when a run starts and one when it ends (or is found interrupted). SQL sees the latest
//! row of each run as the view `export_runs`.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::protocol::SaveMode;

use super::ExportError;
use crate::storage::Warehouse;

pub const TABLE: &str = "export_run_log";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    Interrupted,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }
}

/// One row of the log.
#[derive(Debug, Clone)]
pub struct RunEvent {
    pub run_id: String,
    pub job: String,
    pub slot: NaiveDate,
    pub as_of: NaiveDate,
    /// schedule, catch-up or manual
    pub trigger: String,
    pub status: Status,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub rows: i64,
    pub rows_excluded: i64,
    pub bytes: i64,
    pub files: i32,
    pub destination: String,
    pub error: Option<String>,
    pub host: String,
    pub pid: i32,
}

pub fn schema() -> SchemaRef {
    let ts = crate::storage::schema::utc_timestamp();
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("event_seq", DataType::Int32, false),
        Field::new("job", DataType::Utf8, false),
        Field::new("slot", DataType::Date32, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("trigger", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("started_at", ts.clone(), false),
        Field::new("finished_at", ts, true),
        Field::new("attempts", DataType::Int32, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("rows_excluded", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
        Field::new("files", DataType::Int32, false),
        Field::new("destination", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("host", DataType::Utf8, false),
        Field::new("pid", DataType::Int32, false),
    ]))
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::default()).num_days() as i32 // NaiveDate::default() is 1970-01-01
}

fn batch(events: &[RunEvent]) -> Result<RecordBatch, ExportError> {
    let s = |f: &dyn Fn(&RunEvent) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(events.iter().map(f)))
    };
    let micros = |t: &DateTime<Utc>| t.timestamp_micros();
    let columns: Vec<ArrayRef> = vec![
        s(&|e| e.run_id.clone()),
        Arc::new(Int32Array::from_iter_values(
            events
                .iter()
                .map(|e| i32::from(e.status != Status::Running)),
        )),
        s(&|e| e.job.clone()),
        Arc::new(Date32Array::from_iter_values(
            events.iter().map(|e| days(e.slot)),
        )),
        Arc::new(Date32Array::from_iter_values(
            events.iter().map(|e| days(e.as_of)),
        )),
        s(&|e| e.trigger.clone()),
        s(&|e| e.status.name().to_string()),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                events.iter().map(|e| micros(&e.started_at)),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from(
                events
                    .iter()
                    .map(|e| e.finished_at.as_ref().map(micros))
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(Int32Array::from_iter_values(
            events.iter().map(|e| e.attempts),
        )),
        Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.rows))),
        Arc::new(Int64Array::from_iter_values(
            events.iter().map(|e| e.rows_excluded),
        )),
        Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.bytes))),
        Arc::new(Int32Array::from_iter_values(events.iter().map(|e| e.files))),
        s(&|e| e.destination.clone()),
        Arc::new(StringArray::from(
            events.iter().map(|e| e.error.clone()).collect::<Vec<_>>(),
        )),
        s(&|e| e.host.clone()),
        Arc::new(Int32Array::from_iter_values(events.iter().map(|e| e.pid))),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| ExportError::Log(e.to_string()))
}

/// Appends events to the log (one Delta commit). Concurrent appends from other processes are
/// resolved by Delta's optimistic concurrency.
pub async fn append(warehouse: &Warehouse, events: &[RunEvent]) -> Result<(), ExportError> {
    if events.is_empty() {
        return Ok(());
    }
    let table = warehouse.table_named(TABLE).await?;
    table
        .write(vec![batch(events)?])
        .with_save_mode(SaveMode::Append)
        .with_table_name(TABLE)
        .await
        .map_err(|e| ExportError::Log(e.to_string()))?;
    Ok(())
}

/// This machine's name, to tell whose runs are whose.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether a process of this machine is still alive (Linux: /proc; elsewhere assumed alive).
fn process_alive(pid: i32) -> bool {
    if pid as u32 == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Runs of this machine still marked running whose process is gone (killed, crashed) are
/// recorded as interrupted. Returns how many.
pub async fn mark_interrupted(
    warehouse: &Warehouse,
    now: DateTime<Utc>,
) -> Result<usize, ExportError> {
    let stuck = latest(warehouse, "status = 'running'").await?;
    let host = host_name();
    let events: Vec<RunEvent> = stuck
        .into_iter()
        .filter(|e| e.host == host && !process_alive(e.pid))
        .map(|mut e| {
            e.status = Status::Interrupted;
            e.finished_at = Some(now);
            e.error = Some("the process running the export stopped before it finished".into());
            e
        })
        .collect();
    append(warehouse, &events).await?;
    Ok(events.len())
}

/// The latest event of each run that passes `filter` (SQL over the log's columns).
pub async fn latest(warehouse: &Warehouse, filter: &str) -> Result<Vec<RunEvent>, ExportError> {
    let Some(table) = warehouse.existing_table_named(TABLE).await? else {
        return Ok(vec![]);
    };
    let ctx = datafusion::prelude::SessionContext::new();
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| ExportError::Log(e.to_string()))?;
    let provider = table
        .table_provider()
        .await
        .map_err(|e| ExportError::Log(e.to_string()))?;
    ctx.register_table(TABLE, provider)
        .map_err(|e| ExportError::Log(e.to_string()))?;
    let sql = format!(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY event_seq DESC) \
         AS rn FROM {TABLE}) WHERE rn = 1 AND ({filter}) ORDER BY started_at"
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(|e| ExportError::Log(e.to_string()))?
        .collect()
        .await
        .map_err(|e| ExportError::Log(e.to_string()))?;
    let mut out = Vec::new();
    for b in &batches {
        out.extend(events_of(b)?);
    }
    Ok(out)
}

fn events_of(b: &RecordBatch) -> Result<Vec<RunEvent>, ExportError> {
    fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T, ExportError> {
        b.column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| ExportError::Log(format!("column {name} has an unexpected type")))
    }
    // Text may come back as Utf8View from the Parquet reader; read it as plain Utf8.
    let as_utf8 = |name: &str| -> Result<StringArray, ExportError> {
        let c = b
            .column_by_name(name)
            .ok_or_else(|| ExportError::Log(format!("column {name} is missing")))?;
        let c = datafusion::arrow::compute::cast(c, &DataType::Utf8)
            .map_err(|e| ExportError::Log(e.to_string()))?;
        c.as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| ExportError::Log(format!("column {name} is not text")))
    };
    let (run_id, job, trigger, status, destination, error, host) = (
        &as_utf8("run_id")?,
        &as_utf8("job")?,
        &as_utf8("trigger")?,
        &as_utf8("status")?,
        &as_utf8("destination")?,
        &as_utf8("error")?,
        &as_utf8("host")?,
    );
    let slot = col::<Date32Array>(b, "slot")?;
    let as_of = col::<Date32Array>(b, "as_of")?;
    let started = col::<TimestampMicrosecondArray>(b, "started_at")?;
    let finished = col::<TimestampMicrosecondArray>(b, "finished_at")?;
    let i32s = |n: &str| col::<Int32Array>(b, n);
    let i64s = |n: &str| col::<Int64Array>(b, n);
    let (attempts, files, pid) = (i32s("attempts")?, i32s("files")?, i32s("pid")?);
    let (rows, excluded, bytes) = (i64s("rows")?, i64s("rows_excluded")?, i64s("bytes")?);
    let date = |d: i32| NaiveDate::default() + chrono::Days::new(d.max(0) as u64);
    let ts = |m: i64| DateTime::<Utc>::from_timestamp_micros(m).unwrap_or_default();
    use datafusion::arrow::array::Array;
    Ok((0..b.num_rows())
        .map(|i| RunEvent {
            run_id: run_id.value(i).to_string(),
            job: job.value(i).to_string(),
            slot: date(slot.value(i)),
            as_of: date(as_of.value(i)),
            trigger: trigger.value(i).to_string(),
            status: match status.value(i) {
                "succeeded" => Status::Succeeded,
                "failed" => Status::Failed,
                "interrupted" => Status::Interrupted,
                _ => Status::Running,
            },
            started_at: ts(started.value(i)),
            finished_at: (!finished.is_null(i)).then(|| ts(finished.value(i))),
            attempts: attempts.value(i),
            rows: rows.value(i),
            rows_excluded: excluded.value(i),
            bytes: bytes.value(i),
            files: files.value(i),
            destination: destination.value(i).to_string(),
            error: (!error.is_null(i)).then(|| error.value(i).to_string()),
            host: host.value(i).to_string(),
            pid: pid.value(i),
        })
        .collect())
}
