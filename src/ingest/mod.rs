//! `rebuy ingest`: the only writer of warehouse data.
//!
//! An ingest runs in two phases:
//! 1. **Read and validate** ([`source`], [`rows`]): every input file is checked for its columns
//!    first (a missing required column fails the whole ingest before any row is read); then
//!    each row is validated against the data model. Good rows go to local staging Parquet files
//!    in a streaming fashion (memory stays bounded by one batch per file), bad rows to a rejects
//!    report with file, line, column, value and reason.
//! 2. **Commit** ([`commit`]): the staged rows are compared with the stored table by key and
//!    published as one Delta commit, or not at all.
//!
//! Only one ingest runs at a time per local data directory (a lock file); readers never wait.

pub mod commit;
pub mod currency;
pub mod parse;
pub mod rows;
pub mod source;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, Date32Array, Float64Array, StringArray};
use datafusion::error::DataFusionError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use deltalake::errors::DeltaTableError;

use crate::storage::{StorageError, TableKind, Warehouse};
use rows::{FxRates, RowProblem, RowSink};

/// What can make an ingest fail. A failed ingest has changed nothing in the warehouse.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{file}: {reason}")]
    Input { file: String, reason: String },
    #[error("{file}: missing required column '{column}' for table {table}")]
    MissingColumn {
        file: String,
        table: &'static str,
        column: String,
    },
    #[error("{rejected} row(s) rejected and --strict is set: nothing was written (reasons in {})", .rejects.display())]
    Strict { rejected: u64, rejects: PathBuf },
    #[error("{what}: {source}")]
    Engine {
        what: &'static str,
        #[source]
        source: Box<DataFusionError>,
    },
    #[error("committing to table {table} failed, the table is unchanged: {source}")]
    Commit {
        table: &'static str,
        #[source]
        source: Box<DeltaTableError>,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl IngestError {
    fn engine(what: &'static str) -> impl FnOnce(DataFusionError) -> IngestError {
        move |source| IngestError::Engine {
            what,
            source: Box::new(source),
        }
    }

    fn commit(table: TableKind, source: DeltaTableError) -> IngestError {
        IngestError::Commit {
            table: table.name(),
            source: Box::new(source),
        }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IngestError + '_ {
        move |source| IngestError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How to run an ingest.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Reject the whole batch if any row is bad.
    pub strict: bool,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// What an ingest did. `read = accepted + updated + unchanged + superseded + rejected`.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    pub table: Option<TableKind>,
    pub files: usize,
    pub read: u64,
    /// New keys, inserted.
    pub accepted: u64,
    /// Stored rows replaced by a row with other values.
    pub updated: u64,
    /// Rows identical to the stored ones.
    pub unchanged: u64,
    /// Rows overridden by a later row with the same key in the same ingest.
    pub superseded: u64,
    pub rejected: u64,
    pub rejects_file: Option<PathBuf>,
    /// Table version after the ingest.
    pub version: Option<u64>,
    pub committed: bool,
}

impl std::fmt::Display for IngestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = self.table.map_or("?", TableKind::name);
        write!(
            f,
            "{table}: {} rows read from {} file(s): {} accepted, {} updated, {} unchanged, {} rejected",
            self.read, self.files, self.accepted, self.updated, self.unchanged, self.rejected
        )?;
        if self.superseded > 0 {
            write!(
                f,
                ", {} superseded by later rows with the same key",
                self.superseded
            )?;
        }
        match (self.committed, self.version) {
            (true, Some(v)) => write!(f, "; committed as version {v}")?,
            (false, Some(v)) => write!(f, "; nothing to commit, table stays at version {v}")?,
            _ => write!(f, "; nothing to commit")?,
        }
        if let Some(r) = &self.rejects_file {
            write!(f, "\nrejected rows: {}", r.display())?;
        }
        Ok(())
    }
}

/// Removes a directory when dropped (staging of one ingest).
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Holds the data directory's ingest lock; other ingests wait, readers never do.
struct IngestLock(#[allow(dead_code)] File);

fn lock(staging_root: &Path) -> Result<IngestLock, IngestError> {
    std::fs::create_dir_all(staging_root).map_err(IngestError::io(staging_root))?;
    let path = staging_root.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(IngestError::io(&path))?;
    if file.try_lock().is_err() {
        tracing::info!("waiting for another ingest into this data directory to finish");
        file.lock().map_err(IngestError::io(&path))?;
    }
    // Holding the lock, no other ingest runs: scratch folders left by killed ones can go.
    if let Ok(entries) = std::fs::read_dir(staging_root) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(IngestLock(file))
}

/// A column of a query result as plain strings, whatever string layout the engine chose
/// (DataFusion hands out `Utf8View` by default).
pub(crate) fn strings(array: &datafusion::arrow::array::ArrayRef) -> Option<StringArray> {
    datafusion::arrow::compute::cast(array, &datafusion::arrow::datatypes::DataType::Utf8)
        .ok()?
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
}

/// Loads the stored daily exchange rates (for `amount_usd` of orders).
pub async fn load_fx(warehouse: &Warehouse) -> Result<FxRates, IngestError> {
    let mut fx = FxRates::default();
    let table = warehouse.table(TableKind::FxRates).await?;
    if table.version().is_none() {
        return Ok(fx);
    }
    let ctx = datafusion::prelude::SessionContext::new();
    let provider = table
        .table_provider()
        .await
        .map_err(IngestError::engine("reading fx_rates"))?;
    ctx.register_table("fx_rates", provider)
        .map_err(IngestError::engine("reading fx_rates"))?;
    let batches = ctx
        .sql("SELECT currency, rate_date, to_usd FROM fx_rates")
        .await
        .map_err(IngestError::engine("reading fx_rates"))?
        .collect()
        .await
        .map_err(IngestError::engine("reading fx_rates"))?;
    for b in &batches {
        let (Some(c), Some(d), Some(r)) = (
            strings(b.column(0)),
            b.column(1).as_any().downcast_ref::<Date32Array>(),
            b.column(2).as_any().downcast_ref::<Float64Array>(),
        ) else {
            continue;
        };
        for i in 0..b.num_rows() {
            if !(c.is_null(i) || d.is_null(i) || r.is_null(i)) {
                fx.insert(c.value(i), d.value(i), r.value(i));
            }
        }
    }
    fx.seal();
    Ok(fx)
}

/// Writes one lane's rejected rows as CSV with their input sequence number; the lanes' files
/// are merged into the rejects report by [`merge_rejects`].
struct RejectWriter {
    path: PathBuf,
    out: Option<csv::Writer<BufWriter<File>>>,
    count: u64,
}

impl RejectWriter {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            out: None,
            count: 0,
        }
    }

    fn add(
        &mut self,
        seq: u64,
        source: &str,
        line: u64,
        p: &RowProblem,
    ) -> Result<(), IngestError> {
        if self.out.is_none() {
            let file = File::create(&self.path).map_err(IngestError::io(&self.path))?;
            self.out = Some(csv::Writer::from_writer(BufWriter::new(file)));
        }
        if let Some(w) = self.out.as_mut() {
            w.write_record([
                seq.to_string().as_str(),
                source,
                &line.to_string(),
                &p.column,
                &p.value,
                &p.reason,
            ])
            .map_err(|e| IngestError::io(&self.path)(e.into()))?;
        }
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<Option<PathBuf>, IngestError> {
        match self.out.take() {
            Some(mut w) => {
                w.flush().map_err(IngestError::io(&self.path))?;
                Ok(Some(self.path.clone()))
            }
            None => Ok(None),
        }
    }
}

/// Merges the lanes' reject files (each in input order) into one report in input order:
/// source, line, column, value, reason. Streams; memory does not grow with the rejects.
fn merge_rejects(parts: &[PathBuf], dest: &Path) -> Result<Option<PathBuf>, IngestError> {
    if parts.is_empty() {
        return Ok(None);
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(IngestError::io(dir))?;
    }
    let csv_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: csv::Error| IngestError::Io {
            path,
            source: e.into(),
        }
    };
    let mut readers = Vec::new();
    for p in parts {
        let r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(p)
            .map_err(csv_err(p))?;
        readers.push(r.into_records());
    }
    let mut heads: Vec<Option<csv::StringRecord>> = Vec::new();
    for (r, p) in readers.iter_mut().zip(parts) {
        heads.push(r.next().transpose().map_err(csv_err(p))?);
    }
    let file = File::create(dest).map_err(IngestError::io(dest))?;
    let mut out = csv::Writer::from_writer(BufWriter::new(file));
    out.write_record(["source", "line", "column", "value", "reason"])
        .map_err(csv_err(dest))?;
    let seq_of = |r: &csv::StringRecord| r.get(0).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    loop {
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|r| (seq_of(r), i)))
            .min();
        let Some((_, i)) = next else { break };
        if let Some(rec) = heads[i].take() {
            out.write_record(rec.iter().skip(1))
                .map_err(csv_err(dest))?;
        }
        heads[i] = readers[i].next().transpose().map_err(csv_err(&parts[i]))?;
    }
    out.flush().map_err(IngestError::io(dest))?;
    Ok(Some(dest.to_path_buf()))
}

/// Streams validated rows into staging Parquet files of bounded size.
struct StagingWriter {
    dir: PathBuf,
    /// Distinguishes the files of parallel lanes.
    prefix: usize,
    writer: Option<ArrowWriter<File>>,
    files: usize,
    rows_in_file: usize,
}

const ROWS_PER_BATCH: usize = 65_536;
const ROWS_PER_STAGING_FILE: usize = 2_000_000;

impl StagingWriter {
    fn write(&mut self, sink: &mut RowSink) -> Result<(), IngestError> {
        if sink.is_empty() {
            return Ok(());
        }
        let batch = sink
            .finish()
            .map_err(|e| IngestError::engine("building a batch")(e.into()))?;
        if self.writer.is_none() {
            let path = self
                .dir
                .join(format!("part-{}-{:05}.parquet", self.prefix, self.files));
            let file = File::create(&path).map_err(IngestError::io(&path))?;
            // Staging files live for one ingest: no compression, no dictionaries (most key
            // and hash columns are unique, where dictionary building is wasted work).
            let props = WriterProperties::builder()
                .set_compression(Compression::UNCOMPRESSED)
                .set_dictionary_enabled(false)
                // A row group is buffered in memory until written: keep it small.
                .set_max_row_group_row_count(Some(ROWS_PER_BATCH * 2))
                .build();
            let w = ArrowWriter::try_new(file, batch.schema(), Some(props))
                .map_err(|e| IngestError::engine("staging rows")(e.into()))?;
            self.writer = Some(w);
            self.files += 1;
        }
        if let Some(w) = self.writer.as_mut() {
            w.write(&batch)
                .map_err(|e| IngestError::engine("staging rows")(e.into()))?;
        }
        self.rows_in_file += batch.num_rows();
        if self.rows_in_file >= ROWS_PER_STAGING_FILE {
            self.close()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), IngestError> {
        if let Some(w) = self.writer.take() {
            w.close()
                .map_err(|e| IngestError::engine("staging rows")(e.into()))?;
        }
        self.rows_in_file = 0;
        Ok(())
    }
}

struct ReadOutcome {
    read: u64,
    rejected: u64,
    rejects_file: Option<PathBuf>,
    /// True when the accepted rows' key hashes are all different: their keys are distinct.
    keys_distinct: bool,
}

/// True when no two of the hashes are equal (sorts them).
fn all_distinct(hashes: &mut [u64]) -> bool {
    hashes.sort_unstable();
    hashes.windows(2).all(|w| w[0] != w[1])
}

/// One validation lane: its own validator, staging files and rejects. CSV inputs are spread
/// over several lanes running in parallel; other formats use the first.
struct Lane {
    sink: RowSink,
    staging: StagingWriter,
    rejects: RejectWriter,
}

impl Lane {
    fn new(
        index: usize,
        table: TableKind,
        fx: Arc<FxRates>,
        staged: &Path,
        scratch: &Path,
    ) -> Self {
        Lane {
            sink: RowSink::new(table, fx),
            staging: StagingWriter {
                dir: staged.to_path_buf(),
                prefix: index,
                writer: None,
                files: 0,
                rows_in_file: 0,
            },
            rejects: RejectWriter::new(scratch.join(format!("rejects-{index}.csv"))),
        }
    }

    fn row(
        &mut self,
        source: &str,
        row: Result<&[Option<&str>], RowProblem>,
        line: u64,
        seq: u64,
    ) -> Result<(), IngestError> {
        let outcome = match row {
            Ok(fields) => self.sink.push(fields, seq),
            Err(p) => Err(p),
        };
        if let Err(problem) = outcome {
            self.rejects.add(seq, source, line, &problem)?;
        }
        if self.sink.len() >= ROWS_PER_BATCH {
            self.staging.write(&mut self.sink)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(u64, Option<PathBuf>), IngestError> {
        self.staging.write(&mut self.sink)?;
        self.staging.close()?;
        Ok((self.rejects.count, self.rejects.finish()?))
    }
}

/// Records per chunk handed from the CSV splitter to the lanes.
const CHUNK_ROWS: usize = 8192;

/// Number of parallel validation lanes for CSV (the machine's cores, at most 8).
fn lane_count() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8)
}

/// Reads one CSV file with the calling thread splitting records and every lane validating
/// chunks of them in parallel. Returns the number of records.
fn read_csv_parallel(
    file: &source::InputFile,
    table: TableKind,
    lanes: &mut [Lane],
    seq: &mut u64,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<u64, IngestError> {
    use std::sync::mpsc::sync_channel;
    let mut input = source::open_csv(file, table)?;
    let header = input.header.clone();
    let mapping = input.mapping.clone();
    type Chunk = Vec<(csv::ByteRecord, u64, u64)>;
    let (tx, rx) = sync_channel::<Chunk>(lanes.len() * 2);
    let rx = std::sync::Mutex::new(rx);
    // Lanes hand emptied chunks back, so record buffers are reused rather than reallocated.
    let (back_tx, back_rx) = sync_channel::<Chunk>(lanes.len() * 4);
    let mut rows = 0u64;
    let results: Vec<Result<(), IngestError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .iter_mut()
            .map(|lane| {
                let rx = &rx;
                let header = &header;
                let mapping = &mapping;
                let back_tx = back_tx.clone();
                scope.spawn(move || -> Result<(), IngestError> {
                    loop {
                        let chunk = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return Ok(()),
                        };
                        let Ok(chunk) = chunk else { return Ok(()) };
                        for (record, line, s) in &chunk {
                            match source::fields_of(record, header, mapping) {
                                Ok(fields) => lane.row(&file.display, Ok(&fields), *line, *s)?,
                                Err(p) => lane.row(&file.display, Err(p), *line, *s)?,
                            }
                        }
                        let _ = back_tx.try_send(chunk);
                    }
                })
            })
            .collect();
        drop(back_tx);
        let mut split = || -> Result<(), IngestError> {
            let fresh = || -> Chunk { Vec::with_capacity(CHUNK_ROWS) };
            let mut chunk: Chunk = fresh();
            // Records of a returned chunk, refilled in place.
            let mut spare: Vec<csv::ByteRecord> = Vec::new();
            loop {
                let mut record = spare.pop().unwrap_or_default();
                if !input.next_record(file, &mut record)? {
                    break;
                }
                rows += 1;
                *seq += 1;
                let line = record.position().map_or(rows + 1, |p| p.line());
                chunk.push((record, line, *seq));
                if chunk.len() == CHUNK_ROWS {
                    if spare.is_empty()
                        && let Ok(returned) = back_rx.try_recv()
                    {
                        spare.extend(returned.into_iter().map(|(r, _, _)| r));
                    }
                    let full = std::mem::replace(&mut chunk, fresh());
                    if tx.send(full).is_err() {
                        // Every lane stopped: their errors say why.
                        return Ok(());
                    }
                    if rows.is_multiple_of(CHUNK_ROWS as u64 * 8) {
                        on_bytes(input.reader.position().byte());
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            Ok(())
        };
        let split_result = split();
        drop(tx);
        let mut results = vec![split_result];
        for h in handles {
            results.push(h.join().unwrap_or_else(|_| {
                Err(IngestError::Input {
                    file: file.display.clone(),
                    reason: "a validation thread failed".into(),
                })
            }));
        }
        results
    });
    for r in results {
        r?;
    }
    on_bytes(file.size);
    Ok(rows)
}

/// Phase 1, synchronous: read every file, validate, stage.
fn read_and_stage(
    table: TableKind,
    files: &[source::InputFile],
    fx: Arc<FxRates>,
    scratch: &Path,
    staged: &Path,
    rejects_path: PathBuf,
    progress: bool,
) -> Result<ReadOutcome, IngestError> {
    std::fs::create_dir_all(staged).map_err(IngestError::io(staged))?;
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(total_bytes);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("ingest {table}"));
        Some(bar)
    } else {
        None
    };
    let mut lanes: Vec<Lane> = (0..lane_count())
        .map(|i| Lane::new(i, table, fx.clone(), staged, scratch))
        .collect();
    let mut read = 0u64;
    let mut seq = 0u64;
    let mut bytes_before = 0u64;
    let mut last_log = std::time::Instant::now();
    for file in files {
        let mut on_bytes = |b: u64| {
            if let Some(bar) = &bar {
                bar.set_position(bytes_before + b);
            } else if last_log.elapsed().as_secs() >= 5 {
                last_log = std::time::Instant::now();
                tracing::info!(
                    "ingest {table}: {} of {} MiB read",
                    (bytes_before + b) >> 20,
                    total_bytes >> 20
                );
            }
        };
        if file.format == source::Format::Csv {
            read += read_csv_parallel(file, table, &mut lanes, &mut seq, &mut on_bytes)?;
        } else {
            let lane = &mut lanes[0];
            let mut on_row = |row: Result<&[Option<&str>], RowProblem>, line: u64| {
                seq += 1;
                lane.row(&file.display, row, line, seq)
            };
            read += source::read_rows(file, table, &mut on_row, &mut on_bytes)?;
        }
        bytes_before += file.size;
    }
    let mut rejected = 0;
    let mut parts = Vec::new();
    let mut hashes: Vec<u64> = Vec::new();
    for lane in &mut lanes {
        let (n, part) = lane.finish()?;
        rejected += n;
        parts.extend(part);
        hashes.append(&mut lane.sink.take_key_hashes());
    }
    let keys_distinct = all_distinct(&mut hashes);
    drop(hashes);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(ReadOutcome {
        read,
        rejected,
        rejects_file: merge_rejects(&parts, &rejects_path)?,
        keys_distinct,
    })
}

/// Validates and loads `inputs` (paths, directories or URLs) into `table`.
pub async fn ingest(
    warehouse: &Warehouse,
    table: TableKind,
    inputs: &[String],
    options: &IngestOptions,
) -> Result<IngestReport, IngestError> {
    let staging_root = warehouse.staging_dir();
    let _lock = lock(&staging_root)?;
    let scratch = ScratchDir(staging_root.join(uuid::Uuid::new_v4().to_string()));
    std::fs::create_dir_all(&scratch.0).map_err(IngestError::io(&scratch.0))?;

    let files = source::resolve(inputs, &scratch.0).await?;
    let fx = Arc::new(if table.converts_to_usd() {
        load_fx(warehouse).await?
    } else {
        FxRates::default()
    });
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let rejects_path = warehouse.rejects_dir().join(format!(
        "{}-{stamp}-{}.csv",
        table.name(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let staged = scratch.0.join("staged");
    let progress = options.progress;
    let phase = std::time::Instant::now();
    let read = {
        let files = files.clone();
        let staged = staged.clone();
        let scratch_dir = scratch.0.clone();
        tokio::task::spawn_blocking(move || {
            read_and_stage(
                table,
                &files,
                fx,
                &scratch_dir,
                &staged,
                rejects_path,
                progress,
            )
        })
        .await
        .map_err(|e| IngestError::Input {
            file: inputs.join(", "),
            reason: format!("reader task failed: {e}"),
        })??
    };
    tracing::debug!(
        "{table}: read and validated {} rows in {:.2}s",
        read.read,
        phase.elapsed().as_secs_f64()
    );
    let phase = std::time::Instant::now();
    let mut report = IngestReport {
        table: Some(table),
        files: files.len(),
        read: read.read,
        rejected: read.rejected,
        rejects_file: read.rejects_file.clone(),
        ..Default::default()
    };
    if options.strict && read.rejected > 0 {
        return Err(IngestError::Strict {
            rejected: read.rejected,
            rejects: read.rejects_file.unwrap_or_default(),
        });
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("rebuy.operation".into(), "ingest".into());
    metadata.insert(
        "rebuy.sources".into(),
        serde_json::Value::Array(files.iter().map(|f| f.display.clone().into()).collect()),
    );
    metadata.insert("rebuy.rows_read".into(), read.read.into());
    metadata.insert("rebuy.rows_rejected".into(), read.rejected.into());
    let outcome = if read.read > read.rejected {
        let known_distinct = read.keys_distinct.then_some(read.read - read.rejected);
        commit::commit(
            warehouse,
            table,
            &staged,
            &scratch.0,
            known_distinct,
            metadata,
        )
        .await?
    } else {
        commit::CommitOutcome {
            version: warehouse.version(table).await?,
            ..Default::default()
        }
    };
    tracing::debug!(
        "{table}: commit phase {:.2}s",
        phase.elapsed().as_secs_f64()
    );
    report.accepted = outcome.accepted;
    report.updated = outcome.updated;
    report.unchanged = outcome.unchanged;
    report.superseded = outcome.superseded;
    report.version = outcome.version;
    report.committed = outcome.committed;
    if table == TableKind::Orders {
        // The customer summary follows the orders; if this fails the views compute from
        // orders until the next ingest rewrites it.
        let phase = std::time::Instant::now();
        let change = match (
            outcome.committed,
            outcome.version,
            outcome.touched_customers,
        ) {
            (true, Some(v), Some(customers)) if v > 0 => Some(crate::summary::OrdersChange {
                from_version: v - 1,
                customers,
            }),
            _ => None,
        };
        match crate::summary::refresh_after(warehouse, change).await {
            Ok(crate::summary::Refresh::Current) => {}
            Ok(how) => tracing::debug!(
                "customer summary {how:?} in {:.2}s",
                phase.elapsed().as_secs_f64()
            ),
            Err(e) => tracing::warn!("customer summary not updated (views read orders): {e}"),
        }
    }
    Ok(report)
}
