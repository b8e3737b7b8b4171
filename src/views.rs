//! The SQL views under `sql/views/`, one `CREATE VIEW` per file (file name = view name),
//! compiled into the binary and registered in every session after the tables, in the order of
//! [`VIEWS`] (a view comes after the views it reads).

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

/// (name, SQL) in dependency order.
pub const VIEWS: &[(&str, &str)] = &[
    ("purchases", include_str!("../sql/views/purchases.sql")),
    (
        "customer_base_live",
        include_str!("../sql/views/customer_base_live.sql"),
    ),
    (
        "customer_facts",
        include_str!("../sql/views/customer_facts.sql"),
    ),
    (
        "customer_summary",
        include_str!("../sql/views/customer_summary.sql"),
    ),
    (
        "customer_rfm",
        include_str!("../sql/views/customer_rfm.sql"),
    ),
    (
        "customer_layers",
        include_str!("../sql/views/customer_layers.sql"),
    ),
    (
        "repurchase_rate",
        include_str!("../sql/views/repurchase_rate.sql"),
    ),
    (
        "monthly_repeat_rates",
        include_str!("../sql/views/monthly_repeat_rates.sql"),
    ),
    (
        "cohort_retention",
        include_str!("../sql/views/cohort_retention.sql"),
    ),
    (
        "interval_stats",
        include_str!("../sql/views/interval_stats.sql"),
    ),
    (
        "winback_candidates",
        include_str!("../sql/views/winback_candidates.sql"),
    ),
    ("clv_models", include_str!("../sql/views/clv_models.sql")),
    (
        "customer_clv",
        include_str!("../sql/views/customer_clv.sql"),
    ),
    (
        "clv_backtest",
        include_str!("../sql/views/clv_backtest.sql"),
    ),
    ("export_runs", include_str!("../sql/views/export_runs.sql")),
];

#[derive(Debug, thiserror::Error)]
#[error("view {view} (sql/views/{view}.sql): {source}")]
pub struct ViewError {
    pub view: &'static str,
    #[source]
    pub source: Box<DataFusionError>,
}

/// (Re)creates every view in `ctx`. Views hold references to the tables registered when they
/// are created, so call this again after re-registering tables.
pub async fn register_views(ctx: &SessionContext) -> Result<(), ViewError> {
    for (name, _) in VIEWS {
        register_view(ctx, name).await?;
    }
    Ok(())
}

/// (Re-)creates one view of [`VIEWS`] by name (its dependencies must be there).
pub async fn register_view(ctx: &SessionContext, name: &str) -> Result<(), ViewError> {
    let Some((name, sql)) = VIEWS.iter().find(|(n, _)| *n == name) else {
        return Ok(());
    };
    let _ = ctx.deregister_table(*name);
    let err = |e: DataFusionError| ViewError {
        view: name,
        source: Box::new(e),
    };
    ctx.sql(sql)
        .await
        .map_err(err)?
        .collect()
        .await
        .map_err(err)?;
    Ok(())
}
