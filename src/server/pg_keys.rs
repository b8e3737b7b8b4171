//! The data model's keys in `pg_catalog`, where drivers look for them: a primary key
//! constraint in `pg_constraint`, its unique index in `pg_index` and the index's relation in
//! `pg_class`. pgjdbc's `getPrimaryKeys`/`getIndexInfo` (which Tableau and DBeaver call),
//! SQLAlchemy's `get_pk_constraint` and Metabase read keys there rather than in
//! `information_schema`.
//!
//! The library ships PostgreSQL's own rows of these catalogs with the key columns as text
//! (`'[1]'`, `'1 2'`); clients index them (`conkey[1]`, `= ANY(conkey)`), unnest them and
//! take their bounds, so here they are arrays of `int2`, as in PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, Int16Builder, ListBuilder, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::pg_catalog::{
    WeakCatalogs, call_rows, catalog_rows, int_argument, read_all, relations, text_function,
};
use crate::storage::TableKind;

/// Oids of the keys' index and constraint rows: the table's oid plus these. The library
/// numbers relations upwards from 16384, one per table, view and schema, far below them.
const INDEX_OID_OFFSET: i64 = 1_000_000;
const CONSTRAINT_OID_OFFSET: i64 = 2_000_000;
/// `pg_am.oid` of btree, the access method PostgreSQL gives a primary key's index.
const BTREE: i32 = 403;

/// The catalogs this module extends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum KeyCatalog {
    Class,
    Index,
    Constraint,
}

impl KeyCatalog {
    pub(super) fn of(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "pg_class" => Some(Self::Class),
            "pg_index" => Some(Self::Index),
            "pg_constraint" => Some(Self::Constraint),
            _ => None,
        }
    }

    /// The columns that are `int2vector`/`int2[]` in PostgreSQL.
    fn array_columns(self) -> &'static [&'static str] {
        match self {
            Self::Class => &[],
            Self::Index => &["indkey", "indoption"],
            Self::Constraint => &["conkey", "confkey"],
        }
    }
}

/// One of the catalogs, with the keys' rows added and its key columns as arrays.
#[derive(Debug)]
pub(super) struct KeyTable {
    pub(super) inner: Arc<dyn TableProvider>,
    pub(super) which: KeyCatalog,
    pub(super) schema: Arc<dyn SchemaProvider>,
    pub(super) catalogs: WeakCatalogs,
    pub(super) definitions: Arc<IndexDefinitions>,
}

fn int2_array() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int16, true)))
}

#[async_trait]
impl TableProvider for KeyTable {
    fn schema(&self) -> SchemaRef {
        let inner = self.inner.schema();
        let arrays = self.which.array_columns();
        Arc::new(Schema::new_with_metadata(
            inner
                .fields()
                .iter()
                .map(|f| {
                    if arrays.contains(&f.name().as_str()) {
                        Arc::new(f.as_ref().clone().with_data_type(int2_array()))
                    } else {
                        f.clone()
                    }
                })
                .collect::<Vec<_>>(),
            inner.metadata().clone(),
        ))
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
        let schema = self.schema();
        let library = read_all(self.inner.clone(), state).await?;
        // pg_class's own rows are the relations the keys are found among: not read twice.
        let class = (self.which == KeyCatalog::Class).then_some(library.as_slice());
        let keys = keys(&*self.schema, &self.catalogs, state, class).await?;
        let mut batches = Vec::with_capacity(library.len() + 1);
        for batch in &library {
            batches.push(with_arrays(batch, &schema)?);
        }
        self.definitions.remember(&keys);
        if !keys.is_empty() {
            batches.push(key_rows(self.which, &schema, &keys)?);
        }
        Ok(MemorySourceConfig::try_new_exec(
            &[batches],
            schema,
            projection.cloned(),
        )?)
    }
}

/// A primary key of one of rebuy's tables, with the oids clients join on.
struct Key {
    table: &'static str,
    table_oid: i64,
    namespace: i64,
    attnums: Vec<i16>,
    columns: &'static [&'static str],
}

async fn keys(
    schema: &dyn SchemaProvider,
    catalogs: &WeakCatalogs,
    state: &dyn Session,
    class: Option<&[RecordBatch]>,
) -> Result<Vec<Key>, DataFusionError> {
    let relations = relations(schema, state, class).await?;
    let catalogs = catalogs.get()?;
    let mut out = Vec::new();
    for kind in TableKind::ALL {
        let Some(key) = kind.primary_key() else {
            continue;
        };
        let Some((&oid, relation)) = relations
            .iter()
            .find(|(_, r)| r.schema == "public" && r.name == kind.name())
        else {
            continue;
        };
        let Some(table_schema) =
            datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo::table_schema(
                &catalogs,
                super::pgcompat::DATABASE,
                "public",
                kind.name(),
            )
            .await?
        else {
            continue;
        };
        let attnums: Option<Vec<i16>> = key
            .iter()
            .map(|c| {
                table_schema
                    .index_of(c)
                    .ok()
                    .and_then(|i| i16::try_from(i + 1).ok())
            })
            .collect();
        if let Some(attnums) = attnums {
            out.push(Key {
                table: kind.name(),
                table_oid: oid,
                namespace: relation.namespace,
                attnums,
                columns: key,
            });
        }
    }
    Ok(out)
}

/// `batch` (the library's rows) with its key columns parsed into arrays.
fn with_arrays(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, DataFusionError> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.data_type() == column.data_type() {
            columns.push(column.clone());
            continue;
        }
        let text = datafusion::arrow::compute::cast(column, &DataType::Utf8)?;
        let text = text
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .ok_or_else(|| DataFusionError::Internal(format!("{} is not text", field.name())))?;
        let mut list = ListBuilder::new(Int16Builder::new());
        for i in 0..text.len() {
            if text.is_null(i) {
                list.append_null();
                continue;
            }
            // PostgreSQL's rows as exported: `[1, 2]` for int2[], `1 2` for int2vector.
            for n in text
                .value(i)
                .split(|c: char| !(c.is_ascii_digit() || c == '-'))
                .filter(|s| !s.is_empty())
            {
                list.values().append_option(n.parse::<i16>().ok());
            }
            list.append(true);
        }
        columns.push(Arc::new(list.finish()) as ArrayRef);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The rows of `which` for `keys`.
fn key_rows(
    which: KeyCatalog,
    schema: &SchemaRef,
    keys: &[Key],
) -> Result<RecordBatch, DataFusionError> {
    let text = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
    let oid = |n: i64| ScalarValue::Int32(i32::try_from(n).ok());
    let int2 = |n: usize| ScalarValue::Int16(i16::try_from(n).ok());
    let yes = || ScalarValue::Boolean(Some(true));
    let int2s = |v: &[i16]| {
        let values: Vec<ScalarValue> = v.iter().map(|n| ScalarValue::Int16(Some(*n))).collect();
        ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Int16))
    };
    catalog_rows(schema, keys.len(), |column, row| {
        let key = &keys[row];
        let n = key.attnums.len();
        let name = format!("{}_pkey", key.table);
        let index = key.table_oid + INDEX_OID_OFFSET;
        Some(match (which, column) {
            (KeyCatalog::Class, "oid") => oid(index),
            (KeyCatalog::Class, "relname") => text(&name),
            (KeyCatalog::Class, "relnamespace") => oid(key.namespace),
            (KeyCatalog::Class, "relam") => ScalarValue::Int32(Some(BTREE)),
            (KeyCatalog::Class, "relfilenode") => oid(index),
            (KeyCatalog::Class, "relpages") => ScalarValue::Int32(Some(1)),
            (KeyCatalog::Class, "relpersistence") => text("p"),
            (KeyCatalog::Class, "relkind") => text("i"),
            (KeyCatalog::Class, "relnatts") => int2(n),
            (KeyCatalog::Class, "relispopulated") => yes(),
            (KeyCatalog::Class, "relreplident") => text("n"),
            (KeyCatalog::Index, "indexrelid") => oid(index),
            (KeyCatalog::Index, "indrelid") => oid(key.table_oid),
            (KeyCatalog::Index, "indnatts" | "indnkeyatts") => int2(n),
            (
                KeyCatalog::Index,
                "indisunique" | "indisprimary" | "indimmediate" | "indisvalid" | "indisready"
                | "indislive",
            ) => yes(),
            (KeyCatalog::Index, "indkey") => int2s(&key.attnums),
            (KeyCatalog::Index, "indoption") => int2s(&vec![0; n]),
            (KeyCatalog::Index, "indcollation") => text(&vec!["0"; n].join(" ")),
            (KeyCatalog::Constraint, "oid") => oid(key.table_oid + CONSTRAINT_OID_OFFSET),
            (KeyCatalog::Constraint, "conname") => text(&name),
            (KeyCatalog::Constraint, "connamespace") => oid(key.namespace),
            (KeyCatalog::Constraint, "contype") => text("p"),
            (KeyCatalog::Constraint, "conrelid") => oid(key.table_oid),
            (KeyCatalog::Constraint, "conindid") => oid(index),
            (KeyCatalog::Constraint, "convalidated" | "conislocal" | "connoinherit") => yes(),
            (KeyCatalog::Constraint, "confupdtype" | "confdeltype" | "confmatchtype") => text(" "),
            (KeyCatalog::Constraint, "conkey") => int2s(&key.attnums),
            _ => return None,
        })
    })
}

/// The keys' indexes by oid, for `pg_get_indexdef`: noted by every scan of the catalogs above,
/// which a query that has an index's oid has made (the oids come from them).
#[derive(Debug, Default)]
pub(super) struct IndexDefinitions(std::sync::RwLock<HashMap<i64, (String, Vec<String>)>>);

impl IndexDefinitions {
    fn remember(&self, keys: &[Key]) {
        if let Ok(mut map) = self.0.write() {
            map.clear();
            for k in keys {
                map.insert(
                    k.table_oid + INDEX_OID_OFFSET,
                    (
                        k.table.to_string(),
                        k.columns.iter().map(|c| c.to_string()).collect(),
                    ),
                );
            }
        }
    }

    /// PostgreSQL's `pg_get_indexdef(oid, column, pretty)`: the index's statement for column
    /// 0, else the column's name; NULL for an index it does not know.
    fn definition(&self, oid: i64, column: i64) -> Option<String> {
        let map = self.0.read().ok()?;
        let (table, columns) = map.get(&oid)?;
        if column == 0 {
            Some(format!(
                "CREATE UNIQUE INDEX {table}_pkey ON public.{table} USING btree ({})",
                columns.join(", ")
            ))
        } else {
            let i = usize::try_from(column.checked_sub(1)?).ok()?;
            columns.get(i).cloned()
        }
    }
}

/// `pg_get_indexdef`, which pgjdbc's `getIndexInfo` names index columns with.
pub(super) fn index_definition_udf(
    definitions: Arc<IndexDefinitions>,
) -> datafusion::logical_expr::ScalarUDF {
    text_function("pg_get_indexdef", move |args| {
        let rows = call_rows(args);
        let oids = int_argument(args, 0, rows)?;
        let columns = int_argument(args, 1, rows)?;
        Ok((0..rows)
            .map(|r| {
                let oid = oids.as_ref().filter(|a| a.is_valid(r))?.value(r);
                let column = match &columns {
                    Some(c) if c.is_valid(r) => c.value(r),
                    Some(_) => return None,
                    None => 0,
                };
                definitions.definition(oid, column)
            })
            .collect())
    })
}
