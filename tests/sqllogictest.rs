//! Runs every `.slt` file under `tests/slt/` against a fresh session over the committed fixture
//! warehouse (`data/fixture/warehouse`, made by `rebuy demo` with the seed in data/README.md).
//! A file whose first line is `# fixture: NAME` runs on `data/fixture/NAME/warehouse`.
//! Column types are checked strictly: `I` integer, `R` floating point, `T` anything else.
//!
//! `cargo test --test sqllogictest -- FILTER` runs only files whose path contains FILTER.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use sqllogictest::{DBOutput, DefaultColumnType};

struct Rebuy {
    ctx: SessionContext,
}

#[derive(Debug)]
struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

fn column_type(dt: &DataType) -> DefaultColumnType {
    match dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            DefaultColumnType::FloatingPoint
        }
        _ => DefaultColumnType::Text,
    }
}

/// Cell text: NULL for nulls, (empty) for empty strings, floats rounded to 9 decimals.
fn cell(array: &ArrayRef, row: usize) -> Result<String, SltError> {
    if array.is_null(row) {
        return Ok("NULL".into());
    }
    let float = match array.data_type() {
        DataType::Float64 => Some(
            array
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Float64Array>()
                .map(|a| a.value(row)),
        ),
        DataType::Float32 => Some(
            array
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Float32Array>()
                .map(|a| f64::from(a.value(row))),
        ),
        _ => None,
    };
    if let Some(v) = float {
        let v = v.ok_or_else(|| SltError("float column of unexpected layout".into()))?;
        let rounded = (v * 1e9).round() / 1e9;
        return Ok(if rounded == 0.0 {
            "0".into()
        } else {
            format!("{rounded}")
        });
    }
    let text = array_value_to_string(array, row).map_err(|e| SltError(e.to_string()))?;
    Ok(if text.is_empty() {
        "(empty)".into()
    } else {
        text
    })
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Rebuy {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let err = |e: datafusion::error::DataFusionError| SltError(e.strip_backtrace());
        // As `rebuy query` and the server read SQL (see rebuy::sql), one statement per record.
        let mut statements = rebuy::sql::parse(sql).map_err(|e| SltError(e.to_string()))?;
        if statements.len() != 1 {
            return Err(SltError(format!(
                "one statement per record, not {}",
                statements.len()
            )));
        }
        let plan = self
            .ctx
            .state()
            .statement_to_plan(statements.remove(0))
            .await
            .map_err(err)?;
        let df = self.ctx.execute_logical_plan(plan).await.map_err(err)?;
        let schema = df.schema().clone();
        let is_query = !schema.fields().is_empty();
        let mut stream = df.execute_stream().await.map_err(err)?;
        let mut batches: Vec<RecordBatch> = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b.map_err(err)?);
        }
        if !is_query {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let mut rows = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                let row = b
                    .columns()
                    .iter()
                    .map(|c| cell(c, r))
                    .collect::<Result<Vec<_>, _>>()?;
                rows.push(row);
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "rebuy"
    }
}

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            slt_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "slt") {
            out.push(p);
        }
    }
}

fn main() {
    // The crate's folder at run time (cargo sets it for test processes): a test binary can be
    // reused from a build in another checkout, where the compile-time value points.
    let root_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let root = Path::new(&root_dir);
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut files = Vec::new();
    slt_files(&root.join("tests/slt"), &mut files);
    files.sort();
    files.retain(|f| {
        filter
            .as_ref()
            .is_none_or(|x| f.display().to_string().contains(x))
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // A file that starts with `# fixture: NAME` runs on data/fixture/NAME/warehouse instead.
    let fixture_of = |file: &Path| -> PathBuf {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        match text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# fixture: "))
        {
            Some(name) => root
                .join("data/fixture")
                .join(name.trim())
                .join("warehouse"),
            None => root.join("data/fixture/warehouse"),
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let fixture = fixture_of(file);
        let warehouse = rebuy::storage::Warehouse::open(&fixture.display().to_string())
            .expect("fixture warehouse opens");
        let result = runtime.block_on(async {
            let mut runner = sqllogictest::Runner::new(|| {
                let warehouse = warehouse.clone();
                async move {
                    let ctx = rebuy::session::build_session(&warehouse)
                        .await
                        .map_err(|e| SltError(e.to_string()))?;
                    Ok::<_, SltError>(Rebuy { ctx })
                }
            });
            runner.with_column_validator(sqllogictest::strict_column_validator);
            runner.run_file_async(file).await
        });
        let name = file.strip_prefix(root).unwrap_or(file).display();
        match result {
            Ok(()) => {
                passed += 1;
                println!("ok     {name}");
            }
            Err(e) => {
                failed += 1;
                println!("FAILED {name}\n{e}\n");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 || files.is_empty() {
        std::process::exit(1);
    }
}
