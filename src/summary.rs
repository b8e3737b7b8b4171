//! The customer-level summary kept by ingest: `customer_base`, one row per customer with the
//! parts of `customer_summary` that do not depend on the as-of date (first and last purchase,
//! counts, revenue, intervals, the lifetime-value day totals, latest region and category).
//!
//! `rebuy ingest orders` rewrites it after each commit (a Delta table with the orders version
//! and the last order day it covers in its commit metadata). `customer_summary` (and so
//! `customer_rfm`, `customer_layers`, `winback_candidates`, the lifetime-value views) reads it
//! instead of recomputing every customer from `orders` when it is usable: made from the orders
//! version the session sees, and the as-of date is on or after the last order day (then no order
//! is after the as-of date, and the live computation would see exactly the same purchases). For
//! a past as-of date, or while the summary lags, the views compute from `orders` as before. Both
//! paths run the same SQL (`sql/views/customer_base_live.sql`), so the answers are the same.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::MemTable;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;

use crate::storage::{StorageError, TableKind, Warehouse};

pub const TABLE: &str = "customer_base";
const LIVE_VIEW: &str = "customer_base_live";

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Session(#[from] Box<crate::session::SessionError>),
    #[error("customer summary: {0}")]
    Engine(#[from] DataFusionError),
    #[error("customer summary: writing: {0}")]
    Write(String),
}

/// Identifies the summary's definition: a summary made by another version of
/// `customer_base_live.sql` is not used (the next ingest rewrites it).
fn format_id() -> String {
    use sha2::Digest;
    let sql = crate::views::VIEWS
        .iter()
        .find(|(n, _)| *n == LIVE_VIEW)
        .map_or("", |(_, s)| s);
    hex::encode(&sha2::Sha256::digest(sql.as_bytes())[..8])
}

/// What a stored summary covers, from its commit metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coverage {
    pub orders_version: u64,
    /// Whether it was made by the current definition (`customer_base_live.sql`).
    pub current_format: bool,
    /// The last order day (days since 1970-01-01) of any order in that version.
    pub through_day: i32,
}

/// The stored summary, if any, with what it covers.
async fn stored(
    warehouse: &Warehouse,
) -> Result<Option<(deltalake::DeltaTable, Option<Coverage>)>, SummaryError> {
    let Some(table) = warehouse.existing_table_named(TABLE).await? else {
        return Ok(None);
    };
    let coverage = coverage(&table).await?;
    Ok(Some((table, coverage)))
}

async fn coverage(table: &deltalake::DeltaTable) -> Result<Option<Coverage>, SummaryError> {
    use futures::StreamExt;
    let latest = table.history(Some(1)).next().await;
    let Some(info) = latest
        .transpose()
        .map_err(|e| SummaryError::Write(e.to_string()))?
    else {
        return Ok(None);
    };
    let get = |k: &str| info.info.get(k).and_then(|v| v.as_i64());
    let format = info
        .info
        .get("rebuy.summary_format")
        .and_then(|v| v.as_str());
    Ok(
        match (get("rebuy.orders_version"), get("rebuy.through_day")) {
            (Some(v), Some(d)) => Some(Coverage {
                orders_version: v as u64,
                current_format: format == Some(format_id().as_str()),
                through_day: d as i32,
            }),
            _ => None,
        },
    )
}

/// Registers `customer_base` and `customer_base_usable()` in a session whose tables are
/// registered and whose views are not yet: the stored summary when it matches the orders
/// version, else an empty table (never read).
pub async fn register(ctx: &SessionContext, warehouse: &Warehouse) -> Result<(), SummaryError> {
    let orders_version = warehouse.version(TableKind::Orders).await?;
    let stored = stored(warehouse).await?;
    let usable = match (stored.as_ref().and_then(|(_, c)| *c), orders_version) {
        (Some(c), Some(v)) if c.orders_version == v && c.current_format => Some(c.through_day),
        _ => None,
    };
    let _ = ctx.deregister_table(TABLE);
    if usable.is_some()
        && let Some((table, _)) = stored
    {
        table
            .update_datafusion_session(&ctx.state())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        ctx.register_table(TABLE, table.table_provider().await?)?;
        ctx.register_udf(ScalarUDF::from(BaseUsable {
            through_day: usable,
        }));
        return Ok(());
    }
    // The live view's schema, for an empty stand-in.
    for view in ["purchases", LIVE_VIEW] {
        crate::views::register_view(ctx, view)
            .await
            .map_err(|e| DataFusionError::Plan(e.to_string()))?;
    }
    let schema = ctx.table(LIVE_VIEW).await?.schema().as_arrow().clone();
    ctx.register_table(
        TABLE,
        Arc::new(MemTable::try_new(Arc::new(schema), vec![vec![]])?),
    )?;
    ctx.register_udf(ScalarUDF::from(BaseUsable { through_day: None }));
    Ok(())
}

/// Rewrites the stored summary from the latest orders, unless it already matches them.
/// Returns whether it wrote.
pub async fn refresh(warehouse: &Warehouse) -> Result<bool, SummaryError> {
    let Some(orders_version) = warehouse.version(TableKind::Orders).await? else {
        return Ok(false);
    };
    if stored(warehouse)
        .await?
        .and_then(|(_, c)| c)
        .is_some_and(|c| c.orders_version == orders_version && c.current_format)
    {
        return Ok(false);
    }
    let started = std::time::Instant::now();
    let ctx = crate::session::build_session(warehouse)
        .await
        .map_err(Box::new)?;
    // Delta's write plans its own nodes.
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state())
        .with_query_planner(deltalake::delta_datafusion::planner::DeltaPlanner::new())
        .build();
    let ctx = SessionContext::new_with_state(state);
    // The last day of any order (whatever its status), and the summary as of that day.
    let through = ctx
        .sql("SELECT CAST(MAX(CAST(order_ts AS DATE)) AS INT) FROM orders")
        .await?
        .collect()
        .await?;
    let through_day = through
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int32Array>()
                .filter(|a| {
                    !datafusion::arrow::array::Array::is_empty(*a)
                        && datafusion::arrow::array::Array::is_valid(*a, 0)
                })
                .map(|a| a.value(0))
        })
        .ok_or_else(|| SummaryError::Write("orders has no order date".into()))?;
    let day = chrono::NaiveDate::default() + chrono::Days::new(through_day.max(0) as u64);
    ctx.sql(&format!("SET rebuy.as_of = '{day}'")).await?;
    let df = ctx.sql(&format!("SELECT * FROM {LIVE_VIEW}")).await?;
    let plan = df.into_unoptimized_plan();
    let table = warehouse.table_named(TABLE).await?;
    let mut metadata = serde_json::Map::new();
    metadata.insert("rebuy.operation".into(), "customer summary".into());
    metadata.insert("rebuy.orders_version".into(), orders_version.into());
    metadata.insert("rebuy.through_day".into(), through_day.into());
    metadata.insert("rebuy.summary_format".into(), format_id().into());
    table
        .write(Vec::new())
        .with_input_plan(plan)
        .with_session_state(Arc::new(ctx.state()))
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite)
        .with_table_name(TABLE)
        .with_writer_properties(writer_properties())
        .with_commit_properties(CommitProperties::default().with_metadata(metadata))
        .await
        .map_err(|e| SummaryError::Write(e.to_string()))?;
    tracing::debug!(
        "customer summary rewritten for orders version {orders_version} in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}

/// Parquet settings of the summary: row groups of 64 K customers, so that a scan of it runs on
/// every core (the scan's parallelism is by row group: one row group of a million customers is
/// one thread), snappy, no dictionary for the unique customer_id.
fn writer_properties() -> datafusion::parquet::file::properties::WriterProperties {
    datafusion::parquet::file::properties::WriterProperties::builder()
        .set_compression(datafusion::parquet::basic::Compression::SNAPPY)
        .set_max_row_group_row_count(Some(64 * 1024))
        .set_column_dictionary_enabled(
            datafusion::parquet::schema::types::ColumnPath::from("customer_id"),
            false,
        )
        .build()
}

/// `customer_base_usable()`: true when the stored summary may stand in for the live
/// computation at the session's as-of date. Folded to a constant at planning, so the unused
/// path of `customer_summary` is removed from the plan.
#[derive(Debug, PartialEq, Eq, Hash)]
struct BaseUsable {
    through_day: Option<i32>,
}

impl BaseUsable {
    fn value(&self, options: &datafusion::config::ConfigOptions) -> bool {
        let wanted = crate::functions::as_of::setting_value(options, "use_customer_base")
            .is_ok_and(|v| v != 0.0);
        wanted
            && self
                .through_day
                .is_some_and(|d| crate::functions::as_of::as_of_days(options) >= d)
    }
}

static SIGNATURE: std::sync::LazyLock<Signature> =
    std::sync::LazyLock::new(|| Signature::exact(vec![], Volatility::Stable));

impl ScalarUDFImpl for BaseUsable {
    fn name(&self) -> &str {
        "customer_base_usable"
    }
    fn signature(&self) -> &Signature {
        &SIGNATURE
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(
            self.value(&args.config_options),
        ))))
    }
    fn simplify(&self, _args: Vec<Expr>, info: &SimplifyContext) -> DfResult<ExprSimplifyResult> {
        Ok(ExprSimplifyResult::Simplified(Expr::Literal(
            ScalarValue::Boolean(Some(self.value(info.config_options()))),
            None,
        )))
    }
}
