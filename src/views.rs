//! The SQL views under `sql/views/`, one `CREATE VIEW` per file (file name = view name),
//! compiled into the binary and registered in every session after the tables, in the order of
//! [`VIEWS`] (a view comes after the views it reads).

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

/// (name, SQL) in dependency order.
pub const VIEWS: &[(&str, &str)] = &[
    ("purchases", include_str!("../sql/views/purchases.sql")),
    (
        "customer_days",
        include_str!("../sql/views/customer_days.sql"),
    ),
    (
        "customer_day_ranks",
        include_str!("../sql/views/customer_day_ranks.sql"),
    ),
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
    (
        "lifecycle_funnel",
        include_str!("../sql/views/lifecycle_funnel.sql"),
    ),
    (
        "reactivation",
        include_str!("../sql/views/reactivation.sql"),
    ),
    (
        "replenishment_due",
        include_str!("../sql/views/replenishment_due.sql"),
    ),
    (
        "referral_stats",
        include_str!("../sql/views/referral_stats.sql"),
    ),
    ("tier_stats", include_str!("../sql/views/tier_stats.sql")),
    (
        "acquisition_economics",
        include_str!("../sql/views/acquisition_economics.sql"),
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
    register_selected(ctx, &Selection::All).await
}

/// Which views a session plans at start-up.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    All,
    /// These, in [`VIEWS`] order (dependencies included).
    Only(Vec<&'static str>),
}

impl Selection {
    /// The views some SQL text can reach: those whose name occurs in it as a word (anywhere,
    /// comments and strings included, so never too few), with the views they read. All of them
    /// when the text may list the catalog (information_schema, pg_catalog, SHOW), where every
    /// view must be there. Planning a view costs start-up time, which a one-shot `rebuy query`
    /// pays on every run.
    pub fn for_sql(sql: &str) -> Selection {
        let text = sql.to_ascii_lowercase();
        if ["information_schema", "pg_", "show"]
            .iter()
            .any(|w| text.contains(w))
        {
            return Selection::All;
        }
        let mut wanted: Vec<bool> = VIEWS
            .iter()
            .map(|(name, _)| mentions(&text, name))
            .collect();
        // A view reads only views before it in VIEWS: one pass from the back closes the set.
        for i in (0..VIEWS.len()).rev() {
            if wanted[i] {
                let body = code_of(VIEWS[i].1);
                for (j, (name, _)) in VIEWS.iter().enumerate().take(i) {
                    wanted[j] |= mentions(&body, name);
                }
            }
        }
        Selection::Only(
            VIEWS
                .iter()
                .zip(wanted)
                .filter(|(_, w)| *w)
                .map(|((name, _), _)| *name)
                .collect(),
        )
    }

    fn includes(&self, name: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Only(names) => names.contains(&name),
        }
    }
}

/// A view's SQL without its `--` comments, lowercase.
fn code_of(sql: &str) -> String {
    sql.lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
        .to_ascii_lowercase()
}

/// Whether `word` occurs in `text` (both lowercase) not as part of a longer identifier.
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    text.match_indices(word).any(|(at, _)| {
        !ident(text[..at].chars().next_back()) && !ident(text[at + word.len()..].chars().next())
    })
}

/// (Re)creates the selected views in `ctx`, in dependency order.
pub async fn register_selected(
    ctx: &SessionContext,
    selection: &Selection,
) -> Result<(), ViewError> {
    for (name, _) in VIEWS {
        if selection.includes(name) {
            register_view(ctx, name).await?;
        }
    }
    Ok(())
}

/// Sets how the session reads `1.5` (true: exact numeric); returns what it was.
fn set_float_literals_decimal(ctx: &SessionContext, decimal: bool) -> bool {
    let state = ctx.state_ref();
    let mut state = state.write();
    let options = state.config_mut().options_mut();
    std::mem::replace(&mut options.sql_parser.parse_float_as_decimal, decimal)
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
    // The views were written with `0.0` meaning a float: they are planned so, whatever the
    // session reads constants as for its users' SQL (exact numerics, as PostgreSQL does).
    let decimal = set_float_literals_decimal(ctx, false);
    let created = match ctx.sql(sql).await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    set_float_literals_decimal(ctx, decimal);
    created.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_the_views_a_query_reaches() {
        let Selection::Only(names) = Selection::for_sql("SELECT * FROM Customer_RFM LIMIT 5")
        else {
            panic!("expected a selection");
        };
        // customer_rfm reads customer_facts, which reads customer_base_live, which reads
        // customer_day_ranks, customer_days and purchases.
        assert_eq!(
            names,
            [
                "purchases",
                "customer_days",
                "customer_day_ranks",
                "customer_base_live",
                "customer_facts",
                "customer_rfm"
            ]
        );
        // A longer identifier is not a mention; no view, none planned.
        assert_eq!(
            Selection::for_sql("SELECT * FROM my_customer_rfm_copy, orders"),
            Selection::Only(vec![])
        );
        for sql in [
            "SHOW TABLES",
            "SELECT * FROM information_schema.views",
            "SELECT relname FROM pg_catalog.pg_class",
        ] {
            assert_eq!(Selection::for_sql(sql), Selection::All, "{sql}");
        }
    }

    #[test]
    fn every_view_reads_only_views_listed_before_it() {
        for (i, (name, sql)) in VIEWS.iter().enumerate() {
            let body = code_of(sql);
            for (later, _) in &VIEWS[i + 1..] {
                assert!(
                    !mentions(&body, later),
                    "{name} reads {later}, listed after it"
                );
            }
        }
    }
}
