//! rebuy's SQL functions in `pg_proc` and `information_schema.routines`/`parameters`, with
//! PostgreSQL's names of their argument and result types, so that psql's `\df` and
//! `\df+ rfm_segment`, pgjdbc's `getFunctions`/`getProcedures` and BI tools' function lists
//! show them. `pg_get_function_arguments`, `pg_get_function_result` and
//! `obj_description(oid, 'pg_proc')` answer for them.
//!
//! The types are read from each function's documented example, planned as a client would
//! write it (the examples are run by the functions' tests), so they are the types the engine
//! actually coerces the arguments to and returns.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use super::pg_catalog::{
    call_rows, catalog_rows, int_argument, ints, namespaces, read_all, text_argument,
    text_function, texts,
};

/// rebuy's functions are numbered from here, far above the library's oids.
const FIRST_OID: i64 = 3_000_000;

/// A PostgreSQL type as `pg_proc` and `\df` name it.
#[derive(Debug, Clone)]
pub(super) struct PgType {
    pub oid: i32,
    pub name: &'static str,
    /// `pg_type.typname`, which `information_schema` calls `udt_name`.
    pub udt: &'static str,
}

/// One of rebuy's functions as the catalogs describe it.
#[derive(Debug, Clone)]
pub(super) struct Routine {
    pub oid: i64,
    pub name: String,
    /// `f` for a function, `a` for an aggregate (`pg_proc.prokind`).
    pub kind: &'static str,
    pub volatility: &'static str,
    pub arguments: Vec<(String, PgType)>,
    pub result: PgType,
    pub description: String,
}

impl Routine {
    /// `r bigint, f bigint, m bigint`, as `pg_get_function_arguments` prints it.
    pub fn argument_list(&self) -> String {
        self.arguments
            .iter()
            .map(|(n, t)| format!("{n} {}", t.name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// PostgreSQL's type for an Arrow type as the server sends it (structs and maps as JSON).
pub(super) fn pg_type(t: &DataType) -> PgType {
    let (oid, name, udt) = match t {
        DataType::Boolean => (16, "boolean", "bool"),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => (21, "smallint", "int2"),
        DataType::Int32 | DataType::UInt16 => (23, "integer", "int4"),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => (20, "bigint", "int8"),
        DataType::Float16 | DataType::Float32 => (700, "real", "float4"),
        DataType::Float64 => (701, "double precision", "float8"),
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => (1700, "numeric", "numeric"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => (25, "text", "text"),
        DataType::Date32 | DataType::Date64 => (1082, "date", "date"),
        DataType::Timestamp(_, None) => (1114, "timestamp without time zone", "timestamp"),
        DataType::Timestamp(_, Some(_)) => (1184, "timestamp with time zone", "timestamptz"),
        DataType::Struct(_) | DataType::Map(_, _) => (114, "json", "json"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => (17, "bytea", "bytea"),
        DataType::List(f) | DataType::LargeList(f) => match f.data_type() {
            DataType::Int64 => (1016, "bigint[]", "_int8"),
            DataType::Int32 => (1007, "integer[]", "_int4"),
            DataType::Float64 => (1022, "double precision[]", "_float8"),
            DataType::Utf8 | DataType::Utf8View => (1009, "text[]", "_text"),
            DataType::Date32 => (1182, "date[]", "_date"),
            _ => (2277, "anyarray", "anyarray"),
        },
        DataType::Null => (2276, "\"any\"", "any"),
        // Anything else travels as text (see encode.rs).
        _ => (25, "text", "text"),
    };
    PgType { oid, name, udt }
}

impl PgType {
    /// `information_schema`'s `data_type`: the name, or `ARRAY` for an array.
    pub fn data_type(&self) -> &'static str {
        if self.name.ends_with("[]") || self.name == "anyarray" {
            "ARRAY"
        } else {
            self.name
        }
    }
}

/// The routines, described once per process (the functions do not change).
pub(super) async fn routines() -> Arc<Vec<Routine>> {
    static ROUTINES: tokio::sync::OnceCell<Arc<Vec<Routine>>> = tokio::sync::OnceCell::const_new();
    ROUTINES
        .get_or_init(|| async { Arc::new(describe_all().await) })
        .await
        .clone()
}

async fn describe_all() -> Vec<Routine> {
    let ctx = SessionContext::new_with_config(crate::session::session_config());
    crate::functions::register_all(&ctx);
    let mut found: Vec<(String, &'static str, &'static str, Option<Documentation>)> = Vec::new();
    type Documentation = datafusion::logical_expr::Documentation;
    let volatility = |v: Volatility| match v {
        Volatility::Immutable => "i",
        Volatility::Stable => "s",
        Volatility::Volatile => "v",
    };
    for f in crate::functions::scalar_functions() {
        found.push((
            f.name().to_string(),
            "f",
            volatility(f.signature().volatility),
            f.documentation().cloned(),
        ));
    }
    for f in crate::functions::aggregate_functions() {
        found.push((
            f.name().to_string(),
            "a",
            volatility(f.signature().volatility),
            f.documentation().cloned(),
        ));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(found.len());
    for (i, (name, kind, volatility, doc)) in found.into_iter().enumerate() {
        let names = doc.as_ref().map(argument_names).unwrap_or_default();
        let example = doc.as_ref().and_then(|d| d.sql_example.clone());
        let typed = match example {
            Some(e) => example_types(&ctx, &name, &e).await,
            None => None,
        };
        let (types, result) = typed.unwrap_or_else(|| (vec![], DataType::Null));
        let arguments = (0..names.len().max(types.len()))
            .map(|k| {
                let n = names
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| format!("arg{}", k + 1));
                (n, pg_type(types.get(k).unwrap_or(&DataType::Null)))
            })
            .collect();
        out.push(Routine {
            oid: FIRST_OID + i64::try_from(i).unwrap_or(0),
            name,
            kind,
            volatility,
            arguments,
            result: pg_type(&result),
            description: doc.map(|d| d.description).unwrap_or_default(),
        });
    }
    out
}

/// The arguments' names as the documentation's syntax writes them (`bgnbd_p_alive(model,
/// frequency, recency, T)`), else as its argument list names them.
fn argument_names(doc: &datafusion::logical_expr::Documentation) -> Vec<String> {
    let syntax = doc.syntax_example.as_str();
    let inside = syntax
        .split_once('(')
        .and_then(|(_, rest)| rest.rsplit_once(')'))
        .map(|(args, _)| args.trim());
    match inside {
        Some(args) if !args.is_empty() => args
            .split(',')
            .map(|a| {
                a.trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .collect(),
        _ => doc
            .arguments
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(n, _)| n)
            .collect(),
    }
}

/// The argument and result types of the first call of `name` in its documented example.
async fn example_types(
    ctx: &SessionContext,
    name: &str,
    example: &str,
) -> Option<(Vec<DataType>, DataType)> {
    let sql = example
        .lines()
        .filter_map(|l| l.trim().strip_prefix("> "))
        .find(|l| l.contains(&format!("{name}(")))?
        .trim_end_matches(';');
    let plan = ctx.state().create_logical_plan(sql).await.ok()?;
    let plan = datafusion::optimizer::Analyzer::new()
        .execute_and_check(plan, ctx.state().config_options(), |_, _| {})
        .ok()?;
    let mut found = None;
    let _ = plan.apply(|node: &LogicalPlan| {
        let inputs = node.inputs();
        let schema = inputs
            .first()
            .map_or_else(|| node.schema().clone(), |i| i.schema().clone());
        let _ = node.apply_expressions(|e| {
            e.apply(|sub| {
                let args = match sub {
                    Expr::ScalarFunction(f) if f.func.name() == name => &f.args,
                    Expr::AggregateFunction(f) if f.func.name() == name => &f.params.args,
                    _ => return Ok(TreeNodeRecursion::Continue),
                };
                let types: Option<Vec<DataType>> =
                    args.iter().map(|a| a.get_type(&schema).ok()).collect();
                if let (Some(types), Ok(result)) = (types, sub.get_type(&schema)) {
                    found = Some((types, result));
                }
                Ok(TreeNodeRecursion::Stop)
            })
        });
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// The catalogs rebuy's routines have rows in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ProcCatalog {
    Proc,
    /// pgjdbc's `getFunctions` reads a function's REMARKS from `pg_description`.
    Description,
}

impl ProcCatalog {
    pub(super) fn of(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "pg_proc" => Some(Self::Proc),
            "pg_description" => Some(Self::Description),
            _ => None,
        }
    }
}

/// `pg_proc` or `pg_description`: PostgreSQL's own rows and rebuy's routines, in schema
/// `public`.
#[derive(Debug)]
pub(super) struct ProcTable {
    pub inner: Arc<dyn TableProvider>,
    pub which: ProcCatalog,
    pub schema: Arc<dyn SchemaProvider>,
    pub routines: Arc<Vec<Routine>>,
}

#[async_trait]
impl TableProvider for ProcTable {
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
        let schema = self.schema();
        let mut batches = read_all(self.inner.clone(), state).await?;
        match self.which {
            ProcCatalog::Proc => {
                let public = namespaces(&*self.schema, state)
                    .await?
                    .into_iter()
                    .find_map(|(oid, name)| (name == "public").then_some(oid));
                if let Some(namespace) = public {
                    batches.push(proc_rows(&schema, &self.routines, namespace)?);
                }
            }
            ProcCatalog::Description => {
                let routines = &self.routines;
                batches.push(catalog_rows(&schema, routines.len(), |column, row| {
                    Some(match column {
                        "objoid" => ScalarValue::Int32(i32::try_from(routines[row].oid).ok()),
                        // pg_proc's own oid: the description is a function's.
                        "classoid" => ScalarValue::Int32(Some(1255)),
                        "objsubid" => ScalarValue::Int32(Some(0)),
                        "description" => ScalarValue::Utf8(Some(routines[row].description.clone())),
                        _ => return None,
                    })
                })?);
            }
        }
        Ok(MemorySourceConfig::try_new_exec(
            &[batches],
            schema,
            projection.cloned(),
        )?)
    }
}

fn proc_rows(
    schema: &SchemaRef,
    routines: &[Routine],
    namespace: i64,
) -> Result<RecordBatch, DataFusionError> {
    let text = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
    let oid = |n: i64| ScalarValue::Int32(i32::try_from(n).ok());
    catalog_rows(schema, routines.len(), |column, row| {
        let r = &routines[row];
        Some(match column {
            "oid" => oid(r.oid),
            "proname" => text(&r.name),
            "pronamespace" => oid(namespace),
            "proowner" => oid(10),
            // `internal`: the functions are built into the server.
            "prolang" => oid(12),
            "procost" => ScalarValue::Float32(Some(1.0)),
            "prosupport" => text("-"),
            "prokind" => text(r.kind),
            "provolatile" => text(r.volatility),
            "proparallel" => text("s"),
            "pronargs" => ScalarValue::Int16(i16::try_from(r.arguments.len()).ok()),
            "prorettype" => ScalarValue::Int32(Some(r.result.oid)),
            "proargtypes" => text(
                &r.arguments
                    .iter()
                    .map(|(_, t)| t.oid.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "proargnames" => text(&format!(
                "{{{}}}",
                r.arguments
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            "prosrc" => text(&r.name),
            _ => return None,
        })
    })
}

/// What a lookup function answers for one of rebuy's routines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Answer {
    Arguments,
    Result,
    Description,
}

/// `pg_get_function_arguments`, `pg_get_function_identity_arguments`,
/// `pg_get_function_result` and `obj_description`, answering for rebuy's routines (NULL for
/// any other object, as before).
pub(super) fn lookup_udfs(routines: Arc<Vec<Routine>>) -> Vec<ScalarUDF> {
    [
        ("pg_get_function_arguments", Answer::Arguments),
        ("pg_get_function_identity_arguments", Answer::Arguments),
        ("pg_get_function_result", Answer::Result),
        ("obj_description", Answer::Description),
    ]
    .into_iter()
    .map(|(name, answer)| {
        let routines = routines.clone();
        text_function(name, move |args| {
            let rows = call_rows(args);
            let oids = int_argument(args, 0, rows)?;
            // obj_description(oid, catalog) describes a function only when asked about
            // pg_proc.
            let catalogs = text_argument(args, 1, rows)?;
            Ok((0..rows)
                .map(|i| {
                    let oid = oids.as_ref().filter(|a| a.is_valid(i))?.value(i);
                    if answer == Answer::Description
                        && catalogs
                            .as_ref()
                            .is_some_and(|c| c.is_null(i) || c.value(i) != "pg_proc")
                    {
                        return None;
                    }
                    let r = routines.iter().find(|r| r.oid == oid)?;
                    Some(match answer {
                        Answer::Arguments => r.argument_list(),
                        Answer::Result => r.result.name.to_string(),
                        Answer::Description => r.description.clone(),
                    })
                })
                .collect())
        })
    })
    .collect()
}

/// The functions the catalog rewrite `rewrite/regproc.rs` calls: a function's name from its
/// oid, and its oid from its name (the first of that name, as a cast of an overloaded name
/// cannot choose either), over PostgreSQL's functions and rebuy's.
pub const REGPROC_NAME: &str = "_rebuy_regproc_name";
pub const REGPROC_OID: &str = "_rebuy_regproc_oid";

#[derive(Debug, Default)]
struct ProcNames {
    by_oid: std::collections::HashMap<i64, String>,
    by_name: std::collections::HashMap<String, i64>,
}

/// The two regproc functions. The names are the same for every snapshot, so they are
/// gathered once per process.
pub(super) fn regproc_udfs(postgres: &[RecordBatch], routines: &[Routine]) -> Vec<ScalarUDF> {
    static NAMES: std::sync::OnceLock<Arc<ProcNames>> = std::sync::OnceLock::new();
    let names = NAMES
        .get_or_init(|| {
            let mut names = ProcNames::default();
            let mut add = |oid: i64, name: &str| {
                names.by_oid.entry(oid).or_insert_with(|| name.to_string());
                names.by_name.entry(name.to_string()).or_insert(oid);
            };
            for b in postgres {
                if let (Some(oid), Some(name)) = (ints(b, "oid"), texts(b, "proname")) {
                    for i in 0..b.num_rows() {
                        add(oid.value(i), name.value(i));
                    }
                }
            }
            for r in routines {
                add(r.oid, &r.name);
            }
            Arc::new(names)
        })
        .clone();
    let by_oid = names.clone();
    vec![
        text_function(REGPROC_NAME, move |args| {
            let rows = call_rows(args);
            let oids = int_argument(args, 0, rows)?;
            Ok((0..rows)
                .map(|i| {
                    let oids = oids.as_ref().filter(|a| a.is_valid(i))?;
                    by_oid.by_oid.get(&oids.value(i)).cloned()
                })
                .collect())
        }),
        ScalarUDF::new_from_impl(RegProcOid {
            names,
            signature: Signature::any(1, Volatility::Immutable),
        }),
    ]
}

/// `_rebuy_regproc_oid`: its own implementation because its result is typed `oid` (26), as
/// the catalogs' oid columns are, through the field's metadata.
#[derive(Debug)]
struct RegProcOid {
    names: Arc<ProcNames>,
    signature: Signature,
}

impl PartialEq for RegProcOid {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.names, &other.names)
    }
}
impl Eq for RegProcOid {}
impl std::hash::Hash for RegProcOid {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        REGPROC_OID.hash(state);
    }
}

impl ScalarUDFImpl for RegProcOid {
    fn name(&self) -> &str {
        REGPROC_OID
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Int32)
    }
    fn return_field_from_args(
        &self,
        _args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> datafusion::common::Result<datafusion::arrow::datatypes::FieldRef> {
        Ok(Arc::new(
            datafusion::arrow::datatypes::Field::new(REGPROC_OID, DataType::Int32, true)
                .with_metadata(std::collections::HashMap::from([(
                    datafusion_pg_catalog::pg_catalog::oid_field::OID_ALIAS_KEY.to_string(),
                    "oid".to_string(),
                )])),
        ))
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let rows = args.number_rows;
        let text = text_argument(&args.args, 0, rows)?;
        // `-` is PostgreSQL's "no function", oid 0.
        let out: datafusion::arrow::array::Int32Array = (0..rows)
            .map(|i| {
                let text = text.as_ref().filter(|a| a.is_valid(i))?;
                let name = text.value(i);
                let bare = name.strip_prefix("pg_catalog.").unwrap_or(name);
                if bare == "-" {
                    return Some(0);
                }
                self.names
                    .by_name
                    .get(bare)
                    .and_then(|o| i32::try_from(*o).ok())
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
