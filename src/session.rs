//! The one place a query [`SessionContext`] is assembled: every stored table at its latest
//! committed version, with information_schema. `rebuy query`, the tests and (later) the
//! server all go through [`build_session`], so they all see the same warehouse.

use std::sync::Arc;

use datafusion::catalog::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::storage::{StorageError, TableKind, Warehouse};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    View(#[from] crate::views::ViewError),
    #[error(transparent)]
    Summary(Box<crate::summary::SummaryError>),
    #[error("registering table {table}: {source}")]
    Register {
        table: &'static str,
        #[source]
        source: Box<DataFusionError>,
    },
}

/// The session settings rebuy runs queries with.
///
/// DataFusion by default drops the ORDER BY of a subquery or view without a LIMIT; PostgreSQL
/// keeps it, and BI tools wrap a user's query in `SELECT ... FROM (query) LIMIT n`. rebuy keeps
/// it, so that `SELECT * FROM winback_candidates LIMIT 100` is the top 100.
///
/// Constants are typed as PostgreSQL types them: `1.5` and `10000000000000000.00` are exact
/// numerics (not 64-bit floats, which print the second as `1e16`), and `timestamptz` is a
/// timestamp with a zone (UTC inside; shown in the session's `TimeZone`).
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new();
    let options = config.options_mut();
    options.sql_parser.enable_subquery_sort_elimination = false;
    options.sql_parser.parse_float_as_decimal = true;
    options.execution.time_zone = Some("UTC".into());
    config
        .with_information_schema(true)
        .with_default_catalog_and_schema("rebuy", "public")
        .with_option_extension(crate::functions::RebuyOptions::default())
}

/// A query session over the warehouse. Tables that were never written are registered empty,
/// with their schema, so that queries over them answer rather than fail.
pub async fn build_session(warehouse: &Warehouse) -> Result<SessionContext, SessionError> {
    build_session_with(warehouse, &crate::views::Selection::All).await
}

/// [`build_session`] with only the selected views planned (`rebuy query`, which knows its SQL).
pub async fn build_session_with(
    warehouse: &Warehouse,
    views: &crate::views::Selection,
) -> Result<SessionContext, SessionError> {
    let ctx = SessionContext::new_with_config(session_config());
    ctx.add_optimizer_rule(Arc::new(crate::optimize::DropUnreadCustomersJoin));
    crate::functions::register_all(&ctx);
    register_tables(&ctx, warehouse).await?;
    register_export_log(&ctx, warehouse).await?;
    crate::summary::register(&ctx, warehouse)
        .await
        .map_err(|e| SessionError::Summary(Box::new(e)))?;
    crate::views::register_selected(&ctx, views).await?;
    Ok(ctx)
}

/// Registers (or re-registers, at their latest version) the warehouse tables in `ctx`.
pub async fn register_tables(
    ctx: &SessionContext,
    warehouse: &Warehouse,
) -> Result<(), SessionError> {
    for kind in TableKind::ALL {
        let table = warehouse.table(kind).await?;
        let provider: Arc<dyn datafusion::catalog::TableProvider> = if table.version().is_some() {
            table
                .update_datafusion_session(&ctx.state())
                .map_err(|e| SessionError::Register {
                    table: kind.name(),
                    source: Box::new(DataFusionError::External(Box::new(e))),
                })?;
            table
                .table_provider()
                .await
                .map_err(|e| SessionError::Register {
                    table: kind.name(),
                    source: Box::new(e),
                })?
        } else {
            Arc::new(MemTable::try_new(kind.schema(), vec![vec![]]).map_err(|e| {
                SessionError::Register {
                    table: kind.name(),
                    source: Box::new(e),
                }
            })?)
        };
        let _ = ctx.deregister_table(kind.name());
        ctx.register_table(kind.name(), provider)
            .map_err(|e| SessionError::Register {
                table: kind.name(),
                source: Box::new(e),
            })?;
    }
    Ok(())
}

/// The record of export runs (`export_run_log`, read through the view `export_runs`), empty
/// until the first export.
pub async fn register_export_log(
    ctx: &SessionContext,
    warehouse: &Warehouse,
) -> Result<(), SessionError> {
    let name = crate::export::runs::TABLE;
    let register = |e: DataFusionError| SessionError::Register {
        table: name,
        source: Box::new(e),
    };
    let provider: Arc<dyn datafusion::catalog::TableProvider> = if let Some(table) =
        warehouse.existing_table_named(name).await?
    {
        table
            .update_datafusion_session(&ctx.state())
            .map_err(|e| register(DataFusionError::External(Box::new(e))))?;
        table.table_provider().await.map_err(register)?
    } else {
        Arc::new(MemTable::try_new(crate::export::runs::schema(), vec![vec![]]).map_err(register)?)
    };
    let _ = ctx.deregister_table(name);
    ctx.register_table(name, provider).map_err(register)?;
    Ok(())
}
