//! The commit phase of an ingest: validated rows wait in local staging Parquet files; this
//! module compares them with the stored table and publishes the difference as one Delta
//! commit (an append when every key is new, a MERGE when stored rows are replaced).
//!
//! Classification, per key, of the staged rows against the stored table:
//! - several staged rows with one key: the last one (file order, then row order) wins, the
//!   others are counted as `superseded`;
//! - key not stored: `accepted` (inserted);
//! - key stored with identical values in every column: `unchanged`, nothing written;
//! - key stored with other values: `updated`, the stored row is replaced.
//!
//! Nothing is committed when there is nothing new, so ingesting a file twice creates no
//! version. All the work happens before the commit; a crash at any point leaves the table at
//! its previous version (files written before the commit are never referenced).

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, Int64Array};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use deltalake::delta_datafusion::planner::DeltaPlanner;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;

use super::IngestError;
use super::rows::SEQ_COLUMN;
use crate::storage::{TableKind, Warehouse};

/// Counts of what a commit did with the staged rows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommitOutcome {
    pub accepted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub superseded: u64,
    /// The table version after the ingest (the new one if something was committed).
    pub version: Option<u64>,
    pub committed: bool,
    /// Orders only, when the commit changed a stored table: the customers with a new or
    /// changed order, including the previous customer of an order that moved (the customer
    /// summary recomputes only these). None when too many to be worth it.
    pub touched_customers: Option<Vec<String>>,
}

/// More touched customers than this and the summary is rewritten instead of updated.
const MAX_TOUCHED_CUSTOMERS: usize = 1_000_000;

/// Parquet settings of stored files: snappy, and no dictionary for columns whose values are
/// (nearly) unique, where building one costs time and saves nothing.
pub fn stored_writer_properties(table: TableKind) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(256 * 1024))
        // Small pages: with rows clustered by customer, a lookup reads few rows per file.
        .set_data_page_row_count_limit(2048);
    let unique: &[&str] = match table {
        TableKind::Orders => &[
            "order_id",
            "customer_id",
            "email_sha256",
            "order_ts",
            "amount",
            "amount_usd",
            "discount",
        ],
        TableKind::Customers => &["customer_id", "email_sha256", "signup_ts", "referred_by"],
        TableKind::FxRates => &["to_usd"],
        TableKind::MarketingSpend => &["amount", "amount_usd"],
    };
    for c in unique {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*c), false);
    }
    // One customer's history (`WHERE customer_id = …`) skips the row groups whose bloom
    // filter rules the customer out, instead of reading every customer_id.
    if table == TableKind::Orders {
        let id = ColumnPath::from("customer_id");
        b = b
            .set_column_bloom_filter_enabled(id.clone(), true)
            .set_column_bloom_filter_fpp(id, 0.01);
    }
    b.build()
}

/// Memory an ingest's query engine may use before it spills to disk.
const INGEST_MEMORY: usize = 1 << 30;

fn ingest_context() -> Result<SessionContext, IngestError> {
    let mut config = SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(8192);
    // Staged strings must come back as Utf8, the stored type, not as views.
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    // delta-rs workaround: IN-list pushdown of hash joins can fail on dictionary join keys.
    config
        .options_mut()
        .optimizer
        .hash_join_inlist_pushdown_max_size = 0;
    config
        .options_mut()
        .optimizer
        .hash_join_inlist_pushdown_max_distinct_values = 0;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(INGEST_MEMORY)))
        .build_arc()
        .map_err(IngestError::engine("setting up the ingest engine"))?;
    // Delta's writes and merges plan their own extension nodes.
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_query_planner(DeltaPlanner::new())
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// The order rows are written in, within each file. Orders are clustered by customer, so the
/// page statistics of `customer_id` let one customer's history (`WHERE customer_id = …`) read
/// a page per file instead of every `customer_id`; the partition column leads, so the single
/// writer finishes one month before it starts the next.
fn write_order(table: TableKind) -> String {
    match table {
        TableKind::Orders => "order_month, customer_id, order_ts, order_id".to_string(),
        _ => table.key_columns().join(", "),
    }
}

/// The rows of `select` (a query over registered tables) sorted by [`write_order`], as a
/// plan for Delta's write, with the session to run it in.
///
/// DataFusion drops a sort that no operator above it requires, and Delta's write sink
/// requires none; with several streams delta-rs also hash-partitions the rows across
/// writers. So the rows are first sorted into one local file, and the write reads that file
/// as one stream: each stored file then holds its rows in that order.
async fn sorted_source(
    ctx: &SessionContext,
    table: TableKind,
    select: &str,
    scratch: &Path,
) -> Result<(LogicalPlan, Arc<SessionState>), IngestError> {
    let file = scratch.join("sorted.parquet");
    let _ = std::fs::remove_file(&file);
    ctx.sql(&format!("{select} ORDER BY {}", write_order(table)))
        .await
        .map_err(IngestError::engine("sorting the rows to write"))?
        .write_parquet(
            &file.display().to_string(),
            DataFrameWriteOptions::new().with_single_file_output(true),
            None,
        )
        .await
        .map_err(IngestError::engine("sorting the rows to write"))?;
    let state = ctx.state();
    let config = state.config().clone().with_target_partitions(1);
    let single = SessionContext::new_with_state(
        SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .build(),
    );
    let plan = single
        .read_parquet(file.display().to_string(), ParquetReadOptions::default())
        .await
        .map_err(IngestError::engine("reading the sorted rows"))?
        .into_unoptimized_plan();
    Ok((plan, Arc::new(single.state())))
}

/// The condition that rows `a` and `b` have the same key. A nullable key column (the region
/// of marketing spend) must match NULL to NULL, or every ingest of unattributed spend would
/// add a row instead of replacing it; with one such column all keys use IS NOT DISTINCT FROM,
/// which the engine still joins by hash (it does not mix the two kinds in one hash join).
fn key_match(table: TableKind, a: &str, b: &str) -> String {
    let op = if table.key_is_nullable() {
        "IS NOT DISTINCT FROM"
    } else {
        "="
    };
    table
        .key_columns()
        .iter()
        .map(|k| format!("({a}.{k} {op} {b}.{k})"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn column_list(table: TableKind, alias: &str) -> String {
    table
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{alias}{}", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn scalar_i64(ctx: &SessionContext, sql: &str) -> Result<i64, IngestError> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(IngestError::engine("counting staged rows"))?
        .collect()
        .await
        .map_err(IngestError::engine("counting staged rows"))?;
    Ok(batches
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0))
}

pub async fn commit(
    warehouse: &Warehouse,
    table: TableKind,
    staged: &Path,
    scratch: &Path,
    known_distinct: Option<u64>,
    metadata: serde_json::Map<String, serde_json::Value>,
) -> Result<CommitOutcome, IngestError> {
    let ctx = ingest_context()?;
    let staged_url = format!("{}/", staged.display());
    ctx.register_parquet("staged", &staged_url, ParquetReadOptions::default())
        .await
        .map_err(IngestError::engine("reading staged rows"))?;
    let keys = table.key_columns().join(", ");
    let step = std::time::Instant::now();
    // Reading proved the keys distinct (different hashes) or could not: then count exactly.
    let (total, distinct) = match known_distinct {
        Some(n) => (n as i64, n as i64),
        None => (
            scalar_i64(&ctx, "SELECT COUNT(*) FROM staged").await?,
            scalar_i64(
                &ctx,
                &format!("SELECT COUNT(*) FROM (SELECT DISTINCT {keys} FROM staged)"),
            )
            .await?,
        ),
    };
    tracing::debug!("{table}: key check {:.2}s", step.elapsed().as_secs_f64());
    let cols = column_list(table, "");
    let incoming_sql = if distinct < total {
        format!(
            "SELECT {cols} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {SEQ_COLUMN} DESC) AS _rebuy_rank FROM staged) WHERE _rebuy_rank = 1"
        )
    } else {
        format!("SELECT {cols} FROM staged")
    };
    let incoming = ctx
        .sql(&incoming_sql)
        .await
        .map_err(IngestError::engine("deduplicating staged rows"))?;
    ctx.register_table("incoming", incoming.into_view())
        .map_err(IngestError::engine("deduplicating staged rows"))?;

    let mut outcome = CommitOutcome {
        superseded: (total - distinct) as u64,
        ..Default::default()
    };
    let delta = warehouse.table(table).await?;
    let commit_props = CommitProperties::default().with_metadata(metadata);

    if delta.version().is_none() {
        if distinct == 0 {
            return Ok(outcome);
        }
        let (plan, state) = sorted_source(
            &ctx,
            table,
            &format!("SELECT {cols} FROM incoming"),
            scratch,
        )
        .await?;
        let written = delta
            .write(Vec::new())
            .with_input_plan(plan)
            .with_session_state(state)
            .with_partition_columns(table.partition_columns().iter().copied())
            .with_save_mode(SaveMode::Append)
            .with_table_name(table.name())
            .with_writer_properties(stored_writer_properties(table))
            .with_commit_properties(commit_props)
            .await
            .map_err(|e| IngestError::commit(table, e))?;
        outcome.accepted = distinct as u64;
        outcome.version = written.version();
        outcome.committed = true;
        return Ok(outcome);
    }

    let provider = delta
        .table_provider()
        .await
        .map_err(IngestError::engine("opening the stored table"))?;
    ctx.register_table("target", provider)
        .map_err(IngestError::engine("opening the stored table"))?;
    let join = key_match(table, "s", "t");
    let same = table
        .schema()
        .fields()
        .iter()
        .filter(|f| !table.key_columns().contains(&f.name().as_str()))
        .map(|f| format!("(s.{0} IS NOT DISTINCT FROM t.{0})", f.name()))
        .collect::<Vec<_>>()
        .join(" AND ");
    let first_key = table.key_columns()[0];
    let old_part = match table.partition_columns().first() {
        Some(p) => format!("t.{p}"),
        None => "CAST(NULL AS VARCHAR)".to_string(),
    };
    let old_customer = if table == TableKind::Orders {
        "t.customer_id"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let changes_sql = format!(
        "SELECT {}, CASE WHEN t.{first_key} IS NULL THEN 'new' ELSE 'changed' END AS _rebuy_change, \
         {old_part} AS _rebuy_old_part, {old_customer} AS _rebuy_old_customer \
         FROM incoming s LEFT JOIN target t ON {join} \
         WHERE t.{first_key} IS NULL OR NOT ({same})",
        column_list(table, "s.")
    );
    let changes_dir = scratch.join("changes");
    ctx.sql(&changes_sql)
        .await
        .map_err(IngestError::engine("comparing with stored rows"))?
        .write_parquet(
            &format!("{}/", changes_dir.display()),
            DataFrameWriteOptions::new(),
            None,
        )
        .await
        .map_err(IngestError::engine("comparing with stored rows"))?;
    let has_changes = std::fs::read_dir(&changes_dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    outcome.version = delta.version();
    if !has_changes {
        outcome.unchanged = distinct as u64;
        return Ok(outcome);
    }
    ctx.register_parquet(
        "changes",
        &format!("{}/", changes_dir.display()),
        ParquetReadOptions::default(),
    )
    .await
    .map_err(IngestError::engine("reading the changes"))?;
    let counts = ctx
        .sql("SELECT _rebuy_change, COUNT(*) FROM changes GROUP BY _rebuy_change")
        .await
        .map_err(IngestError::engine("counting the changes"))?
        .collect()
        .await
        .map_err(IngestError::engine("counting the changes"))?;
    for b in &counts {
        let (Some(kind), Some(n)) = (
            super::strings(b.column(0)),
            b.column(1).as_any().downcast_ref::<Int64Array>(),
        ) else {
            continue;
        };
        for i in 0..b.num_rows() {
            match kind.value(i) {
                "new" => outcome.accepted = n.value(i) as u64,
                _ => outcome.updated = n.value(i) as u64,
            }
        }
    }
    outcome.unchanged = distinct as u64 - outcome.accepted - outcome.updated;
    outcome.version = delta.version();
    if outcome.accepted + outcome.updated == 0 {
        return Ok(outcome);
    }

    // Listed before the write (whose session may replace this one's catalog); a failure only
    // means the summary is rewritten in full.
    let touched = if table == TableKind::Orders {
        touched_customers(&ctx).await.unwrap_or_else(|e| {
            tracing::warn!("the customer summary will be rewritten in full: {e}");
            None
        })
    } else {
        None
    };
    let written = if outcome.updated == 0 {
        let (plan, state) =
            sorted_source(&ctx, table, &format!("SELECT {cols} FROM changes"), scratch).await?;
        delta
            .write(Vec::new())
            .with_input_plan(plan)
            .with_session_state(state)
            .with_partition_columns(table.partition_columns().iter().copied())
            .with_save_mode(SaveMode::Append)
            .with_writer_properties(stored_writer_properties(table))
            .with_commit_properties(commit_props)
            .await
            .map_err(|e| IngestError::commit(table, e))?
    } else {
        let source = ctx
            .sql(&format!("SELECT {cols} FROM changes"))
            .await
            .map_err(IngestError::engine("reading the changes"))?;
        let mut predicate = key_match(table, "target", "source");
        if let Some(p) = table.partition_columns().first() {
            // Only the partitions holding replaced rows need to be read and rewritten.
            let parts = ctx
                .sql("SELECT DISTINCT _rebuy_old_part FROM changes WHERE _rebuy_old_part IS NOT NULL")
                .await
                .map_err(IngestError::engine("finding affected partitions"))?
                .collect()
                .await
                .map_err(IngestError::engine("finding affected partitions"))?;
            let mut values = Vec::new();
            for b in &parts {
                if let Some(a) = super::strings(b.column(0)) {
                    for i in 0..a.len() {
                        values.push(format!("'{}'", a.value(i).replace('\'', "''")));
                    }
                }
            }
            if !values.is_empty() {
                predicate = format!("{predicate} AND target.{p} IN ({})", values.join(", "));
            }
        }
        let mut merge = delta
            .merge(source, predicate.as_str())
            .with_source_alias("source")
            .with_target_alias("target")
            .with_session_state(Arc::new(ctx.state()))
            .with_writer_properties(stored_writer_properties(table))
            .with_commit_properties(commit_props);
        let names: Vec<String> = table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let update_names = names.clone();
        merge = merge
            .when_matched_update(|mut u| {
                for n in &update_names {
                    u = u.update(n.as_str(), format!("source.{n}").as_str());
                }
                u
            })
            .map_err(|e| IngestError::commit(table, e))?
            .when_not_matched_insert(|mut ins| {
                for n in &names {
                    ins = ins.set(n.as_str(), format!("source.{n}").as_str());
                }
                ins
            })
            .map_err(|e| IngestError::commit(table, e))?;
        let (written, _metrics) = merge.await.map_err(|e| IngestError::commit(table, e))?;
        written
    };
    outcome.version = written.version();
    outcome.committed = true;
    outcome.touched_customers = touched;
    Ok(outcome)
}

/// The customers of the changes (new and previous customer of each order).
async fn touched_customers(ctx: &SessionContext) -> Result<Option<Vec<String>>, IngestError> {
    let batches = ctx
        .sql(
            "SELECT customer_id FROM changes \
             UNION SELECT _rebuy_old_customer FROM changes WHERE _rebuy_old_customer IS NOT NULL",
        )
        .await
        .map_err(IngestError::engine("listing the touched customers"))?
        .collect()
        .await
        .map_err(IngestError::engine("listing the touched customers"))?;
    let mut ids = Vec::new();
    for b in &batches {
        let Some(a) = super::strings(b.column(0)) else {
            return Ok(None);
        };
        ids.extend(a.iter().flatten().map(str::to_string));
        if ids.len() > MAX_TOUCHED_CUSTOMERS {
            return Ok(None);
        }
    }
    Ok(Some(ids))
}
