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
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::{PgCatalogSchemaProvider, PgCatalogStaticTables};
use datafusion_pg_catalog::setup_pg_catalog;

/// Installs `pg_catalog` (and the catalog functions) in `ctx`'s catalog `database`.
pub fn install(
    ctx: &SessionContext,
    database: &str,
    routines: Arc<Vec<super::pg_proc::Routine>>,
) -> Result<(), Box<DataFusionError>> {
    // The functions and planner hooks come from the library's setup; its schema provider,
    // which holds the list strongly, is then replaced by one that does not.
    setup_pg_catalog(ctx, database, EmptyContextProvider)?;
    let list = ctx.state().catalog_list().clone();
    let weak = WeakCatalogs(Arc::downgrade(&list));
    let definitions = Arc::new(super::pg_keys::IndexDefinitions::default());
    ctx.register_udf(super::pg_keys::index_definition_udf(definitions.clone()));
    for udf in super::pg_proc::lookup_udfs(routines.clone()) {
        ctx.register_udf(udf);
    }
    for udf in super::pg_proc::regproc_udfs(static_tables()?.pg_proc.data(), &routines) {
        ctx.register_udf(udf);
    }
    let provider = WithTypmods {
        definitions,
        routines,
        inner: Arc::new(PgCatalogSchemaProvider::try_new(
            weak.clone(),
            static_tables()?,
            EmptyContextProvider,
        )?),
        catalogs: weak,
    };
    let catalog = list.catalog(database).ok_or_else(|| {
        Box::new(DataFusionError::Configuration(format!(
            "no catalog {database} to hold pg_catalog"
        )))
    })?;
    catalog.register_schema("pg_catalog", Arc::new(provider))?;
    Ok(())
}

/// PostgreSQL's own catalog rows the library ships (decoded once, shared by every snapshot's
/// session: they never change).
fn static_tables() -> Result<Arc<PgCatalogStaticTables>, Box<DataFusionError>> {
    static TABLES: std::sync::OnceLock<Arc<PgCatalogStaticTables>> = std::sync::OnceLock::new();
    if let Some(t) = TABLES.get() {
        return Ok(t.clone());
    }
    let built = Arc::new(PgCatalogStaticTables::try_new()?);
    Ok(TABLES.get_or_init(|| built).clone())
}

/// The session's catalogs, while the session lives.
#[derive(Debug, Clone)]
pub(super) struct WeakCatalogs(Weak<dyn CatalogProviderList>);

impl WeakCatalogs {
    pub(super) fn get(&self) -> Result<Arc<dyn CatalogProviderList>, DataFusionError> {
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

// ---- pg_attribute with type modifiers ----

use datafusion::arrow::array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// `pg_catalog` as the library builds it, except that `pg_attribute.atttypmod` carries a
/// numeric column's precision and scale (the library writes -1 for every column). pgjdbc's
/// `getColumns` (COLUMN_SIZE, DECIMAL_DIGITS), SQLAlchemy's `NUMERIC(18, 2)` and psql's `\d`
/// read them there.
#[derive(Debug)]
struct WithTypmods {
    inner: Arc<dyn SchemaProvider>,
    catalogs: WeakCatalogs,
    definitions: Arc<super::pg_keys::IndexDefinitions>,
    routines: Arc<Vec<super::pg_proc::Routine>>,
}

#[async_trait]
impl SchemaProvider for WithTypmods {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }
    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let table = self.inner.table(name).await?;
        if let Some(which) = super::pg_keys::KeyCatalog::of(name) {
            return Ok(table.map(|t| {
                Arc::new(super::pg_keys::KeyTable {
                    inner: t,
                    which,
                    schema: self.inner.clone(),
                    catalogs: self.catalogs.clone(),
                    definitions: self.definitions.clone(),
                }) as Arc<dyn TableProvider>
            }));
        }
        if let Some(which) = super::pg_proc::ProcCatalog::of(name) {
            return Ok(table.map(|t| {
                Arc::new(super::pg_proc::ProcTable {
                    inner: t,
                    which,
                    schema: self.inner.clone(),
                    routines: self.routines.clone(),
                }) as Arc<dyn TableProvider>
            }));
        }
        if name.eq_ignore_ascii_case("pg_settings") {
            return Ok(Some(settings_table(table)?));
        }
        if !name.eq_ignore_ascii_case("pg_attribute") {
            return Ok(table);
        }
        Ok(table.map(|t| {
            Arc::new(Attributes {
                inner: t,
                schema: self.inner.clone(),
                catalogs: self.catalogs.clone(),
            }) as Arc<dyn TableProvider>
        }))
    }
    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

#[derive(Debug)]
struct Attributes {
    inner: Arc<dyn TableProvider>,
    schema: Arc<dyn SchemaProvider>,
    catalogs: WeakCatalogs,
}

pub(super) async fn read_all(
    table: Arc<dyn TableProvider>,
    state: &dyn Session,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    let plan = table.scan(state, None, &[], None).await?;
    datafusion::physical_plan::collect(plan, state.task_ctx()).await
}

/// A column of `batch` by name, as 64-bit integers or text.
pub(super) fn ints(batch: &RecordBatch, name: &str) -> Option<Int64Array> {
    let column = batch.column_by_name(name)?;
    let cast = datafusion::arrow::compute::cast(column, &DataType::Int64).ok()?;
    cast.as_any().downcast_ref::<Int64Array>().cloned()
}

pub(super) fn texts(batch: &RecordBatch, name: &str) -> Option<StringArray> {
    let column = batch.column_by_name(name)?;
    let cast = datafusion::arrow::compute::cast(column, &DataType::Utf8).ok()?;
    cast.as_any().downcast_ref::<StringArray>().cloned()
}

/// The rows of a function call: its arguments' length, 1 when all are constants.
pub(super) fn call_rows(args: &[datafusion::logical_expr::ColumnarValue]) -> usize {
    args.iter()
        .find_map(|a| match a {
            datafusion::logical_expr::ColumnarValue::Array(a) => Some(a.len()),
            datafusion::logical_expr::ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1)
}

/// Argument `i` of a call as 64-bit integers (None when there is no such argument).
pub(super) fn int_argument(
    args: &[datafusion::logical_expr::ColumnarValue],
    i: usize,
    rows: usize,
) -> Result<Option<Int64Array>, DataFusionError> {
    let Some(arg) = args.get(i) else {
        return Ok(None);
    };
    let cast = datafusion::arrow::compute::cast(&arg.to_array(rows)?, &DataType::Int64)?;
    Ok(cast.as_any().downcast_ref::<Int64Array>().cloned())
}

/// Argument `i` of a call as text (None when there is no such argument).
pub(super) fn text_argument(
    args: &[datafusion::logical_expr::ColumnarValue],
    i: usize,
    rows: usize,
) -> Result<Option<StringArray>, DataFusionError> {
    let Some(arg) = args.get(i) else {
        return Ok(None);
    };
    let cast = datafusion::arrow::compute::cast(&arg.to_array(rows)?, &DataType::Utf8)?;
    Ok(cast.as_any().downcast_ref::<StringArray>().cloned())
}

/// A stable text-valued function of any arguments, computed row by row by `f`.
pub(super) fn text_function(
    name: &'static str,
    f: impl Fn(&[datafusion::logical_expr::ColumnarValue]) -> Result<StringArray, DataFusionError>
    + Send
    + Sync
    + 'static,
) -> datafusion::logical_expr::ScalarUDF {
    datafusion::logical_expr::ScalarUDF::from(
        datafusion::logical_expr::SimpleScalarUDF::new_with_signature(
            name,
            datafusion::logical_expr::Signature::variadic_any(
                datafusion::logical_expr::Volatility::Stable,
            ),
            DataType::Utf8,
            Arc::new(move |args: &[datafusion::logical_expr::ColumnarValue]| {
                Ok(datafusion::logical_expr::ColumnarValue::Array(Arc::new(f(
                    args,
                )?)))
            }),
        ),
    )
}

/// `pg_settings` with a row for every parameter `SHOW` knows, at the server's defaults (the
/// library's view has one row; pgjdbc reads `max_index_keys` there before its key queries).
/// A session's own `SET`s show in `SHOW` and `current_setting()`, not here.
fn settings_table(
    library: Option<Arc<dyn TableProvider>>,
) -> Result<Arc<dyn TableProvider>, DataFusionError> {
    let defaults = super::settings::Settings::new();
    let rows: Vec<(&str, &str)> = defaults.all().collect();
    let schema = match &library {
        Some(t) => t.schema(),
        None => Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            datafusion::arrow::datatypes::Field::new("name", DataType::Utf8, true),
            datafusion::arrow::datatypes::Field::new("setting", DataType::Utf8, true),
        ])),
    };
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "name" => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
            "setting" | "reset_val" | "boot_val" => {
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1)))
            }
            "source" => Arc::new(StringArray::from_iter_values(
                rows.iter().map(|_| "default"),
            )),
            _ => datafusion::arrow::array::new_null_array(f.data_type(), rows.len()),
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(datafusion::datasource::MemTable::try_new(
        schema,
        vec![vec![batch]],
    )?))
}

/// `count` catalog rows of `schema`, with the values `set(column, row)` gives; every other
/// column is NULL where the catalog allows it, else zero, false or empty (rebuy's rows in
/// catalogs whose other rows are PostgreSQL's own).
pub(super) fn catalog_rows(
    schema: &SchemaRef,
    count: usize,
    set: impl Fn(&str, usize) -> Option<ScalarValue>,
) -> Result<RecordBatch, DataFusionError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let mut values = Vec::with_capacity(count);
        for row in 0..count {
            values.push(match set(field.name(), row) {
                Some(v) => v,
                None if field.is_nullable() => ScalarValue::try_from(field.data_type())?,
                None if *field.data_type() == DataType::Boolean => {
                    ScalarValue::Boolean(Some(false))
                }
                None if *field.data_type() == DataType::Utf8 => {
                    ScalarValue::Utf8(Some(String::new()))
                }
                None => ScalarValue::new_zero(field.data_type())?,
            });
        }
        let array = if values.is_empty() {
            datafusion::arrow::array::new_empty_array(field.data_type())
        } else {
            ScalarValue::iter_to_array(values)?
        };
        columns.push(if array.data_type() == field.data_type() {
            array
        } else {
            datafusion::arrow::compute::cast(&array, field.data_type())?
        });
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The library's schemas by oid.
pub(super) async fn namespaces(
    schema: &dyn SchemaProvider,
    state: &dyn Session,
) -> Result<std::collections::HashMap<i64, String>, DataFusionError> {
    let mut namespaces = std::collections::HashMap::new();
    if let Some(t) = schema.table("pg_namespace").await? {
        for b in read_all(t, state).await? {
            if let (Some(oid), Some(name)) = (ints(&b, "oid"), texts(&b, "nspname")) {
                for i in 0..b.num_rows() {
                    namespaces.insert(oid.value(i), name.value(i).to_string());
                }
            }
        }
    }
    Ok(namespaces)
}

/// A relation of the library's `pg_class`.
pub(super) struct Relation {
    pub schema: String,
    pub name: String,
    pub namespace: i64,
}

/// The library's relations by oid, from `class` (its `pg_class` rows) when the caller has
/// read them already, else read here.
pub(super) async fn relations(
    schema: &dyn SchemaProvider,
    state: &dyn Session,
    class: Option<&[RecordBatch]>,
) -> Result<std::collections::HashMap<i64, Relation>, DataFusionError> {
    let namespaces = namespaces(schema, state).await?;
    let read;
    let class = match class {
        Some(c) => c,
        None => {
            read = match schema.table("pg_class").await? {
                Some(t) => read_all(t, state).await?,
                None => vec![],
            };
            &read
        }
    };
    let mut relations = std::collections::HashMap::new();
    for b in class {
        if let (Some(oid), Some(name), Some(ns)) =
            (ints(b, "oid"), texts(b, "relname"), ints(b, "relnamespace"))
        {
            for i in 0..b.num_rows() {
                if let Some(schema) = namespaces.get(&ns.value(i)) {
                    relations.insert(
                        oid.value(i),
                        Relation {
                            schema: schema.clone(),
                            name: name.value(i).to_string(),
                            namespace: ns.value(i),
                        },
                    );
                }
            }
        }
    }
    Ok(relations)
}

#[async_trait]
impl TableProvider for Attributes {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let attributes = read_all(self.inner.clone(), state).await?;
        let relations = relations(&*self.schema, state, None).await?;
        let catalogs = self.catalogs.get()?;
        let mut fixed = Vec::with_capacity(attributes.len());
        for batch in attributes {
            fixed.push(with_typmods(batch, &relations, &catalogs).await?);
        }
        Ok(MemorySourceConfig::try_new_exec(
            &[fixed],
            self.schema(),
            projection.cloned(),
        )?)
    }
}

async fn with_typmods(
    batch: RecordBatch,
    relations: &std::collections::HashMap<i64, Relation>,
    catalogs: &Arc<dyn CatalogProviderList>,
) -> Result<RecordBatch, DataFusionError> {
    let (Some(relid), Some(name), Some(index)) = (
        ints(&batch, "attrelid"),
        texts(&batch, "attname"),
        batch.schema().index_of("atttypmod").ok(),
    ) else {
        return Ok(batch);
    };
    let Some(old) = batch
        .column(index)
        .as_any()
        .downcast_ref::<Int32Array>()
        .cloned()
    else {
        return Ok(batch);
    };
    let mut schemas: std::collections::HashMap<i64, Option<SchemaRef>> = Default::default();
    let mut mods = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let rel = relid.value(i);
        if !schemas.contains_key(&rel) {
            let found = match relations.get(&rel) {
                Some(r) => CatalogInfo::table_schema(
                    catalogs,
                    super::pgcompat::DATABASE,
                    &r.schema,
                    &r.name,
                )
                .await
                .ok()
                .flatten(),
                None => None,
            };
            schemas.insert(rel, found);
        }
        let typmod = schemas
            .get(&rel)
            .and_then(|s| s.as_ref())
            .and_then(|s| {
                s.field_with_name(name.value(i))
                    .ok()
                    .map(|f| f.data_type().clone())
            })
            .and_then(|t| match t {
                DataType::Decimal128(p, s) | DataType::Decimal256(p, s) if s >= 0 => {
                    Some(((i32::from(p) << 16) | i32::from(s as u8)) + 4)
                }
                _ => None,
            });
        mods.push(typmod.unwrap_or_else(|| if old.is_null(i) { -1 } else { old.value(i) }));
    }
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns[index] = Arc::new(Int32Array::from(mods));
    RecordBatch::try_new(batch.schema(), columns).map_err(DataFusionError::from)
}

#[cfg(test)]
mod tests {
    /// A session built for a snapshot is freed when the server lets it go: nothing in it may
    /// hold it (each ingest builds one; a cycle kept every one of them).
    #[tokio::test]
    async fn a_snapshot_session_is_freed_when_dropped() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/fixture/warehouse");
        let warehouse = crate::storage::Warehouse::open(dir).unwrap();
        let plain = crate::session::build_session(&warehouse).await.unwrap();
        let weak = plain.state_weak_ref();
        drop(plain);
        assert!(weak.upgrade().is_none(), "the plain session keeps itself");
        let ctx = crate::server::pgcompat::build_base(&warehouse)
            .await
            .unwrap();
        let weak = ctx.state_weak_ref();
        let catalogs = std::sync::Arc::downgrade(&ctx.state().catalog_list().clone());
        drop(ctx);
        assert!(
            catalogs.upgrade().is_none(),
            "the catalog list outlives the session"
        );
        assert!(weak.upgrade().is_none(), "the session keeps itself");
    }
}
