//! `information_schema` as PostgreSQL shapes it, for the views BI tools read: `columns`
//! (Grafana's and Metabase's column listings, DBeaver), `table_constraints`,
//! `key_column_usage`, `constraint_column_usage` and `referential_constraints` (Tableau's,
//! Power BI's and Metabase's key queries). DataFusion's own `information_schema` names Arrow
//! types (`Decimal128(18, 2)`) and has no constraints.
//!
//! The tables are built for each data snapshot from the session's catalog (rebuy's tables and
//! views) and the data model's keys, and kept in the schema [`SCHEMA`]; the catalog rewrite
//! `rewrite/information_schema.rs` points client queries at them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use crate::storage::TableKind;

/// The schema (in catalog `rebuy`) that holds the PostgreSQL-shaped views.
pub const SCHEMA: &str = "pg_information_schema";

/// The views kept in [`SCHEMA`], by their `information_schema` names.
pub const VIEWS: &[&str] = &[
    "columns",
    "table_constraints",
    "key_column_usage",
    "constraint_column_usage",
    "referential_constraints",
    "routines",
    "parameters",
];

/// PostgreSQL's description of an Arrow type: `data_type`, `udt_name`, numeric precision,
/// radix and scale, datetime precision.
#[derive(Clone, Copy)]
struct PgType {
    data_type: &'static str,
    udt: &'static str,
    precision: Option<i32>,
    radix: Option<i32>,
    scale: Option<i32>,
    datetime: Option<i32>,
}

fn pg_type(t: &DataType) -> PgType {
    // The names are the ones pg_proc gives (one mapping); this adds the numeric facets.
    let named = super::pg_proc::pg_type(t);
    let plain = PgType {
        data_type: named.data_type(),
        udt: named.udt,
        precision: None,
        radix: None,
        scale: None,
        datetime: None,
    };
    let binary = |bits| PgType {
        precision: Some(bits),
        radix: Some(2),
        ..plain
    };
    match t {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType {
            scale: Some(0),
            ..binary(16)
        },
        DataType::Int32 | DataType::UInt16 => PgType {
            scale: Some(0),
            ..binary(32)
        },
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => PgType {
            scale: Some(0),
            ..binary(64)
        },
        DataType::Float16 | DataType::Float32 => binary(24),
        DataType::Float64 => binary(53),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => PgType {
            precision: Some(i32::from(*p)),
            radix: Some(10),
            scale: Some(i32::from(*s)),
            ..plain
        },
        DataType::Date32 | DataType::Date64 => PgType {
            datetime: Some(0),
            ..plain
        },
        DataType::Timestamp(_, _) => PgType {
            datetime: Some(6),
            ..plain
        },
        _ => plain,
    }
}

fn text_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn texts(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

/// `value` in each of `n` rows.
fn repeated(value: &str, n: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![value; n]))
}

fn ints(values: Vec<Option<i32>>) -> ArrayRef {
    Arc::new(Int32Array::from(values))
}

/// Builds the views for the tables and views of `ctx`'s schema `database.public` and
/// registers them in [`SCHEMA`].
pub async fn install(
    ctx: &SessionContext,
    database: &str,
    routines: &[super::pg_proc::Routine],
) -> Result<(), DataFusionError> {
    let Some(catalog) = ctx.catalog(database) else {
        return Ok(());
    };
    let Some(public) = catalog.schema("public") else {
        return Ok(());
    };
    let mut names = public.table_names();
    names.sort();
    let schema = Arc::new(MemorySchemaProvider::new());
    let one =
        |name: &str, fields: Vec<Field>, columns: Vec<ArrayRef>| -> Result<(), DataFusionError> {
            let s = Arc::new(Schema::new(fields));
            let batch = RecordBatch::try_new(s.clone(), columns)?;
            schema.register_table(
                name.to_string(),
                Arc::new(MemTable::try_new(s, vec![vec![batch]])?),
            )?;
            Ok(())
        };

    // columns
    let mut c: [Vec<Option<String>>; 8] = Default::default();
    let (mut ordinal, mut precision, mut radix, mut scale, mut datetime) =
        (vec![], vec![], vec![], vec![], vec![]);
    for table in &names {
        let Some(provider) = public.table(table).await? else {
            continue;
        };
        for (i, field) in provider.schema().fields().iter().enumerate() {
            let t = pg_type(field.data_type());
            c[0].push(Some(database.to_string()));
            c[1].push(Some("public".to_string()));
            c[2].push(Some(table.clone()));
            c[3].push(Some(field.name().clone()));
            c[4].push(Some(
                if field.is_nullable() { "YES" } else { "NO" }.to_string(),
            ));
            c[5].push(Some(t.data_type.to_string()));
            c[6].push(Some(t.udt.to_string()));
            c[7].push(Some("NO".to_string()));
            ordinal.push(Some(i32::try_from(i + 1).unwrap_or(i32::MAX)));
            precision.push(t.precision);
            radix.push(t.radix);
            scale.push(t.scale);
            datetime.push(t.datetime);
        }
    }
    let rows = c[0].len();
    let nulls = || texts(vec![None; rows]);
    let null_ints = || ints(vec![None; rows]);
    let [
        catalog_col,
        schema_col,
        table_col,
        column_col,
        nullable,
        data_type,
        udt,
        no,
    ] = c;
    one(
        "columns",
        vec![
            text_field("table_catalog", false),
            text_field("table_schema", false),
            text_field("table_name", false),
            text_field("column_name", false),
            Field::new("ordinal_position", DataType::Int32, false),
            text_field("column_default", true),
            text_field("is_nullable", false),
            text_field("data_type", false),
            Field::new("character_maximum_length", DataType::Int32, true),
            Field::new("character_octet_length", DataType::Int32, true),
            Field::new("numeric_precision", DataType::Int32, true),
            Field::new("numeric_precision_radix", DataType::Int32, true),
            Field::new("numeric_scale", DataType::Int32, true),
            Field::new("datetime_precision", DataType::Int32, true),
            text_field("interval_type", true),
            text_field("collation_name", true),
            text_field("udt_catalog", false),
            text_field("udt_schema", false),
            text_field("udt_name", false),
            text_field("is_identity", false),
            text_field("identity_generation", true),
            text_field("is_generated", false),
            text_field("generation_expression", true),
            text_field("is_updatable", false),
        ],
        vec![
            texts(catalog_col.clone()),
            texts(schema_col),
            texts(table_col),
            texts(column_col),
            ints(ordinal),
            nulls(),
            texts(nullable),
            texts(data_type),
            null_ints(),
            null_ints(),
            ints(precision),
            ints(radix),
            ints(scale),
            ints(datetime),
            nulls(),
            nulls(),
            texts(catalog_col),
            repeated("pg_catalog", rows),
            texts(udt),
            texts(no.clone()),
            nulls(),
            repeated("NEVER", rows),
            nulls(),
            texts(no),
        ],
    )?;

    // The data model's keys: one primary key per warehouse table, named as PostgreSQL names
    // them (`orders_pkey`).
    let keys: Vec<(&str, &[&str])> = TableKind::ALL
        .iter()
        .filter_map(|k| Some((k.name(), k.primary_key()?)))
        .filter(|(t, _)| names.iter().any(|n| n == t))
        .collect();
    let db = || Some(database.to_string());
    let public_s = || Some("public".to_string());
    let constraint = |t: &str| Some(format!("{t}_pkey"));
    let n = keys.len();
    one(
        "table_constraints",
        vec![
            text_field("constraint_catalog", false),
            text_field("constraint_schema", false),
            text_field("constraint_name", false),
            text_field("table_catalog", false),
            text_field("table_schema", false),
            text_field("table_name", false),
            text_field("constraint_type", false),
            text_field("is_deferrable", false),
            text_field("initially_deferred", false),
            text_field("enforced", false),
            text_field("nulls_distinct", true),
        ],
        vec![
            texts(vec![db(); n]),
            texts(vec![public_s(); n]),
            texts(keys.iter().map(|(t, _)| constraint(t)).collect()),
            texts(vec![db(); n]),
            texts(vec![public_s(); n]),
            texts(keys.iter().map(|(t, _)| Some(t.to_string())).collect()),
            repeated("PRIMARY KEY", n),
            repeated("NO", n),
            repeated("NO", n),
            repeated("YES", n),
            texts(vec![None; n]),
        ],
    )?;
    let key_rows: Vec<(&str, &str, i32)> = keys
        .iter()
        .flat_map(|(t, cols)| {
            cols.iter()
                .enumerate()
                .map(move |(i, c)| (*t, *c, i32::try_from(i + 1).unwrap_or(i32::MAX)))
        })
        .collect();
    let m = key_rows.len();
    one(
        "key_column_usage",
        vec![
            text_field("constraint_catalog", false),
            text_field("constraint_schema", false),
            text_field("constraint_name", false),
            text_field("table_catalog", false),
            text_field("table_schema", false),
            text_field("table_name", false),
            text_field("column_name", false),
            Field::new("ordinal_position", DataType::Int32, false),
            Field::new("position_in_unique_constraint", DataType::Int32, true),
        ],
        vec![
            texts(vec![db(); m]),
            texts(vec![public_s(); m]),
            texts(key_rows.iter().map(|(t, _, _)| constraint(t)).collect()),
            texts(vec![db(); m]),
            texts(vec![public_s(); m]),
            texts(
                key_rows
                    .iter()
                    .map(|(t, _, _)| Some(t.to_string()))
                    .collect(),
            ),
            texts(
                key_rows
                    .iter()
                    .map(|(_, c, _)| Some(c.to_string()))
                    .collect(),
            ),
            ints(key_rows.iter().map(|(_, _, i)| Some(*i)).collect()),
            ints(vec![None; m]),
        ],
    )?;
    one(
        "constraint_column_usage",
        vec![
            text_field("table_catalog", false),
            text_field("table_schema", false),
            text_field("table_name", false),
            text_field("column_name", false),
            text_field("constraint_catalog", false),
            text_field("constraint_schema", false),
            text_field("constraint_name", false),
        ],
        vec![
            texts(vec![db(); m]),
            texts(vec![public_s(); m]),
            texts(
                key_rows
                    .iter()
                    .map(|(t, _, _)| Some(t.to_string()))
                    .collect(),
            ),
            texts(
                key_rows
                    .iter()
                    .map(|(_, c, _)| Some(c.to_string()))
                    .collect(),
            ),
            texts(vec![db(); m]),
            texts(vec![public_s(); m]),
            texts(key_rows.iter().map(|(t, _, _)| constraint(t)).collect()),
        ],
    )?;
    // rebuy declares no foreign keys.
    one(
        "referential_constraints",
        [
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "unique_constraint_catalog",
            "unique_constraint_schema",
            "unique_constraint_name",
            "match_option",
            "update_rule",
            "delete_rule",
        ]
        .iter()
        .map(|n| text_field(n, false))
        .collect(),
        (0..9).map(|_| texts(vec![])).collect(),
    )?;
    install_routines(&one, database, routines)?;
    catalog.register_schema(SCHEMA, schema)?;
    Ok(())
}

/// `routines` and `parameters` for rebuy's functions (`specific_name` is the name and oid,
/// as PostgreSQL makes it: `rfm_segment_3000012`).
fn install_routines(
    one: &impl Fn(&str, Vec<Field>, Vec<ArrayRef>) -> Result<(), DataFusionError>,
    database: &str,
    routines: &[super::pg_proc::Routine],
) -> Result<(), DataFusionError> {
    let n = routines.len();
    let db = || Some(database.to_string());
    let public = || Some("public".to_string());
    let specific = |r: &super::pg_proc::Routine| Some(format!("{}_{}", r.name, r.oid));
    let each = |f: &dyn Fn(&super::pg_proc::Routine) -> Option<String>| {
        texts(routines.iter().map(f).collect())
    };
    one(
        "routines",
        [
            "specific_catalog",
            "specific_schema",
            "specific_name",
            "routine_catalog",
            "routine_schema",
            "routine_name",
            "routine_type",
            "data_type",
            "type_udt_catalog",
            "type_udt_schema",
            "type_udt_name",
            "routine_body",
            "routine_definition",
            "external_name",
            "external_language",
            "is_deterministic",
            "is_null_call",
        ]
        .iter()
        .map(|c| text_field(c, true))
        .collect(),
        vec![
            texts(vec![db(); n]),
            texts(vec![public(); n]),
            each(&specific),
            texts(vec![db(); n]),
            texts(vec![public(); n]),
            each(&|r| Some(r.name.clone())),
            repeated("FUNCTION", n),
            each(&|r| Some(r.result.data_type().to_string())),
            texts(vec![db(); n]),
            repeated("pg_catalog", n),
            each(&|r| Some(r.result.udt.to_string())),
            repeated("EXTERNAL", n),
            texts(vec![None; n]),
            each(&|r| Some(r.name.clone())),
            repeated("INTERNAL", n),
            each(&|r| Some(if r.volatility == "i" { "YES" } else { "NO" }.to_string())),
            repeated("NO", n),
        ],
    )?;
    let params: Vec<(&super::pg_proc::Routine, usize)> = routines
        .iter()
        .flat_map(|r| (0..r.arguments.len()).map(move |i| (r, i)))
        .collect();
    let m = params.len();
    let each = |f: &dyn Fn(&super::pg_proc::Routine, usize) -> Option<String>| {
        texts(params.iter().map(|(r, i)| f(r, *i)).collect())
    };
    one(
        "parameters",
        vec![
            text_field("specific_catalog", true),
            text_field("specific_schema", true),
            text_field("specific_name", true),
            Field::new("ordinal_position", DataType::Int32, true),
            text_field("parameter_mode", true),
            text_field("is_result", true),
            text_field("as_locator", true),
            text_field("parameter_name", true),
            text_field("data_type", true),
            text_field("udt_catalog", true),
            text_field("udt_schema", true),
            text_field("udt_name", true),
            text_field("parameter_default", true),
        ],
        vec![
            texts(vec![db(); m]),
            texts(vec![public(); m]),
            each(&|r, _| specific(r)),
            ints(
                params
                    .iter()
                    .map(|(_, i)| i32::try_from(i + 1).ok())
                    .collect(),
            ),
            repeated("IN", m),
            repeated("NO", m),
            repeated("NO", m),
            each(&|r, i| Some(r.arguments[i].0.clone())),
            each(&|r, i| Some(r.arguments[i].1.data_type().to_string())),
            texts(vec![db(); m]),
            repeated("pg_catalog", m),
            each(&|r, i| Some(r.arguments[i].1.udt.to_string())),
            texts(vec![None; m]),
        ],
    )
}
