//! Each connection's own catalog: the same tables, views and `pg_catalog` as the shared
//! session, in catalog and schema objects of its own.
//!
//! Connections used to share the base session's catalog, so `SELECT … INTO t` or `CREATE
//! TABLE` by one user put a table in front of every other user, in memory, past the end of the
//! connection. Here a connection's `CREATE` lands in its private copy and dies with it; only a
//! committed write to a warehouse table (admins) reaches others, through storage.
//!
//! For analysts every table is wrapped in [`ReadOnlyTable`], which has no write path at all:
//! even a plan that slipped past the access check could not insert, delete or update.

use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider, Session, TableProvider,
};
use datafusion::common::{Constraints, Result as DfResult, Statistics, plan_err};
use datafusion::datasource::TableType;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

/// A copy of `base`'s catalogs for one connection. Schemas that hold registered tables
/// (`public`) are copied table by table; computed schemas (`pg_catalog`) are shared, as they
/// accept no new tables.
pub async fn private_catalogs(
    base: &Arc<dyn CatalogProviderList>,
    read_only: bool,
) -> DfResult<Arc<dyn CatalogProviderList>> {
    let list = Arc::new(MemoryCatalogProviderList::new());
    for catalog_name in base.catalog_names() {
        let Some(catalog) = base.catalog(&catalog_name) else {
            continue;
        };
        let mine = Arc::new(MemoryCatalogProvider::new());
        for schema_name in catalog.schema_names() {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            let any: &dyn Any = schema.as_ref();
            if any.downcast_ref::<MemorySchemaProvider>().is_none() {
                mine.register_schema(&schema_name, schema)?;
                continue;
            }
            let copy = Arc::new(MemorySchemaProvider::new());
            for table_name in schema.table_names() {
                let Some(table) = schema.table(&table_name).await? else {
                    continue;
                };
                let table: Arc<dyn TableProvider> = if read_only {
                    Arc::new(ReadOnlyTable(table))
                } else {
                    table
                };
                copy.register_table(table_name, table)?;
            }
            mine.register_schema(&schema_name, copy)?;
        }
        list.register_catalog(catalog_name, mine);
    }
    Ok(list)
}

/// A table that reads like the one it wraps and refuses every write.
#[derive(Debug)]
pub struct ReadOnlyTable(pub Arc<dyn TableProvider>);

fn refused<T>(what: &str) -> DfResult<T> {
    plan_err!("cannot execute {what} in a read-only transaction (role analyst)")
}

#[async_trait]
impl TableProvider for ReadOnlyTable {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }
    fn constraints(&self) -> Option<&Constraints> {
        self.0.constraints()
    }
    fn table_type(&self) -> TableType {
        self.0.table_type()
    }
    fn get_table_definition(&self) -> Option<&str> {
        self.0.get_table_definition()
    }
    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }
    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.0.get_column_default(column)
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }
    fn statistics(&self) -> Option<Statistics> {
        self.0.statistics()
    }
    async fn insert_into(
        &self,
        _state: &dyn Session,
        _input: Arc<dyn ExecutionPlan>,
        _insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        refused("INSERT")
    }
    async fn delete_from(
        &self,
        _state: &dyn Session,
        _filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        refused("DELETE")
    }
    async fn update(
        &self,
        _state: &dyn Session,
        _assignments: Vec<(String, Expr)>,
        _filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        refused("UPDATE")
    }
    async fn truncate(&self, _state: &dyn Session) -> DfResult<Arc<dyn ExecutionPlan>> {
        refused("TRUNCATE")
    }
}
