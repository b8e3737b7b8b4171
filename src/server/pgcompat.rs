//! PostgreSQL look-alike parts of the served session: `pg_catalog` and the catalog functions
//! clients call on connect (from datafusion-pg-catalog), plus what it lacks: a PostgreSQL-shaped
//! `version()`, per-connection `current_user` and `current_setting`, and the description and
//! function-signature helpers psql, pgjdbc and BI tools select from.

use datafusion::execution::FunctionRegistry;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::ServeError;
use super::settings::{PG_VERSION, Settings};
use crate::storage::Warehouse;

/// The catalog (database) name clients connect to.
pub const DATABASE: &str = "rebuy";

pub fn version_string() -> String {
    format!(
        "PostgreSQL {PG_VERSION} (rebuy {}) on {}-linux, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// The session every connection is cloned from: warehouse tables, rebuy functions and views,
/// and the PostgreSQL catalog.
pub async fn build_base(warehouse: &Warehouse) -> Result<SessionContext, ServeError> {
    let ctx = crate::session::build_session(warehouse).await?;
    hold_small_tables_in_memory(&ctx).await?;
    let routines = super::pg_proc::routines().await;
    super::pg_catalog::install(&ctx, DATABASE, routines.clone())
        .map_err(|e| ServeError::Catalog(e.to_string()))?;
    super::information_schema::install(&ctx, DATABASE, &routines)
        .await
        .map_err(|e| ServeError::Catalog(e.to_string()))?;
    let version = version_string();
    ctx.register_udf(constant_udf(
        "version",
        ScalarValue::Utf8(Some(version)),
        Signature::exact(vec![], Volatility::Stable),
    ));
    // NULL for what rebuy has none of. (`obj_description`, `pg_get_function_*` and
    // `pg_get_indexdef` answer for rebuy's routines and keys: see pg_catalog::install.)
    for name in [
        "col_description",
        "shobj_description",
        "pg_get_function_sqlbody",
        "pg_get_viewdef",
        "pg_get_triggerdef",
        "pg_get_serial_sequence",
        "pg_get_expr",
    ] {
        // rebuy stores no expressions (column defaults, index predicates): the library's
        // `pg_get_expr` answers '' where PostgreSQL's answers NULL for a NULL node tree.
        if ctx.udf(name).is_err() || name == "pg_get_expr" {
            ctx.register_udf(constant_udf(
                name,
                ScalarValue::Utf8(None),
                Signature::variadic_any(Volatility::Stable),
            ));
        }
    }
    ctx.register_udf(ScalarUDF::new_from_impl(JsonBuildObject {
        signature: Signature::variadic_any(Volatility::Immutable),
    }));
    ctx.register_udf(super::pg_arrays::expand_array_udf());
    ctx.register_udf(ScalarUDF::new_from_impl(ToRegtype {
        signature: Signature::any(1, Volatility::Stable),
    }));
    for name in [
        "pg_function_is_visible",
        "pg_type_is_visible",
        "pg_collation_is_visible",
        "pg_conversion_is_visible",
        "pg_opclass_is_visible",
        "pg_is_in_recovery",
    ] {
        if ctx.udf(name).is_err() {
            let value = name != "pg_is_in_recovery";
            ctx.register_udf(constant_udf(
                name,
                ScalarValue::Boolean(Some(value)),
                Signature::variadic_any(Volatility::Stable),
            ));
        }
    }
    Ok(ctx)
}

/// Lookup tables (fx_rates, marketing_spend; customers up to [`MEMORY_TABLE_MAX_ROWS`]) are served from memory
/// for the snapshot: a small query on them then costs a fraction of a millisecond instead of
/// reopening Parquet files. Orders always stay on storage. Views are recreated over them.
pub const MEMORY_TABLE_MAX_ROWS: usize = 500_000;

async fn hold_small_tables_in_memory(ctx: &SessionContext) -> Result<(), ServeError> {
    use crate::storage::TableKind;
    let err = |e: datafusion::error::DataFusionError| ServeError::Catalog(e.to_string());
    let mut changed = false;
    for kind in [
        TableKind::FxRates,
        TableKind::Customers,
        TableKind::MarketingSpend,
    ] {
        let name = kind.name();
        let df = ctx.table(name).await.map_err(err)?;
        let rows = df.clone().count().await.map_err(err)?;
        if rows > MEMORY_TABLE_MAX_ROWS {
            continue;
        }
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await.map_err(err)?;
        let table =
            datafusion::catalog::MemTable::try_new(Arc::new(schema), vec![batches]).map_err(err)?;
        let _ = ctx.deregister_table(name);
        ctx.register_table(name, Arc::new(table)).map_err(err)?;
        changed = true;
    }
    if changed {
        crate::views::register_views(ctx).await?;
    }
    Ok(())
}

/// Functions whose answer depends on the connection: who is logged in, and its settings.
pub fn register_connection_functions(
    ctx: &SessionContext,
    user: &str,
    settings: Arc<Mutex<Settings>>,
) {
    for name in ["current_user", "session_user", "user", "current_role"] {
        ctx.register_udf(constant_udf(
            name,
            ScalarValue::Utf8(Some(user.to_string())),
            Signature::exact(vec![], Volatility::Stable),
        ));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(SetConfig {
        settings: settings.clone(),
        signature: Signature::any(3, Volatility::Volatile),
    }));
    // The session's engine options come with each call (`config_options`): holding the
    // session here would make it own itself, and a refreshed connection would never be freed.
    ctx.register_udf(ScalarUDF::new_from_impl(CurrentSetting {
        settings,
        signature: Signature::one_of(
            vec![
                datafusion::logical_expr::TypeSignature::String(1),
                datafusion::logical_expr::TypeSignature::Any(2),
            ],
            Volatility::Stable,
        ),
    }));
}

/// Looks a setting up the way SHOW does: rebuy's and DataFusion's in the session, PostgreSQL's
/// in the connection's settings.
pub fn setting_value(ctx: &SessionContext, settings: &Settings, name: &str) -> Option<String> {
    setting_in(ctx.state().config_options(), settings, name)
}

/// [`setting_value`] with the session's engine options given.
fn setting_in(
    options: &datafusion::config::ConfigOptions,
    settings: &Settings,
    name: &str,
) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("rebuy.") || lower.starts_with("datafusion.") {
        return options
            .entries()
            .into_iter()
            .find(|e| e.key.eq_ignore_ascii_case(&lower))
            .map(|e| e.value.unwrap_or_default());
    }
    settings.get(name).map(str::to_string)
}

fn constant_udf(name: &str, value: ScalarValue, signature: Signature) -> ScalarUDF {
    ScalarUDF::new_from_impl(Constant {
        name: name.to_string(),
        value,
        signature,
    })
}

#[derive(Debug)]
struct Constant {
    name: String,
    value: ScalarValue,
    signature: Signature,
}

impl PartialEq for Constant {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value
    }
}
impl Eq for Constant {}
impl std::hash::Hash for Constant {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.value.data_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if args.args.is_empty() {
            return Ok(ColumnarValue::Scalar(self.value.clone()));
        }
        Ok(ColumnarValue::Array(
            self.value.to_array_of_size(args.number_rows)?,
        ))
    }
}

struct CurrentSetting {
    settings: Arc<Mutex<Settings>>,
    signature: Signature,
}

impl std::fmt::Debug for CurrentSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("current_setting")
    }
}
impl PartialEq for CurrentSetting {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.settings, &other.settings)
    }
}
impl Eq for CurrentSetting {}
impl std::hash::Hash for CurrentSetting {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "current_setting".hash(state);
    }
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let missing_ok = match args.args.get(1) {
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(b)))) => *b,
            _ => false,
        };
        let names: ArrayRef = args.args[0].clone().into_array(rows)?;
        let names = datafusion::arrow::compute::cast(&names, &DataType::Utf8)?;
        let names = names
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("name".into()))?;
        let settings = self
            .settings
            .lock()
            .map_err(|_| datafusion::error::DataFusionError::Internal("settings lock".into()))?
            .clone();
        let mut out = Vec::with_capacity(datafusion::arrow::array::Array::len(names));
        for name in names.iter() {
            match name {
                None => out.push(None),
                Some(n) => match setting_in(&args.config_options, &settings, n) {
                    Some(v) => out.push(Some(v)),
                    None if missing_ok => out.push(None),
                    None => {
                        return Err(datafusion::error::DataFusionError::External(Box::new(
                            crate::functions::FunctionError::InvalidArgument {
                                function: "current_setting",
                                argument: "setting_name",
                                message: format!("names no known configuration parameter ({n:?})"),
                            },
                        )));
                    }
                },
            }
        }
        let array: ArrayRef = Arc::new(StringArray::from(out));
        if matches!(args.args[0], ColumnarValue::Scalar(_)) {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?));
        }
        Ok(ColumnarValue::Array(array))
    }
}

/// `set_config(name, value, is_local)`: what asyncpg and others call instead of SET.
struct SetConfig {
    settings: Arc<Mutex<Settings>>,
    signature: Signature,
}

impl std::fmt::Debug for SetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("set_config")
    }
}
impl PartialEq for SetConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.settings, &other.settings)
    }
}
impl Eq for SetConfig {}
impl std::hash::Hash for SetConfig {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "set_config".hash(state);
    }
}

fn scalar_text(v: &ColumnarValue) -> Option<String> {
    match v {
        ColumnarValue::Scalar(s) => match s {
            ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => {
                v.clone()
            }
            other if !other.is_null() => Some(other.to_string()),
            _ => None,
        },
        ColumnarValue::Array(_) => None,
    }
}

impl ScalarUDFImpl for SetConfig {
    fn name(&self) -> &str {
        "set_config"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let name = scalar_text(&args.args[0]);
        let value = scalar_text(&args.args[1]);
        let (Some(name), Some(value)) = (name, value) else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("rebuy.") || lower.starts_with("datafusion.") {
            // Those live in the query's own session, which a function cannot change.
            return Err(crate::functions::FunctionError::InvalidSetting(format!(
                "set_config() cannot change \"{name}\": use SET {name} = …"
            ))
            .into());
        }
        let value = super::settings::checked_value(&name, &value)
            .map_err(|(_, message)| crate::functions::FunctionError::InvalidSetting(message))?;
        if let Ok(mut s) = self.settings.lock() {
            if value.eq_ignore_ascii_case("default") {
                s.reset(&name);
            } else {
                s.set(&name, value.clone());
            }
        }
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(value))))
    }
}

/// `to_regtype(name)`: the type's OID, or NULL when there is no such type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToRegtype {
    signature: Signature,
}

fn type_oid(name: &str) -> Option<i32> {
    let n = name
        .trim()
        .trim_start_matches("pg_catalog.")
        .to_ascii_lowercase();
    Some(match n.as_str() {
        "bool" | "boolean" => 16,
        "bytea" => 17,
        "name" => 19,
        "int8" | "bigint" => 20,
        "int2" | "smallint" => 21,
        "int4" | "integer" | "int" => 23,
        "text" => 25,
        "oid" => 26,
        "json" => 114,
        "float4" | "real" => 700,
        "float8" | "double precision" => 701,
        "varchar" | "character varying" => 1043,
        "date" => 1082,
        "time" => 1083,
        "timestamp" | "timestamp without time zone" => 1114,
        "timestamptz" | "timestamp with time zone" => 1184,
        "interval" => 1186,
        "numeric" | "decimal" => 1700,
        "uuid" => 2950,
        "jsonb" => 3802,
        _ => return None,
    })
}

impl ScalarUDFImpl for ToRegtype {
    fn name(&self) -> &str {
        "to_regtype"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let names = args.args[0].clone().into_array(args.number_rows)?;
        let names = datafusion::arrow::compute::cast(&names, &DataType::Utf8)?;
        let names = names
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("name".into()))?;
        let out: datafusion::arrow::array::Int32Array =
            names.iter().map(|n| n.and_then(type_oid)).collect();
        let array: ArrayRef = Arc::new(out);
        if matches!(args.args[0], ColumnarValue::Scalar(_)) {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?));
        }
        Ok(ColumnarValue::Array(array))
    }
}

/// `json_build_object(k1, v1, …)`: a JSON object per row, as text (SQLAlchemy's inspector
/// builds identity and collation descriptions with it).
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

fn json_value(v: &ScalarValue) -> serde_json::Value {
    use serde_json::Value;
    if v.is_null() {
        return Value::Null;
    }
    match v {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(n)) => Value::from(*n),
        ScalarValue::Int16(Some(n)) => Value::from(*n),
        ScalarValue::Int32(Some(n)) => Value::from(*n),
        ScalarValue::Int64(Some(n)) => Value::from(*n),
        ScalarValue::UInt8(Some(n)) => Value::from(*n),
        ScalarValue::UInt16(Some(n)) => Value::from(*n),
        ScalarValue::UInt32(Some(n)) => Value::from(*n),
        ScalarValue::UInt64(Some(n)) => Value::from(*n),
        ScalarValue::Float32(Some(n)) => Value::from(*n),
        ScalarValue::Float64(Some(n)) => Value::from(*n),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if args.args.len() % 2 != 0 {
            return Err(datafusion::error::DataFusionError::External(Box::new(
                crate::functions::FunctionError::InvalidArgument {
                    function: "json_build_object",
                    argument: "list",
                    message: "must alternate keys and values".into(),
                },
            )));
        }
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.clone().into_array(rows))
            .collect::<DfResult<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let mut object = serde_json::Map::new();
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?;
                let value = ScalarValue::try_from_array(&pair[1], row)?;
                let key = match json_value(&key) {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                object.insert(key, json_value(&value));
            }
            out.push(Some(serde_json::Value::Object(object).to_string()));
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}
