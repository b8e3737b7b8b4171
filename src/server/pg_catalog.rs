//! The emulated `pg_catalog` schema, installed so that a session does not own itself.
//!
//! datafusion-pg-catalog's schema provider reads the tables it describes through the
//! session's catalog list, and it is itself registered in that list: a reference cycle, so
//! that every session built for a new data snapshot (one per ingest) stayed in memory with its
//! in-memory lookup tables. Here the provider reads the list through a weak reference; the
//! session's own catalog holds the only strong one.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::CatalogProviderList;
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::{
    PgCatalogSchemaProvider, PgCatalogStaticTables,
};
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;

/// Installs `pg_catalog` (and the catalog functions) in `ctx`'s catalog `database`.
pub fn install(ctx: &SessionContext, database: &str) -> Result<(), Box<DataFusionError>> {
    // The functions and planner hooks come from the library's setup; its schema provider,
    // which holds the list strongly, is then replaced by one that does not.
    setup_pg_catalog(ctx, database, EmptyContextProvider)?;
    let list = ctx.state().catalog_list().clone();
    let provider = PgCatalogSchemaProvider::try_new(
        WeakCatalogs(Arc::downgrade(&list)),
        Arc::new(PgCatalogStaticTables::try_new()?),
        EmptyContextProvider,
    )?;
    let catalog = list.catalog(database).ok_or_else(|| {
        Box::new(DataFusionError::Configuration(format!(
            "no catalog {database} to hold pg_catalog"
        )))
    })?;
    catalog.register_schema("pg_catalog", Arc::new(provider))?;
    Ok(())
}

/// The session's catalogs, while the session lives.
#[derive(Debug, Clone)]
struct WeakCatalogs(Weak<dyn CatalogProviderList>);

impl WeakCatalogs {
    fn get(&self) -> Result<Arc<dyn CatalogProviderList>, DataFusionError> {
        self.0
            .upgrade()
            .ok_or_else(|| DataFusionError::Execution("the session has ended".into()))
    }
}

#[async_trait]
impl CatalogInfo for WeakCatalogs {
    async fn catalog_names(&self) -> Result<Vec<String>, DataFusionError> {
        CatalogInfo::catalog_names(&self.get()?).await
    }

    async fn schema_names(&self, catalog: &str) -> Result<Option<Vec<String>>, DataFusionError> {
        CatalogInfo::schema_names(&self.get()?, catalog).await
    }

    async fn table_names(
        &self,
        catalog: &str,
        schema: &str,
    ) -> Result<Option<Vec<String>>, DataFusionError> {
        CatalogInfo::table_names(&self.get()?, catalog, schema).await
    }

    async fn table_schema(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<SchemaRef>, DataFusionError> {
        CatalogInfo::table_schema(&self.get()?, catalog, schema, table).await
    }

    async fn table_type(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<TableType>, DataFusionError> {
        CatalogInfo::table_type(&self.get()?, catalog, schema, table).await
    }
}
