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
//!
//! After an ingest that changed some orders of a summary made from the version just before,
//! only the customers those orders belong to (or belonged to) are computed again from `orders`;
//! the other customers' rows are kept (none of their orders changed, and every one of them is
//! on or before the last order day) and the rankings over all customers are computed again
//! with the same view (`customer_day_ranks`). Otherwise the summary is rewritten in full.

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

/// The views the summary is made of: `customer_base_live` and those before it.
fn definition() -> &'static [(&'static str, &'static str)] {
    let views = crate::views::VIEWS;
    let end = views
        .iter()
        .position(|(n, _)| *n == LIVE_VIEW)
        .map_or(views.len(), |i| i + 1);
    &views[..end]
}

/// Identifies the summary's definition: a summary made by another version of
/// `customer_base_live.sql` or the views it reads is not used (the next ingest rewrites it).
fn format_id() -> String {
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    for (name, sql) in definition() {
        hash.update(name.as_bytes());
        hash.update(sql.as_bytes());
    }
    hex::encode(&hash.finish().as_ref()[..8])
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
    for (view, _) in definition() {
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

/// What an orders commit changed, for the summary.
#[derive(Debug, Clone)]
pub struct OrdersChange {
    /// The orders version the commit started from.
    pub from_version: u64,
    /// The customers of the new and changed orders, and the previous customer of an order
    /// that moved to another.
    pub customers: Vec<String>,
}

/// What [`refresh_after`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// The summary already matched the orders.
    Current,
    /// Rewritten from all orders.
    Rewritten,
    /// Kept, with this many customers computed again.
    Updated { customers: usize },
}

/// Rewrites the stored summary from the latest orders, unless it already matches them.
/// Returns whether it wrote.
pub async fn refresh(warehouse: &Warehouse) -> Result<bool, SummaryError> {
    Ok(refresh_after(warehouse, None).await? != Refresh::Current)
}

/// Brings the stored summary up to the latest orders: when it was made from the version
/// `change` started from and the orders are one commit further, only the changed customers are
/// computed again (and the rankings over all); else it is rewritten in full (unless current).
pub async fn refresh_after(
    warehouse: &Warehouse,
    change: Option<OrdersChange>,
) -> Result<Refresh, SummaryError> {
    let Some(orders_version) = warehouse.version(TableKind::Orders).await? else {
        return Ok(Refresh::Current);
    };
    let stored = stored(warehouse).await?;
    let coverage = stored.as_ref().and_then(|(_, c)| *c);
    if coverage.is_some_and(|c| c.orders_version == orders_version && c.current_format) {
        return Ok(Refresh::Current);
    }
    let started = std::time::Instant::now();
    let ctx = writing_session(warehouse).await?;
    let through_day = last_order_day(&ctx).await?;
    let day = chrono::NaiveDate::default() + chrono::Days::new(through_day.max(0) as u64);
    ctx.sql(&format!("SET rebuy.as_of = '{day}'")).await?;
    let update = match (change, coverage, stored) {
        (Some(change), Some(c), Some((previous, _)))
            if c.current_format
                && c.orders_version == change.from_version
                && orders_version == change.from_version + 1 =>
        {
            Some((change.customers, previous))
        }
        _ => None,
    };
    let (plan, how) = match update {
        Some((customers, previous)) => {
            let n = customers.len();
            (
                updated_plan(&ctx, customers, previous).await?,
                Refresh::Updated { customers: n },
            )
        }
        None => (
            ctx.sql(&format!("SELECT * FROM {LIVE_VIEW}"))
                .await?
                .into_unoptimized_plan(),
            Refresh::Rewritten,
        ),
    };
    let table = warehouse.table_named(TABLE).await?;
    let mut metadata = serde_json::Map::new();
    metadata.insert("rebuy.operation".into(), "customer summary".into());
    metadata.insert("rebuy.orders_version".into(), orders_version.into());
    metadata.insert("rebuy.through_day".into(), through_day.into());
    metadata.insert("rebuy.summary_format".into(), format_id().into());
    if let Refresh::Updated { customers } = how {
        metadata.insert("rebuy.customers_updated".into(), customers.into());
    }
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
        "customer summary for orders version {orders_version}: {how:?} in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    Ok(how)
}

/// A query session over the warehouse, with the views the summary is made of, whose writes
/// Delta can plan.
async fn writing_session(warehouse: &Warehouse) -> Result<SessionContext, SummaryError> {
    let views = crate::views::Selection::for_sql(LIVE_VIEW);
    let ctx = crate::session::build_session_with(warehouse, &views)
        .await
        .map_err(Box::new)?;
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state())
        .with_query_planner(deltalake::delta_datafusion::planner::DeltaPlanner::new())
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// The last day (days since 1970-01-01) of any order, whatever its status: the summary is made
/// as of that day.
async fn last_order_day(ctx: &SessionContext) -> Result<i32, SummaryError> {
    let through = ctx
        .sql("SELECT CAST(MAX(CAST(order_ts AS DATE)) AS INT) FROM orders")
        .await?
        .collect()
        .await?;
    through
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
        .ok_or_else(|| SummaryError::Write("orders has no order date".into()))
}

/// The columns of customer_base_live that customer_day_ranks computes over all customers.
const RANK_COLUMNS: &[&str] = &[
    "r_score",
    "f_score",
    "m_score",
    "revenue_before",
    "revenue_total",
];

/// The plan of the summary after a change of `customers`' orders, in a session as of the last
/// order day: the previous summary's other rows, these customers' rows computed from their
/// orders, and the rankings over both.
async fn updated_plan(
    ctx: &SessionContext,
    customers: Vec<String>,
    previous: deltalake::DeltaTable,
) -> Result<datafusion::logical_expr::LogicalPlan, SummaryError> {
    use datafusion::arrow::array::{RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    previous
        .update_datafusion_session(&ctx.state())
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let previous = previous.table_provider().await?;
    let stored_schema = previous.schema();
    ctx.register_table("summary_previous", previous)?;
    let touched_schema = Arc::new(Schema::new(vec![Field::new(
        "customer_id",
        DataType::Utf8,
        false,
    )]));
    let touched = RecordBatch::try_new(
        touched_schema.clone(),
        vec![Arc::new(StringArray::from(customers))],
    )
    .map_err(DataFusionError::from)?;
    ctx.register_table(
        "summary_touched",
        Arc::new(MemTable::try_new(touched_schema, vec![vec![touched]])?),
    )?;
    let run = |sql: String| async move { ctx.sql(&sql).await?.collect().await };
    let reregister = |views: &'static [&'static str]| async move {
        for view in views {
            crate::views::register_view(ctx, view)
                .await
                .map_err(|e| DataFusionError::Plan(e.to_string()))?;
        }
        Ok::<(), DataFusionError>(())
    };
    // The touched customers' rows: the live view over their purchases only (its rankings are
    // among them alone and are replaced below).
    run("CREATE VIEW summary_all_purchases AS SELECT * FROM purchases".into()).await?;
    ctx.deregister_table("purchases")?;
    run(
        "CREATE VIEW purchases AS SELECT * FROM summary_all_purchases \
         WHERE customer_id IN (SELECT customer_id FROM summary_touched)"
            .into(),
    )
    .await?;
    reregister(&["customer_days", "customer_day_ranks", LIVE_VIEW]).await?;
    // In the stored types, so that they stack onto the kept rows.
    let fresh = ctx
        .sql(&format!("SELECT * FROM {LIVE_VIEW}"))
        .await?
        .collect()
        .await?
        .iter()
        .map(|b| cast_batch(b, &stored_schema))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::debug!(
        "customer summary: {} changed customers recomputed",
        fresh.iter().map(|b| b.num_rows()).sum::<usize>()
    );
    ctx.register_table(
        "summary_fresh",
        Arc::new(MemTable::try_new(stored_schema.clone(), vec![fresh])?),
    )?;
    run("CREATE VIEW summary_rows AS \
         SELECT * FROM summary_previous WHERE customer_id NOT IN (SELECT customer_id FROM summary_touched) \
         UNION ALL SELECT * FROM summary_fresh"
        .into())
    .await?;
    // The rankings over all customers, by the same view as a full rewrite.
    ctx.deregister_table("customer_days")?;
    run(
        "CREATE VIEW customer_days AS SELECT customer_id, purchase_days, first_day, last_day, \
         days_usd, first_day_usd FROM summary_rows"
            .into(),
    )
    .await?;
    reregister(&["customer_day_ranks"]).await?;
    let columns = stored_schema
        .fields()
        .iter()
        .map(|f| {
            let side = if RANK_COLUMNS.contains(&f.name().as_str()) {
                "r"
            } else {
                "s"
            };
            format!("{side}.\"{}\"", f.name())
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(ctx
        .sql(&format!(
            "SELECT {columns} FROM customer_day_ranks r \
             JOIN summary_rows s ON s.customer_id = r.customer_id"
        ))
        .await?
        .into_unoptimized_plan())
}

/// `batch` with the columns of `schema` (same names and order), cast where the types differ
/// (the engine's string views and list field names against the stored Parquet types).
fn cast_batch(
    batch: &datafusion::arrow::array::RecordBatch,
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> DfResult<datafusion::arrow::array::RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let column = batch.column_by_name(f.name()).ok_or_else(|| {
                DataFusionError::Plan(format!("customer summary: no column {}", f.name()))
            })?;
            Ok(datafusion::arrow::compute::cast(column, f.data_type())?)
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(datafusion::arrow::array::RecordBatch::try_new(
        schema.clone(),
        columns,
    )?)
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
