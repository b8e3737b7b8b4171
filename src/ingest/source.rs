//! Input files: resolving paths and URLs to local files, recognising their format, checking
//! their columns against the table contract, and handing their rows out as text fields.
//!
//! Every format is reduced to text fields in the order of [`TableKind::input_columns`], so that
//! one validator ([`super::rows::RowSink`]) applies the data model's rules to all of them.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::StreamExt;
use object_store::ObjectStoreExt;

use super::IngestError;
use super::rows::RowProblem;
use crate::storage::TableKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    Ndjson,
}

/// One input file, available on local disk.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// What the user named (path or URL), for messages and the rejects file.
    pub display: String,
    pub local: PathBuf,
    pub format: Format,
    pub size: u64,
}

/// Resolves the arguments of `rebuy ingest` to input files: local files, every supported file
/// of a local directory (sorted by name), and object-store URLs (downloaded to `staging`).
pub async fn resolve(inputs: &[String], staging: &Path) -> Result<Vec<InputFile>, IngestError> {
    let mut files = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        if input.contains("://") && !input.starts_with("file://") {
            let local = staging.join(format!("download-{i}"));
            download(input, &local).await?;
            files.push(describe(input.clone(), local)?);
            continue;
        }
        let path = match input.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(input),
        };
        let meta = std::fs::metadata(&path).map_err(|e| IngestError::Input {
            file: input.clone(),
            reason: format!("cannot read: {e}"),
        })?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| IngestError::Input {
                    file: input.clone(),
                    reason: e.to_string(),
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && format_from_extension(p).is_some())
                .collect();
            entries.sort();
            if entries.is_empty() {
                return Err(IngestError::Input {
                    file: input.clone(),
                    reason: "directory holds no .csv, .parquet or .ndjson files".into(),
                });
            }
            for p in entries {
                files.push(describe(p.display().to_string(), p)?);
            }
        } else {
            files.push(describe(input.clone(), path)?);
        }
    }
    Ok(files)
}

async fn download(url_text: &str, local: &Path) -> Result<(), IngestError> {
    let fail = |reason: String| IngestError::Input {
        file: url_text.to_string(),
        reason,
    };
    let url = url::Url::parse(url_text).map_err(|e| fail(format!("not a valid URL: {e}")))?;
    let options = crate::storage::cloud_options_from_env();
    let (store, path) = object_store::parse_url_opts(&url, options)
        .map_err(|e| fail(format!("unusable URL: {e}")))?;
    let result = store.get(&path).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => fail("cannot read: not found".into()),
        other => fail(format!("cannot read: {}", first_line(&other.to_string()))),
    })?;
    let mut out = tokio::fs::File::create(local)
        .await
        .map_err(|e| fail(format!("cannot stage a local copy: {e}")))?;
    let mut stream = result.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| fail(format!("read failed: {e}")))?;
        tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
            .await
            .map_err(|e| fail(format!("cannot stage a local copy: {e}")))?;
    }
    tokio::io::AsyncWriteExt::flush(&mut out)
        .await
        .map_err(|e| fail(format!("cannot stage a local copy: {e}")))?;
    Ok(())
}

/// Object-store errors can carry a whole XML response body; the first line says what matters.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

fn format_from_extension(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.split('?').next().unwrap_or(&name).to_string();
    if name.ends_with(".csv") {
        Some(Format::Csv)
    } else if name.ends_with(".parquet") || name.ends_with(".pq") {
        Some(Format::Parquet)
    } else if name.ends_with(".ndjson") || name.ends_with(".jsonl") || name.ends_with(".json") {
        Some(Format::Ndjson)
    } else {
        None
    }
}

/// Recognises the format by the name, checked against the content: a `.parquet` file must
/// carry Parquet's magic bytes, a text format must not.
fn describe(display: String, local: PathBuf) -> Result<InputFile, IngestError> {
    let fail = |reason: String| IngestError::Input {
        file: display.clone(),
        reason,
    };
    let size = std::fs::metadata(&local)
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    let mut head = [0u8; 4];
    let n = File::open(&local)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    let is_parquet = n == 4 && &head == b"PAR1";
    let by_name =
        format_from_extension(Path::new(&display)).or_else(|| format_from_extension(&local));
    let format = match by_name {
        Some(Format::Parquet) if !is_parquet => {
            return Err(fail("named .parquet but is not a Parquet file".into()));
        }
        Some(f @ (Format::Csv | Format::Ndjson)) if is_parquet => {
            return Err(fail(format!(
                "named as {} but is a Parquet file",
                if f == Format::Csv { "CSV" } else { "NDJSON" }
            )));
        }
        Some(f) => f,
        None if is_parquet => Format::Parquet,
        None => {
            return Err(fail(
                "unsupported file type: expected .csv (with a header), .parquet or .ndjson".into(),
            ));
        }
    };
    if size == 0 {
        return Err(fail(match format {
            Format::Csv => "empty file: a CSV input needs at least a header row".into(),
            _ => "empty file".into(),
        }));
    }
    Ok(InputFile {
        display,
        local,
        format,
        size,
    })
}

/// What a reader hands to the validator for each row: its text fields, or why the row could
/// not even be split into fields; with its line (text formats) or row number (Parquet).
pub type RowCallback<'a> =
    dyn FnMut(Result<&[Option<&str>], RowProblem>, u64) -> Result<(), IngestError> + 'a;

/// Maps input column names (case-insensitive, trimmed) to positions in the table's input
/// columns; fails on a missing required column or a duplicated one.
fn map_columns(
    file: &InputFile,
    table: TableKind,
    names: &[String],
) -> Result<Vec<Option<usize>>, IngestError> {
    let wanted = table.input_columns();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        let key = n.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
        if seen.insert(key.clone(), i).is_some() {
            return Err(IngestError::Input {
                file: file.display.clone(),
                reason: format!("column '{key}' appears twice"),
            });
        }
    }
    for c in wanted.iter().filter(|c| c.required) {
        if !seen.contains_key(&c.name) {
            return Err(IngestError::MissingColumn {
                file: file.display.clone(),
                table: table.name(),
                column: c.name.clone(),
            });
        }
    }
    Ok(wanted.iter().map(|c| seen.get(&c.name).copied()).collect())
}

/// Reads every row of an NDJSON or Parquet `file`, calling `on_row` for each, and `on_bytes` with the bytes consumed
/// so far (for progress). Returns the number of rows.
pub fn read_rows(
    file: &InputFile,
    table: TableKind,
    on_row: &mut RowCallback<'_>,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<u64, IngestError> {
    match file.format {
        // CSV is split across parallel validation lanes by the ingest itself (`open_csv`).
        Format::Csv => Err(IngestError::Input {
            file: file.display.clone(),
            reason: "CSV inputs are read with open_csv".into(),
        }),
        Format::Ndjson => read_ndjson(file, table, on_row, on_bytes),
        Format::Parquet => read_parquet(file, table, on_row, on_bytes),
    }
}

/// Opens a CSV input and checks its header: the reader positioned at the first record, the
/// header names and the mapping of input columns to header positions.
pub fn open_csv(file: &InputFile, table: TableKind) -> Result<CsvInput, IngestError> {
    let fail = |reason: String| IngestError::Input {
        file: file.display.clone(),
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_path(&file.local)
        .map_err(|e| fail(e.to_string()))?;
    let header: Vec<String> = reader
        .byte_headers()
        .map_err(|e| fail(format!("cannot read the header: {e}")))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    let mapping = map_columns(file, table, &header)?;
    Ok(CsvInput {
        reader,
        header,
        mapping,
    })
}

/// A CSV input whose header has been checked.
pub struct CsvInput {
    pub reader: csv::Reader<File>,
    pub header: Vec<String>,
    pub mapping: Vec<Option<usize>>,
}

impl CsvInput {
    /// The next record and its line, `None` at the end; a malformed file is an error.
    pub fn next_record(
        &mut self,
        file: &InputFile,
        record: &mut csv::ByteRecord,
    ) -> Result<bool, IngestError> {
        self.reader.read_byte_record(record).map_err(|e| {
            // csv reports an error at a position; it cannot resynchronise reliably.
            let line = e.position().map_or(0, |p| p.line());
            IngestError::Input {
                file: file.display.clone(),
                reason: format!("malformed CSV at line {line}: {e}"),
            }
        })
    }

    /// The text fields of one record in the table's input-column order.
    pub fn fields<'r>(
        &self,
        record: &'r csv::ByteRecord,
    ) -> Result<Vec<Option<&'r str>>, RowProblem> {
        fields_of(record, &self.header, &self.mapping)
    }
}

/// The text fields of one record in the table's input-column order, or why the row cannot be
/// split into them.
pub fn fields_of<'r>(
    record: &'r csv::ByteRecord,
    header: &[String],
    mapping: &[Option<usize>],
) -> Result<Vec<Option<&'r str>>, RowProblem> {
    if record.len() != header.len() {
        return Err(RowProblem {
            column: "*".into(),
            value: String::new(),
            reason: format!(
                "row has {} fields, the header has {}",
                record.len(),
                header.len()
            ),
        });
    }
    let mut fields = Vec::with_capacity(mapping.len());
    for m in mapping {
        match m {
            Some(i) => match std::str::from_utf8(&record[*i]) {
                Ok(s) => fields.push(Some(s)),
                Err(_) => {
                    return Err(RowProblem {
                        column: header[*i].clone(),
                        value: String::new(),
                        reason: "not valid UTF-8".into(),
                    });
                }
            },
            None => fields.push(None),
        }
    }
    Ok(fields)
}

fn read_ndjson(
    file: &InputFile,
    table: TableKind,
    on_row: &mut RowCallback<'_>,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<u64, IngestError> {
    let fail = |reason: String| IngestError::Input {
        file: file.display.clone(),
        reason,
    };
    let reader = BufReader::with_capacity(
        1 << 20,
        File::open(&file.local).map_err(|e| fail(e.to_string()))?,
    );
    let wanted: Vec<String> = table.input_columns().into_iter().map(|c| c.name).collect();
    let mut checked = false;
    let mut rows = 0u64;
    let mut bytes = 0u64;
    for (i, line) in reader.lines().enumerate() {
        let line_no = i as u64 + 1;
        let line = line.map_err(|e| fail(format!("line {line_no}: {e}")))?;
        bytes += line.len() as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        rows += 1;
        let object = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => {
                on_row(Err(problem("*", "not a JSON object")), line_no)?;
                continue;
            }
            Err(e) => {
                on_row(Err(problem("*", &format!("invalid JSON: {e}"))), line_no)?;
                continue;
            }
        };
        let lowered: HashMap<String, &serde_json::Value> = object
            .iter()
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v))
            .collect();
        if !checked {
            // The first record stands for the file's columns, as a header does in CSV.
            let names: Vec<String> = lowered.keys().cloned().collect();
            map_columns(file, table, &names)?;
            checked = true;
        }
        let mut texts: Vec<Option<String>> = Vec::with_capacity(wanted.len());
        let mut bad = None;
        for name in &wanted {
            texts.push(match lowered.get(name) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                Some(_) => {
                    bad = Some(name.clone());
                    None
                }
            });
        }
        if let Some(col) = bad {
            on_row(
                Err(problem(
                    &col,
                    "nested JSON value where a scalar is expected",
                )),
                line_no,
            )?;
            continue;
        }
        let fields: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
        on_row(Ok(&fields), line_no)?;
        if rows.is_multiple_of(65_536) {
            on_bytes(bytes);
        }
    }
    on_bytes(file.size);
    Ok(rows)
}

fn problem(column: &str, reason: &str) -> RowProblem {
    RowProblem {
        column: column.into(),
        value: String::new(),
        reason: reason.into(),
    }
}

fn read_parquet(
    file: &InputFile,
    table: TableKind,
    on_row: &mut RowCallback<'_>,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<u64, IngestError> {
    let fail = |reason: String| IngestError::Input {
        file: file.display.clone(),
        reason,
    };
    let handle = File::open(&file.local).map_err(|e| fail(e.to_string()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(handle)
        .map_err(|e| fail(format!("not a readable Parquet file: {e}")))?;
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mapping = map_columns(file, table, &names)?;
    let leaves: Vec<usize> = mapping.iter().flatten().copied().collect();
    // Project the top-level columns we use; their positions in the projected batch follow
    // the file's order.
    let mask = ProjectionMask::roots(builder.parquet_schema(), leaves.iter().copied());
    let mut projected_pos: Vec<usize> = leaves.clone();
    projected_pos.sort_unstable();
    let reader = builder
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let total_rows_hint = file.size.max(1);
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| fail(format!("cannot decode: {e}")))?;
        let mut columns: Vec<Option<StringArray>> = Vec::with_capacity(mapping.len());
        for m in &mapping {
            columns.push(match m {
                Some(file_idx) => {
                    let pos = projected_pos
                        .iter()
                        .position(|p| p == file_idx)
                        .unwrap_or_default();
                    let name = &names[*file_idx];
                    Some(to_text(batch.column(pos)).map_err(|e| {
                        fail(format!("column '{name}' cannot be read as text: {e}"))
                    })?)
                }
                None => None,
            });
        }
        let mut fields: Vec<Option<&str>> = Vec::with_capacity(mapping.len());
        for r in 0..batch.num_rows() {
            rows += 1;
            fields.clear();
            for c in &columns {
                fields.push(c.as_ref().and_then(|a| (!a.is_null(r)).then(|| a.value(r))));
            }
            on_row(Ok(&fields), rows)?;
        }
        on_bytes((rows * 64).min(total_rows_hint));
    }
    on_bytes(file.size);
    Ok(rows)
}

/// Text form of a Parquet column. Timestamps without a time zone are UTC instants by the
/// Parquet convention, so they are tagged UTC before formatting (which then carries the offset).
fn to_text(array: &ArrayRef) -> Result<StringArray, datafusion::arrow::error::ArrowError> {
    let array = match array.data_type() {
        DataType::Timestamp(unit, None) => {
            cast(array, &DataType::Timestamp(*unit, Some("UTC".into())))?
        }
        DataType::Timestamp(_, Some(_)) => cast(
            array,
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )?,
        _ => array.clone(),
    };
    let text = cast(&array, &DataType::Utf8)?;
    text.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| {
            datafusion::arrow::error::ArrowError::CastError("not castable to text".into())
        })
}
