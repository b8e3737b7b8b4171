//! SQLAlchemy's primary key, unique constraint and index reflection unnests index keys:
//!
//! ```sql
//! SELECT ... FROM pg_catalog.pg_index ix, unnest(ix.indkey) WITH ORDINALITY AS ...
//! SELECT ... generate_subscripts(ix.indkey, 1) AS ord ...
//! ```

use datafusion::sql::sqlparser::ast::{Expr, Function, FunctionArguments};

/// rebuy's tables have no indexes, so `pg_index` is empty and `unnest(pg_index.indkey)` /
/// `generate_subscripts(pg_index.indkey, 1)` never produce a row; `indkey` is not an array in
/// the emulated catalog, so they are replaced by typed NULLs that plan (SQLAlchemy's primary
/// key, unique constraint and index reflection).
pub(super) fn index_key_function(f: &Function) -> Option<Expr> {
    let name = f.name.0.last()?.to_string().to_ascii_lowercase();
    let target = match name.as_str() {
        "unnest" => "SMALLINT",
        "generate_subscripts" => "INT",
        _ => return None,
    };
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let first = list.args.first()?.to_string().to_ascii_lowercase();
    if !(first.ends_with("indkey") || first.ends_with("indclass") || first.ends_with("indoption")) {
        return None;
    }
    datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(&format!("CAST(NULL AS {target})"))
    .and_then(|mut p| p.parse_expr())
    .ok()
}
